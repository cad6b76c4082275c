"""The study's tasks on a Dask cluster (the optional extra: `pip install 'minidl[dask]'`).

    runner = DaskRunner(spec, out, workers=4)              # a LocalCluster of 4 single-task processes
    runner = DaskRunner(spec, out, scheduler="tcp://host:8786")   # an existing cluster (dask-jobqueue...)

Only `minidl reproduce --workers/--scheduler` imports this module (and so dask). Each task runs
`tasks.execute_on_worker`: the worker loads the data itself from the DataSpec (fingerprint checked) and
writes its run's checkpoints into `<out>/checkpoints/`, so `out` must be a folder every worker sees (checked
at start). A task whose worker dies or that raises is submitted again under a fresh key (Dask may return a
stale result for a key that failed before) and continues from its checkpoint, until the run has
failed `max_attempts` times (starts the study stopped do not count: tasks.py). Progress comes from the
workers as events on `tasks.PROGRESS_TOPIC`. A scheduler that goes away stops the study with SchedulerLost
(Dask cancels every task of a lost connection and would leave new ones waiting forever).
"""
from __future__ import annotations

import contextlib
import logging
import os
import queue
import uuid
from pathlib import Path

from distributed import Client, LocalCluster

from minidl.experiments.runners import SchedulerLost
from minidl.interrupts import interrupts_held
from minidl.experiments.tasks import (PROGRESS_TOPIC, TooManyAttempts, check_shared_folder, execute_on_worker,
                                      failed_attempts, measure_on_worker, read_attempts, release_attempt)

CHECK_SECONDS = 1.0      # how often a wait for tasks checks that the client still has its scheduler
CONNECT_SECONDS = 10.0   # how long `check_scheduler` waits for a scheduler's answer
EXPECTED_ADDRESS = "expected [tcp://]host:port as a Dask scheduler prints it, e.g. tcp://10.0.0.5:8786"


def check_address(address: str) -> str:
    """`address` if it has the form of a scheduler address another process connects to: [scheme://]host:port,
    the scheme one distributed knows (tcp when none); else ValueError saying what is wrong. No connection."""
    from distributed.comm import parse_address, parse_host_port
    from distributed.comm.registry import backends, get_backend

    scheme, location = parse_address(address)
    try:
        get_backend(scheme)
    except ValueError:
        raise ValueError(f"unknown scheme {scheme!r} in {address!r} (distributed knows "
                         f"{', '.join(sorted(backends))}); {EXPECTED_ADDRESS}") from None
    if scheme == "inproc":
        raise ValueError(f"{address!r} lives inside the process that made it; {EXPECTED_ADDRESS}")
    try:
        host, port = parse_host_port(location)
    except ValueError:
        host, port = "", 0
    if not host or not port:
        raise ValueError(f"{EXPECTED_ADDRESS}; got {address!r}")
    if not 0 < port < 65536:
        raise ValueError(f"port {port} of {address!r} is not in 1-65535")
    return address


def check_scheduler(address: str, seconds: float | None = None) -> None:
    """ValueError (one line) unless a Dask scheduler answers at `address` within `seconds` (default
    CONNECT_SECONDS). The command asks before it makes the study's folder: an unreachable scheduler failed
    the study only once it had started, leaving a "failed" folder that a new run refused as not empty."""
    import asyncio

    from distributed.comm import connect
    from distributed.core import send_recv
    from distributed.security import Security

    seconds = CONNECT_SECONDS if seconds is None else seconds

    async def identity():        # with the cluster's TLS settings from the Dask config, as Client uses them
        comm = await connect(address, **Security().get_connection_args("client"))
        try:
            return await send_recv(comm, op="identity", reply=True)
        finally:
            comm.abort()

    try:            # wait_for: a server that accepts and never speaks kept even Client(timeout=...) waiting
        answer = asyncio.run(asyncio.wait_for(identity(), seconds))
    except asyncio.TimeoutError:
        raise ValueError(f"--scheduler {address}: no Dask scheduler answered within {seconds:g} s (is it running, "
                         "and is this the address it printed?)") from None
    except Exception as error:      # reset, or not Dask's protocol (a length read as 3 EiB: MemoryError)
        raise ValueError(f"--scheduler {address} does not answer as a Dask scheduler ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else ''})") from None
    kind = answer.get("type") if isinstance(answer, dict) else None
    if kind != "Scheduler":
        raise ValueError(f"--scheduler {address} is a Dask {kind or 'endpoint'}, not a scheduler")


class TaskFailed(RuntimeError):
    """A task failed `max_attempts` times (or cannot be attempted again); the message says why."""


class DaskRunner:
    """Run the study's tasks on a Dask cluster (see the module docstring and `runners.py`)."""

    def __init__(self, spec, out, workers: int | None = None, scheduler: str | None = None,
                 threads_per_run: int = 1, max_attempts: int = 3):
        self.spec, self.out = spec, Path(out).resolve()
        self.threads, self.max_attempts = threads_per_run, max_attempts
        self.cluster = None
        environment = dict(os.environ)
        if scheduler is not None:
            try:
                self.client = Client(scheduler, timeout="30s")
            except OSError as error:         # gone, or not there yet
                raise SchedulerLost(f"cannot reach the Dask scheduler at {scheduler} ({error}); --resume continues "
                                    "the study") from None
        else:
            # no dashboard; the scheduler's HTTP server (health, metrics) on a free port: on 8787, taken by
            # another study or a Dask dashboard, it warned "Port 8787 is already in use". Workers' logs off:
            # a run that failed is said in one line by the study ("Compute Failed" came with a traceback).
            from distributed.deploy.spec import SpecCluster

            others = set(SpecCluster._instances)
            try:
                self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                            dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
                                            silence_logs=logging.CRITICAL)
                self.client = Client(self.cluster)
            except BaseException:           # Ctrl-C or SIGTERM while it started
                for cluster in set(SpecCluster._instances) - others:
                    _close_quietly(cluster)
                raise
        _restore(environment)       # the Nanny writes its workers' settings into this process's environment
        self.address = self.client.scheduler.address      # kept: the client forgets it once closed
        try:
            self.workers = self.client.scheduler_info()["workers"]
            self.parallel = max(1, sum(w.get("nthreads", 1) for w in self.workers.values()))
            self._check_shared_folder()
        except BaseException:
            self.close()
            raise
        self._on_progress = None
        self.client.subscribe_topic(PROGRESS_TOPIC, self._progress_event)

    def _check_shared_folder(self) -> None:
        token = f".minidl-shared-check-{uuid.uuid4().hex}"
        marker = self.out / token
        marker.write_text("written by the client of a minidl study; removed at once")
        try:
            answers = self.client.run(check_shared_folder, str(self.out), token)
        finally:
            marker.unlink(missing_ok=True)
        problems = [f"{worker}: {problem}" for worker, problem in answers.items() if problem]
        if problems:
            raise TaskFailed(f"--out {self.out} must be a folder every worker shares (a network file system): "
                             + "; ".join(problems))

    def _progress_event(self, event) -> None:
        _, message = event
        if self._on_progress is not None:
            self._on_progress(message["task"], message["done"])

    def seconds_per_update(self, config) -> float:
        """Seconds per training update of the study's nets, measured on a worker."""
        finished = queue.Queue()
        future = self.client.submit(measure_on_worker, self.spec, config, tuple(config.activations),
                                    key=f"minidl-speed-{uuid.uuid4().hex}", pure=False)
        future.add_done_callback(finished.put)
        self._next_finished(finished)
        try:
            return future.result()
        except Exception as error:
            self._check_scheduler(error)
            raise

    def run(self, tasks, on_progress):
        """Yield (task, record) as the tasks finish; resubmit failures (fresh key) up to max_attempts."""
        from dataclasses import replace

        self._on_progress = on_progress
        tasks = [replace(task, threads=self.threads, max_attempts=self.max_attempts) for task in tasks]
        submitted = {task.name: 0 for task in tasks}
        running = {}                                     # future -> task
        finished = queue.Queue()                         # futures as they finish (put by Dask's callback thread)
        try:
            for task in tasks:
                running[self._submit(task, submitted, finished)] = task
            while running:
                future = self._next_finished(finished)
                task = running[future]          # dropped only once it is known not stopped by a lost scheduler
                try:
                    record = future.result()
                except TooManyAttempts as error:
                    del running[future]
                    raise TaskFailed(str(error)) from None
                except Exception as error:          # the worker died (KilledWorker), the task raised, or Dask
                    self._check_scheduler(error)    # cancelled it when the scheduler went away
                    del running[future]
                    failed = max(submitted[task.name], failed_attempts(read_attempts(task)))
                    if failed >= self.max_attempts:
                        raise TaskFailed(f"{task.name} failed {failed} times (--max-attempts "
                                         f"{self.max_attempts}); last error: {type(error).__name__}: {error}") \
                            from None
                    running[self._submit(task, submitted, finished)] = task
                    continue
                del running[future]
                yield task, record
        finally:                        # the study stops (or all is done): what still runs was stopped by it
            self._on_progress = None
            self._cancel(running)
            with interrupts_held():     # a second Ctrl-C here would leave a stopped start counted as failed
                for future, task in running.items():
                    release_attempt(task, future.key)

    def _submit(self, task, submitted, finished: queue.Queue):
        submitted[task.name] += 1
        key = f"minidl-{task.name}-{submitted[task.name]}-{uuid.uuid4().hex[:8]}"
        future = self.client.submit(execute_on_worker, task, self.spec, key, key=key, pure=False, retries=0)
        future.add_done_callback(finished.put)
        return future

    def _next_finished(self, finished: queue.Queue):
        """The next future put in `finished`, checking every CHECK_SECONDS that the scheduler is still there."""
        while True:
            try:
                return finished.get(timeout=CHECK_SECONDS)
            except queue.Empty:
                self._check_scheduler()

    def _check_scheduler(self, error: BaseException | None = None) -> None:
        """SchedulerLost if the client lost its scheduler: Dask then cancels every future ("scheduler-connection-
        lost"), tries to reconnect and closes the client; a task submitted meanwhile would wait forever."""
        if self.client.status != "running" or getattr(error, "reason", None) == "scheduler-connection-lost":
            raise SchedulerLost(f"lost the Dask scheduler at {self.address}: the runs under way stopped; "
                                "--resume continues the study") from None

    def _cancel(self, running: dict) -> None:
        """Cancel the tasks still running (the study stops). Best effort: on a client that lost its scheduler
        cancel raises (ClosedClientError, CommClosedError...), which must not hide why the study stops (a
        Ctrl-C was reported as a failure)."""
        if running and self.client.status == "running":
            with contextlib.suppress(Exception):
                self.client.cancel(list(running))

    def describe(self) -> dict:
        return {"runner": "dask", "scheduler": self.address, "local_cluster": self.cluster is not None,
                "workers": len(self.workers), "parallel_runs": self.parallel, "threads_per_run": self.threads,
                "max_attempts": self.max_attempts}

    def close(self) -> None:
        # a client that lost its scheduler logs the end of its reconnection attempt as an error with a
        # traceback; the study says what happened in one line
        lost = self.client.status != "running"
        try:
            with _silenced("distributed.client") if lost else contextlib.nullcontext():
                self.client.close()
        finally:
            if self.cluster is not None:
                import dask

                # closing the cluster asks its scheduler to close the workers: a lost one in 2 s, not 30
                quick = {"distributed.comm.timeouts.connect": "2s"} if lost else {}
                with dask.config.set(quick):
                    self.cluster.close()


def _close_quietly(cluster) -> None:
    """Close a local cluster an interruption left half started, and keep Dask's exit handler off it: that
    closed it after the study's one-line message, with an AssertionError traceback (a worker's status)."""
    cluster.shutdown_on_close = False
    with contextlib.suppress(Exception):
        cluster.close(timeout=5)


@contextlib.contextmanager
def _silenced(name: str):
    """The logger `name` disabled inside the block."""
    logger = logging.getLogger(name)
    disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = disabled


def _restore(environment: dict) -> None:
    """Make os.environ what `environment` was."""
    for key in set(os.environ) - set(environment):
        del os.environ[key]
    for key, value in environment.items():
        if os.environ.get(key) != value:
            os.environ[key] = value
