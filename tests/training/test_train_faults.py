"""`minidl train` off the happy path (issue 12): every fault gives its exit status and a one-line message,
loses nothing finished (intact metrics lines, the last checkpoint), and a resumed run equals an
uninterrupted one. Signals and concurrent processes run `python -m minidl train` in subprocesses; the rest
calls the CLI in-process (faster), with full-disk and read-only file systems injected as OSError."""
import errno
import hashlib
import json
import os
import pickle
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import minidl as mdl
from minidl import serialization
from minidl.cli import main
from minidl.data import write_idx
from minidl.training import Trainer, read_records

# Children run beside the tested package (the installed copy, or a source tree built in place), never
# in a source checkout whose unbuilt copy would shadow it from the current directory.
PACKAGE_PARENT = str(Path(mdl.__file__).resolve().parents[1])

SMALL = ["shapeset", "--train-size", "300", "--val-size", "50", "--test-size", "100", "--hidden", "16",
         "--batch-size", "50", "--no-progress"]        # 5 updates per epoch
TIMING = {"train_seconds", "samples_per_s"}

# Runs `minidl train ARGS` after hooking the trainer: at update AT, ACTION is a signal sent to this process
# (SIGTERM, SIGKILL), or "wait": create file READY, then wait for file GO.
HOOKED = """
import os, signal, sys, time
from minidl.cli import main
from minidl.training import Trainer
action, at, ready, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
original = Trainer._run_callbacks
def hooked(self):
    original(self)
    if self.step == at:
        if action == "wait":
            open(ready, "w").close()
            while not os.path.exists(go):
                time.sleep(0.01)
        else:
            os.kill(os.getpid(), getattr(signal, action))
Trainer._run_callbacks = hooked
sys.exit(main(sys.argv[5:]))
"""


def _hooked(tmp_path, action, at, *args):
    command = [sys.executable, "-c", HOOKED, action, str(at), str(tmp_path / "ready"), str(tmp_path / "go"),
               "train", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=PACKAGE_PARENT)


def _numbers(out):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_records(out / "metrics.jsonl")]


def _same_run(out, reference, epochs=None):
    """out holds the same metrics (first `epochs` of them) and final weights as the uninterrupted reference."""
    expected = _numbers(reference)[:epochs]
    assert _numbers(out) == expected
    if epochs is None or epochs == len(_numbers(reference)):
        a, b = mdl.load(out / "model.npz"), mdl.load(reference / "model.npz")
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def _train(capsys, *args):
    """(exit status, stdout, stderr) of an in-process `minidl train ARGS`."""
    try:
        status = main(["train", *map(str, args)])
    except SystemExit as exit:           # argparse refusals
        status = exit.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _ctrl_c_at(monkeypatch, step):
    """Make the trainer see a Ctrl-C right after update `step`."""
    original = Trainer._run_callbacks

    def ctrl_c(self):
        original(self)
        if self.step == step:
            raise KeyboardInterrupt
    monkeypatch.setattr(Trainer, "_run_callbacks", ctrl_c)


def _one_line_error(err, *fragments):
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted 4-epoch run every other run is compared with (and copied from)."""
    out = tmp_path_factory.mktemp("faults") / "straight"
    assert main(["train", *SMALL, "--epochs", "4", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def three_epochs(tmp_path_factory):
    """A finished 3-epoch run (its files are copied and damaged by the tests)."""
    out = tmp_path_factory.mktemp("faults") / "three"
    assert main(["train", *SMALL, "--epochs", "3", "--out", str(out)]) == 0
    return out


def _copy(run, tmp_path):
    return shutil.copytree(run, tmp_path / "run")


# ------------------------------------------------------------------------------------------ 1. lock
def test_second_process_on_the_same_folder_exits_2_naming_the_holder(tmp_path, straight):
    out = tmp_path / "run"
    first = _hooked(tmp_path, "wait", 3, *SMALL, "--epochs", "4", "--out", out)
    try:
        while not (tmp_path / "ready").exists():
            assert first.poll() is None, first.communicate()
            time.sleep(0.01)
        second = subprocess.run([sys.executable, "-m", "minidl", "train", *SMALL, "--seed", "2", "--epochs", "4",
                                 "--out", str(out)], capture_output=True, text=True, cwd=PACKAGE_PARENT)
    finally:
        (tmp_path / "go").touch()
        stdout, stderr = first.communicate(timeout=120)
    assert second.returncode == 2
    _one_line_error(second.stderr, f"error: {out} is in use by minidl train (PID {first.pid} on host "
                                   f"{socket.gethostname()}", f"lock file {out / '.lock'}")
    assert first.returncode == 0, stderr
    assert json.loads((out / "config.json").read_text())["seed"] == 0
    _same_run(out, straight)                 # not a line from the second process
    assert not (out / ".lock").exists()


def test_killed_run_leaves_a_stale_lock_that_is_taken_over_and_restarts_from_scratch(tmp_path, straight, capsys):
    out = tmp_path / "run"
    killed = _hooked(tmp_path, "SIGKILL", 3, *SMALL, "--epochs", "4", "--out", out)
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    assert sorted(p.name for p in out.iterdir()) == [".lock", "config.json"]     # died before a checkpoint
    status, stdout, err = _train(capsys, "--out", out, "--resume")
    assert status == 0, err
    assert f"note: took over the lock of {out} left by minidl train (PID {killed.pid} on host" in err
    assert f"note: {out} has no checkpoint: its run stopped before the first one; starting it again from " \
           f"scratch with the settings in {out / 'config.json'}" in err
    _same_run(out, straight)                 # the saved --epochs 4 was the plan


@pytest.mark.parametrize("make_lock", [lambda lock: lock.symlink_to("../p.txt"),
                                       lambda lock: lock.write_text("my notes on this run\n")],
                         ids=["symlink", "user_text"])
def test_a_lock_file_that_is_not_minidls_is_refused_and_left_alone(tmp_path, capsys, make_lock):
    """`ln -s ../p.txt A/.lock`: p.txt was overwritten with the lock record; a user's `.lock` was truncated,
    deleted, and reported as a dead process's lock taken over."""
    out = tmp_path / "A"
    out.mkdir()
    (tmp_path / "p.txt").write_text("precious")
    make_lock(out / ".lock")
    before = (out / ".lock").read_text()
    status, _, err = _train(capsys, *SMALL, "--epochs", "1", "--out", out)
    assert status == 2
    _one_line_error(err, f"error: {out / '.lock'} is not minidl's lock file (", "move it away")
    assert (tmp_path / "p.txt").read_text() == "precious" and (out / ".lock").read_text() == before
    assert sorted(p.name for p in out.iterdir()) == [".lock"]


# ----------------------------------------------------------------------------------- 2. metrics lines
def test_damaged_metrics_line_is_an_error_naming_file_and_line(tmp_path, three_epochs, capsys):
    out = _copy(three_epochs, tmp_path)
    lines = (out / "metrics.jsonl").read_text().split("\n")
    lines[1] = lines[1][:30]
    (out / "metrics.jsonl").write_text("\n".join(lines))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    status, _, err = _train(capsys, "--out", out, "--resume", "--epochs", "4")
    assert status == 2
    _one_line_error(err, f"error: {out / 'metrics.jsonl'}, line 2: damaged metrics record",
                    "repair or delete line 2")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before      # nothing touched


def test_torn_last_line_is_set_aside_and_its_epoch_redone(tmp_path, straight, capsys):
    out = tmp_path / "run"
    assert _train(capsys, *SMALL, "--epochs", "2", "--out", out)[0] == 0
    torn = (straight / "metrics.jsonl").read_text().split("\n")[2][:40]    # a crash while appending epoch 3
    with open(out / "metrics.jsonl", "a") as metrics:
        metrics.write(torn)
    bad = out / "metrics.jsonl.bad"
    status, stdout, err = _train(capsys, "--out", out, "--resume", "--epochs", "4")
    assert status == 0, err
    assert f"note: {out / 'metrics.jsonl'}: moved a torn last line (an interrupted write) to {bad}" in stdout
    assert bad.read_text() == torn + "\n"
    _same_run(out, straight)


# -------------------------------------------------------------------------- 3. died before a checkpoint
@pytest.mark.parametrize("files", [{"config.json": '{"my": "precious settings"}\n'},
                                   {"config.json": "not json at all"},
                                   {"metrics.jsonl": '{"loss": 1}\n{"loss": 2, "step": 5}\n'}],
                         ids=["foreign_config", "text_config", "foreign_metrics"])
def test_a_folder_with_someone_elses_config_or_metrics_is_refused_untouched(tmp_path, capsys, files):
    """`--out .` in a project folder: its config.json was overwritten and its metrics.jsonl edited."""
    out = tmp_path / "project"
    out.mkdir()
    for name, text in files.items():
        (out / name).write_text(text)
    status, _, err = _train(capsys, *SMALL, "--epochs", "1", "--out", out)
    assert status == 2
    _one_line_error(err, "choose another --out")
    assert {p.name: p.read_text() for p in out.iterdir()} == files


def test_nan_at_update_2_leaves_a_folder_that_can_be_started_again(tmp_path, straight, capsys):
    out = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, _, err = _train(capsys, *SMALL, "--optimizer", "sgd", "--lr", "1e30", "--epochs", "4", "--out", out)
    assert status == 1
    _one_line_error(err, "error: loss is nan at update 2", "no checkpoint has been written",
                    "this folder can be reused")
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]       # no NumPy overflow noise
    status, _, err = _train(capsys, *SMALL, "--epochs", "4", "--out", out)
    assert status == 0
    assert f"note: {out} holds a run that stopped before its first checkpoint; starting again from scratch" in err
    _same_run(out, straight)


@pytest.mark.parametrize("resume", [True, False], ids=["resume", "new_run"])
@pytest.mark.parametrize("gone", [["checkpoint.npz"], ["checkpoint.npz", "model.npz"]], ids=["finished", "interrupted"])
def test_a_run_whose_checkpoint_is_gone_is_never_started_over(tmp_path, three_epochs, capsys, resume, gone):
    """--resume after checkpoint.npz was deleted trained from scratch: the finished run's metrics lines were
    deleted and model.npz overwritten, under a note that the run "stopped before the first one"."""
    out = _copy(three_epochs, tmp_path)
    for name in gone:
        (out / name).unlink()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    options = ["--out", out, "--resume"] if resume else [*SMALL, "--epochs", "3", "--out", out]
    status, _, err = _train(capsys, *options)
    assert status == 2
    saved = "3 records in metrics.jsonl" if "model.npz" in gone else "model.npz and 3 records in metrics.jsonl"
    _one_line_error(err, f"error: {out} holds {saved} of a run, but no checkpoint.npz to continue it from",
                    "put its checkpoint back to resume, or choose another --out")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_double_ctrl_c_during_the_first_save_leaves_a_restartable_folder(tmp_path, straight, capsys, monkeypatch):
    out = tmp_path / "run"

    def second_ctrl_c(members, path):
        raise KeyboardInterrupt
    _ctrl_c_at(monkeypatch, 2)
    monkeypatch.setattr("minidl.training.trainer.write_checkpoint", second_ctrl_c)
    status, _, err = _train(capsys, *SMALL, "--epochs", "4", "--out", out)
    assert status == 130
    _one_line_error(err, "training aborted; no checkpoint has been written")
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]
    monkeypatch.undo()
    status, _, err = _train(capsys, "--out", out, "--resume")
    assert status == 0 and "starting it again from scratch" in err
    _same_run(out, straight)


# ----------------------------------------------------------------------- 4. the saved config is the truth
def test_printed_resume_command_reproduces_the_planned_run(tmp_path, straight, capsys, monkeypatch):
    out = tmp_path / "my run"
    _ctrl_c_at(monkeypatch, 7)
    status, _, err = _train(capsys, *SMALL, "--epochs", "2", "--out", out)
    assert status == 130
    command = err.split("Resume with: ")[1].strip()
    assert command == f"minidl train --out {shlex.quote(str(out))} --resume"
    monkeypatch.undo()
    assert main(shlex.split(command)[1:]) == 0
    _same_run(out, straight, epochs=2)          # 2 epochs as planned, not the default 10
    assert json.loads((out / "config.json").read_text())["epochs"] == 2


@pytest.mark.parametrize("options, difference", [
    (["--hidden", "256", "256"], "--hidden 256 256 (the run has 16)"),       # explicit, equal to the default
    (["mnist"], "DATASET mnist (the run has shapeset)"),
    (["--lr", "0.01", "--seed", "3"], "--lr 0.01 (the run has 0.001); --seed 3 (the run has 0)"),
])
def test_resume_with_conflicting_options_lists_the_differences(three_epochs, capsys, options, difference):
    status, _, err = _train(capsys, *options, "--out", three_epochs, "--resume")
    assert status == 2
    _one_line_error(err, f"these options differ: {difference}. Drop them (only --epochs may change)")


def test_resume_epochs_extends_the_run_and_never_shrinks_it(tmp_path, three_epochs, straight, capsys):
    out = _copy(three_epochs, tmp_path)
    status, _, err = _train(capsys, "--out", out, "--resume", "--epochs", "2")
    assert status == 2
    _one_line_error(err, f"--epochs 2: the run in {out} has already done 3 epochs")
    status, stdout, _ = _train(capsys, *SMALL, "--out", out, "--resume", "--epochs", "4")   # same values: fine
    assert status == 0 and "training to 4 epochs" in stdout
    _same_run(out, straight)
    assert json.loads((out / "config.json").read_text())["epochs"] == 4


def test_resume_epochs_below_a_runs_progress_into_the_next_epoch_is_refused(tmp_path, capsys, monkeypatch):
    """Interrupted at update 17 (3 epochs + 2 batches), --resume --epochs 3 saved 3.4 epochs of training as
    "3 epochs" in model.npz, rewrote config.json and left a "complete": false metrics record."""
    out = tmp_path / "run"
    _ctrl_c_at(monkeypatch, 17)
    assert _train(capsys, *SMALL, "--epochs", "4", "--out", out)[0] == 130
    monkeypatch.undo()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    status, _, err = _train(capsys, "--out", out, "--resume", "--epochs", "3")
    assert status == 2
    _one_line_error(err, f"error: --epochs 3: the run in {out} has already done 3 epochs and 2 batches of epoch 4; "
                         f"--epochs can only extend a run")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# --------------------------------------------------------------------------------------- 5. --data-dir
def _idx_folder(folder, splits=("train", "t10k")):
    """Valid (blank) MNIST-sized IDX files: 60,000 + 10,000 28x28 images, labels cycling 0..9."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", 60_000), ("t10k", 10_000)):
        if prefix in splits:
            images = np.zeros((n, 28, 28), np.uint8)
            images[:, 0, 0] = np.arange(n) % 10 * 25          # learnable: the label is in pixel (0, 0)
            write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
            write_idx(folder / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    return folder


def test_data_dir_that_does_not_exist_is_refused(tmp_path, capsys):
    status, _, err = _train(capsys, "mnist", "--data-dir", tmp_path / "nowhere", "--out", tmp_path / "run")
    assert status == 2
    _one_line_error(err, f"error: --data-dir {tmp_path / 'nowhere'}: no such folder")
    assert not (tmp_path / "run").exists()


def test_data_dir_is_used_alone_never_mixed_and_recorded(tmp_path, capsys, monkeypatch):
    full = _idx_folder(tmp_path / "full")
    monkeypatch.setenv("MINIDL_DATA", str(full))            # a complete copy elsewhere must not be used
    only_train = _idx_folder(tmp_path / "only-train", splits=("train",))
    status, _, err = _train(capsys, "mnist", "--data-dir", only_train, "--out", tmp_path / "refused")
    assert status == 2
    _one_line_error(err, f"error: --data-dir {only_train}: {only_train} holds only some of the mnist files: "
                         f"t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] missing", "nowhere else")

    out = tmp_path / "run"
    args = ["mnist", "--data-dir", os.path.relpath(full), "--hidden", "8", "--batch-size", "5000", "--epochs", "1",
            "--val-size", "0", "--no-progress", "--out", out]
    status, stdout, err = _train(capsys, *args)
    assert status == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["data_dir"] == str(full.resolve())
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    assert [entry["path"] for entry in config["data_files"]] == [str(full.resolve() / name) for name in names]
    for entry in config["data_files"]:
        data = open(entry["path"], "rb").read()
        assert entry["bytes"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()
    first = stdout.split("\n")[0]
    assert first.startswith(f"data: mnist from {full.resolve()}: train-images-idx3-ubyte (47,040,016 bytes, sha256 ")

    labels = full / "t10k-labels-idx1-ubyte"                 # the data changes under a finished run
    write_idx(labels, (np.arange(10_000) % 9).astype(np.uint8))
    status, _, err = _train(capsys, "--out", out, "--resume", "--epochs", "2")
    assert status == 2
    _one_line_error(err, f"the data files differ from those recorded in {out / 'config.json'}",
                    f"{labels.resolve()} (test labels)")


# ----------------------------------------------------------------------------------------- 6. SIGTERM
def test_sigterm_is_handled_like_ctrl_c(tmp_path, straight, capsys):
    out = tmp_path / "run"
    run = _hooked(tmp_path, "SIGTERM", 7, *SMALL, "--epochs", "4", "--out", out)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 130
    assert "SIGTERM: stopping after this update and saving a checkpoint" in stderr
    assert (f"training interrupted (SIGTERM) after update 7 (epoch 2, batch 2/5); checkpoint saved to "
            f"{out / 'checkpoint.npz'}.\nResume with: minidl train --out {out} --resume") in stderr
    assert not (out / ".lock").exists()
    assert main(["train", "--out", str(out), "--resume"]) == 0
    _same_run(out, straight)


def test_sigterm_before_training_starts_exits_130_and_changes_nothing(tmp_path, three_epochs, capsys, monkeypatch):
    out = _copy(three_epochs, tmp_path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    import minidl.cli.train as train_cli

    def terminated_while_loading(settings):
        os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(train_cli, "_datasets", terminated_while_loading)
    status, _, err = _train(capsys, "--out", out, "--resume", "--epochs", "4")
    assert status == 130
    _one_line_error(err, f"interrupted before training started; {out} is unchanged")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL          # the handler is put back


def test_ctrl_c_while_the_checkpoint_is_read_says_it_is_unchanged(tmp_path, three_epochs, straight, capsys,
                                                                 monkeypatch):
    """It said "training aborted; no checkpoint has been written" of a run whose checkpoint was intact."""
    out = _copy(three_epochs, tmp_path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def ctrl_c_while_reading(path):
        raise KeyboardInterrupt
    monkeypatch.setattr("minidl.training.trainer.load_checkpoint", ctrl_c_while_reading)
    status, _, err = _train(capsys, "--out", out, "--resume", "--epochs", "4")
    assert status == 130
    _one_line_error(err, f"interrupted while resuming; the run's checkpoint {out / 'checkpoint.npz'} is unchanged; "
                         f"resume with: minidl train --out {out} --resume")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    monkeypatch.undo()
    assert _train(capsys, "--out", out, "--resume", "--epochs", "4")[0] == 0
    _same_run(out, straight)


# Runs the console command's entry point (pyproject.toml) with a Ctrl-C inside the import of MODULE.
CTRL_C_IN_IMPORT = """
import sys
module = sys.argv.pop(1)
from minidl.cli import main
class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == module:
            raise KeyboardInterrupt
sys.meta_path.insert(0, CtrlC())
sys.exit(main())
"""


def test_ctrl_c_during_a_subcommands_imports_is_one_line(tmp_path):
    """A Ctrl-C that no subcommand handles yet (in the imports of `minidl train`) gave a traceback."""
    command = [sys.executable, "-c", CTRL_C_IN_IMPORT, "minidl.training", "train", *SMALL, "--out",
               str(tmp_path / "run")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=PACKAGE_PARENT)
    assert done.returncode == 130
    assert done.stderr == "minidl: interrupted\n"
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- 7. values refused up front
@pytest.mark.parametrize("options, option, problem", [
    (["--epochs", "0"], "--epochs", "must be an integer >= 1, got '0'"),
    (["--epochs", "-3"], "--epochs", "must be an integer >= 1, got '-3'"),
    (["--val-size", "-1"], "--val-size", "must be an integer >= 0, got '-1'"),
    (["--lr", "nan"], "--lr", "must be a finite number > 0, got 'nan'"),
    (["--lr", "inf"], "--lr", "must be a finite number > 0, got 'inf'"),
    (["--eps", "nan"], "--eps", "must be a finite number > 0, got 'nan'"),
    (["--weight-decay", "nan"], "--weight-decay", "must be a finite number >= 0, got 'nan'"),
    (["--momentum", "nan"], "--momentum", "must be a finite number in [0, 1), got 'nan'"),
    (["--momentum", "5"], "--momentum", "must be a finite number in [0, 1), got '5'"),
    (["shapeset", "--test-size", "0"], "--test-size", "must be an integer >= 1, got '0'"),
    (["--seed", "-1"], "--seed", "must be an integer >= 0, got '-1'"),
    (["fashon-mnist"], "DATASET", "unknown 'fashon-mnist'; choose from fashion-mnist, mnist, shapeset"),
    (["--hidden", "0"], "--hidden", "must be an integer >= 1, got '0'"),
])
def test_bad_values_are_refused_before_anything_runs(tmp_path, capsys, options, option, problem):
    status, _, err = _train(capsys, *options, "--out", tmp_path / "run")
    assert status == 2
    _one_line_error(err, f"minidl train: error: argument {option}: {problem}")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("options, problem", [
    (["--hidden", "100000000000"], "cannot build a 1024 -> 100000000000 -> 9 MLP here: not enough memory"),
    (["--hidden", "99999999999999999999999"], "cannot build a 1024 -> 99999999999999999999999 -> 9 MLP here: Maximum"),
    (["--train-size", "100000000000"], "not enough memory for the shapeset data (100,000,000,000 train"),
    (["--train-size", str(10**20)], "not enough memory for the shapeset data (100,000,000,000,000,000,000 train"),
    (["--test-size", str(10**20)], "not enough memory for the shapeset data (50,000 train and "
                                   "100,000,000,000,000,000,000 test images asked)"),
])
def test_sizes_beyond_memory_are_one_line_errors(tmp_path, capsys, options, problem):
    """Each gave a MemoryError or ValueError traceback; sizes past NumPy's largest dimension then said only
    "error: Maximum allowed dimension exceeded", naming no option."""
    status, _, err = _train(capsys, "shapeset", "--val-size", "50", "--no-progress", *options,
                            "--out", tmp_path / "run")
    assert status == 2
    _one_line_error(err, f"error: {problem}")


def test_the_shapeset_test_seed_is_refused_as_a_training_seed(tmp_path, capsys):
    """--seed 2147483647 generated the training set from the test set's seed: all 500 test images were the
    first training images, and the test error was measured on training data."""
    status, _, err = _train(capsys, "shapeset", "--seed", "2147483647", "--out", tmp_path / "run")
    assert status == 2
    _one_line_error(err, "error: --seed 2147483647 is the seed of the shapeset test set; choose another")
    assert not (tmp_path / "run").exists()


def test_an_out_that_is_a_file_is_named_as_such(tmp_path, capsys):
    (tmp_path / "afile").write_text("mine")
    status, _, err = _train(capsys, *SMALL, "--out", tmp_path / "afile")
    assert status == 2
    _one_line_error(err, f"error: --out {tmp_path / 'afile'}: is a file, not a folder")      # was "File exists"
    assert (tmp_path / "afile").read_text() == "mine"


def test_unusable_paths_are_one_line_errors(tmp_path, capsys):
    """`~nobody_here/x` (RuntimeError: Could not determine home directory) and a name over 255 bytes (OSError
    from out.exists(), before any error handling) gave tracebacks."""
    status, _, err = _train(capsys, "mnist", "--data-dir", "~nobody_here/x", "--out", tmp_path / "run")
    assert status == 2
    _one_line_error(err, "error: --data-dir ~nobody_here/x: cannot expand '~nobody_here': no home folder is known")
    long = tmp_path / ("x" * 300)
    status, _, err = _train(capsys, *SMALL, "--out", long)
    assert status == 2
    _one_line_error(err, f"error: --out {long}: File name too long [errno {errno.ENAMETOOLONG}]")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--out", "--data-dir"])
def test_an_empty_path_is_refused(tmp_path, capsys, monkeypatch, option):
    """`--out ""` trained into the current folder (Path("") is ".")."""
    monkeypatch.chdir(tmp_path)
    options = [*SMALL, "--out", ""] if option == "--out" else ["mnist", "--data-dir", "", "--out", "run"]
    status, _, err = _train(capsys, *options)
    assert status == 2
    _one_line_error(err, f"minidl train: error: argument {option}: must be a path, got an empty one")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options", [["shapeset", "mnist"], ["--bogus"]])
def test_unrecognized_arguments_are_one_line(tmp_path, capsys, options):
    status, _, err = _train(capsys, *options, "--out", tmp_path / "run")
    assert status == 2
    _one_line_error(err, f"minidl train: error: unrecognized arguments: {options[-1]} (see minidl train --help)")


@pytest.mark.parametrize("options, problem", [
    (["shapeset", "--data-dir", "."], "--data-dir does not apply to shapeset (it is generated: no files are read)"),
    (["mnist", "--train-size", "100"], "--train-size does not apply to mnist (its split sizes are fixed"),
    ([*SMALL, "--optimizer", "adam", "--momentum", "0.5"], "--momentum does not apply to adam (it is an sgd option)"),
    ([*SMALL, "--nesterov"], "--nesterov does not apply to adam (it is an sgd option)"),
    ([*SMALL, "--optimizer", "sgd", "--betas", "0.8", "0.9"], "--betas does not apply to sgd (it is an adam option)"),
    ([*SMALL, "--optimizer", "sgd", "--eps", "1e-6"], "--eps does not apply to sgd (it is an adam option)"),
    ([*SMALL, "--optimizer", "sgd", "--nesterov", "--momentum", "0"], "--nesterov needs --momentum > 0"),
])
def test_options_that_would_be_ignored_are_refused(tmp_path, capsys, options, problem):
    status, _, err = _train(capsys, *options, "--out", tmp_path / "run")
    assert status == 2
    _one_line_error(err, f"error: {problem}")
    assert not (tmp_path / "run").exists()


def test_options_of_the_other_optimizer_are_refused_on_resume_too(three_epochs, capsys):
    status, _, err = _train(capsys, "--out", three_epochs, "--resume", "--momentum", "0.9")    # an adam run
    assert status == 2
    _one_line_error(err, "error: --momentum does not apply to adam (it is an sgd option)")


def test_nesterov_without_momentum_in_config_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    """An edited config.json with nesterov and momentum 0 gave optim.SGD's ValueError traceback on --resume."""
    out = tmp_path / "run"
    _ctrl_c_at(monkeypatch, 2)
    assert _train(capsys, *SMALL, "--optimizer", "sgd", "--nesterov", "--epochs", "2", "--out", out)[0] == 130
    monkeypatch.undo()
    config = json.loads((out / "config.json").read_text())
    config["momentum"] = 0.0
    (out / "config.json").write_text(json.dumps(config))
    status, _, err = _train(capsys, "--out", out, "--resume")
    assert status == 2
    _one_line_error(err, f"error: {out / 'config.json'}: setting 'nesterov' is true with 'momentum' 0")


def test_validation_set_as_large_as_the_training_set_is_refused(tmp_path, capsys):
    status, _, err = _train(capsys, *SMALL, "--val-size", "300", "--out", tmp_path / "run")
    assert status == 2
    _one_line_error(err, "error: --val-size 300: must be smaller than the 300 training examples")


def test_a_refused_run_leaves_none_of_the_folders_it_made(tmp_path, capsys):
    """--out new/deep/run: the lock made new/ and new/deep/ too, and a refusal removed only run/."""
    (tmp_path / "kept").mkdir()
    status, _, err = _train(capsys, *SMALL, "--val-size", "300", "--out", tmp_path / "new" / "deep" / "run")
    assert status == 2
    _one_line_error(err, "error: --val-size 300: must be smaller")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
    status, _, err = _train(capsys, *SMALL, "--val-size", "300", "--out", tmp_path / "kept" / "run")
    assert status == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"] and not any((tmp_path / "kept").iterdir())


# --------------------------------------------------------------------- bad checkpoints and config.json
def _truncated(path):
    path.write_bytes(path.read_bytes()[:1000])


def _pickled(path):
    path.write_bytes(pickle.dumps({"model": [1, 2, 3]}))


def _object_array(path):
    np.savez(open(path, "wb"), __tree__=np.array([{"a": 1}], dtype=object))


def _plain_npy(path):
    np.save(open(path, "wb"), np.zeros(3))


def _directory(path):
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize("damage, problem", [
    (_truncated, "corrupt or truncated file"),
    (lambda path: path.write_bytes(b""), "empty file"),
    (_pickled, "needs pickle"),
    (_object_array, "needs pickle"),
    (_plain_npy, "a single .npy array (float64, shape (3,)), not an .npz archive"),
    (_directory, "is a directory"),
])
def test_bad_checkpoint_is_a_one_line_error(tmp_path, three_epochs, capsys, damage, problem):
    out = _copy(three_epochs, tmp_path)
    damage(out / "checkpoint.npz")
    metrics = (out / "metrics.jsonl").read_bytes()
    status, _, err = _train(capsys, "--out", out, "--resume", "--epochs", "4")
    assert status == 2
    _one_line_error(err, f"error: cannot resume: load('{out / 'checkpoint.npz'}'): ", problem)
    assert (out / "metrics.jsonl").read_bytes() == metrics


@pytest.mark.parametrize("edit, problem", [
    (lambda state: state["trainer"].update(batch=1_000_000), "batch 1000000) is not one a run over 5 batches"),
    (lambda state: state["trainer"].update(step=-5), "(update -5, epoch 3, batch 0) is not one"),
    (lambda state: state["trainer"].update(step=10**6), "(update 1000000, epoch 3"),
    (lambda state: state["trainer"].update(epoch=None), "epoch None"),
    (lambda state: state.pop("loader"), "not a training checkpoint (missing loader)"),
    (lambda state: state.pop("rng"), "not a training checkpoint (missing rng)"),
])
def test_a_checkpoint_position_no_run_can_reach_is_refused(tmp_path, three_epochs, capsys, edit, problem):
    """A batch past the epoch's end made training spin forever without checking for signals; a negative
    step was reported as 'resumed after update -5'; a missing part gave 'cannot resume: ...: loader'."""
    from minidl.training import load_checkpoint, save_checkpoint
    out = _copy(three_epochs, tmp_path)
    state = load_checkpoint(out / "checkpoint.npz")
    edit(state)
    save_checkpoint(state, out / "checkpoint.npz")
    status, _, err = _train(capsys, "--out", out, "--resume", "--epochs", "4")
    assert status == 2
    _one_line_error(err, f"error: cannot resume: {out / 'checkpoint.npz'}: ", problem)


def test_checkpoint_of_another_architecture_is_a_one_line_error(tmp_path, three_epochs, capsys):
    other = tmp_path / "other"
    assert _train(capsys, *SMALL, "--hidden", "24", "--epochs", "1", "--out", other)[0] == 0
    out = _copy(three_epochs, tmp_path)
    shutil.copy(other / "checkpoint.npz", out / "checkpoint.npz")
    status, _, err = _train(capsys, "--out", out, "--resume", "--epochs", "4")
    assert status == 2
    _one_line_error(err, f"error: cannot resume: {out / 'checkpoint.npz'}: ",
                    "has shape (1024, 24) in the state dict but (1024, 16) in the model")


@pytest.mark.parametrize("edit, problem", [
    (lambda text: text[:-5], "config.json: unreadable (Expecting"),
    (lambda text: "[1, 2]", "config.json: expected a JSON object of settings, found a list"),
    (lambda text: text.replace('"seed": 0,', ''), "config.json: missing setting(s) seed"),
    (lambda text: text.replace('"lr": 0.001', '"lr": -1'), "config.json: setting 'lr': must be a finite number > 0"),
    (lambda text: text.replace('"activation": "relu"', '"activation": "rleu"'), "config.json: setting 'activation'"),
])
def test_bad_config_is_a_one_line_error(tmp_path, three_epochs, capsys, edit, problem):
    out = _copy(three_epochs, tmp_path)
    (out / "config.json").write_text(edit((out / "config.json").read_text()))
    status, _, err = _train(capsys, "--out", out, "--resume", "--epochs", "4")
    assert status == 2
    _one_line_error(err, "error: ", problem)


@pytest.mark.parametrize("edit, problem", [
    (lambda text: text.replace('"lr": 0.001', '"lr": 0.5'), "lr 0.5 (the checkpoint's optimizer has 0.001)"),
    (lambda text: text.replace('"eps": 1e-08', '"eps": 0.001'), "eps 0.001 (the checkpoint's optimizer has 1e-08)"),
])
def test_optimizer_settings_edited_in_config_are_refused_on_resume(tmp_path, three_epochs, capsys, edit, problem):
    """The checkpoint's lr was used while config.json was rewritten saying 0.5."""
    out = _copy(three_epochs, tmp_path)
    (out / "config.json").write_text(edit((out / "config.json").read_text()))
    config = (out / "config.json").read_bytes()
    status, _, err = _train(capsys, "--out", out, "--resume", "--epochs", "4")
    assert status == 2
    _one_line_error(err, "config.json was edited after the run started: ", problem)
    assert (out / "config.json").read_bytes() == config


@pytest.mark.parametrize("key, value, difference", [
    ("activation", "tanh", "activation tanh (the checkpoint's run has relu)"),
    ("test_size", 7, "test_size 7 (the checkpoint's run has 100)"),
    ("init", "standard", "init standard (the checkpoint's run has xavier_uniform)"),
])
def test_run_settings_edited_in_config_are_refused_on_resume(tmp_path, three_epochs, capsys, key, value, difference):
    """relu -> tanh in config.json continued the relu weights with tanh; test_size 50 -> 7 evaluated the
    later epochs on 7 images: the checkpoint now records the settings it was trained with."""
    out = _copy(three_epochs, tmp_path)
    config = json.loads((out / "config.json").read_text())
    config[key] = value
    (out / "config.json").write_text(json.dumps(config))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    status, _, err = _train(capsys, "--out", out, "--resume", "--epochs", "4")
    assert status == 2
    _one_line_error(err, f"error: {out / 'config.json'} was edited after the run started: {difference}; a resumed")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def _snapshot(folder):
    """Every file under `folder`: {path: (bytes, mtime in ns)}."""
    return {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in sorted(folder.rglob("*")) if path.is_file()}


def _edit_config(key, value):
    def edit(out):
        config = json.loads((out / "config.json").read_text())
        config[key] = value
        (out / "config.json").write_text(json.dumps(config))
    return edit


@pytest.mark.parametrize("ahead", [
    b'{"epoch": 4, "step": 20, "complete": true}\n',           # epoch 4's checkpoint failed after its line
    b'{"epoch": 4, "st',                                       # a torn last line (resume moves it to .bad)
], ids=["record past the checkpoint", "torn last line"])
@pytest.mark.parametrize("edit, options, problem", [
    (_edit_config("activation", "tanh"), [], "was edited after the run started: activation tanh"),
    (_edit_config("lr", 0.5), [], "was edited after the run started: lr 0.5"),
    (None, ["--epochs", "2"], "--epochs 2: the run in"),
    (_edit_config("epochs", 2), [], "--epochs 2: the run in"),
    (_edit_config("batch_size", 25), [], "was written with a different training loader: batch_size 50 (now 25)"),
    (None, ["--hidden", "64"], "these options differ: --hidden 64 (the run has 16)"),
    (lambda out: (out / "checkpoint.npz").write_bytes(b"not an archive"), [], "cannot resume: load("),
], ids=["run setting edited", "optimizer setting edited", "--epochs below", "config epochs below", "loader changed",
        "option differs", "damaged checkpoint"])
def test_a_refused_resume_leaves_every_file_as_it_was(tmp_path, three_epochs, capsys, ahead, edit, options, problem):
    """The metrics lines past the checkpoint were trimmed (and a torn one moved to metrics.jsonl.bad) by the
    resume before its settings were compared and it was refused: the refused run had rewritten the folder."""
    out = _copy(three_epochs, tmp_path)
    with open(out / "metrics.jsonl", "ab") as metrics:
        metrics.write(ahead)
    if edit is not None:
        edit(out)
    before = _snapshot(out)
    status, stdout, err = _train(capsys, "--out", out, "--resume", *options)
    assert status == 2
    _one_line_error(err, problem)
    assert _snapshot(out) == before
    assert "removed" not in stdout + err and "moved" not in stdout + err


def test_a_folder_where_the_weights_go_is_refused_before_training(tmp_path, three_epochs, capsys):
    """model.npz made a folder: the resumed run trained to the end, rewrote metrics, config and checkpoint,
    and only then failed to write the weights."""
    out = _copy(three_epochs, tmp_path)
    (out / "model.npz").unlink()
    (out / "model.npz").mkdir()
    before = _snapshot(out)
    status, _, err = _train(capsys, "--out", out, "--resume", "--epochs", "4", "--no-progress")
    assert status == 2
    _one_line_error(err, f"error: {out / 'model.npz'} is not a file, and the resumed run writes its final weights")
    assert _snapshot(out) == before


def test_a_checkpoint_without_run_settings_still_resumes(tmp_path, three_epochs, straight, capsys):
    """Checkpoints written before the run's settings were recorded resume as before."""
    from minidl.training import load_checkpoint, save_checkpoint
    out = _copy(three_epochs, tmp_path)
    state = load_checkpoint(out / "checkpoint.npz")
    state.pop("run", None)
    save_checkpoint(state, out / "checkpoint.npz")
    status, _, err = _train(capsys, "--out", out, "--resume", "--epochs", "4")
    assert status == 0, err
    _same_run(out, straight)


def test_changed_batch_size_is_a_one_line_error(tmp_path, three_epochs, capsys):
    out = _copy(three_epochs, tmp_path)
    config = json.loads((out / "config.json").read_text())
    config["batch_size"] = 25
    (out / "config.json").write_text(json.dumps(config))
    status, _, err = _train(capsys, "--out", out, "--resume", "--epochs", "4")
    assert status == 2
    _one_line_error(err, f"error: cannot resume: {out / 'checkpoint.npz'} was written with a different training "
                         f"loader: batch_size 50 (now 25)")


# ------------------------------------------------------------------------ full disk, read-only folder
def test_full_disk_at_a_checkpoint_keeps_the_last_good_one(tmp_path, straight, capsys, monkeypatch):
    out = tmp_path / "run"
    real_write, calls = serialization._write_npz, []

    def disk_full_at_the_second_checkpoint(file, arrays):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(file, arrays)
    monkeypatch.setattr(serialization, "_write_npz", disk_full_at_the_second_checkpoint)
    status, _, err = _train(capsys, *SMALL, "--epochs", "4", "--out", out)
    assert status == 2
    _one_line_error(err, f"error: {out / 'checkpoint.npz'}: No space left on device [errno 28]; the last good "
                         f"checkpoint is {out / 'checkpoint.npz'} (after update 5)",
                    f"resume with: minidl train --out {out} --resume")
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz", "config.json", "metrics.jsonl"]  # no temp
    monkeypatch.undo()
    status, stdout, err = _train(capsys, "--out", out, "--resume")
    assert status == 0, err
    assert "removed 1 record(s) past update 5 (epoch 2), where training continues: it writes them anew" in stdout
    _same_run(out, straight)


def test_read_only_folder_is_a_one_line_error(tmp_path, three_epochs, capsys, monkeypatch):
    out = _copy(three_epochs, tmp_path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(out)):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(os, "open", read_only)
    status, _, err = _train(capsys, "--out", out, "--resume", "--epochs", "4")
    assert status == 2
    _one_line_error(err, f"error: {out / '.lock'}: Read-only file system [errno 30]")
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_metrics_write_failing_mid_run_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    import minidl.training.trainer as trainer_module
    real_append = trainer_module.append_record

    def fails_at_epoch_3(path, record):
        if record["epoch"] == 3:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        real_append(path, record)
    monkeypatch.setattr(trainer_module, "append_record", fails_at_epoch_3)
    status, _, err = _train(capsys, *SMALL, "--epochs", "4", "--out", out)
    assert status == 2
    _one_line_error(err, f"error: {out / 'metrics.jsonl'}: Read-only file system [errno 30]; the last good "
                         f"checkpoint is {out / 'checkpoint.npz'} (after update 10)")
    assert [r["epoch"] for r in read_records(out / "metrics.jsonl")] == [1, 2]
