"""Weight gradients kept pending (minidl/pending_product.py): backward keeps Xᵀ·dY as its factors, .grad
materializes it, SGD applies it as a GEMM epilogue. The training tests compare against the path without
pending products: the same training with ``PendingProduct.worth_deferring`` patched to say no, so that
backward materializes every weight gradient at once, as it did before pending products existed."""
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl as mdl
from minidl import nn, optim
from minidl.nn import functional as F
from minidl.pending_product import PendingProduct

DTYPES = [np.float32, np.float64]
# float32: 40 steps of lr 0.1 on an MLP, each rounding its update differently (GEMM epilogue vs. axpby)
TOLERANCE = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
SIZES = [30, 50, 40, 7]            # batch 6: 6·(30+50) < 30·50 and 6·(50+40) < 50·40 keep those pending


def make_model(dtype, seed=0):
    return nn.MLP(SIZES, activation="sigmoid", dtype=dtype, generator=np.random.default_rng(seed))


def batches(dtype, count, batch=6, seed=1):
    rng = np.random.default_rng(seed)
    return [(mdl.Tensor(rng.standard_normal((batch, SIZES[0])).astype(dtype)), rng.integers(0, SIZES[-1], batch))
            for _ in range(count)]


def train(dtype, make_optimizer, materialize, steps=40, backwards=1, read_between=False, set_to_none=True):
    """Train from the same start; ``materialize``: never keep a gradient pending (the ndarray path)."""
    with pytest.MonkeyPatch.context() as patch:
        if materialize:
            patch.setattr(PendingProduct, "worth_deferring", staticmethod(lambda rows, m, n: False))
        return _train(dtype, make_optimizer, steps, backwards, read_between, set_to_none)


def _train(dtype, make_optimizer, steps, backwards, read_between, set_to_none):
    model = make_model(dtype)
    opt = make_optimizer(model.parameters())
    data = batches(dtype, steps * backwards)
    for s in range(steps):
        opt.zero_grad(set_to_none=set_to_none)
        for b in range(backwards):
            x, y = data[s * backwards + b]
            F.cross_entropy(model(x), y).backward()
            if read_between and b == 0:
                model.linears[1].weight.grad    # one layer materialized between the two backward passes
        opt.step()
    return [p.data.copy() for p in model.parameters()]


def assert_same_training(dtype, make_optimizer, **kwargs):
    pending = train(dtype, make_optimizer, materialize=False, **kwargs)
    materialized = train(dtype, make_optimizer, materialize=True, **kwargs)
    start = [p.data for p in make_model(dtype).parameters()]
    for got, want, p0 in zip(pending, materialized, start):
        assert not np.array_equal(want, p0)                       # training moved every parameter
        np.testing.assert_allclose(got, want, **TOLERANCE[dtype])


SGD_SETTINGS = {
    "plain": dict(lr=0.1),
    "weight_decay": dict(lr=0.1, weight_decay=0.01),
    "momentum": dict(lr=0.1, momentum=0.9),
    "momentum_dampening_wd": dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.02),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "nesterov_wd": dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.05),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("setting", SGD_SETTINGS, ids=list(SGD_SETTINGS))
def test_sgd_applies_pending_gradients_as_the_materialized_path_does(dtype, setting):
    assert_same_training(dtype, lambda ps: optim.SGD(ps, **SGD_SETTINGS[setting]))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("setting", ["plain", "momentum_dampening_wd", "nesterov_wd"])
@pytest.mark.parametrize("read_between", [False, True], ids=["pending", "read_between"])
def test_two_backward_passes_before_a_step(dtype, setting, read_between):
    assert_same_training(dtype, lambda ps: optim.SGD(ps, **SGD_SETTINGS[setting]), steps=20, backwards=2,
                         read_between=read_between)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("setting", ["plain", "momentum", "nesterov_wd"])
def test_zero_grad_keeping_zero_arrays(dtype, setting):
    assert_same_training(dtype, lambda ps: optim.SGD(ps, **SGD_SETTINGS[setting]), steps=10, set_to_none=False)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("make_optimizer", [
    lambda ps: optim.Adam(ps, lr=1e-2, weight_decay=0.01), lambda ps: optim.AdamW(ps, lr=1e-2)],
    ids=["Adam", "AdamW"])
def test_adam_materializes_to_the_same_bits(dtype, make_optimizer):
    """Adam materializes a pending gradient with the same GEMM as backward did: bitwise the same training."""
    pending = train(dtype, make_optimizer, materialize=False, steps=10, backwards=2)
    materialized = train(dtype, make_optimizer, materialize=True, steps=10, backwards=2)
    for got, want in zip(pending, materialized):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_backward_keeps_small_batch_weight_gradients_pending_and_grad_materializes_them(dtype):
    model = make_model(dtype)
    x, y = batches(dtype, 1)[0]
    hidden = model.activations[0](model.linears[0](x))
    F.cross_entropy(model(x), y).backward()
    first, last = model.linears[0].weight, model.linears[-1].weight
    assert type(first._grad) is PendingProduct                   # 6·(30+50) < 30·50
    assert type(last._grad) is np.ndarray                        # 6·(40+7) > 40·7: materialized at once
    assert type(model.linears[0].bias._grad) is np.ndarray
    # Layer i's weight gradient is its input transposed times dL/dz of its output z = h W + b.
    grad = first.grad
    assert type(grad) is np.ndarray and grad.dtype == dtype and grad.shape == (30, 50)
    assert first.grad is grad                                    # materialized once, then kept
    reference = x.data.astype(np.float64).T @ _pre_activation_gradient(make_model(dtype), x, y, layer=0)
    np.testing.assert_allclose(grad, reference, **TOLERANCE[dtype])
    reference = hidden.data.astype(np.float64).T @ _pre_activation_gradient(make_model(dtype), x, y, layer=1)
    np.testing.assert_allclose(model.linears[1].weight.grad, reference, **TOLERANCE[dtype])


def _pre_activation_gradient(model, x, y, layer):
    """dL/dz of Linear ``layer``'s output z, by a fresh forward pass with retain_grad (no pending there)."""
    h = x
    for i, lin in enumerate(model.linears):
        z = lin(h)
        if i == layer:
            z.retain_grad()
            target = z
        h = model.activations[i](z) if i < len(model.activations) else z
    F.cross_entropy(h, y).backward()
    return target.grad.astype(np.float64)


def test_large_batches_materialize_at_once():
    model = make_model(np.float32)
    x, y = batches(np.float32, 1, batch=40)[0]                   # 40·(30+50) > 30·50
    F.cross_entropy(model(x), y).backward()
    assert all(type(lin.weight._grad) is np.ndarray for lin in model.linears)


def test_pending_terms_stay_smaller_than_the_product():
    """Backward after backward without zero_grad: terms are added while their factors stay smaller than
    the product, then it materializes and later passes add into that array (no growth)."""
    model = make_model(np.float64)
    weight = model.linears[0].weight
    data = batches(np.float64, 60)
    total = np.zeros((30, 50))
    kinds = set()
    for x, y in data:
        F.cross_entropy(model(x), y).backward()
        g = weight._grad
        kinds.add(type(g))
        if type(g) is PendingProduct:
            rows = sum(len(x_i) for x_i, _ in g.terms)
            assert rows * (30 + 50) < 30 * 50
    assert kinds == {PendingProduct, np.ndarray}
    other = make_model(np.float64)
    for x, y in data:                                            # the same sum, each pass materialized
        F.cross_entropy(other(x), y).backward()
        total += other.linears[0].weight.grad
        other.linears[0].weight.grad = None
    np.testing.assert_allclose(weight.grad, total, rtol=1e-10)


def _address(array) -> int:
    return array.__array_interface__["data"][0]


def _fresh_gradient(layer: int) -> np.ndarray:
    model = make_model(np.float64)
    x, y = batches(np.float64, 1)[0]
    F.cross_entropy(model(x), y).backward()
    return model.linears[layer].weight.grad


def _two_weights(rng):
    """w1 (30 x 50) and w2 (50 x 40), float64 leaves: with 4 rows, both gradients stay pending."""
    return (mdl.tensor(rng.standard_normal(shape), requires_grad=True, dtype=np.float64)
            for shape in ((30, 50), (50, 40)))


def _sigmoid_gradient(h, w2):
    """d/dw2 of sum(sigmoid(h @ w2))."""
    s = 1 / (1 + np.exp(-(h @ w2)))
    return h.T @ (s * (1 - s))


def test_factors_are_copies_where_the_caller_can_still_write_them():
    """Writing to the input or reusing its buffer after backward does not change the gradient."""
    model = make_model(np.float64)
    x, y = batches(np.float64, 1)[0]
    F.cross_entropy(model(x), y).backward()
    pending = model.linears[0].weight._grad
    assert type(pending) is PendingProduct
    x.data[...] = 1e6
    np.testing.assert_array_equal(model.linears[0].weight.grad, _fresh_gradient(0))


def test_factors_only_the_graph_held_are_kept_without_a_copy():
    """The hidden layer's input (an activation) and both dY reach the pending products as they are."""
    model = make_model(np.float64)
    x, y = batches(np.float64, 1)[0]
    inputs = []            # addresses only: a reference to the arrays would make them shared
    handles = [lin.register_forward_hook(lambda mod, args, out: inputs.append(_address(args[0].data)))
               for lin in model.linears[:2]]
    F.cross_entropy(model(x), y).backward()
    for handle in handles:
        handle.remove()
    first, second = (model.linears[i].weight._grad for i in (0, 1))
    assert type(first) is PendingProduct and type(second) is PendingProduct
    assert _address(first.terms[0][0]) != inputs[0]      # the caller's batch: copied
    assert _address(second.terms[0][0]) == inputs[1]     # the activation, which only the graph held
    np.testing.assert_array_equal(model.linears[1].weight.grad, _fresh_gradient(1))


@pytest.mark.parametrize("retain_graph", [False, True])
def test_an_activation_the_caller_kept_is_copied(retain_graph):
    model = make_model(np.float64)
    x, y = batches(np.float64, 1)[0]
    kept = []
    handle = model.linears[1].register_forward_hook(lambda mod, args, out: kept.append(args[0]))
    loss = F.cross_entropy(model(x), y)
    handle.remove()
    loss.backward(retain_graph=retain_graph)       # retained: the graph holds it too
    kept[0].data[...] = -3.0
    np.testing.assert_array_equal(model.linears[1].weight.grad, _fresh_gradient(1))


def test_a_gradient_a_hook_kept_is_copied():
    """A tensor hook that stores dY and writes into it after backward cannot change a weight's gradient."""
    rng = np.random.default_rng(5)
    w1, w2 = _two_weights(rng)
    x = mdl.tensor(rng.standard_normal((4, 30)), dtype=np.float64)

    def gradient_of_w2(stash):
        w2.grad = None
        z = x @ w1 @ w2
        z.register_hook(lambda g: stash.append(g))
        z.sigmoid().sum().backward()
        assert type(w2._grad) is PendingProduct
        return w2

    kept = []
    gradient_of_w2(kept)
    kept[0][...] = 7.0
    got = w2.grad
    np.testing.assert_array_equal(got, gradient_of_w2([]).grad)


def test_a_backward_that_fails_midway_still_claims_the_factors():
    """A hook raising after a weight got its pending gradient: the product still claims its factors,
    copying the activation the caller holds; writing to it then changes nothing."""
    rng = np.random.default_rng(6)
    w1, w2 = _two_weights(rng)
    x = mdl.tensor(rng.standard_normal((4, 30)), dtype=np.float64)
    scale = mdl.tensor(2.0, dtype=np.float64, requires_grad=True)
    h = (x @ w1).sigmoid()
    z = h @ w2
    want = 2.0 * _sigmoid_gradient(h.data, w2.data)

    def fail(g):
        assert type(w2._grad) is PendingProduct        # w2's gradient is already in its slot
        raise KeyError("stop")
    w1.register_hook(fail)                             # the last leaf the sweep reaches
    with pytest.raises(KeyError, match="stop"):
        (z.sigmoid().sum() * scale).backward()
    h.data[...] = 9.0
    np.testing.assert_allclose(w2.grad, want, rtol=1e-12)


def test_hooks_clip_grad_norm_and_hand_set_grads_see_ndarrays():
    model = make_model(np.float32)
    x, y = batches(np.float32, 1)[0]
    seen = []
    handle = model.linears[0].weight.register_hook(lambda g: seen.append(type(g)))
    F.cross_entropy(model(x), y).backward()
    handle.remove()
    assert seen == [np.ndarray] and type(model.linears[0].weight._grad) is np.ndarray
    # clip_grad_norm_ reads (materializes) and scales in place; SGD then uses the clipped arrays.
    ref = make_model(np.float32)
    F.cross_entropy(ref(x), y).backward()
    norm = nn.utils.clip_grad_norm_(ref.parameters(), 0.01)
    assert float(norm) > 0.01
    clipped = [p.grad.copy() for p in ref.parameters()]
    assert np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in clipped)) == pytest.approx(0.01, rel=1e-3)
    before = [p.data.copy() for p in ref.parameters()]
    optim.SGD(ref.parameters(), lr=1.0).step()
    for p, p0, g in zip(ref.parameters(), before, clipped):
        np.testing.assert_allclose(p.data, p0 - g, rtol=1e-6, atol=1e-7)
    # A .grad set by hand (another dtype) then accumulated into by a backward that keeps it pending.
    hand = make_model(np.float32)
    hand.linears[0].weight.grad = np.ones((30, 50), np.float64)
    F.cross_entropy(hand(x), y).backward()
    fresh = make_model(np.float32)
    F.cross_entropy(fresh(x), y).backward()
    got = hand.linears[0].weight.grad
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, 1.0 + fresh.linears[0].weight.grad, rtol=1e-6)


def test_a_weight_used_twice_sums_both_products():
    rng = np.random.default_rng(3)
    w = mdl.tensor(rng.standard_normal((40, 60)), requires_grad=True, dtype=np.float64)
    x1, x2 = (mdl.tensor(rng.standard_normal((3, 40)), dtype=np.float64) for _ in range(2))
    ((x1 @ w).sigmoid().sum() + (x2 @ w).tanh().sum()).backward()
    assert type(w._grad) is PendingProduct and len(w._grad.terms) == 2
    s1 = 1 / (1 + np.exp(-(x1.data @ w.data)))
    t2 = np.tanh(x2.data @ w.data)
    want = x1.data.T @ (s1 * (1 - s1)) + x2.data.T @ (1 - t2 ** 2)
    np.testing.assert_allclose(w.grad, want, rtol=1e-12)


def test_zero_grad_without_none_gives_zero_arrays():
    model = make_model(np.float32)
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, y = batches(np.float32, 1)[0]
    F.cross_entropy(model(x), y).backward()
    assert type(model.linears[0].weight._grad) is PendingProduct
    opt.zero_grad(set_to_none=False)
    for p in model.parameters():
        assert type(p._grad) is np.ndarray and not p.grad.any() and p.grad.dtype == np.float32
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


_copying_init = PendingProduct.__init__


def _always_copying(self, x, dy, copy=True):
    _copying_init(self, x, dy, True)


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(1, 12),                      # batch: 1-12 keep two or three layers pending
                                st.sets(st.integers(0, 2)),              # the layers whose input the caller keeps
                                st.booleans(),                           # a hook keeps dL/d(logits)
                                st.integers(1, 2),                       # backward passes before the step
                                st.booleans(),                           # retain_graph on the first one
                                st.booleans()),                          # .grad read before the step
                      min_size=1, max_size=5),
       dtype=st.sampled_from(DTYPES))
def test_random_steps_give_the_gradients_of_copied_factors(steps, dtype):
    """Differential: whatever the caller keeps (layer inputs, a hook's gradient, a retained graph) and then
    overwrites after backward, every gradient and every step (SGD applying the pending products itself when
    .grad is not read first, and leaving them on the weights for the next forward) equals, bit for bit, that
    of a model whose pending products copy every factor at once."""
    models = [make_model(dtype, seed=9), make_model(dtype, seed=9)]
    optimizers = [optim.SGD(m.parameters(), lr=0.05) for m in models]
    rng = np.random.default_rng(len(steps))
    for batch, kept_layers, keep_gradient, backwards, retain, read_grads in steps:
        x = rng.standard_normal((batch, SIZES[0])).astype(dtype)
        y = rng.integers(0, SIZES[-1], batch)
        observed = []
        for side, (model, opt) in enumerate(zip(models, optimizers)):
            with pytest.MonkeyPatch.context() as patch:
                if side == 1:
                    patch.setattr(PendingProduct, "__init__", _always_copying)
                opt.zero_grad()
                kept = []
                handles = [model.linears[i].register_forward_hook(lambda mod, args, out: kept.append(args[0]))
                           for i in sorted(kept_layers)]
                inputs = mdl.Tensor(x.copy())
                logits = model(inputs)
                for handle in handles:
                    handle.remove()
                if keep_gradient:
                    logits.register_hook(lambda g: kept.append(g))
                loss = F.cross_entropy(logits, y)
                for b in range(backwards):
                    loss.backward(retain_graph=retain and b == 0 and backwards == 2)
                    if b == 0 and backwards == 2:
                        loss = F.cross_entropy(model(inputs), y)
                inputs.data[...] = 123.0                     # the caller reuses every buffer it holds
                for held in kept:
                    (held.data if isinstance(held, mdl.Tensor) else held)[...] = -7.0
                observed.append([p.grad.copy() for p in model.parameters()] if read_grads else [])
                opt.step()
                inputs.data[...] = -123.0                    # and again before the next forward applies it
                observed[-1] += [p.data.copy() for p in model.parameters()]
        for got, want in zip(*observed):
            np.testing.assert_array_equal(got, want)


def test_a_hook_that_steps_inside_backward_leaves_no_shared_factor():
    """A tensor hook calling ``opt.step()`` after a weight got its pending gradient: SGD leaves the product
    on the weight for its next forward, and that product still claims its factors as backward ends."""
    rng = np.random.default_rng(7)
    w = mdl.tensor(rng.standard_normal((300, 200)) * 0.01, requires_grad=True, dtype=np.float64)
    c = mdl.tensor(rng.standard_normal(5), requires_grad=True, dtype=np.float64)
    opt = optim.SGD([w], lr=0.1)
    x = rng.standard_normal((4, 300))
    want = w.data - 0.1 * x.T @ np.ones((4, 200))
    doubled = c * 2.0

    def step_inside_backward(g):                     # runs after w's leaf got its gradient
        opt.step()
        opt.zero_grad()
    doubled.register_hook(step_inside_backward)
    ((mdl.Tensor(x) @ w).sum() + doubled.sum()).backward()
    assert w._update is not None                     # the update waits for w's next forward product
    x[...] = 100.0                                   # the caller refills its batch buffer
    np.testing.assert_allclose(w.data, want, rtol=1e-12, atol=1e-14)


def test_a_claim_that_fails_drops_that_gradient_and_claims_the_others(monkeypatch):
    """Out of memory while one pending gradient copies its factors: backward raises it, that weight's
    gradient is dropped, and the other weight's gradient is claimed all the same."""
    rng = np.random.default_rng(8)
    w1, w2 = _two_weights(rng)
    x = mdl.tensor(rng.standard_normal((4, 30)), dtype=np.float64)
    h = (x @ w1).sigmoid()
    want = _sigmoid_gradient(h.data, w2.data)
    real_claim, calls = PendingProduct.claim_factors, []

    def claim_once_out_of_memory(self):
        calls.append(self)
        if len(calls) == 1:
            raise MemoryError("no memory for the copies")
        real_claim(self)
    monkeypatch.setattr(PendingProduct, "claim_factors", claim_once_out_of_memory)
    with pytest.raises(MemoryError, match="no memory"):
        (h @ w2).sigmoid().sum().backward()
    assert len(calls) == 2
    assert [type(w._grad) for w in (w1, w2)].count(type(None)) == 1      # the one whose claim failed
    kept = w1 if w1._grad is not None else w2
    assert type(kept._grad) is PendingProduct
    x.data[...] = 5.0                                # what the caller holds changes nothing
    h.data[...] = 5.0
    if kept is w2:
        np.testing.assert_allclose(w2.grad, want, rtol=1e-12)
    else:
        assert not any(np.shares_memory(f, a) for f in kept._grad.terms[0] for a in (x.data, h.data))


def test_a_view_or_a_weak_reference_is_no_sole_owner():
    """A factor that is a view (of an array the caller keeps) or that the caller reaches by a weak reference
    is copied, though no other strong reference to it remains."""
    rng = np.random.default_rng(9)
    w1, w2 = _two_weights(rng)
    big = rng.standard_normal((10, 30))
    (mdl.Tensor(big[:4]) @ w1).sum().backward()       # the Tensor and its view die with the graph
    want = big[:4].T @ np.ones((4, 50))
    big[...] = 3.0
    np.testing.assert_array_equal(w1.grad, want)
    h = (mdl.Tensor(big[:4]) @ w1).sigmoid()
    reference = weakref.ref(h.data)
    want = _sigmoid_gradient(h.data, w2.data)
    loss = (h @ w2).sigmoid().sum()
    del h
    w2.grad = None
    loss.backward()
    held = reference()                               # None once the factor was copied: nothing held it
    if held is not None:
        held[...] = -2.0
    np.testing.assert_allclose(w2.grad, want, rtol=1e-12)
