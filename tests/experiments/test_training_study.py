"""One training run of the study: the Trainer's loop, its evaluate, the run recorder and the speed measurement."""
import numpy as np
import pytest

import minidl as mdl
from minidl.experiments import training_study
from minidl.experiments.config import TrainingConfig
from minidl.experiments.data import StudyData
from minidl.experiments.networks import build_network
from minidl.experiments.study import RUN_TIMING_FIELDS
from minidl.random import generator
from minidl.training import Trainer, evaluate

TIMING = set(RUN_TIMING_FIELDS) - {"execution"}


def _data(n_train=300, n_valid=60, n_test=1500, features=16, classes=3):
    """A small learnable problem (test split larger than EVAL_CHUNK, so evaluation runs in chunks)."""
    rng = np.random.default_rng(0)
    projection = rng.standard_normal((features, classes))

    def split(n):
        x = rng.random((n, features), dtype=np.float32)
        return x, ((x - 0.5) @ projection).argmax(axis=1).astype(np.int64)

    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = split(n_train), split(n_valid), split(n_test)
    return StudyData("shapeset", "test", "test", x_train, y_train, x_valid, y_valid, x_test, y_test, classes)


def _config(**kwargs):
    values = dict(activations=("tanh",), schemes=("xavier_uniform",), depth=2, width=8, seeds=(0,), batch_size=16,
                  updates=30, eval_every=10, monitor_every=5, eval_examples=200, monitor_examples=50, bins=10)
    values.update(kwargs)
    return TrainingConfig(**values)


def _without_timing(record):
    return {k: v for k, v in record.items() if k not in TIMING}


def test_eval_loader_gives_the_error_of_all_examples_in_order_without_touching_the_rng():
    data = _data()
    model, _ = build_network(data.n_inputs, 2, 8, data.n_classes, "tanh", "xavier_uniform", seed=3)
    with mdl.no_grad():
        logits = model(mdl.tensor(data.x_test)).data
    expected = int(np.sum(np.argmax(logits, axis=1) != data.y_test)) / len(data.y_test)
    state = generator().bit_generator.state
    loader = training_study.eval_loader(data.x_test, data.y_test)
    assert generator().bit_generator.state == state
    assert len(loader) == 2 and loader.batch_size == training_study.EVAL_CHUNK
    result = evaluate(model, loader)
    assert result["examples"] == 1500 and result["error"] == expected


def test_train_run_evaluates_through_the_trainer_and_is_deterministic(monkeypatch):
    calls = []
    real = Trainer.evaluate

    def counted(self, loader):
        calls.append(len(loader.dataset))
        return real(self, loader)

    monkeypatch.setattr(Trainer, "evaluate", counted)
    data, config = _data(), _config()
    told = []
    record = training_study.train_run(data, config, "tanh", "xavier_uniform", seed=0, lr=0.1, updates=30,
                                      on_updates=told.append)
    # curve points at 0, 10, 20, 30 on the eval examples, then the test split and the validation examples
    assert calls == [200, 200, 200, 200, 1500, 60]
    assert record["curve"]["updates"] == [0, 10, 20, 30] and record["curve"]["train_loss"][0] is None
    assert all(isinstance(v, float) for v in record["curve"]["train_loss"][1:])
    assert record["monitor"]["updates"] == [0, 5, 10, 15, 20, 25, 30]
    assert len(record["monitor"]["layers"]) == 2 and len(record["final_histograms"]) == 2
    assert record["updates_done"] == 30 and record["diverged_at"] is None
    assert sum(told) == 30 and told == [10, 10, 10]
    again = training_study.train_run(data, config, "tanh", "xavier_uniform", seed=0, lr=0.1, updates=30)
    assert _without_timing(again) == _without_timing(record)
    other_seed = training_study.train_run(data, config, "tanh", "xavier_uniform", seed=1, lr=0.1, updates=30)
    assert other_seed["curve"] != record["curve"]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")   # the losses before the NaN
def test_a_short_run_records_its_last_point_and_a_diverged_run_fills_its_share_of_the_bar():
    data, config = _data(), _config(eval_every=200, monitor_every=50)
    record = training_study.train_run(data, config, "tanh", "xavier_uniform", seed=0, lr=0.1, updates=7,
                                      monitor=False)
    assert record["curve"]["updates"] == [0, 7] and "monitor" not in record
    told = []
    diverged = training_study.train_run(data, config, "sigmoid", "standard", seed=0, lr=1e38, updates=40,
                                        monitor=False, on_updates=told.append)
    assert diverged["diverged_at"] is not None and diverged["final_test_error"] is None
    assert diverged["updates_done"] < 40 and sum(told) == 40


def test_run_recorder_callbacks_feed_the_curve_and_the_snapshots():
    data, config = _data(), _config()
    model, probe = build_network(data.n_inputs, 2, 8, data.n_classes, "tanh", "xavier_uniform", seed=0)
    told = []
    recorder = training_study.RunRecorder(model, probe, 2, data.x_test[:50],
                                          training_study.eval_loader(data.x_test[:200], data.y_test[:200]),
                                          told.append)
    callbacks = recorder.callbacks(eval_every=4, monitor_every=None)
    assert [c.every for c in callbacks] == [1, 4, 10]
    trainer = training_study.study_trainer(data, config, model, lr=0.1, seed=0, callbacks=callbacks)
    trainer.fit(updates=12)
    assert recorder.curve["updates"] == [0, 4, 8, 12] and recorder.series["updates"] == []
    assert recorder.losses == [] and told == [10]
    recorder.report_progress(12)
    assert told == [10, 2]


def test_seconds_per_update_times_the_trainers_own_step(monkeypatch):
    steps = []
    real = Trainer._update

    def counted(self, x, y):
        steps.append(len(y))
        return real(self, x, y)

    monkeypatch.setattr(Trainer, "_update", counted)
    data, config = _data(), _config()
    seconds = training_study.seconds_per_update(data, config, "tanh", warmup=2, timed=3)
    assert steps == [16] * 5 and 0 < seconds < 1
    with pytest.raises(ValueError, match="timed"):
        training_study.seconds_per_update(data, config, "tanh", timed=0)
