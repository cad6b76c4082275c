"""Every differentiable op: its forward on ndarrays and, right beside it, its local chain rule.

Each op computes ``out`` with NumPy (or ``minidl._core`` for 2-D matmul and sigmoid) and, when a
graph is being recorded, attaches ``backward(g) -> (grad for each parent)``. Binary ops follow
NumPy broadcasting; ``_unbroadcast`` sums a gradient back to the shape of the input it belongs to
(the one place that fixes the "gradient has the broadcast shape" class of bugs).
A backward closure returns a *fresh* array or the incoming ``g`` itself (see ``minidl.autograd``
on ownership); it never returns the same fresh array for two parents.
"""
from __future__ import annotations

import builtins

import numpy as np

from minidl.autograd import _GradMode
from minidl.tensor import Tensor, _new_tensor

try:
    from minidl import _core
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError(
        "minidl._core (the compiled kernels) is not built. From a source checkout run "
        "`python setup.py build_ext --inplace`, or install with `pip install .`") from exc

_core_matmul = _core.matmul
_core_sigmoid_forward = _core.sigmoid_forward
_core_sigmoid_backward = _core.sigmoid_backward
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_Number = (int, float, np.number)


# ---- plumbing -------------------------------------------------------------------------------
def _result(data, parents, backward) -> Tensor:
    """An op's output node: requires grad, remembers its parents and its backward closure."""
    if type(data) is not np.ndarray:     # ufuncs on 0-d arrays return NumPy scalars
        data = np.asarray(data)
    t = _new_tensor(Tensor)
    t.data = data
    t.grad = None
    t.requires_grad = True
    t._parents = parents
    t._backward = backward
    t._hooks = None
    t._retains_grad = False
    return t


def _plain(data) -> Tensor:
    """An op's output when no graph is recorded."""
    if type(data) is not np.ndarray:
        data = np.asarray(data)
    return Tensor._wrap(data)


def as_tensor(x, like: Tensor | None = None) -> Tensor:
    """``x`` as a Tensor; Python numbers take ``like``'s float dtype so float32 stays float32."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (bool, int, float)) and like is not None and like.data.dtype.kind == "f":
        return Tensor._wrap(np.asarray(x, dtype=like.data.dtype))
    return Tensor(x)


def _unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``g`` (a broadcast result's gradient) back to ``shape`` (the input's shape)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return np.asarray(g)


def _is_number(x) -> bool:
    return isinstance(x, _Number) and not isinstance(x, np.ndarray)


def _weak(x):
    """A scalar as a Python number, so it never changes the tensor's dtype (as PyTorch):
    float32 * np.float64(2) stays float32."""
    return x if type(x) is float or type(x) is int else x.item()


# ---- elementwise binary -----------------------------------------------------------------------
# Each op takes the Tensor fast path first; Python numbers get a one-parent node; other array-likes
# are wrapped as constant Tensors.

def _pass_through(g):
    return (g,)


def _negate(g):
    return (-g,)


def add(a: Tensor, b) -> Tensor:
    """a + b;  d/da = 1, d/db = 1 (summed back over broadcast axes)."""
    if not isinstance(b, Tensor):
        if _is_number(b):
            b = _weak(b)
            out = a.data + b
            if a.requires_grad and _GradMode.enabled:
                return _result(out, (a,), _pass_through)
            return _plain(out)
        b = as_tensor(b, a)
    out = a.data + b.data
    if not ((a.requires_grad or b.requires_grad) and _GradMode.enabled):
        return _plain(out)
    sa, sb = a.data.shape, b.data.shape

    def backward(g):
        return _unbroadcast(g, sa), _unbroadcast(g, sb)
    return _result(out, (a, b), backward)


def sub(a: Tensor, b) -> Tensor:
    """a - b;  d/da = 1, d/db = -1."""
    if not isinstance(b, Tensor):
        if _is_number(b):
            b = _weak(b)
            out = a.data - b
            if a.requires_grad and _GradMode.enabled:
                return _result(out, (a,), _pass_through)
            return _plain(out)
        b = as_tensor(b, a)
    out = a.data - b.data
    if not ((a.requires_grad or b.requires_grad) and _GradMode.enabled):
        return _plain(out)
    sa, sb = a.data.shape, b.data.shape

    def backward(g):
        return (_unbroadcast(g, sa) if a.requires_grad else None,
                _unbroadcast(-g, sb) if b.requires_grad else None)
    return _result(out, (a, b), backward)


def rsub(a: Tensor, b) -> Tensor:
    """b - a for a non-Tensor b (``2 - t``);  d/da = -1."""
    if _is_number(b):
        b = _weak(b)
        out = b - a.data
        if a.requires_grad and _GradMode.enabled:
            return _result(out, (a,), _negate)
        return _plain(out)
    return sub(as_tensor(b, a), a)


def mul(a: Tensor, b) -> Tensor:
    """a * b;  d/da = b, d/db = a."""
    if not isinstance(b, Tensor):
        if _is_number(b):
            b = _weak(b)
            out = a.data * b
            if a.requires_grad and _GradMode.enabled:
                return _result(out, (a,), lambda g: (g * b,))
            return _plain(out)
        b = as_tensor(b, a)
    ad, bd = a.data, b.data
    out = ad * bd
    if not ((a.requires_grad or b.requires_grad) and _GradMode.enabled):
        return _plain(out)

    def backward(g):
        return (_unbroadcast(g * bd, ad.shape) if a.requires_grad else None,
                _unbroadcast(g * ad, bd.shape) if b.requires_grad else None)
    return _result(out, (a, b), backward)


def div(a: Tensor, b) -> Tensor:
    """a / b;  d/da = 1/b, d/db = -a/b² = -(a/b)/b."""
    if not isinstance(b, Tensor):
        if _is_number(b):
            b = _weak(b)
            out = a.data / b
            if a.requires_grad and _GradMode.enabled:
                return _result(out, (a,), lambda g: (g / b,))
            return _plain(out)
        b = as_tensor(b, a)
    ad, bd = a.data, b.data
    out = ad / bd
    if not ((a.requires_grad or b.requires_grad) and _GradMode.enabled):
        return _plain(out)

    def backward(g):
        ga = g / bd
        return (_unbroadcast(ga, ad.shape) if a.requires_grad else None,
                _unbroadcast(-ga * out, bd.shape) if b.requires_grad else None)
    return _result(out, (a, b), backward)


def rdiv(a: Tensor, b) -> Tensor:
    """b / a for a non-Tensor b (``10.0 / t``);  d/da = -b/a² = -out/a."""
    if _is_number(b):
        b = _weak(b)
        ad = a.data
        out = b / ad
        if a.requires_grad and _GradMode.enabled:
            return _result(out, (a,), lambda g: (-g * out / ad,))
        return _plain(out)
    return div(as_tensor(b, a), a)


def pow(a: Tensor, exponent) -> Tensor:
    """a ** p for a scalar p;  d/da = p·a^(p-1)."""
    if isinstance(exponent, Tensor) or not _is_number(exponent):
        raise TypeError(f"Tensor ** exponent needs a Python/NumPy scalar exponent, got {type(exponent).__name__}")
    p = _weak(exponent)
    ad = a.data
    out = ad ** p
    if not (a.requires_grad and _GradMode.enabled):
        return _plain(out)

    def backward(g):
        if p == 0:
            return (np.zeros_like(ad),)
        if p == 1:
            return (g,)
        if p == 2:
            return (g * (2 * ad),)
        with np.errstate(divide="ignore"):       # 0 ** (p-1) with p < 1 is inf, as in PyTorch
            return (g * (p * ad ** (p - 1)),)
    return _result(out, (a,), backward)


def neg(a: Tensor) -> Tensor:
    """-a;  d/da = -1."""
    out = -a.data
    if not (a.requires_grad and _GradMode.enabled):
        return _plain(out)
    return _result(out, (a,), lambda g: (-g,))


# ---- matmul (compiled core for 2-D float) --------------------------------------------------------
def _mm(x: np.ndarray, y: np.ndarray, trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
    """op(x) @ op(y) for 2-D arrays through minidl._core (NumPy for non-float dtypes)."""
    dt = x.dtype
    if dt is not y.dtype and dt != y.dtype:
        dt = np.result_type(x, y)
        x, y = x.astype(dt), y.astype(dt)
    if dt == _F32 or dt == _F64:
        return _core_matmul(x, y, trans_a=trans_a, trans_b=trans_b)
    return (x.T if trans_a else x) @ (y.T if trans_b else y)


def matmul(a: Tensor, b) -> Tensor:
    """a @ b (NumPy semantics: 1-D vectors, batched N-D);  dA = G·Bᵀ, dB = Aᵀ·G.

    2-D products run in ``minidl._core.matmul``, the backward ones via ``trans_a``/``trans_b``
    so no transpose is materialized.
    """
    b = as_tensor(b, a)
    ad, bd = a.data, b.data
    if ad.ndim == 2 and bd.ndim == 2:
        if ad.shape[1] != bd.shape[0]:
            raise ValueError(f"matmul: shapes {ad.shape} and {bd.shape} are not aligned "
                             f"({ad.shape[1]} != {bd.shape[0]})")
        out = _mm(ad, bd)
        if not ((a.requires_grad or b.requires_grad) and _GradMode.enabled):
            return Tensor._wrap(out)

        def backward(g):
            return (_mm(g, bd, trans_b=True) if a.requires_grad else None,
                    _mm(ad, g, trans_a=True) if b.requires_grad else None)
        return _result(out, (a, b), backward)
    return _matmul_nd(a, b)


def _matmul_nd(a: Tensor, b: Tensor) -> Tensor:
    """The non-2-D cases with NumPy: vectors are promoted to matrices, batch dims broadcast."""
    ad, bd = a.data, b.data
    if ad.ndim == 0 or bd.ndim == 0:
        raise ValueError(f"matmul: 0-d operand (shapes {ad.shape} and {bd.shape}); use * for scalars")
    try:
        out = np.matmul(ad, bd)
    except ValueError as exc:
        raise ValueError(f"matmul: shapes {ad.shape} and {bd.shape} are not aligned") from exc
    if not ((a.requires_grad or b.requires_grad) and _GradMode.enabled):
        return _plain(out)
    a2 = ad[None, :] if ad.ndim == 1 else ad            # (.., m, k)
    b2 = bd[:, None] if bd.ndim == 1 else bd            # (.., k, n)

    def backward(g):
        g2 = g
        if bd.ndim == 1:                # restore the dims the vector cases dropped, last first
            g2 = np.expand_dims(g2, -1)
        if ad.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        ga = gb = None
        if a.requires_grad:
            ga = _unbroadcast(np.matmul(g2, np.swapaxes(b2, -1, -2)), a2.shape).reshape(ad.shape)
        if b.requires_grad:
            gb = _unbroadcast(np.matmul(np.swapaxes(a2, -1, -2), g2), b2.shape).reshape(bd.shape)
        return ga, gb
    return _result(out, (a, b), backward)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Fused affine map y = x @ W + b for 2-D x (one node, bias added in place).

    dx = G·Wᵀ, dW = xᵀ·G, db = Σ_batch G.
    """
    if not isinstance(x, Tensor):
        x = as_tensor(x)
    xd, wd = x.data, weight.data
    if xd.ndim != 2 or wd.ndim != 2:
        out = matmul(x, weight)
        return out if bias is None else add(out, bias)
    if xd.shape[1] != wd.shape[0]:
        raise ValueError(f"linear: input of shape {xd.shape} does not match weight of shape {wd.shape} "
                         f"(expects (batch, {wd.shape[0]}))")
    out = _mm(xd, wd)
    if bias is not None:
        if bias.data.dtype == out.dtype and bias.data.shape[-1:] == out.shape[-1:] and bias.data.ndim <= 2:
            out += bias.data
        else:
            out = out + bias.data
    needs = x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    if not (needs and _GradMode.enabled):
        return Tensor._wrap(out)

    def backward(g):
        return (_mm(g, wd, trans_b=True) if x.requires_grad else None,
                _mm(xd, g, trans_a=True) if weight.requires_grad else None,
                _unbroadcast(g, bias.data.shape) if bias is not None and bias.requires_grad else None)
    parents = (x, weight) if bias is None else (x, weight, bias)
    return _result(out, parents, backward)


# ---- reductions ------------------------------------------------------------------------------
def _norm_axes(axis, ndim: int) -> tuple:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    norm = []
    for ax in axes:
        if not -ndim <= ax < builtins.max(ndim, 1):
            raise ValueError(f"axis {ax} is out of bounds for a tensor with {ndim} dimensions")
        norm.append(int(ax) % ndim if ndim else 0)
    return tuple(norm)


def _expand_back(g: np.ndarray, kept_shape: tuple, shape: tuple) -> np.ndarray:
    """Broadcast a reduced gradient back to the input ``shape`` (a read-only view).

    ``kept_shape`` is the reduction's shape with keepdims=True (size-1 axes where it reduced).
    """
    if g.shape != kept_shape:
        g = g.reshape(kept_shape)
    return np.broadcast_to(g, shape)


def _kept_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def sum(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Σ over axes;  d/da = 1 broadcast back to a's shape."""
    ad = a.data
    axes = _norm_axes(axis, ad.ndim)
    out = np.asarray(ad.sum(axis=axes, keepdims=keepdims))
    if not (a.requires_grad and _GradMode.enabled):
        return Tensor._wrap(out)
    shape = ad.shape
    kept = _kept_shape(shape, axes)
    return _result(out, (a,), lambda g: (_expand_back(g, kept, shape),))


def mean(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Σ/n over axes;  d/da = 1/n broadcast back."""
    ad = a.data
    axes = _norm_axes(axis, ad.ndim)
    out = np.asarray(ad.mean(axis=axes, keepdims=keepdims))
    if not (a.requires_grad and _GradMode.enabled):
        return Tensor._wrap(out)
    shape = ad.shape
    count = 1
    for ax in axes:
        count *= shape[ax]
    kept = _kept_shape(shape, axes)
    return _result(out, (a,), lambda g: (_expand_back(g / count, kept, shape),))


def max(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Maximum over axes;  d/da = 1 at the maxima (split equally among ties), 0 elsewhere."""
    ad = a.data
    if ad.size == 0:
        raise ValueError("max() of an empty tensor")
    axes = _norm_axes(axis, ad.ndim)
    kept = ad.max(axis=axes, keepdims=True)
    out = np.asarray(kept if keepdims else kept.reshape([n for i, n in enumerate(ad.shape) if i not in axes]))
    if not (a.requires_grad and _GradMode.enabled):
        return Tensor._wrap(out)

    def backward(g):
        mask = (ad == kept).astype(ad.dtype)
        mask /= mask.sum(axis=axes, keepdims=True)
        return (mask * (g if keepdims else g.reshape(kept.shape)),)
    return _result(out, (a,), backward)


# ---- shape ----------------------------------------------------------------------------------
def reshape(a: Tensor, shape: tuple) -> Tensor:
    """A view with a new shape;  the gradient is reshaped back."""
    ad = a.data
    try:
        out = ad.reshape(shape)
    except ValueError as exc:
        raise ValueError(f"cannot reshape a tensor of shape {ad.shape} into shape {tuple(shape)}") from exc
    if not (a.requires_grad and _GradMode.enabled):
        return Tensor._wrap(out)
    old = ad.shape
    return _result(out, (a,), lambda g: (g.reshape(old),))


def transpose(a: Tensor, axes=None) -> Tensor:
    """Permute axes (None: reverse);  the gradient is permuted back by the inverse permutation."""
    ad = a.data
    if axes is not None:
        axes = tuple(int(ax) % ad.ndim if ad.ndim else ax for ax in axes)
    try:
        out = ad.transpose(axes)
    except ValueError as exc:
        raise ValueError(f"transpose: axes {axes} do not fit a tensor of shape {ad.shape}") from exc
    if not (a.requires_grad and _GradMode.enabled):
        return Tensor._wrap(out)
    inverse = None if axes is None else tuple(np.argsort(axes))
    return _result(out, (a,), lambda g: (g.transpose(inverse),))


def getitem(a: Tensor, index) -> Tensor:
    """``a[index]`` (basic or advanced indexing);  the gradient is scattered back with np.add.at."""
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    ad = a.data
    out = np.asarray(ad[index])
    if not (a.requires_grad and _GradMode.enabled):
        return Tensor._wrap(out)

    def backward(g):
        full = np.zeros_like(ad)
        np.add.at(full, index, g)
        return (full,)
    return _result(out, (a,), backward)


# ---- elementwise unary ------------------------------------------------------------------------
def exp(a: Tensor) -> Tensor:
    """eᵃ;  d/da = eᵃ = out."""
    out = np.exp(a.data)
    if not (a.requires_grad and _GradMode.enabled):
        return _plain(out)
    return _result(out, (a,), lambda g: (g * out,))


def log(a: Tensor) -> Tensor:
    """ln a;  d/da = 1/a."""
    ad = a.data
    out = np.log(ad)
    if not (a.requires_grad and _GradMode.enabled):
        return _plain(out)
    return _result(out, (a,), lambda g: (g / ad,))


def sigmoid(a: Tensor) -> Tensor:
    """σ(a) = 1/(1+e⁻ᵃ) (minidl._core, stable);  d/da = σ(a)(1-σ(a)) = out·(1-out), fused."""
    ad = a.data
    if ad.dtype != _F32 and ad.dtype != _F64:
        ad = ad.astype(np.result_type(ad.dtype, np.float32))
    out = _core_sigmoid_forward(ad)
    if out.ndim != ad.ndim:         # the core returns shape (1,) for a 0-d input
        out = out.reshape(ad.shape)
    if not (a.requires_grad and _GradMode.enabled):
        return Tensor._wrap(out)
    if not ad.ndim:
        return _result(out, (a,), lambda g: (_core_sigmoid_backward(out, g).reshape(()),))
    return _result(out, (a,), lambda g: (_core_sigmoid_backward(out, g),))


def tanh(a: Tensor) -> Tensor:
    """tanh a;  d/da = 1 - tanh² a = 1 - out²."""
    out = np.tanh(a.data)
    if not (a.requires_grad and _GradMode.enabled):
        return _plain(out)
    return _result(out, (a,), lambda g: (g * (1 - out * out),))


def relu(a: Tensor) -> Tensor:
    """max(a, 0);  d/da = 1 where a > 0 else 0 (0 at a = 0, as PyTorch)."""
    ad = a.data
    out = np.maximum(ad, 0)
    if not (a.requires_grad and _GradMode.enabled):
        return _plain(out)
    return _result(out, (a,), lambda g: (g * (ad > 0),))


def softsign(a: Tensor) -> Tensor:
    """a / (1 + |a|) (Glorot & Bengio 2010);  d/da = 1 / (1 + |a|)²."""
    ad = a.data
    denom = 1 + np.abs(ad)
    out = ad / denom
    if not (a.requires_grad and _GradMode.enabled):
        return _plain(out)
    return _result(out, (a,), lambda g: (g / (denom * denom),))
