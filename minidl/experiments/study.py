"""Run the whole study: data, at-init nets, training runs; results written as they finish.

One tqdm progress bar covers everything (units: one training update; an at-init net counts as
AT_INIT_UNITS). results.json is rewritten after every finished net or run, so an interrupted study keeps
what it finished; the figures, CSVs and report.md are then drawn from whatever is there.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from minidl.experiments import paper
from minidl.experiments.config import StudyConfig, TrainingConfig

AT_INIT_UNITS = 40
FINISH_SECONDS = 25.0   # figures, CSVs and the report at the end
MIN_UPDATES = 100
SAFETY = 0.8            # share of the measured remaining time planned for training (loop overheads, load)
CUT_EVAL_POINTS = 16    # learning-curve points of a run cut by the time budget
CUT_SNAPSHOTS = 20      # activation snapshots of a run cut by the time budget
AT_INIT_SHARE = 0.3     # with a time budget, at-init nets that would end past this share of it are skipped


def default_out_dir(root: str | os.PathLike = "runs") -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"reproduce-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(root) / f"reproduce-{stamp}-{suffix}"
    return path


def _environment() -> dict:
    import minidl

    env = {"python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform(),
           "cpu_count": os.cpu_count(), "minidl": getattr(minidl, "__version__", "?")}
    try:
        from minidl import _core

        env["threads"] = _core.get_num_threads()
    except (ImportError, AttributeError):
        pass
    return env


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def lr_search_units(training) -> int:
    """Training updates of the learning-rate search (0 without --lr-search)."""
    t = training
    return len(t.activations) * len(t.schemes) * len(t.lr_search_grid) * t.lr_search_updates if t.lr_search else 0


def total_units(config: StudyConfig, updates: int | None = None) -> int:
    """Progress-bar units of the whole study; `updates`: the training updates per run (default: the config's)."""
    units = 0
    if config.at_init is not None:
        a = config.at_init
        units += AT_INIT_UNITS * len(a.activations) * len(a.schemes) * len(a.depths)
    if config.training is not None:
        t = config.training
        units += len(t.schemes) * len(t.seeds) * sum(t.updates_for(a, updates) for a in t.activations)
        units += lr_search_units(t)
    return units


def _intervals(training, updates: int, full_updates: int) -> tuple[int, int]:
    """(eval_every, monitor_every) of a run of `updates` updates: the config's, or for a run cut below its
    `full_updates`, short enough for about CUT_EVAL_POINTS curve points and CUT_SNAPSHOTS snapshots."""
    t = training
    if updates >= full_updates:
        return t.eval_every, t.monitor_every
    return (min(t.eval_every, max(10, updates // CUT_EVAL_POINTS)),
            min(t.monitor_every, max(5, updates // CUT_SNAPSHOTS)))


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """How long the training runs are (see `plan_training`).

    training: the study's TrainingConfig with the planned `updates` per run (before each activation's
        share), `eval_every` and `monitor_every` (what results["config"]["training"] records);
    runs: {activation: the TrainingConfig of its runs} (its share of the updates, its intervals).
    """
    training: TrainingConfig
    runs: dict                      # {activation: TrainingConfig}
    updates_planned: int
    time_budget: float | None
    seconds_before_training: float
    seconds_per_update: float
    expected_training_hours: float

    @property
    def updates(self) -> int:
        return self.training.updates

    @property
    def cut(self) -> bool:
        return self.training.updates < self.updates_planned

    def budget_record(self) -> dict:
        """results["training"]["budget"] (a new dict; layout in results.py)."""
        t = self.training
        return {
            "time_budget_seconds": self.time_budget, "seconds_before_training": self.seconds_before_training,
            "measured_seconds_per_update": self.seconds_per_update, "updates_planned": self.updates_planned,
            "updates_per_run": t.updates,
            "updates_by_activation": {a: c.updates for a, c in self.runs.items()},
            "update_shares": {a: t.update_shares.get(a, 1.0) for a in t.activations},
            "update_share_reason": t.update_share_reason,
            "cut": self.cut,
            "expected_training_hours": self.expected_training_hours}


def plan_training(config: StudyConfig, seconds_per_update: float, elapsed: float,
                  test_examples: int) -> TrainingPlan:
    """The training plan of `config` (not modified): with a time budget, the updates per run are cut so
    that training ends within it, given `elapsed` seconds spent before training and `seconds_per_update`
    measured; each activation's runs make `TrainingConfig.updates_for` of them (its update share).

    Cost model, in units of one training update: a run of u updates costs
        u + (evaluated examples) / (3 B)
    (a forward-only pass over one example costs about a third of a training step per example), where
    the evaluated examples are eval_examples per learning-curve point, monitor_examples per snapshot and
    test_examples + 2000 at the end. A cut run keeps about CUT_EVAL_POINTS curve points and CUT_SNAPSHOTS
    snapshots. The updates are cut in steps of 10, not below MIN_UPDATES.
    """
    t, budget = config.training, config.time_budget
    planned = t.updates
    runs_per_activation = len(t.schemes) * len(t.seeds)
    search = lr_search_units(t)

    def run_cost(updates, activation):
        every_eval, every_snapshot = _intervals(t, updates, t.updates_for(activation, planned))
        evaluated = ((updates // every_eval + 2) * t.eval_examples
                     + (updates // every_snapshot + 2) * t.monitor_examples + test_examples + 2000)
        return updates + evaluated / (3 * t.batch_size)

    def training_cost(updates):
        return runs_per_activation * sum(run_cost(t.updates_for(a, updates), a) for a in t.activations)

    updates = planned
    if budget:
        units = SAFETY * (budget - elapsed - FINISH_SECONDS) / seconds_per_update - search
        while updates > MIN_UPDATES and training_cost(updates) > units:
            updates -= 10
    every_eval, every_snapshot = _intervals(t, updates, planned)
    runs = {}
    for activation in t.activations:
        n = t.updates_for(activation, updates)
        run_eval, run_snapshot = _intervals(t, n, t.updates_for(activation, planned))
        runs[activation] = dataclasses.replace(t, updates=n, eval_every=run_eval, monitor_every=run_snapshot)
    return TrainingPlan(
        training=dataclasses.replace(t, updates=updates, eval_every=every_eval, monitor_every=every_snapshot),
        runs=runs, updates_planned=planned, time_budget=budget, seconds_before_training=elapsed,
        seconds_per_update=seconds_per_update,
        expected_training_hours=seconds_per_update * (search + training_cost(updates)) / 3600)


class Study:
    """The study's state: its results dict and output folder; `run()` does everything."""

    def __init__(self, config: StudyConfig, out: Path, command: str = "", progress: bool = True):
        self.config = config.validate()
        self.out = Path(out)
        self.progress = progress
        self.results = {
            "format": "minidl-reproduce/1", "status": "running", "started": _now(), "finished": None,
            "wall_seconds": None, "command": command, "config": config.to_dict(),
            "environment": _environment(), "data": None, "at_init": [],
            "training": {"learning_rates": {}, "runs": []},
            "paper_table1": {f"{a}/{s}": paper.table1_row(a, s) for (a, s) in paper.TABLE1},
        }
        self._start = time.perf_counter()

    def save(self) -> None:
        from minidl.experiments.results import write_json_atomic

        self.results["wall_seconds"] = time.perf_counter() - self._start
        write_json_atomic(self.out / "results.json", self.results)

    def run(self) -> dict:
        from tqdm import tqdm

        from minidl.experiments.data import load_study_data

        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "figures").mkdir(exist_ok=True)
        self.save()
        bar = tqdm(total=total_units(self.config), desc="reproduce", unit="upd", disable=not self.progress,
                   dynamic_ncols=True, file=sys.stderr)
        try:
            bar.set_postfix_str("loading data")
            train_examples = self.config.training.train_examples if self.config.training else None
            data = load_study_data(self.config.dataset, self.config.data_dir, train_examples)
            self.results["data"] = {
                "name": data.name, "reason": data.reason, "source": data.source,
                "n_train": int(data.x_train.shape[0]), "n_valid": int(data.x_valid.shape[0]),
                "n_test": int(data.x_test.shape[0]), "n_classes": data.n_classes,
                "majority_error": data.majority_error}
            self.save()
            if self.config.training is not None:      # a first plan, so that the bar's total is realistic
                per_update = self._measure_speed(data, bar)
                assumed = AT_INIT_SHARE * self.config.time_budget if (
                    self.config.time_budget and self.config.at_init is not None) else 0.0
                self._adopt_plan(self._plan(data, per_update, assumed), bar)
            if self.config.at_init is not None:
                self._run_at_init(data, bar)
            if self.config.training is not None:
                self._run_training(data, bar, per_update)
            self.results["status"] = "complete"
        except KeyboardInterrupt:
            self.results["status"] = "interrupted"
            raise
        except BaseException:
            self.results["status"] = "interrupted"
            raise
        finally:
            bar.close()
            self.finish()
        return self.results

    def _run_at_init(self, data, bar) -> None:
        from minidl.experiments.at_init import run_at_init

        def on_record(record):
            self.results["at_init"].append(record)
            self.save()

        def on_step():
            bar.update(AT_INIT_UNITS)

        bar.set_postfix_str("at init")
        deadline = None
        if self.config.time_budget:
            deadline = self._start + AT_INIT_SHARE * self.config.time_budget
        outcome = run_at_init(self.config.at_init, data, on_record=on_record, on_step=on_step, deadline=deadline)
        self.results["at_init_skipped"] = outcome["skipped"]
        self.save()

    def _run_training(self, data, bar, per_update: float) -> None:
        from minidl.experiments.config import LR_EVIDENCE
        from minidl.experiments.training_study import search_learning_rate, train_run

        plan = self._plan(data, per_update)
        self._adopt_plan(plan, bar)
        t = plan.training
        hours = plan.expected_training_hours
        if hours > 0.5:
            bar.write(f"minidl reproduce: training is expected to take about {hours:.1f} hours "
                      f"({1000 * per_update:.1f} ms per update measured here)")
        rates = self.results["training"]["learning_rates"]
        for activation in t.activations:
            for scheme in t.schemes:
                key = f"{activation}/{scheme}"
                if t.lr_search:
                    bar.set_postfix_str(f"lr search {key}")
                    search = search_learning_rate(data, t, activation, scheme, on_updates=bar.update)
                    rates[key] = {"lr": search["chosen"], "source": "search", "search": search}
                else:
                    evidence = LR_EVIDENCE.get((activation, scheme), LR_EVIDENCE["default"])
                    if data.name != "fashion-mnist" and (activation, scheme) in LR_EVIDENCE:
                        evidence += (f"; NOTE: chosen on Fashion-MNIST, not on {data.name}: --lr-search chooses "
                                     "on this data")
                    rates[key] = {"lr": t.learning_rate(activation, scheme), "source": "fixed",
                                  "evidence": evidence}
                self.save()
        for seed in t.seeds:                   # seeds outermost: an interrupted study has whole pairs
            for activation in t.activations:
                for scheme in t.schemes:
                    key = f"{activation}/{scheme}"
                    bar.set_postfix_str(f"train {key} seed {seed}")
                    run_config = plan.runs[activation]
                    record = train_run(data, run_config, activation, scheme, seed, rates[key]["lr"],
                                       run_config.updates, on_updates=bar.update)
                    self.results["training"]["runs"].append(record)
                    self.save()

    def _measure_speed(self, data, bar) -> float:
        """Seconds per training update of the study's nets, averaged over the training activations."""
        from minidl.experiments.training_study import seconds_per_update

        t = self.config.training
        bar.set_postfix_str("measuring speed")
        return float(np.mean([seconds_per_update(data, t, a) for a in t.activations]))

    def _plan(self, data, per_update: float, assumed: float = 0.0) -> TrainingPlan:
        """plan_training with the time spent so far (plus `assumed` seconds still to come before training)."""
        return plan_training(self.config, per_update, elapsed=time.perf_counter() - self._start + assumed,
                             test_examples=int(data.x_test.shape[0]))

    def _adopt_plan(self, plan: TrainingPlan, bar) -> None:
        """Record `plan` in results.json (budget; the planned updates and intervals in the config) and the bar."""
        bar.total = total_units(self.config, plan.updates)
        bar.refresh()
        self.results["training"]["budget"] = plan.budget_record()
        recorded = self.results["config"]["training"]
        recorded["updates"] = plan.training.updates
        recorded["eval_every"] = plan.training.eval_every
        recorded["monitor_every"] = plan.training.monitor_every
        self.save()

    def finish(self) -> None:
        """Write results.json, the CSVs, the figures and report.md from whatever has finished."""
        from minidl.experiments.figures import draw_all
        from minidl.experiments.report import write_report
        from minidl.experiments.results import write_csvs

        self.results["finished"] = _now()
        self.save()
        write_csvs(self.results, self.out)
        figures = draw_all(self.results, self.out / "figures")
        write_report(self.results, figures, self.out / "report.md")


def run_study(config: StudyConfig, out=None, command: str = "", progress: bool = True) -> Study:
    """Run the study into `out` (default: a new folder under runs/); returns the finished Study."""
    study = Study(config, Path(out) if out is not None else default_out_dir(), command, progress)
    study.run()
    return study
