"""--extensions: each verdict's rule on synthetic results (both outcomes), and the toy-size run end to end."""
import json
import math

import pytest

from minidl.cli import main
from minidl.experiments import extensions
from minidl.experiments.verdicts import NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED


def _relu(ratios):
    """relu_init records: {(scheme, depth): ratio per layer}."""
    return {"extensions": {"relu_init": [
        {"activation": "relu", "scheme": s, "depth": d, "width": 10, "activation_std": [ratio ** i for i in range(d)],
         "backprop_gradient_std": [1.0] * d, "activation_std_ratio_per_layer": ratio,
         "backprop_gradient_std_top_over_bottom": 1.0} for (s, d), ratio in ratios.items()]}}


def test_relu_init_verdict_needs_every_depth_near_its_prediction():
    good = _relu({("xavier_uniform", 5): 0.71, ("kaiming_normal", 5): 1.0,
                  ("xavier_uniform", 30): 0.70, ("kaiming_normal", 30): 0.97})
    verdict = extensions.relu_init_verdict(good)
    assert verdict.outcome == REPRODUCED and "depth 30: ×0.700 vs ×0.970" in verdict.measured
    one_off = _relu({("xavier_uniform", 5): 0.71, ("kaiming_normal", 5): 1.0,
                     ("xavier_uniform", 30): 0.70, ("kaiming_normal", 30): 0.80})      # 0.80 nearer to 0.707
    assert extensions.relu_init_verdict(one_off).outcome == NOT_REPRODUCED
    exploding = _relu({("xavier_uniform", 5): 0.71, ("kaiming_normal", 5): 1.5})      # past He's 1.0 by as much
    assert extensions.relu_init_verdict(exploding).outcome == NOT_REPRODUCED
    assert extensions.relu_init_verdict({}).outcome == NOT_TESTABLE
    assert math.sqrt(0.5) < 0.8 < math.sqrt(math.sqrt(0.5))     # the geometric midpoint is 0.841


def _deep(xavier, he):
    runs = [{"scheme": s, "seed": 0, "final_test_error": e, "updates_done": 100}
            for s, e in (("xavier_uniform", xavier), ("kaiming_normal", he))]
    return {"extensions": {"deep_relu": {"depth": 30, "width": 256, "lr": 0.01, "runs": runs}}}


@pytest.mark.parametrize("xavier, he, outcome", [
    (0.80, 0.22, REPRODUCED), (0.30, 0.26, NOT_REPRODUCED), (0.22, 0.80, NOT_REPRODUCED),
    (None, 0.30, REPRODUCED),          # a diverged Xavier run counts as error 1
])
def test_deep_relu_verdict_needs_he_ahead_by_five_points(xavier, he, outcome):
    assert extensions.deep_relu_verdict(_deep(xavier, he)).outcome == outcome


def _sweep(standard, xavier, depths=(2, 5, 10, 20)):
    rows = [{"activation": "tanh", "scheme": s, "depth": d, "gradient_ratio": g, "activation_std_ratio": 1.0,
             "test_error": 0.2, "diverged_at": None, "updates": 10, "lr": 0.1}
            for s, values in (("standard", standard), ("xavier_uniform", xavier)) for d, g in zip(depths, values)]
    return {"extensions": {"depth_sweep": rows}}


@pytest.mark.parametrize("standard, xavier, outcome", [
    ((1.7, 9.0, 150.0, 4e4), (1.3, 1.4, 1.6, 1.9), REPRODUCED),
    ((1.7, 9.0, 8.0, 4e4), (1.3, 1.4, 1.6, 1.9), NOT_REPRODUCED),     # does not grow with depth
    ((1.7, 2.5, 3.0, 4.0), (1.3, 1.4, 1.6, 2.1), NOT_REPRODUCED),     # within ×2 of Xavier at depth 20
])
def test_depth_sweep_verdict(standard, xavier, outcome):
    assert extensions.depth_sweep_verdict(_sweep(standard, xavier)).outcome == outcome
    assert extensions.depth_sweep_verdict({}).outcome == NOT_TESTABLE


def test_quick_extensions_run_every_piece_and_report_them(tmp_path):
    out = tmp_path / "study"
    assert main(["reproduce", "--quick", "--extensions", "--dataset", "shapeset", "--skip-at-init",
                 "--activations", "tanh", "--seeds", "0", "--no-progress", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    ext, config = results["extensions"], extensions.quick()
    assert ext["config"]["deep_depth"] == config.deep_depth
    assert {(r["scheme"], r["depth"]) for r in ext["relu_init"]} == {
        (s, d) for s in extensions.HE_RATIO for d in config.relu_depths}
    assert all(len(r["activation_std"]) == r["depth"] for r in ext["relu_init"])
    assert [r["scheme"] for r in ext["deep_relu"]["runs"]] == list(extensions.HE_RATIO)
    assert all(r["updates_done"] == config.deep_updates for r in ext["deep_relu"]["runs"])
    assert len(ext["depth_sweep"]) == len(config.sweep_activations) * len(config.sweep_schemes) * len(config.sweep_depths)
    assert [r["batchnorm"] for r in ext["batchnorm"]["runs"]] == [False, True]
    estimate = results["execution"]["estimate"]
    assert estimate["stages"]["extensions"] > 0 and "extensions" in results["execution"]["invocations"][-1]["stage_seconds"]
    report = (out / "report.md").read_text()
    assert "## Verdict: beyond the paper" in report and "He et al. Fig. 3 (deep ReLU)" in report
    assert "figures/ext_relu_he_vs_xavier.png" in report and "figures/ext_depth_sweep.png" in report
    assert "figures/ext_batchnorm_sigmoid.png" in report and "Ioffe & Szegedy 2015 (batch norm)" in report
    assert "## Time: planned vs actual" in report and "| extensions |" in report and "| runs |" in report
    assert report.index("## Verdict: the paper") < report.index("## Figures") < report.index("## Method")


def _batchnorm(top_plain, top_normed, errors_plain, errors_normed):
    """One run per arm; monitor snapshots at 0 and 200 (top layer's mean `top_*` from 200 on)."""
    def run(flag, top, errors):
        layers = [{"mean": [0.5, 0.6], "std": [0.1, 0.1], "p2": [0, 0], "p50": [0.5, 0.5], "p98": [1, 1]},
                  {"mean": [0.5, top], "std": [0.1, 0.1], "p2": [0, 0], "p50": [0.5, top], "p98": [1, 1]}]
        return {"batchnorm": flag, "seed": 0, "lr": 0.5, "depth": 2, "width": 10, "updates_done": 400,
                "diverged_at": None, "final_test_error": errors[-1],
                "curve": {"updates": [0, 200, 400], "train_loss": [None, 1, 1], "test_error": errors},
                "monitor": {"updates": [0, 200], "layers": layers}}
    return {"data": {"majority_error": 0.9},
            "extensions": {"batchnorm": {"runs": [run(False, top_plain, errors_plain),
                                                  run(True, top_normed, errors_normed)]}}}


@pytest.mark.parametrize("case, outcome", [
    ((0.004, 0.45, [0.9, 0.9, 0.9], [0.9, 0.5, 0.3]), REPRODUCED),
    ((0.004, 0.05, [0.9, 0.9, 0.9], [0.9, 0.5, 0.3]), NOT_REPRODUCED),    # batch-normed top layer saturated
    ((0.004, 0.45, [0.9, 0.5, 0.3], [0.9, 0.5, 0.3]), NOT_REPRODUCED),    # both leave at once
    ((0.004, 0.45, [0.9, 0.9, 0.9], [0.9, 0.9, 0.9]), NOT_REPRODUCED),    # neither leaves
])
def test_batchnorm_verdict(case, outcome):
    verdict = extensions.batchnorm_verdict(_batchnorm(*case))
    assert verdict.outcome == outcome
    assert extensions.batchnorm_verdict({}).outcome == NOT_TESTABLE


def test_the_batchnorm_net_normalizes_before_each_activation_and_its_snapshots_leave_the_statistics_alone():
    import types

    import numpy as np

    from minidl import nn
    from minidl.experiments.networks import build_batchnorm_network

    model, probe = build_batchnorm_network(20, 3, 8, 4, "sigmoid", "standard", seed=0)
    assert [type(m).__name__ for m in model] == ["Linear", "BatchNorm1d", "Sigmoid"] * 3 + ["Linear"]
    assert [tuple(l.weight.shape) for l in probe.linears] == [(20, 8), (8, 8), (8, 8), (8, 4)]
    norms = [m for m in model if isinstance(m, nn.BatchNorm1d)]
    x = np.random.default_rng(0).random((30, 20), dtype=np.float32) + 3.0     # far from the running mean 0
    recorder = extensions._EvalModeRecorder(model, probe, 3, x, None)
    before = [np.array(m.running_mean, copy=True) for m in norms]
    recorder.snapshot(types.SimpleNamespace(step=7))
    assert all(np.array_equal(b, np.asarray(m.running_mean)) for b, m in zip(before, norms))
    assert model.training and recorder.series["updates"] == [7]
    plain = nn.Sequential(*list(model))          # the same snapshot in train mode would move them
    import minidl as mdl
    with mdl.no_grad():
        plain(mdl.tensor(x))
    assert not all(np.array_equal(b, np.asarray(m.running_mean)) for b, m in zip(before, norms))


def test_a_batchnorm_run_trains_both_arms_at_toy_size():
    from minidl.experiments.data import load_study_data

    data = load_study_data("shapeset", train_examples=400)
    config = extensions.quick()
    for flag in (False, True):
        record = extensions._batchnorm_run(data, config, flag, seed=0)
        assert record["batchnorm"] is flag and record["updates_done"] == config.batchnorm_updates
        assert len(record["monitor"]["layers"]) == config.batchnorm_depth and record["final_test_error"] is not None


def test_the_estimate_scales_the_deep_nets_width_by_layers_and_counts_every_evaluation():
    from minidl.experiments.planner import Costs

    config = extensions.ExtensionsConfig()
    free_eval = Costs(0.01, eval_example=0.0, monitor_example=0.0)
    pieces = extensions.seconds(config, free_eval, 1000, 5, 0.05, 1000, 10_000, deep_seconds_per_update=0.0124)
    assert list(pieces) == ["relu_init", "deep_relu", "batchnorm", "depth_sweep"]
    assert pieces["deep_relu"] == pytest.approx(2 * 1000 * 0.0124)             # the measured deep update
    per_layer = 0.0124 / 31                                                       # 30 layers + the input layer
    sweep_updates = sum((d + 1) * per_layer * 500 for d in (2, 5, 10, 20))
    at_init = sum(0.05 * 0.256 ** 2 * d for d in (2, 5, 10, 20))
    assert pieces["depth_sweep"] == pytest.approx(12 * (sweep_updates + at_init))
    assert pieces["batchnorm"] == pytest.approx(0.01 * 1000 * (1 + extensions.BATCHNORM_COST))   # the study's net
    assert pieces["relu_init"] == pytest.approx(2 * 0.05 * (5 + 10 + 20 + 30))
    evaluated = extensions.seconds(config, Costs(0.01, eval_example=0.004, monitor_example=0.0), 1000, 5, 0.05,
                                   1000, 10_000, deep_seconds_per_update=0.0124)
    # deep runs: 11 curve points of 1000 examples, then 10,000 test + 2,000 validation examples, two runs
    assert evaluated["deep_relu"] - pieces["deep_relu"] == pytest.approx(2 * 0.0124 * 0.004 * 23_000)
    unmeasured = extensions.seconds(config, free_eval, 1000, 5, 0.05, 1000, 10_000)      # weights scale instead
    assert unmeasured["deep_relu"] == pytest.approx(2 * 1000 * 0.01 * (30 * 256 ** 2 + 794 * 256)
                                                    / (5 * 1000 ** 2 + 794 * 1000))


def test_batchnorm_verdict_fails_a_null_top_layer_mean_and_does_not_stop():
    """A NaN snapshot is null in results.json: np.mean([None]) raised TypeError in the report."""
    verdict = extensions.batchnorm_verdict(_batchnorm(0.004, None, [0.9, 0.9, 0.9], [0.9, 0.5, 0.3]))
    assert verdict.outcome == NOT_REPRODUCED and "0.004 plain vs n/a with batch norm" in verdict.measured
