"""The study on a Dask LocalCluster: the same results.json as serially (timing aside), also when a worker is
SIGKILLed in the middle of a run (the run is started again, from its checkpoint); a scheduler that goes
away stops the study in one line, and it is resumed to the same results."""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("distributed", reason="Dask is not installed (pip install 'minidl[dask]')")

from minidl.cli import main  # noqa: E402
from minidl.experiments.study import comparable  # noqa: E402
from minidl.experiments.tasks import RunTask, read_attempts  # noqa: E402

from study_helpers import PACKAGE_PARENT, TINY, results_of, start_study, wait_for_checkpoint  # noqa: E402


def test_two_workers_give_the_serial_results(uninterrupted, tmp_path):
    out = tmp_path / "study"
    assert main(TINY + ["--out", str(out), "--workers", "2"]) == 0
    results = results_of(out)
    assert results["status"] == "complete" and comparable(results) == comparable(uninterrupted)
    runner = results["execution"]["invocations"][0]["runner"]
    assert runner["runner"] == "dask" and runner["workers"] == 2 and runner["threads_per_run"] == 1
    executions = [r["execution"] for r in results["training"]["runs"]]
    assert all(e["attempts"] == 1 and e["threads"] == 1 for e in executions)
    assert len({e["pid"] for e in executions} - {os.getpid()}) == 2          # both workers, not the client
    assert all(e["malloc_tuned"] for e in executions)       # the Nanny's MALLOC_TRIM_THRESHOLD_ undone
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ      # nor left in the client's environment


def test_a_run_whose_worker_is_killed_continues_from_its_checkpoint(uninterrupted, tmp_path):
    out = tmp_path / "study"
    process = start_study(TINY + ["--out", str(out), "--workers", "2"])
    checkpoint = wait_for_checkpoint(process, out)
    attempts = read_attempts(RunTask(checkpoint.stem, "run", None, "", "", 0, 0.0, 0, checkpoint=str(checkpoint)))
    assert attempts["attempts"] == 1 and attempts["pid"] != process.pid
    os.kill(attempts["pid"], signal.SIGKILL)
    _, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    results = results_of(out)
    assert results["status"] == "complete" and comparable(results) == comparable(uninterrupted)
    killed = next(r for r in results["training"]["runs"] if r["execution"]["task"] == checkpoint.stem)
    assert killed["execution"]["attempts"] == 2 and killed["execution"]["resumed_from_update"] >= 40
    assert killed["execution"]["attempts_stopped"] == 0            # a worker that died is a failed start
    assert killed["execution"]["pid"] != attempts["pid"]
    assert not (out / "checkpoints").exists()


def test_a_run_that_keeps_failing_fails_after_max_attempts_with_fresh_keys(tmp_path):
    from minidl.experiments.config import TrainingConfig
    from minidl.experiments.dask_runner import DaskRunner, TaskFailed
    from minidl.experiments.data import resolve_data

    _, spec = resolve_data("shapeset", train_examples=200)
    checkpoint = tmp_path / "checkpoints" / "run-tanh-standard-seed0.npz"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"not a checkpoint")              # every attempt to continue the run raises
    task = RunTask(checkpoint.stem, "run", TrainingConfig(depth=1, width=4, updates=5), "tanh", "standard", 0,
                   0.1, 5, checkpoint=str(checkpoint), checkpoint_every=2)
    runner = DaskRunner(spec, tmp_path, workers=1, max_attempts=2)
    keys = []
    submit = runner.client.submit
    runner.client.submit = lambda *args, **kwargs: keys.append(kwargs["key"]) or submit(*args, **kwargs)
    try:
        with pytest.raises(TaskFailed, match=r"run-tanh-standard-seed0 failed 2 times \(--max-attempts 2\)"):
            list(runner.run([task], lambda name, done: None))
    finally:
        runner.close()
    assert len(keys) == 2 and len(set(keys)) == 2
    assert read_attempts(task)["attempts"] == 2 and checkpoint.read_bytes() == b"not a checkpoint"


def test_an_existing_cluster_is_used_through_its_scheduler_address(uninterrupted, tmp_path):
    from distributed import LocalCluster

    out = tmp_path / "study"
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        assert main(TINY + ["--out", str(out), "--scheduler", cluster.scheduler_address]) == 0
    results = results_of(out)
    assert comparable(results) == comparable(uninterrupted)
    runner = results["execution"]["invocations"][0]["runner"]
    assert runner["local_cluster"] is False and runner["scheduler"] == cluster.scheduler_address


def test_workers_that_do_not_share_the_folder_are_refused(tmp_path):
    from minidl.experiments.tasks import check_shared_folder

    assert check_shared_folder(str(tmp_path), "token") == f"{os.uname().nodename} does not see {tmp_path / 'token'}"
    (tmp_path / "token").write_text("")
    assert check_shared_folder(str(tmp_path), "token") is None


@contextlib.contextmanager
def _external_cluster(folder):
    """(address, scheduler process, worker process): a `dask scheduler` on this machine and one single-threaded
    `dask worker` without a nanny (one process each, so that a kill takes it down), both killed on exit."""
    file = folder / "scheduler.json"
    processes = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                   "--port", "0", "--no-dashboard", "--scheduler-file", str(file)],
                                  cwd=PACKAGE_PARENT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not file.exists():
            assert time.monotonic() < deadline and processes[0].poll() is None, "the scheduler did not start"
            time.sleep(0.05)
        address = json.loads(file.read_text())["address"]
        processes.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads",
                                           "1", "--no-nanny", "--no-dashboard"], cwd=PACKAGE_PARENT,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        yield address, processes[0], processes[1]
    finally:
        for process in processes:
            process.kill()
            process.wait()


@pytest.mark.timeout(240)
def test_a_killed_scheduler_stops_the_study_in_one_line_and_resume_finishes_it(uninterrupted, tmp_path):
    """The client lost its scheduler and the study hung for ever, saying nothing."""
    out = tmp_path / "study"
    with _external_cluster(tmp_path) as (address, scheduler, worker):
        process = start_study(TINY + ["--out", str(out), "--scheduler", address])
        try:
            wait_for_checkpoint(process, out)
            scheduler.kill()
            _, err = process.communicate(timeout=60)
        finally:
            process.kill()
        worker.kill()                   # its run went on writing checkpoints: stopped before the resume
        worker.wait()
    assert process.returncode == 1, err
    assert len(err.splitlines()) == 1 and f"lost the Dask scheduler at {address}" in err, err
    assert f"minidl reproduce --out {out} --resume --scheduler {address}" in err
    results = results_of(out)
    assert results["status"] == "failed" and results["error"].startswith(f"SchedulerLost: lost the Dask scheduler "
                                                                         f"at {address}")
    assert main(["reproduce", "--out", str(out), "--resume", "--no-progress"]) == 0
    resumed = results_of(out)
    assert resumed["status"] == "complete" and comparable(resumed) == comparable(uninterrupted)


@pytest.mark.timeout(120)
def test_ctrl_c_is_an_interrupt_even_where_cancelling_the_tasks_fails(tmp_path):
    """Once the client had lost its scheduler, cancelling the running tasks raised ClosedClientError, and a
    Ctrl-C was reported as "the study failed"."""
    from distributed.client import ClosedClientError

    runner, task = _runner_and_long_task(tmp_path)

    def closed(*args, **kwargs):
        raise ClosedClientError("the client is closed")

    runner.client.cancel = closed
    try:
        with pytest.raises(KeyboardInterrupt):
            list(runner.run([task], _ctrl_c_once()))
    finally:
        runner.close()


@pytest.mark.timeout(180)
def test_starts_stopped_by_ctrl_c_do_not_count_against_max_attempts(tmp_path):
    """The client's Ctrl-C counted as a failed start of the runs it stopped: after --max-attempts of them
    the study could not be resumed ("started 3 times already")."""
    for _ in range(2):
        runner, task = _runner_and_long_task(tmp_path, max_attempts=1)
        try:
            with pytest.raises(KeyboardInterrupt):        # not TaskFailed: the second start is allowed
                list(runner.run([task], _ctrl_c_once()))
        finally:
            runner.close()
    attempts = read_attempts(task)
    assert attempts["attempts"] == attempts["stopped"] == 2


def _runner_and_long_task(folder, max_attempts: int = 3):
    """A DaskRunner of one worker and a task that trains far longer than a test waits."""
    from minidl.experiments.config import TrainingConfig
    from minidl.experiments.dask_runner import DaskRunner
    from minidl.experiments.data import resolve_data

    _, spec = resolve_data("shapeset", train_examples=200)
    config = TrainingConfig(depth=1, width=4, updates=10 ** 6, eval_every=10 ** 6, monitor_every=10 ** 6)
    task = RunTask("run-tanh-standard-seed0", "run", config, "tanh", "standard", 0, 0.1, 10 ** 6,
                   checkpoint=str(folder / "checkpoints" / "run-tanh-standard-seed0.npz"), checkpoint_every=10 ** 5)
    return DaskRunner(spec, folder, workers=1, max_attempts=max_attempts), task


def _ctrl_c_once():
    """on_progress that sends this process SIGINT (Ctrl-C) when the first progress arrives: the task runs."""
    sent = []

    def on_progress(name, done):
        if not sent:
            sent.append(done)
            os.kill(os.getpid(), signal.SIGINT)
    return on_progress


@pytest.mark.parametrize("address", ["tcp://", "tcp://10.0.0.5", "10.0.0.5:port", "tcp://:8786", "tcp://10.0.0.5:0",
                                     "tcp://10.0.0.5:99999", "foo://10.0.0.5:8786", "inproc://10.0.0.5/1/2"])
def test_a_malformed_scheduler_address_is_refused_by_argparse_before_any_work(tmp_path, capsys, address):
    """It failed only once the study had started, leaving a "failed" folder a new run refused as not empty."""
    out = tmp_path / "study"
    with pytest.raises(SystemExit) as exit_:
        main(TINY + ["--out", str(out), "--scheduler", address])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("minidl reproduce: error: argument --scheduler: "), err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("listening", [False, True], ids=["refused", "silent"])
def test_an_unreachable_scheduler_is_a_one_line_error_that_leaves_no_folder(tmp_path, capsys, monkeypatch,
                                                                            listening):
    """Refused: the study started and failed after Client's 30 s; silent (accepts, never answers): it hung."""
    from minidl.experiments import dask_runner

    monkeypatch.setattr(dask_runner, "CONNECT_SECONDS", 1.0)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        if listening:
            server.listen()
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        out = tmp_path / "study"
        assert main(TINY + ["--out", str(out), "--scheduler", address]) == 2
    err = capsys.readouterr().err
    assert err == f"minidl reproduce: --scheduler {address}: no Dask scheduler answered within 1 s (is it running, " \
                  "and is this the address it printed?)\n"
    assert not out.exists()


def test_every_start_a_lost_scheduler_stopped_is_released(tmp_path):
    """Dask cancels every future when the connection drops: the first one taken from the queue made the
    SchedulerLost, and its start stayed counted as failed (--max-attempts 1: --resume refused that run)."""
    from dataclasses import replace

    from minidl.experiments import dask_runner, tasks
    from minidl.experiments.runners import SchedulerLost

    class Cancelled(Exception):
        reason = "scheduler-connection-lost"

    class Future:
        def __init__(self, key):
            self.key, self.callbacks = key, []

        def add_done_callback(self, callback):
            self.callbacks.append(callback)

        def result(self):
            raise Cancelled("lost")

    class LosingClient:
        """Starts each task on 'a worker' (its attempt counted); lose() is what distributed does on a drop."""
        status = "running"

        def __init__(self):
            self.futures = []

        def submit(self, fn, task, spec, start, key, **options):
            tasks._count_attempt(task, start)
            self.futures.append(Future(key))
            return self.futures[-1]

        def lose(self):
            self.status = "connecting"
            for future in self.futures:
                for callback in future.callbacks:
                    callback(future)

        def cancel(self, futures):
            pass

    runs = [RunTask(f"run-tanh-standard-seed{seed}", "run", None, "tanh", "standard", seed, 0.1, 100,
                    checkpoint=str(tmp_path / f"run{seed}.npz")) for seed in range(2)]
    runner = object.__new__(dask_runner.DaskRunner)
    runner.client, runner.address, runner.threads, runner.max_attempts, runner.spec = \
        LosingClient(), "tcp://lost:1", 1, 1, None
    submit = runner._submit

    def submit_then_lose_after_the_last(task, submitted, finished):
        future = submit(task, submitted, finished)
        if len(runner.client.futures) == len(runs):
            runner.client.lose()
        return future
    runner._submit = submit_then_lose_after_the_last
    with pytest.raises(SchedulerLost, match="tcp://lost:1"):
        next(runner.run(runs, lambda *args: None))
    for run in runs:
        assert tasks.failed_attempts(read_attempts(run)) == 0
        tasks._count_attempt(replace(run, max_attempts=1), "resumed")       # no TooManyAttempts


def test_the_scheduler_check_connects_with_the_clusters_tls_settings(monkeypatch):
    """Client takes its TLS settings from the Dask config (Security()); the check connected without them, so
    `--scheduler tls://...` that Client reaches was refused (checked by hand against a real TLS scheduler)."""
    import distributed.comm
    import distributed.core
    from distributed.security import Security

    from minidl.experiments import dask_runner

    settings, used = {"ssl_context": "the cluster's", "require_encryption": True, "extra_conn_args": {}}, []

    class Comm:
        def abort(self):
            pass

    async def connect(address, **kwargs):
        used.append(kwargs)
        return Comm()

    async def send_recv(comm, **message):
        return {"type": "Scheduler"}

    monkeypatch.setattr(Security, "get_connection_args", lambda self, role: settings)
    monkeypatch.setattr(distributed.comm, "connect", connect)
    monkeypatch.setattr(distributed.core, "send_recv", send_recv)
    dask_runner.check_scheduler("tls://10.0.0.5:8786", 5)
    assert used == [settings]


def test_a_local_cluster_leaves_port_8787_to_whoever_holds_it(tmp_path, recwarn):
    """The scheduler's HTTP server took the dashboard's port even with the dashboard off: beside another study
    (or any Dask dashboard) the user read "Port 8787 is already in use ... Hosting the HTTP server on port N"."""
    from minidl.experiments.dask_runner import DaskRunner
    from minidl.experiments.data import resolve_data

    _, spec = resolve_data("shapeset", train_examples=200)
    with socket.socket() as holder:
        try:
            holder.bind(("127.0.0.1", 8787))
        except OSError:
            pytest.skip("port 8787 is in use here already")
        holder.listen()
        DaskRunner(spec, tmp_path, workers=1).close()
    assert not [w for w in recwarn if "8787" in str(w.message)], [str(w.message) for w in recwarn]


def test_a_ctrl_c_while_the_local_cluster_starts_closes_it_here_not_at_exit(tmp_path, monkeypatch):
    """SIGTERM as the cluster started: the study's one line was followed by Dask's exit handler closing the
    half-started cluster, with an AssertionError traceback."""
    from distributed.core import Status

    from minidl.experiments import dask_runner
    from minidl.experiments.data import resolve_data

    _, spec = resolve_data("shapeset", train_examples=200)
    started, real = [], dask_runner.LocalCluster

    def local_cluster(*args, **kwargs):
        started.append(real(*args, **kwargs))
        return started[-1]

    def interrupted(cluster):
        raise KeyboardInterrupt
    monkeypatch.setattr(dask_runner, "LocalCluster", local_cluster)
    monkeypatch.setattr(dask_runner, "Client", interrupted)
    with pytest.raises(KeyboardInterrupt):
        dask_runner.DaskRunner(spec, tmp_path, workers=1)
    (cluster,) = started
    assert cluster.status == Status.closed and cluster.shutdown_on_close is False
