"""Plain SGD's update of a weight, left on the weight until the next forward product reads it.

SGD changes a weight W (fan_in × fan_out) by ``W ← β·W + α·Xᵀ·dY`` (α = −lr, β = 1 − lr·weight_decay;
the gradient Xᵀ·dY kept pending by backward, ``minidl.pending_product``). Applied in ``step()`` that is a pass
over W, and the next forward product X'·W makes another. When nothing outside the parameter can see W's
array, ``optim.SGD`` leaves the update on the parameter instead (``defer``) and ``ops.linear`` hands it to
``_core.matmul_after_update``, which updates each block of W's rows right before the product reads it
back from L2: one pass over W from memory instead of two, the same numbers bit for bit (or, where that measured
slower, as its own GEMM right before the product: ``fusion``, ``minidl.timed_choice``). Every other read of
the parameter (``.data``, ``numpy()``, ``state_dict``, any other op) applies the update first
(``Tensor.data``), so no reader sees W without it. The 784-1000×5-10 step on the 2-core AVX-512 VM
(alternating blocks of steps in one process, ``ENABLED`` switched between them, median of 12 ratios per
run): batch 10 on 2 threads 4% and 9% faster than updating in ``step()``; batch 10 on 1 thread and batch 64
on 2 threads 4% slower by those ratios, as fast by the medians of the times. ``MINIDL_DEFERRED_UPDATES=0`` in the
environment turns deferring off (read at import): every update is applied in ``step()``, for comparison.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import weakref

import numpy as np

from minidl import _core
from minidl.pending_product import PendingProduct
from minidl.timed_choice import TimedChoice

__all__ = ["DeferredUpdate", "defer"]


class DeferredUpdate:
    """``W ← beta·W + alpha·product`` not yet applied, ``product`` a one-term PendingProduct xᵀ·dy.

    Applying it and clearing the tensor's slot happen under one lock, and the slot is cleared only once W
    has the update: a thread that finds the update pending waits for one that is applying it, so two
    threads reading a parameter (two forward passes at once) neither apply it twice nor see W half done.
    ``applied`` is set before the kernel that applies the update starts: Python runs a Ctrl-C's handler
    between bytecodes, at the latest as that call returns, which left W changed and the update unmarked (it
    was applied again on the next read: a checkpoint after a second Ctrl-C held W3 + (W3 - W2)); between the
    mark and the kernel's start no handler runs (a plain store, one call into the compiled core). The
    tensor's slot is cleared after the kernel, so a reader that comes meanwhile waits for the lock. A
    process forked while another thread applied it holds W half updated: there every read raises (``torn``)."""

    __slots__ = ("product", "alpha", "beta", "applied", "torn")

    def __init__(self, product: PendingProduct, alpha: float, beta: float):
        self.product, self.alpha, self.beta = product, alpha, beta
        self.applied = False            # a shallow copy of the tensor shares this object and W's array
        self.torn = False

    def settle(self, tensor) -> None:
        """Apply this update to ``tensor`` (which holds it) unless another thread already has."""
        global _in_flight
        with _applying:
            if tensor._update is not self:
                return
            if not self.applied:
                self._refuse_if_torn()
                (u, v), = self.product.terms
                w, alpha, beta, _in_flight = tensor._data, self.alpha, self.beta, self
                self.applied = True                 # before the kernel: see the class
                try:
                    _core.matmul(u, v, trans_a=True, out=w, alpha=alpha, beta=beta)
                except MemoryError:
                    self.applied = False
                    raise
                finally:
                    _in_flight = None
            tensor._update = None

    def discard(self, tensor) -> None:
        """Drop this update from ``tensor``, every value of which is about to be replaced (load_state_dict):
        W's values no longer matter, half updated or not. A shallow copy sharing it drops it too."""
        with _applying:
            if tensor._update is self:
                self.applied = True
                tensor._update = None

    def _refuse_if_torn(self) -> None:
        if self.torn:
            raise RuntimeError("this parameter's SGD update was being applied by another thread when the process "
                               "forked: its values here are half updated (give it new ones: load_state_dict, "
                               "param.data = array; or fork while no thread trains)")

    def fusable_with(self, x: np.ndarray, w: np.ndarray) -> bool:
        """Whether ``x @ w`` can apply the update in its own pass over w (same dtype, no shared memory)."""
        return x.ndim == 2 and x.dtype == w.dtype and not np.may_share_memory(x, w)

    def take_product(self, weight, x: np.ndarray, bias: np.ndarray | None = None):
        """``x @ W + bias`` (bias None or ``_core.matmul``'s) for the Tensor ``weight`` holding this update,
        applied in the same pass over W (``_core.matmul_after_update``) or as its own GEMM first, whichever
        ``fusion`` found faster for these shapes here (the same bits either way), and ``weight`` without it; None,
        and nothing done, when another thread applied it meanwhile. After a MemoryError ``weight`` keeps the update
        only if W is unchanged."""
        global _in_flight
        with _applying:
            if weight._update is not self:
                return None
            if self.applied:                # through a shallow copy of ``weight``
                weight._update = None
                return None
            self._refuse_if_torn()
            (u, v), = self.product.terms
            w, alpha, beta = weight._data, self.alpha, self.beta
            key = (x.shape, w.shape, u.shape[0], w.dtype.char, _core.get_num_threads())
            way = fusion.pick(key)
            fuse = way == FUSED
            _in_flight = self
            start = time.perf_counter()
            self.applied = True                     # before the kernel: see the class
            try:
                out = _core.matmul_after_update(x, w, u, v, alpha, beta, fuse=fuse, bias=bias)
                fusion.took(key, way, time.perf_counter() - start)
            except MemoryError as error:
                self.applied = error.update_applied
                if self.applied:
                    weight._update = None
                raise
            finally:
                _in_flight = None
            weight._update = None
            return out


FUSED, SEPARATE = 0, 1
fusion = TimedChoice()     # take_product's: the update fused into the product's pass over W, or its own GEMM first

_applying = threading.RLock()
_in_flight: DeferredUpdate | None = None     # the update a thread is applying now (under _applying)


def _after_fork_in_child() -> None:
    """The thread that held the lock is gone in a forked child: a new lock, and the update it was applying
    marked torn (W holds part of it)."""
    global _applying, _in_flight
    _applying = threading.RLock()
    if _in_flight is not None:
        _in_flight.torn = True
        _in_flight = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Slot:
    __slots__ = ("_data",)


def _refcount_of_an_unshared_array() -> int:
    """What ``sys.getrefcount(param._data)`` says when only the slot holds the array (measured, as the
    interpreter's own references to an argument differ between Python versions)."""
    slot = _Slot()
    slot._data = np.empty(1)
    return sys.getrefcount(slot._data)


_UNSHARED_REFCOUNT = _refcount_of_an_unshared_array()

ENABLED = os.environ.get("MINIDL_DEFERRED_UPDATES", "1").strip().lower() not in ("0", "false", "no", "off")


def defer(param, product: PendingProduct, alpha: float, beta: float) -> bool:
    """Leave ``W ← beta·W + alpha·product`` on ``param`` (a Tensor) for its next forward product. False
    where the update must happen now: a product of several terms, an array the fused kernel cannot update
    in place, one that something besides the parameter holds (a NumPy view, a ``detach()``-ed tensor, a
    graph kept by ``retain_graph=True``, a variable of the caller), or one that is itself a view (of a flat
    buffer, or of another parameter's array), whose base would otherwise see W without the update. An
    update still pending from the last step is applied first."""
    if not ENABLED or len(product.terms) != 1:
        return False
    pending = param._update
    if pending is not None:                 # the last step's, with no forward product since
        pending.settle(param)
    if sys.getrefcount(param._data) != _UNSHARED_REFCOUNT:
        return False
    w = param._data
    if w.base is not None:                  # a view: its base (and any other view of it) would read W stale
        return False
    if weakref.getweakrefcount(w):          # a weak reference reads the array without a reference count
        return False
    if w.ndim != 2 or w.dtype != product.dtype or not w.flags.c_contiguous or not w.flags.writeable \
            or not w.flags.aligned:
        return False
    param._update = DeferredUpdate(product, alpha, beta)
    return True
