"""The reverse-mode engine: grad mode (``no_grad``) and ``backward`` over the recorded graph.

A non-leaf Tensor stores its inputs in ``_parents`` and a closure ``_backward(grad) -> tuple`` giving
the gradient for each parent (None where a parent needs none). ``backward`` orders the graph with an
iterative depth-first search (no recursion limit) and sweeps it once in reverse, summing the
contributions of nodes used several times. Leaves accumulate into ``.grad`` (``+=``, as PyTorch), which
is always an ndarray of the leaf's shape and dtype (0-d included: NumPy's sum of two 0-d arrays is a
scalar, so sums go through ``out=`` arrays). Every gradient is checked to have its input's shape.

A matmul's weight gradient may arrive as a ``PendingProduct`` (``minidl.pending_product``): a plain leaf
keeps it so in its gradient slot (``Tensor.grad`` materializes it on first read), sums with it go through
``add_gradients``, and any other node materializes it before use. Its factors are the graph's arrays
until the sweep ends; then every pending product the sweep made claims them (``_claim_factors``: those
still referenced elsewhere are copied).

The sweep runs inside ``minidl._core.memory_pool()``: its arrays take their memory from the blocks the
previous step freed (no page faults on every step's fresh gradients).

Ownership: a gradient array produced fresh by a backward closure belongs to the engine and may be
summed into in place or handed to a leaf's ``.grad`` without a copy; an array passed through
unchanged (``g`` itself) or a view of one is *borrowed* and is copied before anyone writes to it.

Values changed in place after the forward pass (PyTorch's version counters, by memory instead of by
tensor): every write into a tensor's buffer in place (``t += x`` and the other in-place operators, an
optimizer's step, ``load_state_dict``) is logged as a byte range (``note_in_place``), and each node
remembers how many writes it had seen when it was recorded. A node recorded before some write runs its
backward only if none of the arrays its backward saved overlaps a later write; else backward raises, as
PyTorch does, instead of computing gradients from the changed values. The saved arrays are the ndarrays
in the backward closure's cells or a ``functools.partial``'s arguments (a partial's function may say
which of them it reads: ``saved_arrays(args)``). Views count (the ranges overlap); writes through
``t.data[...] = ...`` are not seen (as ``.data`` in PyTorch).
"""
from __future__ import annotations

import collections
import contextlib
import functools
import os
import threading

import numpy as np

from minidl._core import byte_range, memory_pool
from minidl.pending_product import PendingProduct, add_gradients

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "backward", "note_in_place"]


class _GradMode(threading.local):
    """The switch every op reads: one per thread, as in PyTorch, so that a thread evaluating under
    ``no_grad`` does not stop another from recording its graph."""

    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """True when ops record the graph in this thread (outside ``no_grad``)."""
    return _grad_mode.enabled


class _GradModeContext(contextlib.ContextDecorator):
    """Context manager / decorator that turns graph recording on or off in this thread, restoring it on
    exit. One object may be entered again while it is active (nested, or a decorated function that
    recurses): each exit restores what its own entry found."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._previous = []

    def __enter__(self):
        self._previous.append(_grad_mode.enabled)
        _grad_mode.enabled = self.mode
        return self

    def __exit__(self, *exc):
        _grad_mode.enabled = self._previous.pop()
        return False

    def _recreate_cm(self):
        """A fresh context manager for each call of a decorated function (calls in several threads)."""
        return _GradModeContext(self.mode)


class set_grad_enabled(_GradModeContext):
    """Sets graph recording on or off in this thread, as PyTorch's: the call itself sets it
    (``mdl.set_grad_enabled(False)`` on a line of its own turns recording off until it is turned on
    again); in a ``with`` the mode found at the call comes back on exit; as a decorator the call changes
    nothing until the decorated function runs."""

    def __init__(self, mode: bool):
        super().__init__(mode)
        self._at_call = _grad_mode.enabled
        _grad_mode.enabled = self.mode

    def __enter__(self):
        if self._at_call is None:
            return super().__enter__()
        self._previous.append(self._at_call)        # the first entry restores what the call found
        self._at_call = None
        _grad_mode.enabled = self.mode
        return self

    def __call__(self, func):
        if self._at_call is not None:               # used as a decorator: undo the call's switch
            _grad_mode.enabled = self._at_call
            self._at_call = None
        return super().__call__(func)


class _FixedGradMode(_GradModeContext):
    """A context manager / decorator for one mode (``_mode``), usable as a decorator with or without
    parentheses (``@mdl.no_grad`` as ``@mdl.no_grad()``, as PyTorch)."""

    _mode = False

    def __new__(cls, func=None):
        if func is None:
            return super().__new__(cls)
        if not callable(func):
            raise TypeError(f"{cls.__name__}() takes no arguments (or, as a decorator, a function); "
                            f"got {type(func).__name__}")
        return cls()(func)

    def __init__(self, func=None):
        super().__init__(self._mode)


class no_grad(_FixedGradMode):
    """``with mdl.no_grad(): ...`` — ops inside build no graph (evaluation, parameter updates)."""

    _mode = False


class enable_grad(_FixedGradMode):
    """Re-enable graph recording inside a ``no_grad`` block."""

    _mode = True


class _InPlaceWrites:
    """The in-place writes into tensor buffers, numbered from 1: (number, low, high, what) for the last
    ``maxlen`` of them in ``log``; older ones in ``older``, the latest number and writer per byte range
    (a loop that writes the same arrays again and again keeps one entry each), and past ``max_older``
    ranges in ``merged``: one (number, low, high) covering all their bytes. A graph recorded before any
    of them is still checked, exactly until ``merged`` is needed, conservatively after. One lock orders the
    writes and the reads: threads training models of their own write and check at once (unlocked, a
    backward that read the log while another thread's step wrote it failed with "deque mutated during
    iteration")."""

    __slots__ = ("count", "log", "maxlen", "older", "max_older", "merged", "lock")

    def __init__(self, maxlen: int = 4096, max_older: int = 65536):
        self.count = 0
        self.log = collections.deque()
        self.maxlen, self.max_older = maxlen, max_older
        self.older = {}
        self.merged = (0, 0, 0)
        self.lock = threading.Lock()

    def append(self, number: int, low: int, high: int, what: str) -> None:
        log = self.log
        if len(log) == self.maxlen:
            old_number, old_low, old_high, old_what = log.popleft()
            older = self.older
            older.pop((old_low, old_high), None)            # re-inserted last: the dict stays in number order
            older[old_low, old_high] = (old_number, old_what)
            if len(older) > self.max_older:
                (merged_low, merged_high), (merged_number, _) = next(iter(older.items()))
                del older[merged_low, merged_high]
                _, low_before, high_before = self.merged
                if high_before > low_before:
                    merged_low, merged_high = min(merged_low, low_before), max(merged_high, high_before)
                self.merged = (merged_number, merged_low, merged_high)
        log.append((number, low, high, what))

    def since(self, seen: int) -> list:
        """(number, low, high, what) of every write numbered after ``seen``, newest first (merged last)."""
        with self.lock:
            return list(self._since(seen))

    def _since(self, seen: int):
        for entry in reversed(self.log):
            if entry[0] <= seen:
                return
            yield entry
        for (low, high), (number, what) in reversed(self.older.items()):
            if number <= seen:
                return
            yield number, low, high, what
        number, low, high = self.merged
        if number > seen:
            yield number, low, high, f"one of the in-place writes before the last {self.maxlen + self.max_older}"


_writes = _InPlaceWrites()


def note_in_place(arrays, what: str) -> None:
    """Log that the memory of each ndarray in ``arrays`` was just changed in place (by ``what``, for the
    error message)."""
    if not arrays:
        return
    ranges = [byte_range(array) for array in arrays]
    with _writes.lock:
        number = _writes.count + 1
        for low, high in ranges:
            _writes.append(number, low, high, what)
        _writes.count = number


def _new_lock_after_fork() -> None:
    """A thread that held the log's lock is gone in a forked child: the child gets a new lock."""
    _writes.lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_after_fork)


def _saved_arrays(fn) -> list:
    """The ndarrays a node's backward ``fn`` holds (see the module docstring)."""
    if type(fn) is functools.partial:
        reads = getattr(fn.func, "saved_arrays", None)
        values = reads(fn.args) if reads is not None else fn.args
    else:
        values = []
        for cell in getattr(fn, "__closure__", None) or ():
            try:
                values.append(cell.cell_contents)
            except ValueError:          # an empty cell
                pass
    return [v for v in values if type(v) is np.ndarray]


def _check_unchanged(node, fn) -> None:
    """Raise if an array that ``fn`` saved was written in place after ``node`` was recorded."""
    saved = [(a, byte_range(a)) for a in _saved_arrays(fn)]
    for number, low, high, what in _writes.since(node._writes_seen):
        for array, (a_low, a_high) in saved:
            if a_low < high and low < a_high:
                raise RuntimeError(
                    f"backward() needs values that were changed in place after the forward pass recorded "
                    f"them: an array of shape {array.shape} ({array.dtype}) saved for the gradient of a "
                    f"tensor of shape {node.shape} was modified by {what}. Change it after backward(), or "
                    f"out of place (t = t + x instead of t += x); an optimizer step between two backward() "
                    f"calls through one graph (retain_graph=True) changes the weights that graph saved.")


def _freed(grad):
    raise RuntimeError(
        "Trying to backward through the graph a second time: its buffers were freed by the first "
        "backward(). Call backward(retain_graph=True) the first time, or rebuild the graph with a "
        "fresh forward pass.")


def _topological_order(root) -> list:
    """Nodes reachable from ``root`` that require grad, every node after all of its parents, and each leaf
    parent right before the first node that takes it: the reverse sweep accumulates a leaf's gradient as
    soon as that node has given it, as PyTorch's engine does (before, last: a hook on an activation, or an
    optimizer step in it, saw the later layers' weights without their gradients)."""
    order = []
    visited = set()
    stack = [(root, False)]
    push = stack.append
    pop = stack.pop
    while stack:
        node, parents_done = pop()
        if parents_done:
            order.append(node)
            continue
        key = id(node)
        if key in visited:
            continue
        visited.add(key)
        push((node, True))
        parents = node._parents
        for parent in parents:                  # the leaves first: popped, so appended, last
            if parent._backward is None and parent.requires_grad and id(parent) not in visited:
                push((parent, False))
        for parent in parents:
            if parent._backward is not None and parent.requires_grad and id(parent) not in visited:
                push((parent, False))
    return order


def backward(root, grad=None, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) · grad into every leaf's ``.grad`` (see module docstring)."""
    if not root.requires_grad:
        raise RuntimeError("backward() on a tensor that does not require grad (no graph was recorded "
                           "through it: check requires_grad=True on the inputs and that no_grad is off)")
    data = root.data
    if grad is None:
        if data.size != 1:
            raise RuntimeError(f"backward() without a grad argument needs a tensor with one element; "
                               f"got shape {data.shape}. Pass grad= of that shape.")
        seed, owned = np.ones(data.shape, dtype=data.dtype), True
    else:
        seed = np.asarray(grad, dtype=data.dtype)
        if seed.shape != data.shape:
            raise ValueError(f"backward(grad): grad has shape {seed.shape}, tensor has shape {data.shape}")
        owned = False

    left_pending = []               # (leaf, PendingProduct) for each gradient the sweep left pending
    with memory_pool():             # the gradients' large arrays reuse the last step's memory
        try:
            _sweep(root, seed, owned, retain_graph, left_pending)
        finally:                    # the sweep's frame and the graph are gone: their references with them
            _claim_factors(left_pending)


def _claim_factors(left_pending: list) -> None:
    """Every pending gradient the sweep made claims its factors, wherever it is now (its leaf's slot, or an
    SGD update that a hook's ``step()`` left on the parameter). One that cannot (out of memory, Ctrl-C) is
    dropped from its leaf rather than left sharing the caller's arrays; the first such error is raised once
    the others have claimed theirs."""
    error = None
    for leaf, product in left_pending:
        try:
            product.claim_factors()
        except BaseException as exc:
            if leaf._grad is product:
                leaf._grad = None
            error = error or exc
    if error is not None:
        raise error


def _refuse_integer_grad(data: np.ndarray):
    """PyTorch refuses ``requires_grad = True`` on integers at the assignment; minidl's attribute is a plain slot,
    so the sweep refuses the gradient."""
    raise RuntimeError(f"only floating-point tensors can require grad, but a tensor of dtype {data.dtype} (shape "
                       f"{data.shape}) has requires_grad=True; make it float (t.float()) or leave requires_grad off")


def _sweep(root, seed: np.ndarray, owned: bool, retain_graph: bool, left_pending: list) -> None:
    """The reverse sweep of ``backward`` from ``root`` with gradient ``seed`` (``owned``: the engine's);
    appends (leaf, product) to ``left_pending`` for each leaf whose gradient it leaves pending."""
    order = _topological_order(root)
    grads = {id(root): (seed, owned)}
    for node in reversed(order):
        entry = grads.pop(id(node), None)
        if entry is None:           # no gradient reached this node (all paths gave None)
            continue
        g, owned = entry
        if type(g) is PendingProduct and (node._backward is not None or node._hooks):
            g, owned = g.materialize(), True        # only a plain leaf keeps a gradient pending
        if node._hooks:
            for hook in node._hooks.values():
                replaced = hook(g)
                if replaced is not None:
                    replaced = np.asarray(replaced, dtype=node._data.dtype)
                    if replaced.shape != g.shape:
                        raise ValueError(f"a gradient hook returned shape {replaced.shape}, "
                                         f"expected {g.shape}")
                    g, owned = replaced, False
        fn = node._backward
        if fn is None:              # leaf: accumulate
            if node._data.dtype.kind != "f":        # an integer gradient, e.g. of (t * 3).sum(): exact, not refused above
                _refuse_integer_grad(node._data)
            current = node._grad
            if current is None:
                node._grad = g if owned else g.copy()
            elif type(current) is PendingProduct or type(g) is PendingProduct:
                node._grad = add_gradients(current, True, g)
            else:
                node._grad += g
            if type(node._grad) is PendingProduct:
                left_pending.append((node, node._grad))
            continue
        if node._retains_grad:
            if node._grad is None:
                node._grad = g.copy()
            else:
                node._grad += g
        if node._writes_seen != _writes.count:     # some buffer changed in place since this node was recorded
            _check_unchanged(node, fn)
        parent_grads = fn(g)
        for parent, pg in zip(node._parents, parent_grads):
            if pg is None or not parent.requires_grad:
                continue
            if type(pg) is PendingProduct:          # of the parent's shape and dtype (the op checked)
                prev = grads.get(id(parent))
                grads[id(parent)] = (pg if prev is None else add_gradients(prev[0], prev[1], pg), True)
                continue
            if type(pg) is not np.ndarray:
                pg = np.asarray(pg)
                p_owned = True
            else:
                p_owned = pg is not g and pg.base is None
            pdata = parent._data              # shape and dtype only (a tensor replaced by `op=` refuses .data)
            if pg.shape != pdata.shape:
                raise RuntimeError(f"the backward of an op gave a gradient of shape {pg.shape} for an input "
                                   f"of shape {pdata.shape} (a bug in that op's chain rule)")
            if pg.dtype != pdata.dtype:
                if pdata.dtype.kind != "f":         # `t.requires_grad = True` on integers: its gradient truncated
                    _refuse_integer_grad(pdata)
                pg = pg.astype(pdata.dtype)
                p_owned = True
            key = id(parent)
            prev = grads.get(key)
            if prev is None:
                grads[key] = (pg, p_owned)
            elif type(prev[0]) is PendingProduct:
                grads[key] = (add_gradients(prev[0], True, pg), True)
            elif prev[1]:
                acc = prev[0]
                acc += pg                   # in place, 0-d arrays included
            else:                           # a NumPy sum of 0-d arrays is a scalar: keep an ndarray
                grads[key] = (np.add(prev[0], pg, out=np.empty_like(pdata)), True)
        if not retain_graph:
            node._parents = ()
            node._backward = _freed
