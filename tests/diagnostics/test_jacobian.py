"""Layer Jacobian diag(f'(s)) W^T and its singular values (Glorot & Bengio 2010, Eq. 17)."""
import numpy as np
import pytest

from minidl.diagnostics import (QUARTER_CIRCLE_MEAN, activation_derivative, layer_jacobian,
                                mean_singular_value, singular_values)

ACTIVATIONS = {"sigmoid": lambda s: 1 / (1 + np.exp(-s)), "tanh": np.tanh,
               "softsign": lambda s: s / (1 + np.abs(s)), "relu": lambda s: np.maximum(s, 0),
               "identity": lambda s: s}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivative_matches_central_differences(name):
    s = np.array([-3.0, -0.7, -0.1, 0.2, 0.9, 4.0])
    h = 1e-6
    numeric = (ACTIVATIONS[name](s + h) - ACTIVATIONS[name](s - h)) / (2 * h)
    np.testing.assert_allclose(activation_derivative(name, s), numeric, rtol=1e-6, atol=1e-9)


def test_layer_jacobian_is_the_derivative_of_the_layer():
    rng = np.random.default_rng(1)
    W = rng.normal(size=(4, 3))
    z = rng.normal(size=4)
    layer = lambda v: np.tanh(v @ W)                                   # noqa: E731
    J = layer_jacobian(W, activation_derivative("tanh", z @ W))
    assert J.shape == (3, 4)
    h = 1e-6
    numeric = np.stack([(layer(z + h * e) - layer(z - h * e)) / (2 * h) for e in np.eye(4)], axis=1)
    np.testing.assert_allclose(J, numeric, rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="fan_out"):
        layer_jacobian(W, np.ones(4))


@pytest.mark.parametrize("shape", [(7, 5), (5, 7), (6, 6)])
def test_singular_values_match_numpy_svd(shape):
    rng = np.random.default_rng(2)
    W = rng.normal(size=shape)
    d = rng.uniform(0.1, 1.0, size=shape[1])
    expected = np.linalg.svd(d[:, None] * W.T, compute_uv=False)
    np.testing.assert_allclose(singular_values(W, d), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(singular_values(W, d, np.float32), expected, rtol=1e-3, atol=1e-3)


def test_quarter_circle_law_for_the_two_inits():
    """n x n weights with Var = 1/(3n) (standard) and 1/n (Xavier, equal widths), identity activation:
    mean singular value 0.849 * sqrt(n Var) = 0.490 and 0.849. For n = 400 the finite-size deviation
    measured over seeds is below 0.01; 0.02 is the tolerance."""
    rng = np.random.default_rng(3)
    n = 400
    ones = np.ones((1, n))
    standard = rng.uniform(-1 / np.sqrt(n), 1 / np.sqrt(n), size=(n, n))
    xavier = rng.uniform(-np.sqrt(6 / (2 * n)), np.sqrt(6 / (2 * n)), size=(n, n))
    assert mean_singular_value(standard, ones) == pytest.approx(QUARTER_CIRCLE_MEAN / np.sqrt(3), abs=0.02)
    assert mean_singular_value(xavier, ones) == pytest.approx(QUARTER_CIRCLE_MEAN, abs=0.02)
