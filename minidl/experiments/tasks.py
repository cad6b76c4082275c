"""The study's training runs and learning-rate trials as pure tasks: (task, data) -> record.

A `RunTask` holds everything a run depends on (its TrainingConfig, activation, scheme, seed, lr, updates)
and where its checkpoint goes; `execute(task, data)` produces the record in any process: the net's
weights come from a generator of its own (`networks.build_network`), the minibatch order from the
loader's seed, the kernels are deterministic and never split a sum across threads, so the record is the
same serially, on a Dask worker, at any thread count, and across a checkpoint and resume (the kernel
build, recorded, is the one thing that changes the last bits). The process-wide settings a run needs
(kernel threads, malloc) are made by `execute` itself, so a task runs the same wherever it lands.

A task with a checkpoint also leaves its record beside it (`<checkpoint>.record.json`, atomically, with
its SHA-256) until the study has saved it in results.json, so a result that never reached the study (its
client was killed, or left a run going on a cluster) is kept rather than trained again.

record["execution"] (excluded, like the timing fields, when studies are compared) says how the record
came about: attempts (how often the run was started, counted in `<checkpoint>.attempts`), attempts_stopped
(of those, the starts the study itself stopped: Ctrl-C, SIGTERM, a lost scheduler, another run failing for
good; they are no failure of the run and do not count against max_attempts), the update it resumed from,
the kernel build, threads, whether malloc was tuned, host and process.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

PROGRESS_TOPIC = "minidl-progress"   # Dask event topic of the workers' progress messages
PROGRESS_SECONDS = 0.5               # at most one progress message per task this often


@dataclass(frozen=True)
class RunTask:
    """One training run ("run") or learning-rate trial ("trial") of the study."""
    name: str                     # unique in the study; names the checkpoint file
    kind: str                     # "run" | "trial"
    config: object                # the run's TrainingConfig (its update share and intervals applied)
    activation: str
    scheme: str
    seed: int
    lr: float
    updates: int
    checkpoint: str | None = None         # path of the checkpoint file (None: no checkpoints)
    checkpoint_every: int | None = None   # updates between checkpoints
    threads: int | None = None            # kernel threads (None: leave the process's setting)
    max_attempts: int | None = None       # refuse to start after this many failed starts (None: no limit)

    @property
    def monitor(self) -> bool:
        return self.kind == "run"


def run_name(activation: str, scheme: str, seed: int) -> str:
    return f"run-{activation}-{scheme}-seed{seed}"


def trial_name(activation: str, scheme: str, lr: float) -> str:
    return f"trial-{activation}-{scheme}-lr{float(lr)!r}"


class TooManyAttempts(RuntimeError):
    """A task has failed as often as its max_attempts allow (starts the study stopped not counted)."""


def _attempts_path(task: RunTask) -> Path | None:
    return Path(task.checkpoint + ".attempts") if task.checkpoint else None


def read_attempts(task: RunTask) -> dict:
    """{"attempts": starts so far, "stopped": of which the study stopped, "start": the latest start's name
    while it runs, "pid", "host"} from the task's attempts file ({"attempts": 0}: none)."""
    path = _attempts_path(task)
    try:
        return json.loads(path.read_text()) if path is not None else {"attempts": 0}
    except (FileNotFoundError, json.JSONDecodeError):
        return {"attempts": 0}


def failed_attempts(attempts: dict) -> int:
    """Starts (of a `read_attempts` answer) that ended in a failure: the run raised, its worker died, or no
    one saw it end (its client was killed). Those the study stopped do not count."""
    return attempts["attempts"] - attempts.get("stopped", 0)


def _write_attempts(path: Path, attempts: dict) -> None:
    """The attempts file, replaced atomically (a full disk leaves the old one, no temporary, and an OSError
    naming it)."""
    from minidl.serialization import write_atomically

    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(attempts).encode("utf-8")
    write_atomically(path, lambda file: file.write(text))


def _count_attempt(task: RunTask, start: str) -> int:
    """Count this start, named `start`, in the attempts file (atomically rewritten); returns its number.
    TooManyAttempts if the run has already failed max_attempts times."""
    path = _attempts_path(task)
    if path is None:
        return 1
    attempts = read_attempts(task)
    failed = failed_attempts(attempts)
    if task.max_attempts is not None and failed >= task.max_attempts:
        stopped = attempts["attempts"] - failed
        not_counted = f", {stopped} of them stopped by the study (not counted)" if stopped else ""
        times = f"{attempts['attempts']} time{'s' * (attempts['attempts'] != 1)}"
        raise TooManyAttempts(f"{task.name} was started {times} already{not_counted} "
                              f"(--max-attempts {task.max_attempts}); its last checkpoint is {task.checkpoint}")
    attempt = attempts["attempts"] + 1
    _write_attempts(path, {"attempts": attempt, "stopped": attempts.get("stopped", 0), "start": start,
                           "pid": os.getpid(), "host": socket.gethostname()})
    return attempt


def release_attempt(task: RunTask, start: str) -> None:
    """Record that the study stopped `task`'s start `start` (Ctrl-C, SIGTERM, its scheduler lost, another run
    failing for good): the run did not fail, so the start does not count against max_attempts (three Ctrl-C
    left a study that could not be resumed). Nothing if that start never began or has finished."""
    path = _attempts_path(task)
    attempts = read_attempts(task)
    if path is None or attempts.get("start") != start:
        return
    _write_attempts(path, dict(attempts, stopped=attempts.get("stopped", 0) + 1, start=None))


def undo_dask_malloc_trim() -> bool:
    """Inside a Dask worker, undo the Nanny's MALLOC_TRIM_THRESHOLD_ (64 KiB by default), which makes glibc
    return the training step's buffers to the OS after every update (a --full-shaped update took 33.3 ms
    instead of 26.7 ms in a worker here, medians, README; 16.6-18.1 vs 7.9-8.9 ms on the VM of issue 13):
    the variable is dropped from this process's environment when it is exactly Dask's own
    setting (a user's own value is left alone) and `minidl.tune_malloc()` sets the thresholds with mallopt.
    True if the thresholds were set. Never imports dask: outside a worker it does nothing."""
    from minidl.allocator import tune_malloc

    value = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    distributed = sys.modules.get("distributed")
    if value is None or distributed is None:
        return False
    import dask

    try:
        distributed.get_worker()
    except ValueError:
        return False          # not in a worker
    dask_value = dask.config.get("distributed.nanny.pre-spawn-environ", {}).get("MALLOC_TRIM_THRESHOLD_")
    if dask_value is None or str(dask_value) != value:
        return False
    del os.environ["MALLOC_TRIM_THRESHOLD_"]
    return tune_malloc()


def execute(task: RunTask, data, on_updates=None, start: str | None = None) -> dict:
    """Train `task` on `data` (a StudyData) in this process; returns its record with "execution" filled in.
    `on_updates(k)` is told of the updates done (every 10, and those a resumed run had already done).
    `start` names this start in the attempts file (the Dask key; default a fresh name)."""
    from minidl import _core
    from minidl.allocator import malloc_tuned
    from minidl.experiments.training_study import train_run

    start = start or uuid.uuid4().hex
    attempt = _count_attempt(task, start)
    try:
        undo_dask_malloc_trim()
        if task.threads is not None:
            _core.set_num_threads(task.threads)
        with _blas_limits(task.threads):
            record = train_run(data, task.config, task.activation, task.scheme, task.seed, task.lr, task.updates,
                               monitor=task.monitor, on_updates=on_updates, checkpoint=task.checkpoint,
                               checkpoint_every=task.checkpoint_every)
    except KeyboardInterrupt:           # Ctrl-C or SIGTERM (minidl.interrupts) stopped the study, not the run
        release_attempt(task, start)
        raise
    record["execution"].update({
        "task": task.name, "attempts": attempt, "attempts_stopped": read_attempts(task).get("stopped", 0),
        "kernels": _core.kernel_name(),
        "threads": _core.get_num_threads(), "malloc_tuned": malloc_tuned(), "host": socket.gethostname(),
        "pid": os.getpid()})
    if task.checkpoint is not None:
        from minidl.experiments.results import write_json_sealed

        write_json_sealed(_record_path(task), record)
        _attempts_path(task).unlink(missing_ok=True)
    return record


def _record_path(task: RunTask) -> Path:
    return Path(task.checkpoint + ".record.json")


def finished_record(task: RunTask) -> dict | None:
    """The record a finished task left beside its checkpoint (its result never reached the study: the
    client was killed, or was gone while the task ran on), or None; None too for a record file changed
    since it was written (its SHA-256 differs): the task is then trained again from the start (its
    checkpoint was removed when it finished). A record file of an earlier version (no SHA-256) is taken."""
    if task.checkpoint is None:
        return None
    from minidl.experiments.results import read_json_sealed

    return read_json_sealed(_record_path(task))


def record_fits(task: RunTask, record) -> bool:
    """Whether `record` is a finished run of `task`: its name, activation, scheme, seed, rate, planned updates
    and net. One written under other settings (a results.json or record file of another study copied in, or
    edited) is not this task's, and is run again instead of being reported beside the others."""
    c = task.config
    own = {"activation": task.activation, "scheme": task.scheme, "seed": task.seed, "lr": float(task.lr),
           "updates_planned": task.updates, "depth": c.depth, "width": c.width, "batch_size": c.batch_size}
    return (isinstance(record, dict) and isinstance(record.get("execution"), dict)
            and record["execution"].get("task") == task.name and all(record.get(k) == v for k, v in own.items()))


def record_file(task: RunTask) -> Path | None:
    """Where `task` leaves its record when it finishes (None: a task without a checkpoint leaves none)."""
    return None if task.checkpoint is None else _record_path(task)


def started(task: RunTask) -> bool:
    """Whether `task` has left a checkpoint or a finished record in its folder."""
    return task.checkpoint is not None and (Path(task.checkpoint).exists() or _record_path(task).exists())


def forget_record(task: RunTask) -> None:
    """Remove the record file once the study has saved the record in results.json (and the attempts count,
    which a start stopped as it finished may have written again)."""
    if task.checkpoint is not None:
        _record_path(task).unlink(missing_ok=True)
        _attempts_path(task).unlink(missing_ok=True)


def _blas_limits(threads):
    """A context limiting NumPy's BLAS to `threads` (None: no limit)."""
    if threads is None:
        import contextlib

        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="blas")


class _ProgressSender:
    """on_updates for a task on a Dask worker: the task's updates so far, as a worker event on
    PROGRESS_TOPIC at most every PROGRESS_SECONDS (`flush` sends the last count)."""

    def __init__(self, name: str, worker):
        self.name, self.worker, self.done, self.sent, self.last = name, worker, 0, 0, 0.0

    def __call__(self, updates: int) -> None:
        self.done += updates
        if time.monotonic() - self.last >= PROGRESS_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.done != self.sent:
            self.worker.log_event(PROGRESS_TOPIC, {"task": self.name, "done": self.done})
            self.sent, self.last = self.done, time.monotonic()


def execute_on_worker(task: RunTask, spec, start: str) -> dict:
    """`execute` on a Dask worker: the data loaded here from `spec` (a DataSpec, its fingerprint checked),
    progress sent to the client as worker events; `start`: the task's key, by which the client, if it stops
    the study, releases the start (`release_attempt`)."""
    from distributed import get_worker

    from minidl.experiments.data import load_spec

    sender = _ProgressSender(task.name, get_worker())
    record = execute(task, load_spec(spec), on_updates=sender, start=start)
    sender.flush()
    return record


def measure_on_worker(spec, config, activations) -> float:
    """Seconds per training update of the study's nets measured on a Dask worker (see `seconds_per_update`)."""
    import numpy as np

    from minidl.experiments.data import load_spec
    from minidl.experiments.training_study import seconds_per_update

    undo_dask_malloc_trim()
    data = load_spec(spec)
    return float(np.mean([seconds_per_update(data, config, a) for a in activations]))


def check_shared_folder(folder: str, token: str) -> str | None:
    """On a worker: None if `folder` holds the file `token` the client wrote (and is writable here), else
    what is wrong (the workers must share the study's folder to write checkpoints there)."""
    path = Path(folder) / token
    try:
        if not path.is_file():
            return f"{socket.gethostname()} does not see {path}"
        probe = Path(folder) / f"{token}.{socket.gethostname()}.{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        return f"{socket.gethostname()} cannot write to {folder}: {error}"
    return None
