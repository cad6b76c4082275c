"""SGD and Adam against their update formulas written out here, over several steps."""

import copy
import pickle

import numpy as np
import pytest

import minidl as mdl
from minidl import nn, optim

GRADS = [np.array([0.5, -1.0, 2.0]), np.array([0.1, 0.3, -0.2]), np.array([-1.0, 0.0, 0.7]),
         np.array([0.2, 0.2, 0.2])]
P0 = np.array([1.0, -2.0, 0.5])


def run(opt_factory, steps=4):
    p = mdl.tensor(P0.copy(), requires_grad=True)
    opt = opt_factory([p])
    for g in GRADS[:steps]:
        p.grad = g.copy()
        opt.step()
        np.testing.assert_array_equal(p.grad, g)          # optimizers never modify .grad
    return p.data


@pytest.mark.parametrize("momentum,dampening,nesterov,wd", [
    (0.0, 0.0, False, 0.0), (0.9, 0.0, False, 0.0), (0.9, 0.0, True, 0.0), (0.0, 0.0, False, 0.1),
    (0.8, 0.3, False, 0.05), (0.5, 0.0, True, 0.2)])
def test_sgd_matches_formula(momentum, dampening, nesterov, wd):
    lr = 0.1
    p, buf = P0.copy(), None
    for g in GRADS:
        d = g + wd * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    got = run(lambda ps: optim.SGD(ps, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                   weight_decay=wd))
    np.testing.assert_allclose(got, p, rtol=1e-12)


def test_plain_sgd_by_hand():
    got = run(lambda ps: optim.SGD(ps, lr=0.5), steps=2)
    np.testing.assert_allclose(got, [1.0 - 0.5 * 0.6, -2.0 + 0.5 * 0.7, 0.5 - 0.5 * 1.8])


@pytest.mark.parametrize("betas,eps,wd", [((0.9, 0.999), 1e-8, 0.0), ((0.5, 0.9), 1e-3, 0.1)])
def test_adam_matches_formula(betas, eps, wd):
    lr, (b1, b2) = 0.01, betas
    p, m, v = P0.copy(), np.zeros(3), np.zeros(3)
    for t, g in enumerate(GRADS, start=1):
        g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    got = run(lambda ps: optim.Adam(ps, lr=lr, betas=betas, eps=eps, weight_decay=wd))
    np.testing.assert_allclose(got, p, rtol=1e-10)


def test_adam_first_step_is_lr_times_sign():
    got = run(lambda ps: optim.Adam(ps, lr=0.1, eps=0.0), steps=1)
    np.testing.assert_allclose(got, P0 - 0.1 * np.sign(GRADS[0]))


def test_parameter_listed_twice_is_updated_once_and_none_grads_skipped():
    p = mdl.tensor([1.0], requires_grad=True)
    q = mdl.tensor([1.0], requires_grad=True)
    opt = optim.SGD([p, p, q], lr=1.0)
    p.grad = np.array([1.0])
    opt.step()
    np.testing.assert_array_equal(p.data, [0.0])
    np.testing.assert_array_equal(q.data, [1.0])
    opt.zero_grad()
    assert p.grad is None


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.5), lambda ps: optim.SGD(ps, lr=0.5, momentum=0.9),
                                  lambda ps: optim.Adam(ps, lr=0.5)], ids=["sgd", "momentum", "adam"])
def test_grad_set_by_hand_is_read_in_the_parameter_dtype_and_must_match_its_shape(make):
    p = mdl.tensor(np.ones(3, np.float32), requires_grad=True)
    opt = make([p])
    p.grad = np.array([1.0, 2.0, 3.0])                     # float64 on a float32 parameter
    opt.step()
    assert p.data.dtype == np.float32 and np.all(p.data < 1)
    with pytest.raises(ValueError, match=r"shape \(3,\) cannot take a .grad of shape \(1, 3\)"):
        p.grad = np.ones((1, 3), np.float32)               # refused where it is assigned, as in PyTorch
    np.testing.assert_array_equal(p.grad, [1.0, 2.0, 3.0])


def test_frozen_parameters_are_accepted_and_left_alone_but_non_leaves_are_refused():
    """PyTorch's fine-tuning idiom: requires_grad=False on some layers, the optimizer over all of them."""
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    for p in model[0].parameters():
        p.requires_grad = False
    frozen = [p.data.copy() for p in model[0].parameters()]
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(mdl.tensor(np.ones((4, 3), np.float32))).sum().backward()
    opt.step()
    for p, before in zip(model[0].parameters(), frozen):
        np.testing.assert_array_equal(p.data, before)
    assert all(p.grad is not None for p in model[1].parameters())
    w = mdl.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([w * 2], lr=0.1)


def test_a_parameter_in_two_groups_is_refused():
    a, b = mdl.tensor([1.0], requires_grad=True), mdl.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [a, b]}, {"params": [b], "lr": 1.0}], lr=0.1)
    opt = optim.SGD([{"params": a}, {"params": [b, b]}], lr=0.1)      # one tensor as a group; twice in one
    assert [len(g["params"]) for g in opt.param_groups] == [1, 1]


def test_param_groups_and_lr_property():
    a = mdl.tensor([1.0], requires_grad=True)
    b = mdl.tensor([1.0], requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = np.array([1.0]), np.array([1.0])
    opt.step()
    np.testing.assert_allclose([a.data[0], b.data[0]], [0.9, 0.5])
    opt.lr = 0.01
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.01]


def test_invalid_arguments():
    p = [mdl.tensor([1.0], requires_grad=True)]
    for bad in (dict(lr=-1), dict(lr=0.1, momentum=-0.1), dict(lr=0.1, nesterov=True)):
        with pytest.raises(ValueError):
            optim.SGD(p, **bad)
    with pytest.raises(ValueError):
        optim.Adam(p, betas=(1.0, 0.9))
    for bad in (dict(alpha=1.5), dict(eps=-1), dict(momentum=-0.5), dict(weight_decay=float("nan"))):
        with pytest.raises(ValueError):
            optim.RMSprop(p, **bad)
    for bad in (dict(lr_decay=-0.1), dict(initial_accumulator_value=-1), dict(eps=-1)):
        with pytest.raises(ValueError):
            optim.Adagrad(p, **bad)
    with pytest.raises(TypeError):
        optim.SGD(p[0], lr=0.1)
    with pytest.raises(ValueError):
        optim.SGD([], lr=0.1)


NAN = float("nan")


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD(p, lr=NAN), "invalid learning rate nan"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=NAN), "invalid momentum nan"),
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=NAN), "invalid weight_decay nan"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=NAN), "invalid dampening nan"),
    (lambda p: optim.Adam(p, lr=NAN), "invalid learning rate nan"),
    (lambda p: optim.Adam(p, eps=NAN), "invalid eps nan"),
    (lambda p: optim.Adam(p, weight_decay=NAN), "invalid weight_decay nan"),
    (lambda p: optim.Adam(p, betas=(NAN, 0.9)), r"invalid betas \(nan, 0.9\)"),
    (lambda p: optim.RMSprop(p, lr=NAN), "invalid learning rate nan"),
    (lambda p: optim.Adagrad(p, lr=NAN), "invalid learning rate nan"),
])
def test_a_nan_hyperparameter_is_refused_by_name(make, message):
    """NaN passes a `< 0` check and then makes every weight NaN on the first step (silent garbage)."""
    with pytest.raises(ValueError, match=message):
        make([mdl.tensor([1.0], requires_grad=True)])


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
                                  lambda ps: optim.Adam(ps, lr=0.01, betas=(0.8, 0.99)),
                                  lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.9, centered=True),
                                  lambda ps: optim.Adagrad(ps, lr=0.05, lr_decay=0.01)],
                         ids=["sgd", "adam", "rmsprop", "adagrad"])
def test_checkpoint_resume_through_save_load_is_exact(tmp_path, make):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=16)

    def train(model, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(mdl.Tensor(x)), y).backward()
            opt.step()

    mdl.manual_seed(1)
    ref = nn.MLP([4, 8, 3])
    ref_opt = make(list(ref.parameters()))
    train(ref, ref_opt, 6)

    mdl.manual_seed(1)
    model = nn.MLP([4, 8, 3])
    opt = make(list(model.parameters()))
    train(model, opt, 3)
    state = opt.state_dict()
    assert all(isinstance(v, (np.ndarray, int, float, bool)) for v in state.values())
    mdl.save({**{"model." + k: v for k, v in model.state_dict().items()},
              **{"optim." + k: v for k, v in state.items()}}, tmp_path / "ckpt.npz")
    loaded = mdl.load(tmp_path / "ckpt.npz")

    mdl.manual_seed(99)
    resumed = nn.MLP([4, 8, 3])
    resumed_opt = make(list(resumed.parameters()))
    resumed.load_state_dict({k[6:]: v for k, v in loaded.items() if k.startswith("model.")})
    resumed_opt.load_state_dict({k[6:]: v for k, v in loaded.items() if k.startswith("optim.")})
    assert resumed_opt.param_groups[0]["lr"] == ref_opt.param_groups[0]["lr"]
    train(resumed, resumed_opt, 3)
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[k], v)


def test_load_state_dict_checks_shapes():
    p = mdl.tensor(np.zeros(3), requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.ones(3)
    opt.step()
    state = opt.state_dict()
    state["state.0.momentum_buffer"] = np.zeros(4)
    with pytest.raises(ValueError, match=r"\(4,\).*\(3,\)"):
        optim.SGD([p], lr=0.1, momentum=0.9).load_state_dict(state)


def test_add_param_group_for_layers_unfrozen_later():
    """PyTorch's fine-tuning idiom: train the head, then add the body with its own lr."""
    body, head = mdl.tensor([1.0], requires_grad=True), mdl.tensor([1.0], requires_grad=True)
    opt = optim.SGD([head], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": [body], "lr": 0.01})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01] and opt.param_groups[1]["momentum"] == 0.9
    body.grad, head.grad = np.array([1.0]), np.array([1.0])
    opt.step()
    np.testing.assert_allclose([head.data[0], body.data[0]], [0.9, 0.99])
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [head]})
    with pytest.raises(TypeError, match="'params'"):
        opt.add_param_group([body])


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam(ps, lr=0.1)], ids=["momentum", "adam"])
@pytest.mark.parametrize("copy_of", [copy.deepcopy, lambda pair: pickle.loads(pickle.dumps(pair))],
                         ids=["deepcopy", "pickle"])
def test_a_copied_optimizer_continues_where_the_original_was(make, copy_of):
    """The state was keyed by id(param): a deep-copied or unpickled optimizer found none under its new
    parameters and restarted momentum and Adam's moments (PyTorch's copy continues)."""
    def step(p, opt):
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
    p = mdl.tensor(np.array([1.0, 2.0, 3.0, 4.0]), requires_grad=True)
    opt = make([p])
    for _ in range(3):
        step(p, opt)
    p2, opt2 = copy_of((p, opt))
    step(p, opt)
    step(p2, opt2)
    np.testing.assert_array_equal(p2.data, p.data)
    assert list(opt2.state) == [p2] and opt2.state_dict().keys() == opt.state_dict().keys()


def test_a_tensor_assigned_to_grad_is_read_as_its_array():
    """``p.grad = mdl.tensor(...)`` (PyTorch assigns tensors) was kept as a Tensor: the step failed with
    'axpby: x must be a numpy.ndarray, got Tensor'."""
    p = mdl.tensor([1.0, 2.0], requires_grad=True)
    p.grad = mdl.tensor([0.5, 0.5])
    assert type(p.grad) is np.ndarray
    optim.SGD([p], lr=1.0, weight_decay=0.1).step()
    np.testing.assert_allclose(p.data, [0.4, 1.3])


def test_state_is_keyed_by_the_parameter_as_pytorchs():
    """opt.state[p] reads a parameter's buffers, and PyTorch's idiom opt.state[p] = {} resets them (keyed by
    id(p) before: a KeyError, and the reset silently ignored)."""
    p = mdl.tensor([1.0, -2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    for _ in range(3):
        p.grad = np.array([1.0, 1.0])
        opt.step()
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"], [2.71, 2.71])
    opt.state[p] = {}
    before = p.data.copy()
    p.grad = np.array([1.0, 1.0])
    opt.step()
    np.testing.assert_allclose(p.data, before - 0.1)           # a fresh buffer: the gradient alone


def test_load_state_dict_refuses_other_group_counts_and_changes_nothing():
    a, b = (mdl.tensor([1.0], requires_grad=True) for _ in range(2))
    two_groups = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1).state_dict()
    opt = optim.SGD([a], lr=0.2, momentum=0.5)
    with pytest.raises(ValueError, match="state dict has 2 parameter groups, the optimizer 1"):
        opt.load_state_dict(two_groups)
    bad = {**optim.SGD([a], lr=0.3).state_dict(), "state.0.momentum_buffer": np.zeros(3)}
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        opt.load_state_dict(bad)
    assert (opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]) == (0.2, 0.5)


def stepped(make):
    """An optimizer of two parameters after one step (its state dict has buffers and steps)."""
    w, b = mdl.tensor(np.ones((3, 2)), requires_grad=True), mdl.tensor(np.ones(2), requires_grad=True)
    opt = make([w, b])
    w.grad, b.grad = np.full((3, 2), 0.5), np.full(2, 0.5)
    opt.step()
    return opt


DAMAGED_OPTIMIZER_STATES = [        # (optimizer, what a damaged or hand-edited state dict holds, the message)
    ("sgd", {"param_groups.0.lr": np.nan}, "invalid learning rate nan"),
    ("sgd", {"param_groups.0.lr": -0.1}, "invalid learning rate -0.1"),
    ("sgd", {"param_groups.0.momentum": 0.0, "param_groups.0.nesterov": True}, "Nesterov momentum requires"),
    ("sgd", {"param_groups.0.lr": np.ones(2)}, r"'param_groups.0.lr' is float64 of shape \(2,\), not a number"),
    ("sgd", {"param_groups.0.size": "two"}, "'param_groups.0.size' is <U3"),
    ("sgd", {"state.-1.momentum_buffer": np.full(2, 7.0)}, "'state.-1.momentum_buffer' is not 'state.<parameter"),
    ("sgd", {"state.x.momentum_buffer": np.full(2, 7.0)}, "'state.x.momentum_buffer' is not"),
    ("sgd", {"state.1": np.full(2, 7.0)}, "'state.1' is not"),
    ("sgd", {"state.1.momentum_buffer": np.array(["a", "b"])}, "'state.1.momentum_buffer' holds <U1, not numbers"),
    ("adam", {"param_groups.0.betas": np.array([0.9, 0.99, 0.5])}, r"float64 of shape \(3,\), not 2 numbers"),
    ("adam", {"param_groups.0.betas": np.array(0.5)}, r"shape \(\), not 2 numbers"),
    ("adam", {"param_groups.0.betas": np.array([1.5, 0.99])}, r"invalid betas \(1.5, 0.99\)"),
    ("adam", {"state.0.step": -7}, "'state.0.step' must be an integer >= 0, got -7"),
    ("adam", {"state.0.step": 2.9}, "'state.0.step' must be an integer >= 0, got 2.9"),
    ("adam", {"state.0.step": np.ones(2)}, "'state.0.step' is float64 of shape"),
    ("adam", {"param_groups.0.initial_lr": -1.0}, "'param_groups.0.initial_lr' must be >= 0"),
]


@pytest.mark.parametrize("kind, damage, message", DAMAGED_OPTIMIZER_STATES,
                         ids=[f"{kind}-{next(iter(damage))}" for kind, damage, _ in DAMAGED_OPTIMIZER_STATES])
def test_load_state_dict_checks_every_value_as_the_constructor_does_and_changes_nothing(kind, damage, message):
    """A damaged or hand-edited state dict loaded as it was: a NaN learning rate (every weight NaN at the next
    step), Adam's step -7 (a math domain error inside step(), a traceback out of `minidl train --resume`),
    "state.-1" filed under the last parameter, three betas."""
    make = {"sgd": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
            "adam": lambda ps: optim.Adam(ps, lr=0.1)}[kind]
    opt = stepped(make)
    before = opt.state_dict()
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict({**before, **damage})
    after = opt.state_dict()
    assert after.keys() == before.keys()
    assert all(np.array_equal(np.asarray(after[k]), np.asarray(before[k])) for k in before)


def test_load_state_dict_takes_integral_steps_in_any_number_type_and_refuses_a_non_dict():
    opt = stepped(lambda ps: optim.Adam(ps, lr=0.1))
    opt.load_state_dict({**opt.state_dict(), "state.0.step": 3.0, "state.1.step": np.uint8(4)})
    assert [opt.state[p]["step"] for p in opt._params()] == [3, 4]
    with pytest.raises(TypeError, match="expects a dict, got NoneType"):
        opt.load_state_dict(None)


def test_state_of_a_parameter_without_any_is_empty():
    """PyTorch's state is a defaultdict(dict): opt.state[p] is {} before p's first step."""
    p = mdl.tensor([1.0], requires_grad=True)
    opt = optim.Adam([p])
    assert opt.state[p] == {} and opt.state_dict().keys() == optim.Adam([p]).state_dict().keys()
    p.grad = np.array([1.0])
    opt.step()
    assert opt.state[p]["step"] == 1
