"""``Tensor``: a NumPy array plus what reverse-mode autodiff needs (``grad``, the recorded graph).

The ops and their gradients live in ``minidl.ops`` (forward and backward side by side), which also
attaches the operators (``+ - * / ** @``, unary ``-``, indexing, comparisons, ``+= -= *= /=``) and the
op methods (``sum``, ``mean``, ``max``, ``reshape``, ``exp``, ...) to ``Tensor``: imports flow one way,
ops imports tensor (``import minidl`` loads both). Tensors hash by identity (``==`` is elementwise).
The engine that runs ``backward`` lives in ``minidl.autograd``.

dtype rules (the public contract): float32/float64 ndarrays keep their dtype, other floating dtypes
become float32; Python numbers, lists and tuples become float32; integer and bool ndarrays keep their
dtype (class indices) but cannot require grad. Those are the only dtypes: a ``dtype=`` naming another
(float16, complex) and complex, str or object arrays are refused (TypeError).
"""
from __future__ import annotations

import warnings

import numpy as np

from minidl import autograd
from minidl._core import memory_pool
from minidl.pending_product import PendingProduct

__all__ = ["Tensor", "tensor"]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _tensor_dtype(dtype) -> np.dtype:
    """``dtype`` (a NumPy type, dtype or name) as a dtype a Tensor can hold: bool, an integer type, float32 or
    float64. Another one asked for by name (float16, complex, str) is a TypeError: no op computes in it."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf" or (dtype.kind == "f" and dtype not in _FLOAT_DTYPES):
        raise TypeError(f"minidl tensors hold bool, integer, float32 or float64 values, not {dtype}")
    return dtype


def _to_array(data, dtype=None, copy=False) -> np.ndarray:
    """Apply the dtype rules above to ``data`` (copying only when ``copy`` or a conversion needs it)."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.array(data, dtype=_tensor_dtype(dtype), copy=True if copy else None)
    if isinstance(data, np.generic):
        data = np.asarray(data)
    if isinstance(data, np.ndarray):
        if data.dtype.kind == "f" and data.dtype not in _FLOAT_DTYPES:
            return data.astype(np.float32)
        if data.dtype.kind not in "biuf":       # complex, str, dates, objects: every op would fail inside
            raise TypeError(f"cannot make a Tensor from an array of dtype {data.dtype} (minidl tensors hold bool, "
                            f"integer, float32 or float64 values)")
        return data.copy() if copy else data
    arr = np.asarray(data)
    if arr.dtype.kind in "iufb":
        return arr.astype(np.float32)
    raise TypeError(f"cannot make a Tensor from {type(data).__name__} (array dtype {arr.dtype})")


class _Size(int):
    """``t.size``: the element count (an int, as NumPy's), callable as PyTorch's ``t.size(dim=None)``:
    the shape, or the length of one (possibly negative) dimension."""

    def __new__(cls, count: int, shape: tuple):
        size = super().__new__(cls, count)
        size.shape = shape
        return size

    def __reduce__(self):                   # pickle and copy: it is an int with its shape
        return _Size, (int(self), self.shape)

    def __call__(self, dim=None):
        if dim is None:
            return self.shape
        rank = len(self.shape)
        if rank == 0:
            raise IndexError(f"size({dim!r}): a 0-d tensor has no dimensions")
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not -rank <= dim < rank:
            raise IndexError(f"size({dim!r}): a tensor of shape {self.shape} has dimensions {-rank}..{rank - 1}")
        return self.shape[dim]


class Tensor:
    """An n-dimensional array that records the operations applied to it for ``backward()``.

    Args:
        data: ndarray (wrapped without a copy when its dtype is kept), number, list, or Tensor.
        requires_grad: make this a leaf whose ``.grad`` receives gradients.
        dtype: optional dtype to convert to.
    """

    __slots__ = ("_data", "_update", "_grad", "requires_grad", "_parents", "_backward", "_hooks", "_retains_grad",
                 "_writes_seen")
    __array_ufunc__ = None      # make `ndarray + Tensor` call Tensor.__radd__ instead of NumPy
    __array_priority__ = 1000

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _to_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad (got dtype {self.data.dtype})")
        self._grad = None
        self.requires_grad = bool(requires_grad)
        self._parents = ()
        self._backward = None
        self._hooks = None
        self._retains_grad = False

    # ---- the values ---------------------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        """The ndarray of values. A parameter whose SGD update was left for its next forward product
        (``minidl.deferred_update``) gets that update here first, so no reader sees it stale."""
        update = self._update
        if update is not None:
            update.settle(self)
        return self._data

    @data.setter
    def data(self, value) -> None:
        """New values (an ndarray is kept as it is, as PyTorch's ``t.data = x``; a Tensor gives its array,
        anything else goes through the dtype rules above)."""
        self._update = None
        self._data = value if type(value) is np.ndarray else _to_array(value)

    # ---- array-like properties (what an update leaves unchanged: no need to apply it) ----------
    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> "_Size":
        """Number of elements (NumPy's meaning, an int); called, PyTorch's: ``t.size()`` the shape,
        ``t.size(0)`` one dimension."""
        return _Size(self._data.size, self._data.shape)

    @property
    def is_leaf(self) -> bool:
        """True for tensors created by the user (not by an op that recorded a graph)."""
        return self._backward is None

    __hash__ = object.__hash__      # by identity, as PyTorch: == compares elementwise

    def __len__(self) -> int:
        if not self._data.ndim:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def __iter__(self):
        """The sub-tensors along the first axis (``self[i]``, in the graph); 0-d tensors are not iterable."""
        if not self.data.ndim:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __contains__(self, element) -> bool:
        """``x in t``: whether some element of t equals x, a number or a tensor (PyTorch's ``(t == x).any()``;
        without it Python iterated, comparing x with whole rows: ambiguous for a matrix, refused for 0-d)."""
        if not isinstance(element, (Tensor, int, float, np.number, np.bool_)):
            raise TypeError(f"`x in tensor` takes a number or a Tensor, got {type(element).__name__}")
        return bool((self == element).any())

    def __bool__(self) -> bool:
        """The truth of a one-element tensor; other sizes are ambiguous (RuntimeError, as PyTorch)."""
        if self.data.size != 1:
            what = "no values" if self.data.size == 0 else "more than one value"
            raise RuntimeError(f"Boolean value of a tensor with {what} (shape {self.data.shape}) is "
                               f"ambiguous; use .any() or .all()")
        return bool(self.data.item())

    def __repr__(self) -> str:
        try:
            data = self.data
        except RuntimeError as error:       # replaced by `t op= x` (minidl.ops._retire): say so, show no values
            return f"tensor(<{error}>)"
        body = np.array2string(data, separator=", ", prefix="tensor(")
        extra = ", requires_grad=True" if self.requires_grad else ""
        if data.dtype != np.float32:
            extra = f", dtype={data.dtype}" + extra
        if data.size == 0 and data.ndim != 1:          # `[]` alone does not say (2, 0) or (0, 3), as PyTorch's
            extra = f", size={data.shape}" + extra
        return f"tensor({body}{extra})"

    def __array__(self, dtype=None, copy=None):
        if dtype is None and not copy:
            return self.data
        return np.array(self.data, dtype=dtype, copy=True if copy else None)

    def numpy(self) -> np.ndarray:
        """The underlying ndarray (shared, not copied)."""
        return self.data

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.data.shape}")
        return self.data.item()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        """A one-element integer (or bool) tensor as an index: ``labels[logits.argmax()]``, ``range(n)``
        (PyTorch's; a float tensor is refused, as there)."""
        if self._data.dtype.kind not in "biu" or self._data.size != 1:
            raise TypeError(f"only integer tensors of a single element can be converted to an index (got dtype "
                            f"{self._data.dtype}, shape {self._data.shape})")
        return int(self.data.item())

    def tolist(self):
        """The values as (nested lists of) Python numbers; a 0-d tensor gives one number (PyTorch's)."""
        return self.data.tolist()

    def numel(self) -> int:
        """The number of elements (PyTorch's ``numel()``: ``sum(p.numel() for p in model.parameters())``)."""
        return self._data.size

    def dim(self) -> int:
        """The number of dimensions (PyTorch's ``dim()``; ``ndim`` as a property)."""
        return self._data.ndim

    def __format__(self, spec: str) -> str:
        """A 0-d tensor formats as its number (``f"{loss:.3f}"``), as in PyTorch."""
        if self._data.ndim == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Set ``requires_grad`` in place and return this tensor (PyTorch's; leaves only)."""
        if self._backward is not None and not requires_grad:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor (the result of an op): use "
                               "detach() to cut it from the graph")
        if requires_grad and self._data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad (got dtype {self._data.dtype})")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> "Tensor":
        """A new tensor sharing ``data`` and cut from the graph (requires_grad=False)."""
        return Tensor._wrap(self.data)

    @staticmethod
    def _wrap(data: np.ndarray) -> "Tensor":
        """Fast constructor for op results that need no graph (no dtype checks)."""
        t = _new_tensor(Tensor)
        t._data = data
        t._update = None
        t._grad = None
        t.requires_grad = False
        t._parents = ()
        t._backward = None
        t._hooks = None
        t._retains_grad = False
        return t

    # ---- autograd ---------------------------------------------------------------------------
    @property
    def grad(self):
        """The accumulated gradient: an ndarray of this tensor's shape, or None. A weight gradient that
        backward kept as a pending product (``minidl.pending_product``) is materialized on first read."""
        g = self._grad
        if type(g) is PendingProduct:
            g = self._grad = g.materialize()
        elif g is None and self._backward is not None and not self._retains_grad:
            warnings.warn("the .grad of a tensor that is not a leaf (the result of an op) is being read: backward() "
                          "fills only the .grad of leaves, so it is None. Call .retain_grad() on it before "
                          "backward() to keep its gradient, or read the .grad of the leaf (as PyTorch warns)",
                          UserWarning, stacklevel=2)
        return g

    @grad.setter
    def grad(self, value) -> None:
        """An ndarray of this tensor's shape with a floating dtype (optimizers read it in the parameter's
        dtype; backward adds into it), or None; a Tensor, as PyTorch assigns gradients, gives its array.
        Anything else is refused, as in PyTorch: backward would add into it (a list, a wrong shape: silently
        wrong values or shapes; an integer array: an error from inside)."""
        if value is None:
            self._grad = None
            return
        if isinstance(value, Tensor):
            value = value.data
        elif isinstance(value, np.generic):
            value = np.asarray(value)
        if type(value) is not np.ndarray:
            raise TypeError(f"a .grad is an ndarray or Tensor (or None), got {type(value).__name__}")
        if value.dtype not in _FLOAT_DTYPES:   # float16 would take every later gradient at its precision
            raise TypeError(f"a .grad holds float32 or float64 values, got dtype {value.dtype}")
        if value.shape != self._data.shape:
            raise ValueError(f"a tensor of shape {self._data.shape} cannot take a .grad of shape {value.shape}")
        self._grad = value if value.flags.writeable else value.copy()     # backward adds into it in place

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate the gradient of this tensor into the ``.grad`` of every leaf it depends on.

        ``grad`` (same shape as this tensor) is needed unless the tensor has a single element.
        The graph is freed afterwards unless ``retain_graph=True``.
        """
        if isinstance(grad, Tensor):
            grad = grad.data
        autograd.backward(self, grad, retain_graph)

    def register_hook(self, fn) -> "_RemovableHandle":
        """Call ``fn(grad)`` during backward once this tensor's gradient is complete.

        ``grad`` is an ndarray that must not be modified in place. If ``fn`` returns an array it
        replaces the gradient (as in PyTorch); returning None keeps it. On a leaf the hook sees the
        contribution of the current backward pass, before it is accumulated into ``.grad``.
        Returns a handle whose ``.remove()`` unregisters the hook.
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if self._hooks is None:
            self._hooks = {}
        return _RemovableHandle(self._hooks, fn)

    def retain_grad(self) -> None:
        """Make a non-leaf tensor keep its gradient in ``.grad`` after backward (leaves always do)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        if self._backward is not None:
            self._retains_grad = True

    def zero_grad(self) -> None:
        """Drop the accumulated gradient (``.grad = None``)."""
        self.grad = None

    # Operators and op methods (__add__, ..., sum, reshape, T, sigmoid, ...) are attached by minidl.ops.


_new_tensor = object.__new__


class _RemovableHandle:
    """Returned by hook registration; ``remove()`` unregisters the hook (idempotent)."""

    __slots__ = ("_hooks", "_key")
    _next_key = 0

    def __init__(self, hooks: dict, fn):
        _RemovableHandle._next_key += 1
        self._hooks = hooks
        self._key = _RemovableHandle._next_key
        hooks[self._key] = fn

    def remove(self) -> None:
        self._hooks.pop(self._key, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """Create a Tensor holding a *copy* of ``data`` (dtype rules in the module docstring), in memory aligned to
    64 bytes as PyTorch's CPU tensors are (``minidl._core.memory_pool``: a weight's rows then start on whole
    vectors for the GEMM, which reads a weight in place at small batch; ``Tensor(ndarray)`` keeps the
    ndarray's memory, as ``torch.from_numpy``)."""
    with memory_pool():
        array = _to_array(data, dtype, copy=True)
    return Tensor(array, requires_grad=requires_grad)
