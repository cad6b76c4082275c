"""Adam on 0-d parameters, AdamW, StepLR, CosineAnnealingLR and nn.utils.clip_grad_norm_ against their
formulas written out here. (Numbers from PyTorch itself: test_torch_goldens.py.)"""
import math

import numpy as np
import pytest

import minidl as mdl
from minidl import nn, optim
from minidl.optim import lr_scheduler

GRADS = [np.array([0.5, -1.0, 2.0]), np.array([0.1, 0.3, -0.2]), np.array([-1.0, 0.0, 0.7]),
         np.array([0.2, 0.2, 0.2])]
P0 = np.array([1.0, -2.0, 0.5])


def adam_reference(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, wd=0.0, decoupled=False):
    (b1, b2), m, v = betas, np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return p


# ---- 0-d parameters ------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda ps: optim.Adam(ps, lr=0.1), lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1),
                                  lambda ps: optim.AdamW(ps, lr=0.1),
                                  lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True),
                                  lambda ps: optim.RMSprop(ps, momentum=0.5, centered=True, weight_decay=0.1),
                                  lambda ps: optim.Adagrad(ps, lr_decay=0.1, weight_decay=0.1)])
def test_every_optimizer_updates_a_0d_parameter_like_a_1_element_vector(make):
    """Issue 11, item 7: Adam crashed on a 0-d parameter (np.sqrt of a 0-d array is a NumPy scalar)."""
    scalar = mdl.tensor(1.5, dtype=np.float64, requires_grad=True)
    vector = mdl.tensor([1.5], dtype=np.float64, requires_grad=True)
    opts = make([scalar]), make([vector])
    for g in GRADS:
        scalar.grad, vector.grad = np.array(g[0]), np.array([g[0]])
        for opt in opts:
            opt.step()
        assert type(scalar.data) is np.ndarray and scalar.shape == ()
    assert scalar.item() == vector.item()
    assert all(type(v) is np.ndarray and v.shape == () for k, v in opts[0].state[scalar].items() if k != "step")


# ---- AdamW --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lr,betas,eps,wd", [(1e-3, (0.9, 0.999), 1e-8, 1e-2), (0.01, (0.5, 0.9), 1e-3, 0.3)])
def test_adamw_decays_the_weights_outside_the_moments(lr, betas, eps, wd):
    p = mdl.tensor(P0.copy(), requires_grad=True)
    opt = optim.AdamW([p], lr=lr, betas=betas, eps=eps, weight_decay=wd)
    for g in GRADS:
        p.grad = g.copy()
        opt.step()
        np.testing.assert_array_equal(p.grad, g)                      # never modifies .grad
    np.testing.assert_allclose(p.data, adam_reference(P0, GRADS, lr, betas, eps, wd, decoupled=True), rtol=1e-12)
    coupled = adam_reference(P0, GRADS, lr, betas, eps, wd)
    assert not np.allclose(p.data, coupled, rtol=1e-6)                 # L2 in the gradient is another rule


def test_adamw_defaults_are_pytorchs():
    opt = optim.AdamW([mdl.tensor([1.0], requires_grad=True)])
    assert (opt.lr, opt.param_groups[0]["betas"], opt.param_groups[0]["eps"],
            opt.param_groups[0]["weight_decay"]) == (1e-3, (0.9, 0.999), 1e-8, 1e-2)
    p = mdl.tensor(P0.copy(), requires_grad=True)
    q = mdl.tensor(P0.copy(), requires_grad=True)
    adamw, adam = optim.AdamW([p], lr=0.1, weight_decay=0.0), optim.Adam([q], lr=0.1)
    for g in GRADS:
        p.grad, q.grad = g.copy(), g.copy()
        adamw.step()
        adam.step()
    np.testing.assert_array_equal(p.data, q.data)                      # no decay: exactly Adam
    with pytest.raises(ValueError, match="weight_decay"):
        optim.AdamW([p], weight_decay=-1)


def test_adamw_resumes_exactly_from_a_checkpoint(tmp_path):
    def run(steps, opt_state=None, p0=P0):
        p = mdl.tensor(p0.copy(), requires_grad=True)
        opt = optim.AdamW([p], lr=0.05, weight_decay=0.1)
        if opt_state is not None:
            opt.load_state_dict(opt_state)
        for g in steps:
            p.grad = g.copy()
            opt.step()
        return p, opt
    full, _ = run(GRADS)
    half, opt = run(GRADS[:2])
    mdl.save(opt.state_dict(), tmp_path / "opt.npz")
    resumed, _ = run(GRADS[2:], mdl.load(tmp_path / "opt.npz"), half.data)
    np.testing.assert_array_equal(resumed.data, full.data)


# ---- schedulers ---------------------------------------------------------------------------------------
def sgd(*lrs):
    params = [mdl.tensor([1.0], requires_grad=True) for _ in lrs]
    return optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], lr=lrs[0])


def run_epochs(scheduler, epochs):
    lrs = [scheduler.get_last_lr()]
    for _ in range(epochs):
        scheduler.optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr())
        assert lrs[-1] == [g["lr"] for g in scheduler.optimizer.param_groups]
    return np.array(lrs)


def test_step_lr_multiplies_by_gamma_every_step_size_epochs():
    sched = lr_scheduler.StepLR(sgd(0.1, 0.02), step_size=3, gamma=0.5)
    lrs = run_epochs(sched, 10)
    epochs = np.arange(11)[:, None]
    np.testing.assert_allclose(lrs, np.array([0.1, 0.02]) * 0.5 ** (epochs // 3), rtol=1e-15)
    assert sched.last_epoch == 10 and sched.closed_form() == pytest.approx(list(lrs[-1]), rel=1e-15)


@pytest.mark.parametrize("T_max,eta_min", [(4, 0.0), (5, 0.01), (1, 0.001)])
def test_cosine_annealing_follows_the_cosine_down_and_back_up(T_max, eta_min):
    sched = lr_scheduler.CosineAnnealingLR(sgd(0.1, 0.05), T_max=T_max, eta_min=eta_min)
    lrs = run_epochs(sched, 3 * T_max + 1)
    t = np.arange(3 * T_max + 2)[:, None]
    expected = eta_min + (np.array([0.1, 0.05]) - eta_min) * (1 + np.cos(np.pi * t / T_max)) / 2
    np.testing.assert_allclose(lrs, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(lrs[T_max], eta_min, atol=1e-15)


def test_the_scheduled_lr_is_the_one_the_optimizer_uses():
    p = mdl.tensor([0.0], dtype=np.float64, requires_grad=True)
    opt = optim.SGD([p], lr=1.0)
    sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        p.grad = np.array([1.0])
        opt.step()
        sched.step()
    assert p.item() == -(1.0 + 0.5 + 0.25)


def test_scheduler_state_survives_a_checkpoint(tmp_path):
    ref = lr_scheduler.CosineAnnealingLR(sgd(0.1), T_max=6, eta_min=0.001)
    expected = run_epochs(ref, 9)
    opt = sgd(0.1)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=6, eta_min=0.001)
    run_epochs(sched, 4)
    mdl.save({**{"opt." + k: v for k, v in opt.state_dict().items()},
              **{"sched." + k: v for k, v in sched.state_dict().items()}}, tmp_path / "ckpt.npz")
    state = mdl.load(tmp_path / "ckpt.npz")
    opt2 = sgd(0.1)
    sched2 = lr_scheduler.CosineAnnealingLR(opt2, T_max=6, eta_min=0.001)
    opt2.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("opt.")})
    sched2.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("sched.")})
    assert sched2.get_last_lr() == pytest.approx(list(expected[4]), rel=1e-15)
    np.testing.assert_allclose(run_epochs(sched2, 5), expected[4:], rtol=1e-15)


@pytest.mark.parametrize("make, other", [
    (lambda opt: lr_scheduler.StepLR(opt, step_size=2, gamma=0.1),
     lambda opt: lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)),
    (lambda opt: lr_scheduler.MultiStepLR(opt, milestones=[2, 2, 5], gamma=0.1),
     lambda opt: lr_scheduler.MultiStepLR(opt, milestones=[1], gamma=0.5)),
    (lambda opt: lr_scheduler.ExponentialLR(opt, gamma=0.5), lambda opt: lr_scheduler.ExponentialLR(opt, gamma=0.9)),
    (lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.01),
     lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=9, eta_min=0.0))], ids=["step", "multistep", "exp", "cos"])
def test_a_restored_scheduler_follows_the_saved_schedule_as_pytorchs(make, other, tmp_path):
    """The state dict held only the epoch and the lrs: a StepLR(step_size=2, gamma=0.1) checkpoint restored
    into StepLR(step_size=5, gamma=0.5) silently followed the new schedule (PyTorch's restores step_size and
    gamma)."""
    reference = make(sgd(0.1))
    run_epochs(reference, 3)
    mdl.save(reference.state_dict(), tmp_path / "sched.npz")
    opt = sgd(0.1)
    opt.load_state_dict(reference.optimizer.state_dict())
    restored = other(opt)
    restored.load_state_dict(mdl.load(tmp_path / "sched.npz"))
    np.testing.assert_allclose(run_epochs(restored, 6), run_epochs(reference, 6), rtol=1e-15)


@pytest.mark.parametrize("damage, message", [
    ({"last_epoch": "x"}, "'last_epoch' is <U1"), ({"last_epoch": -5}, "'last_epoch' must be an integer >= 0"),
    ({"_step_count": 0}, "'_step_count' must be an integer >= 1"), ({"last_epoch": 2.5}, "'last_epoch' .* got 2.5"),
    ({"base_lrs.0": np.nan}, "'base_lrs.0' must be a learning rate >= 0, got nan"),
    ({"last_lr.0": -1.0}, "'last_lr.0' must be a learning rate"),
    ({"step_size": 0}, "'step_size' must be an integer >= 1"), ({"gamma": np.inf}, "'gamma' must be finite")])
def test_a_scheduler_checks_every_value_before_it_changes_anything(damage, message):
    """A bad value was converted after last_epoch had already been set: the scheduler stayed half-loaded."""
    saved = lr_scheduler.StepLR(sgd(0.1), step_size=2, gamma=0.1).state_dict()
    scheduler = lr_scheduler.StepLR(sgd(0.1), step_size=5, gamma=0.5)
    run_epochs(scheduler, 2)
    before = scheduler.state_dict()
    with pytest.raises(ValueError, match=f"StepLR state dict: {message}"):
        scheduler.load_state_dict({**saved, **damage})
    assert scheduler.state_dict() == before


def test_reduce_on_plateau_restores_its_numbers_and_checks_them():
    saved = lr_scheduler.ReduceLROnPlateau(sgd(0.1), patience=3, factor=0.5, cooldown=2).state_dict()
    scheduler = lr_scheduler.ReduceLROnPlateau(sgd(0.1), patience=7)
    scheduler.load_state_dict(saved)
    assert (scheduler.patience, scheduler.factor, scheduler.cooldown) == (3, 0.5, 2)
    for damage, message in (({"best": np.nan}, "'best' is NaN"), ({"num_bad_epochs": -1}, "'num_bad_epochs'"),
                            ({"factor": 1.5}, r"'factor' must be in \[0, 1\)")):
        with pytest.raises(ValueError, match=message):
            scheduler.load_state_dict({**saved, **damage})
    assert scheduler.patience == 3
    with pytest.raises(TypeError, match="ReduceLROnPlateau.load_state_dict expects a dict"):
        scheduler.load_state_dict(None)
    with pytest.raises(ValueError, match="'milestones' must be non-negative integers"):
        lr_scheduler.MultiStepLR(sgd(0.1), milestones=[1]).load_state_dict(
            {**lr_scheduler.MultiStepLR(sgd(0.1), milestones=[1]).state_dict(), "milestones": np.array([-1])})


def test_a_scheduler_resumes_from_the_optimizers_state_with_last_epoch():
    """PyTorch's resume pattern: load the optimizer's state dict, then build the scheduler with last_epoch
    (its base lr is the "initial_lr" the first scheduler wrote into the optimizer's groups)."""
    opt = sgd(0.1)
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    run_epochs(sched, 5)
    opt2 = sgd(0.1)
    opt2.load_state_dict(opt.state_dict())
    sched2 = lr_scheduler.StepLR(opt2, step_size=2, gamma=0.5, last_epoch=sched.last_epoch - 1)  # it steps once
    assert sched2.base_lrs == [0.1] and sched2.get_last_lr() == sched.get_last_lr() == [0.025]
    np.testing.assert_allclose(run_epochs(sched2, 3), run_epochs(sched, 3), rtol=1e-15)


def test_scheduler_arguments_are_checked():
    opt = sgd(0.1)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="step_size must be a positive integer"):
            lr_scheduler.StepLR(opt, step_size=bad)
        with pytest.raises(ValueError, match="T_max must be a positive integer"):
            lr_scheduler.CosineAnnealingLR(opt, T_max=bad)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lr_scheduler.StepLR([mdl.tensor(1.0)], step_size=1)
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(sgd(0.1), step_size=1, last_epoch=3)
    with pytest.raises(KeyError, match="lacks"):
        lr_scheduler.StepLR(sgd(0.1), step_size=1).load_state_dict({"last_epoch": 1})
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="milestones must be non-negative integers"):
            lr_scheduler.MultiStepLR(sgd(0.1), milestones=[2, bad])
    assert lr_scheduler.MultiStepLR(sgd(0.1), milestones=np.array([2, 4])).milestones == {2: 1, 4: 1}   # as PyTorch
    with pytest.raises(ValueError, match="2 lr_lambda functions for 1 parameter groups"):
        lr_scheduler.LambdaLR(sgd(0.1), [abs, abs])
    with pytest.raises(TypeError, match="function of the epoch"):
        lr_scheduler.LambdaLR(sgd(0.1), 0.5)


@pytest.mark.parametrize("make", [
    lambda opt, last_epoch=-1: lr_scheduler.MultiStepLR(opt, milestones=[3, 1, 3], gamma=0.5, last_epoch=last_epoch),
    lambda opt, last_epoch=-1: lr_scheduler.ExponentialLR(opt, gamma=0.9, last_epoch=last_epoch),
    lambda opt, last_epoch=-1: lr_scheduler.LambdaLR(opt, lambda epoch: 1 / (1 + epoch), last_epoch=last_epoch)],
    ids=["multistep", "exponential", "lambda"])
def test_the_recursive_steps_follow_the_closed_form_and_resume(make):
    """Each step() scales the current lr (PyTorch's recursive form); the textbook formula must agree, and a
    scheduler made with last_epoch from a saved optimizer continues the same sequence."""
    opt = sgd(0.2)
    scheduler = make(opt)
    for _ in range(6):
        opt.step()
        scheduler.step()
        assert scheduler.get_last_lr() == pytest.approx(scheduler.closed_form(), rel=1e-12)
    resumed_opt = sgd(0.7)
    resumed_opt.load_state_dict(opt.state_dict())
    resumed = make(resumed_opt, last_epoch=scheduler.last_epoch - 1)        # its constructor steps once
    assert resumed.get_last_lr() == pytest.approx(scheduler.get_last_lr(), rel=1e-12)
    for _ in range(4):
        scheduler.step()
        resumed.step()
        assert resumed.get_last_lr() == pytest.approx(scheduler.get_last_lr(), rel=1e-12)


# ---- clip_grad_norm_ ---------------------------------------------------------------------------------
def params_with_grads(*grads, dtype=np.float64):
    params = [mdl.tensor(np.zeros(np.shape(g)), dtype=dtype, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = np.array(g, dtype=dtype)
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm_scales_every_gradient_to_the_joint_norm(norm_type):
    g1, g2 = np.array([[3.0, -4.0], [1.0, 2.0]]), np.array([-6.0, 0.5, 2.0])
    params = params_with_grads(g1, g2) + [mdl.tensor([1.0], requires_grad=True)]     # no .grad: skipped
    flat = np.concatenate([g1.ravel(), g2])
    total = np.abs(flat).max() if norm_type == math.inf else np.sum(np.abs(flat) ** norm_type) ** (1 / norm_type)
    got = nn.utils.clip_grad_norm_(params, max_norm=2.0, norm_type=norm_type)
    assert isinstance(got, mdl.Tensor) and got.shape == () and got.item() == pytest.approx(total, rel=1e-12)
    coef = 2.0 / (total + 1e-6)
    np.testing.assert_allclose(params[0].grad, g1 * coef, rtol=1e-12)
    np.testing.assert_allclose(params[1].grad, g2 * coef, rtol=1e-12)
    assert params[2].grad is None


def test_clip_grad_norm_leaves_small_gradients_and_takes_one_tensor():
    (p,) = params_with_grads([0.3, 0.4], dtype=np.float32)
    total = nn.utils.clip_grad_norm_(p, max_norm=1.0)
    assert total.dtype == np.float32 and total.item() == pytest.approx(0.5)
    np.testing.assert_array_equal(p.grad, np.array([0.3, 0.4], dtype=np.float32))
    assert nn.utils.clip_grad_norm_([mdl.tensor([1.0], requires_grad=True)], 1.0).item() == 0.0


def test_clip_grad_norm_of_a_nonfinite_norm():
    params = params_with_grads([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is inf"):
        nn.utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    params = params_with_grads([np.nan, 1.0])
    assert math.isnan(nn.utils.clip_grad_norm_(params, 1.0).item())
    assert np.isnan(params[0].grad).all()                               # as PyTorch: NaN everywhere


def test_clipping_inside_a_training_step_bounds_the_update():
    mdl.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x, y = mdl.tensor(np.random.default_rng(0).normal(0, 100, size=(8, 3))), np.zeros(8, dtype=np.int64)
    nn.functional.cross_entropy(model(x), y).backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.1)
    joint = math.sqrt(sum(float(np.sum(p.grad.astype(np.float64) ** 2)) for p in model.parameters()))
    assert joint == pytest.approx(0.1, rel=1e-4)


def test_reduce_lr_on_plateau_checks_its_arguments_and_resumes():
    opt = sgd(0.1)
    for bad in (dict(mode="lowest"), dict(threshold_mode="ratio"), dict(factor=1.0), dict(patience=-1),
                dict(cooldown=1.5), dict(min_lr=[0.0, 0.0])):
        with pytest.raises(ValueError):
            lr_scheduler.ReduceLROnPlateau(opt, **bad)
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5)
    for metric in (1.0, 1.0, 1.0):
        scheduler.step(mdl.tensor(metric))
    assert scheduler.get_last_lr() == [0.05]
    other = sgd(0.1)
    other.load_state_dict(opt.state_dict())
    resumed = lr_scheduler.ReduceLROnPlateau(other, patience=1, factor=0.5)
    resumed.load_state_dict(scheduler.state_dict())
    for metric in (1.0, 1.0):
        scheduler.step(metric)
        resumed.step(metric)
    assert resumed.get_last_lr() == scheduler.get_last_lr() == [0.025]


def test_an_adam_state_dict_saved_before_amsgrad_existed_still_loads():
    p = mdl.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.Adam([p], lr=0.1, amsgrad=True)
    p.grad = np.array([0.5, -0.5])
    opt.step()
    state = {k: v for k, v in opt.state_dict().items() if not k.endswith("amsgrad")}
    again = optim.Adam([p], lr=0.1, amsgrad=True)
    again.load_state_dict(state)
    assert again.param_groups[0]["amsgrad"] is False and "state.0.max_exp_avg_sq" in opt.state_dict()


def test_reduce_on_plateau_reduces_a_group_added_later():
    """Progressive unfreezing: a group added with add_param_group after the scheduler got the one min_lr and
    was reduced with the rest (PyTorch 2.13: [0.0125, 0.0125]); zip skipped it before, leaving 0.05."""
    a, b = (mdl.tensor([1.0], requires_grad=True) for _ in range(2))
    opt = optim.SGD([a], lr=0.1)
    plateau = lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    plateau.step(1.0)
    plateau.step(1.0)
    opt.add_param_group({"params": [b], "lr": 0.05})
    plateau.step(1.0)
    plateau.step(1.0)
    assert plateau.get_last_lr() == [0.0125, 0.0125]
    listed = lr_scheduler.ReduceLROnPlateau(optim.SGD([a], lr=0.1), patience=0, min_lr=[0.0])
    listed.optimizer.add_param_group({"params": [b]})
    listed.step(1.0)
    with pytest.raises(RuntimeError, match="2 parameter groups, min_lr gave 1"):         # PyTorch's type
        listed.step(1.0)


def test_schedulers_take_integers_of_any_integral_type():
    opt = optim.SGD([mdl.tensor([1.0], requires_grad=True)], lr=0.1)
    assert lr_scheduler.StepLR(opt, np.int64(3)).step_size == 3
    assert type(lr_scheduler.CosineAnnealingLR(opt, T_max=np.int32(10)).T_max) is int
    for bad in (2.5, True, np.int64(0)):
        with pytest.raises(ValueError, match="T_max must be a positive integer"):
            lr_scheduler.CosineAnnealingLR(opt, T_max=bad)
