"""The engine: reused nodes, accumulation, deep graphs, freeing, hooks, retain_grad, no_grad, dtypes."""
import numpy as np
import pytest

import minidl as mdl
from minidl import nn


def test_node_used_twice():
    a = mdl.tensor([1.0, -2.0, 3.0], requires_grad=True)
    b = a + a
    c = b + b
    c.sum().backward()
    np.testing.assert_array_equal(a.grad, [4.0, 4.0, 4.0])


def test_node_used_twice_in_a_product():
    a = mdl.tensor([3.0], requires_grad=True)
    (a * a * a).sum().backward()           # d(a³)/da = 3a² = 27
    np.testing.assert_allclose(a.grad, [27.0])


@pytest.mark.parametrize("passes", [1, 2, 3])
def test_gradients_accumulate_over_fresh_passes(passes):
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    w = mdl.tensor([[1.0, 2.0], [-1.0, 0.5]], requires_grad=True)
    for _ in range(passes):
        ((mdl.tensor(x) @ w).tanh() * 3).sum().backward()
    single = mdl.tensor(w.data.copy(), requires_grad=True)
    ((mdl.tensor(x) @ single).tanh() * 3).sum().backward()
    np.testing.assert_allclose(w.grad, passes * single.grad, rtol=1e-6)


def test_leaf_gradients_do_not_alias_each_other():
    a = mdl.tensor([1.0, 2.0], requires_grad=True)
    b = mdl.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()               # both receive the very same upstream array
    assert a.grad is not b.grad and not np.shares_memory(a.grad, b.grad)
    (a + b).sum().backward()
    np.testing.assert_array_equal(a.grad, [2.0, 2.0])
    np.testing.assert_array_equal(b.grad, [2.0, 2.0])


def test_user_grad_argument_is_not_aliased_or_modified():
    a = mdl.tensor([1.0, 2.0], requires_grad=True)
    g = np.array([1.0, 1.0], dtype=np.float32)
    (a * 1).backward(g)
    (a * 1).backward(g)
    np.testing.assert_array_equal(g, [1.0, 1.0])
    np.testing.assert_array_equal(a.grad, [2.0, 2.0])


def test_deep_chain_of_10000_ops_has_no_recursion_limit():
    x = mdl.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001 ** 10_000], rtol=1e-3)


@pytest.mark.timeout(30)                   # a path-by-path engine takes 2**200 steps: fail, do not hang
def test_wide_diamond_graph_visits_each_node_once():
    x = mdl.tensor(2.0, requires_grad=True)
    y = x
    for _ in range(200):                   # y_{k+1} = y_k + y_k doubles the gradient each level
        y = (y + y) * 0.5
    y.backward()
    assert x.grad == pytest.approx(1.0)


def test_graph_is_freed_after_backward_unless_retained():
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_backward_needs_grad_for_non_scalar_and_matching_shape():
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="one element"):
        (x * 2).backward()
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        (x * 2).backward(np.ones(3))
    with pytest.raises(RuntimeError, match="does not require grad"):
        mdl.tensor([1.0]).backward()


def test_no_grad_records_nothing_and_restores():
    x = mdl.tensor([1.0], requires_grad=True)
    with mdl.no_grad():
        y = x * 2 + 1
        assert not mdl.is_grad_enabled()
    assert mdl.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf

    @mdl.no_grad()
    def f(t):
        return t.exp()
    assert not f(x).requires_grad


def test_grad_mode_is_per_thread():
    """As in PyTorch: a thread inside no_grad does not stop another thread from recording its graph."""
    import threading

    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    inside, done, seen = threading.Event(), threading.Event(), {}

    def evaluate():
        with mdl.no_grad():
            inside.set()
            done.wait(10)
            seen["evaluator"] = (x * 2).requires_grad

    evaluator = threading.Thread(target=evaluate)
    evaluator.start()
    assert inside.wait(10)
    y = (x * 3).sum()                       # this thread records while the other one is in no_grad
    done.set()
    evaluator.join()
    assert y.requires_grad and mdl.is_grad_enabled() and seen == {"evaluator": False}
    y.backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_threads_training_models_of_their_own_at_once():
    """The log of in-place writes is shared by every thread: one thread's optimizer step wrote it while
    another thread's backward read it (this test failed with "deque mutated during iteration" in 5 runs of 5
    without the log's lock). Each model ends as the same training on one thread leaves it."""
    import sys
    import threading

    from minidl import optim
    from minidl.nn import functional as F

    def build(seed):
        mdl.manual_seed(seed)
        return nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(16, 16), nn.Tanh())], nn.Linear(16, 4))

    def train(model, seed):
        rng = np.random.default_rng(seed)
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        for _ in range(200):
            x, y = rng.standard_normal((8, 16)).astype(np.float32), rng.integers(0, 4, 8)
            opt.zero_grad()
            F.cross_entropy(model(mdl.Tensor(x)), y).backward()
            opt.step()

    alone = [build(seed) for seed in range(4)]
    for seed, model in enumerate(alone):
        train(model, seed)
    together, errors = [build(seed) for seed in range(4)], []   # built here: the seed is global

    def run(seed):
        try:
            train(together[seed], seed)
        except Exception as error:             # reported below, with the others
            errors.append(repr(error))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        threads = [threading.Thread(target=run, args=(seed,)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    for seed in range(4):
        for a, b in zip(alone[seed].parameters(), together[seed].parameters()):
            np.testing.assert_array_equal(a.data, b.data)


def test_a_child_forked_while_a_thread_logs_an_in_place_write_does_not_hang():
    """The write log's lock, held by a thread that does not exist in a fork()ed child, would hang the
    child's first in-place write and its first backward() through a graph recorded before one."""
    import os

    from minidl import autograd
    from fork_child import status_of_a_child_forked_while

    def child():
        w = mdl.tensor([1.0, 2.0], requires_grad=True)
        y = (w * mdl.ones(2)).sum()
        with mdl.no_grad():
            w += 1                                       # logged; y saved the ones, not w
        y.backward()
        return 0 if w.grad.tolist() == [1.0, 1.0] else 2

    status = status_of_a_child_forked_while(lambda: autograd._writes.lock, child)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


def test_a_leafs_gradient_is_accumulated_as_soon_as_the_node_that_takes_it_gave_it():
    """As PyTorch's engine: a hook on an activation sees the later layer's parameters with their gradients
    and the earlier layer's without, so an optimizer step in that hook (a step in backward) updates the later
    layer; before, every leaf was accumulated after the whole rest of the sweep and that step changed nothing."""
    from minidl import optim

    mdl.manual_seed(3)
    l1, l2 = nn.Linear(3, 4), nn.Linear(4, 2)
    x = mdl.tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3))
    seen = []
    h = l1(x)
    h.register_hook(lambda g: seen.append((l2.weight.grad is None, l2.bias.grad is None, l1.weight.grad is None)))
    l2(h).sum().backward()
    assert seen == [(False, False, True)]
    expected_grad = l2.weight.grad.copy()
    np.testing.assert_allclose(expected_grad, h.data.T @ np.ones((2, 2), np.float32), rtol=1e-6)
    opt = optim.SGD(l2.parameters(), lr=0.5)
    opt.zero_grad()
    before = l2.weight.numpy().copy()
    h = l1(x)
    h.register_hook(lambda g: opt.step())
    l2(h).sum().backward()
    np.testing.assert_allclose(l2.weight.numpy(), before - 0.5 * expected_grad, rtol=1e-6)


def test_one_grad_mode_object_entered_again_restores_each_level():
    """A decorated function that recurses, and one object used in nested with-blocks."""
    @mdl.enable_grad()
    def depth(n):
        return n if n == 0 else depth(n - 1)

    with mdl.no_grad():
        depth(3)
        assert not mdl.is_grad_enabled()            # the outermost exit restored no_grad
    off = mdl.no_grad()
    with off:
        with mdl.enable_grad():
            with off:
                assert not mdl.is_grad_enabled()
            assert mdl.is_grad_enabled()
        assert not mdl.is_grad_enabled()
    assert mdl.is_grad_enabled()


def test_set_grad_enabled_as_a_call_a_with_and_a_decorator():
    """PyTorch's three uses: the call on its own switches the mode (it changed nothing: graphs were still
    recorded); a with-block restores the mode the call found; a decorator leaves it until the call."""
    x = mdl.tensor([1.0], requires_grad=True)
    try:
        mdl.set_grad_enabled(False)
        assert not mdl.is_grad_enabled() and not (x * 2).requires_grad
        mdl.set_grad_enabled(True)
        assert mdl.is_grad_enabled() and (x * 2).requires_grad
        with mdl.set_grad_enabled(False):
            assert not (x * 2).requires_grad
        assert mdl.is_grad_enabled()
        with mdl.no_grad():
            with mdl.set_grad_enabled(True):
                assert (x * 2).requires_grad
            assert not mdl.is_grad_enabled()

        @mdl.set_grad_enabled(False)
        def evaluate(t):
            return t * 2
        assert mdl.is_grad_enabled()
        assert not evaluate(x).requires_grad and mdl.is_grad_enabled()
    finally:
        mdl.set_grad_enabled(True)


def test_no_grad_and_enable_grad_decorate_without_parentheses():
    x = mdl.tensor([1.0], requires_grad=True)

    @mdl.no_grad
    def evaluate(t):
        return t * 2

    @mdl.enable_grad
    def train(t):
        return t * 2
    assert not evaluate(x).requires_grad and evaluate.__name__ == "evaluate"
    with mdl.no_grad():
        assert train(x).requires_grad
    assert mdl.is_grad_enabled()
    with pytest.raises(TypeError, match="no_grad"):
        mdl.no_grad(3)


def test_inputs_without_requires_grad_receive_nothing():
    a = mdl.tensor([[1.0, 2.0]])
    w = mdl.tensor([[1.0], [2.0]], requires_grad=True)
    (a @ w).sum().backward()
    assert a.grad is None
    np.testing.assert_array_equal(w.grad, [[1.0], [2.0]])


def test_inplace_operator_builds_a_new_node():
    a = mdl.tensor([1.0, 2.0], requires_grad=True)
    c = a * 1
    before = c
    c += a
    assert c is not before
    c.sum().backward()
    np.testing.assert_array_equal(a.grad, [2.0, 2.0])
    with pytest.raises(RuntimeError, match="changed in place"):     # it kept the old values: reading is refused
        before.data


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grad_dtype_and_type_follow_the_leaf(dtype):
    w = mdl.tensor(np.ones((3, 2), dtype=dtype), requires_grad=True)
    b = mdl.tensor(np.zeros(2, dtype=dtype), requires_grad=True)
    x = mdl.tensor(np.ones((4, 3), dtype=dtype))
    nn.functional.cross_entropy(nn.functional.linear(x, w, b).sigmoid(), np.array([0, 1, 1, 0])).backward()
    for t in (w, b):
        assert type(t.grad) is np.ndarray and t.grad.dtype == dtype and t.grad.shape == t.shape
    s = mdl.tensor(np.array(2.0, dtype=dtype), requires_grad=True)
    (s * s).backward()
    assert type(s.grad) is np.ndarray and s.grad.shape == () and s.grad == 4


def test_tensor_hook_sees_complete_gradient_and_can_replace_it():
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    seen = []
    handle = h.register_hook(lambda g: seen.append(g.copy()))
    (h + h).sum().backward()               # h used twice: the hook must see the sum, once
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], [2.0, 2.0])
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])

    handle.remove()
    x.grad = None
    h = x * 3
    h.register_hook(lambda g: g * 0 + 10)  # replacement, as PyTorch
    h.sum().backward()
    np.testing.assert_array_equal(x.grad, [30.0, 30.0])
    assert len(seen) == 1


def test_hook_on_leaf_sees_each_pass_contribution():
    w = mdl.tensor([1.0], requires_grad=True)
    seen = []
    w.register_hook(lambda g: seen.append(float(g[0])))
    (w * 2).sum().backward()
    (w * 5).sum().backward()
    assert seen == [2.0, 5.0]
    np.testing.assert_array_equal(w.grad, [7.0])


def test_retain_grad_keeps_non_leaf_gradient():
    x = mdl.tensor([1.0, -1.0], requires_grad=True)
    h = x.tanh()
    h.retain_grad()
    y = x.tanh()
    (h * 2).sum().backward()
    np.testing.assert_array_equal(h.grad, [2.0, 2.0])
    (y * 2).sum().backward()
    with pytest.warns(UserWarning, match="not a leaf"):        # as PyTorch: a common slip, said
        assert y.grad is None


def test_detach_cuts_the_graph_and_shares_data():
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    y = (x * d).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


def test_backward_releases_the_graph_so_intermediates_can_be_freed():
    x = mdl.tensor(np.ones(3), requires_grad=True)
    h = x.exp()
    y = (h * 2).sum()
    y.backward(retain_graph=True)
    assert y._parents                       # retained: still linked to its inputs
    y.backward()
    assert y._parents == () and h._parents == ()


def test_matmul_and_sigmoid_run_through_the_core_without_materialized_transposes():
    from minidl import ops
    calls = []

    def spy(name, kernel):
        def call(*args, **kwargs):
            calls.append((name, [a.shape for a in args], kwargs.get("trans_a", False), kwargs.get("trans_b", False),
                          [a.flags.c_contiguous for a in args]))
            return kernel(*args, **kwargs)
        return call
    layer = nn.Linear(3, 4)
    x = mdl.tensor(np.ones((5, 3)), requires_grad=True)
    with ops.wrap_kernels(spy):
        layer(x).sigmoid().sum().backward()
    matmuls = [c for c in calls if c[0] == "matmul"]
    assert [(c[1], c[2], c[3]) for c in matmuls] == [
        ([(5, 3), (3, 4)], False, False),      # forward  X @ W
        ([(5, 4), (3, 4)], False, True),       # dX = G @ Wᵀ
        ([(5, 3), (5, 4)], True, False)]       # dW = Xᵀ @ G
    assert all(all(flags) for _, _, _, _, flags in matmuls)
    assert [c[0] for c in calls if "sigmoid" in c[0]] == ["sigmoid_forward", "sigmoid_backward"]


def test_an_integer_tensor_made_to_require_grad_by_assignment_is_refused_in_backward():
    """``t.requires_grad = True`` on an int64 tensor (the constructor refuses it) gave t.grad = [2, 2] for
    d(2.5·t)/dt, the gradient truncated to t's dtype; PyTorch refuses integers that require grad."""
    t = mdl.Tensor(np.array([1, 2]))
    t.requires_grad = True
    with pytest.raises(RuntimeError, match="only floating-point tensors can require grad.*int64"):
        (t * 2.5).sum().backward()
    assert t.grad is None
    with pytest.raises(RuntimeError, match="only floating-point tensors can require grad.*int64"):
        (t * 3).sum().backward()               # an integer gradient needs no cast: it was accumulated, [3, 3]
    assert t.grad is None
