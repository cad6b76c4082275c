"""A weight gradient kept as the product it is, ``Σᵢ Xᵢᵀ·dYᵢ``, until someone needs its values.

The weight gradient of ``Y = X·W`` is ``dW = Xᵀ·dY`` (fan_in × fan_out). At small batch its factors X
(batch × fan_in) and dY (batch × fan_out) are far smaller: writing dW out in backward and reading it back
in the optimizer moves 2·fan_in·fan_out numbers that plain SGD does not need, since its update is one
GEMM whose epilogue reads and writes W: ``W ← W − lr·XᵀdY`` is
``_core.matmul(X, dY, trans_a=True, out=W, alpha=-lr, beta=1)`` (BLAS gemm semantics).

So matmul's backward returns a ``PendingProduct`` for a leaf weight when its factors are smaller than
the product (``worth_deferring``: batch·(fan_in + fan_out) < fan_in·fan_out), the engine
(``minidl.autograd``) keeps it in the leaf's gradient slot, ``Tensor.grad`` materializes it on first
read (so every reader sees an ndarray as before), and ``optim.SGD`` applies it in place with ``apply``.
A second backward before the step adds its factors as another term while they stay smaller than the
product, and materializes otherwise.

The factors are the product's own, so that writing to the layer's input or to a gradient array after
backward cannot change the gradient. Backward shares them with its graph while it runs (``copy=False``)
and the engine calls ``claim_factors`` when it ends: by then the graph is gone, and an array that nothing
else references (the hidden layers' inputs, every dY) is kept as it is; one that something else can still
reach (the network's input batch, an activation the caller kept, a graph kept by ``retain_graph=True``)
is copied. Against copying every factor, the 784-1000×5-10 MLP's step on the 2-core VM (alternating
blocks in one process, median of 15-21 per-round ratios, three runs) ran 1.4-3.8% faster at batch 256
and 1.7-3.9% at batch 64.
"""
from __future__ import annotations

import sys
import weakref

import numpy as np

from minidl import _core

__all__ = ["PendingProduct", "add_gradients"]


class PendingProduct:
    """``Σᵢ xᵢᵀ·dyᵢ`` over its ``terms`` [(x, dy), ...]: x is (rows × m), dy is (rows × n), same dtype."""

    __slots__ = ("terms", "shape", "dtype", "_rows")

    def __init__(self, x: np.ndarray, dy: np.ndarray, copy: bool = True):
        if copy:
            x, dy = np.array(x, order="C"), np.array(dy, order="C")
        self.terms = [(x, dy)]                      # shared until claim_factors when not copied
        self.shape = (x.shape[1], dy.shape[1])
        self.dtype = x.dtype
        self._rows = x.shape[0]

    @staticmethod
    def worth_deferring(rows: int, m: int, n: int) -> bool:
        """Keep xᵀ·dy (x: rows × m, dy: rows × n) pending when its factors are smaller than it."""
        return rows * (m + n) < m * n

    def apply(self, out: np.ndarray, alpha: float = 1.0, beta: float = 1.0) -> np.ndarray:
        """out ← alpha·Σ xᵢᵀ·dyᵢ + beta·out in place, one GEMM per term (out is not read when beta = 0)."""
        for x, dy in self.terms:
            _core.matmul(x, dy, trans_a=True, out=out, alpha=alpha, beta=beta)
            beta = 1.0
        return out

    def materialize(self) -> np.ndarray:
        """Σ xᵢᵀ·dyᵢ as a new ndarray (from the memory pool: an optimizer that reads ``.grad`` every step
        reuses the block the last step's gradient freed)."""
        with _core.memory_pool():
            out = np.empty(self.shape, dtype=self.dtype)
        return self.apply(out, beta=0.0)

    def claim_factors(self) -> None:
        """Make every factor this product's own: an array that nothing but its term can reach is kept, any
        other one replaced by a C-ordered copy (all terms at once: an error leaves them as they were)."""
        terms = list(self.terms)
        for i in range(len(terms)):
            keep_x, keep_dy = self._unshared(i, 0), self._unshared(i, 1)
            if not (keep_x and keep_dy):
                x, dy = terms[i]
                terms[i] = (x if keep_x else np.array(x, order="C"), dy if keep_dy else np.array(dy, order="C"))
        self.terms[:] = terms

    def _unshared(self, i: int, j: int) -> bool:
        """Whether only term i holds factor j: no other reference (a NumPy view holds one to its base), no
        weak one, and memory of its own (not a view, whose base others may reach, nor an array over a
        buffer another object owns); C-ordered too, as the kernels read it fastest."""
        if self._references(i, j) != _ONLY_ITS_TERM:
            return False
        a = self.terms[i][j]
        flags = a.flags
        return flags.owndata and flags.c_contiguous and not weakref.getweakrefcount(a)

    def _references(self, i: int, j: int) -> int:
        return sys.getrefcount(self.terms[i][j])

    def plus(self, other: "PendingProduct"):
        """self + other: a PendingProduct with both terms while the factors stay smaller than the
        product, else the sum materialized (an ndarray)."""
        rows = self._rows + other._rows
        if self.worth_deferring(rows, *self.shape):
            total = PendingProduct.__new__(PendingProduct)
            total.terms = self.terms + other.terms
            total.shape, total.dtype, total._rows = self.shape, self.dtype, rows
            return total
        return other.apply(self.materialize())


# what ``_references`` says of an array that only its term holds (measured: the interpreter's own
# references to an argument differ between Python versions)
_ONLY_ITS_TERM = PendingProduct(np.empty((1, 1)), np.empty((1, 1)))._references(0, 0)


def add_gradients(current, current_owned: bool, g):
    """current + g where either is a PendingProduct (the other one may be an ndarray); returns the sum,
    which its caller owns. ``current`` is written in place when ``current_owned`` and it can take the
    sum (a writable ndarray of g's dtype and shape), as ``+=`` does for ndarrays; ``g`` is never written.
    """
    if type(current) is PendingProduct:
        if type(g) is PendingProduct:
            return current.plus(g)
        total = current.materialize()
        total += g
        return total
    if current_owned and current.dtype == g.dtype and current.shape == g.shape and current.flags.writeable:
        return g.apply(current)
    return current + g.materialize()
