"""Dropout, BatchNorm1d, LayerNorm, LeakyReLU/ELU/GELU/Softmax/Identity/Flatten, ModuleList, buffers,
Module.apply, train()/eval() and load_state_dict(strict=False): PyTorch's behaviour, checked against
formulas written out here and every gradient against float64 central differences.
(Numbers from PyTorch itself: test_torch_goldens.py.)"""
import copy
import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minidl as mdl
from minidl import activations, init, nn
from minidl.nn import functional as F
from fw_gradcheck import check_gradients, numerical_vjp


def needs_registered(name):
    if name not in activations.names():
        pytest.skip(f"{name} registered by issue-11a")


def check_module_gradients(module, x, seed=0, rtol=1e-6, atol=1e-8):
    """d(Σ cot·module(x))/d(x and every parameter) against central differences; the global generator is
    reseeded before every forward so that Dropout draws the same mask each time."""
    def run(xt):
        mdl.manual_seed(seed)
        return module(xt)

    params = list(module.parameters())
    xt = mdl.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    module.zero_grad()
    out = run(xt)
    cot = np.random.default_rng(seed + 1).standard_normal(out.shape)
    out.backward(cot)
    arrays = [xt.data.copy()] + [p.data for p in params]      # the parameters are perturbed in place
    expected = numerical_vjp(lambda x_, *unused: run(x_), arrays, cot)
    for name, got, want in zip(["input"] + [n for n, _ in module.named_parameters()],
                               [xt.grad] + [p.grad for p in params], expected):
        assert got is not None, f"{name} received no gradient"
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=name)


# ---- Dropout ----------------------------------------------------------------------------------------
def test_dropout_zeroes_a_fraction_p_and_scales_the_rest_in_training_only():
    mdl.manual_seed(3)
    p, n = 0.3, 200_000
    layer = nn.Dropout(p)
    x = mdl.tensor(np.full(n, 2.0, dtype=np.float32))
    y = layer(x).data
    dropped = np.mean(y == 0)
    # binomial: sd of the dropped fraction = √(p(1-p)/n) ≈ 0.001; 6 sd
    assert abs(dropped - p) < 6 * math.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(y[y != 0], 2.0 / (1 - p), rtol=1e-6)
    assert y.dtype == np.float32
    layer.eval()
    assert np.array_equal(layer(x).data, x.data)
    assert F.dropout(x, p, training=False) is x


def test_dropout_gradient_is_the_scaled_mask():
    mdl.manual_seed(0)
    x = mdl.tensor(np.arange(1.0, 9.0), requires_grad=True)
    y = F.dropout(x, 0.5)
    y.backward(np.ones(8))
    np.testing.assert_array_equal(x.grad, (y.data != 0) * 2.0)
    check_module_gradients(nn.Dropout(0.4), np.random.default_rng(1).normal(size=(5, 6)))


def test_dropout_edge_probabilities_and_errors():
    x = mdl.tensor(np.ones((3, 4)), requires_grad=True)
    assert np.array_equal(nn.Dropout(0.0)(x).data, x.data)
    y = nn.Dropout(1.0)(x)
    assert not y.data.any()
    y.sum().backward()
    assert not x.grad.any()
    for bad in (-0.1, 1.5, "0.5", None, True):
        with pytest.raises(ValueError, match="between 0 and 1"):
            nn.Dropout(bad)
        with pytest.raises(ValueError, match="between 0 and 1"):
            F.dropout(x, bad)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_dropout_of_integers_is_float32_as_the_activations(dtype):
    """int64 times the float32 mask made float64 (bool and uint8 gave float32: the intent)."""
    x = mdl.tensor(np.ones((4, 5), dtype=dtype))
    for p in (0.5, 1.0):
        y = F.dropout(x, p)
        assert y.dtype == np.float32 and set(np.unique(y.data)) <= {0.0, 1 / (1 - p) if p < 1 else 0.0}
    assert nn.Dropout(0.3)(x).dtype == np.float32


def test_dropout_is_repeatable_with_manual_seed():
    x = mdl.tensor(np.ones(100))
    mdl.manual_seed(7)
    a = nn.Dropout()(x).data
    mdl.manual_seed(7)
    assert np.array_equal(nn.Dropout()(x).data, a)


# ---- BatchNorm1d --------------------------------------------------------------------------------------
def batch_norm_reference(x, weight, bias, eps=1e-5):
    mean, var = x.mean(axis=0), x.var(axis=0)          # biased variance normalizes
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def test_batchnorm1d_training_normalizes_with_batch_statistics_and_tracks_running_ones():
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm1d(3, dtype=np.float64)
    bn.weight.data[:] = [1.0, 2.0, -0.5]
    bn.bias.data[:] = [0.0, 0.5, 1.0]
    running_mean, running_var = np.zeros(3), np.ones(3)
    for step in range(3):
        x = rng.normal(2.0, 3.0, size=(8, 3))
        y = bn(mdl.tensor(x))
        np.testing.assert_allclose(y.data, batch_norm_reference(x, bn.weight.data, bn.bias.data), rtol=1e-12)
        running_mean = 0.9 * running_mean + 0.1 * x.mean(axis=0)
        running_var = 0.9 * running_var + 0.1 * x.var(axis=0, ddof=1)     # unbiased for the estimate
        np.testing.assert_allclose(bn.running_mean.data, running_mean, rtol=1e-12)
        np.testing.assert_allclose(bn.running_var.data, running_var, rtol=1e-12)
        assert int(bn.num_batches_tracked.data) == step + 1
    bn.eval()
    x = rng.normal(size=(5, 3))
    expected = (x - running_mean) / np.sqrt(running_var + 1e-5) * bn.weight.data + bn.bias.data
    np.testing.assert_allclose(bn(mdl.tensor(x)).data, expected, rtol=1e-12)
    assert int(bn.num_batches_tracked.data) == 3                        # eval() leaves the estimates


def test_batchnorm1d_on_n_c_l_input_uses_every_position_of_a_channel():
    x = np.random.default_rng(1).normal(size=(4, 2, 5))
    bn = nn.BatchNorm1d(2, dtype=np.float64)
    y = bn(mdl.tensor(x)).data
    flat = x.transpose(0, 2, 1).reshape(-1, 2)                          # (N·L, C)
    np.testing.assert_allclose(y.transpose(0, 2, 1).reshape(-1, 2), batch_norm_reference(flat, 1.0, 0.0),
                               rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.data, 0.9 + 0.1 * flat.var(axis=0, ddof=1), rtol=1e-12)


def test_batchnorm1d_momentum_none_is_the_cumulative_average():
    rng = np.random.default_rng(2)
    bn = nn.BatchNorm1d(2, momentum=None, dtype=np.float64)
    batches = [rng.normal(size=(6, 2)) for _ in range(4)]
    for x in batches:
        bn(mdl.tensor(x))
    np.testing.assert_allclose(bn.running_mean.data, np.mean([b.mean(0) for b in batches], axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.data, np.mean([b.var(0, ddof=1) for b in batches], axis=0),
                               rtol=1e-12)


def test_batchnorm1d_without_running_stats_or_affine():
    x = np.random.default_rng(3).normal(size=(6, 4))
    bn = nn.BatchNorm1d(4, affine=False, track_running_stats=False, dtype=np.float64)
    assert list(bn.parameters()) == [] and bn.running_mean is None and bn.state_dict() == {}
    bn.eval()                                                           # batch statistics in eval too
    np.testing.assert_allclose(bn(mdl.tensor(x)).data, batch_norm_reference(x, 1.0, 0.0), rtol=1e-12)


def test_batchnorm1d_keeps_float32_and_checks_its_input():
    bn = nn.BatchNorm1d(3)
    assert bn(mdl.tensor(np.random.default_rng(4).normal(size=(5, 3)), dtype=np.float32)).dtype == np.float32
    assert bn.running_mean.dtype == np.float32 and bn.num_batches_tracked.dtype == np.int64
    for shape in [(5, 4), (5,), (2, 3, 4, 5)]:
        with pytest.raises(ValueError, match=r"BatchNorm1d\(3\).*" + ".*".join(map(str, shape))):
            bn(mdl.tensor(np.zeros(shape)))
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\(1, 3\)"):
        bn(mdl.tensor(np.zeros((1, 3))))
    assert int(bn.num_batches_tracked.data) == 1                        # the failed call changed nothing
    bn.eval()
    assert bn(mdl.tensor(np.zeros((1, 3)))).shape == (1, 3)            # one example is fine in eval
    with pytest.raises(ValueError, match="positive integer"):
        nn.BatchNorm1d(0)
    with pytest.raises(TypeError, match="floating-point"):
        bn(mdl.tensor(np.zeros((2, 3), dtype=np.int64)))


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2), (2, 3)])
def test_batchnorm1d_gradients_in_training_and_eval(shape):
    bn = nn.BatchNorm1d(3, dtype=np.float64)
    bn.weight.data[:] = [1.5, -0.5, 2.0]
    bn.bias.data[:] = [0.1, 0.2, -0.3]
    x = np.random.default_rng(5).normal(1.0, 2.0, size=shape)
    check_module_gradients(bn, x)
    bn.running_mean.data[:] = [0.3, -0.2, 1.0]
    bn.running_var.data[:] = [2.0, 0.5, 1.5]
    bn.eval()
    check_module_gradients(bn, x)
    # functional form, every argument a differentiable input
    w, b = np.array([1.5, -0.5, 2.0]), np.array([0.1, 0.2, -0.3])
    check_gradients(lambda x_, w_, b_: F.batch_norm(x_, None, None, w_, b_, training=True), x, w, b)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 5), st.integers(1, 4), st.sampled_from([None, 1, 3]), st.booleans(),
       st.floats(0.1, 10.0), st.integers(0, 2**16))
def test_batch_norm_gradients_over_shapes_and_scales(n, c, length, training, scale, seed):
    """Random (N, C) / (N, C, L) inputs of any spread, both modes, size-1 channel and length axes."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.5, scale, size=(n, c) if length is None else (n, c, length))
    w, b = rng.normal(size=c), rng.normal(size=c)
    stats = (rng.normal(size=c), rng.random(c) + 0.5)
    running = [None, None] if training else [mdl.tensor(s_) for s_ in stats]
    check_gradients(lambda x_, w_, b_: F.batch_norm(x_, *running, w_, b_, training=training), x, w, b,
                    rtol=1e-5, atol=1e-7)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.integers(1, 2), st.floats(0.1, 10.0),
       st.integers(0, 2**16))
def test_layer_norm_gradients_over_shapes_and_scales(shape, k, scale, seed):
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    k = min(k, len(shape))
    normalized = shape[len(shape) - k:]
    x = rng.normal(-1.0, scale, size=shape)
    w, b = rng.normal(size=normalized), rng.normal(size=normalized)
    check_gradients(lambda x_, w_, b_: F.layer_norm(x_, normalized, w_, b_), x, w, b, rtol=1e-5, atol=1e-7)


# ---- LayerNorm ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,normalized", [((4, 5), 5), ((2, 3, 4), (4,)), ((2, 3, 4), (3, 4)), ((6,), 6)])
def test_layernorm_normalizes_each_sample_the_same_in_train_and_eval(shape, normalized):
    rng = np.random.default_rng(6)
    x = rng.normal(3.0, 2.0, size=shape)
    ln = nn.LayerNorm(normalized, dtype=np.float64)
    ln.weight.data[...] = rng.normal(size=ln.weight.shape)
    ln.bias.data[...] = rng.normal(size=ln.bias.shape)
    axes = tuple(range(x.ndim - len(ln.normalized_shape), x.ndim))
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-5) * ln.weight.data + ln.bias.data
    np.testing.assert_allclose(ln(mdl.tensor(x)).data, expected, rtol=1e-12)
    ln.eval()
    np.testing.assert_allclose(ln(mdl.tensor(x)).data, expected, rtol=1e-12)
    ln.train()
    check_module_gradients(ln, x)


def test_layernorm_options_and_errors():
    ln = nn.LayerNorm(4, elementwise_affine=False, dtype=np.float64)
    assert list(ln.parameters()) == []
    check_module_gradients(ln, np.random.default_rng(7).normal(size=(3, 4)))
    assert [n for n, _ in nn.LayerNorm(4, bias=False).named_parameters()] == ["weight"]
    with pytest.raises(ValueError, match=r"\(3, 5\).*\(4,\)"):
        nn.LayerNorm(4)(mdl.tensor(np.zeros((3, 5))))
    with pytest.raises(ValueError, match="positive ints"):
        nn.LayerNorm((4, 0))


# ---- activations, Softmax, Identity, Flatten ---------------------------------------------------------
X = np.array([-3.0, -1.0, -0.25, 0.0, 0.5, 2.0])


def test_leaky_relu_values_slope_at_zero_and_registry_entry():
    assert nn.LeakyReLU().activation is activations.get("leaky_relu")
    assert type(nn.make_activation("leaky_relu")) is nn.LeakyReLU
    for slope in (0.01, 0.2, 1.5):
        x = mdl.tensor(X, requires_grad=True)
        y = nn.LeakyReLU(slope)(x)
        np.testing.assert_allclose(y.data, np.where(X > 0, X, slope * X), rtol=1e-15)
        y.sum().backward()
        np.testing.assert_allclose(x.grad, np.where(X > 0, 1.0, slope))     # slope at 0, as PyTorch
    check_module_gradients(nn.LeakyReLU(0.2), X[X != 0])
    assert "negative_slope=0.2" in repr(nn.LeakyReLU(0.2))


def gaussian_moments(module, v, cells=400_000):
    """(E[z²], Var z, E[f'²]) for s ~ N(0, v) by the midpoint rule on ±12 sd, with 0 a cell edge so that
    no cell straddles the kink (error O(h²) ≈ 1e-9)."""
    edges = np.linspace(-12, 12, cells + 1) * math.sqrt(v)
    s, h = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    density = np.exp(-s * s / (2 * v)) / math.sqrt(2 * math.pi * v)
    z = module.activation.forward(s)
    slope = module.activation.derivative(s)
    e = lambda f: np.sum(f * density) * h                                  # noqa: E731
    return e(z * z), e(z * z) - e(z) ** 2, e(slope * slope)


@pytest.mark.parametrize("v", [0.1, 1.0, 4.0])
def test_leaky_relu_with_another_slope_has_exact_moments(v):
    module = nn.LeakyReLU(0.2)
    np.testing.assert_allclose(module.activation.moments(v), gaussian_moments(module, v), rtol=1e-6)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_elu_values_gradients_and_moments(alpha):
    needs_registered("elu")
    module = nn.ELU(alpha)
    x = mdl.tensor(X, requires_grad=True)
    y = module(x)
    np.testing.assert_allclose(y.data, np.where(X > 0, X, alpha * np.expm1(X)), rtol=1e-14)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.where(X > 0, 1.0, alpha * np.exp(X)), rtol=1e-14)
    check_module_gradients(module, X[X != 0])
    if alpha != 1.0:
        for v in (0.1, 1.0, 4.0):
            np.testing.assert_allclose(module.activation.moments(v), gaussian_moments(module, v), rtol=1e-6)


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_elu_gradient_keeps_its_precision_far_left_and_is_1_at_nan(alpha):
    """g·(z + α) cancelled where z is all but -α: at -12 in float32 a relative error of 8e-4, at -20 and
    -40 zero instead of α·eˣ; at NaN NaN where PyTorch (and the α = 1 entry) gives 1."""
    s = np.array([-12.0, -20.0, -40.0, np.nan])
    for dtype, rtol in ((np.float64, 1e-14), (np.float32, 1e-6)):
        x = mdl.tensor(s.astype(dtype), requires_grad=True)
        nn.ELU(alpha)(x).sum().backward()
        np.testing.assert_allclose(x.grad, [*(alpha * np.exp(s[:3])).astype(dtype), 1.0], rtol=rtol)


@pytest.mark.parametrize("make, attribute, value, expected", [
    (lambda: nn.LeakyReLU(0.01), "negative_slope", 0.5, lambda x: np.where(x > 0, x, 0.5 * x)),
    (lambda: nn.ELU(1.0), "alpha", 2.0, lambda x: np.where(x > 0, x, 2.0 * np.expm1(x))),
    (lambda: nn.GELU(), "approximate", "tanh",
     lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))))])
def test_an_activations_parameter_assigned_after_construction_takes_effect(make, attribute, value, expected):
    """PyTorch reads negative_slope, alpha and approximate at every call; minidl derived its entry once, so
    an assignment changed the repr and nothing else, and a deep copy (which derives it again) computed
    differently from the original."""
    module = make()
    setattr(module, attribute, value)
    x = mdl.tensor(X, requires_grad=True)
    np.testing.assert_allclose(module(x).data, expected(X), rtol=1e-12, atol=1e-15)
    check_module_gradients(module, X[X != 0])
    np.testing.assert_array_equal(copy.deepcopy(module)(mdl.tensor(X)).data, module(mdl.tensor(X)).data)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(module))(mdl.tensor(X)).data, module(mdl.tensor(X)).data)


def test_a_refused_gelu_form_leaves_the_module_as_it_was():
    module = nn.GELU(approximate="tanh")
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh', got 'erf'"):
        module.approximate = "erf"
    assert module.approximate == "tanh" and "tanh" in module.activation.formula


def test_softmax_dim_is_pytorchs_name_for_its_axis():
    module = nn.Softmax(dim=1)
    assert module.dim == module.axis == 1
    module.dim = 0
    x = np.array([[1.0, 2.0], [3.0, 5.0]])
    np.testing.assert_allclose(module(mdl.tensor(x)).data, np.exp(x) / np.exp(x).sum(axis=0))


def test_gelu_is_x_times_the_normal_cdf():
    needs_registered("gelu")
    x = mdl.tensor(X, requires_grad=True)
    y = nn.GELU()(x)
    cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in X])
    np.testing.assert_allclose(y.data, X * cdf, rtol=1e-12, atol=1e-15)
    check_module_gradients(nn.GELU(), X)
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh', got 'erf'"):
        nn.GELU(approximate="erf")
    assert repr(nn.GELU()) == "GELU(approximate='none')"


def test_gelu_tanh_approximation_is_pytorchs():
    """GELU(approximate="tanh") (GPT-2's) raised ValueError; values and gradients of PyTorch 2.13 (float64),
    exact moments, finite at any input, a derived entry that pickles."""
    module = nn.GELU(approximate="tanh")
    assert repr(module) == "GELU(approximate='tanh')"
    x = mdl.tensor(X, requires_grad=True)
    y = module(x)
    y.sum().backward()
    np.testing.assert_allclose(y.data, [-0.003637392081773, -0.158808009391723, -0.100324649298315, 0.0,
                                        0.345714009825144, 1.954597694087775], rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(x.grad, [-0.011584166630970, -0.082964083845783, 0.304645904848940, 0.5,
                                        0.867369903534642, 1.086099256623618], rtol=1e-12)
    check_module_gradients(module, X)
    for v in (0.1, 1.0, 4.0):
        np.testing.assert_allclose(module.activation.moments(v), gaussian_moments(module, v), rtol=1e-6)
    huge = np.array([-1e30, 1e30, -12.0, 12.0], dtype=np.float32)
    with np.errstate(all="raise"):
        y = module(mdl.tensor(huge, requires_grad=True))
        y.backward(np.ones(4, dtype=np.float32))
    np.testing.assert_array_equal(y.data, huge * (huge > 0))
    assert y.dtype == np.float32
    low = module.activation.value_range[0]
    assert low < module(mdl.tensor(np.linspace(-2, 0, 20001))).data.min()
    assert repr(pickle.loads(pickle.dumps(module))) == "GELU(approximate='tanh')"


@pytest.mark.parametrize("kwargs,axis", [({}, -1), ({"dim": 0}, 0), ({"axis": 1}, 1), ({"dim": 1}, 1)])
def test_softmax_module_takes_axis_or_dim(kwargs, axis):
    x = np.random.default_rng(8).normal(size=(3, 4))
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    np.testing.assert_allclose(nn.Softmax(**kwargs)(mdl.tensor(x)).data, e / e.sum(axis=axis, keepdims=True),
                               rtol=1e-12)
    check_module_gradients(nn.Softmax(**kwargs), x)
    with pytest.raises(TypeError, match="axis=0 and dim=1"):
        nn.Softmax(0, dim=1)


@pytest.mark.parametrize("kwargs,axis", [({}, -1), ({"dim": 0}, 0), ({"axis": 1}, 1)])
def test_log_softmax_module_before_nll_loss_is_the_cross_entropy(kwargs, axis):
    """nn.LogSoftmax(dim=1) + nn.NLLLoss, PyTorch's classic classifier head, had no LogSoftmax module."""
    x = np.random.default_rng(9).normal(size=(3, 4))
    module = nn.LogSoftmax(**kwargs)
    np.testing.assert_allclose(module(mdl.tensor(x)).data, F.log_softmax(mdl.tensor(x), axis=axis).data)
    check_module_gradients(module, x)
    y = np.array([0, 3, 1])
    assert nn.NLLLoss()(nn.LogSoftmax(dim=1)(mdl.tensor(x)), y).item() == pytest.approx(
        F.cross_entropy(mdl.tensor(x), y).item(), rel=1e-12)
    assert repr(nn.LogSoftmax(dim=1)) == "LogSoftmax(axis=1)"


def test_identity_and_flatten():
    x = mdl.tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    assert nn.Identity(5, unused=True)(x) is x
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0)(x).shape == (24,)
    assert nn.Flatten(1, 1)(x).shape == (2, 3, 4)
    assert nn.Flatten(0, -2)(x).shape == (6, 4)
    np.testing.assert_array_equal(nn.Flatten()(x).data, x.data.reshape(2, 12))
    check_module_gradients(nn.Flatten(), x.data)
    with pytest.raises(ValueError, match="start_dim 2 comes after end_dim 1"):
        nn.Flatten(2, 1)(x)
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        nn.Flatten(3)(x)


# ---- containers, buffers, apply, modes, state dicts ------------------------------------------------------
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.BatchNorm1d(4)])
        self.blocks.append(nn.Dropout(0.5))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def test_module_list_registers_its_modules():
    net = Net()
    assert len(net.blocks) == 3 and isinstance(net.blocks[-1], nn.Dropout)
    assert list(net.state_dict()) == [
        "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias", "blocks.1.running_mean",
        "blocks.1.running_var", "blocks.1.num_batches_tracked", "head.weight", "head.bias"]
    assert len(list(net.parameters())) == 6
    assert isinstance(net.blocks[1:], nn.ModuleList) and len(net.blocks[1:]) == 2
    net.blocks.insert(0, nn.Tanh())
    assert [type(m).__name__ for m in net.blocks] == ["Tanh", "Linear", "BatchNorm1d", "Dropout"]
    assert [n for n, _ in net.blocks.named_parameters()][:2] == ["1.weight", "1.bias"]
    del net.blocks[0]
    net.blocks[2] = nn.Identity()
    assert [type(m).__name__ for m in net.blocks] == ["Linear", "BatchNorm1d", "Identity"]
    net.blocks.extend([nn.ReLU()])
    assert len(net.blocks) == 4 and net(mdl.tensor(np.ones((3, 4)))).shape == (3, 2)
    with pytest.raises(TypeError, match="ModuleList holds Modules"):
        net.blocks.append(lambda x: x)
    with pytest.raises(IndexError, match="out of range"):
        net.blocks[4]


def test_train_and_eval_reach_every_nested_module():
    net = Net()
    net.eval()
    assert not any(m.training for m in net.modules())
    x = mdl.tensor(np.random.default_rng(9).normal(size=(5, 4)))
    assert np.array_equal(net(x).data, net(x).data)                     # no dropout, running statistics
    net.train()
    assert all(m.training for m in net.modules())
    assert not np.array_equal(net(x).data, net(x).data)                 # dropout draws new masks


def test_register_buffer_is_state_but_not_a_parameter(tmp_path):
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("count", np.zeros(2, dtype=np.int64))
            self.register_buffer("scratch", np.ones(3), persistent=False)
            self.register_buffer("nothing", None)
            self.scale = nn.Parameter(np.ones(2))

    m = Counter()
    assert [n for n, _ in m.named_parameters()] == ["scale"]
    assert [n for n, _ in m.named_buffers()] == ["count", "scratch"]
    assert list(m.state_dict()) == ["scale", "count"]
    assert isinstance(m.count, mdl.Tensor) and not m.count.requires_grad
    m.count.data += 5
    m.count = np.array([7, 8])                                          # assigning replaces the buffer
    assert m._buffers["count"] is m.count and list(m.state_dict()["count"]) == [7, 8]
    mdl.save(m.state_dict(), tmp_path / "m.npz")
    fresh = Counter()
    assert fresh.load_state_dict(mdl.load(tmp_path / "m.npz")) == ([], [])
    np.testing.assert_array_equal(fresh.count.data, [7, 8])
    assert fresh.count.dtype == np.int64
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("scale", np.zeros(1))
    with pytest.raises(TypeError, match="buffer 'bad' must be"):
        m.register_buffer("bad", [1, 2])


def test_batchnorm_state_survives_a_checkpoint(tmp_path):
    rng = np.random.default_rng(10)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU())
    for _ in range(3):
        model(mdl.tensor(rng.normal(size=(8, 3))))
    mdl.save(model.state_dict(), tmp_path / "model.npz")
    restored = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU())
    restored.load_state_dict(mdl.load(tmp_path / "model.npz"))
    assert int(restored[1].num_batches_tracked.data) == 3
    x = mdl.tensor(rng.normal(size=(5, 3)))
    model.eval()
    restored.eval()
    np.testing.assert_array_equal(restored(x).data, model(x).data)


def test_load_state_dict_reports_missing_and_unexpected_keys():
    a, b = Net(), Net()
    state = a.state_dict()
    del state["head.bias"]
    state["extra"] = np.zeros(1)
    result = b.load_state_dict(state, strict=False)
    assert result == (["head.bias"], ["extra"])
    assert result.missing_keys == ["head.bias"] and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(b.head.weight.data, a.head.weight.data)
    assert b.load_state_dict(a.state_dict()) == ([], [])
    with pytest.raises(KeyError, match="head.bias.*extra"):
        b.load_state_dict(state)


def test_apply_visits_children_first_then_self():
    net = Net()
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "BatchNorm1d", "Dropout", "ModuleList", "Linear", "Net"]

    def init(m):
        if isinstance(m, nn.Linear):
            m.weight.data.fill(0.5)
    net.apply(init)
    assert all((lin.weight.data == 0.5).all() for lin in (net.blocks[0], net.head))


def test_mlp_with_every_new_layer_has_exact_gradients():
    mdl.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 5, dtype=np.float64), nn.BatchNorm1d(5, dtype=np.float64),
                          nn.LeakyReLU(0.1), nn.Dropout(0.3), nn.Linear(5, 4, dtype=np.float64),
                          nn.LayerNorm(4, dtype=np.float64), nn.Tanh(), nn.Linear(4, 3, dtype=np.float64),
                          nn.Softmax(dim=1))
    check_module_gradients(model, np.random.default_rng(11).normal(size=(7, 2, 3)), rtol=1e-5)


def test_dropout_and_kaiming_take_numpy_numbers_and_pytorch_spellings():
    """nn.Dropout(np.float32(0.5)) and kaiming_normal_(mode='FAN_IN') were refused; PyTorch takes both."""
    assert nn.Dropout(np.float32(0.5)).p == 0.5
    w = mdl.zeros(300, 200)
    init.kaiming_normal_(w, mode="FAN_OUT")
    assert abs(w.data.var() / (2 / 200) - 1) < 0.05     # 60,000 draws: sd of the variance √(2/60000) = 0.6%


# ---- PyTorch spellings of module arguments, and inputs other than Tensors ------------------------------
@pytest.mark.parametrize("make,expected_repr", [
    (lambda: nn.ReLU(inplace=True), "ReLU(inplace=True)"), (lambda: nn.ReLU(False), "ReLU()"),
    (lambda: nn.LeakyReLU(0.2, inplace=True), "LeakyReLU(negative_slope=0.2, inplace=True)"),
    (lambda: nn.LeakyReLU(inplace=False), "LeakyReLU(negative_slope=0.01)"),
    (lambda: nn.ELU(0.5, inplace=True), "ELU(alpha=0.5, inplace=True)"),
    (lambda: nn.Dropout(0.0, inplace=True), "Dropout(p=0.0, inplace=True)")])
def test_inplace_flag_is_taken_and_computed_out_of_place(make, expected_repr):
    """nn.ReLU(inplace=True) is everywhere in PyTorch code: it raised TypeError. The result is computed
    out of place: the same values and gradients, the input unchanged."""
    module = make()
    assert repr(module) == expected_repr
    x = mdl.tensor(X, requires_grad=True)
    plain = type(module)(*[getattr(module, a) for a in ("negative_slope", "alpha", "p") if hasattr(module, a)])
    y = module(x)
    np.testing.assert_array_equal(y.data, plain(mdl.tensor(X)).data)
    np.testing.assert_array_equal(x.data, X)
    y.sum().backward()
    assert x.grad.shape == X.shape
    assert F.relu(mdl.tensor(X), inplace=True).data.min() == 0
    assert F.dropout(mdl.tensor(X), 0.5, True, False).shape == X.shape


def test_dropouts_fourth_argument_is_inplace_as_in_pytorch():
    with pytest.raises(TypeError, match="generator="):
        F.dropout(mdl.tensor(X), 0.5, True, np.random.default_rng(0))
    a = F.dropout(mdl.tensor(X), 0.5, generator=np.random.default_rng(0)).data
    np.testing.assert_array_equal(a, F.dropout(mdl.tensor(X), 0.5, generator=np.random.default_rng(0)).data)


@pytest.mark.parametrize("module", [nn.ReLU(), nn.Sigmoid(), nn.Tanh(), nn.Softsign(), nn.LeakyReLU(0.2),
                                    nn.ELU(), nn.GELU(), nn.Activation("relu")])
def test_activations_take_arrays_and_lists_as_the_other_layers_do(module):
    """nn.ReLU()(ndarray) raised AttributeError: 'memoryview' object has no attribute 'dtype' (an ndarray's
    .data); Linear, Softmax and Dropout take arrays."""
    want = module(mdl.tensor(X)).data
    np.testing.assert_array_equal(module(X).data, want)
    np.testing.assert_array_equal(module(list(X)).data, module(mdl.tensor(list(X))).data)


@pytest.mark.parametrize("make", [lambda **kw: nn.Linear(3, 2, **kw), lambda **kw: nn.BatchNorm1d(3, **kw),
                                  lambda **kw: nn.LayerNorm(3, **kw)])
def test_layers_take_pytorchs_device_and_dtype_arguments(make):
    """device= raised TypeError (PyTorch code passes device=None or "cpu"), and dtype=None made float64
    parameters (NumPy's default) where PyTorch makes its default float32; float16 became float32 silently."""
    for kwargs in ({"device": None, "dtype": None}, {"device": "cpu"}, {"device": "cpu:0"}, {}):
        assert {t.dtype for t in make(**kwargs).state_dict().values() if t.dtype.kind == "f"} == {np.dtype(np.float32)}
    assert {p.dtype for p in make(dtype="float64").parameters()} == {np.dtype(np.float64)}
    with pytest.raises(ValueError, match=r"CPU only, got device='cuda'"):
        make(device="cuda")
    for bad in (np.float16, np.int64):
        with pytest.raises(ValueError, match="float32 or float64"):
            make(dtype=bad)


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4), (2, 3, 0)])
@pytest.mark.parametrize("track", [True, False])
def test_batchnorm1d_of_an_empty_batch_is_empty_as_in_pytorch(shape, track):
    """PyTorch gives an empty result and leaves the running estimates (counting the batch); minidl raised
    "expected more than 1 value per channel when training" (a batch of 1 still raises, as PyTorch)."""
    bn = nn.BatchNorm1d(3, track_running_stats=track)
    x = mdl.tensor(np.zeros(shape, dtype=np.float32), requires_grad=True)
    y = bn(x)
    assert y.shape == shape and y.dtype == np.float32
    y.sum().backward()
    assert x.grad.shape == shape and not bn.weight.grad.any() and not bn.bias.grad.any()
    if track:
        assert int(bn.num_batches_tracked.data) == 1
        np.testing.assert_array_equal(bn.running_mean.data, 0)
        np.testing.assert_array_equal(bn.running_var.data, 1)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(mdl.tensor(np.zeros((1, 3), dtype=np.float32)))
