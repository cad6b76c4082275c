"""The training loop shared by `minidl train` and the Glorot & Bengio experiments.

    trainer = Trainer(model, optimizer, train_loader, eval_loaders={"val": val_loader, "test": test_loader},
                      out_dir="runs/x", callbacks=[Every(100, record_stats)])
    trainer.fit(epochs=10)            # or fit(updates=50_000), or both (whichever comes first)
    Trainer(...same objects...).resume().fit(epochs=10)   # continues exactly where a run stopped

One update = zero_grad, forward, loss, backward, optimizer.step on one minibatch. After each update the
callbacks whose `every` divides the update count run (also once before the first update, at step 0).
At the end of each epoch: evaluation on every eval loader (mean loss and error rate), `scheduler.step()`
(`scheduler.step(record[monitor])` for ReduceLROnPlateau), one JSON line appended to out_dir/metrics.jsonl,
and out_dir/checkpoint.npz rewritten atomically (model, optimizer, scheduler, loader position, minidl's
global RNG, running sums of the epoch). The final weights go to out_dir/model.npz.

A metrics record: {"epoch", "step" (updates so far), "complete" (false for the partial epoch a run
stopped in by `updates`), "train_loss", "train_error" (means over the epoch's minibatches, each measured
when it was trained on), "<name>_loss", "<name>_error" for each eval loader, "train_seconds" (time in
updates, evaluation excluded), "samples_per_s"}.

Failure handling:
- a NaN/inf loss stops before that update is applied and raises TrainingDiverged naming the update and
  the last good checkpoint (which is left untouched); the last update's effect, which no later loss
  checks, is checked before anything is written: a non-finite parameter or evaluation loss at the end of
  an epoch (or of the run) raises TrainingDiverged too, and no checkpoint, metrics line or model.npz is
  written from that state;
- Ctrl-C (SIGINT) or SIGTERM (what `kill`, `timeout`, Slurm and systemd send) stops after the current
  update, writes a checkpoint and raises TrainingInterrupted (a KeyboardInterrupt) whose message says how
  to resume; a second signal aborts at once. A KeyboardInterrupt raised by a callback is handled the same way;
  one raised in an update's forward or backward pass (the second signal, say) first undoes what that pass
  changed (BatchNorm's running statistics, Dropout's draws from minidl's RNG), so the checkpoint holds the
  state after the update before it (one in the optimizer step saves nothing: half an update is not a state);
- overflow in a diverging update or evaluation prints no NumPy warning: the loss check above reports it.
Resuming restores everything the run depends on, so a resumed run produces the same numbers as an
uninterrupted one with the same seed (same threads, same machine: the kernels are deterministic).
"""
from __future__ import annotations

import functools
import math
import os
import reprlib
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

import minidl as mdl
from minidl.nn import functional
from minidl.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
from minidl.random import generator
from minidl.data.loader import DataLoader
from minidl.training.checkpoint import load_checkpoint, pack_checkpoint, write_checkpoint
from minidl.training.metrics import append_record, check_order, keep_until_step, read_records

__all__ = ["Trainer", "Every", "evaluate", "saved_progress", "TrainingDiverged", "TrainingInterrupted"]

CHECKPOINT_FILE = "checkpoint.npz"
MODEL_FILE = "model.npz"
METRICS_FILE = "metrics.jsonl"


def saved_progress(out_dir) -> list[str]:
    """What a run saved in `out_dir`, in words, beyond the one metrics record a run that died writing its first
    checkpoint leaves: a run starting over at update 0 there would destroy it. MetricsError on a damaged line."""
    out_dir = Path(out_dir)
    saved = [name for name in (CHECKPOINT_FILE, MODEL_FILE) if (out_dir / name).exists()]
    records = read_records(out_dir / METRICS_FILE)
    if len(records) > 1:
        saved.append(f"{len(records)} records in {METRICS_FILE}")
    return saved


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the update and the last good checkpoint."""

    def __init__(self, message: str, step: int, checkpoint: Path | None):
        super().__init__(message)
        self.step, self.checkpoint = step, checkpoint


class TrainingInterrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C or SIGTERM); `checkpoint` is where the state was saved (None if not)."""

    def __init__(self, message: str, step: int, checkpoint: Path | None):
        super().__init__(message)
        self.message, self.step, self.checkpoint = message, step, checkpoint

    def __str__(self) -> str:
        return self.message


class Every:
    """A callback: call `fn(trainer)` after every `every`-th update (and once at update 0)."""

    def __init__(self, every: int, fn: Callable[["Trainer"], None]):
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"Every: `every` must be a positive int, got {every!r}")
        self.every, self.fn = every, fn

    def __call__(self, trainer: "Trainer") -> None:
        self.fn(trainer)


def _quiet_overflow(method):
    """Run `method` with NumPy's overflow/invalid/divide warnings off: a diverging net trips them on
    every op, and the non-finite loss check (TrainingDiverged) is the one report the user needs."""
    @functools.wraps(method)
    def quiet(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return method(*args, **kwargs)
    return quiet


def _valid_sums(sums) -> bool:
    """Whether `sums` has the keys of Trainer._empty_sums with values a run can reach."""
    if not isinstance(sums, dict) or sums.keys() != {"loss", "correct", "examples", "seconds"}:
        return False
    number = (int, float, np.integer, np.floating)
    if any(isinstance(value, (bool, np.bool_)) or not isinstance(value, number) for value in sums.values()):
        return False
    counts = [sums["correct"], sums["examples"]]
    return (all(isinstance(count, (int, np.integer)) for count in counts) and 0 <= counts[0] <= counts[1]
            and math.isfinite(sums["loss"]) and math.isfinite(sums["seconds"]) and sums["seconds"] >= 0)


def _default_loss(logits, targets):
    return functional.cross_entropy(logits, targets)


def _correct(logits, y: np.ndarray) -> int:
    """How many rows of ``logits`` (batch, classes) have their argmax at the label; ValueError naming the
    shape for other outputs (one value per example: AxisError from inside NumPy, after the update)."""
    scores = np.asarray(logits.data)
    if scores.ndim != 2 or scores.shape[0] != len(y):
        raise ValueError(f"the error rate is the argmax over classes: the model's outputs must be (batch "
                         f"{len(y)}, classes), got shape {scores.shape}")
    return int((scores.argmax(axis=1) == y).sum())


def evaluate(model, loader: DataLoader, loss_fn=None) -> dict:
    """Mean loss and error rate (fraction misclassified, argmax of the outputs) of `model` over `loader`.

    Runs under `mdl.no_grad()` in eval mode and restores each submodule's previous mode (a BatchNorm kept
    in eval mode inside a training model stays frozen, as Lightning's evaluation loop keeps it).
    Returns {"loss": float, "error": float, "examples": int}.
    """
    loss_fn = loss_fn or _default_loss
    was_training = getattr(model, "training", True)
    modes = [(module, module.training) for module in model.modules()] if hasattr(model, "modules") else None
    model.eval()
    total_loss, wrong, count = 0.0, 0, 0
    try:
        with mdl.no_grad():
            for x, y in loader.batches(0):
                logits = model(mdl.Tensor(x))
                total_loss += float(loss_fn(logits, y).item()) * len(y)
                wrong += len(y) - _correct(logits, y)
                count += len(y)
    finally:
        if modes is not None:
            for module, mode in modes:
                object.__setattr__(module, "training", mode)    # as train() sets it, children untouched
        elif was_training:
            model.train()
    if count == 0:
        raise ValueError("evaluate: the loader yields no examples")
    return {"loss": total_loss / count, "error": wrong / count, "examples": count}


class _StopSignals:
    """While active (main thread only), the first Ctrl-C or SIGTERM sets `requested` instead of stopping
    (a signal the process ignores, as ``cmd &`` in a script ignores Ctrl-C, stays ignored).

    The handlers in place before are put back at once, so a second signal acts as it would have (Ctrl-C
    raises KeyboardInterrupt, SIGTERM ends the process).
    """

    NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}

    def __init__(self):
        self.requested, self._previous = None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.NAMES:
                if signal.getsignal(signum) not in (None, signal.SIG_IGN):  # set outside Python, or ignored
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = self.NAMES[signum]
        self._restore()
        # Raw write to fd 2: printing through sys.stderr here could re-enter a write in progress.
        os.write(2, f"\n{self.requested}: stopping after this update and saving a checkpoint "
                    f"(a second one aborts now)\n".encode())

    def _restore(self):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    def __exit__(self, *exc):
        self._restore()
        return False


class Trainer:
    """Trains `model` with `optimizer` on minibatches from `train_loader` (see the module docstring).

    Args:
        model: an nn.Module mapping x (B, D) to logits (B, C).
        optimizer: an optim optimizer over the model's parameters (with state_dict/load_state_dict).
        train_loader: a minidl.data.DataLoader; its (seed, epoch) fixes every epoch's order.
        loss_fn: loss_fn(logits, targets) -> scalar Tensor (default: nn.functional.cross_entropy).
        eval_loaders: {name: DataLoader} evaluated after every epoch, e.g. {"val": ..., "test": ...}.
        out_dir: folder for metrics.jsonl, checkpoint.npz and model.npz; None writes nothing. One run's:
            fit refuses a folder holding another run's files unless this trainer resumed it (or started over).
        callbacks: objects with `every` and `__call__(trainer)` (see Every), run after updates.
        progress: show a tqdm bar (loss, samples/s); `position` places it (for nested bars).
        scheduler: an optim.lr_scheduler schedule of `optimizer`, stepped once at the end of every complete
            epoch, after its evaluation (PyTorch's loop; a callback at every len(train_loader) updates would
            also step it at update 0, before any training, and leave it out of the checkpoints).
        monitor: the metrics key a ReduceLROnPlateau scheduler is stepped with, e.g. "val_loss" (required
            for it, as in Lightning; refused for other schedulers).
        log: function taking one line of text per epoch (default print; None for silence).
        resume_hint: how to resume, quoted in the Ctrl-C message (default: Trainer.resume()).
        run_settings: what defines the run (a JSON-able dict, e.g. a command line's settings), saved in every
            checkpoint (one that cannot be stored is refused here); after resume(), `saved_run_settings` is the
            checkpoint's (None if it has none), for the caller to compare with its own.
    Attributes: step (updates done), epoch (epochs completed), batch (batches done in the current
    epoch), last_loss, history (the metrics records), last_checkpoint (path or None),
    last_checkpoint_step (the update count it holds).
    """

    def __init__(self, model, optimizer, train_loader: DataLoader, *, loss_fn=None, eval_loaders=None,
                 out_dir=None, callbacks=(), scheduler=None, monitor: str | None = None,
                 progress: bool = True, position: int | None = None,
                 log: Callable[[str], None] | None = print, resume_hint: str | None = None,
                 run_settings: dict | None = None):
        if not isinstance(train_loader, DataLoader):
            raise TypeError(f"Trainer: train_loader must be a minidl.data.DataLoader, got {type(train_loader).__name__}")
        if len(train_loader) == 0:
            raise ValueError("Trainer: the training loader yields no batches")
        for callback in callbacks:
            if not callable(callback) or not isinstance(getattr(callback, "every", None), int) or callback.every < 1:
                raise TypeError(f"Trainer: each callback needs a positive int `every` and to be callable; got {callback!r}")
        self.model, self.optimizer, self.train_loader = model, optimizer, train_loader
        self.loss_fn = loss_fn or _default_loss
        self.eval_loaders = dict(eval_loaders or {})
        for name, loader in self.eval_loaders.items():
            # "train" would write its results over the running train_loss/train_error of each record
            if not isinstance(name, str) or not name or name == "train":
                raise ValueError(f"Trainer: eval_loaders names must be non-empty strings other than 'train' (its "
                                 f"keys would overwrite the training loss and error), got {name!r}; e.g. 'train_eval'")
            if not isinstance(loader, DataLoader) or len(loader) == 0:
                raise ValueError(f"Trainer: eval_loaders[{name!r}] must be a minidl.data.DataLoader that yields "
                                 f"batches (found only after a whole epoch otherwise)")
        self.scheduler, self.monitor = scheduler, monitor
        self._check_scheduler()
        if not isinstance(run_settings, (dict, type(None))):
            raise TypeError(f"Trainer: run_settings must be a dict or None, got {type(run_settings).__name__}")
        try:
            pack_checkpoint({"run": run_settings})   # refused now, not at the first checkpoint after an epoch
        except (TypeError, ValueError) as error:
            raise type(error)(f"Trainer: run_settings cannot be stored in a checkpoint ({error})") from None
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.callbacks = list(callbacks)
        self.progress, self.position, self.log = progress, position, log
        self.resume_hint = resume_hint
        self.run_settings, self.saved_run_settings = run_settings, None
        self.step = self.epoch = self.batch = 0
        self.last_loss: float | None = None
        self.history: list[dict] = []
        self._record_due: dict | None = None
        self.last_checkpoint: Path | None = None
        self.last_checkpoint_step: int | None = None   # the update count saved in last_checkpoint
        self._sums = self._empty_sums()
        self._in_optimizer_step = False
        self._called_back_at_0 = False
        self._buffers = None           # the model's (name, buffer) pairs, listed by _restore_point once per fit
        self._bar = None
        self._owns_out_dir = False     # its files are this run's: resumed or started over there, or written by it

    def _check_scheduler(self) -> None:
        scheduler, monitor = self.scheduler, self.monitor
        if scheduler is None:
            if monitor is not None:
                raise ValueError("Trainer: monitor is for a ReduceLROnPlateau scheduler, and no scheduler was given")
            return
        if not isinstance(scheduler, (LRScheduler, ReduceLROnPlateau)):
            raise TypeError(f"Trainer: scheduler must be an optim.lr_scheduler schedule, got "
                            f"{type(scheduler).__name__}")
        if scheduler.optimizer is not self.optimizer:
            raise ValueError("Trainer: the scheduler belongs to another optimizer than the trainer's, so its steps "
                             "would not change the learning rate the trainer uses")
        keys = ["train_loss", "train_error"] + [f"{name}_{kind}" for name in self.eval_loaders
                                                for kind in ("loss", "error")]
        if isinstance(scheduler, ReduceLROnPlateau) and monitor not in keys:
            raise ValueError(f"Trainer: a ReduceLROnPlateau scheduler needs monitor=, one of {', '.join(keys)}; "
                             f"got {monitor!r}")
        if not isinstance(scheduler, ReduceLROnPlateau) and monitor is not None:
            raise ValueError(f"Trainer: monitor is for ReduceLROnPlateau; {type(scheduler).__name__}.step() "
                             f"takes no metric")

    # ----------------------------------------------------------------------------------------- files
    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / CHECKPOINT_FILE if self.out_dir is not None else None

    @property
    def metrics_path(self) -> Path | None:
        return self.out_dir / METRICS_FILE if self.out_dir is not None else None

    @staticmethod
    def _empty_sums() -> dict:
        return {"loss": 0.0, "correct": 0, "examples": 0, "seconds": 0.0}

    def _loader_signature(self) -> dict:
        loader = self.train_loader
        return {"seed": loader.seed, "batch_size": loader.batch_size, "shuffle": bool(loader.shuffle),
                "drop_last": bool(loader.drop_last), "examples": len(loader.dataset)}

    def state_dict(self) -> dict:
        """Everything a resumed run needs: model, optimizer, scheduler (None without one), position, running
        sums, global RNG; and the run's settings (run_settings) for the caller's check."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scheduler_type": type(self.scheduler).__name__ if self.scheduler is not None else None,
            "trainer": {"step": self.step, "epoch": self.epoch, "batch": self.batch, "sums": dict(self._sums)},
            "loader": self._loader_signature(),
            "rng": generator().bit_generator.state,
            "run": self.run_settings,
        }

    def load_state_dict(self, state: dict, source: str = "checkpoint") -> None:
        """Restore a `state_dict`. Every part is checked before anything changes: a part that does not fit
        this trainer, or holds values no run writes, raises ValueError naming it, and nothing is changed."""
        missing = [key for key in ("model", "optimizer", "trainer", "loader", "rng") if key not in state]
        if missing or not isinstance(state["loader"], dict):
            raise ValueError(f"{source}: not a training checkpoint (missing {', '.join(missing) or 'loader'})")
        saved, current = state["loader"], self._loader_signature()
        unshuffled = not saved.get("shuffle") and not current["shuffle"]    # its seed is never read (it was drawn)
        differences = [f"{key} {saved[key]} (now {current[key]})" for key in saved
                       if saved[key] != current.get(key) and not (key == "seed" and unshuffled)]
        if differences:
            raise ValueError(f"{source} was written with a different training loader: " + ", ".join(differences))
        position = state["trainer"]
        step, epoch, batch = (position.get(key) if isinstance(position, dict) else None
                              for key in ("step", "epoch", "batch"))
        batches = len(self.train_loader)
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (step, epoch, batch)) \
                or not (0 <= batch <= batches and epoch >= 0 and step == epoch * batches + batch):
            raise ValueError(f"{source}: its position (update {step!r}, epoch {epoch!r}, batch {batch!r}) is not "
                             f"one a run over {batches} batches per epoch can reach")
        sums = position.get("sums")
        if not _valid_sums(sums):
            raise ValueError(f"{source}: its running sums of the epoch, {reprlib.repr(sums)}, are not a run's "
                             f"(loss and seconds: finite numbers; correct <= examples: counts); nothing was changed")
        try:
            type(generator().bit_generator)().state = state["rng"]    # a scratch generator checks the state
        except (TypeError, ValueError, KeyError, OverflowError, RecursionError) as error:
            raise ValueError(f"{source}: its random generator state does not fit minidl's "
                             f"{type(generator().bit_generator).__name__} ({error}); nothing was changed") from None
        run_settings = state.get("run")                         # absent from checkpoints before it was saved
        if not isinstance(run_settings, (dict, type(None))):
            raise ValueError(f"{source}: its run settings, {reprlib.repr(run_settings)}, are not a dict; nothing was "
                             f"changed")
        scheduler_state = state.get("scheduler")               # absent from checkpoints before schedulers
        if (scheduler_state is None) != (self.scheduler is None):
            raise ValueError(f"{source} was written {'without' if scheduler_state is None else 'with'} a learning-"
                             f"rate scheduler, this trainer has {'one' if self.scheduler else 'none'}: resume with "
                             f"the scheduler it was written with; nothing was changed")
        written_with = state.get("scheduler_type")
        if self.scheduler is not None and written_with != type(self.scheduler).__name__:
            # StepLR's and CosineAnnealingLR's states have the same keys: loading one into the other went through
            raise ValueError(f"{source} was written with a {written_with} schedule, this trainer has a "
                             f"{type(self.scheduler).__name__}: resume with the schedule it was written with; "
                             f"nothing was changed")
        model_before, optimizer_before = self.model.state_dict(), self.optimizer.state_dict()
        scheduler_before = self.scheduler.state_dict() if self.scheduler is not None else None
        try:
            self.model.load_state_dict(state["model"])        # checks everything before the first copy
        except (KeyError, ValueError, TypeError, AttributeError) as error:
            text = error.args[0] if isinstance(error, KeyError) and error.args else error
            raise ValueError(f"{source}: its model state does not fit this trainer's model ({text}); "
                             f"nothing was changed") from None
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError, TypeError) as error:    # another optimizer's state: put both back
            self.model.load_state_dict(model_before)
            self.optimizer.load_state_dict(optimizer_before)
            raise ValueError(f"{source}: its optimizer state does not fit this trainer's "
                             f"{type(self.optimizer).__name__} ({error}); resume with the optimizer it was "
                             f"written with; nothing was changed") from None
        if self.scheduler is not None:
            try:
                self.scheduler.load_state_dict(scheduler_state)
            except (KeyError, ValueError, TypeError, AttributeError) as error:   # another schedule's state
                self.scheduler.load_state_dict(scheduler_before)
                self.model.load_state_dict(model_before)
                self.optimizer.load_state_dict(optimizer_before)
                raise ValueError(f"{source}: its scheduler state does not fit this trainer's "
                                 f"{type(self.scheduler).__name__} ({error}); resume with the scheduler it was "
                                 f"written with; nothing was changed") from None
        self.step, self.epoch, self.batch = int(step), int(epoch), int(batch)
        self._sums = dict(sums)
        self.saved_run_settings = run_settings
        generator().bit_generator.state = state["rng"]

    def _claim_out_dir(self) -> None:
        """Refuse an out_dir holding another run's files: this run would add its metrics to that run's and
        overwrite its checkpoint and weights. A trainer that resumed or started over there owns them."""
        if self.out_dir is None or self._owns_out_dir:
            return
        found = [name for name in (CHECKPOINT_FILE, MODEL_FILE, METRICS_FILE) if (self.out_dir / name).exists()]
        if found:
            carry_on = ("continue that run with Trainer(...).resume()" if CHECKPOINT_FILE in found else
                        "start that run over with Trainer(...).start_over() if it stopped before its first "
                        "checkpoint")
            raise ValueError(f"Trainer: {self.out_dir} already holds another run's {', '.join(found)}; {carry_on}, "
                             f"or choose another out_dir")
        self._owns_out_dir = True

    def save_checkpoint(self, path=None) -> Path:
        """Write the state atomically to `path` (default out_dir/checkpoint.npz)."""
        if path is None:
            self._claim_out_dir()
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            raise ValueError("Trainer.save_checkpoint: no path given and no out_dir set")
        return self._write_checkpoint(self._packed_state(), path)

    def _packed_state(self) -> dict:
        """The checkpoint's members (pack_checkpoint): a state that is not finite, or that cannot be stored (a
        custom optimizer's state, say), is refused here, before anything is written."""
        self._check_finite()
        return pack_checkpoint(self.state_dict())

    def _write_checkpoint(self, members: dict, path: Path) -> Path:
        write_checkpoint(members, path)
        self.last_checkpoint, self.last_checkpoint_step = path, self.step
        return path

    def resume(self, path=None, check: Callable[["Trainer"], None] | None = None) -> "Trainer":
        """Load a checkpoint (default out_dir/checkpoint.npz); metrics lines written after it are removed
        (the resumed run writes them again), each removal said through `log`. Intact earlier lines are kept;
        a damaged one raises MetricsError before anything is loaded or changed.

        `check(trainer)`, if given, runs once the checkpoint is loaded and before out_dir is touched: what it
        raises refuses the resume with every file in out_dir as it was (the caller compares the checkpoint's
        settings with its own there, since a refused resume must not cost the metrics lines it would trim);
        this trainer's model, optimizer and the global RNG then hold the checkpoint's state (loaded for the
        check): make a new trainer to start over."""
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            raise ValueError("Trainer.resume: no path given and no out_dir set")
        if not path.exists():
            raise FileNotFoundError(f"no checkpoint to resume from at {path}")
        state = load_checkpoint(path)
        if self.metrics_path is not None:
            check_order(self.metrics_path)         # a damaged line, or lines out of order, stop here
        self.load_state_dict(state, source=str(path))
        if check is not None:
            check(self)
        self.last_checkpoint, self.last_checkpoint_step = path, self.step
        self._owns_out_dir = True           # from any checkpoint: out_dir's run continues from it
        self._trim_metrics()
        return self

    def start_over(self) -> "Trainer":
        """Begin at update 0 in an out_dir whose run stopped before its first checkpoint: the metrics lines
        it may have written (at most one, when the checkpoint after it failed) are removed, and said.
        ValueError, changing nothing, if the out_dir holds more of a run (see saved_progress)."""
        if self.step != 0:
            raise ValueError(f"Trainer.start_over: this trainer is at update {self.step}, not 0")
        saved = saved_progress(self.out_dir) if self.out_dir is not None else []
        if saved:
            raise ValueError(f"Trainer.start_over: {self.out_dir} holds {' and '.join(saved)}: its run got past its "
                             f"first checkpoint; resume it, or choose another out_dir")
        self._owns_out_dir = True
        self._trim_metrics()
        return self

    def _trim_metrics(self) -> None:
        if self.metrics_path is None:
            return
        self.history, notes = keep_until_step(self.metrics_path, self.step, epochs_done=self.epoch)
        for note in notes:
            self._say(f"note: {note}")

    # ------------------------------------------------------------------------------------- training
    @_quiet_overflow
    def evaluate(self, loader: DataLoader) -> dict:
        """evaluate(self.model, loader, self.loss_fn)."""
        return evaluate(self.model, loader, self.loss_fn)

    def _say(self, text: str) -> None:
        if self.log is None:
            return
        if self._bar is not None and not self._bar.disable:
            with self._bar.external_write_mode():   # keep the bar intact around the line
                self.log(text)
        else:
            self.log(text)

    def _run_callbacks(self) -> None:
        for callback in self.callbacks:
            if self.step % callback.every == 0:
                callback(self)

    def checkpoint_note(self) -> str:
        """Where the last good state is, in words (for messages)."""
        if self.last_checkpoint is None:
            return "no checkpoint has been written" if self.out_dir is not None else \
                "checkpoints are off (no out_dir)"
        return f"last good checkpoint: {self.last_checkpoint} (after update {self.last_checkpoint_step})"

    def _restore_point(self) -> tuple:
        """What a forward pass changes besides the graph: minidl's RNG (Dropout's draws) and the model's
        buffers (BatchNorm's running statistics), for `_undo_forward`. The buffers are listed once per
        `fit` (walking every module on every update cost ~20 us, 7% of a batch-10 step's Python)."""
        if self._buffers is None:
            named_buffers = getattr(self.model, "named_buffers", None)
            self._buffers = list(named_buffers()) if named_buffers else []
        return generator().bit_generator.state, {name: b.data.copy() for name, b in self._buffers}

    def _undo_forward(self, saved: tuple) -> None:
        """Put back what the forward pass of an update that was not applied changed: a checkpoint holding
        its running statistics and RNG draws with the update count before it would make a resumed run
        (which redoes that update) differ from an uninterrupted one."""
        rng_state, buffers = saved
        generator().bit_generator.state = rng_state
        if buffers:
            self.model.load_state_dict(buffers, strict=False)

    @_quiet_overflow
    def _update(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        saved = self._restore_point()
        try:
            self.optimizer.zero_grad()
            logits = self.model(mdl.Tensor(x))
            loss = self.loss_fn(logits, y)
            value = float(loss.item())
            if not math.isfinite(value):
                raise TrainingDiverged(
                    f"loss is {value} at update {self.step + 1} (epoch {self.epoch + 1}, batch {self.batch + 1}); "
                    f"training stopped before applying it; {self.checkpoint_note()}. Try a smaller learning rate.",
                    self.step + 1, self.last_checkpoint)
            correct = _correct(logits, y)
            loss.backward()
        except BaseException:    # Ctrl-C in the forward pass, a NaN loss, a shape error: the update never was
            self._undo_forward(saved)
            raise
        self._in_optimizer_step = True   # cleared by the caller once the counters include this update
        self.optimizer.step()
        return value, correct

    def _epoch_record(self, complete: bool) -> dict:
        sums = self._sums
        examples = max(sums["examples"], 1)
        record = {
            "epoch": self.epoch + 1 if complete else self.epoch + self.batch / len(self.train_loader),
            "step": self.step,
            "complete": complete,
            "train_loss": sums["loss"] / examples,
            "train_error": 1.0 - sums["correct"] / examples,
        }
        for name, loader in self.eval_loaders.items():
            result = self.evaluate(loader)
            record[f"{name}_loss"], record[f"{name}_error"] = result["loss"], result["error"]
        record["train_seconds"] = sums["seconds"]
        record["samples_per_s"] = sums["examples"] / sums["seconds"] if sums["seconds"] > 0 else None
        return record

    def _check_finite(self, record: dict | None = None) -> None:
        """TrainingDiverged if a parameter, or an evaluation loss in ``record``, is not finite: a state that
        must not be saved or reported (the loss check before each update cannot see the last one's effect)."""
        bad = [f"parameter {name}" for name, p in self.model.named_parameters() if not np.isfinite(p.data).all()]
        bad += [f"{key} {value}" for key, value in (record or {}).items()
                if key.endswith("_loss") and isinstance(value, float) and not math.isfinite(value)]
        if bad:
            raise TrainingDiverged(
                f"training diverged by update {self.step}: {', '.join(bad[:3])}"
                f"{' ...' if len(bad) > 3 else ''} not finite; nothing was saved from this state; "
                f"{self.checkpoint_note()}. Try a smaller learning rate.", self.step, self.last_checkpoint)

    def _finish_record(self, record: dict, total_epochs: int | None) -> None:
        self._check_finite(record)
        checkpoint = None
        if self.checkpoint_path is not None:   # packed before the metrics line: a refusal writes neither
            self._claim_out_dir()
            checkpoint = self._packed_state()
        self.history.append(record)
        if self.metrics_path is not None:
            append_record(self.metrics_path, record)
        self._record_due = None
        if checkpoint is not None:
            self._write_checkpoint(checkpoint, self.checkpoint_path)
        parts = [f"train loss {record['train_loss']:.4f}", f"train error {100 * record['train_error']:.2f}%"]
        parts += [f"{name} error {100 * record[f'{name}_error']:.2f}%" for name in self.eval_loaders]
        if record["samples_per_s"]:
            parts.append(f"{record['samples_per_s']:,.0f} samples/s")
        of = f"/{total_epochs}" if total_epochs else ""
        label = f"epoch {record['epoch']}{of}" if record["complete"] else f"update {self.step} (epoch {record['epoch']:.2f})"
        self._say(f"{label}: " + ", ".join(parts))

    def _done(self, epochs, updates) -> bool:
        return (epochs is not None and self.epoch >= epochs) or (updates is not None and self.step >= updates)

    def _run_epoch(self, epochs, updates, stop: _StopSignals) -> None:
        from tqdm.auto import tqdm

        loader = self.train_loader
        per_batch = loader.batch_size
        total = len(loader.dataset) if not loader.drop_last else len(loader) * per_batch
        of = f"/{epochs}" if epochs else ""
        self._bar = tqdm(total=total, initial=min(self.batch * per_batch, total), unit="samples", unit_scale=True,
                         desc=f"epoch {self.epoch + 1}{of}", disable=not self.progress, position=self.position,
                         leave=self.position in (None, 0), dynamic_ncols=True)
        if not getattr(self.model, "training", False):
            self.model.train()   # only when off: train() would also unfreeze a submodule the user put in eval mode
        try:
            for x, y in loader.batches(self.epoch, start=self.batch):
                if stop.requested:
                    raise KeyboardInterrupt
                started = time.perf_counter()
                value, correct = self._update(x, y)
                self._sums["seconds"] += time.perf_counter() - started
                self._sums["loss"] += value * len(y)
                self._sums["correct"] += correct
                self._sums["examples"] += len(y)
                self.step, self.batch, self.last_loss = self.step + 1, self.batch + 1, value
                self._in_optimizer_step = False
                self._bar.update(len(y))
                if self.batch % 10 == 0 or self.batch == len(loader):
                    self._bar.set_postfix(loss=f"{self._sums['loss'] / self._sums['examples']:.4f}", refresh=False)
                self._run_callbacks()
                if stop.requested:
                    raise KeyboardInterrupt
                if updates is not None and self.step >= updates:
                    break
            if self.batch == len(loader):
                # Evaluate before moving the counters: an interruption here resumes at the epoch's end
                # and redoes only this bookkeeping.
                record = self._epoch_record(complete=True)
                self._record_due = record       # the counters pass it now: see _write_due_record
                self.epoch, self.batch, self._sums = self.epoch + 1, 0, self._empty_sums()
                if isinstance(self.scheduler, ReduceLROnPlateau):
                    self.scheduler.step(record[self.monitor])
                elif self.scheduler is not None:
                    self.scheduler.step()
                self._finish_record(record, epochs)
        finally:
            self._bar.close()
            self._bar = None

    def fit(self, epochs: int | None = None, updates: int | None = None) -> list[dict]:
        """Train until `epochs` epochs or `updates` updates in total are done (whichever first).

        Counts include what a resumed checkpoint already did. Returns the metrics records (history).
        """
        for name, value in (("epochs", epochs), ("updates", updates)):
            if value is not None and (not isinstance(value, (int, np.integer)) or isinstance(value, bool)
                                      or value < 0):
                raise ValueError(f"Trainer.fit: {name} must be a non-negative int, got {value!r}")
        if epochs is None and updates is None:
            raise ValueError("Trainer.fit: give epochs, updates or both")
        past_epochs = epochs is not None and (self.epoch > epochs or self.epoch == epochs and self.batch > 0)
        if past_epochs or updates is not None and self.step > updates:
            done = (f"{self.epoch} epochs" + (f" + {self.batch} batches" if self.batch else "")
                    + f" ({self.step} updates)")
            asked = " and ".join(f"{name}={value}" for name, value in (("epochs", epochs), ("updates", updates))
                                 if value is not None)
            raise ValueError(f"Trainer.fit: this run has already done {done}, past {asked}; fit can only extend "
                             f"a run (nothing was written)")
        self._buffers = None        # listed again: a buffer registered since the last fit is saved too
        self._record_due = None     # one a refused record (a divergence) left: never written later, out of order
        self._claim_out_dir()
        with _StopSignals() as stop:
            try:
                if self.step == 0 and not self._called_back_at_0:   # once, however many fit calls start at 0
                    self._run_callbacks()
                    self._called_back_at_0 = True
                while not self._done(epochs, updates):
                    self._run_epoch(epochs, updates, stop)
            except TrainingInterrupted:
                raise
            except KeyboardInterrupt:
                raise self._interrupted(stop.requested) from None
        if self.batch > 0:   # stopped mid-epoch by `updates`: summarize the partial epoch, checkpoint it
            if not (self.history and self.history[-1]["step"] == self.step):
                self._finish_record(self._epoch_record(complete=False), epochs)
        if self.out_dir is not None:
            self._check_finite()
            self.out_dir.mkdir(parents=True, exist_ok=True)
            mdl.save(self.model.state_dict(), self.out_dir / MODEL_FILE)
        return self.history

    def _write_due_record(self) -> None:
        """The record of an epoch whose end a second Ctrl-C cut short after the counters had passed it: the
        checkpoint about to be saved is past that epoch, so its record is written first (once: the append
        may have been done when the signal came)."""
        record, self._record_due = self._record_due, None
        if record is None or self.metrics_path is None:
            return
        written = read_records(self.metrics_path)
        if not written or written[-1].get("step") != record["step"]:
            append_record(self.metrics_path, record)
        if not self.history or self.history[-1] is not record:
            self.history.append(record)

    def _interrupted(self, signal_name: str | None) -> TrainingInterrupted:
        stopped = f"training interrupted ({signal_name})" if signal_name else "training interrupted"
        where = f"after update {self.step} (epoch {self.epoch + 1}, batch {self.batch}/{len(self.train_loader)})"
        if self._in_optimizer_step:
            self._in_optimizer_step = False
            return TrainingInterrupted(
                f"training aborted during a parameter update {where}; the current state is inconsistent and "
                f"was not saved; {self.checkpoint_note()}.", self.step, self.last_checkpoint)
        if self.checkpoint_path is None:
            return TrainingInterrupted(f"{stopped} {where}; checkpoints are off (no out_dir), "
                                       f"nothing was saved.", self.step, None)
        self._write_due_record()
        path = self.save_checkpoint()
        hint = self.resume_hint or f"Trainer(...).resume({str(path)!r}).fit(...)"
        return TrainingInterrupted(f"{stopped} {where}; checkpoint saved to {path}.\n"
                                   f"Resume with: {hint}", self.step, path)
