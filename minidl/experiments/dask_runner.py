"""The study's tasks on a Dask cluster (the optional extra: `pip install 'minidl[dask]'`).

    runner = DaskRunner(spec, out, workers=4)              # a LocalCluster of 4 single-task processes
    runner = DaskRunner(spec, out, scheduler="tcp://host:8786")   # an existing cluster (dask-jobqueue...)

Only `minidl reproduce --workers/--scheduler` imports this module (and so dask). Each task runs
`tasks.execute_on_worker`: the worker loads the data itself from the DataSpec (fingerprint checked) and
writes its run's checkpoints into `<out>/checkpoints/`, so `out` must be a folder every worker sees (checked
at start). A task whose worker dies or that raises is submitted again under a fresh key (Dask may return a
stale result for a key that failed before) and continues from its checkpoint, until the run has been
started `max_attempts` times. Progress comes from the workers as events on `tasks.PROGRESS_TOPIC`.
"""
from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

from distributed import Client, LocalCluster, as_completed

from minidl.experiments.tasks import (PROGRESS_TOPIC, TooManyAttempts, check_shared_folder, execute_on_worker,
                                      measure_on_worker, read_attempts)


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
            self.client = Client(scheduler, timeout="30s")
        else:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                        dashboard_address=None, silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        _restore(environment)       # the Nanny writes its workers' settings into this process's environment
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
        future = self.client.submit(measure_on_worker, self.spec, config, tuple(config.activations),
                                    key=f"minidl-speed-{uuid.uuid4().hex}", pure=False)
        return future.result()

    def run(self, tasks, on_progress):
        """Yield (task, record) as the tasks finish; resubmit failures (fresh key) up to max_attempts."""
        from dataclasses import replace

        self._on_progress = on_progress
        tasks = [replace(task, threads=self.threads, max_attempts=self.max_attempts) for task in tasks]
        submitted = {task.name: 0 for task in tasks}
        running = {}                                     # future -> task
        finished = as_completed()
        try:
            for task in tasks:
                future = self._submit(task, submitted)
                running[future] = task
                finished.add(future)
            for future in finished:
                task = running.pop(future)
                try:
                    record = future.result()
                except TooManyAttempts as error:
                    raise TaskFailed(str(error)) from None
                except Exception as error:          # the worker died (KilledWorker) or the task raised
                    started = max(submitted[task.name], read_attempts(task)["attempts"])
                    if started >= self.max_attempts:
                        raise TaskFailed(f"{task.name} failed {started} times (--max-attempts "
                                         f"{self.max_attempts}); last error: {type(error).__name__}: {error}") \
                            from None
                    retry = self._submit(task, submitted)
                    running[retry] = task
                    finished.add(retry)
                    continue
                yield task, record
        finally:
            self._on_progress = None
            if running:
                self.client.cancel(list(running))

    def _submit(self, task, submitted):
        submitted[task.name] += 1
        key = f"minidl-{task.name}-{submitted[task.name]}-{uuid.uuid4().hex[:8]}"
        return self.client.submit(execute_on_worker, task, self.spec, key=key, pure=False, retries=0)

    def describe(self) -> dict:
        return {"runner": "dask", "scheduler": self.client.scheduler.address, "local_cluster": self.cluster is not None,
                "workers": len(self.workers), "parallel_runs": self.parallel, "threads_per_run": self.threads,
                "max_attempts": self.max_attempts}

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


def _restore(environment: dict) -> None:
    """Make os.environ what `environment` was."""
    for key in set(os.environ) - set(environment):
        del os.environ[key]
    for key, value in environment.items():
        if os.environ.get(key) != value:
            os.environ[key] = value
