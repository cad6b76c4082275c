"""Runs as pure tasks: their own generator, checkpoints that continue a run to the same record, the data
spec's fingerprint, the attempts count."""
import json
import os
import signal

import numpy as np
import pytest

from minidl import _core
from minidl.experiments import data as study_data
from minidl.experiments import training_study
from minidl.experiments.config import TrainingConfig
from minidl.experiments.study import RUN_TIMING_FIELDS
from minidl.experiments.tasks import (RunTask, TooManyAttempts, execute, finished_record, forget_record,
                                     read_attempts, undo_dask_malloc_trim)
from minidl.random import generator, manual_seed

from test_training_study import _config, _data

TIMING = RUN_TIMING_FIELDS


def _same(record):
    return {k: v for k, v in record.items() if k not in TIMING}


def test_a_run_leaves_the_global_generator_alone_and_draws_the_manual_seed_stream():
    from minidl.experiments.networks import build_network

    manual_seed(123)
    state = generator().bit_generator.state
    model, _ = build_network(16, 2, 8, 3, "tanh", "xavier_uniform", seed=7)
    assert generator().bit_generator.state == state
    manual_seed(7)
    from minidl import nn

    reference = nn.MLP([16, 8, 8, 3], activation="tanh", init="xavier_uniform")
    for mine, theirs in zip(model.parameters(), reference.parameters()):
        np.testing.assert_array_equal(mine.data, theirs.data)


def test_ctrl_c_saves_a_whole_checkpoint_and_the_run_continues_to_the_same_record(tmp_path):
    data, config = _data(), _config()
    reference = training_study.train_run(data, config, "tanh", "xavier_uniform", 0, 0.1, 30)
    checkpoint = tmp_path / "run.npz"
    told = []

    def ctrl_c_at_update_10(updates):           # told every 10 updates: SIGINT once, at update 10
        told.append(updates)
        if len(told) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt, match=f"checkpoint saved to {checkpoint}"):
        training_study.train_run(data, config, "tanh", "xavier_uniform", 0, 0.1, 30, on_updates=ctrl_c_at_update_10,
                                 checkpoint=checkpoint, checkpoint_every=7)
    from minidl.training import load_checkpoint

    assert load_checkpoint(checkpoint)["trainer"]["trainer"]["step"] == 10     # not 7: saved when stopped
    told.clear()
    again = training_study.train_run(data, config, "tanh", "xavier_uniform", 0, 0.1, 30, on_updates=told.append,
                                     checkpoint=checkpoint, checkpoint_every=7)
    assert _same(again) == _same(reference) and again["execution"]["resumed_from_update"] == 10
    assert sum(told) == 30 and not checkpoint.exists()


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    data, config = _data(), _config()
    checkpoint = tmp_path / "run.npz"

    def interrupt(updates):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        training_study.train_run(data, config, "tanh", "xavier_uniform", 0, 0.1, 30, on_updates=interrupt,
                                 checkpoint=checkpoint, checkpoint_every=5)
    assert checkpoint.exists()
    with pytest.raises(ValueError, match="is the checkpoint of another run"):
        training_study.train_run(data, config, "tanh", "xavier_uniform", 1, 0.1, 30, checkpoint=checkpoint)


def test_execute_counts_attempts_and_refuses_more_than_max_attempts(tmp_path):
    data = _data()
    task = RunTask("run-tanh-standard-seed0", "run", _config(), "tanh", "standard", 0, 0.1, 12,
                   checkpoint=str(tmp_path / "run.npz"), checkpoint_every=5, threads=1, max_attempts=2)
    record = execute(task, data)
    assert record["execution"]["attempts"] == 1 and record["execution"]["threads"] == 1
    assert record["execution"]["kernels"] == _core.kernel_name() and read_attempts(task) == {"attempts": 0}
    assert finished_record(task) == json.loads(json.dumps(record))      # kept until the study has saved it
    left = tmp_path / "run.npz.record.json"
    text = left.read_text()
    left.write_text(text.replace('"attempts":1', '"attempts":7'))        # still JSON, no longer what was written
    assert finished_record(task) is None
    left.write_text(json.dumps(json.loads(text)["data"]))                # as earlier versions wrote it: taken
    assert finished_record(task) == json.loads(json.dumps(record))
    left.write_text(text)
    forget_record(task)
    assert finished_record(task) is None
    (tmp_path / "run.npz.attempts").write_text('{"attempts": 2}')
    with pytest.raises(TooManyAttempts, match="started 2 times already"):
        execute(task, data)


def test_starts_stopped_by_ctrl_c_do_not_count_against_max_attempts(tmp_path):
    """Every Ctrl-C counted as a failed start: after max_attempts of them the run could never start again."""
    data = _data()
    task = RunTask("run-tanh-standard-seed0", "run", _config(), "tanh", "standard", 0, 0.1, 30,
                   checkpoint=str(tmp_path / "run.npz"), checkpoint_every=5, max_attempts=1)

    def ctrl_c(updates):
        raise KeyboardInterrupt

    for _ in range(3):
        with pytest.raises(KeyboardInterrupt):          # not TooManyAttempts: the start is allowed
            execute(task, data, on_updates=ctrl_c)
    assert read_attempts(task)["attempts"] == read_attempts(task)["stopped"] == 3
    record = execute(task, data)
    assert record["execution"]["attempts"] == 4 and record["execution"]["attempts_stopped"] == 3
    (tmp_path / "run.npz.attempts").write_text('{"attempts": 3, "stopped": 2}')     # one start failed
    with pytest.raises(TooManyAttempts, match="started 3 times already, 2 of them stopped by the study"):
        execute(task, data)


def test_a_trial_task_records_no_monitor():
    task = RunTask("trial-tanh-standard-lr0.1", "trial", _config(), "tanh", "standard", 0, 0.1, 10)
    record = execute(task, _data())
    assert "monitor" not in record and record["final_validation_error"] is not None


def test_choose_learning_rate_takes_the_lowest_validation_error_and_counts_divergence_as_1():
    config = TrainingConfig(lr_search_grid=(0.01, 0.1, 1.0), lr_search_updates=5)
    trials = [{"lr": 1.0, "final_validation_error": None}, {"lr": 0.01, "final_validation_error": 0.5},
              {"lr": 0.1, "final_validation_error": 0.25}]
    assert training_study.choose_learning_rate(config, trials) == {
        "grid": [0.01, 0.1, 1.0], "validation_error": [0.5, 0.25, 1.0], "updates": 5, "chosen": 0.1}
    with pytest.raises(ValueError, match="no trial for lr"):
        training_study.choose_learning_rate(config, trials[:2])


def test_a_data_spec_loads_the_same_data_or_refuses(monkeypatch):
    data, spec = study_data.resolve_data("shapeset", train_examples=100)
    assert spec.dataset == "shapeset" and spec.data_dir is None and len(spec.fingerprint) == 64
    study_data._CACHE.clear()
    again = study_data.load_spec(spec)
    assert study_data.fingerprint(again) == spec.fingerprint and again.reason == data.reason
    study_data._CACHE.clear()
    monkeypatch.setattr(study_data, "SHAPESET_TEST_SEED", 99)          # another machine's other data
    with pytest.raises(study_data.DataMismatch, match="has fingerprint .* not .*the files differ"):
        study_data.load_spec(spec)


def test_the_malloc_undo_does_nothing_outside_a_dask_worker(monkeypatch):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    assert undo_dask_malloc_trim() is False and os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"


def test_a_full_disk_at_the_attempts_count_names_it_and_leaves_no_temporary(tmp_path, monkeypatch):
    """The count went to `run.npz.attempts.<pid>.tmp` through write_text: on a full disk that file stayed (no
    lock holder removes it: not a write_atomically temporary) and the OSError named no file."""
    import errno
    import io

    real_open = io.open

    class FullDisk:
        def __init__(self, file):
            self.file = file

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    def disk_full(file, mode="r", *args, **kwargs):
        opened = real_open(file, mode, *args, **kwargs)
        return FullDisk(opened) if "w" in mode else opened
    task = RunTask("run-tanh-standard-seed0", "run", _config(), "tanh", "standard", 0, 0.1, 12,
                   checkpoint=str(tmp_path / "run.npz"), checkpoint_every=5)
    monkeypatch.setattr(io, "open", disk_full)
    with pytest.raises(OSError) as info:
        execute(task, _data())
    monkeypatch.undo()
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(tmp_path / "run.npz.attempts"))
    assert os.listdir(tmp_path) == []
