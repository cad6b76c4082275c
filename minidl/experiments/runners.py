"""Where the study's tasks run: `SerialRunner` (this process, one after another; the default) and
`minidl.experiments.dask_runner.DaskRunner` (a Dask cluster). Both take the same calls:

    runner.seconds_per_update(config)   speed of the study's nets where the runs execute
    runner.parallel                     how many runs execute at once
    for task, record in runner.run(tasks, on_progress):   records as they finish (any order)
    runner.describe()                   what results["execution"] records; runner.close()

`on_progress(task_name, done)` is told a task's updates done so far. A runner whose Dask scheduler goes
away raises SchedulerLost from `run` (or `seconds_per_update`).
"""
from __future__ import annotations

import numpy as np


class SchedulerLost(RuntimeError):
    """The Dask scheduler the study's tasks ran on went away (killed, its allocation ended, its machine gone)
    or cannot be reached. Nothing is wrong with the study: `--resume` continues it once a scheduler is up.
    Defined here, not in dask_runner.py, so that the command can catch it without importing Dask."""


class SerialRunner:
    """Run every task in this process, in order, on `threads` kernel threads (None: the process's)."""

    parallel = 1

    def __init__(self, data, threads: int | None = None):
        self.data, self.threads = data, threads
        if threads is not None:
            from minidl import _core

            _core.set_num_threads(threads)

    def seconds_per_update(self, config) -> float:
        """Seconds per training update of the study's nets, averaged over the training activations."""
        from minidl.experiments.training_study import seconds_per_update

        return float(np.mean([seconds_per_update(self.data, config, a) for a in config.activations]))

    def run(self, tasks, on_progress):
        from minidl.experiments.tasks import execute

        for task in tasks:
            done = 0

            def told(updates, name=task.name):
                nonlocal done
                done += updates
                on_progress(name, done)

            yield task, execute(task, self.data, on_updates=told)

    def describe(self) -> dict:
        from minidl import _core

        return {"runner": "serial", "threads_per_run": self.threads or _core.get_num_threads()}

    def close(self) -> None:
        pass
