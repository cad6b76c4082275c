"""The study's training plan: a pure function of (config, measured speed, elapsed time, test-set size)."""
import copy
import dataclasses
import json

import pytest

from minidl.experiments.config import preset
from minidl.experiments.study import (CUT_EVAL_POINTS, CUT_SNAPSHOTS, MIN_UPDATES, TrainingPlan, plan_training,
                                      run_study, total_units)

BUDGET_KEYS = ["time_budget_seconds", "seconds_before_training", "measured_seconds_per_update", "updates_planned",
               "updates_per_run", "updates_by_activation", "update_shares", "update_share_reason", "cut",
               "expected_training_hours", "parallel_runs"]


def _default(time_budget=570.0, lr_search=False):
    config = preset("default")
    config.time_budget, config.training.lr_search = time_budget, lr_search
    return config


def test_no_budget_keeps_the_planned_updates_and_applies_the_shares():
    config = _default(time_budget=None)
    plan = plan_training(config, seconds_per_update=0.05, elapsed=120.0, test_examples=10_000)
    assert isinstance(plan, TrainingPlan) and not plan.cut
    assert (plan.updates, plan.training.eval_every, plan.training.monitor_every) == (3000, 200, 50)
    assert {a: (c.updates, c.eval_every, c.monitor_every) for a, c in plan.runs.items()} == {
        "sigmoid": (3000, 200, 50), "tanh": (600, 200, 50), "softsign": (600, 200, 50)}
    budget = plan.budget_record()
    assert list(budget) == BUDGET_KEYS
    assert budget["time_budget_seconds"] is None and budget["updates_per_run"] == budget["updates_planned"] == 3000
    assert budget["update_shares"] == {"sigmoid": 1.0, "tanh": 0.2, "softsign": 0.2}
    assert budget["expected_training_hours"] == pytest.approx(0.259375, rel=1e-12)


def test_a_default_budget_on_a_slow_machine_cuts_every_run_by_its_share():
    """Values of the planner before it became a pure function (same arithmetic)."""
    plan = plan_training(_default(), seconds_per_update=0.05, elapsed=120.0, test_examples=10_000)
    assert plan.cut and plan.updates == 800 and plan.updates_planned == 3000
    assert (plan.training.eval_every, plan.training.monitor_every) == (800 // CUT_EVAL_POINTS, 800 // CUT_SNAPSHOTS)
    assert {a: (c.updates, c.eval_every, c.monitor_every) for a, c in plan.runs.items()} == {
        "sigmoid": (800, 50, 40), "tanh": (160, 10, 8), "softsign": (160, 10, 8)}
    budget = plan.budget_record()
    assert budget["cut"] and budget["updates_per_run"] == 800 and budget["seconds_before_training"] == 120.0
    assert budget["updates_by_activation"] == {"sigmoid": 800, "tanh": 160, "softsign": 160}
    assert budget["measured_seconds_per_update"] == 0.05 and budget["time_budget_seconds"] == 570.0
    assert budget["expected_training_hours"] == pytest.approx(0.09399305555555555, rel=1e-12)
    assert budget["expected_training_hours"] < 570.0 / 3600


def test_the_cut_grows_with_the_time_already_spent_and_stops_at_min_updates():
    config = _default()
    fast = plan_training(config, 0.01, elapsed=120.0, test_examples=10_000)
    assert not fast.cut and fast.updates == 3000
    later = [plan_training(config, 0.05, elapsed=e, test_examples=10_000).updates for e in (0.0, 120.0, 300.0)]
    assert later[0] > later[1] > later[2] and all(u % 10 == 0 for u in later)
    hopeless = plan_training(config, 1.0, elapsed=120.0, test_examples=10_000)
    assert hopeless.cut and hopeless.updates == MIN_UPDATES
    assert {a: c.updates for a, c in hopeless.runs.items()} == {"sigmoid": 100, "tanh": 20, "softsign": 20}


def test_the_learning_rate_search_takes_its_share_of_the_budget():
    without = plan_training(_default(), 0.015, elapsed=120.0, test_examples=10_000)
    with_search = plan_training(_default(lr_search=True), 0.015, elapsed=120.0, test_examples=10_000)
    assert not without.cut and with_search.cut and with_search.updates < without.updates


def test_the_plan_does_not_modify_its_config():
    config = _default()
    before = copy.deepcopy(config)
    plan = plan_training(config, 0.05, elapsed=120.0, test_examples=10_000)
    again = plan_training(config, 0.05, elapsed=120.0, test_examples=10_000)
    assert dataclasses.asdict(config) == dataclasses.asdict(before)
    assert plan == again and plan.budget_record() == again.budget_record()
    assert plan.training is not config.training and all(c is not config.training for c in plan.runs.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.updates_planned = 1
    plan.budget_record()["updates_per_run"] = 1              # a fresh dict each time
    assert plan.budget_record()["updates_per_run"] == 800
    assert total_units(config) > total_units(config, plan.updates)


def test_the_study_records_the_plan_and_leaves_its_config_alone(tmp_path):
    config = preset("quick")
    config.dataset, config.at_init, config.time_budget = "shapeset", None, 1.0
    t = config.training
    t.activations, t.schemes, t.width, t.updates = ("tanh",), ("standard",), 20, 150
    study = run_study(config, tmp_path / "run", progress=False)
    assert study.config.training.updates == 150 and study.config.training.eval_every == 50
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    budget, recorded = results["training"]["budget"], results["config"]["training"]
    assert list(budget) == BUDGET_KEYS + ["final"] and budget["final"] and budget["cut"] and budget["updates_per_run"] == 100
    assert (recorded["updates"], recorded["eval_every"], recorded["monitor_every"]) == (100, 10, 5)
    assert results["training"]["runs"][0]["updates_done"] == 100
    assert results["training"]["runs"][0]["curve"]["updates"] == list(range(0, 101, 10))
