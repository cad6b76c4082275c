"""Every differentiable op: its forward on ndarrays and, right beside it, its local chain rule.

Each op computes ``out`` with NumPy (or ``minidl._core`` for 2-D matmul and sigmoid) and returns
``record(out, parents, backward)``, where ``backward(g) -> (grad for each parent)`` is the op's local
chain rule (its docstring gives the derivative). ``record`` is the one place that decides whether a
graph is recorded (grad mode on and some parent requires grad); otherwise the result is a plain
tensor and the closure is dropped unused. Elementwise binary ops go through ``binary``, the one
place for NumPy broadcasting, Python-number operands (a one-parent node; the number never changes
the tensor's dtype) and ``unbroadcast``, which sums a gradient back to the shape of the input it
belongs to (the one place that fixes the "gradient has the broadcast shape" class of bugs).
A backward closure returns a *fresh* array or the incoming ``g`` itself (see ``minidl.autograd``
on ownership); it never returns the same fresh array for two parents.

These helpers are public for ops defined elsewhere (``minidl.nn.functional``): ``record``,
``binary``, ``unbroadcast``, ``as_tensor``. The compiled kernels are called through names that
``wrap_kernels`` can wrap (profiling, counting calls). This module also attaches the operators and
op methods to ``Tensor`` (at its end), so imports flow one way: ops imports tensor.
"""
from __future__ import annotations

import builtins
import contextlib
import operator
from functools import partial as _partial

import numpy as np

from minidl import activations as _activations
from minidl.autograd import _GradMode
from minidl.tensor import Tensor, _new_tensor

try:
    from minidl import _core
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError(
        "minidl._core (the compiled kernels) is not built. From a source checkout run "
        "`python setup.py build_ext --inplace`, or install with `pip install .`") from exc

# The kernels ops calls, looked up at call time so that ``wrap_kernels`` can wrap them.
_core_matmul = _core.matmul
_core_sigmoid_forward = _core.sigmoid_forward
_core_sigmoid_backward = _core.sigmoid_backward
_SIGMOID, _TANH, _RELU, _SOFTSIGN = (_activations.get(name) for name in ("sigmoid", "tanh", "relu", "softsign"))
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_Number = (int, float, np.number)


KERNELS = ("matmul", "sigmoid_forward", "sigmoid_backward")


@contextlib.contextmanager
def wrap_kernels(wrapper):
    """Route every call to the compiled kernels ``KERNELS`` through ``wrapper`` inside the block.

    ``wrapper(name, kernel) -> callable`` is called once per kernel name of ``KERNELS`` on entry; until
    exit, the callable it returns is called instead of the kernel, with the kernel's arguments (it
    should call ``kernel`` and return its result). It applies to the ops here and to every caller
    that looks a kernel up in ``minidl._core`` when calling it (the activation registry does);
    both are restored on exit, also on error. Blocks may nest. The profiling hook of
    ``minidl bench train --profile``; e.g. counting the kernel calls of one step::

        calls = []

        def count(name, kernel):
            def call(*args, **kwargs):
                calls.append(name)
                return kernel(*args, **kwargs)
            return call

        with ops.wrap_kernels(count):
            F.cross_entropy(model(x), y).backward()
    """
    space = globals()
    saved = [(name, space["_core_" + name], getattr(_core, name)) for name in KERNELS]
    try:
        for name, kernel, _ in saved:
            wrapped = wrapper(name, kernel)
            space["_core_" + name] = wrapped
            setattr(_core, name, wrapped)
        yield
    finally:
        for name, kernel, core_attr in saved:
            space["_core_" + name] = kernel
            setattr(_core, name, core_attr)


# ---- plumbing: the one place that decides whether an op records the graph ---------------------
def record(out, parents: tuple, backward, *saved) -> Tensor:
    """An op's result: ``out`` as a Tensor, recorded in the graph when it has to be.

    The only place that reads grad mode. When grad mode is on (outside ``no_grad``) and some tensor
    of ``parents`` requires grad, the result requires grad and remembers ``parents`` and the op's
    local chain rule; otherwise it is a plain tensor (requires_grad False, no graph) and ``backward``
    is dropped unused, so compute in ``backward``, not before it, whatever only the gradient needs.

    ``backward(*saved, g) -> tuple`` gives one gradient per parent: an ndarray of that parent's shape,
    or None for a parent that does not require grad (checked when it runs: ``p.requires_grad``); a
    *fresh* array or ``g`` itself, never the same fresh array for two parents (``minidl.autograd``,
    ownership). Usually ``backward`` is a closure ``lambda g: ...`` and ``saved`` is empty; an op
    whose overhead matters on small tensors passes a module-level function and the values it needs
    as ``saved`` instead, so that nothing is built when no graph is recorded.
    ``out`` may be a NumPy scalar (ufuncs on 0-d arrays return one): it becomes a 0-d array.
    """
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    t = _new_tensor(Tensor)
    t.data = out
    t.grad = None
    t._hooks = None
    t._retains_grad = False
    if _GradMode.enabled:
        for parent in parents:
            if parent.requires_grad:
                t.requires_grad = True
                t._parents = parents
                t._backward = _partial(backward, *saved) if saved else backward
                return t
    t.requires_grad = False
    t._parents = ()
    t._backward = None
    return t


def as_tensor(x, like: Tensor | None = None) -> Tensor:
    """``x`` as a Tensor; Python numbers take ``like``'s float dtype so float32 stays float32."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (bool, int, float)) and like is not None and like.data.dtype.kind == "f":
        return Tensor._wrap(np.asarray(x, dtype=like.data.dtype))
    return Tensor(x)


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``g`` (a broadcast result's gradient) back to ``shape`` (the input's shape).

    Returns ``g`` itself when the shapes already agree, else a fresh array.
    """
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


def binary(a, b, forward, backward) -> Tensor:
    """An elementwise binary op with NumPy broadcasting: ``forward(x, y)`` and its local gradient.

    ``a`` or ``b`` is a Tensor; the other may be a Tensor, a Python/NumPy number or an array-like
    (a constant tensor, see ``as_tensor``). ``forward(x, y) -> out`` computes the op on the ndarrays;
    a number operand is passed as a Python number, so it never changes the tensor's dtype, and is no
    parent (the node has one parent, the tensor). ``backward(g, x, y, out, need_x, need_y) ->
    (gx, gy)`` gives the gradients for x and y at the broadcast shape of ``out``; the entry of an
    operand that needs none is ignored (may be None). ``binary`` sums each back to its operand's
    shape (``unbroadcast``) and records the node (``record``).
    """
    if isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            if _is_number(b):
                x, y = a.data, _weak(b)
                out = forward(x, y)
                if type(out) is not np.ndarray:
                    out = np.asarray(out)
                return record(out, (a,), _binary_x_only, backward, x, y, out)
            b = as_tensor(b, a)
    elif _is_number(a):
        x, y = _weak(a), b.data
        out = forward(x, y)
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        return record(out, (b,), _binary_y_only, backward, x, y, out)
    else:
        a = as_tensor(a, b)
    x, y = a.data, b.data
    out = forward(x, y)
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    return record(out, (a, b), _binary_both, a, b, backward, x, y, out)


# binary's chain rules (saved values first, g last: see ``record``)
def _binary_both(a, b, backward, x, y, out, g):
    need_x, need_y = a.requires_grad, b.requires_grad
    gx, gy = backward(g, x, y, out, need_x, need_y)
    return (unbroadcast(gx, x.shape) if need_x else None,
            unbroadcast(gy, y.shape) if need_y else None)


def _binary_x_only(backward, x, y, out, g):       # y was a number: the tensor x is the only parent
    return (backward(g, x, y, out, True, False)[0],)


def _binary_y_only(backward, x, y, out, g):       # x was a number
    return (backward(g, x, y, out, False, True)[1],)


# ---- elementwise binary -----------------------------------------------------------------------
# Each op gives its forward to ``binary`` and, right below it, its local gradient
# ``(g, x, y, out, need_x, need_y) -> (gx, gy)`` at the broadcast shape.

def add(a: Tensor, b) -> Tensor:
    """a + b;  d/da = 1, d/db = 1 (summed back over broadcast axes)."""
    return binary(a, b, operator.add, _add_backward)


def _add_backward(g, x, y, out, need_x, need_y):
    return g, g


def sub(a: Tensor, b) -> Tensor:
    """a - b;  d/da = 1, d/db = -1."""
    return binary(a, b, operator.sub, _sub_backward)


def rsub(a: Tensor, b) -> Tensor:
    """b - a for a non-Tensor b (``2 - t``);  d/da = -1."""
    return binary(b, a, operator.sub, _sub_backward)


def _sub_backward(g, x, y, out, need_x, need_y):
    return g, (-g if need_y else None)


def mul(a: Tensor, b) -> Tensor:
    """a * b;  d/da = b, d/db = a."""
    return binary(a, b, operator.mul, _mul_backward)


def _mul_backward(g, x, y, out, need_x, need_y):
    return (g * y if need_x else None), (g * x if need_y else None)


def div(a: Tensor, b) -> Tensor:
    """a / b;  d/da = 1/b, d/db = -a/b² = -(a/b)/b."""
    return binary(a, b, operator.truediv, _div_backward)


def rdiv(a: Tensor, b) -> Tensor:
    """b / a for a non-Tensor b (``10.0 / t``);  d/da = -b/a² = -out/a."""
    return binary(b, a, operator.truediv, _div_backward)


def _div_backward(g, x, y, out, need_x, need_y):
    gx = g / y
    return gx, (-gx * out if need_y else None)


def pow(a: Tensor, exponent) -> Tensor:
    """a ** p for a scalar p;  d/da = p·a^(p-1)."""
    if isinstance(exponent, Tensor) or not _is_number(exponent):
        raise TypeError(f"Tensor ** exponent needs a Python/NumPy scalar exponent, got {type(exponent).__name__}")
    p = _weak(exponent)
    ad = a.data

    def backward(g):
        if p == 0:
            return (np.zeros_like(ad),)
        if p == 1:
            return (g,)
        if p == 2:
            return (g * (2 * ad),)
        with np.errstate(divide="ignore"):       # 0 ** (p-1) with p < 1 is inf, as in PyTorch
            return (g * (p * ad ** (p - 1)),)
    return record(ad ** p, (a,), backward)


def _negate(g):
    return (-g,)


def neg(a: Tensor) -> Tensor:
    """-a;  d/da = -1."""
    return record(-a.data, (a,), _negate)


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
        return record(_mm(ad, bd), (a, b), _matmul_backward, a, b, ad, bd)
    return _matmul_nd(a, b)


def _matmul_backward(a, b, ad, bd, g):
    return (_mm(g, bd, trans_b=True) if a.requires_grad else None,
            _mm(ad, g, trans_a=True) if b.requires_grad else None)


def _matmul_nd(a: Tensor, b: Tensor) -> Tensor:
    """The non-2-D cases with NumPy: vectors are promoted to matrices, batch dims broadcast."""
    ad, bd = a.data, b.data
    if ad.ndim == 0 or bd.ndim == 0:
        raise ValueError(f"matmul: 0-d operand (shapes {ad.shape} and {bd.shape}); use * for scalars")
    try:
        out = np.matmul(ad, bd)
    except ValueError as exc:
        raise ValueError(f"matmul: shapes {ad.shape} and {bd.shape} are not aligned") from exc

    def backward(g):
        a2 = ad[None, :] if ad.ndim == 1 else ad        # (.., m, k)
        b2 = bd[:, None] if bd.ndim == 1 else bd        # (.., k, n)
        g2 = g
        if bd.ndim == 1:                # restore the dims the vector cases dropped, last first
            g2 = np.expand_dims(g2, -1)
        if ad.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        ga = gb = None
        if a.requires_grad:
            ga = unbroadcast(np.matmul(g2, np.swapaxes(b2, -1, -2)), a2.shape).reshape(ad.shape)
        if b.requires_grad:
            gb = unbroadcast(np.matmul(np.swapaxes(a2, -1, -2), g2), b2.shape).reshape(bd.shape)
        return ga, gb
    return record(out, (a, b), backward)


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

    def backward(g):
        return (_mm(g, wd, trans_b=True) if x.requires_grad else None,
                _mm(xd, g, trans_a=True) if weight.requires_grad else None,
                unbroadcast(g, bias.data.shape) if bias is not None and bias.requires_grad else None)
    return record(out, (x, weight) if bias is None else (x, weight, bias), backward)


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
    out = ad.sum(axis=axes, keepdims=keepdims)
    shape = ad.shape
    return record(out, (a,), lambda g: (_expand_back(g, _kept_shape(shape, axes), shape),))


def mean(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Σ/n over axes;  d/da = 1/n broadcast back."""
    ad = a.data
    axes = _norm_axes(axis, ad.ndim)
    out = ad.mean(axis=axes, keepdims=keepdims)
    shape = ad.shape

    def backward(g):
        count = 1
        for ax in axes:
            count *= shape[ax]
        return (_expand_back(g / count, _kept_shape(shape, axes), shape),)
    return record(out, (a,), backward)


def max(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Maximum over axes;  d/da = 1 at the maxima (split equally among ties), 0 elsewhere."""
    ad = a.data
    if ad.size == 0:
        raise ValueError("max() of an empty tensor")
    axes = _norm_axes(axis, ad.ndim)
    kept = ad.max(axis=axes, keepdims=True)
    out = kept if keepdims else kept.reshape([n for i, n in enumerate(ad.shape) if i not in axes])

    def backward(g):
        mask = (ad == kept).astype(ad.dtype)
        mask /= mask.sum(axis=axes, keepdims=True)
        return (mask * (g if keepdims else g.reshape(kept.shape)),)
    return record(out, (a,), backward)


# ---- shape ----------------------------------------------------------------------------------
def reshape(a: Tensor, shape: tuple) -> Tensor:
    """A view with a new shape;  the gradient is reshaped back."""
    ad = a.data
    try:
        out = ad.reshape(shape)
    except ValueError as exc:
        raise ValueError(f"cannot reshape a tensor of shape {ad.shape} into shape {tuple(shape)}") from exc
    old = ad.shape
    return record(out, (a,), lambda g: (g.reshape(old),))


def transpose(a: Tensor, axes=None) -> Tensor:
    """Permute axes (None: reverse);  the gradient is permuted back by the inverse permutation."""
    ad = a.data
    if axes is not None:
        axes = tuple(int(ax) % ad.ndim if ad.ndim else ax for ax in axes)
    try:
        out = ad.transpose(axes)
    except ValueError as exc:
        raise ValueError(f"transpose: axes {axes} do not fit a tensor of shape {ad.shape}") from exc
    return record(out, (a,), lambda g: (g.transpose(None if axes is None else tuple(np.argsort(axes))),))


def getitem(a: Tensor, index) -> Tensor:
    """``a[index]`` (basic or advanced indexing);  the gradient is scattered back with np.add.at."""
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    ad = a.data
    out = ad[index]

    def backward(g):
        full = np.zeros_like(ad)
        np.add.at(full, index, g)
        return (full,)
    return record(out, (a,), backward)


# ---- elementwise unary ------------------------------------------------------------------------
def exp(a: Tensor) -> Tensor:
    """eᵃ;  d/da = eᵃ = out."""
    out = np.exp(a.data)
    return record(out, (a,), lambda g: (g * out,))


def log(a: Tensor) -> Tensor:
    """ln a;  d/da = 1/a."""
    ad = a.data
    out = np.log(ad)
    return record(out, (a,), lambda g: (g / ad,))


def activation(a: Tensor, act) -> Tensor:
    """z = f(a) for an entry (or name) of the activation registry ``minidl.activations``;
    d/da = f'(a), computed by the entry's ``backward(g, a, z)`` (sigmoid: fused in minidl._core)."""
    act = _activations.get(act)
    ad = a.data
    if ad.dtype != _F32 and ad.dtype != _F64:
        ad = ad.astype(np.result_type(ad.dtype, np.float32))
    out = act.forward(ad)
    if type(out) is not np.ndarray:     # ufuncs on 0-d arrays return NumPy scalars
        out = np.asarray(out)
    return record(out, (a,), _activation_backward, act.backward, ad, out)


def _activation_backward(backward, ad, out, g):
    return (backward(g, ad, out),)


def sigmoid(a: Tensor) -> Tensor:
    """σ(a) = 1/(1+e⁻ᵃ) (minidl._core, stable);  d/da = σ(a)(1-σ(a)) = out·(1-out), fused."""
    return activation(a, _SIGMOID)


def tanh(a: Tensor) -> Tensor:
    """tanh a;  d/da = 1 - tanh² a = 1 - out²."""
    return activation(a, _TANH)


def relu(a: Tensor) -> Tensor:
    """max(a, 0);  d/da = 1 where a > 0 else 0 (0 at a = 0, as PyTorch)."""
    return activation(a, _RELU)


def softsign(a: Tensor) -> Tensor:
    """a / (1 + |a|) (Glorot & Bengio 2010);  d/da = 1 / (1 + |a|)²."""
    return activation(a, _SOFTSIGN)


# ---- Tensor's operators and op methods ---------------------------------------------------------
# Attached here, once every op exists, so that minidl.tensor never imports minidl.ops.
def _rmatmul(a: Tensor, b) -> Tensor:
    """b @ a for a non-Tensor b (``ndarray @ t``)."""
    return matmul(as_tensor(b, a), a)


def _reshape_method(self: Tensor, *shape) -> Tensor:
    """View with a new shape (``reshape(2, 3)`` or ``reshape((2, 3))``; one -1 allowed)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return reshape(self, shape)


def _transpose_method(self: Tensor, *axes) -> Tensor:
    """Permute axes (default: reverse them, the matrix transpose for 2-D)."""
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    return transpose(self, axes or None)


def _T(self: Tensor) -> Tensor:
    """The transpose (axes reversed)."""
    return transpose(self, None)


for _name, _method in {
        "__add__": add, "__radd__": add, "__sub__": sub, "__rsub__": rsub, "__mul__": mul, "__rmul__": mul,
        "__truediv__": div, "__rtruediv__": rdiv, "__pow__": pow, "__neg__": neg, "__matmul__": matmul,
        "__rmatmul__": _rmatmul, "__getitem__": getitem, "sum": sum, "mean": mean, "max": max,
        "reshape": _reshape_method, "transpose": _transpose_method, "T": property(_T),
        "exp": exp, "log": log, "sigmoid": sigmoid, "tanh": tanh, "relu": relu, "softsign": softsign}.items():
    setattr(Tensor, _name, _method)
del _name, _method
