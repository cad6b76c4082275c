"""The activation and init-scheme registries are the one source of every name: each registered name is
accepted by every entry point (nn, diagnostics, the at-init study, `minidl train`, `minidl reproduce`), every
other name is refused by all of them alike, and each entry's facts (derivative, moments, variance) are true."""
import math

import numpy as np
import pytest

import minidl as mdl
from minidl import activations, init, nn
from minidl.cli import build_parser
from minidl.cli.reproduce import build_config
from minidl.diagnostics import LayerProbe, activation_derivative, activation_moments
from minidl.experiments.at_init import measure_network
from minidl.experiments.networks import weight_variances

ACTIVATIONS = activations.names()
SCHEMES = init.names() + ("normal_0.5", "normal_.5", "normal_1e-2")
NOT_SCHEMES = ("glorot", "Xavier_uniform", "normal_", "normal_0", "normal_-1", "normal_nan", "normal_inf",
               "normal_x", "lecun", "", "normal_1_0", "normal_ 0.5", "normal_1e999",
               "normal_\u0660.5")         # an Arabic-Indic zero: a Unicode digit, no plain decimal


def reproduce_args(*extra):
    return build_parser().parse_args(["reproduce", "--quick", *extra])


def train_args(*extra):
    return build_parser().parse_args(["train", "shapeset", *extra])


def accepted(parse) -> bool:
    try:
        parse()
    except (ValueError, SystemExit):
        return False
    return True


# ---- activations: every entry point ---------------------------------------------------------------
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_activation_is_accepted_by_every_entry_point(name):
    mdl.manual_seed(0)
    model = nn.MLP([4, 6, 6, 3], activation=name)
    assert [m.activation.name for m in model.activations] == [name, name]
    assert nn.Activation(name).activation is activations.get(name)
    probe = LayerProbe.from_modules(list(model))
    assert probe.activation_names == [name, name, None]
    assert train_args("--activation", name).activation == name
    config = build_config(reproduce_args("--activations", name, "--init-activations", name))
    assert config.training.activations == (name,) and config.at_init.activations == (name,)
    x = np.random.default_rng(0).random((8, 4)).astype(np.float32)
    record, _ = measure_network(name, "xavier_uniform", depth=3, width=12, x=x, y=np.arange(8) % 3,
                                n_classes=3, seed=0, jacobian_examples=1)
    assert record["activation"] == name and len(record["layers"]) == 3
    assert all(np.isfinite(layer["predicted"]["activation_var"]) for layer in record["layers"])


@pytest.mark.parametrize("bad", ["swish", "Sigmoidal", "relu6"])
def test_an_unknown_activation_is_refused_alike_everywhere(bad):
    message = f"unknown activation {bad!r}"
    for call in (lambda: nn.MLP([2, 2, 2], activation=bad), lambda: nn.Activation(bad),
                 lambda: activation_derivative(bad, 0.0), lambda: activation_moments(bad, 1.0)):
        with pytest.raises(ValueError, match=message):
            call()
    assert not accepted(lambda: train_args("--activation", bad))
    assert not accepted(lambda: reproduce_args("--activations", f"tanh,{bad}"))
    assert not accepted(lambda: reproduce_args("--init-activations", bad))


def test_a_newly_registered_activation_appears_everywhere(monkeypatch):
    """Adding an activation is one `register` call: nn, the CLIs and the diagnostics then know it."""
    square = activations.Activation(
        "test_square", "s²", "2s", "a test", forward=np.square, backward=lambda g, s, z: g * (2 * s),
        value_range=(0.0, None), slope_at_zero=0.0, moments=lambda v: (3 * v * v, 2 * v * v, 4 * v))
    monkeypatch.setitem(activations.REGISTRY, "test_square", square)
    model = nn.MLP([3, 4, 2], activation="test_square")
    x = mdl.tensor([[1.0, -2.0, 0.5]], requires_grad=True)
    model(x).sum().backward()
    assert x.grad.shape == (1, 3)
    assert train_args("--activation", "test_square").activation == "test_square"
    assert build_config(reproduce_args("--activations", "test_square")).training.activations == ("test_square",)
    assert activation_moments("test_square", 2.0) == (12.0, 8.0, 8.0)


# ---- activations: the facts are true -------------------------------------------------------------
@pytest.mark.parametrize("entry", [activations.get(name) for name in ACTIVATIONS]
                         + [nn.LeakyReLU(0.2).activation, nn.ELU(0.5).activation], ids=lambda e: e.name)
def test_backward_reads_only_what_it_declares(entry):
    """``backward_reads`` lets the in-place check skip what backward does not read, so it must be true:
    the undeclared argument replaced by NaN leaves the gradient unchanged."""
    s = np.random.default_rng(2).normal(0, 2, 200)
    z, g = entry.forward(s), np.random.default_rng(3).normal(0, 1, 200)
    nan = np.full_like(s, np.nan)
    expected = entry.backward(g, s, z)
    np.testing.assert_array_equal(entry.backward(g, s if "s" in entry.backward_reads else nan,
                                                 z if "z" in entry.backward_reads else nan), expected)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "softsign"])
def test_changing_what_an_activation_backward_does_not_read_is_allowed(name):
    """As PyTorch: sigmoid, tanh and relu save their output, so their input may change in place afterwards
    (relu read its input: that was refused); softsign reads its input, so changing it stops backward."""
    w, untouched = (mdl.tensor([0.5, -1.0, 2.0], requires_grad=True) for _ in range(2))
    getattr(untouched * 2, name)().sum().backward()
    s = w * 2
    z = getattr(s, name)()
    with mdl.no_grad():
        s += 1
    if "s" in activations.get(name).backward_reads:
        with pytest.raises(RuntimeError, match="changed in place after the forward pass"):
            z.sum().backward()
        return
    z.sum().backward()
    np.testing.assert_array_equal(w.grad, untouched.grad)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_and_backward_match_central_differences(name, dtype):
    act = activations.get(name)
    s = np.random.default_rng(1).normal(0, 3, 1000)
    s = s[np.abs(s) > 1e-3]                                   # away from the kinks of relu and leaky_relu
    h = 1e-6
    numeric = (act.forward(s + h) - act.forward(s - h)) / (2 * h)
    np.testing.assert_allclose(act.derivative(s), numeric, rtol=1e-6, atol=1e-9)
    x = mdl.tensor(s.astype(dtype), requires_grad=True)
    y = nn.Activation(name)(x)
    assert y.dtype == dtype
    y.backward(np.ones_like(s, dtype=dtype))
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(x.grad, act.derivative(s), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_0d_and_integer_inputs(name):
    x = mdl.tensor(0.5, requires_grad=True)
    y = nn.Activation(name)(x)
    assert y.shape == () and y.dtype == np.float32
    y.backward()
    assert x.grad.shape == () and x.grad == pytest.approx(activations.get(name).derivative(0.5), rel=1e-6)
    integers = nn.Activation(name)(mdl.Tensor(np.array([1, -2])))
    assert integers.dtype == (np.int64 if activations.get(name).keeps_integers else np.float32)   # as PyTorch


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_range_and_slope_at_zero(name):
    act = activations.get(name)
    z = act.forward(np.linspace(-1e4, 1e4, 20001))
    low, high = act.value_range
    assert (low is None or z.min() >= low) and (high is None or z.max() <= high)
    assert (low is None) == (z.min() < -25) and (high is None) == (z.max() > 25)   # open sides are unbounded
    if act.slope_at_zero is not None:
        assert act.derivative(np.array([0.0]))[0] == pytest.approx(act.slope_at_zero)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_moments_against_monte_carlo(name):
    """(E[z²], Var z, E[f'²]) for s ~ N(0, v), from 400k draws. Piecewise-linear units: exact at any v.
    Smooth units: the linear regime, so at v = 1e-6 (softsign's f' = 1 - 2|s| + ... is off by ~E|s| = 0.1%). The
    standard error of a mean of z² or f'² is at most √(Var/N) ≈ 0.3% here; 3% is ten of them."""
    act = activations.get(name)
    v = 1e-6 if name in ("sigmoid", "tanh", "softsign") else 2.0
    s = np.random.default_rng(2).normal(0, math.sqrt(v), 400_000)
    z = act.forward(s)
    measured = (np.mean(z * z), np.var(z), np.mean(act.derivative(s) ** 2))
    np.testing.assert_allclose(measured, act.moments(v), rtol=0.03)


def test_histogram_range_is_the_value_range_with_open_sides_from_the_data():
    data = [np.array([-3.0, 0.0, 10.0])]
    assert activations.get("tanh").histogram_range(data) == (-1.0, 1.0)
    low, high = activations.get("relu").histogram_range(data)
    assert low == 0.0 and 9.9 < high <= 10.0
    assert activations.get("relu").histogram_range([np.zeros(3)]) == (0.0, 1.0)   # never empty


# ---- schemes: every entry point, and the same refusals -------------------------------------------
@pytest.mark.parametrize("name", SCHEMES)
def test_every_scheme_is_accepted_by_every_entry_point(name):
    layer = nn.Linear(6, 4, init=name)
    assert layer.weight.shape == (6, 4)
    assert train_args("--init", name).init == name
    config = build_config(reproduce_args("--schemes", name, "--init-schemes", name))
    assert config.training.schemes == (name,) and config.at_init.schemes == (name,)
    assert weight_variances([6, 4, 3], name) == [init.get(name).variance(6, 4), init.get(name).variance(4, 3)]


@pytest.mark.parametrize("name", SCHEMES + NOT_SCHEMES)
def test_nn_linear_and_both_clis_agree_on_every_name(name):
    linear = accepted(lambda: nn.Linear(3, 2, init=name))
    assert accepted(lambda: train_args("--init", name)) == linear
    assert accepted(lambda: reproduce_args("--schemes", name)) == linear
    assert accepted(lambda: reproduce_args("--init-schemes", name)) == linear
    assert linear == (name in SCHEMES)


@pytest.mark.parametrize("name", SCHEMES)
def test_each_scheme_draws_the_variance_it_declares(name):
    """Var(W) of a (1000, 500) draw within 2% of `variance(fan_in, fan_out)`: the relative standard error
    of a sample variance is √((kurtosis - 1)/N) ≤ √(2/5e5) = 0.2%, so 2% is ten of them."""
    scheme = init.get(name)
    w = scheme(np.empty((1000, 500)), generator=np.random.default_rng(3))
    expected = scheme.variance(1000, 500)
    if expected == 0:
        assert not w.any()
    else:
        assert np.var(w) == pytest.approx(expected, rel=0.02)
        assert abs(np.mean(w)) < 5 * math.sqrt(expected / w.size)
    assert scheme.label and scheme.formula and scheme.source
