"""LayerProbe against a hand computation on a tiny net (2 -> 3 -> 2, tanh, cross-entropy)."""
import numpy as np
import pytest

import minidl as mdl
from minidl import nn
from minidl.diagnostics import LayerProbe
from minidl.nn import functional as F

W1 = np.array([[0.5, -0.3, 0.8], [0.2, 0.7, -0.6]])
W2 = np.array([[1.0, -0.5], [0.3, 0.9], [-0.7, 0.4]])
X = np.array([[1.0, 2.0], [-0.5, 0.25], [0.3, -1.2], [2.0, 0.1]])
Y = np.array([0, 1, 1, 0])


def tiny_net():
    model = nn.Sequential(nn.Linear(2, 3, dtype=np.float64), nn.Tanh(), nn.Linear(3, 2, dtype=np.float64))
    model[0].weight.data[...] = W1
    model[2].weight.data[...] = W2
    return model


def hand_computation():
    """Forward and backward of the mean cross-entropy, written out with NumPy."""
    s1 = X @ W1
    z1 = np.tanh(s1)
    s2 = z1 @ W2
    p = np.exp(s2 - s2.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    onehot = np.eye(2)[Y]
    d2 = (p - onehot) / len(Y)          # dC/ds2 of the batch-mean NLL
    dW2 = z1.T @ d2
    d1 = (d2 @ W2.T) * (1 - z1 ** 2)    # dC/ds1 = f'(s1) * (dC/ds2 W2^T)
    dW1 = X.T @ d1
    return s1, z1, s2, d1, d2, dW1, dW2


def test_probe_matches_hand_computation():
    model = tiny_net()
    probe = LayerProbe.from_modules(list(model))
    assert probe.num_layers == 2 and probe.activation_names == ["tanh", None]
    with probe:
        loss = F.cross_entropy(model(mdl.tensor(X)), Y)
        loss.backward()
    s1, z1, s2, d1, d2, dW1, dW2 = hand_computation()
    np.testing.assert_allclose(probe.pre_activations[0], s1, rtol=1e-12)
    np.testing.assert_allclose(probe.activations[0], z1, rtol=1e-12)
    np.testing.assert_allclose(probe.pre_activations[1], s2, rtol=1e-12)
    assert probe.activations[1] is None
    np.testing.assert_allclose(probe.pre_activation_grads[1], d2, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(probe.pre_activation_grads[0], d1, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(probe.weight_grad(0), dW1, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(probe.weight_grad(1), dW2, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(probe.activation_derivatives(0), 1 - z1 ** 2, rtol=1e-12)

    summary = probe.summary()
    assert summary[0]["activation_values"]["mean"] == pytest.approx(z1.mean(), rel=1e-12)
    assert summary[0]["activation_values"]["std"] == pytest.approx(z1.std(), rel=1e-12)
    assert summary[0]["backprop_gradient"]["std"] == pytest.approx(d1.std(), rel=1e-9)
    assert summary[1]["weight_gradient"]["std"] == pytest.approx(dW2.std(), rel=1e-9)
    assert summary[1]["activation_values"] is None


def test_probe_detaches_and_does_not_change_the_model():
    model = tiny_net()
    probe = LayerProbe.from_modules(list(model))
    with probe:
        with_probe = model(mdl.tensor(X)).data.copy()
    first = probe.pre_activations[0].copy()
    without = model(mdl.tensor(X * 2)).data       # after detach: nothing recorded
    np.testing.assert_array_equal(probe.pre_activations[0], first)
    np.testing.assert_allclose(with_probe, model(mdl.tensor(X)).data)
    assert not np.allclose(without, with_probe)


def test_probe_under_no_grad_records_forward_only():
    model = tiny_net()
    probe = LayerProbe.from_modules(list(model))
    with mdl.no_grad(), probe:
        model(mdl.tensor(X))
    np.testing.assert_allclose(probe.activations[0], np.tanh(X @ W1), rtol=1e-12)
    assert probe.pre_activation_grads[0] is None


def test_probe_on_mlp_and_bad_input():
    mdl.manual_seed(0)
    mlp = nn.MLP([4, 5, 5, 3], activation="sigmoid")
    probe = LayerProbe(mlp.linears, list(mlp.activations) + [None])
    assert probe.activation_names == ["sigmoid", "sigmoid", None]
    with pytest.raises(ValueError, match="2 linear modules but 1"):
        LayerProbe(mlp.linears[:2], mlp.activations[:1])
    with pytest.raises(TypeError, match="no 2-D .weight"):
        LayerProbe([nn.Tanh()], [None])


def test_probe_with_one_activation_module_reused_after_each_linear():
    """``act = nn.Tanh()`` used twice in a Sequential fires once per use; each layer keeps its own z (the
    per-layer hooks used to record every use, leaving the top layer's z in both slots)."""
    act = nn.Tanh()
    w2 = np.array([[0.4, -0.2, 0.1], [0.3, 0.5, -0.6], [-0.8, 0.2, 0.7]])
    model = nn.Sequential(nn.Linear(2, 3, dtype=np.float64), act, nn.Linear(3, 3, dtype=np.float64), act,
                          nn.Linear(3, 2, dtype=np.float64))
    model[0].weight.data[...], model[2].weight.data[...], model[4].weight.data[...] = W1, w2, W2
    probe = LayerProbe.from_modules(list(model))
    assert probe.activation_names == ["tanh", "tanh", None]
    with probe:
        model(mdl.tensor(X))
    z1 = np.tanh(X @ W1)
    np.testing.assert_allclose(probe.activations[0], z1, rtol=1e-12)
    np.testing.assert_allclose(probe.activations[1], np.tanh(z1 @ w2), rtol=1e-12)
