"""The training study in the paper's setting (Glorot & Bengio 2010, Secs. 3 and 4.3; Figs. 2-4, 11-12).

Softmax output + negative log-likelihood, plain SGD on minibatches, zero biases, `depth` hidden layers of
`width` units. During training the activations of a fixed set of `monitor_examples` test images are
recorded per layer (mean, std, 2nd/50th/98th percentiles: Figs. 2-3); learning curves (train loss, test
error against updates: Figs. 11-12); activation histograms at the end (Fig. 4).
"""
from __future__ import annotations

import time

import numpy as np

from minidl import activations
from minidl.diagnostics import histogram, summarize
from minidl.experiments.networks import build_network

EVAL_CHUNK = 1000


def eval_loader(x, y):
    """The examples (x, y) in their order, in chunks of EVAL_CHUNK: what `Trainer.evaluate` takes."""
    from minidl.data.loader import DataLoader

    return DataLoader((x, y), EVAL_CHUNK, shuffle=False, seed=0)   # a seed: no draw from the global RNG


def _monitor(model, probe, x, depth):
    """Per hidden layer activation summaries on the monitored examples; also returns the raw activations."""
    import minidl as mdl

    with mdl.no_grad(), probe:
        model(mdl.tensor(x))
    return [summarize(probe.activations[i]) for i in range(depth)], [probe.activations[i] for i in range(depth)]


class RunRecorder:
    """What one training run records, fed by the Trainer's callbacks (`callbacks`).

    curve: {"updates", "train_loss" (mean minibatch loss since the previous point), "test_error" (on the
    `eval_examples` loader, by `Trainer.evaluate`)}; series: {"updates", "layers"} activation summaries
    of the monitored examples `x_monitor`; `on_updates(k)` is told of the updates done since last told;
    `recording_seconds`: the time its curve points and snapshots took (this attempt).
    """

    def __init__(self, model, probe, depth: int, x_monitor, eval_examples, on_updates=None):
        self.model, self.probe, self.depth, self.x_monitor = model, probe, depth, x_monitor
        self.eval_examples, self.on_updates = eval_examples, on_updates
        self.curve = {"updates": [], "train_loss": [], "test_error": []}
        self.series = {"updates": [], "layers": [{"mean": [], "std": [], "p2": [], "p50": [], "p98": []}
                                                 for _ in range(depth)]}
        self.losses = []      # minibatch losses since the last curve point
        self.reported = 0     # updates told to on_updates
        self.recording_seconds = 0.0

    def callbacks(self, eval_every: int, monitor_every: int | None) -> list:
        """Trainer callbacks: every loss, a curve point every `eval_every` updates, progress every 10
        updates and (unless `monitor_every` is None) a snapshot every `monitor_every` updates."""
        from minidl.training import Every

        callbacks = [Every(1, self.record_loss), Every(eval_every, self.curve_point), Every(10, self.progress)]
        if monitor_every is not None:
            callbacks.append(Every(monitor_every, self.snapshot))
        return callbacks

    def record_loss(self, trainer) -> None:
        if trainer.step > 0:
            self.losses.append(trainer.last_loss)

    def curve_point(self, trainer) -> None:
        started = time.perf_counter()
        self.curve["updates"].append(trainer.step)
        self.curve["train_loss"].append(float(np.mean(self.losses)) if self.losses else None)
        self.curve["test_error"].append(trainer.evaluate(self.eval_examples)["error"])
        self.losses.clear()
        self.recording_seconds += time.perf_counter() - started

    def snapshot(self, trainer) -> None:
        started = time.perf_counter()
        summaries, _ = _monitor(self.model, self.probe, self.x_monitor, self.depth)
        self.series["updates"].append(trainer.step)
        for layer, summary in zip(self.series["layers"], summaries):
            for key in layer:
                layer[key].append(summary[key])
        self.recording_seconds += time.perf_counter() - started

    def progress(self, trainer) -> None:
        self.report_progress(trainer.step)

    def report_progress(self, updates: int) -> None:
        """Tell on_updates of the updates up to `updates` not told yet."""
        if self.on_updates is not None and updates > self.reported:
            self.on_updates(updates - self.reported)
            self.reported = updates


def study_trainer(data, config, model, lr: float, seed: int, callbacks=()):
    """The study's training loop for `model`: a Trainer with plain SGD at `lr` on minibatches of
    `config.batch_size` training examples, shuffled by `seed`; no files, no bar, no log."""
    from minidl import optim
    from minidl.data.loader import DataLoader
    from minidl.training import Trainer

    optimizer = optim.SGD(model.parameters(), lr=lr)
    loader = DataLoader((data.x_train, data.y_train), config.batch_size, shuffle=True, seed=10_000 + seed,
                        drop_last=data.x_train.shape[0] >= config.batch_size)
    return Trainer(model, optimizer, loader, callbacks=callbacks, out_dir=None, progress=False, log=None)


def train_run(data, config, activation: str, scheme: str, seed: int, lr: float, updates: int,
              monitor: bool = True, on_updates=None, checkpoint=None, checkpoint_every: int | None = None) -> dict:
    """Train one net with the shared loop (minidl.training.Trainer); returns its JSON-ready record
    (layout in results.py).

    Callbacks of the loop record the monitored activations every `monitor_every` updates and a
    learning-curve point every `eval_every` updates. `on_updates(k)` is told of every 10 updates (for a
    progress bar). A non-finite loss stops the run (TrainingDiverged), recorded as diverged at that update.

    With a `checkpoint` path, the run's whole state (trainer and recorder) is written there atomically every
    `checkpoint_every` updates and when Ctrl-C stops the loop after an update; a run that finds a
    checkpoint of the same run there continues from it, to the same record as an uninterrupted run (the
    kernels are deterministic; see the README). The file is removed when the run is done.
    record["execution"]["resumed_from_update"] says where this attempt started (None: from scratch).
    """
    from minidl.training import TrainingDiverged, TrainingInterrupted

    depth = config.depth
    model, probe = build_network(data.n_inputs, depth, config.width, data.n_classes, activation, scheme, seed)
    x_monitor = data.x_test[:config.monitor_examples]
    x_eval, y_eval = data.x_test[:config.eval_examples], data.y_test[:config.eval_examples]
    recorder = RunRecorder(model, probe, depth, x_monitor, eval_loader(x_eval, y_eval), on_updates)
    callbacks = recorder.callbacks(config.eval_every, config.monitor_every if monitor else None)
    run = None
    if checkpoint is not None:
        run = RunCheckpoint(checkpoint, _run_identity(data, config, activation, scheme, seed, lr, updates, monitor),
                            recorder, checkpoint_every or updates)
        callbacks = run.around(callbacks)
    trainer = study_trainer(data, config, model, lr, seed, callbacks)
    resumed_from = run.load(trainer) if run is not None else None
    start_time = time.perf_counter()
    diverged_at = None
    try:
        trainer.fit(updates=updates)
    except TrainingDiverged as error:
        diverged_at = error.step
    except TrainingInterrupted as error:
        if run is None:
            raise
        raise run.interrupted(trainer, error) from None
    train_seconds = time.perf_counter() - start_time
    done = trainer.step
    if diverged_at is None and recorder.curve["updates"][-1] != done:
        recorder.curve_point(trainer)
    recorder.report_progress(updates)        # a diverged run still completes its share of the bar

    record = {
        "activation": activation, "scheme": scheme, "seed": seed, "lr": lr,
        "depth": depth, "width": config.width, "batch_size": config.batch_size,
        "updates_planned": updates, "updates_done": done, "diverged_at": diverged_at,
        "train_seconds": train_seconds, "recording_seconds": recorder.recording_seconds,
        "updates_per_second": (done - (resumed_from or 0)) / train_seconds if train_seconds > 0 else None,
        "curve": recorder.curve,
    }
    if diverged_at is None:
        record["final_test_error"] = trainer.evaluate(eval_loader(data.x_test, data.y_test))["error"]
        record["final_validation_error"] = trainer.evaluate(
            eval_loader(data.x_valid[:2000], data.y_valid[:2000]))["error"]
    else:
        record["final_test_error"] = None
        record["final_validation_error"] = None
    if monitor:
        if diverged_at is None and recorder.series["updates"][-1] != done:
            recorder.snapshot(trainer)
        record["monitor"] = recorder.series
        _, raw = _monitor(model, probe, x_monitor, depth)
        value_range = activations.get(activation).histogram_range(raw)
        record["final_histograms"] = [histogram(a, value_range, config.bins) for a in raw] \
            if diverged_at is None else None
    record["execution"] = {"resumed_from_update": resumed_from}
    if run is not None:
        run.remove()
    return record


def _run_identity(data, config, activation, scheme, seed, lr, updates, monitor) -> dict:
    """What a checkpoint must match to be continued by a run (JSON-able)."""
    import dataclasses

    settings = {k: v for k, v in dataclasses.asdict(config).items()
                if k in ("depth", "width", "batch_size", "monitor_examples", "monitor_every", "eval_every",
                         "eval_examples", "bins")}
    return {"activation": activation, "scheme": scheme, "seed": int(seed), "lr": float(lr), "updates": int(updates),
            "monitor": bool(monitor), "examples": [int(data.x_train.shape[0]), int(data.x_test.shape[0])],
            **settings}


class RunCheckpoint:
    """One run's checkpoint file: the Trainer's and the RunRecorder's state, tagged with the run's identity.

    `around(callbacks)` brackets the run's callbacks with two of its own: after every update the last one
    notes that the update's callbacks all ran (and every `every` updates writes the file), so an
    interruption saves the state only where it is whole.
    """

    def __init__(self, path, identity: dict, recorder: RunRecorder, every: int):
        from pathlib import Path

        self.path, self.identity, self.recorder, self.every = Path(path), identity, recorder, every
        self.whole_at = None      # the update after which every callback ran

    def around(self, callbacks: list) -> list:
        from minidl.training import Every

        def begin(trainer):
            self.whole_at = None

        def end(trainer):
            self.whole_at = trainer.step
            if trainer.step % self.every == 0:
                self.save(trainer)

        return [Every(1, begin)] + list(callbacks) + [Every(1, end)]

    def save(self, trainer) -> None:
        from minidl.training import save_checkpoint

        if trainer.step == 0:
            return
        recorder = self.recorder
        state = {"run": self.identity, "trainer": trainer.state_dict(),
                 "recorder": {"curve": recorder.curve, "series": recorder.series,
                              "losses": np.asarray(recorder.losses, dtype=np.float64)}}
        save_checkpoint(state, self.path)

    def interrupted(self, trainer, error):
        """The TrainingInterrupted to raise for `error`, after saving the state if it is whole."""
        from minidl.training import TrainingInterrupted

        if self.whole_at == trainer.step and str(error).startswith("training interrupted"):
            self.save(trainer)
            return TrainingInterrupted(f"run interrupted after update {trainer.step}; checkpoint saved to "
                                       f"{self.path}", trainer.step, self.path)
        saved = f"the last checkpoint, {self.path}, stays" if self.path.exists() else "no checkpoint was written"
        return TrainingInterrupted(f"run interrupted at update {trainer.step} in the middle of an update; "
                                   f"{saved}", trainer.step, self.path if self.path.exists() else None)

    def load(self, trainer) -> int | None:
        """Continue from the file if there is one (returns its update count), else None."""
        from minidl.training import load_checkpoint

        if not self.path.exists():
            return None
        state = load_checkpoint(self.path)
        if state.get("run") != self.identity:
            raise ValueError(f"{self.path} is the checkpoint of another run ({state.get('run')}), not of "
                             f"{self.identity}; move it away to start this run afresh")
        trainer.load_state_dict(state["trainer"], source=str(self.path))
        saved, recorder = state["recorder"], self.recorder
        recorder.curve, recorder.series = saved["curve"], saved["series"]
        recorder.losses = [float(v) for v in saved["losses"]]
        recorder.report_progress(trainer.step)
        self.whole_at = trainer.step
        return trainer.step

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def seconds_per_update(data, config, activation: str, warmup: int = 10, timed: int = 30) -> float:
    """Measured wall time of one update of the study's training loop (`study_trainer`) on the study's net
    (`activation`, Xavier init, lr 1e-6): the mean over `timed` updates after `warmup` updates. Not lr 0: SGD
    applies a weight gradient as a GEMM epilogue W <- W - lr·XᵀdY, which skips its products when lr is 0, so
    an update at lr 0 took 13.7 ms where the runs then took 18 (issue 15, 2026-12-01); a tiny lr costs what
    any lr does and cannot diverge."""
    from minidl.training import Every

    if timed < 1:
        raise ValueError(f"seconds_per_update: timed must be at least 1, got {timed}")
    model, _ = build_network(data.n_inputs, config.depth, config.width, data.n_classes, activation,
                             "xavier_uniform", seed=0)
    marks = {}       # update count -> time when it was reached

    def mark(trainer):
        if trainer.step in (warmup, warmup + timed):
            marks[trainer.step] = time.perf_counter()

    study_trainer(data, config, model, lr=1e-6, seed=0, callbacks=[Every(1, mark)]).fit(updates=warmup + timed)
    return (marks[warmup + timed] - marks[warmup]) / timed


def search_learning_rate(data, config, activation: str, scheme: str, on_updates=None) -> dict:
    """The paper's choice of learning rate, on a short budget: for each lr of the grid, train
    `lr_search_updates` updates (seed 0) and keep the lr with the lowest validation error (a diverged
    run counts as error 1). Returns {"grid", "validation_error", "updates", "chosen"}."""
    trials = [train_run(data, config, activation, scheme, seed=0, lr=lr, updates=config.lr_search_updates,
                        monitor=False, on_updates=on_updates) for lr in config.lr_search_grid]
    return choose_learning_rate(config, trials)


def choose_learning_rate(config, trials: list) -> dict:
    """The search's result from its trials' records (one per lr of `config.lr_search_grid`, any order):
    the lr with the lowest validation error, a diverged trial counting as error 1; ties go to the first
    lr of the grid."""
    error_of = {float(t["lr"]): 1.0 if t["final_validation_error"] is None else t["final_validation_error"]
                for t in trials}
    grid = [float(lr) for lr in config.lr_search_grid]
    missing = [lr for lr in grid if lr not in error_of]
    if missing:
        raise ValueError(f"learning-rate search: no trial for lr {missing}")
    errors = [error_of[lr] for lr in grid]
    return {"grid": list(config.lr_search_grid), "validation_error": errors,
            "updates": config.lr_search_updates, "chosen": grid[int(np.argmin(errors))]}
