"""Initializers against their exact target distributions.

Each draw is checked three ways, with thresholds derived from the sample size n (not loose absolute
tolerances, which let Caffe's own filler test pass against the wrong target):
  * Kolmogorov–Smirnov: D = maxᵢ max(i/n − F(x₍ᵢ₎), F(x₍ᵢ₎) − (i−1)/n) < c/√n, c = 2.2253 (α = 1e-4),
    with F the exact CDF (normal via math.erf; no scipy);
  * |mean| < 4·σ/√n and |var/σ² − 1| < 4·relative SE (0.894/√n uniform, √(2/n) normal);
  * uniform draws stay within their bound.
Examples are derandomized (fixed seeds), so the suite is deterministic.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minidl as mdl
from minidl import init, nn

KS_C = 2.2253                    # sqrt(-ln(alpha/2)/2) for alpha = 1e-4
_erf = np.vectorize(math.erf, otypes=[np.float64])


def uniform_cdf(bound):
    return lambda x: np.clip((x + bound) / (2 * bound), 0.0, 1.0)


def normal_cdf(std, mean=0.0):
    return lambda x: 0.5 * (1.0 + _erf((x - mean) / (std * math.sqrt(2.0))))


def ks_statistic(samples, cdf):
    x = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    n = x.size
    f = cdf(x)
    i = np.arange(1, n + 1)
    return max(np.max(i / n - f), np.max(f - (i - 1) / n))


def assert_distribution(samples, kind, scale, mean=0.0):
    """kind 'uniform': U[mean ± scale]; kind 'normal': N(mean, scale²)."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    n = x.size
    if kind == "uniform":
        cdf, var, rel_se = (lambda v: uniform_cdf(scale)(v - mean)), scale ** 2 / 3, 0.894 / math.sqrt(n)
        assert np.all(np.abs(x - mean) <= scale * (1 + 1e-6)), "sample outside the uniform bound"
    else:
        cdf, var, rel_se = normal_cdf(scale, mean), scale ** 2, math.sqrt(2.0 / n)
    d = ks_statistic(x, cdf)
    assert d < KS_C / math.sqrt(n), f"KS D = {d:.5f} >= {KS_C / math.sqrt(n):.5f} (n = {n})"
    assert abs(x.mean() - mean) < 4 * math.sqrt(var / n), f"mean {x.mean()} too far from {mean}"
    assert abs(x.var() / var - 1) < 4 * rel_se, f"variance {x.var()} vs target {var} (rel SE {rel_se:.4f})"


# ---- the schemes, with their targets written out from the formulas (glorot2010.md) -----------------
def xavier_uniform_target(fi, fo, gain, mode):
    fan = {"fan_in": fi, "fan_out": fo, "fan_avg": (fi + fo) / 2}[mode]
    return "uniform", gain * math.sqrt(3.0 / fan)   # fan_avg: gain·√6/√(fi+fo)


def xavier_normal_target(fi, fo, gain, mode):
    fan = {"fan_in": fi, "fan_out": fo, "fan_avg": (fi + fo) / 2}[mode]
    return "normal", gain * math.sqrt(1.0 / fan)    # fan_avg: Var = 2/(fi+fo)


shape_strategy = st.one_of(
    st.tuples(st.integers(20, 25), st.integers(20, 25)),
    st.tuples(st.integers(20, 25), st.integers(20, 25), st.integers(20, 25), st.integers(20, 25)))
KS_SETTINGS = settings(max_examples=6, deadline=None, derandomize=True)


def fans(shape):
    rf = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * rf, shape[-1] * rf


@KS_SETTINGS
@given(shape_strategy, st.floats(0.1, 2.0, exclude_max=True), st.sampled_from(["fan_in", "fan_out", "fan_avg"]),
       st.integers(0, 2**31))
def test_xavier_uniform(shape, gain, mode, seed):
    t = mdl.Tensor(np.empty(shape, dtype=np.float32))
    assert init.xavier_uniform_(t, gain=gain, mode=mode, generator=np.random.default_rng(seed)) is t
    assert_distribution(t.data, *xavier_uniform_target(*fans(shape), gain, mode))


@KS_SETTINGS
@given(shape_strategy, st.floats(0.1, 2.0, exclude_max=True), st.sampled_from(["fan_in", "fan_out", "fan_avg"]),
       st.integers(0, 2**31))
def test_xavier_normal(shape, gain, mode, seed):
    t = mdl.Tensor(np.empty(shape, dtype=np.float64))
    init.xavier_normal_(t, gain=gain, mode=mode, generator=np.random.default_rng(seed))
    assert_distribution(t.data, *xavier_normal_target(*fans(shape), gain, mode))


@KS_SETTINGS
@given(shape_strategy, st.integers(0, 2**31))
def test_standard_lecun(shape, seed):
    fi, _ = fans(shape)
    t = mdl.Tensor(np.empty(shape, dtype=np.float32))
    init.standard_(t, generator=np.random.default_rng(seed))
    assert_distribution(t.data, "uniform", 1 / math.sqrt(fi))          # Var = 1/(3·fan_in)
    init.lecun_normal_(t, generator=np.random.default_rng(seed + 1))
    assert_distribution(t.data, "normal", math.sqrt(1 / fi))           # Var = 1/fan_in
    init.lecun_uniform_(t, generator=np.random.default_rng(seed + 2))
    assert_distribution(t.data, "uniform", math.sqrt(3 / fi))          # Var = 1/fan_in


@KS_SETTINGS
@given(shape_strategy, st.sampled_from([("leaky_relu", 0), ("leaky_relu", 0.2), ("relu", None), ("tanh", None),
                                        ("linear", None)]),
       st.sampled_from(["fan_in", "fan_out"]), st.integers(0, 2**31))
def test_kaiming(shape, nonlin, mode, seed):
    fi, fo = fans(shape)
    fan = fi if mode == "fan_in" else fo
    name, a = nonlin
    gain = {"leaky_relu": math.sqrt(2 / (1 + (a or 0) ** 2)), "relu": math.sqrt(2), "tanh": 5 / 3, "linear": 1}[name]
    t = mdl.Tensor(np.empty(shape, dtype=np.float32))
    init.kaiming_uniform_(t, a=a or 0, mode=mode, nonlinearity=name, generator=np.random.default_rng(seed))
    assert_distribution(t.data, "uniform", gain * math.sqrt(3 / fan))  # ReLU: √(6/fan)
    init.kaiming_normal_(t, a=a or 0, mode=mode, nonlinearity=name, generator=np.random.default_rng(seed + 1))
    assert_distribution(t.data, "normal", gain / math.sqrt(fan))       # ReLU: Var = 2/fan


@KS_SETTINGS
@given(shape_strategy, st.floats(-2, 2), st.floats(0.01, 3), st.integers(0, 2**31))
def test_normal_and_uniform(shape, mean, std, seed):
    t = mdl.Tensor(np.empty(shape, dtype=np.float64))
    init.normal_(t, mean=mean, std=std, generator=np.random.default_rng(seed))
    assert_distribution(t.data, "normal", std, mean)
    init.uniform_(t, a=mean - std, b=mean + std, generator=np.random.default_rng(seed + 1))
    assert_distribution(t.data, "uniform", std, mean)


@pytest.mark.parametrize("name,kind,scale", [
    ("xavier_uniform", "uniform", math.sqrt(6 / (300 + 200))), ("xavier_normal", "normal", math.sqrt(2 / 500)),
    ("standard", "uniform", 1 / math.sqrt(300)), ("lecun_normal", "normal", math.sqrt(1 / 300)),
    ("lecun_uniform", "uniform", math.sqrt(3 / 300)), ("kaiming_uniform", "uniform", math.sqrt(6 / 300)),
    ("kaiming_normal", "normal", math.sqrt(2 / 300)), ("normal_0.01", "normal", 0.01), ("normal_1", "normal", 1.0),
    ("normal_0.1", "normal", 0.1)])
def test_scheme_names_through_linear(name, kind, scale):
    layer = nn.Linear(300, 200, init=name, generator=np.random.default_rng(11))
    assert layer.weight.shape == (300, 200) and layer.weight.dtype == np.float32
    assert_distribution(layer.weight.data, kind, scale)
    np.testing.assert_array_equal(layer.bias.data, np.zeros(200))


def test_linear_default_is_xavier_uniform_with_zero_bias():
    mdl.manual_seed(5)
    layer = nn.Linear(400, 300)
    assert_distribution(layer.weight.data, "uniform", math.sqrt(6 / 700))
    assert layer.bias.shape == (300,) and not layer.bias.data.any()


def test_the_checks_have_power():
    """The same checks reject a draw whose target is wrong by a little (Caffe's trap) or by scheme."""
    x = init.xavier_uniform_(np.empty((500, 500)), generator=np.random.default_rng(0))
    bound = math.sqrt(6 / 1000)
    with pytest.raises(AssertionError):
        assert_distribution(x, "uniform", bound * 1.03)            # 3% wrong bound
    with pytest.raises(AssertionError, match="KS"):
        assert_distribution(x, "normal", bound / math.sqrt(3))     # right variance, wrong family
    s = init.standard_(np.empty((500, 500)), generator=np.random.default_rng(1))
    with pytest.raises(AssertionError):
        assert_distribution(s, "uniform", bound)                   # standard vs xavier
    assert ks_statistic(s, uniform_cdf(1 / math.sqrt(500))) < KS_C / 500


def test_same_seed_same_weights_and_explicit_generator():
    mdl.manual_seed(123)
    a = nn.MLP([20, 30, 5]).state_dict()
    gen = mdl.random.generator()
    mdl.manual_seed(123)                  # reseeds in place: generators obtained earlier follow
    assert mdl.random.generator() is gen
    b = nn.MLP([20, 30, 5]).state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    c = nn.MLP([20, 30, 5]).state_dict()
    assert not np.array_equal(a["0.weight"], c["0.weight"])
    w1 = init.xavier_normal_(np.empty((5, 5)), generator=np.random.default_rng(9))
    w2 = init.xavier_normal_(np.empty((5, 5)), generator=np.random.default_rng(9))
    np.testing.assert_array_equal(w1, w2)


def test_calculate_gain_exact_constants():
    assert init.calculate_gain("linear") == 1
    assert init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == 1.6666666666666667
    assert init.calculate_gain("relu") == 1.4142135623730951
    assert init.calculate_gain("leaky_relu") == 1.4141428569978354
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError):
        init.calculate_gain("softsign")
    with pytest.raises(ValueError):
        init.calculate_gain("leaky_relu", "x")


def test_fans_and_small_tensors():
    assert init.fan_in_and_fan_out((784, 1000)) == (784, 1000)
    assert init.fan_in_and_fan_out((3, 3, 16, 32)) == (144, 288)
    for fn in (init.xavier_uniform_, init.xavier_normal_, init.standard_, init.lecun_normal_,
               init.kaiming_uniform_, init.kaiming_normal_):
        for shape in ((), (5,)):
            with pytest.raises(ValueError, match="at least 2 dimensions"):
                fn(mdl.Tensor(np.zeros(shape)))
    with pytest.raises(ValueError, match="mode"):
        init.xavier_uniform_(mdl.Tensor(np.zeros((3, 3))), mode="fan_sum")


def test_constant_zeros_and_unknown_scheme():
    t = mdl.Tensor(np.ones((2, 3)))
    assert init.zeros_(t) is t and not t.data.any()
    assert init.constant_(t, 0.5) is t and np.all(t.data == 0.5)
    with pytest.raises(ValueError, match="unknown init scheme"):
        nn.Linear(3, 2, init="glorot")
    calls = []
    layer = nn.Linear(3, 2, init=lambda w: calls.append(w.shape) or init.constant_(w, 2.0))
    assert calls == [(3, 2)] and np.all(layer.weight.data == 2.0)
    assert set(init.SCHEMES) >= {"xavier_uniform", "xavier_normal", "standard", "lecun_normal",
                                 "kaiming_uniform", "kaiming_normal", "normal_0.01", "normal_1"}


@pytest.mark.parametrize("fill", [init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_,
                                  init.kaiming_normal_, init.standard_, init.lecun_normal_, init.uniform_,
                                  init.normal_])
def test_random_initializers_refuse_integer_tensors(fill):
    """Issue 11: xavier_uniform_ on an integer tensor silently filled it with (truncated) zeros."""
    t = mdl.Tensor(np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(TypeError, match=r"floating-point tensors, got dtype int64 \(shape \(3, 4\)\)"):
        fill(t)
    assert init.constant_(t, 2) is t and (t.data == 2).all()            # constants fill any dtype


@pytest.mark.parametrize("fill", [init.kaiming_normal_, init.kaiming_uniform_, init.xavier_uniform_,
                                  init.standard_, init.lecun_normal_])
@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0)])
def test_zero_element_tensors_warn_and_are_returned_as_pytorch_does(fill, shape):
    """Issue 11: kaiming_normal_ on a (0, 5) tensor raised ZeroDivisionError."""
    t = mdl.Tensor(np.zeros(shape, dtype=np.float32))
    with pytest.warns(UserWarning, match="zero-element tensors is a no-op"):
        assert fill(t) is t


@pytest.mark.parametrize("fill", [init.xavier_uniform_, init.xavier_normal_, init.standard_, init.lecun_normal_,
                                  init.lecun_uniform_])
def test_an_empty_1d_tensor_has_no_fans_either(fill):
    """xavier_uniform_ on shape (0,) warned and returned where (5,) raises; PyTorch's xavier_* compute the fans
    first and raise for both. (kaiming_* check emptiness first in PyTorch, and so in minidl: (0,) warns.)"""
    with pytest.raises(ValueError, match="at least 2 dimensions, got shape \\(0,\\)"):
        fill(mdl.Tensor(np.zeros(0, np.float32)))
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_normal_(np.zeros(0))


@pytest.mark.parametrize("fill", [init.kaiming_normal_, init.xavier_uniform_, init.lecun_normal_])
def test_the_zero_element_warning_points_at_the_callers_line(fill):
    """It pointed into minidl/init.py (the logging wrapper); PyTorch's points at the line that called."""
    with pytest.warns(UserWarning, match="zero-element") as record:
        fill(np.empty((0, 5)))
    assert record[0].filename == __file__


@pytest.mark.parametrize("shape", [(6, 6), (4, 9), (9, 4), (3, 2, 5), (1, 7)])
@pytest.mark.parametrize("gain", [1.0, 5 / 3])
def test_orthogonal_has_every_singular_value_equal_to_the_gain(shape, gain):
    """Saxe et al. (2014): W Wᵀ = gain²·I (rows orthonormal) when rows ≤ columns, else Wᵀ W = gain²·I, on the
    (prod(shape[:-1]), shape[-1]) flattening; the same seed gives the same matrix."""
    w = init.orthogonal_(np.empty(shape), gain=gain, generator=np.random.default_rng(0))
    flat = w.reshape(-1, shape[-1])
    gram = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
    np.testing.assert_allclose(gram, gain ** 2 * np.eye(len(gram)), atol=1e-12)
    np.testing.assert_array_equal(w, init.orthogonal_(np.empty(shape), gain=gain, generator=np.random.default_rng(0)))
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.orthogonal_(np.empty(5))


def test_orthogonal_is_uniform_over_signs_and_rotations():
    """With R's signs folded into Q, Q is Haar-distributed: the diagonal of a 3×3 draw has mean 0 (a plain
    QR would bias it: Householder QR gives R a negative diagonal). 4000 draws: the standard error of the
    mean of one entry is √(1/3)/√4000 = 0.009, so 0.05 is five of them."""
    rng = np.random.default_rng(1)
    diagonals = np.array([np.diag(init.orthogonal_(np.empty((3, 3)), generator=rng)) for _ in range(4000)])
    assert np.abs(diagonals.mean(axis=0)).max() < 0.05


def test_trunc_normal_stays_in_bounds_with_the_truncated_moments():
    """N(0, 1) truncated to [-2, 2]: Var = 1 - 2·2φ(2)/(Φ(2) - Φ(-2)) = 0.7737 (the truncated normal's
    variance); 10⁶ draws: the relative standard error of a sample variance is √((kurtosis - 1)/N) < 0.2%."""
    w = init.trunc_normal_(np.empty((1000, 1000)), generator=np.random.default_rng(2))
    assert w.min() >= -2 and w.max() <= 2
    phi = math.exp(-2) / math.sqrt(2 * math.pi)
    assert np.var(w) == pytest.approx(1 - 4 * phi / math.erf(2 / math.sqrt(2)), rel=0.01)
    shifted = init.trunc_normal_(np.empty(10000), mean=3.0, std=0.5, a=2.5, b=3.2, generator=np.random.default_rng(3))
    assert shifted.min() >= 2.5 and shifted.max() <= 3.2
    for bad in (dict(std=0), dict(std=INF), dict(a=1, b=0), dict(a=10, b=1e6), dict(a=5, b=INF)):
        with pytest.raises(ValueError):
            init.trunc_normal_(np.empty(3), **bad)


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, 10.0, 11.0), (0.0, 1.0, 5.0, 6.0), (5.0, 1.0, -1.0, 1.0),
                                          (0.0, 1.0, -0.2, 0.1), (1.0, 3.0, 0.0, 0.5), (0.0, 1.0, 8.5, 9.0)])
def test_trunc_normal_samples_narrow_and_far_intervals_as_pytorch_does(mean, std, a, b):
    """[10, 11] of N(0, 1) (mass 8e-24) was a ValueError; PyTorch 2.13 samples it (x ~ U[a, b] kept with
    probability pdf(x)/pdf(c)), and so does minidl: KS against the truncated CDF (Φ(x) − Φ(a))/(Φ(b) − Φ(a))."""
    mass = init._normal_mass(mean, std, a, b)
    w = init.trunc_normal_(np.empty((200, 500)), mean, std, a, b, generator=np.random.default_rng(5))
    assert a <= w.min() and w.max() <= b
    d = ks_statistic(w, lambda x: np.array([init._normal_mass(mean, std, a, v) for v in x]) / mass)
    assert d < KS_C / math.sqrt(w.size)
    assert (init.trunc_normal_(np.empty(4, np.float32), a=1.0, b=1.0) == 1).all()   # a == b: PyTorch fills a


def test_trunc_normal_samples_intervals_whose_mass_underflows():
    """[40, 41] of N(0, 1) holds about 1e-350, below the smallest float: the share the uniform method keeps
    (about 2.5%) was computed from log(0) and the interval refused; PyTorch samples it. Near a, the truncated
    density is a·e^(-a(x-a)): mean a + 1/a."""
    w = init.trunc_normal_(np.empty(20000), a=40.0, b=41.0, generator=np.random.default_rng(6))
    assert 40 <= w.min() and w.max() <= 41
    assert w.mean() == pytest.approx(40 + 1 / 40, abs=5 * (1 / 40) / math.sqrt(w.size))
    assert init._log_normal_mass(0.0, 1.0, 10.0, 11.0) == pytest.approx(math.log(init._normal_mass(0.0, 1.0, 10.0, 11.0)),
                                                                       abs=1e-6)


def test_ones_and_eye():
    assert (init.ones_(np.zeros((2, 3))) == 1).all()
    np.testing.assert_array_equal(init.eye_(np.full((2, 3), 5.0)), np.eye(2, 3))
    t = mdl.tensor(np.zeros((3, 3), np.float32))
    assert init.eye_(t) is t and t.dtype == np.float32 and (t.data == np.eye(3)).all()
    with pytest.raises(ValueError, match="2-D"):
        init.eye_(np.zeros(3))


@pytest.mark.parametrize("fill", [init.zeros_, init.ones_, lambda t: init.constant_(t, 0.3), init.uniform_,
                                  init.normal_, init.xavier_uniform_, init.kaiming_normal_, init.orthogonal_])
def test_an_initializer_after_the_forward_pass_stops_backward(fill):
    """The initializers wrote without logging it: x.grad came from the new weights ([0, 0] after zeros_),
    where PyTorch raises (its version counter)."""
    w = mdl.tensor(np.full((2, 2), 2.0), requires_grad=True)
    x = mdl.tensor(np.full((3, 2), 5.0), requires_grad=True)
    y = (x @ w).sum()
    fill(w)
    with pytest.raises(RuntimeError, match=r"modified by init\."):
        y.backward()


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("fill,match", [
    (lambda t: init.uniform_(t, 1.0, 0.0), r"uniform_: U\[a, b\) needs finite a <= b, got a=1.0, b=0.0"),
    (lambda t: init.uniform_(t, NAN, 1.0), "a=nan"), (lambda t: init.uniform_(t, 0.0, INF), "b=inf"),
    (lambda t: init.normal_(t, 0.0, -1.0), "normal_: std must be >= 0, got -1.0"),
    (lambda t: init.normal_(t, 0.0, NAN), "std must be >= 0, got nan"),
    (lambda t: init.xavier_uniform_(t, gain=-1.0), r"xavier_uniform_\(gain=-1.0\): the bound"),
    (lambda t: init.xavier_uniform_(t, gain=NAN), r"gain=nan"),
    (lambda t: init.xavier_normal_(t, gain=-1.0), r"xavier_normal_\(gain=-1.0\): std must be >= 0"),
    (lambda t: init.xavier_normal_(t, gain=NAN), r"gain=nan"),
    (lambda t: init.kaiming_uniform_(t, a=NAN), r"kaiming_uniform_\(a=nan, 'leaky_relu'\)"),
    (lambda t: init.kaiming_normal_(t, a=NAN), r"kaiming_normal_\(a=nan, 'leaky_relu'\)"),
    (lambda t: init.trunc_normal_(t, mean=NAN), "a finite mean, got mean=nan")])
def test_bad_spreads_are_refused_before_anything_is_written(fill, match):
    """uniform_ with a > b drew from U(b, a] silently; a NaN std (or gain, or kaiming slope) filled NaN, as
    did trunc_normal_ with a NaN mean (NaN fails both bound tests); the rest raised NumPy's "high - low < 0",
    "scale < 0" or an OverflowError. PyTorch refuses all of these (RuntimeError); minidl says which
    argument, and leaves the tensor as it was."""
    t = mdl.tensor(np.full((4, 5), 7.0, np.float32))
    with pytest.raises(ValueError, match=match):
        fill(t)
    assert (t.data == 7).all()


def test_degenerate_but_valid_spreads_are_accepted_as_pytorch_does():
    assert (init.uniform_(np.empty(3), 2.0, 2.0) == 2).all()
    assert (init.normal_(np.empty(3), 1.5, 0.0) == 1.5).all()
    assert (init.xavier_normal_(np.empty((3, 3)), gain=0.0) == 0).all()
    assert (init.kaiming_uniform_(np.empty((3, 3)), a=INF) == 0).all()           # gain √(2/(1+∞)) = 0
    assert np.isinf(init.normal_(np.empty(3), 0.0, INF)).all()


@pytest.mark.parametrize("value", [None, "1.5", "abc", [1.0], np.array([1.0, 2.0]), mdl.tensor([1.0, 2.0]), 1 + 2j])
def test_constant_refuses_what_is_not_a_number(value):
    """NumPy's fill took None as NaN and "1.5" as 1.5, silently; PyTorch raises a TypeError (and a
    RuntimeError for a tensor of more than 0 dims)."""
    t = mdl.tensor(np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="constant_ fills with a number or a 0-d tensor, got"):
        init.constant_(t, value)
    assert not t.data.any()


@pytest.mark.parametrize("value,dtype,expected", [
    (True, np.float32, 1.0), (2, np.float64, 2.0), (2.7, np.int64, 2), (NAN, np.float32, NAN),
    (np.float64(0.5), np.float32, 0.5), (mdl.tensor(3.0), np.float32, 3.0), (np.array(4.0), np.float64, 4.0),
    (NAN, np.bool_, True), (np.bool_(True), np.float32, 1.0)])
def test_constant_fills_numbers_and_0d_tensors_as_pytorch_does(value, dtype, expected):
    t = mdl.tensor(np.zeros((2, 3), dtype))
    assert init.constant_(t, value) is t and t.dtype == dtype
    np.testing.assert_array_equal(t.data, np.full((2, 3), expected, dtype))


def test_linear_passes_its_generator_to_a_scheme_given_as_an_object():
    """nn.Linear(init=init.SCHEMES[name], generator=g) drew from the global generator, ignoring g (only a name
    got it); a plain callable is still called as fn(weight)."""
    def draw(scheme):
        return nn.Linear(30, 20, init=scheme, generator=np.random.default_rng(4)).weight.data
    for name in ("xavier_normal", "orthogonal", "normal_0.1"):
        np.testing.assert_array_equal(draw(init.get(name)), draw(name))
    assert (draw(lambda w: init.constant_(w, 0.25)) == 0.25).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_never_draws_b(dtype):
    """uniform_ is U[a, b): float64 draws just below b rounded to b in float32 (2 in 10⁸ on U[0, 1); half
    the draws when b is the next float after a). PyTorch never returns b."""
    a = 1.0
    b = float(np.nextafter(dtype(a), dtype(2)))
    w = init.uniform_(np.empty(10000, dtype), a, b, generator=np.random.default_rng(0))
    assert (w == a).all()
    w = init.uniform_(np.empty(10000, dtype), -2.0, 0.5, generator=np.random.default_rng(1))
    assert w.dtype == dtype and w.min() >= -2 and w.max() < 0.5 and w.max() > 0.49
