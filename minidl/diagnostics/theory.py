"""Variance propagation predicted by the Xavier derivation (Glorot & Bengio 2010, Sec. 4.2.1).

Weights W^i laid out (n_{i-1}, n_i), zero-mean, iid, independent of the signal. With s^i = z^{i-1} W^i:
    forward    Var(s^i)     = n_{i-1} Var(W^i) E[(z^{i-1})^2]
    backward   Var(dC/ds^i) = E[f'(s^i)^2] * n_i+1 Var(W^{i+1}) Var(dC/ds^{i+1})   (n_{i+1} = fan_out of W^{i+1})
The forward step uses the second moment E[z^2], which equals Var(z) for the zero-mean signals of the
paper's derivation and stays exact when inputs (pixels in [0, 1]) or sigmoid units are not centred.
An activation enters through how it maps Var(s) to E[z^2], Var(z) and E[f'(s)^2]: its `moments` in the
activation registry (minidl.activations; e.g. sigmoid's linear regime f(s) ~ 1/2 + s/4 gives
E[z^2] = 1/4 + v/16, Var(z) = v/16, E[f'^2] = 1/16). So for tanh with n Var(W) = c in every layer, the activation variance changes by c per layer: x1/3 under
the standard init (std x0.577) and x1 under Xavier with equal widths.
Weight gradients of a batch-mean cost, assuming independence across the B examples of a batch:
    Var(dC/dW^i) = B * E[(z^{i-1})^2] * Var(dC/ds^i)
"""
from __future__ import annotations

from minidl import activations


def activation_moments(name: str, pre_activation_variance: float) -> tuple[float, float, float]:
    """(E[z^2], Var(z), E[f'(s)^2]) for zero-mean s of variance `pre_activation_variance` (the registry's)."""
    return activations.get(name).moments(float(pre_activation_variance))


def predict_forward(fan_ins, weight_variances, input_second_moment: float, activation: str) -> dict:
    """Predicted per-hidden-layer variances of s^i and z^i, i = 1..L.

    Args:
        fan_ins: n_{i-1} of each hidden layer's weight.
        weight_variances: Var(W^i) of each hidden layer's weight (the scheme's variance).
        input_second_moment: E[x^2] of the network input.
        activation: name of the hidden activation.
    Returns: {"pre_activation_var": [...], "activation_var": [...], "activation_second_moment": [...]}.
    """
    if len(fan_ins) != len(weight_variances):
        raise ValueError(f"predict_forward: {len(fan_ins)} fan_ins but {len(weight_variances)} variances")
    second_moment = float(input_second_moment)
    pre, act, act_second = [], [], []
    for fan_in, variance in zip(fan_ins, weight_variances):
        s_var = fan_in * variance * second_moment
        second_moment, z_var, _ = activation_moments(activation, s_var)
        pre.append(s_var)
        act.append(z_var)
        act_second.append(second_moment)
    return {"pre_activation_var": pre, "activation_var": act, "activation_second_moment": act_second}


def predict_backward(fan_outs_above, weight_variances_above, top_gradient_variance: float,
                     activation: str, pre_activation_vars) -> list[float]:
    """Predicted Var(dC/ds^i) for hidden layers i = 1..L, anchored at the layer above the top one.

    Args:
        fan_outs_above: n_{i+1} = fan_out of W^{i+1}, for i = 1..L (W^{L+1} is the output layer).
        weight_variances_above: Var(W^{i+1}) for i = 1..L.
        top_gradient_variance: measured Var(dC/ds^{L+1}) at the output layer (the logits).
        activation: hidden activation name; pre_activation_vars: Var(s^i), used for E[f'(s^i)^2].
    """
    count = len(fan_outs_above)
    if not (len(weight_variances_above) == len(pre_activation_vars) == count):
        raise ValueError("predict_backward: fan_outs_above, weight_variances_above and "
                         "pre_activation_vars must have one entry per hidden layer")
    predicted = [0.0] * count
    gradient_variance = float(top_gradient_variance)
    for i in reversed(range(count)):
        _, _, derivative_sq = activation_moments(activation, pre_activation_vars[i])
        gradient_variance = derivative_sq * fan_outs_above[i] * weight_variances_above[i] * gradient_variance
        predicted[i] = gradient_variance
    return predicted


def predict_weight_gradient(batch_size: int, input_second_moments, gradient_variances) -> list[float]:
    """Var(dC/dW^i) = B * E[(z^{i-1})^2] * Var(dC/ds^i) for a batch-mean cost (independent examples).

    Assumes the examples of a batch independent and each unit's back-propagated gradient averaging to zero
    over the batch. For one fixed net neither holds: each class's mean softmax probability differs from its
    share of the batch, and the examples' gradients are correlated, so dC/dW = Σ_b z_b δ_b adds coherent
    parts (the batch means alone add B²·E[z̄²]·E[δ̄²]). Measured against it (reviews, 2026-11 and -12): small
    tanh and identity nets (256-400x5-10, batch 300) 1.2-1.5x above, sigmoid 3-12x; the study's own tanh
    5x1000 nets on Fashion-MNIST (batch 300) 5.5-5.8x above under the standard init and 2.3-2.5x under
    Xavier, still 3-5.7x with the batch-mean term added. Recorded in results.json only; no figure or verdict
    uses it."""
    return [batch_size * m * g for m, g in zip(input_second_moments, gradient_variances)]
