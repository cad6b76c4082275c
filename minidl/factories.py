"""Tensors made from nothing: ``zeros``, ``ones``, ``rand``, ``randn``, ``arange`` (PyTorch's signatures).

Shapes are given as ``zeros(2, 3)`` or ``zeros((2, 3))``; the dtype is float32 unless given (``arange``
of ints only: int64, as PyTorch). Random draws come from minidl's one generator (``mdl.manual_seed``).
The values live in memory aligned to 64 bytes, as PyTorch's CPU tensors (see ``minidl.tensor``).
The differentiable joins ``cat``, ``stack`` and ``where`` are ops (``minidl.ops``).
"""
from __future__ import annotations

import math

import numpy as np

from minidl import random
from minidl._core import memory_pool
from minidl.tensor import Tensor, _tensor_dtype

__all__ = ["zeros", "ones", "rand", "randn", "arange"]


def _shape(shape: tuple, name: str) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TypeError(f"{name}(): a shape holds ints, got {shape!r}")
        if n < 0:
            raise ValueError(f"{name}(): negative dimension in shape {shape}")
    return tuple(int(n) for n in shape)


def _aligned(make, requires_grad: bool) -> Tensor:
    """A Tensor of the array ``make()`` allocates, in 64-byte aligned memory (the memory pool)."""
    with memory_pool():
        values = make()
    return Tensor(values, requires_grad=requires_grad)


def _default(dtype) -> np.dtype:
    """``dtype`` as a Tensor dtype; None is the default float32, as PyTorch's (NumPy's None is float64)."""
    return _tensor_dtype(np.float32 if dtype is None else dtype)


def zeros(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of the given shape."""
    return _aligned(lambda: np.zeros(_shape(shape, "zeros"), dtype=_default(dtype)), requires_grad)


def ones(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """A tensor of ones of the given shape."""
    return _aligned(lambda: np.ones(_shape(shape, "ones"), dtype=_default(dtype)), requires_grad)


def _float_dtype(dtype, name: str) -> np.dtype:
    dtype = np.dtype(np.float32 if dtype is None else dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{name}() draws float32 or float64, not {dtype}")
    return dtype


def rand(*shape, dtype=np.float32, requires_grad: bool = False, generator=None) -> Tensor:
    """Uniform draws from [0, 1) (minidl's generator unless ``generator`` is given)."""
    gen = generator if generator is not None else random.generator()
    return _aligned(lambda: gen.random(_shape(shape, "rand"), dtype=_float_dtype(dtype, "rand")), requires_grad)


def randn(*shape, dtype=np.float32, requires_grad: bool = False, generator=None) -> Tensor:
    """Standard normal draws (minidl's generator unless ``generator`` is given)."""
    gen = generator if generator is not None else random.generator()
    return _aligned(lambda: gen.standard_normal(_shape(shape, "randn"), dtype=_float_dtype(dtype, "randn")),
                    requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad: bool = False) -> Tensor:
    """start, start + step, ... up to (not including) end; ``arange(n)`` is 0..n-1. The dtype is int64 when
    every argument is an int, else float32 (as PyTorch); values are computed in float64 and then cast."""
    if end is None:
        start, end = 0, start
    for value in (start, end, step):
        if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
            raise TypeError(f"arange() takes numbers, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"arange() takes finite numbers, got {value}")
    if step == 0:
        raise ValueError("arange(): step must be nonzero")
    if (end - start) * step < 0:
        raise ValueError(f"arange(): end {end} cannot be reached from start {start} with step {step}")
    if dtype is None:
        integral = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if integral else np.float32
    dtype = _tensor_dtype(dtype)
    values = np.arange(start, end, step, dtype=np.float64 if dtype.kind == "f" else None)
    return _aligned(lambda: values.astype(dtype), requires_grad)
