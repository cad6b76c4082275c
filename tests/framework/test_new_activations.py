"""ELU and GELU in the activation registry: values as PyTorch defines them (α = 1; GELU with the exact
normal CDF, not the tanh approximation), gradients, and the exact moments against quadrature."""
import math

import numpy as np
import pytest

import minidl as mdl
from minidl import activations, ops
from fw_gradcheck import check_gradients


def test_values():
    s = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    phi = np.array([0.5 * math.erfc(-x / math.sqrt(2)) for x in s])
    np.testing.assert_allclose(activations.get("gelu").forward(s), s * phi, rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(activations.get("elu").forward(s), np.where(s > 0, s, np.expm1(s)), rtol=1e-15)
    assert activations.get("gelu").forward(np.array(1.0)) == pytest.approx(0.8413447460685429, rel=1e-15)
    assert activations.get("elu").forward(np.array(-1.0)) == pytest.approx(-0.6321205588285577, rel=1e-15)
    assert activations.get("gelu").forward(np.array([-40.0]))[0] == pytest.approx(-40 * 0.5 * math.erfc(40 / math.sqrt(2)))


@pytest.mark.parametrize("name", ["elu", "gelu"])
@pytest.mark.parametrize("shape", [(), (1,), (0, 2), (3, 4)])
def test_gradients(name, shape):
    x = np.random.default_rng(0).uniform(-3, 3, size=shape)
    check_gradients(lambda t: ops.activation(t, name), x)
    y = ops.activation(mdl.tensor(x.astype(np.float32)), name)
    assert y.dtype == np.float32 and y.shape == shape


def test_gelu_minimum_is_inside_its_value_range():
    s = np.linspace(-0.76, -0.74, 20001)
    z = activations.get("gelu").forward(s)
    assert -0.17 < z.min() < -0.1699 and abs(s[z.argmin()] + 0.7518) < 1e-3


def _quadrature(fn, sigma: float) -> float:
    """E[fn(s)] for s ~ N(0, σ²): composite Simpson on each side of the kink at 0, over ±14σ (the tails
    beyond weigh < 1e-44 against the polynomially growing integrands)."""
    total = 0.0
    for low, high in ((-14 * sigma, 0.0), (0.0, 14 * sigma)):
        s = np.linspace(low, high, 40001)
        f = fn(s) * np.exp(-s * s / (2 * sigma * sigma)) / (sigma * math.sqrt(2 * math.pi))
        h = s[1] - s[0]
        total += h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())
    return total


@pytest.mark.parametrize("name", ["elu", "gelu"])
@pytest.mark.parametrize("v", [1e-4, 0.1, 1.0, 2.0, 10.0, 400.0])
def test_moments_are_exact(name, v):
    """The closed forms (E[z²], Var z, E[f'²]) against numerical integration, to 1e-9 relative."""
    act = activations.get(name)
    sigma = math.sqrt(v)
    second = _quadrature(lambda s: act.forward(s) ** 2, sigma)
    mean = _quadrature(act.forward, sigma)
    slope = _quadrature(lambda s: act.derivative(s) ** 2, sigma)
    np.testing.assert_allclose(act.moments(v), (second, second - mean * mean, slope), rtol=1e-9)


def test_erfcx_on_both_sides_of_its_switch_to_the_asymptotic_series():
    for x in (0.0, 1.0, 24.9, 25.0, 25.5, 26.0):
        assert activations._erfcx(x) == pytest.approx(math.exp(x * x) * math.erfc(x), rel=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_at_nan_inputs_are_pytorchs(dtype):
    """PyTorch 2.13 at x = [nan, 1, -1]: relu [1, 1, 0], elu [1, 1, e^-1], abs [0, 1, -1], leaky_relu
    [0.01, 1, 0.01] (minidl gave relu 0, elu NaN and abs NaN at the NaN)."""
    expected = {"relu": [1.0, 1.0, 0.0], "elu": [1.0, 1.0, math.exp(-1.0)], "abs": [0.0, 1.0, -1.0],
                "leaky_relu": [0.01, 1.0, 0.01]}
    for name, grad in expected.items():
        x = mdl.tensor(np.array([np.nan, 1.0, -1.0], dtype=dtype), requires_grad=True)
        (ops.abs(x) if name == "abs" else ops.activation(x, name)).sum().backward()
        np.testing.assert_allclose(x.grad, grad, rtol=1e-6, err_msg=name)
