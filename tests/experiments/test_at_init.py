"""The at-init study on deep tanh nets: the paper's Figs. 6-7 and Eq. 17 as numbers.

Inputs: 300 Shapeset-3x2 images (built in, so no dataset is needed); 5 hidden layers of 500 units.
Expected (Glorot & Bengio 2010, and the linear-regime derivation): under the standard init the activation
std shrinks by ~sqrt(1/3) = 0.577 per layer; under Xavier it stays near level; the layer Jacobian's mean
singular value is ~0.5 vs ~0.8. Tolerances: measured at widths 250-1000 the ratios were 0.56-0.57
(standard) and 0.88-0.91 (Xavier: tanh's curvature shrinks the signal a little), the Jacobians 0.46-0.49 and
0.78-0.79; the bands below allow for that finite-width spread, and none of them contains the other scheme's value.
"""
import numpy as np
import pytest

from minidl.data.shapeset import shapeset
from minidl.experiments.at_init import add_histograms, measure_network


@pytest.fixture(scope="module")
def tanh_records():
    images, labels = shapeset(300, seed=5)
    x = images.reshape(300, -1).astype(np.float32)
    return {scheme: measure_network("tanh", scheme, depth=5, width=500, x=x, y=labels, n_classes=9, seed=0,
                                    jacobian_examples=1)
            for scheme in ("standard", "xavier_uniform")}


def test_activation_std_shrinks_under_standard_and_stays_level_under_xavier(tanh_records):
    standard = tanh_records["standard"][0]["summary"]["activation_std_ratio_per_layer"]
    xavier = tanh_records["xavier_uniform"][0]["summary"]["activation_std_ratio_per_layer"]
    assert 0.50 < standard < 0.65, standard
    assert 0.82 < xavier < 1.1, xavier
    stds = [layer["activation"]["std"] for layer in tanh_records["standard"][0]["layers"]]
    assert all(b < a for a, b in zip(stds, stds[1:]))          # shrinks at every layer


def test_backprop_gradients_shrink_going_down_under_standard_only(tanh_records):
    standard = tanh_records["standard"][0]["summary"]["backprop_gradient_std_top_over_bottom"]
    xavier = tanh_records["xavier_uniform"][0]["summary"]["backprop_gradient_std_top_over_bottom"]
    assert standard > 5.0 and xavier < 2.5               # paper: ~10x vs ~1.7x over 5 layers
    for scheme in ("standard", "xavier_uniform"):        # weight gradients stay level under both
        assert tanh_records[scheme][0]["summary"]["weight_gradient_std_max_over_min"] < 1.6


def test_jacobian_mean_singular_values(tanh_records):
    standard = tanh_records["standard"][0]["summary"]["jacobian_mean_singular_value"]
    xavier = tanh_records["xavier_uniform"][0]["summary"]["jacobian_mean_singular_value"]
    assert 0.42 < standard < 0.56, standard
    assert 0.70 < xavier < 0.88, xavier


def test_one_step_forward_prediction_matches_measured_variance(tanh_records):
    """Var(s^i) = n_{i-1} Var(W^i) E[(z^{i-1})^2] from the measured layer below: exact up to the sampling
    noise of 500 units x 300 examples (a few percent); 15% tolerance."""
    for record, _ in tanh_records.values():
        for layer in record["layers"]:
            measured = layer["pre_activation"]["std"] ** 2
            assert measured == pytest.approx(layer["predicted"]["pre_activation_var_one_step"], rel=0.15)


def test_standard_init_variance_falls_by_n_var_w_per_layer(tanh_records):
    """Past layer 1 the signal lies in tanh's linear regime, where the recursion predicts
    Var(z^{i+1}) / Var(z^i) = n Var(W) = 1/3 under the standard init; measured within [0.25, 0.40]."""
    variances = [layer["activation"]["std"] ** 2 for layer in tanh_records["standard"][0]["layers"]]
    for a, b in zip(variances[1:], variances[2:]):
        assert 0.25 < b / a < 0.40, (a, b)


def test_histograms_share_the_axis_of_the_paper_pair(tanh_records):
    group = [tanh_records["standard"], tanh_records["xavier_uniform"]]
    add_histograms(group, bins=20)
    (a, raw_a), (b, raw_b) = group
    for quantity in ("activation", "backprop_gradient", "weight_gradient"):
        edges = [r["histograms"][quantity][0]["edges"] for r in (a, b)]
        assert edges[0][0] == edges[1][0] and edges[0][-1] == edges[1][-1], quantity     # one axis
        for record, raw in ((a, raw_a), (b, raw_b)):    # each layer's std spans 3 bins or more (at most 80)
            histograms = record["histograms"][quantity]
            count, width = len(histograms[0]["density"]), np.diff(histograms[0]["edges"])[0]
            assert 20 <= count <= 80
            assert count == 80 or min(np.std(v) for v in raw[quantity]) >= 3 * width * 0.999
    assert a["histograms"]["activation"][0]["edges"][0] == -1.0
    assert len(a["histograms"]["weight_gradient"]) == 5
    # a review's case: the standard init's gradients, 5-15x narrower, fell into 2 of the shared axis' 20 bins
    finer = [len(r["histograms"]["backprop_gradient"][0]["density"]) for r in (a, b)]
    assert finer[0] > finer[1]


def test_deadline_skips_the_groups_that_would_not_fit():
    import time
    from types import SimpleNamespace

    from minidl.experiments.at_init import run_at_init
    from minidl.experiments.config import AtInitConfig

    images, labels = shapeset(20, seed=1)
    data = SimpleNamespace(x_test=images.reshape(20, -1), y_test=labels, n_classes=9)
    config = AtInitConfig(activations=("tanh", "relu"), schemes=("standard",), depths=(2, 3), width=16,
                          examples=20, bins=5)
    steps = []
    outcome = run_at_init(config, data, on_step=lambda: steps.append(1), deadline=time.perf_counter())
    assert [(r["activation"], r["depth"]) for r in outcome["records"]] == [("tanh", 2)]
    assert outcome["skipped"] == [["relu", 2], ["tanh", 3], ["relu", 3]]
    assert len(steps) == 4                                   # the progress bar still completes
    everything = run_at_init(config, data)
    assert len(everything["records"]) == 4 and everything["skipped"] == []
