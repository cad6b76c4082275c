"""Unequal update budgets per activation: the default preset's choice, the planner, the CLI and the report."""
import argparse
import json

import pytest

from minidl.cli import reproduce
from minidl.experiments.config import DEFAULT_UPDATE_SHARES, TrainingConfig, preset
from minidl.experiments.study import run_study


def test_updates_for_applies_the_share_and_rounds():
    t = TrainingConfig(updates=1000, update_shares={"tanh": 0.2, "softsign": 0.25})
    assert (t.updates_for("sigmoid"), t.updates_for("tanh"), t.updates_for("softsign")) == (1000, 200, 250)
    assert t.updates_for("tanh", updates=7) == 1 and t.updates_for("sigmoid", updates=7) == 7


def test_default_preset_gives_sigmoid_the_most_updates_and_bad_shares_are_refused():
    t = preset("default").training
    assert t.depth == 5 and t.updates_for("sigmoid") == 6000 and t.updates_for("tanh") == 1000
    assert t.update_shares == DEFAULT_UPDATE_SHARES and t.update_share_reason
    assert t.updates_for("sigmoid") > t.updates_for("tanh")
    config = preset("quick")
    config.training.update_shares = {"tanh": 0.0}
    with pytest.raises(ValueError, match="update share of 'tanh'"):
        config.validate()


def test_explicit_updates_apply_to_every_run():
    parser = argparse.ArgumentParser()
    reproduce.register(parser.add_subparsers())
    config = reproduce.build_config(parser.parse_args(["reproduce", "--updates", "500"]))
    assert config.training.update_shares == {} and config.training.updates_for("tanh") == 500


def test_study_runs_each_activation_for_its_share_and_the_report_says_so(tmp_path):
    config = preset("quick")
    config.dataset, config.at_init = "shapeset", None
    t = config.training
    t.activations, t.schemes, t.width, t.updates = ("sigmoid", "tanh"), ("standard",), 20, 60
    t.update_shares, t.update_share_reason = {"tanh": 0.5}, "a test reason"
    study = run_study(config, tmp_path / "run", progress=False)
    runs = study.results["training"]["runs"]
    assert {(r["activation"], r["updates_done"]) for r in runs} == {("sigmoid", 60), ("tanh", 30)}
    budget = json.loads((tmp_path / "run" / "results.json").read_text())["training"]["budget"]
    assert budget["updates_by_activation"] == {"sigmoid": 60, "tanh": 30}
    text = (tmp_path / "run" / "report.md").read_text()
    assert "updates per run: sigmoid 60" in text and "tanh 30" in text
    assert "(tanh ×0.5); the others make all of them (a test reason)" in text
    assert "Budget: each run here made sigmoid 60, tanh 30 updates" in text
    assert "## Verdict: beyond the paper" in text and "| Sigmoid N (not in the paper) |" in text
