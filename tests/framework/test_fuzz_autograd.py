"""A differential fuzzer for the autograd engine: random programs over every differentiable op, their
gradients against float64 central differences.

A program is drawn by hypothesis: 1-3 leaves of shapes from 0-d to 3-d (sides 0 to 3, so size-0 and
size-1 axes), float32 or float64, then up to 10 steps, each an op applied to nodes picked mostly among the
four newest (so nodes are reused 1-4 times, 0-d ones included). Each op adapts to the shapes it gets
(an operand that does not broadcast is summed to 0-d first, etc.), so every drawn program runs. The loss
sums every node (one more use of each), each weighted by a fixed random cotangent. autograd's gradient of
every leaf, computed in the program's dtype, must match central differences of the same program run
in float64. Values are drawn from a seed, not by hypothesis, so no input sits on a kink (|x| at 0, relu
at 0, clamp at its bounds, max at a tie between different inputs) unless the program puts it there on
purpose (x - x), where both sides agree. A program whose values leave ±1e4 is rejected (rare).

Deterministic in CI: derandomized, no example database. On the engine before issue 11's fix it fails at
its first example (a 0-d leaf's .grad a NumPy scalar); ``fuzz_count.py`` counts, over 250 examples, 41-56
such and 5-14 wrong gradient values (a 0-d node's third contribution lost), and none after the fix.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, assume, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import minidl as mdl
from minidl import activations, ops

MAX_STEPS = 10
SETTINGS = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


class Run:
    """One execution of a program: ``exact`` runs it in float64 throughout (casts become no-ops)."""

    def __init__(self, exact: bool):
        self.exact = exact

    def cast(self, x, dtype):
        return x if self.exact else x.astype(dtype)


def _broadcasts(a, b) -> bool:
    try:
        np.broadcast_shapes(a.shape, b.shape)
        return True
    except ValueError:
        return False


def _compatible(a, b):
    """``b`` itself if it broadcasts against ``a``, else its sum (0-d, which always does)."""
    return b if _broadcasts(a, b) else b.sum()


def _positive(x):
    return x * x + 0.5


def _axis(x, param):
    """None or one axis of x (negative half the time); 0-d tensors get None or 0."""
    if param == 0 or not x.ndim:
        return None if param % 2 == 0 else (0 if not x.ndim else -1)
    return param % x.ndim if param % 2 else -(param % x.ndim) - 1


def _count(x, axis) -> int:
    return x.size if axis is None or not x.ndim else x.shape[axis]


def _reduce(name):
    def op(run, param, x):
        axis = _axis(x, param)
        keepdims = param % 3 == 0
        count = _count(x, axis)
        if count == 0 or (name in ("var", "std") and count == 1 and param % 2):
            return x.sum(axis=axis, keepdims=keepdims)          # undefined (empty / n - 1 = 0): sum instead
        if name in ("var", "std"):
            return getattr(x, name)(axis=axis, keepdims=keepdims, correction=1 if count > 1 else 0)
        return getattr(x, name)(axis=axis, keepdims=keepdims)
    return op


def _matmul(run, param, a, b):
    if a.ndim and b.ndim:
        try:
            np.matmul(np.empty(a.shape), np.empty(b.shape))
            return a @ b
        except ValueError:
            pass
    m = a.reshape(1, -1)
    return m @ m.T if param % 2 else m.T @ m


def _getitem(run, param, x):
    if not x.ndim:
        return x.reshape(1)[[0, 0, 0][: 1 + param % 3]]
    if param % 2 and x.shape[0]:
        rows = np.random.default_rng(param).integers(0, x.shape[0], size=1 + param % 4)   # repeats likely
        return x[rows]
    return x[..., ::2] if param % 4 == 0 else x[0] if x.shape[0] else x[1:]


def _cat(run, param, a, b):
    if a.shape == b.shape and a.ndim:
        return mdl.cat([a, b], axis=param % a.ndim)
    return mdl.cat([a.reshape(-1), b.reshape(-1), a.reshape(-1)])


def _stack(run, param, a, b):
    return mdl.stack([a, b] if a.shape == b.shape else [a, a * 2.0], axis=param % (a.ndim + 1))


def _where(run, param, a, b):
    b = _compatible(a, b)
    return mdl.where(a > 0, a, b) if param % 2 else mdl.where(b > 0.3, 1.5, b * a)


def _in_place(symbol):
    def op(run, param, a, b):
        b = _compatible(a, b)
        if np.broadcast_shapes(a.shape, b.shape) != a.shape:
            b = b.sum()                            # t op= b keeps t's shape
        if param % 2:                              # a plain tensor that joins the graph
            t = mdl.Tensor(np.zeros(np.broadcast_shapes(a.shape, b.shape), dtype=a.dtype))
            t += a
        else:                                      # a non-leaf: as if out of place
            t = a * 1.0
        if symbol == "+":
            t += b
        elif symbol == "-":
            t -= b
        elif symbol == "*":
            t *= b
        else:
            t /= _positive(b)
        return t
    return op


def _view(run, param, x):
    shape = (-1,) if param % 2 or not x.ndim else (x.shape[0], -1) if x.size else x.shape
    return x.view(*shape) if x.data.flags.c_contiguous else x.reshape(*shape)


def _transpose(run, param, x):
    if x.ndim < 2:
        return x.T
    return x.transpose(0, -1) if param % 2 else x.permute(*np.random.default_rng(param).permutation(x.ndim))


def _astype(run, param, x):
    other = np.float64 if x.dtype == np.float32 else np.float32
    return run.cast(run.cast(x, other) * 1.5, x.dtype) if param % 2 else run.cast(x, other)


@dataclass(frozen=True)
class Op:
    name: str
    arity: int
    apply: object                                  # (run, param, *tensors) -> Tensor


OPS = [
    Op("add", 2, lambda run, p, a, b: a + _compatible(a, b)),
    Op("sub", 2, lambda run, p, a, b: a - _compatible(a, b) if p % 2 else 1.5 - a),
    Op("mul", 2, lambda run, p, a, b: a * _compatible(a, b) if p % 3 else a * 0.75),
    Op("div", 2, lambda run, p, a, b: a / _positive(_compatible(a, b)) if p % 2 else 2.0 / _positive(a)),
    Op("pow", 1, lambda run, p, x: x ** (2, 3, 1)[p % 3] if p % 2 else _positive(x) ** (0.5, -1.5, 2.5)[p % 3]),
    Op("neg", 1, lambda run, p, x: -x),
    Op("matmul", 2, _matmul),
    Op("exp", 1, lambda run, p, x: x.tanh().exp()),
    Op("log", 1, lambda run, p, x: _positive(x).log()),
    Op("sqrt", 1, lambda run, p, x: _positive(x).sqrt()),
    Op("abs", 1, lambda run, p, x: x.abs()),
    Op("clamp", 1, lambda run, p, x: x.clamp(-0.7, 0.9) if p % 3 == 0 else x.clamp(min=-0.2) if p % 3 == 1
       else x.clamp(max=0.4)),
    *[Op(name, 1, lambda run, p, x, name=name: ops.activation(x, name)) for name in activations.names()],
    *[Op(name, 1, _reduce(name)) for name in ("sum", "mean", "max", "min", "var", "std")],
    Op("reshape", 1, lambda run, p, x: x.reshape(-1) if p % 2 else x.reshape(*x.shape, 1)),
    Op("view", 1, _view),
    Op("flatten", 1, lambda run, p, x: x.flatten()),
    Op("unsqueeze", 1, lambda run, p, x: x.unsqueeze(p % (x.ndim + 1))),
    Op("squeeze", 1, lambda run, p, x: x.squeeze()),
    Op("transpose", 1, _transpose),
    Op("getitem", 1, _getitem),
    Op("astype", 1, _astype),
    Op("cat", 2, _cat),
    Op("stack", 2, _stack),
    Op("where", 2, _where),
    *[Op(f"i{symbol}", 2, _in_place(symbol)) for symbol in "+-*/"],
]


@dataclass(frozen=True)
class Program:
    shapes: tuple
    dtype: type
    steps: tuple                                   # (op index, pick, pick, param)
    seed: int

    def leaves(self) -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed)
        return [rng.uniform(-2.0, 2.0, size=shape).astype(self.dtype) for shape in self.shapes]

    def __call__(self, run: Run, leaves: list) -> tuple:
        """The loss, and the largest |value| of any node."""
        pool, largest = list(leaves), 0.0
        for op_index, *picks, param in self.steps:
            op = OPS[op_index % len(OPS)]
            chosen = [self._pick(pool, pick) for pick in picks[:op.arity]]
            pool.append(op.apply(run, param, *(pool[i] for i in chosen)))
            if pool[-1].size:
                largest = max(largest, float(np.abs(pool[-1].data).max()))
        rng = np.random.default_rng(self.seed + 1)
        loss = 0.0
        for node in pool:
            cotangent = rng.standard_normal(node.shape).astype(node.dtype)
            loss = (node * cotangent).sum() + loss
        return loss, largest

    @staticmethod
    def _pick(pool, pick: int) -> int:
        """Mostly one of the four newest nodes (reuse), sometimes any node."""
        return len(pool) - 1 - pick % min(4, len(pool)) if pick < 6 else pick % len(pool)


@st.composite
def programs(draw) -> Program:
    shapes = tuple(draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
                   for _ in range(draw(st.integers(1, 3))))
    step = st.tuples(st.integers(0, len(OPS) - 1), st.integers(0, 7), st.integers(0, 7), st.integers(0, 11))
    return Program(shapes, draw(st.sampled_from([np.float32, np.float64])),
                   tuple(draw(st.lists(step, min_size=1, max_size=MAX_STEPS))), draw(st.integers(0, 2**31)))


def exact_loss(program: Program, arrays: list[np.ndarray]) -> float:
    with mdl.no_grad():
        loss, _ = program(Run(exact=True), [mdl.Tensor(a) for a in arrays])
    return float(np.asarray(loss.data if isinstance(loss, mdl.Tensor) else loss))


def central_differences(program: Program, eps: float = 1e-6) -> list[np.ndarray]:
    arrays = [a.astype(np.float64) for a in program.leaves()]
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        flat, gflat = a.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            plus = exact_loss(program, arrays)
            flat[i] = old - eps
            minus = exact_loss(program, arrays)
            flat[i] = old
            gflat[i] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def check_program(program: Program) -> bool:
    """Assert that autograd matches central differences; False (nothing checked) if values leave ±1e4."""
    leaves = [mdl.Tensor(a, requires_grad=True) for a in program.leaves()]
    loss, largest = program(Run(exact=False), leaves)
    if not (np.isfinite(largest) and largest < 1e4):
        return False
    loss.backward()
    expected = central_differences(program)
    scale = max(1.0, largest)
    rtol, atol = (1e-4, 1e-6 * scale) if program.dtype == np.float64 else (2e-2, 2e-3 * scale)
    for k, (leaf, want) in enumerate(zip(leaves, expected)):
        if leaf.grad is None:                      # no path to the loss (an op may ignore an operand)
            assert not want.any(), f"leaf {k} got no gradient, expected {want}"
            continue
        assert type(leaf.grad) is np.ndarray, f"leaf {k}: .grad is {type(leaf.grad).__name__}"
        assert leaf.grad.shape == leaf.shape and leaf.grad.dtype == leaf.dtype, f"leaf {k}"
        np.testing.assert_allclose(leaf.grad, want, rtol=rtol, atol=atol, err_msg=f"leaf {k} of {program}")
    return True


@SETTINGS
@given(programs())
def test_random_programs_match_central_differences(program):
    assume(check_program(program))


def test_every_op_runs_on_every_shape():
    """Each op adapts to any operand shapes (the fuzzer relies on it) and is differentiable there."""
    shapes = [(), (1,), (0, 2), (3, 1), (1, 2, 3)]
    for op_index, op in enumerate(OPS):
        for sa in shapes:
            for sb in [(), (2,)] if op.arity == 2 else [None]:
                for param in (0, 1, 2, 3):
                    step = (op_index, 0, 1, param)
                    assert check_program(Program((sa,) if sb is None else (sb, sa), np.float64, (step,), seed=7))
