"""Stateless functions of the nn layer: activations, softmax, losses.

softmax / log_softmax / cross_entropy / mse_loss are fused ops (one graph node each, gradient
written in closed form), stable for any logits: every exponent is taken after subtracting the
row maximum, so logits ×1e5 stay finite.
"""
from __future__ import annotations

import numpy as np

from minidl import ops
from minidl.ops import as_tensor, linear, record, unbroadcast
from minidl.tensor import Tensor

__all__ = ["linear", "sigmoid", "tanh", "relu", "softsign", "softmax", "log_softmax",
           "cross_entropy", "mse_loss"]


def sigmoid(x: Tensor) -> Tensor:
    """σ(x) = 1/(1+e⁻ˣ)."""
    return ops.sigmoid(x)


def tanh(x: Tensor) -> Tensor:
    """tanh x."""
    return ops.tanh(x)


def relu(x: Tensor) -> Tensor:
    """max(x, 0)."""
    return ops.relu(x)


def softsign(x: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return ops.softsign(x)


def _shifted(x: np.ndarray, axis: int):
    """x - max(x) along axis, and log Σ exp of it (the stable log-sum-exp pieces)."""
    shifted = x - x.max(axis=axis, keepdims=True)
    exps = np.exp(shifted)
    return shifted, exps, exps.sum(axis=axis, keepdims=True)


def softmax(x, axis: int = -1) -> Tensor:
    """softmax(x)ᵢ = e^{xᵢ - m} / Σⱼ e^{xⱼ - m}, m = max x;  dx = y ⊙ (g - Σ g⊙y)."""
    x = as_tensor(x)
    _, exps, total = _shifted(x.data, axis)
    out = exps / total

    def backward(g):
        return (out * (g - (g * out).sum(axis=axis, keepdims=True)),)
    return record(out, (x,), backward)


def log_softmax(x, axis: int = -1) -> Tensor:
    """log_softmax(x) = x - m - log Σ e^{x - m};  dx = g - softmax(x) · Σ g."""
    x = as_tensor(x)
    shifted, exps, total = _shifted(x.data, axis)
    out = shifted - np.log(total)

    def backward(g):
        return (g - (exps / total) * g.sum(axis=axis, keepdims=True),)
    return record(out, (x,), backward)


def _check_targets(logits: np.ndarray, targets) -> np.ndarray:
    if isinstance(targets, Tensor):
        targets = targets.data
    targets = np.asarray(targets)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy expects logits of shape (batch, classes), got {logits.shape}")
    if targets.dtype.kind == "f" and np.array_equal(targets, np.floor(targets)):
        targets = targets.astype(np.int64)     # mdl.tensor([0, 2]) is float32: whole numbers are indices
    if targets.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy expects integer class indices, got dtype {targets.dtype} "
                        f"with non-integer values")
    if targets.shape != (logits.shape[0],):
        raise ValueError(f"cross_entropy: targets of shape {targets.shape} do not match logits of "
                         f"shape {logits.shape} (expected ({logits.shape[0]},))")
    if targets.size and (targets.min() < 0 or targets.max() >= logits.shape[1]):
        raise ValueError(f"cross_entropy: class indices must lie in [0, {logits.shape[1]}), "
                         f"got range [{targets.min()}, {targets.max()}]")
    return targets


def cross_entropy(logits, targets) -> Tensor:
    """Mean negative log-likelihood of ``log_softmax(logits)`` at integer ``targets``.

    loss = -(1/N) Σₙ log_softmax(zₙ)[yₙ];  dz = (softmax(z) - onehot(y)) / N — fused and stable.
    """
    logits = as_tensor(logits)
    z = logits.data
    targets = _check_targets(z, targets)
    n = z.shape[0]
    if n == 0:
        raise ValueError("cross_entropy of an empty batch")
    shifted, exps, total = _shifted(z, 1)
    rows = np.arange(n)
    picked = shifted[rows, targets] - np.log(total[:, 0])
    out = np.asarray(-picked.mean(), dtype=z.dtype)

    def backward(g):
        grad = exps / total
        grad[rows, targets] -= 1
        grad *= g / n
        return (grad,)
    return record(out, (logits,), backward)


def mse_loss(input, target) -> Tensor:
    """Mean squared error mean((a - b)²);  da = 2(a - b)/N · g, db = -da (broadcast summed back)."""
    a = as_tensor(input)
    b = as_tensor(target, a)
    diff = a.data - b.data
    out = np.asarray(np.mean(diff * diff), dtype=diff.dtype)

    def backward(g):
        ga = diff * (g * (2.0 / diff.size))
        return (unbroadcast(ga, a.data.shape) if a.requires_grad else None,
                unbroadcast(-ga, b.data.shape) if b.requires_grad else None)
    return record(out, (a, b), backward)
