"""Trainer: metrics, checkpoints, exact resume, Ctrl-C, the NaN guard, callbacks, updates mode."""
import json
import os
import signal

import numpy as np
import pytest
from training_setup import make_setup

import minidl as mdl
from minidl import nn, optim
from minidl.nn import functional
from minidl.data import DataLoader
from minidl.random import generator
from minidl.training import (Every, Trainer, TrainingDiverged, TrainingInterrupted, evaluate,
                             load_checkpoint, read_records)

TIMING_KEYS = {"train_seconds", "samples_per_s"}


def _numbers(records):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


def _trainer(out_dir, seed=0, optimizer="adam", **kwargs):
    model, opt, loader, evals = make_setup(seed, optimizer)
    return Trainer(model, opt, loader, eval_loaders=evals, out_dir=out_dir, progress=False, log=None, **kwargs)


def _params(trainer):
    return {k: v.copy() for k, v in trainer.model.state_dict().items()}


def _assert_same_params(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_outputs_that_are_not_class_scores_are_refused_before_the_update(tmp_path):
    """A model with one output per example (a custom binary loss) raised NumPy's AxisError from the error
    count, after optimizer.step() had changed the weights and before the trainer counted the update."""
    mdl.manual_seed(0)
    _, _, loader, _ = make_setup()
    model = nn.Sequential(nn.Linear(12, 1), nn.Flatten(0))

    def loss(logits, y):
        return functional.binary_cross_entropy_with_logits(logits, (y > 0).astype(np.float32))

    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), loader, loss_fn=loss, out_dir=tmp_path,
                      progress=False, log=None)
    before = _params(trainer)
    with pytest.raises(ValueError, match=r"must be \(batch 32, classes\), got shape \(32,\)"):
        trainer.fit(1)
    assert trainer.step == 0
    _assert_same_params(_params(trainer), before)
    with pytest.raises(ValueError, match=r"got shape \(40,\)"):
        evaluate(model, DataLoader(loader.dataset, 40, shuffle=False), loss)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Reference: 3 epochs straight through (SGD with momentum, so optimizer state matters)."""
    out = tmp_path_factory.mktemp("straight")
    trainer = _trainer(out, optimizer="sgd")
    history = trainer.fit(epochs=3)
    return _params(trainer), history, generator().bit_generator.state, out


def test_files_and_metrics(uninterrupted):
    params, history, _, out = uninterrupted
    assert {p.name for p in out.iterdir()} == {"metrics.jsonl", "checkpoint.npz", "model.npz"}
    records = read_records(out / "metrics.jsonl")
    assert records == json.loads(json.dumps(history))
    assert [r["epoch"] for r in records] == [1, 2, 3] and [r["step"] for r in records] == [7, 14, 21]
    assert all(r["complete"] and 0 <= r["test_error"] <= 1 and r["samples_per_s"] > 0 for r in records)
    assert records[-1]["train_loss"] < records[0]["train_loss"]        # it learns
    _assert_same_params(mdl.load(out / "model.npz"), params)
    state = load_checkpoint(out / "checkpoint.npz")
    assert state["trainer"]["step"] == 21 and state["trainer"]["epoch"] == 3 and state["trainer"]["batch"] == 0


def test_resume_from_epoch_checkpoint_gives_identical_numbers(tmp_path, uninterrupted):
    params, history, rng_state, _ = uninterrupted
    _trainer(tmp_path, optimizer="sgd").fit(epochs=1)
    resumed = _trainer(tmp_path, optimizer="sgd").resume()   # fresh objects, as a new process would have
    assert resumed.step == 7 and resumed.epoch == 1
    resumed.fit(epochs=3)
    _assert_same_params(_params(resumed), params)
    assert _numbers(read_records(tmp_path / "metrics.jsonl")) == _numbers(history)
    assert generator().bit_generator.state == rng_state


def _interrupt_at(step):
    def callback(trainer):
        if trainer.step == step:
            raise KeyboardInterrupt
    return Every(1, callback)


def test_ctrl_c_mid_epoch_checkpoints_and_resume_is_exact(tmp_path, uninterrupted):
    params, history, _, _ = uninterrupted
    trainer = _trainer(tmp_path, optimizer="sgd", callbacks=[_interrupt_at(10)],
                       resume_hint="minidl train --out X --resume")
    with pytest.raises(TrainingInterrupted) as info:
        trainer.fit(epochs=3)
    message = str(info.value)
    assert "after update 10 (epoch 2, batch 3/7)" in message
    assert str(tmp_path / "checkpoint.npz") in message and "Resume with: minidl train --out X --resume" in message
    assert isinstance(info.value, KeyboardInterrupt) and info.value.checkpoint == tmp_path / "checkpoint.npz"
    assert load_checkpoint(tmp_path / "checkpoint.npz")["trainer"]["step"] == 10
    resumed = _trainer(tmp_path, optimizer="sgd").resume()
    assert (resumed.step, resumed.epoch, resumed.batch) == (10, 1, 3)
    resumed.fit(epochs=3)
    _assert_same_params(_params(resumed), params)
    assert _numbers(read_records(tmp_path / "metrics.jsonl")) == _numbers(history)


def test_interrupt_during_end_of_epoch_evaluation_resumes_exactly(tmp_path, uninterrupted):
    params, history, _, _ = uninterrupted
    evaluations = {"n": 0}

    def loss_interrupted_in_second_evaluation(logits, targets):
        if not mdl.is_grad_enabled():
            evaluations["n"] += 1
            if evaluations["n"] == 2:
                raise KeyboardInterrupt
        return functional.cross_entropy(logits, targets)

    trainer = _trainer(tmp_path, optimizer="sgd")
    trainer.loss_fn = loss_interrupted_in_second_evaluation
    with pytest.raises(TrainingInterrupted, match="after update 14 \\(epoch 2, batch 7/7\\)"):
        trainer.fit(epochs=3)
    assert len(read_records(tmp_path / "metrics.jsonl")) == 1
    resumed = _trainer(tmp_path, optimizer="sgd").resume()
    resumed.fit(epochs=3)
    _assert_same_params(_params(resumed), params)
    assert _numbers(read_records(tmp_path / "metrics.jsonl")) == _numbers(history)


class _BatchNormDropoutNet(nn.Module):
    """Running statistics and random draws in every forward pass; `interrupt_at` raises KeyboardInterrupt
    (a second Ctrl-C, say) in the n-th training forward, after both have changed."""

    def __init__(self, interrupt_at=None):
        super().__init__()
        self.hidden, self.norm = nn.Linear(12, 16), nn.BatchNorm1d(16)
        self.drop, self.out = nn.Dropout(0.3), nn.Linear(16, 3)
        self.calls, self.interrupt_at = 0, interrupt_at

    def forward(self, x):
        h = self.drop(self.norm(self.hidden(x)).relu())
        self.calls += self.training
        if self.training and self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        return self.out(h)


def _bn_trainer(out_dir, interrupt_at=None):
    _, _, loader, evals = make_setup()
    model = _BatchNormDropoutNet(interrupt_at)
    return Trainer(model, optim.Adam(model.parameters(), lr=0.01), loader, eval_loaders=evals, out_dir=out_dir,
                   progress=False, log=None)


@pytest.mark.parametrize("interrupt_at", [3, 8])
def test_interrupt_inside_the_forward_pass_saves_the_state_before_that_update(tmp_path, interrupt_at):
    mdl.manual_seed(0)
    straight = _bn_trainer(tmp_path / "straight")
    history = straight.fit(epochs=2)
    mdl.manual_seed(0)
    with pytest.raises(TrainingInterrupted, match=f"after update {interrupt_at - 1} "):
        _bn_trainer(tmp_path / "run", interrupt_at).fit(epochs=2)
    mdl.manual_seed(1)                     # the checkpoint's RNG state, not this one, must count
    resumed = _bn_trainer(tmp_path / "run").resume()
    resumed.fit(epochs=2)
    _assert_same_params(_params(resumed), _params(straight))     # running statistics included
    assert _numbers(read_records(tmp_path / "run" / "metrics.jsonl")) == _numbers(history)


def test_a_nan_loss_leaves_the_running_statistics_and_rng_of_the_update_before(tmp_path):
    trainer, seen = _bn_trainer(None), {}
    trainer.callbacks = [Every(1, lambda t: seen.update(state=_params(t), rng=generator().bit_generator.state))]
    trainer.loss_fn = lambda logits, y: functional.cross_entropy(logits, y) * (np.nan if trainer.step == 2 else 1)
    with pytest.raises(TrainingDiverged, match="at update 3 "):
        trainer.fit(epochs=1)
    _assert_same_params(_params(trainer), seen["state"])
    assert generator().bit_generator.state == seen["rng"]


def test_real_sigint_stops_after_the_update(tmp_path):
    def press_ctrl_c(trainer):
        if trainer.step == 4:
            os.kill(os.getpid(), signal.SIGINT)
    trainer = _trainer(tmp_path, callbacks=[Every(1, press_ctrl_c)])
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted):
        trainer.fit(epochs=2)
    assert trainer.step == 4                       # the flag stopped it right after update 4
    assert load_checkpoint(tmp_path / "checkpoint.npz")["trainer"]["step"] == 4
    assert signal.getsignal(signal.SIGINT) is before   # handler restored


@pytest.mark.parametrize("written", [False, True], ids=["before-the-write", "after-the-write"])
def test_a_second_ctrl_c_at_an_epochs_end_keeps_its_record(tmp_path, uninterrupted, monkeypatch, written):
    """The counters pass an epoch before its record is appended: a second Ctrl-C between the two saved a
    checkpoint past an epoch that metrics.jsonl lacked, and the resumed run never wrote it."""
    from minidl.training import trainer as trainer_module
    params, history, _, _ = uninterrupted
    real_append, calls = trainer_module.append_record, []

    def append_cut_by_ctrl_c(path, record):
        calls.append(record["epoch"])
        if len(calls) == 2:
            if written:
                real_append(path, record)
            raise KeyboardInterrupt
        real_append(path, record)

    monkeypatch.setattr(trainer_module, "append_record", append_cut_by_ctrl_c)
    trainer = _trainer(tmp_path, optimizer="sgd")
    with pytest.raises(TrainingInterrupted, match="after update 14"):
        trainer.fit(epochs=3)
    assert [r["epoch"] for r in read_records(tmp_path / "metrics.jsonl")] == [1, 2]
    assert [r["epoch"] for r in trainer.history] == [1, 2]
    assert load_checkpoint(tmp_path / "checkpoint.npz")["trainer"]["epoch"] == 2
    resumed = _trainer(tmp_path, optimizer="sgd").resume()
    resumed.fit(epochs=3)
    _assert_same_params(_params(resumed), params)
    assert _numbers(read_records(tmp_path / "metrics.jsonl")) == _numbers(history)


def test_metrics_out_of_order_refuse_a_resume_before_it_loads_anything(tmp_path):
    from minidl.training import MetricsError

    _trainer(tmp_path).fit(epochs=2)
    lines = (tmp_path / "metrics.jsonl").read_bytes().splitlines(keepends=True)
    (tmp_path / "metrics.jsonl").write_bytes(b"".join(reversed(lines)))
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    fresh = _trainer(tmp_path)
    before = _params(fresh)
    with pytest.raises(MetricsError, match="a record of update 7 after one of update 14"):
        fresh.resume()
    assert fresh.step == 0 and {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files
    _assert_same_params(_params(fresh), before)


def test_resume_drops_metrics_written_after_the_checkpoint(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.fit(epochs=1)
    saved = (tmp_path / "checkpoint.npz").read_bytes()
    trainer.fit(epochs=2)
    assert len(read_records(tmp_path / "metrics.jsonl")) == 2
    (tmp_path / "checkpoint.npz").write_bytes(saved)     # as if the process died before checkpointing epoch 2
    resumed = _trainer(tmp_path).resume()
    assert [r["epoch"] for r in resumed.history] == [1]
    assert len(read_records(tmp_path / "metrics.jsonl")) == 1


def test_a_resume_its_check_refuses_changes_no_file(tmp_path):
    """The caller's check runs before the metrics lines past the checkpoint are trimmed."""
    trainer = _trainer(tmp_path)
    trainer.fit(epochs=1)
    saved = (tmp_path / "checkpoint.npz").read_bytes()
    trainer.fit(epochs=2)
    (tmp_path / "checkpoint.npz").write_bytes(saved)     # as if the process died before checkpointing epoch 2
    with open(tmp_path / "metrics.jsonl", "ab") as metrics:
        metrics.write(b'{"epoch": 3, "st')                # and a torn line after it
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    seen = []

    def refuse(loaded):
        seen.append(loaded.step)
        raise RuntimeError("not this run")
    resumed = _trainer(tmp_path)
    with pytest.raises(RuntimeError, match="not this run"):
        resumed.resume(check=refuse)
    assert seen == [7] and resumed.last_checkpoint is None
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files
    assert [r["epoch"] for r in _trainer(tmp_path).resume(check=lambda loaded: None).history] == [1]


def test_start_over_refuses_a_folder_whose_run_got_past_its_first_checkpoint(tmp_path):
    _trainer(tmp_path).fit(epochs=2)
    (tmp_path / "checkpoint.npz").unlink()
    metrics = (tmp_path / "metrics.jsonl").read_bytes()
    with pytest.raises(ValueError, match="holds model.npz and 2 records in metrics.jsonl: its run got past its first"):
        _trainer(tmp_path).start_over()
    assert (tmp_path / "metrics.jsonl").read_bytes() == metrics


def test_a_second_run_in_the_same_out_dir_is_refused(tmp_path, uninterrupted):
    """Two Trainer(..., out_dir=X).fit(2) in a row left metrics.jsonl with epochs 1, 2, 1, 2 and overwrote the
    first run's checkpoint and weights without a word."""
    _trainer(tmp_path, optimizer="sgd").fit(epochs=1)
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    second = _trainer(tmp_path, optimizer="sgd")
    with pytest.raises(ValueError, match="already holds another run's checkpoint.npz, model.npz, metrics.jsonl; "
                                         "continue that run with Trainer\\(...\\).resume\\(\\), or choose another"):
        second.fit(epochs=1)
    with pytest.raises(ValueError, match="already holds another run's"):
        second.save_checkpoint()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files
    resumed = _trainer(tmp_path, optimizer="sgd").resume()        # continuing it is what the folder is for
    resumed.fit(epochs=3)
    assert _numbers(read_records(tmp_path / "metrics.jsonl")) == _numbers(uninterrupted[1])


def test_resuming_from_an_earlier_checkpoint_rolls_the_folder_back(tmp_path, uninterrupted):
    """resume(path) from a copy of an earlier checkpoint removed the later metrics lines and then fit
    refused the folder as another run's."""
    _trainer(tmp_path, optimizer="sgd").fit(epochs=1)
    earlier = tmp_path.parent / f"{tmp_path.name}-epoch1.npz"
    earlier.write_bytes((tmp_path / "checkpoint.npz").read_bytes())
    _trainer(tmp_path, optimizer="sgd").resume().fit(epochs=2)
    _trainer(tmp_path, optimizer="sgd").resume(earlier).fit(epochs=3)
    assert _numbers(read_records(tmp_path / "metrics.jsonl")) == _numbers(uninterrupted[1])


def test_nan_loss_stops_and_names_update_and_checkpoint(tmp_path):
    calls = {"n": 0}

    def poisoned_loss(logits, targets):
        calls["n"] += 1
        loss = functional.cross_entropy(logits, targets)
        return loss * float("nan") if calls["n"] == 10 else loss

    model, opt, loader, evals = make_setup()
    trainer = Trainer(model, opt, loader, loss_fn=poisoned_loss, out_dir=tmp_path, progress=False, log=None)
    checkpoint_before = None
    params_before = {}

    def remember(t):
        nonlocal checkpoint_before
        if t.step == 9:
            params_before.update(_params(t))
            checkpoint_before = (tmp_path / "checkpoint.npz").read_bytes()
    trainer.callbacks.append(Every(1, remember))
    with pytest.raises(TrainingDiverged) as info:
        trainer.fit(epochs=3)
    message = str(info.value)
    assert "loss is nan at update 10 (epoch 2, batch 3)" in message
    assert f"last good checkpoint: {tmp_path / 'checkpoint.npz'} (after update 7)" in message
    assert info.value.step == 10
    _assert_same_params(_params(trainer), params_before)        # the bad update was not applied
    assert (tmp_path / "checkpoint.npz").read_bytes() == checkpoint_before   # good checkpoint kept


def test_inf_loss_before_any_checkpoint(tmp_path):
    model, opt, loader, _ = make_setup()
    trainer = Trainer(model, opt, loader, loss_fn=lambda logits, y: functional.cross_entropy(logits, y) * float("inf"),
                      progress=False, log=None)
    with pytest.raises(TrainingDiverged, match=r"loss is inf at update 1 .*checkpoints are off"):
        trainer.fit(epochs=1)


@pytest.mark.parametrize("epochs,stop", [(1, "epoch end"), (None, "run end")])
def test_an_update_that_makes_the_weights_infinite_is_not_saved(tmp_path, epochs, stop):
    """The loss check runs before each update, so the last update's effect is checked before writing:
    one SGD update at lr 1e45 (float32 overflows) used to leave inf in checkpoint.npz and model.npz, with
    the run reported done."""
    model, opt, loader, evals = make_setup(optimizer="sgd", batch_size=200, lr=1e45)   # one update per epoch
    trainer = Trainer(model, opt, loader, eval_loaders=evals, out_dir=tmp_path, progress=False, log=None)
    with pytest.raises(TrainingDiverged, match=r"diverged by update 1: parameter .* not finite; nothing was "
                                               r"saved from this state; no checkpoint has been written"):
        trainer.fit(epochs=epochs, updates=None if epochs else 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == []      # no checkpoint, metrics line or model.npz


def test_an_evaluation_loss_that_overflows_stops_before_the_checkpoint(tmp_path):
    model, opt, loader, evals = make_setup()
    trainer = Trainer(model, opt, loader, eval_loaders=evals, out_dir=tmp_path, progress=False, log=None,
                      loss_fn=lambda logits, y: functional.cross_entropy(logits, y) * (1.0 if logits.requires_grad
                                                                                       else float("inf")))
    with pytest.raises(TrainingDiverged, match=r"test_loss inf not finite"):
        trainer.fit(epochs=1)
    assert not (tmp_path / "checkpoint.npz").exists() and not (tmp_path / "metrics.jsonl").exists()


def test_updates_mode_and_callbacks(tmp_path):
    seen = []
    trainer = _trainer(tmp_path, callbacks=[Every(3, lambda t: seen.append(t.step))])
    history = trainer.fit(updates=10)
    assert trainer.step == 10 and seen == [0, 3, 6, 9]
    assert [r["complete"] for r in history] == [True, False]
    assert history[-1]["epoch"] == pytest.approx(1 + 3 / 7)
    assert load_checkpoint(tmp_path / "checkpoint.npz")["trainer"]["step"] == 10
    # Continue to the end of epoch 2: the partial epoch's sums were kept, so it reports the whole epoch.
    history = trainer.fit(epochs=2)
    assert history[-1]["complete"] and history[-1]["step"] == 14


def test_callbacks_run_once_at_update_0_however_many_fits_start_there():
    seen = []
    trainer = _trainer(None, callbacks=[Every(7, lambda t: seen.append(t.step))])
    trainer.fit(epochs=0)
    trainer.fit(updates=0)
    trainer.fit(epochs=2)
    assert seen == [0, 7, 14]


def test_fit_to_a_point_the_run_has_passed_is_refused_before_anything_is_written(tmp_path):
    """From a mid-epoch checkpoint (1 epoch + 3 batches), fit(epochs=1) wrote a "complete: false" record, a
    checkpoint and model.npz for a target already behind it (the command refuses this; the library did not)."""
    _trainer(tmp_path).fit(updates=10)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    for target, said in ((dict(epochs=1), "past epochs=1"), (dict(updates=9), "past updates=9"),
                         (dict(epochs=3, updates=5), "past epochs=3 and updates=5")):
        trainer = _trainer(tmp_path).resume()
        with pytest.raises(ValueError, match=r"already done 1 epochs \+ 3 batches \(10 updates\), " + said):
            trainer.fit(**target)
        assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before
    assert _trainer(tmp_path).resume().fit(updates=10)[-1]["step"] == 10      # exactly where it is: no refusal


def test_updates_mode_equals_epochs_mode(tmp_path):
    a = _trainer(None)
    a.fit(updates=14)
    b = _trainer(None)
    b.fit(epochs=2)
    _assert_same_params(_params(a), _params(b))


def test_resume_rejects_a_different_loader(tmp_path):
    _trainer(tmp_path).fit(epochs=1)
    model, opt, loader, _ = make_setup(batch_size=16)
    trainer = Trainer(model, opt, loader, out_dir=tmp_path, progress=False, log=None)
    with pytest.raises(ValueError, match="batch_size 32 \\(now 16\\)"):
        trainer.resume()


def test_resume_with_another_optimizer_changes_nothing(tmp_path):
    """An SGD checkpoint resumed with Adam: the model's weights were overwritten before the optimizer's
    state was refused (KeyError), so a caller that went on trained the checkpoint's weights from update 0."""
    _trainer(tmp_path, optimizer="sgd").fit(epochs=1)
    model, opt, loader, evals = make_setup(optimizer="adam")
    with mdl.no_grad():
        for p in model.parameters():
            p += 1.0                                 # weights of its own, which must stay
    before = model.state_dict()
    trainer = Trainer(model, opt, loader, eval_loaders=evals, out_dir=tmp_path, progress=False, log=None)
    with pytest.raises(ValueError, match="does not fit this trainer's Adam .*nothing was changed"):
        trainer.resume()
    assert trainer.step == 0 and not opt.state
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def _nested(depth):
    tree = 1
    for _ in range(depth):
        tree = {"a": tree}
    return tree


def _rng_state(**state):
    return dict(generator().bit_generator.state, state=dict(generator().bit_generator.state["state"], **state))


@pytest.mark.parametrize("edit, problem", [
    (lambda state: state["trainer"].update(sums={"loss": "x"}), "its running sums of the epoch, {'loss': 'x'}, are"),
    (lambda state: state["trainer"]["sums"].update(seconds="abc"), "its running sums"),
    (lambda state: state["trainer"]["sums"].update(correct=10**6), "its running sums"),
    (lambda state: state["trainer"].pop("sums"), "its running sums of the epoch, None, are"),
    (lambda state: state["trainer"].update(sums=_nested(5000)), "its running sums"),
    (lambda state: state.update(rng=-1), "its random generator state does not fit minidl's PCG64 \\(state must be"),
    (lambda state: state.update(rng=_rng_state(state=-1)), "its random generator state .*out of bounds"),
    (lambda state: state.update(rng=_nested(5000)), "its random generator state"),
    (lambda state: state.update(model=_nested(5000)), "its model state does not fit this trainer's model \\(load_"),
], ids=["loss_text", "seconds_text", "correct_past_examples", "no_sums", "nested_sums", "rng_int",
        "rng_out_of_bounds", "nested_rng", "nested_model"])
def test_a_state_with_bad_values_is_refused_before_anything_changes(tmp_path, edit, problem):
    """The model, optimizer and position were loaded before the running sums or the RNG state were read:
    a KeyError, TypeError or OverflowError (at once or in fit) left a trainer half-loaded."""
    _trainer(tmp_path, optimizer="sgd").fit(epochs=1)
    state = load_checkpoint(tmp_path / "checkpoint.npz")
    edit(state)
    trainer = _trainer(None, optimizer="sgd")
    params, rng = _params(trainer), generator().bit_generator.state
    with pytest.raises(ValueError, match=f"^checkpoint: {problem}.*; nothing was changed$"):
        trainer.load_state_dict(state)
    assert (trainer.step, trainer.epoch, trainer.batch) == (0, 0, 0) and not trainer.optimizer.state
    _assert_same_params(_params(trainer), params)
    assert generator().bit_generator.state == rng


def test_a_checkpoint_nested_too_deeply_is_a_value_error(tmp_path):
    tree = '{"format": "minidl-checkpoint-1", "state": ' + '{"dict": [["a", ' * 100_000 + "1" + "]]}" * 100_000 + "}"
    mdl.save({"__tree__": np.frombuffer(tree.encode(), np.uint8)}, tmp_path / "deep.npz")
    with pytest.raises(ValueError, match="deep.npz: damaged checkpoint description \\(maximum recursion depth"):
        _trainer(None).resume(tmp_path / "deep.npz")


def test_eval_loaders_that_would_overwrite_or_fail_later_are_refused():
    """{"train": ...} wrote its loss over the running training loss in every record (and metrics.jsonl); an
    empty evaluation loader failed only after the first epoch's work, with nothing saved."""
    model, opt, loader, evals = make_setup()
    empty = DataLoader(evals["test"].dataset.subset(np.arange(0)), 10)
    for bad in ({"train": evals["test"]}, {"": evals["test"]}, {3: evals["test"]}, {"v": empty}, {"v": [1]}):
        with pytest.raises(ValueError, match="eval_loaders"):
            Trainer(model, opt, loader, eval_loaders=bad, progress=False, log=None)
    Trainer(model, opt, loader, eval_loaders={"train_eval": evals["test"]}, progress=False, log=None)


def test_run_settings_a_checkpoint_cannot_store_are_refused_before_training(tmp_path):
    """{"data": Path(...)} trained a whole epoch, wrote its metrics line and then failed at the checkpoint,
    leaving a folder that fit() refused as another run's."""
    from pathlib import Path
    for settings, error, problem in [({"data": Path("x")}, TypeError, "cannot store a PosixPath at /run/data"),
                                     ({"w": np.array([None])}, ValueError, "'/run/w' holds objects"),
                                     (["lr", 0.1], TypeError, "must be a dict or None, got list")]:
        with pytest.raises(error, match=f"Trainer: run_settings .*{problem}"):
            _trainer(tmp_path / "run", run_settings=settings)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra, error, problem", [
    ({1, 2}, TypeError, "cannot store a set at /optimizer/note"),
    (np.array([object()]), ValueError, "the array at '/optimizer/note' holds objects"),
], ids=["set", "object-array"])
def test_a_state_a_checkpoint_cannot_store_is_refused_before_the_metrics_line(tmp_path, extra, error, problem):
    """A custom optimizer's state that no checkpoint can hold failed at the end of the first epoch after its
    metrics line was written: the folder then held a metrics record and no checkpoint."""
    trainer = _trainer(tmp_path / "run")
    state_dict = trainer.optimizer.state_dict
    trainer.optimizer.state_dict = lambda: {**state_dict(), "note": extra}
    with pytest.raises(error, match=problem):
        trainer.fit(epochs=1)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
    assert trainer.history == []


def test_resume_without_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        _trainer(tmp_path).resume()


def _scheduled(out_dir, schedule, monitor=None, interrupt_at=None):
    """A trainer (SGD, lr 0.1) with `schedule(optimizer)` and `lrs`, the learning rate of every update."""
    model, opt, loader, evals = make_setup(optimizer="sgd")
    lrs = []

    def watch(trainer):
        lrs.append(opt.param_groups[0]["lr"])
        if trainer.step == interrupt_at:
            raise KeyboardInterrupt
    trainer = Trainer(model, opt, loader, eval_loaders=evals, out_dir=out_dir, progress=False, log=None,
                      scheduler=schedule(opt), monitor=monitor, callbacks=[Every(1, watch)])
    return trainer, lrs


@pytest.mark.parametrize("schedule, monitor, per_epoch", [
    (lambda opt: optim.lr_scheduler.StepLR(opt, 1, gamma=0.5), None, [0.1, 0.05, 0.025]),       # PyTorch's
    (lambda opt: optim.lr_scheduler.CosineAnnealingLR(opt, 2), None, [0.1, 0.05, 0.0]),
    # mode "max" on a falling loss: no improvement after the first epoch, so every later epoch halves lr
    (lambda opt: optim.lr_scheduler.ReduceLROnPlateau(opt, "max", 0.5, patience=0), "test_loss", [0.1, 0.1, 0.05]),
])
def test_a_scheduler_steps_once_per_epoch_and_resumes_exactly(tmp_path, schedule, monitor, per_epoch):
    straight, lrs = _scheduled(tmp_path / "straight", schedule, monitor)
    history = straight.fit(epochs=3)
    assert lrs[1::7] == pytest.approx(per_epoch) and lrs[1:8] == [lrs[1]] * 7     # one lr per epoch's updates
    with pytest.raises(TrainingInterrupted):
        _scheduled(tmp_path / "run", schedule, monitor, interrupt_at=10)[0].fit(epochs=3)
    resumed, resumed_lrs = _scheduled(tmp_path / "run", schedule, monitor)
    resumed.resume().fit(epochs=3)
    assert resumed_lrs == lrs[11:]                        # updates 11, 12, ... at the same rates
    assert resumed.scheduler.state_dict() == straight.scheduler.state_dict()
    assert _numbers(read_records(tmp_path / "run" / "metrics.jsonl")) == _numbers(history)


def test_scheduler_arguments_and_resume_without_it_are_refused(tmp_path):
    model, opt, loader, evals = make_setup()
    other = optim.SGD(model.parameters(), lr=0.1)
    plateau = optim.lr_scheduler.ReduceLROnPlateau(opt)
    step_lr = optim.lr_scheduler.StepLR
    for kwargs, problem in [({"scheduler": plateau}, "needs monitor="),
                            ({"scheduler": plateau, "monitor": "val_loss"}, "one of train_loss, train_error"),
                            ({"scheduler": step_lr(opt, 1), "monitor": "test_loss"}, "takes no metric"),
                            ({"monitor": "test_loss"}, "no scheduler"), ({"scheduler": opt}, "must be an optim.lr_sch"),
                            ({"scheduler": step_lr(other, 1)}, "another optimizer")]:
        with pytest.raises((ValueError, TypeError), match=problem):
            Trainer(model, opt, loader, eval_loaders=evals, progress=False, log=None, **kwargs)
    _trainer(tmp_path).fit(epochs=1)
    with pytest.raises(ValueError, match="written without a learning-rate scheduler"):
        _scheduled(tmp_path, lambda opt: optim.lr_scheduler.StepLR(opt, 1))[0].resume()


def test_an_unshuffled_loaders_seed_is_not_compared_on_resume(tmp_path):
    """DataLoader(shuffle=False) without a seed drew one it never reads, and checkpoints hold it; it now
    draws none (seed 0), and such a checkpoint resumed as "written with a different training loader"."""
    from minidl.training.checkpoint import load_checkpoint, pack_checkpoint, write_checkpoint

    def unshuffled():
        model, opt, loader, evals = make_setup()
        loader = DataLoader(loader.dataset, batch_size=32, shuffle=False)
        return Trainer(model, opt, loader, eval_loaders=evals, out_dir=tmp_path, progress=False, log=None)
    unshuffled().fit(epochs=1)
    state = load_checkpoint(tmp_path / "checkpoint.npz")
    state["loader"]["seed"] = 1234567            # what the old loader drew
    write_checkpoint(pack_checkpoint(state), tmp_path / "checkpoint.npz")
    assert unshuffled().resume().fit(epochs=2)[-1]["epoch"] == 2
    state["loader"]["shuffle"] = True            # a shuffled one's seed still counts
    write_checkpoint(pack_checkpoint(state), tmp_path / "checkpoint.npz")
    with pytest.raises(ValueError, match="different training loader: seed 1234567 \\(now 0\\), shuffle True"):
        unshuffled().resume()


def test_a_checkpoint_of_another_schedule_is_refused(tmp_path):
    """StepLR's and CosineAnnealingLR's states have the same keys: a StepLR checkpoint resumed under a
    cosine schedule went through and trained on at a rate neither schedule gives."""
    _scheduled(tmp_path, lambda opt: optim.lr_scheduler.StepLR(opt, 1, gamma=0.5))[0].fit(epochs=1)
    before = (tmp_path / "checkpoint.npz").read_bytes()
    trainer = _scheduled(tmp_path, lambda opt: optim.lr_scheduler.CosineAnnealingLR(opt, 10))[0]
    with pytest.raises(ValueError, match="written with a StepLR schedule, this trainer has a CosineAnnealingLR"):
        trainer.resume()
    assert trainer.step == 0 and trainer.scheduler.last_epoch == 0
    assert (tmp_path / "checkpoint.npz").read_bytes() == before


def test_evaluate_matches_a_direct_computation():
    model, _, loader, evals = make_setup()
    result = evaluate(model, evals["test"])
    x, y = evals["test"].dataset.arrays()
    with mdl.no_grad():
        logits = model(mdl.Tensor(x))
        loss = functional.cross_entropy(logits, y).item()
    assert result["examples"] == 40
    assert result["error"] == pytest.approx(np.mean(logits.data.argmax(1) != y))
    assert result["loss"] == pytest.approx(loss, rel=1e-5)


def test_evaluate_and_fit_keep_a_frozen_batchnorm_frozen():
    _, _, loader, evals = make_setup()
    model = _BatchNormDropoutNet()
    model.norm.eval()                    # fine-tuning: the running statistics stay as they are
    frozen = model.norm.running_mean.data.copy()
    evaluate(model, evals["test"])
    assert [m.training for m in model.modules()] == [True, True, False, True, True]
    model.eval()
    evaluate(model, evals["test"])
    assert not any(m.training for m in model.modules())
    model.train()
    model.norm.eval()
    Trainer(model, optim.SGD(model.parameters(), lr=0.1), loader, eval_loaders=evals, progress=False,
            log=None).fit(epochs=2)
    assert [m.training for m in model.modules()] == [True, True, False, True, True]
    np.testing.assert_array_equal(model.norm.running_mean.data, frozen)


def test_bad_arguments(tmp_path):
    model, opt, loader, _ = make_setup()
    with pytest.raises(TypeError):
        Trainer(model, opt, [(np.zeros((2, 12)), np.zeros(2))])
    with pytest.raises(TypeError):
        Trainer(model, opt, loader, callbacks=[lambda t: None])
    trainer = Trainer(model, opt, loader, progress=False, log=None)
    with pytest.raises(ValueError):
        trainer.fit()
    with pytest.raises(ValueError):
        trainer.fit(epochs=-1)
    with pytest.raises(ValueError):
        Every(0, print)
    with pytest.raises(ValueError, match="positive int, got True"):
        Every(True, print)
    for bad in ({"epochs": True}, {"updates": False}):    # not read as 1 or 0
        with pytest.raises(ValueError, match="must be a non-negative int, got"):
            trainer.fit(**bad)


def test_log_lines_with_and_without_progress_bar(tmp_path, capsys):
    for progress in (True, False):
        lines = []
        model, opt, loader, evals = make_setup()
        Trainer(model, opt, loader, eval_loaders=evals, progress=progress, log=lines.append).fit(epochs=2)
        assert len(lines) == 2 and lines[1].startswith("epoch 2/2: train loss ")
        assert "test error" in lines[1] and "samples/s" in lines[1]
    assert "samples/s" in capsys.readouterr().err          # the bar (stderr) showed the rate
