"""Loss modules wrapping ``nn.functional`` (PyTorch's names, arguments and ``reduction``)."""
from __future__ import annotations

from minidl.nn import functional as F
from minidl.nn.module import Module

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "BCEWithLogitsLoss"]


class _Loss(Module):
    def __init__(self, reduction: str = "mean", *, size_average=None, reduce=None):
        super().__init__()
        _check_weighted_arguments(type(self).__name__, None, size_average, reduce)
        F._check_reduction(reduction, type(self).__name__)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


def _check_weighted_arguments(loss: str, weight, size_average, reduce) -> None:
    """PyTorch's positional order is (weight, size_average, ignore_index, reduce, reduction, ...): a string
    first is a reduction given where the class weights go, and the two arguments PyTorch deprecated for
    ``reduction`` are refused rather than half-honoured."""
    if isinstance(weight, str):
        raise TypeError(f"{loss}: the first argument is the class weights (as in PyTorch); pass the reduction "
                        f"by name: {loss}(reduction={weight!r})")
    if size_average is not None or reduce is not None:
        raise ValueError(f"{loss}: size_average and reduce are deprecated in PyTorch and not supported; use "
                         f"reduction='mean', 'sum' or 'none'")


class CrossEntropyLoss(_Loss):
    """-log softmax(logits)[target] per example (with ``label_smoothing`` ε: against the target
    distribution (1-ε)·onehot + ε/C), reduced; targets are integer class indices, or class probabilities
    of the logits' shape. ``weight`` (one per class) and ``ignore_index`` as PyTorch's, in PyTorch's
    positional order."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        _check_weighted_arguments("CrossEntropyLoss", weight, size_average, reduce)
        super().__init__(reduction)
        self.label_smoothing = float(label_smoothing)
        self.weight, self.ignore_index = weight, int(ignore_index)

    def forward(self, logits, targets):
        return F.cross_entropy(logits, targets, self.reduction, self.label_smoothing, weight=self.weight,
                               ignore_index=self.ignore_index)


class NLLLoss(_Loss):
    """-log_probs[target] per example, reduced (after a log_softmax: the cross-entropy); ``weight`` and
    ``ignore_index`` as in CrossEntropyLoss."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean"):
        _check_weighted_arguments("NLLLoss", weight, size_average, reduce)
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, int(ignore_index)

    def forward(self, log_probs, targets):
        return F.nll_loss(log_probs, targets, self.reduction, weight=self.weight, ignore_index=self.ignore_index)


class MSELoss(_Loss):
    """(input - target)² per element, reduced; the shapes must match. ``size_average``/``reduce`` (PyTorch's
    deprecated pair) only by name, and only None."""

    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of σ(input) against targets in [0, 1], from the logits (stable), reduced;
    ``weight`` rescales each element, ``pos_weight`` the positive term per class. PyTorch's positional order
    (weight, size_average, reduce, reduction, pos_weight)."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None):
        _check_weighted_arguments("BCEWithLogitsLoss", weight, size_average, reduce)
        super().__init__(reduction)
        self.weight = weight
        self.pos_weight = pos_weight

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction, self.pos_weight)
