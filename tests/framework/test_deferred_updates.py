"""Plain SGD's weight update left for the weight's next forward product (minidl/deferred_update.py): training
gives bitwise the parameters and losses of the update applied in step(); every way of reading a parameter
sees it updated; a parameter whose array something else holds is updated in step() as before."""
import copy
import pickle
import time

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import minidl as mdl
import minidl.deferred_update as du
import minidl.optim.sgd as sgd_module
from minidl import _core, nn, optim
from minidl.nn import functional as F
from minidl.timed_choice import FixedChoice, TimedChoice

from test_deferred_gradients import DTYPES, batches, make_model   # the 30-50-40-7 MLP, batches of 6


def step(model, opt, x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def train(dtype, deferring, steps=30, **sgd):
    """(losses, parameters, number of updates left pending after a step)."""
    with pytest.MonkeyPatch.context() as patch:
        if not deferring:
            patch.setattr(sgd_module, "defer", lambda *args: False)
        model = make_model(dtype)
        opt = optim.SGD(model.parameters(), **sgd)
        losses, deferred = [], 0
        for x, y in batches(dtype, steps):
            losses.append(step(model, opt, x, y))
            deferred += sum(p._update is not None for p in model.parameters())
        return losses, [p.data.copy() for p in model.parameters()], deferred


def deferred_weights(model):
    return [p for p in model.parameters() if p._update is not None]


def one_step_each(dtype):
    """(model, eager_model, x, y): twin models after one SGD step on (x, y), the model's updates left
    pending, the eager one's applied in step()."""
    model, eager_model = make_model(dtype), make_model(dtype)
    x, y = batches(dtype, 1)[0]
    step(model, optim.SGD(model.parameters(), lr=0.1), x, y)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sgd_module, "defer", lambda *args: False)
        step(eager_model, optim.SGD(eager_model.parameters(), lr=0.1), x, y)
    return model, eager_model, x, y


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("sgd", [dict(lr=0.1), dict(lr=0.1, weight_decay=0.01)], ids=["plain", "weight_decay"])
def test_training_is_bitwise_the_update_in_step(dtype, sgd, threads):
    before = _core.get_num_threads()
    _core.set_num_threads(threads)
    try:
        losses, params, deferred = train(dtype, True, **sgd)
        losses_eager, params_eager, none = train(dtype, False, **sgd)
    finally:
        _core.set_num_threads(before)
    assert deferred == 2 * 30 and none == 0         # the two large weights, every step
    assert losses == losses_eager
    for got, want in zip(params, params_eager):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_training_is_bitwise_the_same_with_the_update_fused_or_as_its_own_gemm(dtype):
    """take_product runs the way deferred_update.fusion picks; both ways give the same bits, so the losses and
    parameters of training do not depend on the machine's choice (nor on the choice changing mid-run)."""
    results = []
    for fixed in (du.FUSED, du.SEPARATE, None):
        with pytest.MonkeyPatch.context() as patch:
            if fixed is not None:
                patch.setattr(du, "fusion", FixedChoice(fixed))
            else:                   # choosing: measures both ways in the first steps, then keeps one
                patch.setattr(du, "fusion", TimedChoice(trials=3, warmup=1, recheck=7))
            results.append(train(dtype, True, steps=30, lr=0.1))
    for losses, params, deferred in results[1:]:
        assert losses == results[0][0] and deferred == results[0][2] == 2 * 30
        for got, want in zip(params, results[0][1]):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("slow", [du.FUSED, du.SEPARATE], ids=["fused_slow", "separate_slow"])
def test_the_forward_product_finds_the_slower_way_and_avoids_it(slow):
    """With one way made 3 ms slower, the first calls of each weight's product try both, and every later call
    passes the kernel the other (``fuse=``), per weight shape; the parameters are those of either way."""
    model, eager_model, x, y = one_step_each(np.float32)
    ways = []

    def timed_way(name, kernel):
        if name != "matmul_after_update":
            return kernel

        def call(*args, fuse=True, **kwargs):
            ways.append((args[1].shape, du.FUSED if fuse else du.SEPARATE))
            if ways[-1][1] == slow:
                time.sleep(0.003)
            return kernel(*args, fuse=fuse, **kwargs)
        return call

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(du, "fusion", TimedChoice(trials=3, warmup=1, recheck=1000))
        opt, eager_opt = optim.SGD(model.parameters(), lr=0.1), optim.SGD(eager_model.parameters(), lr=0.1)
        with mdl.ops.wrap_kernels(timed_way):
            for _ in range(12):
                step(model, opt, x, y)
        patch.setattr(sgd_module, "defer", lambda *args: False)
        for _ in range(12):
            step(eager_model, eager_opt, x, y)
    for shape in {shape for shape, _ in ways}:
        of_shape = [way for s, way in ways if s == shape]
        assert of_shape[:8].count(du.FUSED) == of_shape[:8].count(du.SEPARATE) == 4     # (1 + 3) of each
        assert set(of_shape[8:]) == {1 - slow} and len(of_shape) == 12
    for got, want in zip(model.parameters(), eager_model.parameters()):
        np.testing.assert_array_equal(got.data, want.data)


@pytest.mark.parametrize("sgd", [dict(lr=0.1, momentum=0.9), dict(lr=0.1, momentum=0.5, nesterov=True)])
def test_momentum_updates_in_step(sgd):
    assert train(np.float32, True, steps=3, **sgd)[2] == 0


READERS = {
    "data": lambda p: p.data.copy(),
    "numpy": lambda p: p.numpy().copy(),
    "asarray": lambda p: np.array(np.asarray(p)),
    "array_copy": lambda p: np.array(p, dtype=np.float64),
    "detach": lambda p: p.detach().data.copy(),
    "op": lambda p: (p * 1.0).data,
    "matmul": lambda p: (mdl.Tensor(np.eye(p.shape[0], dtype=p.dtype)) @ p).data,
    "index": lambda p: p[:, :].data.copy(),
    "deepcopy": lambda p: copy.deepcopy(p).data.copy(),
    "pickle_state_dict": None,
}


@pytest.mark.parametrize("reader", list(READERS))
def test_every_reader_sees_the_update(reader):
    model, eager_model = make_model(np.float64), make_model(np.float64)
    opt, eager_opt = optim.SGD(model.parameters(), lr=0.1), optim.SGD(eager_model.parameters(), lr=0.1)
    (x, y), = batches(np.float64, 1)
    step(model, opt, x, y)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sgd_module, "defer", lambda *args: False)
        step(eager_model, eager_opt, x, y)
    weight, eager_weight = model.linears[0].weight, eager_model.linears[0].weight
    assert weight._update is not None
    if reader == "pickle_state_dict":
        got = pickle.loads(pickle.dumps(model.state_dict()))["0.weight"]
    else:
        got = READERS[reader](weight)
    np.testing.assert_array_equal(got, eager_weight.data)
    # shape, dtype, ndim and size do not need the values
    assert weight.shape == (30, 50) and weight.dtype == np.float64 and weight.ndim == 2 and weight.size == 1500


def test_shape_queries_leave_the_update_pending():
    model = make_model(np.float32)
    opt = optim.SGD(model.parameters(), lr=0.1)
    step(model, opt, *batches(np.float32, 1)[0])
    weight = model.linears[0].weight
    assert (weight.shape, weight.dtype, weight.ndim, weight.size, len(weight)) == ((30, 50), np.float32, 2, 1500, 30)
    assert weight._update is not None


def test_an_array_held_elsewhere_is_updated_in_step():
    """A view, a detached tensor or the array itself kept across steps sees every update at once."""
    model, eager_model = make_model(np.float32), make_model(np.float32)
    opt, eager_opt = optim.SGD(model.parameters(), lr=0.1), optim.SGD(eager_model.parameters(), lr=0.1)
    held = model.linears[0].weight.data                 # the array itself
    view = model.linears[1].weight.data[:, :3]          # a view of the other large weight
    for x, y in batches(np.float32, 3):
        step(model, opt, x, y)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sgd_module, "defer", lambda *args: False)
            step(eager_model, eager_opt, x, y)
        assert deferred_weights(model) == []
        np.testing.assert_array_equal(held, eager_model.linears[0].weight.data)
        np.testing.assert_array_equal(view, eager_model.linears[1].weight.data[:, :3])
    del held, view
    step(model, opt, *batches(np.float32, 1, seed=9)[0])
    assert len(deferred_weights(model)) == 2


def test_weights_that_are_views_of_one_buffer_are_updated_in_step():
    """Parameters wrapping views of one flat buffer (no copy, as torch.from_numpy): the buffer, read directly
    after each step, sees every update, and training equals the eager updates bit for bit."""
    model, eager_model = make_model(np.float32), make_model(np.float32)
    weights = [lin.weight for lin in model.linears[:2]]
    flat = np.concatenate([w.data.ravel() for w in weights])
    offsets = np.cumsum([0] + [w.data.size for w in weights])
    for w, start, stop in zip(weights, offsets[:-1], offsets[1:]):
        w.data = flat[start:stop].reshape(w.shape)
    opt, eager_opt = optim.SGD(model.parameters(), lr=0.1), optim.SGD(eager_model.parameters(), lr=0.1)
    for x, y in batches(np.float32, 3):
        step(model, opt, x, y)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sgd_module, "defer", lambda *args: False)
            step(eager_model, eager_opt, x, y)
        expected = np.concatenate([lin.weight.data.ravel() for lin in eager_model.linears[:2]])
        np.testing.assert_array_equal(flat, expected)
    assert all(w._update is None for w in weights)


def test_a_retained_graph_keeps_the_update_in_step():
    model = make_model(np.float32)
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, y = batches(np.float32, 1)[0]
    loss = F.cross_entropy(model(x), y)
    loss.backward(retain_graph=True)                    # the graph still holds the weights' arrays
    opt.step()
    first = model.linears[0].weight                     # the input needs no gradient: only x is saved there
    assert deferred_weights(model) == [first]


def test_two_steps_without_a_forward_and_a_reassigned_weight():
    model, eager_model = make_model(np.float64), make_model(np.float64)
    opt, eager_opt = optim.SGD(model.parameters(), lr=0.1), optim.SGD(eager_model.parameters(), lr=0.1)
    x, y = batches(np.float64, 1)[0]
    for m, o in [(model, opt), (eager_model, eager_opt)]:
        with pytest.MonkeyPatch.context() as patch:
            if m is eager_model:
                patch.setattr(sgd_module, "defer", lambda *args: False)
            o.zero_grad()
            F.cross_entropy(m(x), y).backward()
            o.step()
            o.step()                                    # the same gradient twice: both updates land
    assert len(deferred_weights(model)) == 2            # the second step applied the first update
    for p, q in zip(model.parameters(), eager_model.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    step(model, opt, x, y)
    weight = model.linears[0].weight
    assert weight._update is not None
    weight.data = np.zeros((30, 50))                    # assignment replaces the values, update and all
    assert weight._update is None and not weight.data.any()


def test_a_weight_shared_by_two_layers():
    """The first product applies the update in its pass, the second reads the updated weight."""
    rng = np.random.default_rng(3)
    shared = nn.Parameter(rng.standard_normal((40, 40)).astype(np.float32) * 0.1)
    eager = nn.Parameter(shared.data.copy())
    data = [mdl.Tensor(rng.standard_normal((4, 40)).astype(np.float32)) for _ in range(5)]
    for w, deferring in [(shared, True), (eager, False)]:
        opt = optim.SGD([w], lr=0.5)
        with pytest.MonkeyPatch.context() as patch:
            if not deferring:
                patch.setattr(sgd_module, "defer", lambda *args: False)
            for x in data:
                opt.zero_grad()
                h = F.linear(x, w).sigmoid()
                (F.linear(h, w) ** 2).sum().backward()
                opt.step()
    np.testing.assert_array_equal(shared.data, eager.data)


def test_an_input_sharing_memory_with_the_weight():
    """x a view of W itself: the product cannot update W while reading x, so the update is applied first."""
    w = nn.Parameter(np.random.default_rng(4).standard_normal((8, 8)))
    opt = optim.SGD([w], lr=0.1)
    x = mdl.Tensor(np.ones((2, 8)))
    opt.zero_grad()
    F.linear(x, w).sum().backward()
    opt.step()
    assert w._update is not None
    expected = w.data.copy()                            # applies it
    opt.zero_grad()
    F.linear(x, w).sum().backward()
    opt.step()
    update = w._update
    assert update is not None
    update.product.apply(expected, alpha=update.alpha, beta=update.beta)
    view = mdl.Tensor(w._data[:2])                      # shares W's memory, bypassing .data on purpose
    np.testing.assert_array_equal(F.linear(view, w).data, _core.matmul(expected[:2], expected))
    np.testing.assert_array_equal(w.data, expected)


@pytest.mark.parametrize("changed", [False, True], ids=["w_unchanged", "w_changed"])
def test_a_memory_error_in_the_fused_product(changed):
    """Out of memory: the update stays pending while W is unchanged, and is dropped once W has it."""
    model = make_model(np.float32)
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, y = batches(np.float32, 1)[0]
    step(model, opt, x, y)
    weight = model.linears[0].weight
    update = weight._update

    def out_of_memory(*args, **kwargs):
        error = MemoryError("matmul_after_update: could not allocate packing buffers")
        error.update_applied = changed
        raise error

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_core, "matmul_after_update", out_of_memory)
        with pytest.raises(MemoryError, match="packing buffers"):
            model(x)
    assert weight._update is (None if changed else update)


@pytest.mark.parametrize("path", ["forward", "data"])
def test_ctrl_c_as_the_kernel_returns_leaves_the_update_applied_once(path):
    """SIGINT arriving while the kernel applies the update raised as the call returned, after W changed and
    before the update was marked applied: the next read applied it again (a review's case; the Trainer's
    checkpoint after a second Ctrl-C held W3 + (W3 - W2))."""
    import os
    import signal

    model, eager_model, x, _ = one_step_each(np.float32)
    weight = model.linears[0].weight
    assert weight._update is not None
    kernel_name = "matmul_after_update" if path == "forward" else "matmul"
    kernel = getattr(_core, kernel_name)

    def then_ctrl_c(*args, **kwargs):
        out = kernel(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)             # lands as the kernel returns
        return out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_core, kernel_name, then_ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            if path == "forward":
                model(x)
            else:
                weight.data
    assert weight._update is None or weight._update.applied       # marked: the next read only clears it
    np.testing.assert_array_equal(weight.data, eager_model.linears[0].weight.data)
    assert weight._update is None


def test_a_child_forked_while_a_thread_applies_an_update_neither_hangs_nor_reads_it_torn():
    """The lock held by a thread that does not exist in the child hung every read of a pending update
    there; the update that thread was applying left W half done in the child."""
    import contextlib
    import os

    from minidl import deferred_update
    from fork_child import status_of_a_child_forked_while

    model = make_model(np.float32)
    opt = optim.SGD(model.parameters(), lr=0.1)
    step(model, opt, *batches(np.float32, 1)[0])
    torn, whole = model.linears[0].weight, model.linears[1].weight
    assert torn._update is not None and whole._update is not None

    @contextlib.contextmanager
    def applying():                                      # a thread caught inside take_product or settle
        with deferred_update._applying:
            deferred_update._in_flight = torn._update
            yield
            deferred_update._in_flight = None

    def child():
        whole.data
        try:
            torn.data
        except RuntimeError as error:
            return 0 if "half updated" in str(error) else 2
        return 3

    status = status_of_a_child_forked_while(applying, child)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    torn.data                                            # the parent applies it as usual


def test_load_state_dict_replaces_a_weight_whose_update_is_pending_or_torn():
    """A torn update (a fork during its kernel) made every read raise, load_state_dict's too: the one way
    to give the parameter new values was param.data = array."""
    model, eager_model, _, _ = one_step_each(np.float32)
    pending, torn = model.linears[0].weight._update, model.linears[1].weight._update
    torn.torn = True
    with pytest.raises(RuntimeError, match="half updated"):
        model.linears[1].weight.data
    model.load_state_dict(eager_model.state_dict())
    assert model.linears[0].weight._update is None and pending.applied
    for p, q in zip(model.parameters(), eager_model.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_a_weak_reference_to_the_weight_sees_every_update():
    import weakref

    model, eager_model = make_model(np.float32), make_model(np.float32)
    opt, eager_opt = optim.SGD(model.parameters(), lr=0.1), optim.SGD(eager_model.parameters(), lr=0.1)
    ref = weakref.ref(model.linears[0].weight.data)
    for x, y in batches(np.float32, 2):
        step(model, opt, x, y)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sgd_module, "defer", lambda *args: False)
            step(eager_model, eager_opt, x, y)
        np.testing.assert_array_equal(ref(), eager_model.linears[0].weight.data)


@pytest.mark.parametrize("reader", ["forward", "data"])
def test_threads_reading_a_parameter_at_once_apply_the_update_once(reader):
    """Two forward passes (or .data reads) at once: one applies the update, the other waits for it."""
    import threading

    sizes = [400, 400, 400, 5]
    rng = np.random.default_rng(7)
    x = mdl.Tensor(rng.standard_normal((4, 400)).astype(np.float32))
    y = rng.integers(0, 5, 4)
    model = nn.MLP(sizes, activation="sigmoid", generator=np.random.default_rng(0))
    eager_model = nn.MLP(sizes, activation="sigmoid", generator=np.random.default_rng(0))
    opt, eager_opt = optim.SGD(model.parameters(), lr=0.5), optim.SGD(eager_model.parameters(), lr=0.5)
    for round_ in range(6):
        step(model, opt, x, y)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sgd_module, "defer", lambda *args: False)
            step(eager_model, eager_opt, x, y)
        assert len(deferred_weights(model)) == 3          # batch 4: every weight's update
        with mdl.no_grad():
            want = eager_model(x).data
        start, results = threading.Barrier(4), []

        def read():
            start.wait()
            if reader == "forward":
                with mdl.no_grad():
                    results.append(model(x).data)
            else:
                results.append([p.data.copy() for p in model.parameters()])

        workers = [threading.Thread(target=read) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert len(results) == 4
        for got in results:
            if reader == "forward":
                np.testing.assert_array_equal(got, want)
            else:
                for p, q in zip(got, eager_model.parameters()):
                    np.testing.assert_array_equal(p, q.data)
        for p, q in zip(model.parameters(), eager_model.parameters()):
            np.testing.assert_array_equal(p.data, q.data)


ACTIONS = ["train", "train_twice", "evaluate", "read", "hold", "release", "momentum_step"]


@settings(max_examples=60, deadline=None)
@given(program=st.lists(st.tuples(st.sampled_from(ACTIONS),
                                  st.one_of(st.integers(1, 20), st.integers(1, 80)),     # mostly deferring
                                  st.sampled_from([0, 2, 4, 0, 2, 1, 3, 5])),            # mostly weights
                        min_size=1, max_size=12),
       dtype=st.sampled_from(DTYPES), threads=st.sampled_from([1, 2]))
@example(program=[("hold", 5, 0), ("train", 5, 0), ("release", 5, 0), ("train", 70, 0), ("evaluate", 75, 0)],
         dtype=np.float32, threads=2)
def test_random_programs_see_what_updates_in_step_give(program, dtype, threads):
    """Differential: random sequences of training steps (batch 1-80: fused, update-first and eager paths),
    evaluations, parameter reads, references held and dropped, and a momentum step, on a model whose SGD
    defers and one whose SGD does not; every value either program observes is bitwise the same."""
    before = _core.get_num_threads()
    _core.set_num_threads(threads)
    try:
        models = [make_model(dtype, seed=5), make_model(dtype, seed=5)]
        optimizers = [optim.SGD(m.parameters(), lr=0.05) for m in models]
        held = [[], []]
        rng = np.random.default_rng(len(program))
        for action, batch, index in program:
            x = mdl.Tensor(rng.standard_normal((batch, 30)).astype(dtype))
            y = rng.integers(0, 7, batch)
            seen = []
            for side, (model, opt) in enumerate(zip(models, optimizers)):
                with pytest.MonkeyPatch.context() as patch:
                    if side == 1:
                        patch.setattr(sgd_module, "defer", lambda *args: False)
                    param = list(model.parameters())[index]
                    if action in ("train", "train_twice", "momentum_step"):
                        if action == "momentum_step":
                            opt.param_groups[0]["momentum"] = 0.9
                        seen.append(step(model, opt, x, y))
                        if action == "train_twice":
                            opt.step()                  # the same gradients again, no forward between
                        opt.param_groups[0]["momentum"] = 0.0
                    elif action == "evaluate":
                        with mdl.no_grad():
                            seen.append(model(x).data.copy())
                    elif action == "read":
                        seen.append(param.data.copy())
                    elif action == "hold":
                        held[side].append(param.data[: index + 1])
                    elif held[side]:
                        held[side].pop()
                    seen.append([h.copy() for h in held[side]])
            for a, b in zip(seen[: len(seen) // 2], seen[len(seen) // 2:]):
                np.testing.assert_equal(a, b)
        for p, q in zip(*(m.parameters() for m in models)):
            np.testing.assert_array_equal(p.data, q.data)
    finally:
        _core.set_num_threads(before)


@pytest.mark.parametrize("first", ["copy", "original", "forward"])
def test_a_shallow_copy_shares_the_update_and_it_lands_once(first):
    """copy.copy of a waiting parameter shares W's array and the update: whichever reads first applies it."""
    model, eager_model, x, _ = one_step_each(np.float64)
    weight = model.linears[0].weight
    assert weight._update is not None
    twin = copy.copy(weight)
    with mdl.no_grad():
        want = eager_model(x).data
        if first == "forward":
            np.testing.assert_array_equal(model(x).data, want)
        readers = [twin, weight] if first == "copy" else [weight, twin]
        for tensor in readers:
            np.testing.assert_array_equal(tensor.data, eager_model.linears[0].weight.data)
        assert twin.data is weight.data
        np.testing.assert_array_equal(model(x).data, want)


@pytest.mark.parametrize("setting,pending", [(None, 2), ("0", 0), ("off", 0), ("1", 2)])
def test_the_environment_switch(setting, pending):
    """MINIDL_DEFERRED_UPDATES=0 applies every update in step() (read at import, so in a child process)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import numpy as np, minidl as mdl\n"
            "from minidl import nn, optim\n"
            "from minidl.nn import functional as F\n"
            "m = nn.MLP([30, 50, 40, 7], activation='sigmoid', generator=np.random.default_rng(0))\n"
            "opt = optim.SGD(m.parameters(), lr=0.1)\n"
            "x = mdl.Tensor(np.random.default_rng(1).standard_normal((6, 30)).astype(np.float32))\n"
            "F.cross_entropy(m(x), np.arange(6)).backward(); opt.step()\n"
            "print(sum(p._update is not None for p in m.parameters()))\n")
    env = {k: v for k, v in os.environ.items() if k != "MINIDL_DEFERRED_UPDATES"}
    if setting is not None:
        env["MINIDL_DEFERRED_UPDATES"] = setting
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                         timeout=60, cwd=Path(mdl.__file__).resolve().parents[1]).stdout
    assert int(out) == pending
