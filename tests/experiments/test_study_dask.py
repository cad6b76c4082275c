"""The study on a Dask LocalCluster: the same results.json as serially (timing aside), also when a worker is
SIGKILLed in the middle of a run (the run is started again, from its checkpoint)."""
import os
import signal

import pytest

pytest.importorskip("distributed", reason="Dask is not installed (pip install 'minidl[dask]')")

from minidl.cli import main  # noqa: E402
from minidl.experiments.study import comparable  # noqa: E402
from minidl.experiments.tasks import RunTask, read_attempts  # noqa: E402

from study_helpers import TINY, results_of, start_study, wait_for_checkpoint  # noqa: E402


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
