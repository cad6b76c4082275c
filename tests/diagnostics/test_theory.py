"""The variance recursions of the Xavier derivation, against the formulas and a Monte Carlo linear net."""
import math

import numpy as np
import pytest

from minidl.diagnostics import activation_moments, predict_backward, predict_forward, predict_weight_gradient


def test_forward_recursion_is_the_product_formula():
    fan_ins, variances = [100, 200, 200], [0.01, 1 / 600, 0.005]
    out = predict_forward(fan_ins, variances, input_second_moment=2.0, activation="tanh")
    expected, m = [], 2.0
    for n, v in zip(fan_ins, variances):
        m = n * v * m                      # Var(z^{i+1}) = n_i Var(W^i) Var(z^i) in the linear regime
        expected.append(m)
    assert out["pre_activation_var"] == pytest.approx(expected)
    assert out["activation_var"] == pytest.approx(expected)
    # standard init, equal widths: n Var(W) = 1/3 per layer
    n = 1000
    std = predict_forward([n] * 5, [1 / (3 * n)] * 5, 1.0, "tanh")["activation_var"]
    assert [b / a for a, b in zip(std, std[1:])] == pytest.approx([1 / 3] * 4)


def test_activation_moments():
    assert activation_moments("sigmoid", 0.8) == pytest.approx((0.25 + 0.05, 0.05, 1 / 16))
    assert activation_moments("relu", 2.0) == pytest.approx((1.0, 1.0 - 1 / math.pi, 0.5))
    with pytest.raises(ValueError):
        activation_moments("swish", 1.0)


def test_backward_recursion_uses_the_fan_out_above():
    fan_outs_above = [300, 300, 10]
    variances_above = [0.002, 0.003, 0.004]
    out = predict_backward(fan_outs_above, variances_above, 5.0, "tanh", [1.0, 1.0, 1.0])
    v3 = 10 * 0.004 * 5.0
    v2 = 300 * 0.003 * v3
    v1 = 300 * 0.002 * v2
    assert out == pytest.approx([v1, v2, v3])
    assert predict_backward([10], [0.1], 1.0, "sigmoid", [1.0]) == pytest.approx([10 * 0.1 / 16])
    assert predict_weight_gradient(4, [2.0, 3.0], [0.5, 0.25]) == pytest.approx([4.0, 3.0])


def test_recursions_match_a_monte_carlo_linear_net():
    """Identity activation, Gaussian weights: measured variances within 3.5% of the recursions, 4 standard
    deviations of the relative error over 40 seeds of this setup (forward 0.4/0.7/0.9%, backward 0.5/0.3%)."""
    rng = np.random.default_rng(0)
    sizes = [300, 400, 400, 400]
    weights = [rng.normal(0, np.sqrt(1 / (3 * a)), size=(a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    x = rng.normal(0, 1.5, size=(500, sizes[0]))
    z = x
    measured = []
    for W in weights:
        z = z @ W
        measured.append(z.var())
    predicted = predict_forward(sizes[:-1], [W.var() for W in weights], np.mean(x ** 2), "identity")
    np.testing.assert_allclose(measured, predicted["activation_var"], rtol=0.035)
    g = rng.normal(0, 1.0, size=(500, sizes[-1]))       # dC/ds at the top
    grads = []
    for W in reversed(weights[1:]):
        g = g @ W.T
        grads.append(g.var())
    back = predict_backward(sizes[2:], [W.var() for W in weights[1:]], 1.0, "identity", [1.0] * 2)
    np.testing.assert_allclose(list(reversed(grads)), back, rtol=0.035)
