"""Module registration/traversal, Linear, Sequential, MLP, hooks, train/eval, state dicts."""
import numpy as np
import pytest

import minidl as mdl
from minidl import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(3, 4)
        self.act = nn.Tanh()
        self.scale = nn.Parameter(np.ones(4, dtype=np.float32))
        self.second = nn.Linear(4, 2, bias=False)

    def forward(self, x):
        return self.second(self.act(self.first(x)) * self.scale)


def test_named_parameters_in_registration_order_through_nesting():
    model = nn.Sequential(Block(), nn.Sigmoid(), nn.Linear(2, 5))
    names = [n for n, _ in model.named_parameters()]
    # as PyTorch: a module's own parameters (registration order) before its children's, depth first
    assert names == ["0.scale", "0.first.weight", "0.first.bias", "0.second.weight", "2.weight", "2.bias"]
    assert [p.shape for p in model.parameters()] == [(4,), (3, 4), (4,), (4, 2), (2, 5), (5,)]
    assert model(mdl.tensor(np.ones((6, 3)))).shape == (6, 5)


def test_shared_parameter_listed_once():
    lin = nn.Linear(2, 2)
    model = nn.Sequential(lin, nn.Tanh(), lin)
    assert len(list(model.parameters())) == 2


def test_linear_is_x_at_w_plus_b():
    layer = nn.Linear(3, 2)
    layer.bias.data[:] = [0.5, -1.0]
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_allclose(layer(mdl.tensor(x)).data, x @ layer.weight.data + layer.bias.data, rtol=1e-6)
    np.testing.assert_allclose(layer(x).data, x @ layer.weight.data + layer.bias.data, rtol=1e-6)
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(3, 2\)"):
        layer(mdl.tensor(np.ones((4, 5))))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 10, 64, 256])
def test_linear_adds_its_bias_in_the_gemm_with_the_bits_of_a_separate_add(batch, dtype):
    """The kernels add b to each tile of x @ W as they store it (``_core.matmul(..., bias=)``): the same bits as
    the product followed by ``+= b``, also when the product applies a pending SGD update to W first."""
    from minidl import _core, optim
    from minidl.nn import functional as F

    rng = np.random.default_rng(batch)
    layer = nn.Linear(300, 200, dtype=dtype)
    layer.bias.data[:] = rng.standard_normal(200)
    x = rng.standard_normal((batch, 300)).astype(dtype)
    want = _core.matmul(x, layer.weight.data)
    want += layer.bias.data
    np.testing.assert_array_equal(layer(mdl.tensor(x)).data, want)
    opt = optim.SGD(layer.parameters(), lr=0.1)
    opt.zero_grad()
    F.mse_loss(layer(mdl.tensor(x)), mdl.tensor(np.zeros((batch, 200), dtype))).backward()
    opt.step()                                          # W's update may now wait for the next product
    out = layer(mdl.tensor(x))
    want = _core.matmul(x, layer.weight.data)
    want += layer.bias.data
    np.testing.assert_array_equal(out.data, want)


def test_linear_with_a_bias_the_kernels_do_not_take_adds_it_as_numpy_does():
    """A (1, n) bias, or one of another dtype (float64 with float32 weights: the result is float64)."""
    from minidl.nn import functional as F

    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((3, 2)).astype(np.float32)
    row, wide = rng.standard_normal((1, 2)).astype(np.float32), rng.standard_normal(2)
    np.testing.assert_allclose(F.linear(mdl.tensor(x), mdl.tensor(w), mdl.tensor(row)).data, x @ w + row, rtol=1e-6)
    promoted = F.linear(mdl.tensor(x), mdl.tensor(w), mdl.tensor(wide))
    assert promoted.dtype == np.float64
    np.testing.assert_allclose(promoted.data, (x @ w).astype(np.float64) + wide, rtol=1e-6)


def test_linear_with_a_bias_that_broadcasts_or_promotes_the_product_is_x_at_w_plus_b():
    """A bias of more dimensions than the product (values and gradients of x @ W + b: backward() failed,
    handing the (5, 2, n) gradient to a 2-D GEMM) and a 0-d float64 one (the result stays float32, as
    x @ W + b gives by PyTorch's rule: NumPy's promoted it)."""
    from minidl.nn import functional as F

    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)).astype(np.float32)
    for b in (rng.standard_normal((5, 2, 4)).astype(np.float32), np.float64(0.5), rng.standard_normal((3, 1, 1))):
        tensors = [mdl.tensor(a, requires_grad=True) for a in (x.astype(np.float32), w, b)]
        reference = [mdl.tensor(a, requires_grad=True) for a in (x.astype(np.float32), w, b)]
        y = F.linear(*tensors)
        expected = reference[0] @ reference[1] + reference[2]
        assert y.shape == expected.shape and y.dtype == expected.dtype
        assert y.dtype == (np.float64 if b.ndim == 3 and b.dtype == np.float64 else np.float32)
        np.testing.assert_allclose(y.data, expected.data, rtol=1e-6)
        (y * y).sum().backward()
        (expected * expected).sum().backward()
        for t, r in zip(tensors, reference):
            assert t.grad.shape == r.grad.shape
            np.testing.assert_allclose(t.grad, r.grad, rtol=1e-5)


def test_linear_sizes_must_be_positive_ints():
    assert nn.Linear(np.int64(3), 2).weight.shape == (3, 2)   # sizes read from NumPy shapes are fine
    for bad in (2.5, 3.0, "3", None, True):
        with pytest.raises(TypeError, match="sizes must be ints"):
            nn.Linear(bad, 2)
        with pytest.raises(TypeError, match="sizes must be ints"):
            nn.Linear(2, bad)
    with pytest.raises(ValueError, match=r"positive sizes, got \(0, 2\)"):
        nn.Linear(0, 2)


def test_linear_gradients_have_bias_as_batch_sum():
    layer = nn.Linear(3, 2, dtype=np.float64)
    x = np.random.default_rng(1).normal(size=(5, 3))
    g = np.random.default_rng(2).normal(size=(5, 2))
    layer(mdl.tensor(x)).backward(g)
    np.testing.assert_allclose(layer.weight.grad, x.T @ g)
    np.testing.assert_allclose(layer.bias.grad, g.sum(0))


@pytest.mark.parametrize("activation,cls", [("sigmoid", nn.Sigmoid), ("tanh", nn.Tanh), ("relu", nn.ReLU),
                                            ("softsign", nn.Softsign), (nn.Tanh, nn.Tanh)])
def test_mlp_structure(activation, cls):
    model = nn.MLP([784, 1000, 1000, 1000, 10], activation=activation, init="standard")
    assert [(l.in_features, l.out_features) for l in model.linears] == [(784, 1000), (1000, 1000), (1000, 1000), (1000, 10)]
    assert len(model.activations) == 3 and all(type(a) is cls for a in model.activations)
    assert list(model) == [model.linears[0], model.activations[0], model.linears[1], model.activations[1],
                           model.linears[2], model.activations[2], model.linears[3]]
    assert isinstance(model[-1], nn.Linear)
    assert all(l.init == "standard" for l in model.linears)
    with pytest.raises(ValueError, match="activation"):
        nn.MLP([2, 3, 2], activation="swish")


def test_forward_hooks_see_inputs_and_outputs_and_can_be_removed():
    model = nn.MLP([3, 4, 4, 2], activation="tanh")
    records = []
    handles = [a.register_forward_hook(lambda m, inp, out: records.append((m, inp[0].shape, out.data.copy())))
               for a in model.activations]
    x = mdl.tensor(np.ones((5, 3), dtype=np.float32))
    model(x)
    assert [r[0] for r in records] == model.activations and records[0][1] == (5, 4)
    np.testing.assert_allclose(records[0][2], np.tanh(model.linears[0](x).data))
    for h in handles:
        h.remove()
    model(x)
    assert len(records) == 2


def test_hooks_give_backpropagated_gradients_per_layer():
    """The pattern the diagnostics use: a forward hook registers a tensor hook on each activation."""
    model = nn.MLP([3, 4, 4, 2], activation="sigmoid", dtype=np.float64)
    grads = {}

    def forward_hook(module, inputs, out):
        out.register_hook(lambda g, m=module: grads.__setitem__(m, g.copy()))
    for a in model.activations:
        a.register_forward_hook(forward_hook)
    x = mdl.tensor(np.random.default_rng(0).normal(size=(6, 3)))
    h1 = model.activations[0](model.linears[0](x))
    h1.retain_grad()
    out = model.linears[2](model.activations[1](model.linears[1](h1)))
    nn.functional.cross_entropy(out, np.array([0, 1, 0, 1, 1, 0])).backward()
    np.testing.assert_allclose(grads[model.activations[0]], h1.grad)
    assert grads[model.activations[1]].shape == (6, 4)


def test_train_eval_and_zero_grad():
    model = nn.Sequential(Block(), nn.Sigmoid())
    assert model.training and all(m.training for m in model.modules())
    assert model.eval() is model and not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model(mdl.tensor(np.ones((2, 3)))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(not p.grad.any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_state_dict_roundtrip_copies_and_checks():
    a, b = nn.MLP([4, 5, 3]), nn.MLP([4, 5, 3])
    state = a.state_dict()
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert all(type(v) is np.ndarray for v in state.values())
    state["0.weight"][0, 0] = 1e6                      # a copy: the model is untouched
    assert a.linears[0].weight.data[0, 0] != 1e6
    b.load_state_dict(a.state_dict())
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k], v)
    weight_array = b.linears[0].weight.data
    b.load_state_dict(a.state_dict())
    assert b.linears[0].weight.data is weight_array    # loaded in place
    bad = a.state_dict()
    bad["2.weight"] = np.zeros((3, 5))
    with pytest.raises(ValueError, match=r"2\.weight.*\(3, 5\).*\(5, 3\)"):
        b.load_state_dict(bad)
    missing = a.state_dict()
    del missing["0.bias"]
    with pytest.raises(KeyError, match="0.bias"):
        b.load_state_dict(missing)
    with pytest.raises(KeyError, match="extra"):
        b.load_state_dict({**a.state_dict(), "extra": np.zeros(1)})
    b.load_state_dict(missing, strict=False)


def test_load_state_dict_refuses_integers_that_would_wrap_around_and_a_non_dict():
    """uint64 -> int64 is a 'same_kind' cast: 2**63 + 5 loaded as a negative num_batches_tracked, no error."""
    bn = nn.BatchNorm1d(4)
    state = bn.state_dict()
    with pytest.raises(ValueError, match=r"'num_batches_tracked' holds uint64 values from 9223372036854775813"):
        bn.load_state_dict({**state, "num_batches_tracked": np.array(2**63 + 5, dtype=np.uint64)})
    assert bn.num_batches_tracked.data == 0
    bn.load_state_dict({**state, "num_batches_tracked": np.array(7, dtype=np.uint64)})     # in range: fine
    assert bn.num_batches_tracked.data == 7
    with pytest.raises(TypeError, match="expects a dict of arrays, got NoneType"):
        bn.load_state_dict(None)


def test_module_without_super_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)
    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_a_parameter_or_module_slot_takes_only_its_kind():
    """PyTorch's rule: assigning a plain tensor or array to a parameter's name is a TypeError (it would
    otherwise drop the weight from parameters() and state_dict() without a word); None unregisters."""
    lin = nn.Linear(3, 2)
    for value in (mdl.Tensor(np.ones((3, 2), np.float32), requires_grad=True), np.ones((3, 2), np.float32)):
        with pytest.raises(TypeError, match="parameter 'weight'.*Parameter or None expected"):
            lin.weight = value
    assert [name for name, _ in lin.named_parameters()] == ["weight", "bias"]
    lin.weight = nn.Parameter(np.zeros((3, 2), np.float32))      # a Parameter replaces it
    assert [name for name, _ in lin.named_parameters()] == ["weight", "bias"]
    model = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(TypeError, match="child module '0'"):
        setattr(model, "0", lin.weight)
    lin.bias = None
    assert [name for name, _ in lin.named_parameters()] == ["weight"]


@pytest.mark.parametrize("make", [nn.Sigmoid, nn.Tanh, nn.ReLU, nn.Softsign, nn.GELU, nn.Identity,
                                  lambda: nn.LeakyReLU(0.2), lambda: nn.ELU(0.5), lambda: nn.Activation("softsign"),
                                  lambda: nn.MLP([4, 5, 2], activation="tanh"),
                                  lambda: nn.Sequential(nn.Linear(4, 3), nn.ELU(2.0), nn.LeakyReLU(0.3))])
def test_models_with_activations_pickle_and_deep_copy(make):
    """Registry entries hold lambdas: a model with an activation did not pickle (multiprocessing, torch.save-
    style checkpoints); registered entries now travel by name, derived ones are rebuilt from their parameter."""
    import copy
    import pickle

    from minidl import activations
    model = make()
    x = mdl.tensor(np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4))
    for twin in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        np.testing.assert_array_equal(twin(x).data, model(x).data)
        assert repr(twin) == repr(model)
        for mine, theirs in zip(model.modules(), twin.modules()):
            entry = getattr(mine, "activation", None)
            if entry is not None and activations.REGISTRY.get(entry.name) is entry:
                assert theirs.activation is entry               # the registry's own object, not a copy


def test_a_refused_state_dict_changes_nothing():
    """The last layer's wrong shape (or dtype) used to be found after the first layers were overwritten."""
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    before = {k: v.copy() for k, v in model.state_dict().items()}
    for bad in ({"1.weight": np.zeros((5, 2), np.float32)}, {"1.bias": np.array(["a", "b"])}):
        state = {k: np.full_like(v, 7.0) for k, v in before.items()}
        state.update(bad)
        with pytest.raises((ValueError, TypeError), match="1.weight|1.bias"):
            model.load_state_dict(state)
        for k, v in model.state_dict().items():
            np.testing.assert_array_equal(v, before[k])


def test_a_tied_weight_is_saved_under_each_name_and_loads_from_either():
    """PyTorch's state_dict lists a shared Parameter under every module that holds it; minidl listed it once,
    so a PyTorch-layout dict failed strict loading ("unexpected key 1.weight")."""
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    model[1].weight = model[0].weight
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    for keep in ("0.weight", "1.weight"):
        new = {k: np.full_like(v, 2.0) for k, v in state.items() if k != ({"0.weight", "1.weight"} - {keep}).pop()}
        assert model.load_state_dict(new) == ([], [])
        assert (model[0].weight.data == 2.0).all() and model[1].weight is model[0].weight


def test_a_module_registered_twice_is_saved_under_each_name():
    """``Sequential(lin, act, lin)``: PyTorch saves 0.* and 2.*; minidl saved 0.* only (not key-for-key)."""
    lin = nn.Linear(2, 2)
    model = nn.Sequential(lin, nn.Tanh(), lin)
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert model.load_state_dict({k: np.full_like(v, 3.0) for k, v in state.items() if k.startswith("2.")}) == ([], [])
    assert (lin.weight.data == 3.0).all()


def test_pytorch_module_api_for_building_and_freezing():
    """named_children, add_module, register_parameter, parameters(recurse=False), requires_grad_(False) and
    Sequential.append, each as PyTorch's (each raised AttributeError or TypeError before)."""
    model = nn.Sequential(nn.Linear(3, 4))
    model.append(nn.Tanh()).add_module("head", nn.Linear(4, 2))
    assert [name for name, _ in model.named_children()] == ["0", "1", "head"]
    model.register_parameter("scale", nn.Parameter(np.ones(2, np.float32)))
    assert [name for name, _ in model.named_parameters(recurse=False)] == ["scale"]
    assert len(list(model.parameters())) == 5
    x = mdl.tensor(np.ones((2, 3), np.float32))
    assert model(x).shape == (2, 2)
    model[0].requires_grad_(False)
    assert [p.requires_grad for p in model.parameters()] == [True, False, False, True, True]   # own "scale" first
    with pytest.raises(TypeError, match="not a Parameter"):
        model.register_parameter("w", np.ones(2))
    with pytest.raises(TypeError, match="not a Module"):
        model.add_module("m", np.ones(2))
    with pytest.raises(KeyError, match="without '.'"):
        model.add_module("a.b", nn.Tanh())


def test_a_module_that_skipped_super_init_says_so_when_used():
    """Calling it said "object has no attribute '_forward_hooks'" (or '_parameters', '_modules')."""
    class NoSuper(nn.Module):
        def __init__(self):
            pass

        def forward(self, x):
            return x
    module = NoSuper()
    for use in (lambda: module(mdl.zeros(2)), lambda: list(module.parameters()), lambda: module.state_dict()):
        with pytest.raises(AttributeError, match=r"NoSuper.__init__ must call super\(\).__init__\(\)"):
            use()
    with pytest.raises(AttributeError, match="'NoSuper' object has no attribute 'width'"):
        module.width


def test_train_calls_each_childs_own_train():
    """A child that overrides train() to keep its BatchNorm frozen (a fine-tuning idiom) is obeyed by the
    parent's train(); it was bypassed and the frozen running mean moved (PyTorch: it stays 0)."""
    class Frozen(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1d(3)

        def forward(self, x):
            return self.bn(x)

        def train(self, mode=True):
            super().train(mode)
            self.bn.eval()
            return self

    net = nn.Sequential(nn.Linear(3, 3), Frozen())
    net.eval()
    assert net.train() is net and net.training and net[0].training and not net[1].bn.training
    net(mdl.tensor(np.random.default_rng(0).normal(size=(8, 3)) + 5.0))
    np.testing.assert_array_equal(net[1].bn.running_mean.data, 0.0)
    with pytest.raises(ValueError, match="mode is expected to be a bool"):
        net.train("eval")


def test_a_module_under_two_names_is_one_child():
    """children(), named_children() and so apply() visit a module registered twice once per parent (PyTorch's):
    apply(halve) on Sequential(shared, Tanh(), shared) halved its weight twice."""
    shared = nn.Linear(2, 2)
    net = nn.Sequential(shared, nn.Tanh(), shared)
    assert [name for name, _ in net.named_children()] == ["0", "1"] and len(list(net.children())) == 2
    before = shared.weight.data.copy()

    def halve(m):
        if isinstance(m, nn.Linear):
            m.weight.data[...] *= 0.5
    net.apply(halve)
    np.testing.assert_array_equal(shared.weight.data, before * 0.5)


def test_sequential_slices_keep_their_names_and_dicts_name_modules():
    """m[2:] keeps "2.weight" as PyTorch's (renumbered from 0 before, so a slice's state dict loaded back with
    strict=False went to layer 0 silently); Sequential(OrderedDict) names its modules; append never replaces."""
    from collections import OrderedDict

    net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 4))
    tail = net[2:]
    assert list(tail.state_dict()) == ["2.weight", "2.bias", "4.weight", "4.bias"]
    assert tail[0] is net[2] and len(tail) == 3
    x = mdl.tensor(np.ones((1, 3)))
    np.testing.assert_array_equal(tail(x).data, net[4](net[3](net[2](x))).data)
    replaced = {k: np.zeros_like(v.data) for k, v in tail.state_dict().items()}
    net.load_state_dict(replaced, strict=False)
    assert not net[2].weight.data.any() and net[0].weight.data.any()
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"] and isinstance(named.act, nn.ReLU)
    with pytest.raises(ValueError, match="the name '3' is taken"):
        net[2:].append(nn.Tanh())
    with pytest.raises(TypeError, match="'act' is a int"):
        nn.Sequential({"act": 3})


def test_sequential_edits_in_place_as_pytorchs():
    """model[-1] = nn.Linear(...) (the fine-tuning idiom), del, insert, extend, pop and + raised TypeError or
    AttributeError; an MLP's linears and activations follow its edits."""
    net = nn.MLP([4, 5, 5, 3])
    net[-1] = nn.Linear(5, 2)
    assert net.linears[-1] is net[-1] and net(mdl.tensor(np.ones((1, 4), np.float32))).shape == (1, 2)
    assert list(net.state_dict())[-2:] == ["4.weight", "4.bias"]
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    first, last = seq[0], seq[2]
    del seq[1]
    assert list(seq._modules) == ["0", "1"] and seq[1] is last         # numbered again, as PyTorch's
    seq.insert(1, nn.Tanh())
    assert [type(m).__name__ for m in seq] == ["Linear", "Tanh", "Linear"] and list(seq._modules) == ["0", "1", "2"]
    assert seq.pop(0) is first and len(seq) == 2
    joined = seq + nn.Sequential(nn.Sigmoid())
    assert len(joined) == 3 and joined[0] is seq[0] and list(joined._modules) == ["0", "1", "2"]
    assert seq.extend([nn.ReLU()]) is seq and len(seq) == 3
    del seq[1:]
    assert len(seq) == 1
    with pytest.raises(IndexError, match="index 5 is out of range for a Sequential of length 1"):
        seq[5] = nn.ReLU()
    with pytest.raises(IndexError, match="out of range"):
        del seq[3]
    with pytest.raises(TypeError, match="Sequential expects Modules"):
        seq[0] = lambda x: x
    blocks = nn.ModuleList([nn.ReLU(), nn.Tanh()])
    blocks += [nn.Sigmoid()]
    assert len(blocks) == 3 and isinstance(blocks.pop(0), nn.ReLU) and len(blocks + nn.ModuleList([nn.ReLU()])) == 3


def test_named_parameters_and_modules_keep_duplicates_on_request():
    """PyTorch's remove_duplicate=False: a shared layer under each of its names."""
    shared = nn.Linear(2, 2)
    net = nn.Sequential(shared, nn.ReLU(), shared)
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias"]
    assert [n for n, _ in net.named_parameters(remove_duplicate=False)] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [n for n, _ in net.named_modules(remove_duplicate=False)] == ["", "0", "1", "2"]
    p = mdl.tensor([1.0, 2.0], requires_grad=True)
    p.grad = np.array([3.0, 4.0])
    assert nn.utils.clip_grad_norm_([p], 1.0, foreach=True).item() == pytest.approx(5.0)


def test_train_of_a_module_inside_itself_and_names_taken_by_attributes():
    """train() recursing through children looped forever on a module holding itself (named_modules and
    state_dict allow it); add_module('forward') replaced the method (PyTorch: KeyError)."""
    net = nn.Sequential(nn.Linear(2, 2))
    object.__getattribute__(net, "_modules")["self"] = net
    assert net.eval() is net and not net.training and not net[0].training
    with pytest.raises(KeyError, match="attribute 'forward' already exists"):
        nn.Sequential({"forward": nn.Linear(2, 2)})
    with pytest.raises(KeyError, match="attribute 'training' already exists"):
        nn.Sequential(nn.Tanh()).add_module("training", nn.Tanh())
