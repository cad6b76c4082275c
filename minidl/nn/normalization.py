"""``BatchNorm1d`` and ``LayerNorm``: normalization layers with PyTorch's train/eval behaviour."""
from __future__ import annotations

import numpy as np

from minidl.nn import functional as F
from minidl.nn.module import Module, Parameter, parameter_dtype

__all__ = ["BatchNorm1d", "LayerNorm"]


class BatchNorm1d(Module):
    """Batch normalization (Ioffe & Szegedy 2015) of (N, C) or (N, C, L) input, as PyTorch's.

    Training: y = (x - μ_B)/√(σ²_B + eps)·weight + bias with the batch mean and *biased* variance per
    channel; the running estimates move towards the batch's, with the *unbiased* variance:
    r ← (1 - momentum)·r + momentum·stat (momentum None: the cumulative average, factor
    1/num_batches_tracked). Evaluation: the running estimates replace μ_B and σ²_B.
    Buffers ``running_mean`` (0), ``running_var`` (1) and ``num_batches_tracked`` are in ``state_dict``;
    with ``track_running_stats=False`` there are none and batch statistics are used in both modes.

    Args:
        num_features: C.
        eps: added to the variance. momentum: factor of the running update (or None).
        affine: learn ``weight`` (1) and ``bias`` (0) of shape (C,).
        track_running_stats: keep the running estimates.
        dtype: of the parameters and running estimates, float32 (also for None, as PyTorch) or float64.
        device: PyTorch's, None or "cpu".
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=np.float32):
        super().__init__()
        dtype = parameter_dtype(dtype, device, "BatchNorm1d")
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features <= 0:
            raise ValueError(f"BatchNorm1d needs a positive integer num_features, got {num_features!r}")
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.weight = Parameter(np.ones(self.num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(self.num_features, dtype=dtype)) if affine else None
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(self.num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches tracked."""
        if self.track_running_stats:
            self.running_mean.data.fill(0)
            self.running_var.data.fill(1)
            self.num_batches_tracked.data.fill(0)

    def reset_parameters(self) -> None:
        """Reset the running estimates, weight 1 and bias 0."""
        self.reset_running_stats()
        if self.affine:
            self.weight.data.fill(1)
            self.bias.data.fill(0)

    def forward(self, x):
        shape = getattr(x, "shape", np.shape(x))
        if len(shape) not in (2, 3) or shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d({self.num_features}) expects input of shape (N, {self.num_features}) "
                             f"or (N, {self.num_features}, L), got {tuple(shape)}")
        tracking = self.training and self.track_running_stats
        momentum = self.momentum
        if tracking and momentum is None:
            momentum = 1.0 / float(self.num_batches_tracked.data + 1)
        out = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                           training=self.training or not self.track_running_stats,
                           momentum=momentum or 0.0, eps=self.eps)
        if tracking:
            self.num_batches_tracked.data += 1      # after the checks of batch_norm, as one update
        return out

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class LayerNorm(Module):
    """Layer normalization (Ba et al. 2016) over the trailing ``normalized_shape`` axes, as PyTorch's:
    y = (x - μ)/√(σ² + eps)·weight + bias with each sample's own mean and biased variance, the same in
    training and evaluation. ``weight`` (1) and ``bias`` (0) have shape ``normalized_shape``
    (``elementwise_affine=False``: none; ``bias=False``: no bias). ``device``/``dtype`` as Linear's."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 device=None, dtype=np.float32):
        super().__init__()
        dtype = parameter_dtype(dtype, device, "LayerNorm")
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        if not shape or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0 for n in shape):
            raise ValueError(f"LayerNorm needs a normalized_shape of positive ints, got {normalized_shape!r}")
        self.normalized_shape = tuple(int(n) for n in shape)
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype)) if elementwise_affine and bias else None

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
