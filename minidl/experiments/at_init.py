"""The study at initialization (Glorot & Bengio 2010, Sec. 4.2: Figs. 6-8 and Eq. 17).

For each activation x scheme x depth, one untrained net sees one fixed batch (the first `examples` test
images); one forward and backward pass of the mean softmax cross-entropy gives, per hidden layer:
activation, back-propagated gradient dC/ds and weight-gradient statistics and histograms, the layer
Jacobian's mean singular value, and the variances that the derivation predicts (minidl.diagnostics.theory).
"""
from __future__ import annotations

import time

import numpy as np

from minidl.diagnostics import (QUARTER_CIRCLE_MEAN, histogram, mean_singular_value, predict_backward,
                                predict_forward, predict_weight_gradient, ratio_per_layer, summarize,
                                symmetric_range)
from minidl import activations
from minidl.experiments.networks import build_network, layer_sizes, weight_variances

PAPER_PAIR = ("standard", "xavier_uniform")   # the two schemes the paper's figures compare


def _forward_backward(model, probe, x, y):
    import minidl as mdl
    from minidl.nn import functional as F

    with probe:
        loss = F.cross_entropy(model(mdl.tensor(x)), y)
        loss.backward()
    return float(loss.item())


def measure_network(activation: str, scheme: str, depth: int, width: int, x, y, n_classes: int, seed: int,
                    jacobian_examples: int) -> tuple[dict, dict]:
    """(record, raw): the JSON-ready record of one untrained net and its raw per-layer arrays."""
    sizes = layer_sizes(x.shape[1], depth, width, n_classes)
    model, probe = build_network(x.shape[1], depth, width, n_classes, activation, scheme, seed)
    loss = _forward_backward(model, probe, x, y)
    variances = weight_variances(sizes, scheme)
    forward = predict_forward(sizes[:depth], variances[:depth], float(np.mean(np.square(x, dtype=np.float64))),
                              activation)
    output_gradient_var = float(np.var(probe.pre_activation_grads[depth], dtype=np.float64))
    backward = predict_backward(sizes[2:], variances[1:], output_gradient_var, activation,
                                forward["pre_activation_var"])
    input_moments = [float(np.mean(np.square(x, dtype=np.float64)))] + forward["activation_second_moment"][:-1]
    weight_grad_pred = predict_weight_gradient(x.shape[0], input_moments, backward)
    measured_input_moments = [float(np.mean(np.square(x, dtype=np.float64)))] + \
        [summarize(probe.activations[i])["second_moment"] for i in range(depth - 1)]
    layers = []
    for i in range(depth):
        jacobian = None
        if jacobian_examples > 0 and i > 0:      # hidden-to-hidden layers dz^i/dz^{i-1}, i = 2..L
            derivatives = probe.activation_derivatives(i)[:jacobian_examples]
            jacobian = mean_singular_value(probe.weight(i), derivatives, np.float32)
        layers.append({
            "layer": i + 1,
            "fan_in": sizes[i], "fan_out": sizes[i + 1], "weight_variance": variances[i],
            "pre_activation": summarize(probe.pre_activations[i]),
            "activation": summarize(probe.activations[i]),
            "backprop_gradient": summarize(probe.pre_activation_grads[i]),
            "weight_gradient": summarize(probe.weight_grad(i)),
            "jacobian_mean_singular_value": jacobian,
            "predicted": {
                "pre_activation_var": forward["pre_activation_var"][i],
                # one step of the recursion from the measured layer below: n_{i-1} Var(W^i) E[(z^{i-1})^2]
                "pre_activation_var_one_step": sizes[i] * variances[i] * measured_input_moments[i],
                "activation_var": forward["activation_var"][i],
                "backprop_gradient_var": backward[i],
                "weight_gradient_var": weight_grad_pred[i],
            },
        })
    activation_std = [layer["activation"]["std"] for layer in layers]
    gradient_std = [layer["backprop_gradient"]["std"] for layer in layers]
    weight_grad_std = [layer["weight_gradient"]["std"] for layer in layers]
    jacobians = [layer["jacobian_mean_singular_value"] for layer in layers[1:]]
    slope = activations.get(activation).slope_at_zero
    record = {
        "activation": activation, "scheme": scheme, "depth": depth, "width": width, "seed": seed,
        "examples": int(x.shape[0]), "loss": loss,
        "input_second_moment": float(np.mean(np.square(x, dtype=np.float64))),
        "output_gradient_var": output_gradient_var,
        "layers": layers,
        "summary": {
            "activation_std_ratio_per_layer": ratio_per_layer(activation_std),
            "backprop_gradient_std_top_over_bottom": _safe_ratio(gradient_std[-1], gradient_std[0]),
            "weight_gradient_std_max_over_min": _safe_ratio(max(weight_grad_std), min(weight_grad_std)),
            "jacobian_mean_singular_value": (float(np.mean(jacobians)) if jacobians and None not in jacobians
                                             else None),
            # linear regime: J ~ f'(0) W^T, so 0.849 f'(0) sqrt(n Var(W)); ReLU has no linear regime at 0
            "quarter_circle_prediction": (QUARTER_CIRCLE_MEAN * slope * float(np.sqrt(width * variances[1]))
                                          if slope is not None and depth > 1 else None),
        },
    }
    raw = {
        "activation": [probe.activations[i] for i in range(depth)],
        "backprop_gradient": [probe.pre_activation_grads[i] for i in range(depth)],
        "weight_gradient": [probe.weight_grad(i) for i in range(depth)],
    }
    return record, raw


def _safe_ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else float("nan")


def add_histograms(records_and_raws: list[tuple[dict, dict]], bins: int) -> None:
    """Attach per-layer histograms to each record; the paper's pair of schemes shares gradient axes."""
    def quantity_range(quantity, activation, arrays):
        if quantity == "activation":
            return activations.get(activation).histogram_range(arrays)
        return symmetric_range(arrays)

    pair = [(r, raw) for r, raw in records_and_raws if r["scheme"] in PAPER_PAIR]
    for quantity in ("activation", "backprop_gradient", "weight_gradient"):
        shared = None
        if pair:
            arrays = [a for _, raw in pair for a in raw[quantity]]
            shared = quantity_range(quantity, pair[0][0]["activation"], arrays)
        for record, raw in records_and_raws:
            if record["scheme"] in PAPER_PAIR:
                value_range, count = shared, _bins_resolving(raw[quantity], shared, bins)
            else:
                value_range, count = quantity_range(quantity, record["activation"], raw[quantity]), bins
            record.setdefault("histograms", {})[quantity] = [histogram(a, value_range, count) for a in raw[quantity]]


def _bins_resolving(arrays, value_range, bins: int) -> int:
    """Bins over `value_range` such that the narrowest array's std spans 3 of them (at least `bins`, at most
    4·bins, results.json holding them all): on the pair's shared axis, the standard init's gradients (5-15x
    narrower than Xavier's) fell into 2 bins per layer, and its layers looked alike."""
    narrowest = min(float(np.std(a, dtype=np.float64)) for a in arrays)
    if not narrowest > 0:
        return bins
    return int(min(4 * bins, max(bins, np.ceil(3 * (value_range[1] - value_range[0]) / narrowest))))


def run_at_init(config, data, on_group=None, on_step=None, deadline: float | None = None, done=()) -> dict:
    """Run the at-init study; `on_group(records)` after each (activation, depth) group, `on_step()` per net.

    Groups run shallowest depth first (every activation), then deeper ones. With a `deadline`
    (time.perf_counter() value), a group that would end past it, judged from the time the same-depth or a
    shallower group took (scaled by depth), is skipped. Groups in `done` ((activation, depth) pairs measured
    before: a resumed study) are passed over. Returns {"records": [...], "skipped": [[activation,
    depth], ...]} (neither includes the groups in `done`).
    """
    x = data.x_test[:config.examples]
    y = data.y_test[:config.examples]
    records, skipped = [], []
    seconds_per_layer = None
    for depth in sorted(config.depths):
        for activation in config.activations:
            if (activation, depth) in done:
                if on_step is not None:
                    for _ in config.schemes:
                        on_step()
                continue
            if deadline is not None and seconds_per_layer is not None and \
                    time.perf_counter() + seconds_per_layer * depth > deadline:
                skipped.append([activation, depth])
                if on_step is not None:
                    for _ in config.schemes:
                        on_step()
                continue
            started = time.perf_counter()
            group = []
            for scheme in config.schemes:
                jacobian_examples = config.jacobian_examples if depth <= config.jacobian_max_depth else 0
                group.append(measure_network(activation, scheme, depth, config.width, x, y, data.n_classes,
                                             config.seed, jacobian_examples))
                if on_step is not None:
                    on_step()
            add_histograms(group, config.bins)
            finished = [record for record, _ in group]
            records += finished
            if on_group is not None:
                on_group(finished)
            seconds_per_layer = (time.perf_counter() - started) / depth
    return {"records": records, "skipped": skipped}
