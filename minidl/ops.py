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
import functools
import math
import operator
import sys
from functools import partial as _partial

import numpy as np

from minidl import activations as _activations
from minidl.autograd import _grad_mode, _writes, note_in_place
from minidl.pending_product import PendingProduct
from minidl.tensor import Tensor, _FLOAT_DTYPES, _new_tensor, _to_array

try:
    from minidl import _core
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError(
        "minidl._core (the compiled kernels) is not built. From a source checkout run "
        "`python setup.py build_ext --inplace`, or install with `pip install .`") from exc

_SIGMOID, _TANH, _RELU, _SOFTSIGN = (_activations.get(name) for name in ("sigmoid", "tanh", "relu", "softsign"))
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_Number = (int, float, np.number)      # bool is an int


KERNELS = ("matmul", "matmul_after_update", "sigmoid_forward", "sigmoid_backward")


@contextlib.contextmanager
def wrap_kernels(wrapper):
    """Route every call to the compiled kernels ``KERNELS`` through ``wrapper`` inside the block.

    ``wrapper(name, kernel) -> callable`` is called once per kernel name of ``KERNELS`` on entry; until
    exit, the callable it returns is called instead of the kernel, with the kernel's arguments (it
    should call ``kernel`` and return its result). It replaces the kernels in ``minidl._core``, where
    every caller looks them up at call time (the ops here, the activation registry, pending products);
    they are restored on exit, also on error. Blocks may nest. The profiling hook of
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
    saved = {name: getattr(_core, name) for name in KERNELS}
    try:
        for name, kernel in saved.items():
            setattr(_core, name, wrapper(name, kernel))
        yield
    finally:
        for name, kernel in saved.items():
            setattr(_core, name, kernel)


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
    t._data = out
    t._update = None
    t._grad = None
    t._hooks = None
    t._retains_grad = False
    if _grad_mode.enabled:
        for parent in parents:
            if parent.requires_grad:
                t.requires_grad = True
                t._parents = parents
                t._backward = _partial(backward, *saved) if saved else backward
                t._writes_seen = _writes.count      # in-place writes before this node (autograd: checked)
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
    if type(x) is float or type(x) is int or type(x) is bool:
        return x
    if isinstance(x, np.generic):
        return x.item()
    return float(x) if isinstance(x, float) else int(x)      # a subclass (t.size, an IntEnum): as its base


# ---- type promotion ---------------------------------------------------------------------------
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}       # bool < integer < floating


def _promote(a: np.dtype | None, b: np.dtype | None) -> np.dtype | None:
    """PyTorch's promote_types: the higher category wins outright (int64 with float32 is float32);
    within one category NumPy's promotion (float32 with float64 is float64)."""
    if a is None or b is None:
        return b if a is None else a
    ca, cb = _CATEGORY[a.kind], _CATEGORY[b.kind]
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)


def result_type(*operands) -> np.dtype:
    """The dtype of an elementwise op on ``operands`` (Tensors, ndarrays, Python/NumPy numbers): PyTorch's rule.

    The result's category (bool < integer < floating) is the highest among all operands. Its dtype comes
    from the first group that holds that category, in the order: tensors with dimensions, 0-d tensors,
    numbers; within a group the dtypes promote (``_promote``). A Python float counts as float32 (the
    default dtype), an int as int64, a bool as bool; NumPy scalars count as Python numbers. So
    int64 * float32 -> float32, float32 (n-d) + float64 (0-d) -> float32, float32 * 2.5 -> float32,
    int64 * 2.5 -> float32, int64 (n-d) + float64 (0-d) -> float64, bool + 1 -> int64.
    """
    dims = zero = number = None
    for x in operands:
        if isinstance(x, Tensor):
            x = x.data
        if isinstance(x, np.ndarray):
            if x.ndim:
                dims = _promote(dims, x.dtype)
            else:
                zero = _promote(zero, x.dtype)
        else:
            kind = np.dtype(np.bool_ if isinstance(x, (bool, np.bool_)) else
                            np.int64 if isinstance(x, (int, np.integer)) else np.float32)
            number = _promote(number, kind)
    return _outranks(dims, _outranks(zero, number))


def _outranks(first: np.dtype | None, then: np.dtype | None) -> np.dtype | None:
    """``first``'s dtype unless ``then`` is of a higher category (PyTorch's combine_categories)."""
    if first is None or then is None:
        return then if first is None else first
    return first if _CATEGORY[first.kind] >= _CATEGORY[then.kind] else _promote(first, then)


def _floating(x: np.ndarray) -> np.ndarray:
    """``x`` if it is float32/float64, else ``x`` as float32 (ops whose result is a real number)."""
    return x if x.dtype.kind == "f" else x.astype(_F32)


def _cast(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return x if x.dtype == dtype else x.astype(dtype)


def _broadcast_error(name: str, *shapes) -> ValueError:
    return ValueError(f"{name}: shapes {', '.join(map(str, shapes))} cannot be broadcast together")


def binary(a, b, forward, backward, floating: bool = False) -> Tensor:
    """An elementwise binary op with NumPy broadcasting: ``forward(x, y)`` and its local gradient.

    ``a`` or ``b`` is a Tensor; the other may be a Tensor, a Python/NumPy number or an array-like
    (a constant tensor, see ``as_tensor``). The operands are first cast to ``result_type`` (float32
    if ``floating`` and that is not a float type: true division). ``forward(x, y) -> out`` computes
    the op on the ndarrays; a number operand is passed as a Python number and is no parent (the node
    has one parent, the tensor). ``backward(g, x, y, out, need_x, need_y) -> (gx, gy)`` gives the
    gradients for x and y at the broadcast shape of ``out``; the entry of an operand that needs none
    is ignored (may be None). ``binary`` sums each back to its operand's shape (``unbroadcast``) and
    records the node (``record``).
    """
    if isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            if _is_number(b):
                x, y = a.data, _weak(b)
                if x.dtype.kind != "f":
                    x = _cast(x, _F32 if floating else result_type(x, y))
                out = forward(x, y)
                if type(out) is not np.ndarray:
                    out = np.asarray(out)
                return record(out, (a,), _binary_x_only, backward, x, y, out)
            b = as_tensor(b, a)
    elif _is_number(a):
        x, y = _weak(a), b.data
        if y.dtype.kind != "f":
            y = _cast(y, _F32 if floating else result_type(x, y))
        out = forward(x, y)
        if type(out) is not np.ndarray:
            out = np.asarray(out)
        return record(out, (b,), _binary_y_only, backward, x, y, out)
    else:
        a = as_tensor(a, b)
    x, y = a.data, b.data
    if x.dtype != y.dtype or x.dtype.kind != "f":
        dtype = result_type(x, y)
        if floating and dtype.kind != "f":
            dtype = _F32
        x, y = _cast(x, dtype), _cast(y, dtype)
    try:
        out = forward(x, y)
    except ValueError as exc:
        if x.shape == y.shape:
            raise
        raise _broadcast_error(getattr(forward, "__name__", "op"), x.shape, y.shape) from exc
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


# the arrays each reads (autograd: values changed in place after the forward pass): its rule's ``reads``
_binary_both.saved_arrays = lambda args: args[2].reads(*args[3:6], args[0].requires_grad, args[1].requires_grad)
_binary_x_only.saved_arrays = lambda args: args[0].reads(*args[1:4], True, False)
_binary_y_only.saved_arrays = lambda args: args[0].reads(*args[1:4], False, True)


# ---- elementwise binary -----------------------------------------------------------------------
# Each op gives its forward to ``binary`` and, right below it, its local gradient
# ``(g, x, y, out, need_x, need_y) -> (gx, gy)`` at the broadcast shape, whose ``reads`` (same arguments)
# names the arrays it uses.

def add(a: Tensor, b) -> Tensor:
    """a + b;  d/da = 1, d/db = 1 (summed back over broadcast axes)."""
    return binary(a, b, operator.add, _add_backward)


def _add_backward(g, x, y, out, need_x, need_y):
    return g, g


_add_backward.reads = lambda x, y, out, need_x, need_y: ()


def sub(a: Tensor, b) -> Tensor:
    """a - b;  d/da = 1, d/db = -1."""
    return binary(a, b, operator.sub, _sub_backward)


def rsub(a: Tensor, b) -> Tensor:
    """b - a for a non-Tensor b (``2 - t``);  d/da = -1."""
    return binary(b, a, operator.sub, _sub_backward)


def _sub_backward(g, x, y, out, need_x, need_y):
    return g, (-g if need_y else None)


_sub_backward.reads = _add_backward.reads


def mul(a: Tensor, b) -> Tensor:
    """a * b;  d/da = b, d/db = a."""
    return binary(a, b, operator.mul, _mul_backward)


def _mul_backward(g, x, y, out, need_x, need_y):
    return (g * y if need_x else None), (g * x if need_y else None)


_mul_backward.reads = lambda x, y, out, need_x, need_y: (y,) * need_x + (x,) * need_y


def div(a: Tensor, b) -> Tensor:
    """a / b;  d/da = 1/b, d/db = -a/b² = -(a/b)/b."""
    return binary(a, b, operator.truediv, _div_backward, floating=True)


def rdiv(a: Tensor, b) -> Tensor:
    """b / a for a non-Tensor b (``10.0 / t``);  d/da = -b/a² = -out/a."""
    return binary(b, a, operator.truediv, _div_backward, floating=True)


def _div_backward(g, x, y, out, need_x, need_y):
    gx = g / y
    return gx, (-gx * out if need_y else None)


_div_backward.reads = lambda x, y, out, need_x, need_y: (y,) + (out,) * need_y


def rpow(a: Tensor, base) -> Tensor:
    """base ** a for a non-Tensor base (``2 ** t``);  d/da = base^a · ln(base) = out · ln(base) (0 where
    base = 0 and a ≥ 0, as PyTorch)."""
    return binary(base, a, _power, _rpow_backward)


def _power(x, y):
    """x ** y; an integer to a negative integer power is 1 for x = 1, ±1 for x = -1 and 0 otherwise, the
    quotient truncated as PyTorch's (NumPy raises)."""
    negative = y < 0
    if np.asarray(x).dtype.kind not in "iu" or y.dtype.kind not in "iu" or not np.any(negative):
        return x ** y
    out = x ** np.where(negative, 0, y)
    at_negative = np.where(x == 1, 1, np.where(x == -1, 1 - 2 * (y & 1), 0))
    return np.where(negative, at_negative, out).astype(out.dtype, copy=False)


def _rpow_backward(g, x, y, out, need_x, need_y):
    with np.errstate(divide="ignore", invalid="ignore"):
        local = out * np.log(x)
        if np.any(np.asarray(x) == 0):     # 0 ** y: d/dy is 0 for y >= 0 (as PyTorch; g·0 keeps a NaN g)
            local = np.where((np.asarray(x) == 0) & (y >= 0), 0, local).astype(local.dtype, copy=False)
        return None, g * local


_rpow_backward.reads = lambda x, y, out, need_x, need_y: (x, y, out)


def pow(a: Tensor, exponent) -> Tensor:
    """a ** p for a scalar p;  d/da = p·a^(p-1)."""
    if isinstance(exponent, Tensor) or not _is_number(exponent):
        raise TypeError(f"Tensor ** exponent needs a Python/NumPy scalar exponent, got {type(exponent).__name__}")
    p = _weak(exponent)
    ad = _cast(a.data, result_type(a.data, p))

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
        dt = result_type(x, y)
        x, y = _cast(x, dt), _cast(y, dt)
    if dt == _F32 or dt == _F64:
        return _core.matmul(x, y, trans_a=trans_a, trans_b=trans_b)
    return (x.T if trans_a else x) @ (y.T if trans_b else y)


def _adds_into_product(bias: Tensor, xd: np.ndarray, wd: np.ndarray) -> bool:
    """Whether ``linear`` can add ``bias`` into the array of x @ W: the product's dtype, and a shape that
    broadcasts to the product's without enlarging it."""
    bd, shape = bias.data, (xd.shape[0], wd.shape[1])
    try:
        return bd.dtype == result_type(xd, wd) and np.broadcast_shapes(bd.shape, shape) == shape
    except ValueError:                      # not broadcastable: add() says so
        return False


def _epilogue_bias(xd: np.ndarray, wd: np.ndarray, bias) -> np.ndarray | None:
    """The bias of x @ W + b as the kernels add it while they store each tile of the product (a vector of
    W's columns in the product's float dtype), or None where ``linear`` adds it itself."""
    if bias is None:
        return None
    bd, dt = bias.data, wd.dtype
    if (dt == _F32 or dt == _F64) and bd.dtype == dt and xd.dtype == dt and bd.shape == wd.shape[1:]:
        return bd
    return None


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
            _weight_gradient(ad, g, b) if b.requires_grad else None)


def _matmul_reads(args) -> list:
    """What _matmul_backward reads, for the in-place check (minidl.autograd): b only for a's gradient, a only
    for b's, as PyTorch saves them (x @ W with x a constant, then W changed in place, still has W's gradient)."""
    a, b, ad, bd = args
    return ([bd] if a.requires_grad else []) + ([ad] if b.requires_grad else [])


_matmul_backward.saved_arrays = _matmul_reads


def _weight_gradient(xd: np.ndarray, g: np.ndarray, weight: Tensor):
    """dW = xᵀ·g for y = x @ W: kept as a ``PendingProduct`` (applied by SGD as a GEMM epilogue, materialized
    by ``.grad``) when W is a leaf without hooks and the factors are smaller than dW; else an ndarray."""
    dt = xd.dtype
    if (weight._backward is None and not weight._hooks and (dt == _F32 or dt == _F64) and g.dtype == dt
            and weight._data.dtype == dt and PendingProduct.worth_deferring(xd.shape[0], xd.shape[1], g.shape[1])):
        return PendingProduct(xd, g, copy=False)         # the engine claims its factors as backward ends
    return _mm(xd, g, trans_a=True)


def _matmul_nd(a: Tensor, b: Tensor) -> Tensor:
    """The non-2-D cases with NumPy: vectors are promoted to matrices, batch dims broadcast."""
    ad, bd = a.data, b.data
    if ad.ndim == 0 or bd.ndim == 0:
        raise ValueError(f"matmul: 0-d operand (shapes {ad.shape} and {bd.shape}); use * for scalars")
    if ad.dtype != bd.dtype:
        dt = result_type(ad, bd)
        ad, bd = _cast(ad, dt), _cast(bd, dt)
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
    """Fused affine map y = x @ W + b for 2-D x (one node; b added by the GEMM as it stores each tile of x @ W,
    ``_core.matmul``'s bias epilogue, where b is a vector of W's float dtype; else in place after it, or, where
    b would change the product's dtype or broadcast it to a larger shape, by ``add``).

    dx = G·Wᵀ, dW = xᵀ·G (pending at small batch: ``_weight_gradient``), db = Σ_batch G.
    """
    if not isinstance(x, Tensor):
        x = as_tensor(x)
    xd, wd = x.data, weight._data          # weight.data would apply a deferred update: see below
    if xd.ndim != 2 or wd.ndim != 2:
        out = matmul(x, weight)
        return out if bias is None else add(out, bias)
    if xd.shape[1] != wd.shape[0]:
        raise ValueError(f"linear: input of shape {xd.shape} does not match weight of shape {wd.shape} "
                         f"(expects (batch, {wd.shape[0]}))")
    epilogue_bias = _epilogue_bias(xd, wd, bias)
    if bias is not None and epilogue_bias is None and not _adds_into_product(bias, xd, wd):
        return add(linear(x, weight), bias)  # (5, 2, n) + (2, n) failed in backward; a 0-d float64 promoted
    update = weight._update                 # SGD's, left for this product's pass over W (deferred_update)
    out = update.take_product(weight, xd, epilogue_bias) if update is not None and update.fusable_with(xd, wd) \
        else None
    if out is None:
        wd = weight.data
        out = _mm(xd, wd) if epilogue_bias is None else _core.matmul(xd, wd, bias=epilogue_bias)
    if bias is not None and epilogue_bias is None:
        out += bias.data

    w_read = wd if x.requires_grad else None       # only what backward reads: the in-place check (autograd)
    x_read = xd if weight.requires_grad else None  # looks at these, as PyTorch's saved tensors

    def backward(g):
        return (_mm(g, w_read, trans_b=True) if w_read is not None else None,
                _weight_gradient(x_read, g, weight) if x_read is not None else None,
                unbroadcast(g, bias._data.shape) if bias is not None and bias.requires_grad else None)
    return record(out, (x, weight) if bias is None else (x, weight, bias), backward)


# ---- reductions ------------------------------------------------------------------------------
def takes_dim(op):
    """Let ``op`` also take PyTorch's names ``dim=``/``keepdim=`` for ``axis=``/``keepdims=``, and the
    ``out=None`` that NumPy's functions pass on (``np.mean(t)`` calls ``t.mean(axis=None, dtype=None,
    out=None)``)."""
    @functools.wraps(op)
    def with_aliases(a, *args, **kwargs):
        if kwargs:
            for alias, name in (("dim", "axis"), ("keepdim", "keepdims")):
                if alias in kwargs:
                    if name in kwargs:
                        raise TypeError(f"{op.__name__}() got both {name}= and its alias {alias}=")
                    kwargs[name] = kwargs.pop(alias)
            if kwargs.pop("out", None) is not None:
                raise TypeError(f"{op.__name__}() does not take out=")
        return op(a, *args, **kwargs)
    return with_aliases


def _norm_axes(axis, shape: tuple) -> tuple:
    """``axis`` (None, an int or a sequence of ints) as a sorted tuple of non-negative axes of ``shape``.

    As PyTorch, a 0-d tensor takes axis 0 or -1 (reducing over nothing). An axis out of range raises
    NumPy's AxisError, an IndexError (PyTorch's type) and a ValueError, naming the shape.
    """
    ndim = len(shape)
    if axis is None:
        return tuple(range(ndim))
    if not isinstance(axis, (int, np.integer, tuple, list)):
        raise TypeError(f"axis must be an int or a tuple of ints, got {axis!r}")
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    rank = builtins.max(ndim, 1)
    norm = set()
    for ax in axes:
        if not isinstance(ax, (int, np.integer)) or isinstance(ax, bool):
            raise TypeError(f"axis must be an int or a tuple of ints, got {axis!r}")
        if not -rank <= ax < rank:
            raise np.exceptions.AxisError(f"axis {ax} is out of range for a tensor of shape {shape} "
                                          f"(expected in [{-rank}, {rank - 1}])")
        if int(ax) % rank in norm:
            raise ValueError(f"axis {int(ax) % rank} appears more than once in {axis!r}")
        norm.add(int(ax) % rank)
    return tuple(sorted(norm)) if ndim else ()


def _expand_back(g: np.ndarray, kept_shape: tuple, shape: tuple) -> np.ndarray:
    """Broadcast a reduced gradient back to the input ``shape`` (a read-only view).

    ``kept_shape`` is the reduction's shape with keepdims=True (size-1 axes where it reduced).
    """
    if g.shape != kept_shape:
        g = g.reshape(kept_shape)
    return np.broadcast_to(g, shape)


def _kept_shape(shape: tuple, axes: tuple) -> tuple:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _count(shape: tuple, axes: tuple) -> int:
    return math.prod(shape[ax] for ax in axes)


def _reduced_axes(axis, shape: tuple) -> tuple:
    """``_norm_axes`` for a reduction that, as PyTorch's sum/mean/var/std/amax, reads an empty list of axes
    (``dim=()``, ``dim=[]``) as all of them (NumPy's ``axis=()`` reduces over none)."""
    return _norm_axes(None if isinstance(axis, (tuple, list)) and not axis else axis, shape)


@takes_dim
def sum(a: Tensor, axis=None, keepdims: bool = False, dtype=None) -> Tensor:
    """Σ over axes (``dtype``: cast a first, as PyTorch);  d/da = 1 broadcast back to a's shape."""
    if dtype is not None:
        a = astype(a, dtype)
    ad = a.data
    axes = _reduced_axes(axis, ad.shape)
    out = ad.sum(axis=axes, keepdims=keepdims)
    shape = ad.shape
    return record(out, (a,), lambda g: (_expand_back(g, _kept_shape(shape, axes), shape),))


@takes_dim
def mean(a: Tensor, axis=None, keepdims: bool = False, dtype=None) -> Tensor:
    """Σ/n over axes (integers and bools give float32: ``(pred == y).mean()`` is the accuracy; PyTorch
    refuses them);  d/da = 1/n broadcast back. The mean over no elements is NaN, as PyTorch."""
    if dtype is not None:
        a = astype(a, dtype)
    ad = _floating(a.data)
    axes = _reduced_axes(axis, ad.shape)
    shape = ad.shape
    count = _count(shape, axes)
    with np.errstate(invalid="ignore"):
        out = ad.sum(axis=axes, keepdims=keepdims) / count

    def backward(g):
        with np.errstate(divide="ignore"):
            return (_expand_back(g / count, _kept_shape(shape, axes), shape),)
    return record(out, (a,), backward)


def _variance(ad: np.ndarray, axes: tuple, correction) -> tuple:
    """(a - mean, n - correction clipped at 0, Σ(a - mean)² / that with keepdims) over ``axes``."""
    n = _count(ad.shape, axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        dev = ad - ad.sum(axis=axes, keepdims=True) / n
        dof = builtins.max(n - correction, 0)
        return dev, dof, np.square(dev).sum(axis=axes, keepdims=True) / dof


def _correction(correction, ddof, unbiased) -> int:
    """NumPy's ``ddof`` and PyTorch's older ``unbiased`` (True: 1, False: 0) as ``correction``."""
    if ddof is not None:
        return ddof
    return correction if unbiased is None else int(bool(unbiased))


def _reduced(kept: np.ndarray, axes: tuple, keepdims: bool) -> np.ndarray:
    return kept if keepdims else kept.reshape([n for i, n in enumerate(kept.shape) if i not in axes])


@takes_dim
def var(a: Tensor, axis=None, keepdims: bool = False, correction=1, ddof=None, unbiased=None,
        dtype=None) -> Tensor:
    """Σ(a - ā)² / (n - correction); correction=1 (PyTorch's default: unbiased) or 0 (also as ``unbiased=``;
    NumPy's ``ddof`` and ``dtype`` are accepted, so ``np.var(t)`` is NumPy's);  d/da = 2(a - ā)/(n - correction).
    n ≤ correction gives NaN or inf, as PyTorch."""
    correction = _correction(correction, ddof, unbiased)
    ad = _floating(a.data if dtype is None else a.data.astype(dtype))
    axes = _reduced_axes(axis, ad.shape)
    dev, dof, kept = _variance(ad, axes, correction)

    def backward(g):
        with np.errstate(invalid="ignore", divide="ignore"):
            return (g.reshape(kept.shape) * (2 / dof if dof else np.inf) * dev,)
    return record(_reduced(kept, axes, keepdims), (a,), backward)


@takes_dim
def std(a: Tensor, axis=None, keepdims: bool = False, correction=1, ddof=None, unbiased=None,
        dtype=None) -> Tensor:
    """√var (see ``var``);  d/da = (a - ā) / ((n - correction)·std), 0 where std = 0 (as PyTorch)."""
    correction = _correction(correction, ddof, unbiased)
    ad = _floating(a.data if dtype is None else a.data.astype(dtype))
    axes = _reduced_axes(axis, ad.shape)
    dev, dof, variance = _variance(ad, axes, correction)
    kept = np.sqrt(variance)

    def backward(g):
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(kept == 0, 0, g.reshape(kept.shape) / (kept * dof))
        return (scale * dev,)
    return record(_reduced(kept, axes, keepdims), (a,), backward)


def _extremum(a: Tensor, axis, keepdims: bool, reduce, name: str) -> Tensor:
    ad = a.data
    axes = _reduced_axes(axis, ad.shape)
    if _count(ad.shape, axes) == 0:
        raise ValueError(f"{name}() over axis {axis} of an empty tensor of shape {ad.shape}")
    kept = reduce(ad, axis=axes, keepdims=True)

    def backward(g):
        mask = ad == kept
        if ad.dtype.kind == "f":
            nan = np.isnan(kept)
            if nan.any():
                mask |= np.isnan(ad) & nan
        mask = mask.astype(g.dtype)
        mask /= mask.sum(axis=axes, keepdims=True)
        mask *= g.reshape(kept.shape)
        return (mask,)
    return record(_reduced(kept, axes, keepdims), (a,), backward)


@takes_dim
def max(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Maximum over axes (NaN if any element is NaN, as PyTorch; PyTorch's values only, no indices);
    d/da = 1 at the maxima (split equally among ties; at the NaNs when the maximum is NaN), 0 elsewhere."""
    return _extremum(a, axis, keepdims, np.max, "max")


@takes_dim
def min(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Minimum over axes (see ``max``);  d/da = 1 at the minima (split equally among ties), 0 elsewhere."""
    return _extremum(a, axis, keepdims, np.min, "min")


def _arg_extremum(a: Tensor, axis, keepdims: bool, reduce, name: str) -> Tensor:
    ad = a.data
    if axis is None:
        if ad.size == 0:
            raise ValueError(f"{name}() of an empty tensor of shape {ad.shape}")
        out = reduce(ad.reshape(-1))
        if keepdims:
            out = np.reshape(out, (1,) * ad.ndim)
    else:
        if not isinstance(axis, (int, np.integer)):
            raise TypeError(f"{name}() takes one axis, got {axis!r}")
        (ax,) = _norm_axes(axis, ad.shape) or (None,)
        if ax is None:                      # a 0-d tensor: its one element
            out = np.zeros(())
        elif ad.shape[ax] == 0:
            raise ValueError(f"{name}() over axis {axis} of size 0 (tensor of shape {ad.shape})")
        else:
            out = reduce(ad, axis=ax, keepdims=keepdims)
    return Tensor._wrap(np.asarray(out, dtype=np.int64))


@takes_dim
def argmax(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Index of the maximum along ``axis`` (None: into the flattened tensor); the first among ties, a NaN
    counts as the maximum (as PyTorch). int64, no gradient."""
    return _arg_extremum(a, axis, keepdims, np.argmax, "argmax")


@takes_dim
def argmin(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Index of the minimum (see ``argmax``)."""
    return _arg_extremum(a, axis, keepdims, np.argmin, "argmin")


@takes_dim
def any(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """True where some element along the axes is nonzero (a bool tensor, no gradient)."""
    return Tensor._wrap(np.asarray(a.data.any(axis=_norm_axes(axis, a.data.shape), keepdims=keepdims)))


@takes_dim
def all(a: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """True where every element along the axes is nonzero (a bool tensor, no gradient)."""
    return Tensor._wrap(np.asarray(a.data.all(axis=_norm_axes(axis, a.data.shape), keepdims=keepdims)))


# ---- shape: every op here is a reshape, a permutation, or an index -------------------------------
def _shape_arg(shape) -> tuple:
    """``(2, 3)`` from ``reshape(2, 3)`` or ``reshape((2, 3))``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TypeError(f"a shape holds ints, got {shape!r}")
    return tuple(int(n) for n in shape)


def reshape(a: Tensor, shape: tuple) -> Tensor:
    """A view with a new shape where NumPy can make one (else a copy);  the gradient is reshaped back."""
    ad = a.data
    try:
        out = ad.reshape(shape)
    except ValueError as exc:
        raise ValueError(f"cannot reshape a tensor of shape {ad.shape} into shape {tuple(shape)}") from exc
    old = ad.shape
    return record(out, (a,), lambda g: (g.reshape(old),))


def view(a: Tensor, shape: tuple) -> Tensor:
    """``reshape`` that shares ``a``'s data (an in-place change to one shows in the other), as PyTorch's
    view: RuntimeError where the layout needs a copy (e.g. a transposed tensor)."""
    out = reshape(a, shape)
    if out.data.size and not np.may_share_memory(out.data, a.data):
        raise RuntimeError(f"view(): a tensor of shape {a.shape} and strides {a.data.strides} cannot be "
                           f"viewed as shape {tuple(shape)} without a copy; use .reshape(...) instead")
    return out


def flatten(a: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Axes start_dim..end_dim merged into one (all by default; a 0-d tensor becomes shape (1,))."""
    shape = a.data.shape
    if not shape:
        return reshape(a, (1,))
    (start,), (end,) = _norm_axes(start_dim, shape), _norm_axes(end_dim, shape)
    if start > end:
        raise ValueError(f"flatten(): start_dim {start_dim} comes after end_dim {end_dim} (shape {shape})")
    return reshape(a, shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])


@takes_dim
def unsqueeze(a: Tensor, axis: int) -> Tensor:
    """A size-1 axis inserted at ``axis`` (in [-ndim-1, ndim])."""
    shape = a.data.shape
    if isinstance(axis, (int, np.integer)) and not -len(shape) - 1 <= axis <= len(shape):
        raise np.exceptions.AxisError(f"unsqueeze: axis {axis} is out of range for a tensor of shape {shape} "
                                      f"(expected in [{-len(shape) - 1}, {len(shape)}])")
    (ax,) = _norm_axes(axis, shape + (1,))
    return reshape(a, shape[:ax] + (1,) + shape[ax:])


@takes_dim
def squeeze(a: Tensor, axis=None) -> Tensor:
    """The size-1 axes removed (all of them, or those of ``axis`` that have size 1: as PyTorch, naming an
    axis of another size is no error and leaves it)."""
    shape = a.data.shape
    axes = _norm_axes(axis, shape)
    return reshape(a, tuple(n for i, n in enumerate(shape) if not (i in axes and n == 1)))


def transpose(a: Tensor, axes=None) -> Tensor:
    """Permute axes (None: reverse);  the gradient is permuted back by the inverse permutation."""
    ad = a.data
    if axes is not None:
        if len(axes) != ad.ndim:
            raise ValueError(f"transpose: axes {tuple(axes)} do not fit a tensor of shape {ad.shape}")
        axes = tuple(_norm_axes(ax, ad.shape)[0] for ax in axes)
        if sorted(axes) != list(range(ad.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of the axes of a tensor "
                             f"of shape {ad.shape}")
    out = ad.transpose(axes)
    return record(out, (a,), lambda g: (g.transpose(None if axes is None else tuple(np.argsort(axes))),))


def _index(index):
    """An index with its Tensors (a mask, integer indices; also inside a tuple) as their arrays; a list is
    one advanced index, as in PyTorch (``t[[i, j]]``, its entries 0-d tensors or numbers). A float index
    is refused as in PyTorch, saying why: ``mdl.tensor([0, 2])`` is float32 here (the dtype rule for lists),
    where ``torch.tensor([0, 2])`` is int64 (indices taken from floats would read a float mask, ``x[m.float()]``,
    as a gather of rows 0 and 1)."""
    if isinstance(index, Tensor):
        return _integral(index.data)
    if isinstance(index, tuple):
        return tuple(_integral(i.data) if isinstance(i, Tensor) else _list_index(i) if isinstance(i, list) else i
                     for i in index)
    if isinstance(index, list):
        return _list_index(index)
    return index


def _list_index(index: list) -> np.ndarray:
    if not index:               # NumPy's empty array is float64; PyTorch's t[[]] selects nothing (shape (0, ...))
        return np.zeros(0, dtype=np.intp)
    return _integral(np.asarray([i.data if isinstance(i, Tensor) else i for i in index]))


def _integral(index: np.ndarray) -> np.ndarray:
    if index.dtype.kind == "f":
        raise IndexError(f"tensors used as indices must be integer or bool, got {index.dtype} (mdl.tensor([0, 2]) "
                         f"is float32 here: write mdl.tensor([0, 2], dtype=np.int64), or a bool mask as is)")
    return index


def _is_int(i) -> bool:
    """An integer index: a Python or NumPy int, or a 0-d integer array (not a bool: that adds an axis)."""
    return (isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_))) or \
        (isinstance(i, np.ndarray) and i.ndim == 0 and i.dtype.kind in "iu")


def _ints_first(index):
    """``(select, rest)`` where PyTorch reads ``index`` differently from NumPy, else None: ``select`` holds its
    integers (each other entry a full slice of the axes it indexes), ``rest`` the other entries. PyTorch
    takes the integers first (a select each) and then the rest; NumPy counts them among the advanced
    indices when arrays are there too, so ``x[0, :, i]`` put i's axis first: (len(i), n) where PyTorch gives
    (n, len(i)). ``x[select][rest]`` is PyTorch's reading. An index with a bool scalar is left to NumPy (as
    PyTorch reads it)."""
    if type(index) is not tuple:
        return None
    for i in index:                         # the usual index has no array: one quick pass
        if type(i) is np.ndarray and i.ndim:
            break
    else:
        return None
    if not builtins.any(map(_is_int, index)) or builtins.any(isinstance(i, (bool, np.bool_)) for i in index):
        return None
    ints, rest = [], []
    for i in index:
        if _is_int(i):
            ints.append(int(i))                 # a 0-d array as an int: a view, for setitem to write through
        elif i is None:
            rest.append(i)
        else:
            ints.extend([slice(None)] * (i.ndim if isinstance(i, np.ndarray) and i.dtype == bool else 1)
                        if i is not Ellipsis else [Ellipsis])
            rest.append(i)
    return tuple(ints), tuple(rest)


def getitem(a: Tensor, index) -> Tensor:
    """``a[index]`` (basic or advanced indexing, integers taken first as PyTorch: ``_ints_first``);  the
    gradient is scattered back with np.add.at."""
    index = _index(index)
    split = _ints_first(index)
    if split is not None:
        return getitem(getitem(a, split[0]), split[1])
    ad = a.data
    out = ad[index]
    shape, dtype = ad.shape, ad.dtype           # not ad: backward reads no value of a (a may change in place)

    def backward(g):
        full = np.zeros(shape, dtype)
        np.add.at(full, index, g)
        return (full,)
    return record(out, (a,), backward)


def setitem(a: Tensor, index, value) -> None:
    """``a[index] = value`` in a's buffer (value cast to a's dtype where NumPy's same-kind rule allows), for
    a tensor outside any graph, as in PyTorch (``t[mask] = 0``); with grad mode on, a tensor that requires
    grad, or a value that does, is refused: build the result out of place (``mdl.where``, ``mdl.cat``)."""
    value_requires_grad = isinstance(value, Tensor) and value.requires_grad
    if _grad_mode.enabled and (a.requires_grad or value_requires_grad):
        raise RuntimeError(f"item assignment into a tensor of shape {a.shape} with gradients involved is not "
                           f"recorded: use mdl.where(mask, value, t) or mdl.cat to build the result, or assign "
                           f"under `with mdl.no_grad():`")
    ad, index = a.data, _index(index)
    split = _ints_first(index)
    if split is not None:
        ad, index = ad[split[0]], split[1]          # a view: the write lands in a's buffer
    try:
        ad[index] = np.asarray(value.data if isinstance(value, Tensor) else value).astype(
            ad.dtype, casting="same_kind", copy=False)
    except TypeError as exc:
        raise TypeError(f"t[...] = value: the value cannot be stored in a tensor of dtype {ad.dtype} ({exc})") from exc
    note_in_place((ad,), "item assignment")


def _bitwise(ufunc):
    """``& | ^`` of bool or integer tensors, elementwise, a Tensor without gradient; float: TypeError (as
    PyTorch)."""
    def method(a: Tensor, b):
        y = np.asarray(b.data if isinstance(b, Tensor) else b)
        if y.dtype.kind == "O":
            return NotImplemented
        if a.data.dtype.kind not in "biu" or y.dtype.kind not in "biu":
            _bitwise_error(ufunc, a.data.dtype, y.dtype)
        return Tensor._wrap(np.asarray(ufunc(a.data, y)))
    method.__name__ = f"__{ufunc.__name__}__"
    return method


def _bitwise_error(ufunc, *dtypes):
    raise TypeError(f"{ufunc.__name__} needs bool or integer tensors, got {' and '.join(map(str, dtypes))}")


def invert(a: Tensor) -> Tensor:
    """``~a``: logical not of a bool tensor, bitwise not of an integer one; no gradient."""
    if a.data.dtype.kind not in "biu":
        _bitwise_error(np.invert, a.data.dtype)
    return Tensor._wrap(np.asarray(np.invert(a.data)))


def astype(a: Tensor, dtype) -> Tensor:
    """``a`` converted to ``dtype`` (``a`` itself when it has it already, as PyTorch's ``to``);  d/da = 1,
    cast back to a's dtype. A cast to an integer or bool dtype carries no gradient (as PyTorch)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and dtype not in _FLOAT_DTYPES:
        raise TypeError(f"minidl tensors hold float32 or float64, not {dtype}")
    if dtype.kind not in "biuf":
        raise TypeError(f"cannot convert a tensor to dtype {dtype}")
    ad = a.data
    if ad.dtype == dtype:
        return a
    if dtype.kind != "f":
        return Tensor._wrap(ad.astype(dtype))
    return record(ad.astype(dtype), (a,), _identity_backward)


def _identity_backward(g):
    return (g,)


# ---- joining and selecting ---------------------------------------------------------------------
def _tensors(seq, name: str) -> list:
    if isinstance(seq, Tensor) or not isinstance(seq, (list, tuple)):
        raise TypeError(f"{name}() takes a list or tuple of tensors, got {type(seq).__name__}")
    if not seq:
        raise ValueError(f"{name}() of an empty sequence")
    tensors = [as_tensor(t) for t in seq]
    dtype = result_type(*tensors)
    return [astype(t, dtype) for t in tensors]


@takes_dim
def cat(tensors, axis: int = 0) -> Tensor:
    """The tensors joined along an existing axis (dtypes promoted, as PyTorch);  each gets its slice of
    the gradient."""
    tensors = _tensors(tensors, "cat")
    shapes = [t.data.shape for t in tensors]
    if not shapes[0]:
        raise ValueError("cat(): 0-d tensors cannot be concatenated (use stack)")
    (ax,) = _norm_axes(axis, shapes[0])
    if builtins.any(len(s) != len(shapes[0]) or s[:ax] + s[ax + 1:] != shapes[0][:ax] + shapes[0][ax + 1:]
                    for s in shapes):
        raise ValueError(f"cat(): shapes {shapes} differ outside axis {axis}")
    out = np.concatenate([t.data for t in tensors], axis=ax)
    ends = np.cumsum([s[ax] for s in shapes])[:-1]

    def backward(g):
        return tuple(part if t.requires_grad else None for part, t in zip(np.split(g, ends, axis=ax), tensors))
    return record(out, tuple(tensors), backward)


@takes_dim
def stack(tensors, axis: int = 0) -> Tensor:
    """The tensors (of one shape) stacked along a new axis;  each gets its slice of the gradient."""
    tensors = _tensors(tensors, "stack")
    shapes = [t.data.shape for t in tensors]
    if builtins.any(s != shapes[0] for s in shapes):
        raise ValueError(f"stack(): tensors of different shapes {shapes}")
    (ax,) = _norm_axes(axis, shapes[0] + (1,))
    out = np.stack([t.data for t in tensors], axis=ax)

    def backward(g):
        return tuple(np.take(g, i, axis=ax) if t.requires_grad else None for i, t in enumerate(tensors))
    return record(out, tuple(tensors), backward)


def where(condition, a, b) -> Tensor:
    """``a`` where ``condition`` (a bool tensor or array) holds, else ``b``, all three broadcast (a and b
    promoted, as PyTorch);  d/da = condition, d/db = not condition."""
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != np.bool_:
        raise TypeError(f"where(): the condition must be a bool tensor, got dtype {cond.dtype}")
    dtype = result_type(*[x if _is_number(x) else as_tensor(x) for x in (a, b)])
    a, b = (Tensor._wrap(np.asarray(_weak(x), dtype=dtype)) if _is_number(x) else astype(as_tensor(x), dtype)
            for x in (a, b))
    try:
        out = np.where(cond, a.data, b.data)
    except ValueError as exc:
        raise _broadcast_error("where", cond.shape, a.shape, b.shape) from exc

    a_shape, b_shape = a.shape, b.shape      # now: a backward may run after a or b was replaced by `op=`

    def backward(g):
        return (unbroadcast(np.where(cond, g, 0), a_shape) if a.requires_grad else None,
                unbroadcast(np.where(cond, 0, g), b_shape) if b.requires_grad else None)
    return record(out, (a, b), backward)


# ---- elementwise unary ------------------------------------------------------------------------
# Integer and bool inputs give float32 where the result is a real number (as PyTorch).
def exp(a: Tensor) -> Tensor:
    """eᵃ;  d/da = eᵃ = out."""
    out = np.exp(_floating(a.data))
    return record(out, (a,), lambda g: (g * out,))


def log(a: Tensor) -> Tensor:
    """ln a;  d/da = 1/a."""
    ad = _floating(a.data)
    out = np.log(ad)
    return record(out, (a,), lambda g: (g / ad,))


def sqrt(a: Tensor) -> Tensor:
    """√a;  d/da = 1/(2√a) = 1/(2·out) (inf at 0, as PyTorch)."""
    out = np.sqrt(_floating(a.data))

    def backward(g):
        with np.errstate(divide="ignore"):
            return (g / (2 * out),)
    return record(out, (a,), backward)


def _sign_or_zero(values: np.ndarray) -> np.ndarray:
    """sign(values) with 0 at NaN (PyTorch's sgn; NumPy's sign is NaN there)."""
    sign = np.asarray(np.sign(values))         # of a 0-d array NumPy gives a scalar, not writable in place
    if sign.dtype.kind == "f":
        np.nan_to_num(sign, copy=False, nan=0.0)
    return sign


def abs(a: Tensor) -> Tensor:
    """|a|;  d/da = sign(a) (0 at 0 and at NaN, as PyTorch)."""
    ad = a.data
    return record(np.abs(ad), (a,), lambda g: (g * _sign_or_zero(ad),))


def clamp(a: Tensor, min=None, max=None) -> Tensor:
    """a limited to [min, max] (either bound may be None; max wins where min > max; NaN stays NaN: as
    PyTorch's clamp), bounds are numbers;  d/da = 1 where min < a < max, else 0 (0 at a bound, as PyTorch
    2.14 and as relu at 0: ``t.clamp(min=0)`` and ``t.relu()`` have one gradient)."""
    low, high = min, max
    if low is None and high is None:
        raise ValueError("clamp() needs min= or max= (or both)")
    for bound in (low, high):
        if bound is not None and not _is_number(bound):
            raise TypeError(f"clamp() bounds are numbers, got {type(bound).__name__}")
    low, high = (None if x is None else _weak(x) for x in (low, high))
    ad = _cast(a.data, result_type(a.data, *[x for x in (low, high) if x is not None]))
    out = ad if low is None else np.maximum(ad, low)
    out = out if high is None else np.minimum(out, high)
    if out is ad:
        out = ad.copy()

    def backward(g):
        inside = np.ones(ad.shape, dtype=bool) if low is None else ad > low
        if high is not None:
            inside &= ad < high
        return (_activations.passed_where(inside, g),)
    return record(out, (a,), backward)


def activation(a: Tensor, act) -> Tensor:
    """z = f(a) for an entry (or name) of the activation registry ``minidl.activations``;
    d/da = f'(a), computed by the entry's ``backward(g, a, z)`` (sigmoid: fused in minidl._core)."""
    act = _activations.get(act)
    if not isinstance(a, Tensor):       # an ndarray's .data is a memoryview: nn.ReLU()(array) failed on it
        a = as_tensor(a)
    ad = a.data
    if ad.dtype != _F32 and ad.dtype != _F64 and not (act.keeps_integers and ad.dtype.kind in "iu"):
        ad = ad.astype(_F32)
    out = act.forward(ad)
    if type(out) is not np.ndarray:     # ufuncs on 0-d arrays return NumPy scalars
        out = np.asarray(out)
    return record(out, (a,), _activation_backward, act, ad, out)


def _activation_backward(act, ad, out, g):
    return (act.backward(g, ad, out),)


_activation_backward.saved_arrays = lambda args: [array for name, array in zip("sz", args[1:3])
                                                  if name in args[0].backward_reads]


def sigmoid(a: Tensor) -> Tensor:
    """σ(a) = 1/(1+e⁻ᵃ) (minidl._core, stable);  d/da = σ(a)(1-σ(a)) = out·(1-out), fused."""
    return activation(a, _SIGMOID)


def tanh(a: Tensor) -> Tensor:
    """tanh a;  d/da = 1 - tanh² a = 1 - out²."""
    return activation(a, _TANH)


def relu(a: Tensor) -> Tensor:
    """max(a, 0);  d/da = 1 where a > 0 else 0 (0 at a = 0, 1 at NaN, as PyTorch)."""
    return activation(a, _RELU)


def softsign(a: Tensor) -> Tensor:
    """a / (1 + |a|) (Glorot & Bengio 2010);  d/da = 1 / (1 + |a|)²."""
    return activation(a, _SOFTSIGN)


# ---- comparisons: elementwise, a bool tensor, no gradient ----------------------------------------
def _comparison(compare):
    def method(a: Tensor, b):
        if isinstance(b, Tensor):
            y = b.data
        elif _is_number(b):
            y = _weak(b)
        else:
            try:
                y = _to_array(b)
            except TypeError:
                return NotImplemented       # t == None is False, as PyTorch; t < None a TypeError
        x = a.data
        if (x.dtype.kind != "f" or isinstance(y, np.ndarray) and y.dtype != x.dtype) and \
                x.dtype.kind in _CATEGORY and np.asarray(y).dtype.kind in _CATEGORY:
            dtype = result_type(x, y)       # as arithmetic: float32 == float64 (0-d) compares in float32
            x = _cast(x, dtype)
            if isinstance(y, np.ndarray):
                y = _cast(y, dtype)
        try:
            return Tensor._wrap(np.asarray(compare(x, y)))
        except ValueError as exc:
            raise _broadcast_error(compare.__name__, a.data.shape, np.shape(y)) from exc
    method.__name__ = f"__{compare.__name__}__"
    method.__doc__ = (f"Elementwise ``{compare.__name__}`` (NumPy broadcasting) in the dtype arithmetic would give "
                      f"(``result_type``): a bool tensor, no gradient.")
    return method


# ---- in place: t += x, -=, *=, /= ---------------------------------------------------------------
def _in_place(op, ufunc, symbol: str):
    """``t op= x`` as the contract says (PyTorch's semantics, except that on a non-leaf in a graph
    the result is a new tensor: values and gradients as if written out of place).

    Grad mode off, or no gradient involved: ``t.data`` is overwritten (same object, same buffer; the
    result cast to t's dtype where NumPy's same-kind rule allows, else TypeError), and the write is logged:
    a graph recorded earlier whose backward saved those values raises in ``backward()`` (PyTorch's version
    counters; ``minidl.autograd``). With grad mode on: a
    leaf that requires grad raises RuntimeError; a non-leaf gives ``op(t, x)``; a tensor that requires no
    grad, with an ``x`` that does, takes the values and joins the graph (no longer a leaf), as in PyTorch,
    unless x's graph reads t (RuntimeError, see ``_graph_reads``).
    """
    def method(t: Tensor, x):
        if _grad_mode.enabled and (t.requires_grad or (isinstance(x, Tensor) and x.requires_grad)):
            if t.requires_grad:
                if t._backward is None:
                    raise RuntimeError(
                        f"a leaf tensor that requires grad (shape {t.shape}) is being used in an in-place "
                        f"operation; wrap the update in `with mdl.no_grad():` or write `t = t {symbol} x`")
                _refuse_a_view_of_a_leaf(t, symbol)
                result = op(t, x)
                _refuse_a_larger_result(t, result, symbol)
                if result.dtype != t.dtype:           # in place keeps t's dtype, as PyTorch (float32 += float64)
                    if not np.can_cast(result.dtype, t.dtype, casting="same_kind"):
                        raise TypeError(f"{symbol}=: the result (dtype {result.dtype}) cannot be stored in a "
                                        f"tensor of dtype {t.dtype}")
                    result = astype(result, t.dtype)
                _retire(t, result, symbol)
                return result
            if _shares_its_base(t.data):
                raise RuntimeError(
                    f"{symbol}=: this tensor (shape {t.shape}) is a view of an array that something else holds (a "
                    f"tensor it was sliced or reshaped from), which would change without recording the gradient "
                    f"of the right-hand side; write `t = t {symbol} x`, or build the whole tensor out of place")
            if _graph_reads(x, t.data):
                raise RuntimeError(
                    f"{symbol}=: the graph of the right-hand side reads this tensor (shape {t.shape}), so changing "
                    f"it in place would corrupt the gradients; write `t = t {symbol} x`")
            result = op(Tensor._wrap(t.data.copy()), x)
            _refuse_a_larger_result(t, result, symbol)
            _overwrite(t, result.data, np.copyto, symbol)
            t.requires_grad, t._parents, t._backward = True, result._parents, result._backward
            t._writes_seen = result._writes_seen
            return t
        y = x.data if isinstance(x, Tensor) else _weak(x) if _is_number(x) else _to_array(x)
        _overwrite(t, y, ufunc, symbol)
        return t
    method.__name__ = f"__i{op.__name__}__"
    return method


def _view_bases(t: Tensor):
    """The tensors ``t`` is a view of (indexing, reshape, transpose...), nearest first: at each step the
    parent whose data the current tensor's data lies in."""
    while True:
        t = next((parent for parent in t._parents if np.may_share_memory(parent._data, t._data)), None)
        if t is None:
            return
        yield t


def _refuse_a_larger_result(t: Tensor, result: Tensor, symbol: str) -> None:
    """PyTorch's error for ``t op= x`` where x broadcasts t to a larger shape: t cannot hold the result."""
    if result.shape != t.shape:
        raise ValueError(f"{symbol}=: a tensor of shape {t.shape} cannot hold the result of shape {result.shape} "
                         f"(its operands broadcast to a larger shape)")


def _refuse_a_view_of_a_leaf(t: Tensor, symbol: str) -> None:
    """PyTorch's error for ``w[0] += x`` (a view of a leaf that requires grad, grad mode on)."""
    for base in _view_bases(t):
        if base.requires_grad and base._backward is None:
            raise RuntimeError(f"{symbol}=: a view of a leaf tensor that requires grad (shape {base.shape}) is being "
                               f"used in an in-place operation; write `t = t {symbol} x`")


class _ChangedInPlace:
    """In the ``_update`` slot of a tensor that ``t op= x`` replaced (``_retire``): reading its values
    (``.data``, any op, printing) raises instead of giving the values from before the change. It takes the
    slot of a deferred SGD update (``minidl.deferred_update``), which only leaves hold."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message

    def settle(self, tensor) -> None:
        raise RuntimeError(self.message)

    discard = settle                    # replacing its values (load_state_dict) is a read of the old ones too

    def fusable_with(self, x, w) -> bool:
        return False


def _retire(t: Tensor, result: Tensor, symbol: str) -> None:
    """``t op= x`` on a tensor in a graph gives ``result``, a new tensor, and the name on the left now holds
    it; PyTorch instead changes t itself, and every view of it. So t, and each tensor t is a view of (the
    ``buf`` of ``row = buf[0]; row += w``), keeps its old values: any later read of them raises, naming the
    change, instead of reading those (a list, a second name, a caller's variable, ``buf``). Reads by the
    graph recorded before the change need no values (the engine reads shapes) and stay allowed. Not
    covered: views taken of t before the change (``v = h[0]; h += 1``: v keeps the old row), since a tensor
    does not know its views."""
    result._retains_grad = result._retains_grad or t._retains_grad     # h.retain_grad(); h += 1: as PyTorch
    _refuse_reads(t, f"this tensor (shape {t.shape}) was changed in place by `{symbol}=`, which minidl records as "
                     f"a new tensor, now held by the name that `{symbol}=` assigned; this object kept its old values "
                     f"(PyTorch would have changed them), so reading it is refused: use the new tensor, or write "
                     f"`y = t {symbol} x`")
    for base in _view_bases(t):
        _refuse_reads(base, f"a view of this tensor (shape {base.shape}) was changed in place by `{symbol}=`, which "
                            f"minidl records as a new tensor for the view alone; this one kept its old values "
                            f"(PyTorch would have changed them), so reading it is refused: build the whole tensor "
                            f"out of place (mdl.where, mdl.cat)")


def _refuse_reads(t: Tensor, message: str) -> None:
    if t._update is None:
        t._update = _ChangedInPlace(message)


def _shares_its_base(array: np.ndarray) -> bool:
    """Whether ``array`` is a view of an array that something besides its views holds (a tensor)."""
    return array.base is not None and sys.getrefcount(array.base) > _ARRAY_HELD_ONLY_BY_ITS_VIEWS


def _references_held_only_by_a_view() -> int:
    """``sys.getrefcount`` of an ndarray's ``.base`` in ``_shares_its_base`` when only the view holds it
    (measured: the interpreter's own references differ between Python versions)."""
    view = np.empty(2)[1:]
    return sys.getrefcount(view.base)


def _graph_reads(root: Tensor, buffer: np.ndarray) -> bool:
    """True if ``root`` or a tensor of its graph holds data that may share memory with ``buffer``: the
    backward closures may have saved it. Conservative (PyTorch's version counters flag only saved values)."""
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if np.may_share_memory(node._data, buffer):     # _data: a graph may hold tensors retired by `op=`
            return True
        stack.extend(node._parents)
    return False


def _overwrite(t: Tensor, y, ufunc, symbol: str) -> None:
    """``t.data = ufunc(t.data, y)`` in t's own buffer (np.copyto: ``t.data = y``)."""
    td = t.data
    try:
        if ufunc is np.copyto:
            np.copyto(td, y, casting="same_kind")
        else:
            ufunc(td, y, out=td, casting="same_kind")
    except TypeError as exc:
        raise TypeError(f"{symbol}=: the result (dtype {_result_dtype(ufunc, td, y)}) cannot be stored in a "
                        f"tensor of dtype {td.dtype}") from exc
    except ValueError as exc:
        if not td.flags.writeable:
            raise ValueError(f"{symbol}=: the array of this tensor (shape {td.shape}) is read-only (a broadcast "
                             f"or read-only NumPy array it wraps); copy it first") from exc
        raise ValueError(f"{symbol}=: a tensor of shape {td.shape} cannot hold the result of shapes "
                         f"{td.shape} and {np.shape(y)} broadcast ({exc})") from exc
    note_in_place((td,), f"`{symbol}=`")


def _result_dtype(ufunc, td: np.ndarray, y) -> np.dtype:
    """The dtype of ``ufunc(td, y)`` (np.copyto: of y cast to td's), for _overwrite's message: np.result_type
    gives int64 for int64 / 2, where true division gives float64."""
    if ufunc is np.copyto:
        return np.result_type(td, y)
    return np.asarray(ufunc(td.ravel()[:1], y if np.ndim(y) == 0 else np.asarray(y).ravel()[:1])).dtype


_ARRAY_HELD_ONLY_BY_ITS_VIEWS = _references_held_only_by_a_view()


# ---- Tensor's operators and op methods ---------------------------------------------------------
# Attached here, once every op exists, so that minidl.tensor never imports minidl.ops.
def _rmatmul(a: Tensor, b) -> Tensor:
    """b @ a for a non-Tensor b (``ndarray @ t``)."""
    return matmul(as_tensor(b, a), a)


def clone(a: Tensor) -> Tensor:
    """A copy with its own buffer, in the graph (PyTorch's ``clone``);  d/da = 1."""
    return record(a.data.copy(), (a,), _identity_backward)


def _reshape_method(self: Tensor, *shape) -> Tensor:
    """A tensor of a new shape (``reshape(2, 3)`` or ``reshape((2, 3))``; one -1 allowed)."""
    return reshape(self, _shape_arg(shape))


def _view_method(self: Tensor, *shape) -> Tensor:
    """A view of a new shape (``view(2, 3)`` or ``view((2, 3))``): shares the data (see ``view``)."""
    return view(self, _shape_arg(shape))


def _transpose_method(self: Tensor, *axes) -> Tensor:
    """``t.transpose()``: axes reversed; ``t.transpose(i, j)``: axes i and j swapped (PyTorch);
    ``t.transpose(perm)`` or ``t.permute(*perm)``: any permutation (NumPy)."""
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    elif len(axes) == 2 and not self.data.ndim:      # a 0-d tensor swaps dims 0/-1 with themselves (PyTorch)
        _norm_axes(axes[0], ()), _norm_axes(axes[1], ())
        return transpose(self, None)
    elif len(axes) == 2:
        shape = self.data.shape
        (i,), (j,) = _norm_axes(axes[0], shape), _norm_axes(axes[1], shape)
        order = list(range(len(shape)))
        order[i], order[j] = order[j], order[i]
        axes = tuple(order)
    return transpose(self, axes or None)


def _permute_method(self: Tensor, *axes) -> Tensor:
    """The axes in the order given (``permute(2, 0, 1)``)."""
    return transpose(self, _shape_arg(axes))


def _T(self: Tensor) -> Tensor:
    """The transpose (axes reversed)."""
    return transpose(self, None)


def _converter(dtype):
    def method(self: Tensor) -> Tensor:
        return astype(self, dtype)
    method.__doc__ = f"``astype({np.dtype(dtype).name})``."
    return method


_DEVICE_NAMES = ("cpu", "cuda", "mps", "xpu", "meta")


def _to(self: Tensor, *args, dtype=None, device=None, non_blocking: bool = False, copy: bool = False) -> Tensor:
    """PyTorch's ``t.to(device)``, ``t.to(dtype)``, ``t.to(other)`` and ``t.to(device, dtype)``. minidl runs on
    the CPU: a device other than "cpu" is a ValueError, and only the dtype can change (``astype``); ``self``
    when nothing changes, unless ``copy``. ``non_blocking`` is taken and has no effect."""
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.dtype
        elif isinstance(arg, str) and arg.split(":")[0] in _DEVICE_NAMES:
            device = arg
        else:
            dtype = arg
    if device is not None and str(device).split(":")[0] != "cpu":
        raise ValueError(f"minidl computes on the CPU only: cannot move a tensor to {device!r}")
    result = self if dtype is None else astype(self, dtype)
    return clone(result) if copy and result is self else result


def _cpu(self: Tensor) -> Tensor:
    """``self``: minidl's tensors live on the CPU (PyTorch's ``t.cpu()`` of a CPU tensor)."""
    return self


_COMPARISONS = {name: _comparison(getattr(operator, name)) for name in ("eq", "ne", "lt", "le", "gt", "ge")}

for _name, _method in {
        "__add__": add, "__radd__": add, "__sub__": sub, "__rsub__": rsub, "__mul__": mul, "__rmul__": mul,
        "__truediv__": div, "__rtruediv__": rdiv, "__pow__": pow, "__rpow__": rpow, "__neg__": neg,
        "__matmul__": matmul,
        "__rmatmul__": _rmatmul, "__getitem__": getitem, "__setitem__": setitem,
        "__and__": _bitwise(np.bitwise_and), "__rand__": _bitwise(np.bitwise_and), "__or__": _bitwise(np.bitwise_or),
        "__ror__": _bitwise(np.bitwise_or), "__xor__": _bitwise(np.bitwise_xor), "__rxor__": _bitwise(np.bitwise_xor),
        "__invert__": invert,
        "__iadd__": _in_place(add, np.add, "+"), "__isub__": _in_place(sub, np.subtract, "-"),
        "__imul__": _in_place(mul, np.multiply, "*"), "__itruediv__": _in_place(div, np.true_divide, "/"),
        **_COMPARISONS, **{f"__{name}__": method for name, method in _COMPARISONS.items()},   # t.eq(y) is t == y
        "sum": sum, "mean": mean, "max": max, "min": min, "var": var, "std": std,
        "argmax": argmax, "argmin": argmin, "any": any, "all": all,
        "reshape": _reshape_method, "view": _view_method, "flatten": flatten, "unsqueeze": unsqueeze,
        "squeeze": squeeze, "transpose": _transpose_method, "permute": _permute_method, "T": property(_T),
        "astype": astype, "float": _converter(np.float32), "double": _converter(np.float64), "clone": clone,
        "long": _converter(np.int64), "int": _converter(np.int32), "bool": _converter(np.bool_), "to": _to,
        "cpu": _cpu,
        "abs": abs, "__abs__": abs, "sqrt": sqrt, "clamp": clamp, "clip": clamp,
        "exp": exp, "log": log, "sigmoid": sigmoid, "tanh": tanh, "relu": relu, "softsign": softsign}.items():
    setattr(Tensor, _name, _method)
del _name, _method
