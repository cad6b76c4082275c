"""The study's training plan: a pure function of (config, measured speed, elapsed time, test-set size)."""
import copy
import dataclasses
import json

import pytest

from minidl.experiments.config import preset
from minidl.experiments.planner import EVAL_EXAMPLE_UPDATES, MONITOR_EXAMPLE_UPDATES, REPORT_SECONDS, Costs
from minidl.experiments.study import (CUT_EVAL_POINTS, CUT_FLOOR, CUT_SNAPSHOTS, MIN_UPDATES, SAFETY, TrainingPlan,
                                      plan_training, run_study, total_units)

BUDGET_KEYS = ["time_budget_seconds", "seconds_before_training", "measured_seconds_per_update", "updates_planned",
               "updates_per_run", "updates_by_activation", "update_shares", "update_share_reason", "cut",
               "expected_training_hours", "parallel_runs", "pace_factor"]


def _default(time_budget=570.0, lr_search=False):
    config = preset("default")
    config.time_budget, config.training.lr_search = time_budget, lr_search
    return config


def test_no_budget_keeps_the_planned_updates_and_applies_the_shares():
    config = _default(time_budget=None)
    plan = plan_training(config, seconds_per_update=0.05, elapsed=120.0, test_examples=10_000)
    assert isinstance(plan, TrainingPlan) and not plan.cut
    assert (plan.updates, plan.training.eval_every, plan.training.monitor_every) == (6000, 200, 100)
    assert {a: (c.updates, c.eval_every, c.monitor_every) for a, c in plan.runs.items()} == {
        "sigmoid": (6000, 200, 100), "tanh": (1000, 200, 100), "softsign": (1000, 200, 100)}
    budget = plan.budget_record()
    assert list(budget) == BUDGET_KEYS
    assert budget["time_budget_seconds"] is None and budget["updates_per_run"] == budget["updates_planned"] == 6000
    assert budget["update_shares"] == {"sigmoid": 1.0, "tanh": 1 / 6, "softsign": 1 / 6}
    # the cost model by hand: updates + evaluated examples x 0.0026 + monitored examples x 0.004, 4 runs each
    sigmoid = 6000 + ((6000 // 200 + 1) * 1000 + 12_000) * EVAL_EXAMPLE_UPDATES + (60 + 2) * 300 * MONITOR_EXAMPLE_UPDATES
    other = 1000 + ((1000 // 200 + 1) * 1000 + 12_000) * EVAL_EXAMPLE_UPDATES + (10 + 2) * 300 * MONITOR_EXAMPLE_UPDATES
    assert budget["expected_training_hours"] == pytest.approx(4 * (sigmoid + 2 * other) * 0.05 / 3600, rel=1e-12)


def _seconds(plan, updates, by_activation=None):
    """The plan's unpadded training estimate for `updates` per run, at most `by_activation`'s updates for an
    activation (same config, same speed)."""
    config = _default(time_budget=None)
    return 3600 * plan_training(config, plan.seconds_per_update, 0.0, 10_000, updates=updates,
                                by_activation=by_activation).expected_training_hours


def test_a_budget_cuts_the_shorter_runs_first_down_to_the_floor():
    room = SAFETY * (570.0 - 120.0 - REPORT_SECONDS)
    mild = plan_training(_default(), seconds_per_update=0.013, elapsed=120.0, test_examples=10_000)
    assert mild.cut and mild.updates == 6000 and mild.by_activation["sigmoid"] == 6000
    short = mild.by_activation["tanh"]
    assert short == mild.by_activation["softsign"] and CUT_FLOOR < short < 1000 and short % 10 == 0
    tanh_more = {"tanh": short + 10, "softsign": short + 10}
    assert _seconds(mild, 6000, mild.by_activation) <= room < _seconds(mild, 6000, tanh_more)
    tight = plan_training(_default(), seconds_per_update=0.02, elapsed=120.0, test_examples=10_000)
    floors = {"tanh": CUT_FLOOR, "softsign": CUT_FLOOR}
    assert tight.by_activation == dict(floors, sigmoid=tight.updates) and CUT_FLOOR < tight.updates < 6000
    assert _seconds(tight, tight.updates, floors) <= room < _seconds(tight, tight.updates + 10, floors)
    assert tight.budget_record()["updates_by_activation"] == tight.by_activation
    resumed = plan_training(_default(), 0.05, 300.0, 10_000, updates=tight.updates, by_activation=tight.by_activation)
    assert resumed.by_activation == tight.by_activation             # a resumed study keeps its plan


def test_a_replan_keeps_the_finished_runs_and_fits_the_rest_into_the_time_left():
    first = plan_training(_default(), seconds_per_update=0.013, elapsed=120.0, test_examples=10_000)
    assert first.shorter == ("tanh", "softsign") and first.by_activation["sigmoid"] == 6000
    assert sum(first.run_seconds.values()) == pytest.approx(3600 * first.expected_training_hours, rel=1e-12)
    short = {a: first.by_activation[a] for a in first.shorter}
    # the shorter runs went 1.3x slower than planned: the sigmoid runs are fitted into what is left, at that pace
    elapsed = 120.0 + 1.3 * sum(first.run_seconds[a] for a in first.shorter)
    replan = plan_training(_default(), 0.013 * 1.3, elapsed, 10_000, done=short)
    assert {a: replan.by_activation[a] for a in short} == short           # as they ran, though the cut is deep
    assert set(replan.run_seconds) == {"sigmoid"} and replan.shorter == ("tanh", "softsign")
    n = replan.by_activation["sigmoid"]
    room = SAFETY * (570.0 - elapsed - REPORT_SECONDS)
    sigmoid_cost = plan_training(_default(time_budget=None), 0.013 * 1.3, 0.0, 10_000, updates=n,
                                 done=short).expected_training_hours * 3600
    more = plan_training(_default(time_budget=None), 0.013 * 1.3, 0.0, 10_000, updates=n + 10,
                         done=short).expected_training_hours * 3600
    assert n < 6000 and sigmoid_cost <= room < more              # the largest that fits (only sigmoid's cost)
    assert replan.expected_training_hours * 3600 == pytest.approx(sigmoid_cost, rel=1e-12)
    faster = plan_training(_default(), 0.013 * 0.8, elapsed, 10_000, done=short)
    assert faster.by_activation["sigmoid"] > n                         # a faster pace gives the longest runs more
    searched = plan_training(_default(lr_search=True), 0.013 * 1.3, elapsed, 10_000, done=short)
    assert searched.by_activation == replan.by_activation and searched.search_hours == 0.0    # ran before: not again
    assert searched.expected_training_hours == replan.expected_training_hours


def test_a_default_budget_on_a_slow_machine_cuts_every_run_by_its_share():
    plan = plan_training(_default(), seconds_per_update=0.05, elapsed=120.0, test_examples=10_000)
    assert plan.cut and plan.updates_planned == 6000 and plan.updates % 10 == 0
    room = SAFETY * (570.0 - 120.0 - REPORT_SECONDS)
    assert plan.updates < 6 * CUT_FLOOR                               # below the floors: shares apply
    assert _seconds(plan, plan.updates) <= room < _seconds(plan, plan.updates + 10)     # the largest that fits
    n = plan.updates
    assert (plan.training.eval_every, plan.training.monitor_every) == (n // CUT_EVAL_POINTS, n // CUT_SNAPSHOTS)
    assert {a: c.updates for a, c in plan.runs.items()} == {"sigmoid": n, "tanh": round(n / 6), "softsign": round(n / 6)}
    budget = plan.budget_record()
    assert budget["cut"] and budget["updates_per_run"] == n and budget["seconds_before_training"] == 120.0
    assert budget["measured_seconds_per_update"] == 0.05 and budget["time_budget_seconds"] == 570.0
    assert budget["expected_training_hours"] * 3600 == pytest.approx(_seconds(plan, n), rel=1e-12)


def test_measured_costs_enter_the_estimate():
    cheap = plan_training(_default(time_budget=None), 0.01, 0.0, 10_000, costs=Costs(0.01, 0.0, 0.0))
    assert cheap.expected_training_hours * 3600 == pytest.approx(4 * (6000 + 2 * 1000) * 0.01)
    dear = plan_training(_default(time_budget=None), 0.01, 0.0, 10_000, costs=Costs(0.01, 0.01, 0.0))
    evaluated = 4 * ((31 * 1000 + 12_000) + 2 * (6 * 1000 + 12_000))
    assert dear.expected_training_hours * 3600 == pytest.approx(cheap.expected_training_hours * 3600
                                                                + evaluated * 0.01 * 0.01)


def test_the_cut_grows_with_the_time_already_spent_and_stops_at_min_updates():
    config = _default()
    fast = plan_training(config, 0.01, elapsed=120.0, test_examples=10_000)
    assert not fast.cut and fast.updates == 6000
    later = [plan_training(config, 0.05, elapsed=e, test_examples=10_000).updates for e in (0.0, 120.0, 300.0)]
    assert later[0] > later[1] > later[2] and all(u % 10 == 0 for u in later)
    hopeless = plan_training(config, 1.0, elapsed=120.0, test_examples=10_000)
    assert hopeless.cut and hopeless.updates == MIN_UPDATES
    assert {a: c.updates for a, c in hopeless.runs.items()} == {"sigmoid": 100, "tanh": 17, "softsign": 17}


def test_the_learning_rate_search_takes_its_share_of_the_budget():
    without = plan_training(_default(), 0.01, elapsed=120.0, test_examples=10_000)
    with_search = plan_training(_default(lr_search=True), 0.01, elapsed=120.0, test_examples=10_000)
    assert not without.cut and with_search.cut
    assert sum(with_search.by_activation.values()) < sum(without.by_activation.values())


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
    assert plan.budget_record()["updates_per_run"] == plan.updates
    assert total_units(config) > total_units(config, plan.by_activation)


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


def test_the_estimate_is_recorded_and_revised_from_a_second_speed_measurement(tmp_path):
    config = preset("quick")
    config.dataset = "shapeset"
    config.at_init.activations, config.at_init.schemes, config.at_init.width = ("tanh",), ("standard",), 30
    t = config.training
    t.activations, t.schemes, t.width, t.updates, t.seeds = ("tanh",), ("standard",), 20, 40, (0,)
    study = run_study(config, tmp_path / "run", progress=False)
    execution = study.results["execution"]
    estimate, stages = execution["estimate"], execution["invocations"][-1]["stage_seconds"]
    assert estimate["revised_after_at_init"] and {"speed", "speed_before_runs", "at_init", "runs"} <= set(stages)
    assert set(estimate["stages"]) == {"at_init", "runs", "report"} and all(v > 0 for v in estimate["stages"].values())
    assert estimate["total_seconds"] == pytest.approx(estimate["seconds_before_plan"] + sum(estimate["stages"].values()))
    report = (tmp_path / "run" / "report.md").read_text()
    assert "measured again after the at-init stage" in report and "| at_init |" in report


def _two_lengths(time_budget=600.0):
    """A tiny study whose tanh runs are half as long as its sigmoid runs."""
    config = preset("quick")
    config.dataset, config.at_init, config.time_budget = "shapeset", None, time_budget
    t = config.training
    t.activations, t.schemes, t.width, t.updates, t.seeds = ("sigmoid", "tanh"), ("standard",), 20, 60, (0, 1)
    t.update_shares = {"tanh": 0.5}
    return config


def _log_runs(monkeypatch, stop_after=None) -> list:
    """The names of the runs the serial runner finishes, in order; Ctrl-C after `stop_after` of them."""
    from minidl.experiments.runners import SerialRunner

    order, run = [], SerialRunner.run

    def logged(self, tasks, on_progress):
        for task, record in run(self, tasks, on_progress):
            order.append(task.name)
            yield task, record
            if len(order) == stop_after:
                raise KeyboardInterrupt

    monkeypatch.setattr(SerialRunner, "run", logged)
    return order


def test_the_shorter_runs_go_first_and_the_longest_are_replanned_from_their_pace(tmp_path, monkeypatch):
    order = _log_runs(monkeypatch)
    config = _two_lengths()
    study = run_study(config, tmp_path / "run", progress=False)
    assert order == ["run-tanh-standard-seed0", "run-tanh-standard-seed1",
                     "run-sigmoid-standard-seed0", "run-sigmoid-standard-seed1"]
    results = study.results
    assert [r["execution"]["task"] for r in results["training"]["runs"]] == [          # records in serial order
        "run-sigmoid-standard-seed0", "run-tanh-standard-seed0", "run-sigmoid-standard-seed1", "run-tanh-standard-seed1"]
    budget, estimate = results["training"]["budget"], results["execution"]["estimate"]
    stages = results["execution"]["invocations"][-1]["stage_seconds"]
    factor = budget["pace_factor"]
    assert factor == estimate["pace_factor"] and factor > 0 and budget["final"]
    assert budget["measured_seconds_per_update"] == pytest.approx(estimate["seconds_per_update"] * factor, rel=1e-9)
    assert list(estimate["stages"]) == ["short_runs", "runs", "report"]
    tanh = [r for r in results["training"]["runs"] if r["activation"] == "tanh"]
    assert all(0 < r["recording_seconds"] < r["train_seconds"] for r in tanh)
    updating = sum(r["train_seconds"] - r["recording_seconds"] for r in tanh)      # the tanh runs' updates
    assert factor == pytest.approx(updating / (60 * estimate["seconds_per_update"]), rel=1e-9)
    wall = results["execution"]["invocations"][-1]["wall_seconds"]
    assert sum(seconds for stage, seconds in stages.items()) <= wall     # disjoint: the runs stage is the longest only
    costs = Costs(budget["measured_seconds_per_update"], estimate["eval_example_updates"],
                  estimate["monitor_example_updates"])
    replan = plan_training(config, costs.seconds_per_update, budget["seconds_before_training"],
                           results["data"]["n_test"], costs=costs, done={"tanh": 30})
    assert budget["updates_by_activation"] == replan.by_activation == {"sigmoid": 60, "tanh": 30}
    assert estimate["stages"]["runs"] == pytest.approx(3600 * replan.expected_training_hours, rel=1e-9)
    assert f"the shorter runs, which went first, made their updates at {factor:.2f}× that time" in (
        tmp_path / "run" / "report.md").read_text()


@pytest.mark.parametrize("stop_after", [1, 3])
def test_a_resumed_study_keeps_its_plan_and_replans_only_from_a_whole_first_stage(tmp_path, monkeypatch, stop_after):
    order = _log_runs(monkeypatch, stop_after)
    with pytest.raises(KeyboardInterrupt):
        run_study(_two_lengths(), tmp_path / "run", progress=False)
    before = json.loads((tmp_path / "run" / "results.json").read_text())["training"]["budget"]
    assert (before["pace_factor"] is None) == (stop_after == 1)     # re-planned once the tanh runs were done
    monkeypatch.setattr("minidl.experiments.study.Study._replan", None)       # never again
    study = run_study(None, tmp_path / "run", progress=False, resume=True)
    assert len(order) == 4 and study.results["status"] == "complete"          # each run finished once
    after = dict(study.results["training"]["budget"], expected_training_hours=None)   # re-estimated from the plan
    assert after == dict(before, expected_training_hours=None)
    assert [r["updates_done"] for r in study.results["training"]["runs"]] == [60, 30, 60, 30]
