"""Run the whole study: data, at-init nets, training runs; results written as they finish.

One tqdm progress bar covers everything (units: one training update; an at-init net counts as
AT_INIT_UNITS). results.json is rewritten after every finished group of at-init nets (one activation and
depth under every scheme) and every finished run, so an interrupted study keeps
what it finished; the figures, CSVs and report.md are then drawn from whatever is there.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from minidl import _core
from minidl.experiments import paper
from minidl.experiments.config import StudyConfig, TrainingConfig
from minidl.interrupts import interrupts_held

AT_INIT_UNITS = 40
MIN_UPDATES = 100
SAFETY = 0.9            # share of the remaining time planned for training (the estimate itself is unpadded)
CUT_EVAL_POINTS = 16    # learning-curve points of a run cut by the time budget
CUT_SNAPSHOTS = 20      # activation snapshots of a run cut by the time budget
AT_INIT_SHARE = 0.3     # with a time budget, at-init nets that would end past this share of it are skipped
# A budget cuts the runs of the activations with the smaller update shares first, down to this many
# updates, before it cuts the longest: tanh and softsign nets left the plateau within 40 updates and their
# curve errors parted by init within 300 (issue 15's fresh-clone run), while sigmoid nets need thousands.
CUT_FLOOR = 300


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


def total_units(config: StudyConfig, by_activation: dict | None = None) -> int:
    """Progress-bar units of the whole study; `by_activation`: each activation's updates per run (default:
    the config's)."""
    units = 0
    if config.at_init is not None:
        a = config.at_init
        units += AT_INIT_UNITS * len(a.activations) * len(a.schemes) * len(a.depths)
    if config.training is not None:
        t = config.training
        by_activation = by_activation or {a: t.updates_for(a) for a in t.activations}
        units += len(t.schemes) * len(t.seeds) * sum(by_activation[a] for a in t.activations)
        units += lr_search_units(t)
    if config.extensions is not None:
        from minidl.experiments.extensions import units as extension_units

        units += extension_units(config.extensions)
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
    expected_training_hours: float     # wall time with `parallel` runs at once (lr search included)
    parallel: int = 1
    search_hours: float = 0.0          # of which the lr search
    run_seconds: dict = dataclasses.field(default_factory=dict)   # {activation: wall seconds of its runs}
    pace_factor: float | None = None   # re-planned: the shorter runs' updates took this multiple of the measured time

    @property
    def updates(self) -> int:
        return self.training.updates

    @property
    def cut(self) -> bool:
        return any(c.updates < self.training.updates_for(a, self.updates_planned) for a, c in self.runs.items())

    @property
    def by_activation(self) -> dict:
        """{activation: updates of each of its runs}."""
        return {a: c.updates for a, c in self.runs.items()}

    @property
    def shorter(self) -> tuple:
        """The activations whose runs are shorter than the longest. The study runs them first and re-plans the
        longest runs from the pace they kept (`Study._replan`)."""
        longest = max(self.by_activation.values())
        return tuple(a for a, n in self.by_activation.items() if n < longest)

    def budget_record(self) -> dict:
        """results["training"]["budget"] (a new dict; layout in results.py)."""
        t = self.training
        return {
            "time_budget_seconds": self.time_budget, "seconds_before_training": self.seconds_before_training,
            "measured_seconds_per_update": self.seconds_per_update, "updates_planned": self.updates_planned,
            "updates_per_run": t.updates,
            "updates_by_activation": self.by_activation,
            "update_shares": {a: t.update_shares.get(a, 1.0) for a in t.activations},
            "update_share_reason": t.update_share_reason,
            "cut": self.cut,
            "expected_training_hours": self.expected_training_hours, "parallel_runs": self.parallel,
            "pace_factor": self.pace_factor}


def plan_training(config: StudyConfig, seconds_per_update: float, elapsed: float, test_examples: int,
                  parallel: int = 1, updates: int | None = None, by_activation: dict | None = None,
                  costs=None, done: dict | None = None) -> TrainingPlan:
    """The training plan of `config` (not modified): with a time budget, the updates per run are cut so
    that training ends within it, given `elapsed` seconds spent (or to be spent) before training and
    `seconds_per_update` measured. Each activation's runs make `TrainingConfig.updates_for` of them (its
    update share), at most its cap: the cut first lowers the caps of the activations with a smaller share
    than the largest, down to CUT_FLOOR (their planned updates if fewer), then cuts every run's share.
    `parallel` runs execute at once (a Dask cluster): the wall time of n tasks of one stage is taken as
    ceil(n / parallel) / n of their serial time. `updates` and `by_activation` (each activation's
    updates): the plan made before (a resumed study keeps its plan), instead of fitting one to the budget.
    `done`: {activation: updates} of the activations whose runs have finished (their time is in `elapsed`):
    kept as they ran, the rest fitted into the time left (a re-plan between runs, `Study._replan`).

    Cost model (minidl.experiments.planner, `costs`: measured there, default its constants): a run costs
    its updates plus its evaluations (a curve point on eval_examples every eval_every updates, a snapshot
    of monitor_examples every monitor_every, test_examples + 2000 at the end), in updates. A cut run keeps
    about CUT_EVAL_POINTS curve points and CUT_SNAPSHOTS snapshots. Training is planned into SAFETY of the
    time left after the report (planner.REPORT_SECONDS); updates are cut in steps of 10, not below
    MIN_UPDATES. `expected_training_hours` is the unpadded estimate.
    """
    from minidl.experiments.planner import REPORT_SECONDS, Costs, run_updates

    costs = costs if costs is not None else Costs(seconds_per_update)
    t, budget = config.training, config.time_budget
    planned = t.updates
    full = {a: t.updates_for(a, planned) for a in t.activations}
    runs_per_activation = len(t.schemes) * len(t.seeds)
    search = lr_search_units(t)

    def run_cost(n, activation):
        every_eval, every_snapshot = _intervals(t, n, full[activation])
        return run_updates(n, every_eval, every_snapshot, t.eval_examples, t.monitor_examples,
                           test_examples + 2000, costs)

    def trial_cost():
        return run_updates(t.lr_search_updates, t.eval_every, None, t.eval_examples, 0, test_examples + 2000,
                           costs) - t.lr_search_updates

    runs = runs_per_activation * len(t.activations)
    trials = len(t.activations) * len(t.schemes) * len(t.lr_search_grid) if t.lr_search else 0
    run_rounds = math.ceil(runs / parallel) / runs
    done = done or {}
    # a re-plan (some runs done): the lr search ran before any run, its time is in `elapsed`
    search_wall = 0.0 if done else (
        (search + trials * trial_cost()) * (math.ceil(trials / parallel) / trials if trials else 0))

    def counts(updates, caps):
        return {a: done.get(a, min(t.updates_for(a, updates), caps[a])) for a in t.activations}

    def activation_costs(updates, caps):     # {activation: cost of its runs still to come, in updates}
        return {a: run_rounds * runs_per_activation * run_cost(n, a)
                for a, n in counts(updates, caps).items() if a not in done}

    def training_cost(updates, caps):
        return sum(activation_costs(updates, caps).values())

    fixed = updates is not None
    updates = planned if updates is None else updates
    caps = dict(full, **(by_activation or {}))
    if budget and not fixed:
        units = SAFETY * (budget - elapsed - REPORT_SECONDS) / seconds_per_update - search_wall
        longest = max(full.values())
        floors = {a: min(n, CUT_FLOOR) for a, n in full.items() if n < longest and a not in done}
        while training_cost(updates, caps) > units and any(caps[a] > f for a, f in floors.items()):
            caps.update({a: max(f, caps[a] - 10) for a, f in floors.items()})
        while updates > MIN_UPDATES and training_cost(updates, caps) > units:
            updates -= 10
    every_eval, every_snapshot = _intervals(t, updates, planned)
    runs = {}
    for activation, n in counts(updates, caps).items():
        run_eval, run_snapshot = _intervals(t, n, full[activation])
        runs[activation] = dataclasses.replace(t, updates=n, eval_every=run_eval, monitor_every=run_snapshot)
    return TrainingPlan(
        training=dataclasses.replace(t, updates=updates, eval_every=every_eval, monitor_every=every_snapshot),
        runs=runs, updates_planned=planned, time_budget=budget, seconds_before_training=elapsed,
        seconds_per_update=seconds_per_update, parallel=parallel,
        expected_training_hours=seconds_per_update * (search_wall + training_cost(updates, caps)) / 3600,
        search_hours=seconds_per_update * search_wall / 3600,
        run_seconds={a: seconds_per_update * c for a, c in activation_costs(updates, caps).items()})


TIMING_FIELDS = ("started", "finished", "wall_seconds", "command", "environment", "execution")
RUN_TIMING_FIELDS = ("train_seconds", "recording_seconds", "updates_per_second", "execution")
BUDGET_TIMING_FIELDS = ("seconds_before_training", "measured_seconds_per_update", "expected_training_hours",
                        "parallel_runs", "pace_factor")
ESTIMATED_STAGES = ("at_init", "lr_search", "short_runs", "runs", "extensions", "report")   # in the order they run
CHECKPOINT_EVERY = 2000     # default updates between a run's checkpoints
LOCK_PURPOSE = "minidl reproduce"


@dataclasses.dataclass(frozen=True)
class Execution:
    """How the study runs, never what it computes (results are the same either way, timing aside)."""
    workers: int | None = None           # a Dask LocalCluster of this many single-task processes
    scheduler: str | None = None         # the address of an existing Dask scheduler
    threads_per_run: int | None = None   # kernel threads of each run (None: serial the process's, Dask 1)
    checkpoint_every: int = CHECKPOINT_EVERY
    max_attempts: int = 3                # failed starts of one run before the study gives up (Dask)

    @property
    def dask(self) -> bool:
        return self.workers is not None or self.scheduler is not None

    def validate(self) -> "Execution":
        for name in ("workers", "threads_per_run", "checkpoint_every", "max_attempts"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.threads_per_run is not None and self.threads_per_run > _core.MAX_THREADS:
            raise ValueError(f"--threads-per-run must be at most {_core.MAX_THREADS}, got {self.threads_per_run}")
        if self.workers is not None and self.scheduler is not None:
            raise ValueError("give --workers (a cluster on this machine) or --scheduler (an existing one), not both")
        cores = _core.usable_cores()
        if self.workers is not None and self.workers > cores:     # 10**6 workers: a cluster that never started
            raise ValueError(f"--workers {self.workers}: a cluster on this machine runs at most one run per core, "
                             f"and it has {cores}; give at most {cores}, or --scheduler for a larger cluster")
        return self


class StudyFolderError(ValueError):
    """--out cannot be used as asked (occupied without --resume, or nothing to resume there)."""


def check_out(out, resume: bool) -> dict | None:
    """The folder check made before any work: without `resume`, `out` must be missing or empty (an old
    study is never overwritten); with it, `out` must hold an unfinished study's results.json, which is
    returned. Raises StudyFolderError (one line)."""
    from minidl.experiments.results import FORMAT

    out = Path(out)
    if not resume:
        if out.is_symlink() and not out.exists():
            raise StudyFolderError(f"--out {out} is a link to {os.readlink(out)}, which does not exist; choose a "
                                   f"folder")
        if out.exists() and not out.is_dir():
            raise StudyFolderError(f"--out {out} is a file, not a folder; choose a new folder")
        if out.exists() and any(p.name != ".lock" for p in out.iterdir()):
            raise StudyFolderError(f"--out {out} is not empty; choose a new folder, or add --resume to continue "
                                   "the study in it")
        _check_creatable(out)
        return None
    path = out / "results.json"
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        raise StudyFolderError(f"--resume: {path} does not exist; nothing to resume") from None
    except (OSError, json.JSONDecodeError) as error:
        raise StudyFolderError(f"--resume: {path} is unreadable ({error})") from None
    if not isinstance(results, dict) or results.get("format") != FORMAT:
        raise StudyFolderError(f"--resume: {path} is not a minidl reproduce study (format "
                               f"{results.get('format') if isinstance(results, dict) else None!r})")
    if results.get("status") == "complete":
        raise StudyFolderError(f"--resume: the study in {out} is complete; nothing to resume")
    execution = results.get("execution")
    if not isinstance(execution, dict) or "config" not in execution:
        raise StudyFolderError(f"--resume: {path} was written by a minidl that cannot resume studies; start a "
                               "new one")
    try:
        StudyConfig.from_dict(execution["config"]).validate()
        if not isinstance(execution.get("invocations"), list):
            raise ValueError("execution.invocations is not a list")
    except Exception as error:
        raise StudyFolderError(f"--resume: {path} is damaged: its study settings cannot be read "
                               f"({type(error).__name__}: {error})") from None
    return results


def _check_creatable(out: Path) -> None:
    """Raise StudyFolderError unless ``out`` exists or can be made: its nearest existing ancestor must be a
    folder this process may write in (else the study "failed" with nothing run, naming a folder it never made)."""
    ancestor = out.absolute()
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise StudyFolderError(f"--out {out}: {ancestor} is a file, so the folder cannot be made")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise StudyFolderError(f"--out {out}: {ancestor} is not writable")


def comparable(results: dict) -> dict:
    """`results` without its timing and execution fields: what two studies of one config share exactly."""
    import copy

    same = {k: copy.deepcopy(v) for k, v in results.items() if k not in TIMING_FIELDS}
    training = same.get("training") or {}
    for record in training.get("runs", []) + training.get("lr_trials", []):
        for key in RUN_TIMING_FIELDS:
            record.pop(key, None)
    for key in BUDGET_TIMING_FIELDS:
        (training.get("budget") or {}).pop(key, None)
    return same


class Study:
    """The study's state: its results dict and output folder; `run()` does everything.

    Stages, each from the records of the one before: data -> plan -> at-init -> lr search -> runs ->
    report. Runs and lr trials are tasks (minidl.experiments.tasks) handed to a runner (serial or Dask);
    their records enter results.json in the serial order whatever order they finish in. With `resume`
    (`out` holds an unfinished study's results.json), finished at-init groups, trials and runs are
    kept, unfinished runs continue from `out/checkpoints/<run>.npz`, and the plan is the one recorded.
    """

    def __init__(self, config: StudyConfig | None, out: Path, command: str = "", progress: bool = True,
                 execution: Execution | None = None, resume: bool = False):
        if config is None and not resume:
            raise ValueError("Study: a config is needed unless the study is resumed")
        self.out = Path(out)
        self.progress, self.command, self.resume = progress, command, resume
        self.config = config.validate() if config is not None else None
        self.execution = (execution or Execution()).validate()
        self.results = None
        self._start = time.perf_counter()
        self._previous_seconds = 0.0
        self._seen = {}          # task name -> updates already shown on the bar
        self._runner = None
        self._costs = None       # the planner's measured costs (minidl.experiments.planner.Costs)
        self._at_init_costs = None   # (seconds per at-init layer, per layer Jacobian), measured
        self._deep_seconds_per_update = None    # of the extensions' deep net, measured

    def _begin(self, resumed: dict | None) -> None:
        """The results to fill: new ones, or (`resumed`) those of the unfinished study being continued."""
        invocation = {"started": _now(), "command": self.command, "environment": _environment()}
        if resumed is None:
            config = self.config
            self.results = {
                "format": "minidl-reproduce/1", "status": "running", "started": _now(), "finished": None,
                "wall_seconds": None, "command": self.command, "config": config.to_dict(),
                "environment": _environment(), "data": None, "at_init": [],
                "training": {"learning_rates": {}, "lr_trials": [], "runs": []},
                "paper_table1": {f"{a}/{s}": paper.table1_row(a, s) for (a, s) in paper.TABLE1},
                "execution": {"config": config.to_dict(), "invocations": [invocation]},
            }
        else:
            self.results = resumed
            self.config = StudyConfig.from_dict(resumed["execution"]["config"]).validate()
            resumed["status"] = "running"
            resumed.pop("error", None)
            resumed["execution"]["invocations"].append(invocation)
            self._previous_seconds = resumed.get("wall_seconds") or 0.0

    @property
    def _invocation(self) -> dict:
        return self.results["execution"]["invocations"][-1]

    def save(self) -> None:
        from minidl.experiments.results import write_json_atomic

        seconds = time.perf_counter() - self._start
        self._invocation["wall_seconds"] = seconds
        self.results["wall_seconds"] = self._previous_seconds + seconds
        write_json_atomic(self.out / "results.json", self.results)

    def run(self) -> dict:
        """Run (or continue) the study in `out`, holding its lock; returns the results."""
        from minidl.training.run_lock import acquire

        check_out(self.out, self.resume)       # before the folder is created or locked: nothing written
        with acquire(self.out, LOCK_PURPOSE) as lock:
            if lock.stale is not None:
                print(f"minidl reproduce: note: {lock.stale}", file=sys.stderr)
            self._begin(check_out(self.out, self.resume))    # again, now that no other process can write
            self._run_locked()
        return self.results

    def _run_locked(self) -> None:
        from tqdm import tqdm

        self.save()             # first: a folder holding anything but results.json is refused by a new run
        (self.out / "figures").mkdir(exist_ok=True)
        bar = tqdm(total=total_units(self.config), desc="reproduce", unit="upd", disable=not self.progress,
                   dynamic_ncols=True, file=sys.stderr, mininterval=0.5)
        try:
            bar.set_postfix_str("loading data")
            with self._stage("data"):
                data, spec = self._load_data()
            per_update = None
            if self.config.training is not None and not self._plan_is_final():
                with self._stage("speed"):      # with --workers, this starts the cluster
                    per_update = self._measure_speed(data, spec, bar)
                assumed = self._at_init_seconds(per_update)
                plan = self._plan(data, per_update, assumed)
                self._adopt_plan(plan, bar)
                self._record_estimate(plan, assumed)
            if self.config.at_init is not None:
                with self._stage("at_init"):
                    self._run_at_init(data, bar)
            if self.config.training is not None:
                if per_update is not None and self.config.at_init is not None:
                    with self._stage("speed_before_runs"):     # the machine's load may have changed
                        per_update = self._measure_speed(data, spec, bar)
                plan = self._final_plan(data, per_update, bar)
                with self._stage("lr_search"):
                    self._search_learning_rates(data, spec, plan, bar)
                self._run_training(data, spec, plan, bar)       # its stages: short_runs, runs
            if self.config.extensions is not None:
                with self._stage("extensions"):
                    self._run_extensions(data, bar)
            self._close_runner()
            bar.close()
            _remove_if_empty(self.out / "checkpoints")
            self.finish("complete")
        except KeyboardInterrupt:
            self._stop(bar, "interrupted")
            raise
        except BaseException as error:
            self.results["error"] = f"{type(error).__name__}: {error}"
            self._stop(bar, "failed")
            raise

    @contextlib.contextmanager
    def _stage(self, name: str):
        """Time a stage into this invocation's "stage_seconds" (results["execution"])."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self._invocation.setdefault("stage_seconds", {})[name] = time.perf_counter() - started

    def _stop(self, bar, status: str) -> None:
        """Record `status` at once (true from now on), then write what finished. Writing it may fail in turn
        (a module the Ctrl-C left half-imported, a full disk): that is said in one line, and the reason the
        study stopped stays the one raised (a Ctrl-C was reported as "the study failed"). A second Ctrl-C
        waits until the status is written (two 30 ms apart left `running`), then stops the rest."""
        unsaved = None
        with interrupts_held():
            self.results["status"] = status
            try:
                self.save()
            except OSError as error:            # a full disk: said here, the reason it stopped raised after
                unsaved = error
        bar.close()
        if unsaved is not None:
            print(f"minidl reproduce: results.json was not updated ({unsaved}); report.md was not written",
                  file=sys.stderr)
        try:
            self._close_runner()                # the Dask cluster's workers stop either way
            if unsaved is None:
                self.finish(status)
        except Exception as error:
            print(f"minidl reproduce: report.md was not written ({type(error).__name__}: {error})", file=sys.stderr)

    # ----------------------------------------------------------------------------------------- stages
    def _load_data(self):
        from minidl.experiments.config import check_batch_size
        from minidl.experiments.data import resolve_data

        train_examples = self.config.training.train_examples if self.config.training else None
        data, spec = resolve_data(self.config.dataset, self.config.data_dir, train_examples)
        if self.config.training:
            check_batch_size(self.config.training.batch_size, data.x_train.shape[0])
        recorded = self.results.get("data")
        if recorded is not None and recorded.get("fingerprint") != spec.fingerprint:
            raise ValueError(f"the data differs from the study's: {data.name} from {data.source} has fingerprint "
                             f"{spec.fingerprint[:12]}, the study used {recorded.get('name')} "
                             f"({str(recorded.get('fingerprint'))[:12]}) from {recorded.get('source')}")
        self.results["data"] = {
            "name": data.name, "reason": data.reason, "source": data.source,
            "n_train": int(data.x_train.shape[0]), "n_valid": int(data.x_valid.shape[0]),
            "n_test": int(data.x_test.shape[0]), "n_classes": data.n_classes,
            "majority_error": data.majority_error, "fingerprint": spec.fingerprint}
        self.save()
        return data, spec

    def _runner_for(self, data, spec):
        """The runner of the training tasks (started once, when first needed)."""
        if self._runner is None:
            e = self.execution
            if e.dask:
                from minidl.experiments.dask_runner import DaskRunner

                self._runner = DaskRunner(spec, self.out, workers=e.workers, scheduler=e.scheduler,
                                          threads_per_run=e.threads_per_run or 1, max_attempts=e.max_attempts)
            else:
                from minidl.experiments.runners import SerialRunner

                self._runner = SerialRunner(data, e.threads_per_run)
            self._invocation["runner"] = self._runner.describe()
            self.results["execution"]["checkpoint_every"] = e.checkpoint_every
        return self._runner

    def _close_runner(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            runner.close()

    def _measure_speed(self, data, spec, bar) -> float:
        """Seconds per training update of the study's nets, measured where the runs execute."""
        bar.set_postfix_str("measuring speed")
        from minidl.experiments.planner import measure_at_init, measure_costs

        per_update = self._runner_for(data, spec).seconds_per_update(self.config.training)
        self._costs = measure_costs(data, self.config.training, per_update)
        if self.config.at_init is not None:
            self._at_init_costs = measure_at_init(data, self.config.at_init)
        elif self.config.extensions is not None:
            from minidl.experiments.config import AtInitConfig

            e = self.config.extensions
            self._at_init_costs = measure_at_init(data, AtInitConfig(width=e.relu_width, examples=e.relu_examples))
        if self.config.extensions is not None and self._deep_seconds_per_update is None:
            from minidl.experiments.training_study import seconds_per_update

            e = self.config.extensions
            deep = dataclasses.replace(self.config.training, depth=e.deep_depth, width=e.deep_width)
            self._deep_seconds_per_update = seconds_per_update(data, deep, "relu")
        return per_update

    def _run_extensions(self, data, bar) -> None:
        from minidl.experiments.extensions import run_extensions

        planned = ((self.results["execution"].get("estimate") or {}).get("stages") or {}).get("extensions")
        bar.set_postfix_str("extensions" + (f" (~{planned:.0f} s planned)" if planned else ""))
        run_extensions(self.config.extensions, data, self.results, save=self.save, on_units=bar.update)

    def _at_init_seconds(self, per_update: float) -> float:
        """The planner's estimate of the at-init stage (0 without one)."""
        from minidl.experiments.planner import at_init_seconds

        return at_init_seconds(self.config.at_init, *self._at_init_costs) if self.config.at_init is not None else 0.0

    def _record_estimate(self, plan: TrainingPlan, at_init_seconds: float, revised: bool = False) -> None:
        """results["execution"]["estimate"]: the planner's seconds per stage (report.md sets them beside the
        stage times); `revised`: the training stages re-planned after the at-init stage, from the speed
        measured again then (the at-init and extension estimates stay those made before)."""
        from minidl.experiments.planner import REPORT_SECONDS

        execution = self.results["execution"]
        stages = dict((execution.get("estimate") or {}).get("stages") or {}) if revised else {}
        if not revised and self.config.at_init is not None:
            stages["at_init"] = at_init_seconds
        stages.pop("short_runs", None)
        stages.pop("runs", None)
        if plan.training.lr_search:
            stages["lr_search"] = 3600 * plan.search_hours
        if plan.shorter:
            stages["short_runs"] = sum(plan.run_seconds[a] for a in plan.shorter)
        stages["runs"] = sum(seconds for a, seconds in plan.run_seconds.items() if a not in plan.shorter)
        if self.config.extensions is not None and not revised:
            from minidl.experiments.extensions import seconds as extension_seconds

            t = self.config.training
            pieces = extension_seconds(
                self.config.extensions, self._costs, t.width, t.depth, self._at_init_costs[0],
                self.config.at_init.width if self.config.at_init is not None else self.config.extensions.relu_width,
                int(self.results["data"]["n_test"]), self._deep_seconds_per_update)
            stages["extensions"] = sum(pieces.values())
        stages["report"] = REPORT_SECONDS
        stages = {name: stages[name] for name in ESTIMATED_STAGES if name in stages}
        before = execution["estimate"]["seconds_before_plan"] if revised else plan.seconds_before_training - at_init_seconds
        layer, jacobian = self._at_init_costs or (None, None)
        execution["estimate"] = dict(
            self._costs.to_dict(), seconds_per_at_init_layer=layer, seconds_per_jacobian=jacobian,
            stages=stages, seconds_before_plan=before,
            total_seconds=before + sum(stages.values()), time_budget_seconds=self.config.time_budget,
            revised_after_at_init=revised)
        self.save()

    def _run_at_init(self, data, bar) -> None:
        from minidl.experiments.at_init import run_at_init

        a = self.config.at_init
        if "at_init_skipped" in self.results:             # finished in an earlier invocation
            bar.update(AT_INIT_UNITS * len(a.activations) * len(a.schemes) * len(a.depths))
            return
        groups = {}
        for record in self.results["at_init"]:
            groups.setdefault((record["activation"], record["depth"]), []).append(record)
        done = {group for group, records in groups.items() if len(records) == len(a.schemes)}
        self.results["at_init"] = [r for r in self.results["at_init"] if (r["activation"], r["depth"]) in done]

        def on_group(records):          # one write per group: results.json is rewritten whole (MBs)
            self.results["at_init"] += records
            self.save()

        bar.set_postfix_str("at init")
        deadline = None
        if self.config.time_budget:
            deadline = self._start + AT_INIT_SHARE * self.config.time_budget
        outcome = run_at_init(a, data, on_group=on_group, on_step=lambda: bar.update(AT_INIT_UNITS),
                              deadline=deadline, done=done)
        self.results["at_init_skipped"] = outcome["skipped"]
        self.save()

    def _plan_is_final(self) -> bool:
        return bool((self.results["training"].get("budget") or {}).get("final"))

    def _final_plan(self, data, per_update, bar) -> TrainingPlan:
        """The plan the runs follow: made now (time spent so far known), or the one an earlier invocation
        made (a resumed study trains exactly as planned then)."""
        budget = self.results["training"].get("budget")
        if self._plan_is_final():
            plan = plan_training(self.config, budget["measured_seconds_per_update"],
                                 budget["seconds_before_training"], int(data.x_test.shape[0]),
                                 parallel=budget.get("parallel_runs", 1), updates=budget["updates_per_run"],
                                 by_activation=budget.get("updates_by_activation"))
            plan = dataclasses.replace(plan, pace_factor=budget.get("pace_factor"))
        else:
            plan = self._plan(data, per_update)
            if "estimate" in self.results["execution"] and self.config.at_init is not None:
                self._record_estimate(plan, 0.0, revised=True)
        self._adopt_plan(plan, bar, final=True)
        hours = plan.expected_training_hours
        if hours > 0.5:
            bar.write(f"minidl reproduce: training is expected to take about {hours:.1f} hours "
                      f"({1000 * plan.seconds_per_update:.1f} ms per update measured where the runs execute, "
                      f"{plan.parallel} at once)")
        return plan

    def _progress(self, bar):
        def on_progress(name: str, done: int) -> None:
            step = done - self._seen.get(name, 0)
            if step > 0:
                self._seen[name] = done
                bar.update(step)
        return on_progress

    def _tasks(self, kind: str, specs, config_for) -> list:
        from minidl.experiments.tasks import RunTask

        folder = (self.out / "checkpoints").resolve()
        return [RunTask(name, kind, config_for(activation), activation, scheme, seed, lr, updates,
                        checkpoint=str(folder / f"{name}.npz"), checkpoint_every=self.execution.checkpoint_every,
                        threads=self.execution.threads_per_run)
                for name, activation, scheme, seed, lr, updates in specs]

    def _execute(self, tasks, records: list, data, spec, bar, label: str, todo=None) -> None:
        """Run `todo` (default: all `tasks`; those not yet in `records`) on the runner; `records` follow the
        order of `tasks`, and hold only records that fit a task (``record_fits``: a run of other settings, a
        duplicate or another seed's is dropped and its task run again). A record a task left in its folder
        (finished while no study was there to save it) is taken if it fits."""
        from minidl.experiments.tasks import finished_record, forget_record, record_file, record_fits

        named = {task.name: task for task in tasks}
        by_name = {}
        for r in records:
            task = named.get((r.get("execution") or {}).get("task") if isinstance(r, dict) else None)
            if task is not None and task.name not in by_name and record_fits(task, r):
                by_name[task.name] = r
        if len(by_name) != len(records):
            records[:] = [by_name[t.name] for t in tasks if t.name in by_name]
            self.save()
        todo = tasks if todo is None else todo

        def keep(task, record):
            by_name[task.name] = record
            records[:] = [by_name[t.name] for t in tasks if t.name in by_name]
            self.save()
            forget_record(task)

        for task in todo:
            left = finished_record(task) if task.name not in by_name else None
            if left is not None and record_fits(task, left):
                keep(task, left)
            elif task.name not in by_name and (left_file := record_file(task)) is not None and left_file.exists():
                bar.write(f"minidl reproduce: {left_file} was changed since its run wrote it, or is another run's: "
                          f"{task.name} is trained again")
            if task.name in by_name:
                bar.update(task.updates)
        pending = [task for task in todo if task.name not in by_name]
        if not pending:
            return
        bar.set_postfix_str(f"{label} {len(by_name)}/{len(tasks)}")
        runner = self._runner_for(data, spec)
        # closed at once when keep() is interrupted, so that the runner stops (and releases) what still runs
        with contextlib.closing(runner.run(pending, self._progress(bar))) as finished:
            for task, record in finished:
                keep(task, record)
                bar.set_postfix_str(f"{label} {len(by_name)}/{len(tasks)}")

    def _search_learning_rates(self, data, spec, plan: TrainingPlan, bar) -> None:
        from minidl.experiments.config import LR_EVIDENCE
        from minidl.experiments.tasks import trial_name
        from minidl.experiments.training_study import choose_learning_rate

        t = plan.training
        training = self.results["training"]
        if t.lr_search:
            specs = [(trial_name(a, s, lr), a, s, 0, float(lr), t.lr_search_updates)
                     for a in t.activations for s in t.schemes for lr in t.lr_search_grid]
            tasks = self._tasks("trial", specs, lambda activation: t)
            self._execute(tasks, training["lr_trials"], data, spec, bar, "lr trials")
        rates = training["learning_rates"]
        for activation in t.activations:
            for scheme in t.schemes:
                key = f"{activation}/{scheme}"
                if t.lr_search:
                    trials = [r for r in training["lr_trials"] if (r["activation"], r["scheme"]) == (activation, scheme)]
                    search = choose_learning_rate(t, trials)
                    rates[key] = {"lr": search["chosen"], "source": "search", "search": search}
                else:
                    evidence = LR_EVIDENCE.get((activation, scheme), LR_EVIDENCE["default"])
                    if self.results["data"]["name"] != "fashion-mnist" and (activation, scheme) in LR_EVIDENCE:
                        evidence += (f"; NOTE: chosen on Fashion-MNIST, not on {self.results['data']['name']}: "
                                     "--lr-search chooses on this data")
                    rates[key] = {"lr": t.learning_rate(activation, scheme), "source": "fixed", "evidence": evidence}
        self.save()

    def _run_training(self, data, spec, plan: TrainingPlan, bar) -> None:
        """The runs, the shorter ones first ("short_runs"); then, with a time budget, the longest runs are
        re-planned from the pace the shorter ones kept (`_replan`) and run ("runs")."""
        from minidl.experiments.tasks import started

        shorter = plan.shorter
        if shorter:
            tasks = self._run_tasks(plan)
            first = [task for task in tasks if task.activation in shorter]
            records = self.results["training"]["runs"]
            done = {r["execution"]["task"] for r in records}
            # re-planned once, by the invocation that planned (measured its costs) and runs them all
            replan = (self.config.time_budget and plan.pace_factor is None and self._costs is not None
                      and not any(task.name in done or started(task) for task in tasks))
            with self._stage("short_runs"):
                self._execute(tasks, records, data, spec, bar, "runs", todo=first)
            if replan:
                plan = self._replan(plan, [r for r in records if r["activation"] in shorter], data, bar)
        tasks = self._run_tasks(plan)
        with self._stage("runs"):
            self._execute(tasks, self.results["training"]["runs"], data, spec, bar, "runs",
                          todo=[task for task in tasks if task.activation not in shorter])

    def _run_tasks(self, plan: TrainingPlan) -> list:
        from minidl.experiments.tasks import run_name

        t = plan.training
        rates = self.results["training"]["learning_rates"]
        specs = [(run_name(a, s, seed), a, s, seed, rates[f"{a}/{s}"]["lr"], plan.runs[a].updates)
                 for seed in t.seeds for a in t.activations for s in t.schemes]   # seeds outermost: whole pairs
        return self._tasks("run", specs, lambda activation: plan.runs[activation])

    def _replan(self, plan: TrainingPlan, shorter_runs: list, data, bar) -> TrainingPlan:
        """The plan of the longest runs, from the pace the shorter runs kept: their updates (train_seconds
        less their curve points' and snapshots' recording_seconds) went at `factor` times the speed measured
        before, so the longest runs are planned at that speed (the cost model's evaluations scale with it).
        On this VM the runs went 20-30% slower or faster than a 30-update measurement said; the shorter
        runs' whole time is no guide, as cut runs spend ~30% of it evaluating (issue 15, 2026-12-01)."""
        updating = sum(r["train_seconds"] - r.get("recording_seconds", 0.0) for r in shorter_runs)
        updates = sum(r["updates_done"] for r in shorter_runs)
        factor = updating / (updates * plan.seconds_per_update) if updates and updating > 0 else 1.0
        per_update = plan.seconds_per_update * factor
        revised = plan_training(self.config, per_update, elapsed=time.perf_counter() - self._start,
                                test_examples=int(data.x_test.shape[0]), parallel=plan.parallel,
                                costs=dataclasses.replace(self._costs, seconds_per_update=per_update),
                                done={a: plan.runs[a].updates for a in plan.shorter})
        revised = dataclasses.replace(revised, pace_factor=factor)
        self._adopt_plan(revised, bar, final=True)
        estimate = self.results["execution"].get("estimate")
        if estimate is not None:
            estimate["stages"]["runs"] = 3600 * revised.expected_training_hours
            estimate["pace_factor"] = factor
            estimate["total_seconds"] = estimate["seconds_before_plan"] + sum(estimate["stages"].values())
            self.save()
        return revised

    def _plan(self, data, per_update: float, assumed: float = 0.0) -> TrainingPlan:
        """plan_training with the time spent so far (plus `assumed` seconds still to come before training)."""
        parallel = self._runner.parallel if self._runner is not None else 1
        return plan_training(self.config, per_update, elapsed=time.perf_counter() - self._start + assumed,
                             costs=self._costs,
                             test_examples=int(data.x_test.shape[0]), parallel=parallel)

    def _adopt_plan(self, plan: TrainingPlan, bar, final: bool = False) -> None:
        """Record `plan` in results.json (budget; the planned updates and intervals in the config) and the bar."""
        bar.total = total_units(self.config, plan.by_activation)
        bar.refresh()
        self.results["training"]["budget"] = dict(plan.budget_record(), final=final)
        recorded = self.results["config"]["training"]
        recorded["updates"] = plan.training.updates
        recorded["eval_every"] = plan.training.eval_every
        recorded["monitor_every"] = plan.training.monitor_every
        self.save()

    def finish(self, status: str) -> None:
        """Write the CSVs, the figures and report.md from whatever has finished, then results.json with
        `status` (so that a study is `complete` only once its report and figures exist)."""
        from minidl.experiments.figures import draw_all
        from minidl.experiments.report import write_report
        from minidl.experiments.results import write_csvs

        self.results["finished"] = _now()
        with self._stage("report"):
            write_csvs(self.results, self.out)
            figures = draw_all(self.results, self.out / "figures")
            write_report(dict(self.results, status=status), figures, self.out / "report.md")
        self.results["status"] = status
        self.save()


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass            # missing, or holds something: left alone


def run_study(config: StudyConfig | None, out=None, command: str = "", progress: bool = True,
              execution: Execution | None = None, resume: bool = False) -> Study:
    """Run the study into `out` (default: a new folder under runs/), or with `resume` continue the one
    there (with its own config: `config` may be None); returns the finished Study. StudyFolderError if
    `out` is occupied (without `resume`) or holds no unfinished study (with it); FolderLocked if another
    process works in it."""
    study = Study(config, Path(out) if out is not None else default_out_dir(), command, progress, execution,
                  resume)
    study.run()
    return study
