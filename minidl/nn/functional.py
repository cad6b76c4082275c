"""Stateless functions of the nn layer (PyTorch's ``torch.nn.functional``): activations, softmax,
losses, dropout, batch and layer normalization.

Everything below softmax is a fused op (one graph node, its gradient written in closed form beside
the forward), stable for any input: every exponent is taken after subtracting the row maximum or
through log-sum-exp (``np.logaddexp``), so logits ×1e5 stay finite. Losses take PyTorch's
``reduction`` ("mean" | "sum" | "none") and refuse what PyTorch would compute silently wrong here:
integer logits (TypeError), mismatched shapes and out-of-range class indices (ValueError naming them).
"""
from __future__ import annotations

import math

import numpy as np

from minidl import ops
from minidl import random as _random
from minidl.ops import as_tensor, linear, record
from minidl.tensor import Tensor

__all__ = ["linear", "sigmoid", "tanh", "relu", "softsign", "softmax", "log_softmax",
           "cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy_with_logits", "dropout",
           "batch_norm", "layer_norm"]

REDUCTIONS = ("mean", "sum", "none")


def sigmoid(x: Tensor) -> Tensor:
    """σ(x) = 1/(1+e⁻ˣ)."""
    return ops.sigmoid(x)


def tanh(x: Tensor) -> Tensor:
    """tanh x."""
    return ops.tanh(x)


def relu(x: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0). ``inplace`` is taken for PyTorch code and computed out of place (same values and gradients)."""
    return ops.relu(x)


def softsign(x: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return ops.softsign(x)


def _floating(x: Tensor, name: str) -> Tensor:
    """``x`` itself, refusing integer and bool tensors (their loss would be truncated, as PyTorch refuses)."""
    if x.data.dtype.kind != "f":
        raise TypeError(f"{name} expects floating-point input, got dtype {x.data.dtype} "
                        f"(convert with .astype(np.float32) or mdl.tensor(..., dtype=np.float32))")
    return x


def _shifted(x: np.ndarray, axis: int):
    """x - max(x) along axis, and log Σ exp of it (the stable log-sum-exp pieces), laid out row-major
    whatever x's layout (PyTorch's softmax gives a contiguous result: ``softmax(t.T, -1).view(-1)`` works);
    an axis of length 0 gives empty results, as PyTorch (NumPy's max of nothing raised)."""
    if x.ndim and x.shape[axis] == 0:
        shape = list(x.shape)
        shape[axis] = 1
        return x.copy(), x.copy(), np.ones(shape, dtype=x.dtype)
    shifted = np.subtract(x, x.max(axis=axis, keepdims=True), order="C")
    exps = np.exp(shifted)
    return shifted, exps, exps.sum(axis=axis, keepdims=True)


def _axis(axis, dim) -> int:
    """``dim=`` is an alias of ``axis=`` (PyTorch's name)."""
    if dim is None:
        return axis
    if axis is not None and axis != -1 and axis != dim:
        raise TypeError(f"got axis={axis} and dim={dim}; give one of them")
    return dim


def _one_axis(x: Tensor, axis, dim, name: str) -> int:
    """The one axis of x a softmax runs along: an int (TypeError else), in range for x's shape (NumPy's
    AxisError, an IndexError as PyTorch's, naming the shape; it was "tuple index out of range")."""
    axis = _axis(axis, dim)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name}: axis must be an int, got {axis!r}")
    rank = max(x.ndim, 1)                   # a 0-d tensor takes axis 0 or -1, as PyTorch's
    if not -rank <= axis < rank:
        raise np.exceptions.AxisError(f"{name}: axis {axis} is out of range for a tensor of shape {x.shape} "
                                      f"(expected in [{-rank}, {rank - 1}])")
    return axis


def softmax(x, axis: int = -1, dim=None) -> Tensor:
    """softmax(x)ᵢ = e^{xᵢ - m} / Σⱼ e^{xⱼ - m}, m = max x;  dx = y ⊙ (g - Σ g⊙y)."""
    x = _floating(as_tensor(x), "softmax")
    axis = _one_axis(x, axis, dim, "softmax")
    _, exps, total = _shifted(x.data, axis)
    out = exps / total

    def backward(g):
        return (out * (g - (g * out).sum(axis=axis, keepdims=True)),)
    return record(out, (x,), backward)


def log_softmax(x, axis: int = -1, dim=None) -> Tensor:
    """log_softmax(x) = x - m - log Σ e^{x - m};  dx = g - softmax(x) · Σ g."""
    x = _floating(as_tensor(x), "log_softmax")
    axis = _one_axis(x, axis, dim, "log_softmax")
    shifted, exps, total = _shifted(x.data, axis)
    out = shifted - np.log(total)

    def backward(g):
        return (g - (exps / total) * g.sum(axis=axis, keepdims=True),)
    return record(out, (x,), backward)


def _check_reduction(reduction: str, name: str) -> None:
    if not isinstance(reduction, str):      # e.g. PyTorch's cross_entropy takes weight where this takes reduction
        raise TypeError(f"{name}: reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got a "
                        f"{type(reduction).__name__}; pass weight= and reduction= by keyword (PyTorch's "
                        f"positional arguments differ)")
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {', '.join(map(repr, REDUCTIONS))}, "
                         f"got {reduction!r}")


def _reduce(losses: np.ndarray, reduction: str):
    """(reduced loss, expand) for per-element ``losses``: "mean" (Σ/n), "sum" or "none" (as is);
    ``expand(g)`` gives the gradient of the reduced loss with respect to each element, times g."""
    if reduction == "none":
        return losses, lambda g: g
    shape, dtype = losses.shape, losses.dtype
    if reduction == "sum":
        return np.asarray(losses.sum(), dtype=dtype), lambda g: np.broadcast_to(g, shape)
    n = losses.size
    if n:
        return np.asarray(losses.sum() / n, dtype=dtype), lambda g: np.broadcast_to(g / n, shape)
    with np.errstate(invalid="ignore"):      # the mean of nothing is NaN, as PyTorch's (0/0, no warning)
        return np.asarray(losses.sum() / np.float64(0), dtype=dtype), lambda g: np.broadcast_to(g, shape)


def _check_targets(logits: np.ndarray, targets, name: str, ignore_index: int = -100) -> np.ndarray:
    """Integer class indices, each in [0, classes) or ``ignore_index``, of the shape PyTorch pairs with the
    logits: () for (classes,), (N,) for (N, classes), (N, d₁, …) for (N, classes, d₁, …)."""
    if isinstance(targets, Tensor):
        targets = targets.data
    targets = np.asarray(targets)
    if logits.ndim == 0:
        raise ValueError(f"{name} expects logits of shape (classes,), (batch, classes) or "
                         f"(batch, classes, d1, ...), got {logits.shape}")
    # mdl.tensor([0, 2]) is float32: whole numbers are indices (cast once checked: 1e20 or inf is no int64)
    whole = targets.dtype.kind == "f" and np.isfinite(targets).all() and np.array_equal(targets, np.floor(targets))
    if targets.dtype.kind not in "iu" and not whole:
        raise TypeError(f"{name} expects integer class indices, got dtype {targets.dtype} "
                        f"with non-integer values")
    expected = logits.shape[:1] + logits.shape[2:] if logits.ndim > 1 else ()
    if targets.shape != expected:
        probabilities = " (class probabilities, targets of the logits' shape, are floating point)"
        raise ValueError(f"{name}: targets of shape {targets.shape} do not match logits of "
                         f"shape {logits.shape} (expected {expected})"
                         f"{probabilities if targets.shape == logits.shape and name == 'cross_entropy' else ''}")
    classes = logits.shape[1] if logits.ndim > 1 else logits.shape[0]
    kept = targets[targets != ignore_index]
    if kept.size and (kept.min() < 0 or kept.max() >= classes):
        raise ValueError(f"{name}: class indices must lie in [0, {classes}), got range "
                         f"[{int(kept.min())}, {int(kept.max())}] (targets equal to ignore_index={ignore_index} "
                         f"are skipped)")
    return targets.astype(np.int64, copy=False) if whole else targets


def _classes_last(t: Tensor) -> Tensor:
    """``t`` as (rows, classes): (C,) -> (1, C), (N, C) as is, (N, C, d₁, …) -> (N·d₁·…, C) with the
    class axis moved last (PyTorch's unbatched and K-dimensional forms of a classification loss, brought
    to the (batch, classes) core; the gradient flows back through the reshape)."""
    shape = t.data.shape
    if len(shape) == 2:
        return t
    if len(shape) == 1:
        return ops.reshape(t, (1, shape[0]))
    moved = ops.transpose(t, (0,) + tuple(range(2, len(shape))) + (1,))
    return ops.reshape(moved, (math.prod(shape[:1] + shape[2:]), shape[1]))


def _per_element(loss: Tensor, logits_shape: tuple, reduction: str) -> Tensor:
    """A (rows,) loss of ``reduction="none"`` in the shape of the targets (() for unbatched logits)."""
    if reduction != "none" or len(logits_shape) == 2:
        return loss
    return ops.reshape(loss, logits_shape[:1] + logits_shape[2:] if len(logits_shape) > 1 else ())


def _class_weights(weight, classes: int, dtype, name: str):
    """``weight=``: a 1-D float tensor or array of one weight per class (no gradient, as PyTorch), or None."""
    if weight is None:
        return None
    w = np.asarray(weight.data if isinstance(weight, Tensor) else weight)
    if w.shape != (classes,) or w.dtype.kind not in "fiu":
        raise ValueError(f"{name}: weight must hold one number per class, shape ({classes},), got {w.dtype} "
                         f"of shape {w.shape}")
    return w.astype(dtype, copy=False)


def _target_weights(targets: np.ndarray, kept: np.ndarray, w, dtype) -> tuple:
    """(safe, weights): the targets with the ignored ones (not ``kept``) set to class 0, for indexing, and
    each target's weight w[yₙ] (1 without ``weight=``), 0 where ignored."""
    safe = np.where(kept, targets, 0)
    return safe, (np.ones(len(targets), dtype=dtype) if w is None else w[safe]) * kept


def _weighted_reduce(losses: np.ndarray, weights: np.ndarray, kept: np.ndarray, reduction: str):
    """(reduced loss, expand) as ``_reduce``, "mean" dividing by Σ ``weights`` (the kept targets' class
    weights, 1 each without ``weight=``; PyTorch's rule): NaN when every target is ignored. ``expand(g)``
    is 0 at the ignored targets whatever g is (an infinite or NaN g there, or g / 0 when all are ignored,
    gives no NaN gradient: PyTorch never writes those rows)."""
    total, dtype = weights.sum(), losses.dtype

    def per_target(g):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(g / total, dtype=dtype)
    if reduction == "mean":
        out = per_target(losses.sum())
    else:
        out, per_target = _reduce(losses, reduction)
    return out, lambda g: np.where(kept, per_target(g), 0).astype(dtype, copy=False)


def cross_entropy(logits, targets, reduction: str = "mean", label_smoothing: float = 0.0, *,
                  weight=None, ignore_index: int = -100) -> Tensor:
    """Cross-entropy of ``softmax(logits)`` against integer class ``targets`` (PyTorch's formula).

    With ε = label_smoothing, C classes and class weights w (all 1 without ``weight=``):
    lossₙ = -(1-ε)·w[yₙ]·log pₙ[yₙ] - (ε/C)·Σ_c w[c]·log pₙ[c], log p = log_softmax(zₙ); 0 where
    yₙ = ``ignore_index``; "mean" divides the sum by Σ w[yₙ] over the kept targets.
    dzₙ = (1-ε)·w[yₙ]·(pₙ - onehot(yₙ)) + (ε/C)·(Σw·pₙ - w) — fused and stable.
    PyTorch's forms: logits (N, C) with targets (N,); (C,) with a 0-d target (unbatched); (N, C, d₁, …) with
    (N, d₁, …) (class axis 1); float targets of the logits' shape are class probabilities
    (``_soft_cross_entropy``). "none" gives the targets' shape; the mean of nothing is NaN, as PyTorch's.
    """
    logits = _floating(as_tensor(logits), "cross_entropy")
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must lie in [0, 1], got {label_smoothing}")
    if _are_probabilities(targets, logits.shape):
        if ignore_index != -100:        # no class to ignore in a distribution: PyTorch refuses it too
            raise ValueError(f"cross_entropy: ignore_index ({ignore_index}) is not supported for class-probability "
                             f"targets")
        return _soft_cross_entropy(logits, targets, reduction, label_smoothing, weight)
    full_shape = logits.shape
    targets = _check_targets(logits.data, targets, "cross_entropy", ignore_index).reshape(-1)
    logits = _classes_last(logits)
    z = logits.data
    n, classes = z.shape
    w = _class_weights(weight, classes, z.dtype, "cross_entropy")
    shifted, exps, total = _shifted(z, 1)
    rows = np.arange(n)
    kept = targets != ignore_index
    plain = w is None and kept.all()          # the usual case, kept as lean as it was (the training step)
    safe, target_weights = (targets, None) if plain else _target_weights(targets, kept, w, z.dtype)
    log_total = np.log(total[:, 0])
    losses = log_total - shifted[rows, safe]
    if not plain:
        losses *= target_weights
    if label_smoothing:
        if w is None:
            smooth = log_total - shifted.mean(axis=1)          # -(1/C) Σ_c log p[c]
        else:
            smooth = (log_total * w.sum() - shifted @ w) / classes
        losses = (1 - label_smoothing) * losses + label_smoothing * (smooth if plain else smooth * kept)
    losses = losses.astype(z.dtype, copy=False)
    out, expand = _reduce(losses, reduction) if plain else _weighted_reduce(losses, target_weights, kept, reduction)

    def backward(g):
        grad = exps / total
        if plain:
            if label_smoothing:
                grad -= label_smoothing / classes
            grad[rows, safe] -= 1 - label_smoothing
        else:
            probs, scale = grad, (1 - label_smoothing) * target_weights
            grad = probs * scale[:, None]
            grad[rows, safe] -= scale
            if label_smoothing:
                spread = probs * (classes if w is None else w.sum()) - (1 if w is None else w)
                grad += spread * (label_smoothing / classes) * kept[:, None]
        grad *= expand(g)[:, None]
        return (grad,)
    return _per_element(record(out, (logits,), backward), full_shape, reduction)


def _are_probabilities(targets, logits_shape: tuple) -> bool:
    """PyTorch's rule: floating-point targets of the logits' own shape are class probabilities."""
    data = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
    return data.dtype.kind == "f" and data.shape == logits_shape != ()


def _soft_cross_entropy(logits: Tensor, targets, reduction: str, label_smoothing: float, weight) -> Tensor:
    """Cross-entropy against class probabilities t (PyTorch's form for targets of the logits' shape):
    lossₙ = -Σ_c w[c]·t'ₙ[c]·log pₙ[c], t' = (1-ε)·t + ε/C, "mean" dividing by the number of rows;
    dzₙ = pₙ·Σ_c w[c]·t'ₙ[c] - w·t'ₙ,  dtₙ = -(1-ε)·w·log pₙ."""
    full_shape = logits.shape
    logits, targets = _classes_last(logits), _classes_last(as_tensor(targets))
    z = logits.data
    classes = z.shape[1]
    w = _class_weights(weight, classes, z.dtype, "cross_entropy")
    shifted, exps, total = _shifted(z, 1)
    log_p = shifted - np.log(total)
    t = targets.data.astype(z.dtype, copy=False)
    if label_smoothing:
        t = (1 - label_smoothing) * t + label_smoothing / classes
    wt = t if w is None else t * w
    out, expand = _reduce(-(wt * log_p).sum(axis=1), reduction)

    def backward(g):
        scale = expand(g)[:, None]
        gz = (exps / total * wt.sum(axis=1, keepdims=True) - wt) * scale if logits.requires_grad else None
        gt = None
        if targets.requires_grad:
            gt = (-(1 - label_smoothing) * (log_p if w is None else log_p * w) * scale).astype(
                targets.data.dtype, copy=False)
        return gz, gt
    return _per_element(record(out, (logits, targets), backward), full_shape, reduction)


def nll_loss(log_probs, targets, reduction: str = "mean", *, weight=None, ignore_index: int = -100) -> Tensor:
    """Negative log-likelihood of (batch, classes) log-probabilities at integer class ``targets``:
    lossₙ = -w[yₙ]·log_probsₙ[yₙ] (w: ``weight=``, all 1 without it; 0 where yₙ = ``ignore_index``), then
    ``reduction`` ("mean" divides by Σ w[yₙ] over the kept targets);  d/dlog_probsₙ[c] = -[c = yₙ]·w[yₙ]·
    ∂loss/∂lossₙ. ``nll_loss(log_softmax(z), y)`` equals ``cross_entropy(z, y)`` (PyTorch ``F.nll_loss``);
    the unbatched and K-dimensional forms as ``cross_entropy``'s."""
    log_probs = _floating(as_tensor(log_probs), "nll_loss")
    _check_reduction(reduction, "nll_loss")
    full_shape = log_probs.shape
    targets = _check_targets(log_probs.data, targets, "nll_loss", ignore_index).reshape(-1)
    log_probs = _classes_last(log_probs)
    lp = log_probs.data
    w = _class_weights(weight, lp.shape[1], lp.dtype, "nll_loss")
    rows, kept = np.arange(lp.shape[0]), targets != ignore_index
    safe, target_weights = _target_weights(targets, kept, w, lp.dtype)
    out, expand = _weighted_reduce(-lp[rows, safe] * target_weights, target_weights, kept, reduction)

    def backward(g):
        grad = np.zeros_like(lp)
        grad[rows, safe] = -expand(g) * target_weights
        return (grad,)
    return _per_element(record(out, (log_probs,), backward), full_shape, reduction)


def _input_and_target(input, target, reduction: str, name: str) -> tuple:
    """(input, target) as Tensors for an elementwise loss: floating-point input, a known reduction, and
    the same shape for both — (N, 1) against (N,) would broadcast to N×N (PyTorch only warns), so any
    mismatch is a ValueError naming both shapes."""
    a = _floating(as_tensor(input), name)
    b = as_tensor(target, a)
    _check_reduction(reduction, name)
    if a.data.shape != b.data.shape:
        raise ValueError(f"{name}: input of shape {a.data.shape} and target of shape {b.data.shape} "
                         f"differ; reshape one so they match (no broadcasting)")
    return a, b


def mse_loss(input, target, reduction: str = "mean") -> Tensor:
    """Squared error (a - b)², then ``reduction``;  da = 2(a - b)·∂loss/∂lossᵢ, db = -da.
    ``input`` and ``target`` must have the same shape (ValueError naming both)."""
    a, b = _input_and_target(input, target, reduction, "mse_loss")
    bd = b.data if b.data.dtype.kind == "f" else b.data.astype(a.data.dtype)   # integer targets
    diff = a.data - bd
    out, expand = _reduce(diff * diff, reduction)

    def backward(g):
        ga = diff * (2 * expand(g))
        return (ga if a.requires_grad else None), (-ga if b.requires_grad else None)
    return record(out, (a, b), backward)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean",
                                     pos_weight=None) -> Tensor:
    """Binary cross-entropy of σ(x) against targets y ∈ [0, 1], from the logits x (PyTorch's formula):

        lossᵢ = wᵢ · [(1 - yᵢ)·xᵢ + cᵢ·log(1 + e⁻ˣⁱ)],   cᵢ = 1 + (pos_weight - 1)·yᵢ

    with log(1 + e⁻ˣ) = logaddexp(0, -x), stable for any x (no log of 0, no overflow); then ``reduction``.
    dx = w·[(1 - y) - c·σ(-x)],  dy = w·[-x + (pos_weight - 1)·log(1 + e⁻ˣ)].
    ``weight`` broadcasts against the loss, ``pos_weight`` along the last (class) axis; neither is trained.
    """
    x, y = _input_and_target(input, target, reduction, "binary_cross_entropy_with_logits")
    xd, dtype = x.data, x.data.dtype
    yd = y.data.astype(dtype, copy=False)
    w = None if weight is None else np.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype)
    pw = None if pos_weight is None else np.asarray(
        pos_weight.data if isinstance(pos_weight, Tensor) else pos_weight, dtype)
    try:                # checked first: NumPy's own broadcast error named neither argument
        loss_shape = np.broadcast_shapes(xd.shape, *(a.shape for a in (w, pw) if a is not None))
    except ValueError:
        loss_shape = None
    if loss_shape != xd.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: weight/pos_weight of shapes "
                         f"{None if w is None else w.shape}/{None if pw is None else pw.shape} "
                         f"{'do not broadcast against' if loss_shape is None else f'broadcast the loss to {loss_shape}, not'}"
                         f" the input's {xd.shape}")
    softplus_neg = np.logaddexp(0, -xd)                    # log(1 + e⁻ˣ)
    c = 1 if pw is None else 1 + (pw - 1) * yd
    losses = (1 - yd) * xd + c * softplus_neg
    if w is not None:
        losses = losses * w
    out, expand = _reduce(losses.astype(dtype, copy=False), reduction)

    def backward(g):
        scale = expand(g) if w is None else expand(g) * w
        gx = gy = None
        if x.requires_grad:
            gx = scale * ((1 - yd) - c * np.exp(-np.logaddexp(0, xd)))      # σ(-x) = e^{-log(1+eˣ)}
        if y.requires_grad:
            gy = scale * (-xd if pw is None else (pw - 1) * softplus_neg - xd)
        return gx, gy
    return record(out, (x, y), backward)


def dropout(x, p: float = 0.5, training: bool = True, inplace: bool = False, *, generator=None) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) while ``training``
    (Srivastava et al. 2014, "inverted" as in PyTorch, so evaluation needs no rescaling); the
    identity otherwise. dx = g · mask/(1-p). Draws from ``minidl.random.generator()`` by default.
    ``inplace`` is PyTorch's (4th, as there), taken for PyTorch code and computed out of place."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")
    if not isinstance(inplace, (bool, np.bool_)):        # the 4th argument was the generator before
        raise TypeError(f"dropout: inplace must be a bool (PyTorch's 4th argument); pass the generator by "
                        f"name (generator=...), got {inplace!r}")
    x = as_tensor(x)
    if not training or p == 0:
        return x
    xd = x.data
    if xd.dtype.kind != "f":      # integers and bools are computed in float32, as the activations do
        xd = xd.astype(np.float32)  # (int64 · a float32 mask made float64)
    dtype = xd.dtype
    if p == 1:
        scaled_mask = np.zeros(xd.shape, dtype=dtype)
    else:
        rng = _random.generator() if generator is None else generator
        scaled_mask = (rng.random(xd.shape, dtype=dtype) >= p).astype(dtype)
        scaled_mask *= dtype.type(1 / (1 - p))
    return record(xd * scaled_mask, (x,), lambda g: (g * scaled_mask,))


# ---- normalization ---------------------------------------------------------------------------------
def _normalize(x: Tensor, axes: tuple, param_shape: tuple, weight, bias, eps: float, stats=None):
    """y = (x - μ)/√(σ² + eps) · w + b, the fused op behind batch_norm and layer_norm.

    μ, σ² are the biased mean and variance of x over ``axes`` (``stats`` None), or the given
    ``stats = (mean, var)`` (constants, e.g. running estimates). ``weight``/``bias`` (Tensors or None)
    are viewed as ``param_shape`` to broadcast against x. With x̂ = (x - μ)/√(σ² + eps), ĝ = g·w, m the
    count over ``axes``:  dw = Σ g·x̂ and db = Σ g over the other axes;
    dx = (ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)) / √(σ² + eps) for batch statistics, ĝ/√(σ² + eps) for constants.
    Returns (y, μ, σ²).
    """
    xd = x.data
    dtype = xd.dtype
    if stats is None:
        mean = xd.mean(axis=axes, keepdims=True)
        var = xd.var(axis=axes, keepdims=True)
    else:
        kept = tuple(1 if i in axes else n for i, n in enumerate(xd.shape))
        mean, var = (np.asarray(s, dtype=dtype).reshape(kept) for s in stats)
    inv_std = 1 / np.sqrt(var + dtype.type(eps))
    xhat = (xd - mean) * inv_std
    w = None if weight is None else weight.data.reshape(param_shape)
    out = xhat if w is None else xhat * w
    if bias is not None:
        out = out + bias.data.reshape(param_shape)
    full_shape = (1,) * (xd.ndim - len(param_shape)) + tuple(param_shape)
    param_axes = tuple(i for i, k in enumerate(full_shape) if k == 1)   # the axes w and b broadcast over

    def backward(g):
        ghat = g if w is None else g * w
        gx = gw = gb = None
        if x.requires_grad:
            if stats is None:
                gx = (ghat - ghat.mean(axis=axes, keepdims=True)
                      - xhat * (ghat * xhat).mean(axis=axes, keepdims=True)) * inv_std
            else:
                gx = ghat * inv_std
        if weight is not None and weight.requires_grad:
            gw = (g * xhat).sum(axis=param_axes).reshape(weight.shape)
        if bias is not None and bias.requires_grad:
            gb = g.sum(axis=param_axes).reshape(bias.shape)
        return (gx,) + tuple(grad for grad, t in ((gw, weight), (gb, bias)) if t is not None)
    parents = (x,) + tuple(t for t in (weight, bias) if t is not None)
    return record(out, parents, backward), mean, var


def batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalization (Ioffe & Szegedy 2015) of (N, C) or (N, C, L) input over every axis but C.

    ``training`` (or no running estimates given): normalize with the batch's mean and *biased*
    variance, and update the running estimates in place (when given) with the *unbiased* variance:
    r ← (1 - momentum)·r + momentum·stat, stat_var = var·m/(m-1), m = N·L values per channel.
    Otherwise normalize with the running estimates. y = x̂·weight + bias (PyTorch ``F.batch_norm``).
    """
    x = _floating(as_tensor(x), "batch_norm")
    xd = x.data
    if xd.ndim not in (2, 3):
        raise ValueError(f"batch_norm expects input of shape (N, C) or (N, C, L), got {xd.shape}")
    channels = xd.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and t.shape != (channels,):
            raise ValueError(f"batch_norm: {name} of shape {t.shape} does not match the {channels} channels "
                             f"of input of shape {xd.shape}")
    axes = (0,) if xd.ndim == 2 else (0, 2)
    param_shape = (channels,) if xd.ndim == 2 else (channels, 1)
    if not training and running_mean is not None and running_var is not None:
        return _normalize(x, axes, param_shape, weight, bias, eps, (running_mean.data, running_var.data))[0]
    count = xd.size // channels if channels else 0
    if count == 0:      # an empty batch: an empty result, the running estimates untouched (PyTorch's)
        stats = (np.zeros(channels, dtype=xd.dtype), np.ones(channels, dtype=xd.dtype))
        return _normalize(x, axes, param_shape, weight, bias, eps, stats)[0]
    if count == 1:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input of "
                         f"shape {xd.shape}")
    out, mean, var = _normalize(x, axes, param_shape, weight, bias, eps)
    if training:
        if running_mean is not None:
            running_mean.data *= 1 - momentum
            running_mean.data += momentum * mean.reshape(channels)
        if running_var is not None:
            running_var.data *= 1 - momentum
            running_var.data += (momentum * count / (count - 1)) * var.reshape(channels)
    return out


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Layer normalization (Ba et al. 2016) over the trailing ``normalized_shape`` axes of x: each
    sample is normalized with its own mean and biased variance, y = x̂·weight + bias, the same in
    training and evaluation (PyTorch ``F.layer_norm``)."""
    x = _floating(as_tensor(x), "layer_norm")
    shape = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    xd = x.data
    k = len(shape)
    if k == 0 or xd.ndim < k or xd.shape[xd.ndim - k:] != shape:
        raise ValueError(f"layer_norm: input of shape {xd.shape} does not end in normalized_shape {shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != shape:
            raise ValueError(f"layer_norm: {name} of shape {t.shape} does not match normalized_shape {shape}")
    return _normalize(x, tuple(range(xd.ndim - k, xd.ndim)), shape, weight, bias, eps)[0]
