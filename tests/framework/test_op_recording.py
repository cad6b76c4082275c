"""The op plumbing of minidl.ops: ``record`` (the one grad-mode guard), ``binary`` (scalar operands,
broadcasting), the kernel hook ``wrap_kernels``, and the one-way import tensor <- ops."""
import ast
from pathlib import Path

import numpy as np
import pytest

import minidl as mdl
from minidl import _core, nn, ops
from minidl.nn import functional as F
from fw_gradcheck import check_gradients

PACKAGE = Path(ops.__file__).resolve().parent


def _inputs(requires_grad):
    rng = np.random.default_rng(0)
    a = mdl.Tensor(rng.random((3, 4), dtype=np.float32) + 0.5, requires_grad=requires_grad)
    b = mdl.Tensor(rng.random((3, 4), dtype=np.float32) + 0.5, requires_grad=requires_grad)
    w = mdl.Tensor(rng.random((4, 2), dtype=np.float32), requires_grad=requires_grad)
    bias = mdl.Tensor(rng.random(2, dtype=np.float32), requires_grad=requires_grad)
    row = mdl.Tensor(rng.random(4, dtype=np.float32), requires_grad=requires_grad)
    return a, b, w, bias, row


# every op, as (name, fn(a, b, w, bias, row) -> Tensor); a, b: (3, 4), w: (4, 2), bias: (2,), row: (4,)
OPS = [
    ("add", lambda a, b, w, bias, row: a + b),
    ("add_broadcast", lambda a, b, w, bias, row: a + row),
    ("add_scalar", lambda a, b, w, bias, row: a + 2.0),
    ("radd_scalar", lambda a, b, w, bias, row: 2 + a),
    ("add_list", lambda a, b, w, bias, row: a + [1.0, 2.0, 3.0, 4.0]),
    ("radd_ndarray", lambda a, b, w, bias, row: np.ones(4, dtype=np.float32) + a),
    ("sub", lambda a, b, w, bias, row: a - b),
    ("sub_scalar", lambda a, b, w, bias, row: a - np.float64(1.5)),
    ("rsub_scalar", lambda a, b, w, bias, row: 1 - a),
    ("rsub_ndarray", lambda a, b, w, bias, row: np.ones((3, 4)) - a),
    ("mul", lambda a, b, w, bias, row: a * b),
    ("mul_scalar", lambda a, b, w, bias, row: a * 3),
    ("rmul_scalar", lambda a, b, w, bias, row: 0.5 * a),
    ("div", lambda a, b, w, bias, row: a / row),
    ("div_scalar", lambda a, b, w, bias, row: a / 4.0),
    ("rdiv_scalar", lambda a, b, w, bias, row: 2.0 / a),
    ("rdiv_list", lambda a, b, w, bias, row: [1.0, 2.0, 3.0, 4.0] / a),
    ("pow", lambda a, b, w, bias, row: a ** 3),
    ("neg", lambda a, b, w, bias, row: -a),
    ("matmul", lambda a, b, w, bias, row: a @ w),
    ("matmul_vector", lambda a, b, w, bias, row: a @ row),
    ("matmul_batched", lambda a, b, w, bias, row: a.reshape(3, 1, 4) @ w),
    ("rmatmul", lambda a, b, w, bias, row: np.ones((2, 3), dtype=np.float32) @ a),
    ("linear", lambda a, b, w, bias, row: ops.linear(a, w, bias)),
    ("linear_no_bias", lambda a, b, w, bias, row: ops.linear(a, w)),
    ("sum", lambda a, b, w, bias, row: a.sum()),
    ("sum_axis", lambda a, b, w, bias, row: a.sum(axis=0, keepdims=True)),
    ("mean", lambda a, b, w, bias, row: a.mean(axis=1)),
    ("max", lambda a, b, w, bias, row: a.max(axis=0)),
    ("reshape", lambda a, b, w, bias, row: a.reshape(4, 3)),
    ("transpose", lambda a, b, w, bias, row: a.transpose(1, 0)),
    ("T", lambda a, b, w, bias, row: a.T),
    ("getitem", lambda a, b, w, bias, row: a[1:, [0, 2]]),
    ("exp", lambda a, b, w, bias, row: a.exp()),
    ("log", lambda a, b, w, bias, row: a.log()),
    ("sigmoid", lambda a, b, w, bias, row: a.sigmoid()),
    ("tanh", lambda a, b, w, bias, row: a.tanh()),
    ("relu", lambda a, b, w, bias, row: a.relu()),
    ("softsign", lambda a, b, w, bias, row: a.softsign()),
    ("softmax", lambda a, b, w, bias, row: F.softmax(a)),
    ("log_softmax", lambda a, b, w, bias, row: F.log_softmax(a, axis=0)),
    ("cross_entropy", lambda a, b, w, bias, row: F.cross_entropy(a, np.array([0, 3, 1]))),
    ("mse_loss", lambda a, b, w, bias, row: F.mse_loss(a, b)),
    ("mse_loss_sum", lambda a, b, w, bias, row: F.mse_loss(a, b, reduction="sum")),
]
IDS = [name for name, _ in OPS]


def _is_plain(t):
    return (isinstance(t, mdl.Tensor) and type(t.data) is np.ndarray and not t.requires_grad
            and t._parents == () and t._backward is None and t.is_leaf and t.grad is None)


@pytest.mark.parametrize("fn", [fn for _, fn in OPS], ids=IDS)
def test_under_no_grad_every_op_returns_a_plain_tensor(fn):
    inputs = _inputs(requires_grad=True)
    with mdl.no_grad():
        out = fn(*inputs)
    assert _is_plain(out)
    with pytest.raises(RuntimeError):
        out.backward(np.ones_like(out.data))


@pytest.mark.parametrize("fn", [fn for _, fn in OPS], ids=IDS)
def test_without_a_parent_that_requires_grad_every_op_returns_a_plain_tensor(fn):
    out = fn(*_inputs(requires_grad=False))
    assert _is_plain(out)


@pytest.mark.parametrize("fn", [fn for _, fn in OPS], ids=IDS)
def test_with_a_parent_that_requires_grad_every_op_records_the_graph(fn):
    inputs = _inputs(requires_grad=True)
    out = fn(*inputs)
    assert out.requires_grad and not out.is_leaf and out._grad is None and type(out.data) is np.ndarray
    assert out._parents and all(isinstance(p, mdl.Tensor) for p in out._parents)
    assert any(p is t for p in out._parents for t in inputs)
    out.backward(np.ones_like(out.data))
    for t in inputs:
        if t.grad is not None:
            assert t.grad.shape == t.data.shape and t.grad.dtype == np.float32


@pytest.mark.parametrize("fn", [fn for _, fn in OPS], ids=IDS)
def test_enable_grad_inside_no_grad_records_again(fn):
    inputs = _inputs(requires_grad=True)
    with mdl.no_grad():
        with mdl.enable_grad():
            out = fn(*inputs)
        assert out.requires_grad and out._parents


def test_grad_mode_is_read_when_the_op_runs_not_when_its_inputs_were_made():
    a = mdl.tensor([1.0, 2.0], requires_grad=True)
    with mdl.set_grad_enabled(False):
        assert not mdl.is_grad_enabled()
        assert _is_plain(a * a) and _is_plain(a + 1)
    assert (a * a).requires_grad


@pytest.mark.parametrize("expr", [
    lambda t: t * 2.0, lambda t: t * np.float64(2), lambda t: t + np.float64(1), lambda t: 3 - t,
    lambda t: t - 1, lambda t: 10.0 / t, lambda t: t / np.float64(3), lambda t: 2 * t, lambda t: t ** 2.0,
    lambda t: t ** np.float64(0.5), lambda t: t + np.int64(1)])
def test_a_scalar_operand_keeps_float32_and_makes_a_one_parent_node(expr):
    t = mdl.tensor([1.0, 4.0], requires_grad=True)
    out = expr(t)
    assert out.dtype == np.float32
    assert len(out._parents) == 1 and out._parents[0] is t
    out.sum().backward()
    assert t.grad.dtype == np.float32
    with mdl.no_grad():
        assert expr(t).dtype == np.float32


def test_scalar_operand_gradients():
    x = np.array([0.5, 2.0, -1.5])
    check_gradients(lambda t: t * 3.0 + 1.0, x)
    check_gradients(lambda t: 2.0 - t / 4.0, x)
    check_gradients(lambda t: 10.0 / t - np.float64(2) * t, x)


def test_zero_d_results_hold_ndarrays():
    s = mdl.tensor(2.0, requires_grad=True)
    assert type((s + s).data) is np.ndarray     # (its gradient, summed by the engine, is a NumPy scalar)
    for out in (s * 2, 2 - s, s / s, s + 1, s.exp(), s.log(), -s, s ** 2, s.sigmoid(), s.tanh(), s.sum()):
        assert type(out.data) is np.ndarray and out.shape == () and out.dtype == np.float32
        out.backward()
        assert type(s.grad) is np.ndarray and s.grad.shape == ()
        s.grad = None


def test_a_parent_that_does_not_require_grad_gets_none():
    a = mdl.tensor(np.ones((2, 3)), requires_grad=True)
    b = mdl.tensor(np.full(3, 2.0))
    for out in (a * b, a - b, a / b, b / a, a + b, ops.linear(b.reshape(1, 3), a.T)):
        grads = out._backward(np.ones_like(out.data))
        for parent, g in zip(out._parents, grads):     # (linear without bias adds a trailing None)
            if parent.requires_grad:
                assert g.shape == parent.shape
            else:
                assert g is None


def test_broadcast_gradients_are_fresh_and_distinct_per_parent():
    a = mdl.tensor(np.ones((2, 3)), requires_grad=True)
    b = mdl.tensor(np.ones((1, 3)), requires_grad=True)
    c = mdl.tensor(np.ones(3), requires_grad=True)
    for out in (a + b, b + c, a - c, a * b, a / c):
        g = np.ones_like(out.data)
        ga, gb = out._backward(g)
        assert ga.shape == out._parents[0].shape and gb.shape == out._parents[1].shape
        assert ga is not gb or ga is g


def test_record_and_binary_are_the_public_way_to_define_an_op():
    def cube(a):
        """a³;  d/da = 3a²."""
        ad = a.data
        return ops.record(ad ** 3, (a,), lambda g: (g * (3 * ad * ad),))

    def hypot(a, b):
        """√(a² + b²);  d/da = a/out, d/db = b/out."""
        return ops.binary(a, b, lambda x, y: np.sqrt(x * x + y * y),
                          lambda g, x, y, out, need_x, need_y: (g * x / out, g * y / out))

    check_gradients(cube, np.array([[0.5, -2.0], [1.0, 3.0]]))
    check_gradients(hypot, np.array([[0.5, -2.0], [1.0, 3.0]]), np.array([1.5, 2.5]))
    t = mdl.tensor([3.0], requires_grad=True)
    out = hypot(t, 4.0)
    np.testing.assert_allclose(out.data, [5.0])
    assert out.dtype == np.float32 and len(out._parents) == 1
    out.backward(np.ones(1, dtype=np.float32))
    np.testing.assert_allclose(t.grad, [0.6])
    with mdl.no_grad():
        assert _is_plain(cube(t)) and _is_plain(hypot(t, t))
    assert _is_plain(ops.record(np.float32(2.0), (mdl.tensor(1.0),), None))
    np.testing.assert_array_equal(ops.unbroadcast(np.ones((4, 2, 3)), (2, 1)), np.full((2, 1), 12.0))


def test_nn_functional_uses_only_public_names_of_ops_and_autograd():
    tree = ast.parse((PACKAGE / "nn" / "functional.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("minidl.ops", "minidl.autograd"):
            assert not [a.name for a in node.names if a.name.startswith("_")], node.module
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ops":
            assert not node.attr.startswith("_"), node.attr


def test_tensor_does_not_import_ops():
    tree = ast.parse((PACKAGE / "tensor.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.module != "minidl.ops" and not (node.module == "minidl" and
                                                         any(a.name == "ops" for a in node.names))
        if isinstance(node, ast.Import):
            assert all(a.name != "minidl.ops" for a in node.names)


def test_tensor_operators_and_methods_dispatch_to_ops():
    assert mdl.Tensor.__add__ is ops.add and mdl.Tensor.__mul__ is ops.mul and mdl.Tensor.exp is ops.exp
    t = mdl.tensor(np.arange(6.0).reshape(2, 3))
    assert t.reshape(3, 2).shape == t.reshape((3, 2)).shape == (3, 2)
    assert t.transpose().shape == t.transpose(1, 0).shape == t.transpose((1, 0)).shape == t.T.shape == (3, 2)


def _spy(calls):
    def wrap(name, kernel):
        def call(*args, **kwargs):
            calls.append((name, [np.shape(a) for a in args], kwargs.get("trans_a", False),
                          kwargs.get("trans_b", False)))
            return kernel(*args, **kwargs)
        return call
    return wrap


def test_wrap_kernels_sees_every_kernel_call_of_linear_sigmoid_cross_entropy():
    mdl.manual_seed(0)
    layer = nn.Linear(3, 4)
    x = mdl.tensor(np.ones((5, 3)), requires_grad=True)
    calls = []
    with ops.wrap_kernels(_spy(calls)):
        F.cross_entropy(layer(x).sigmoid(), np.array([0, 1, 2, 3, 0])).backward()
    assert [c for c in calls if c[0] == "matmul"] == [
        ("matmul", [(5, 3), (3, 4)], False, False),      # forward  X @ W
        ("matmul", [(5, 4), (3, 4)], False, True),       # dX = G @ Wᵀ
        ("matmul", [(5, 3), (5, 4)], True, False)]       # dW = Xᵀ @ G
    assert [c[0] for c in calls if c[0] != "matmul"] == ["sigmoid_forward", "sigmoid_backward"]
    assert x.grad.shape == (5, 3) and layer.weight.grad.shape == (3, 4)


def test_wrap_kernels_restores_the_kernels_on_exit_and_on_error_and_nests():
    before = {name: getattr(_core, name) for name in ops.KERNELS}
    outer, inner = [], []
    a = mdl.tensor(np.ones((2, 2)), requires_grad=True)
    with ops.wrap_kernels(_spy(outer)):
        with ops.wrap_kernels(_spy(inner)):
            (a @ a).sigmoid()
        a @ a
    assert [c[0] for c in inner] == ["matmul", "sigmoid_forward"]
    assert [c[0] for c in outer] == ["matmul", "sigmoid_forward", "matmul"]
    with pytest.raises(ZeroDivisionError):
        with ops.wrap_kernels(_spy(outer)):
            1 / 0
    assert {name: getattr(_core, name) for name in ops.KERNELS} == before
    outer.clear()
    (a @ a).sigmoid()
    assert outer == []
