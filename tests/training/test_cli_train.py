"""`minidl train`: options and defaults, output files, exact --resume, Ctrl-C message, refusals."""
import argparse
import json

import numpy as np
import pytest

import minidl as mdl
from minidl.cli import build_parser, main
from minidl.training import Trainer, read_records

SMALL = ["shapeset", "--train-size", "600", "--val-size", "100", "--test-size", "200", "--hidden", "24",
         "--activation", "tanh", "--batch-size", "50", "--no-progress"]


def _numbers(out):
    return [{k: v for k, v in r.items() if k not in {"train_seconds", "samples_per_s"}}
            for r in read_records(out / "metrics.jsonl")]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "straight"
    assert main(["train", *SMALL, "--epochs", "3", "--out", str(out)]) == 0
    return out


def test_help_documents_every_option_with_its_default():
    parser = build_parser()
    train = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    train_parser = train.choices["train"]
    help_text = train_parser.format_help()
    for action in train_parser._actions:
        if action.dest == "help":
            continue
        text = train_parser.formatter_class("x")._get_help_string(action)
        assert "default" in text, action.dest
        for option in action.option_strings:
            assert option in help_text


def test_outputs(straight):
    assert {p.name for p in straight.iterdir()} == {"config.json", "metrics.jsonl", "checkpoint.npz", "model.npz"}
    config = json.loads((straight / "config.json").read_text())
    assert config["dataset"] == "shapeset" and config["hidden"] == [24] and config["epochs"] == 3
    records = read_records(straight / "metrics.jsonl")
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert {"train_loss", "val_error", "test_error"} <= records[0].keys()
    weights = mdl.load(straight / "model.npz")
    assert sorted(w.shape for w in weights.values()) == sorted([(1024, 24), (24,), (24, 9), (9,)])


def test_resume_gives_the_same_numbers(tmp_path, straight):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(out)]) == 0
    assert main(["train", "--out", str(out), "--resume", "--epochs", "3", "--no-progress"]) == 0
    assert _numbers(out) == _numbers(straight)
    a, b = mdl.load(out / "model.npz"), mdl.load(straight / "model.npz")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_ctrl_c_message_and_resume(tmp_path, straight, monkeypatch, capsys):
    out = tmp_path / "run"
    original = Trainer._run_callbacks

    def interrupt_at_update_17(self):
        original(self)
        if self.step == 17:
            raise KeyboardInterrupt
    monkeypatch.setattr(Trainer, "_run_callbacks", interrupt_at_update_17)
    assert main(["train", *SMALL, "--epochs", "3", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert f"checkpoint saved to {out / 'checkpoint.npz'}" in err
    assert f"Resume with: minidl train --out {out} --resume" in err
    monkeypatch.setattr(Trainer, "_run_callbacks", original)
    assert main(["train", "--out", str(out), "--resume", "--epochs", "3", "--no-progress"]) == 0
    assert _numbers(out) == _numbers(straight)


def test_refuses_to_overwrite_a_run(straight, capsys):
    assert main(["train", *SMALL, "--out", str(straight)]) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err


def test_resume_refuses_changed_settings(straight, capsys):
    assert main(["train", "--out", str(straight), "--resume", "--hidden", "64"]) == 2
    assert "--hidden 64 (the run has 24)" in capsys.readouterr().err


def test_resume_of_nothing(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert not (tmp_path / "empty").exists()


def test_missing_dataset_is_a_clear_error(tmp_path, monkeypatch, capsys):
    from minidl.data import datasets
    monkeypatch.setattr(datasets, "WELL_KNOWN_ROOTS", [])
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    assert main(["train", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --data-dir {tmp_path}: no folder holds the mnist files") and err.count("\n") == 1
    assert main(["train", "mnist", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no folder holds the mnist files" in err and "Searched, in order" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_an_out_folder_named_in_bytes_that_are_not_utf8_is_printed_as_stderr_prints_it(tmp_path):
    """Under a UTF-8 locale with strict output (en_US.UTF-8), `--out $'run\\xff'` ended in a UnicodeEncodeError
    traceback after the data was made: the folder's name held a surrogate that stdout refused."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import minidl

    out = os.fsencode(tmp_path) + b"/run\xff"
    package_parent = str(Path(minidl.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONIOENCODING="utf-8:strict", PYTHONPATH=package_parent)
    # run from the tested package's parent: `-m` puts the working folder first on sys.path, and CI's checkout
    # holds the sources without the compiled core (the package tested is the installed one)
    result = subprocess.run([sys.executable, "-m", "minidl", "train", *SMALL, "--epochs", "1",
                             "--out", out], capture_output=True, env=env, timeout=300, cwd=package_parent)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr.decode(errors="replace")
    assert b"/run\\udcff/model.npz" in result.stdout and os.path.isfile(out + b"/model.npz")


class _FullDisk:
    """Standard output redirected into a full disk: what is printed is buffered, a flush fails (ENOSPC)."""

    def __init__(self, fail_on_write=False):
        self.fail_on_write = fail_on_write

    def write(self, text):
        if self.fail_on_write:
            raise OSError(28, "No space left on device")
        return len(text)

    def flush(self):
        raise OSError(28, "No space left on device")


def test_standard_output_that_cannot_be_written_is_named_in_one_line(tmp_path, capsys, monkeypatch):
    """`minidl train ... > /dev/full` said only "error: No space left on device [errno 28]"."""
    monkeypatch.setattr("sys.stdout", _FullDisk())
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err == "error: standard output: No space left on device [errno 28]\n"    # the data line's flush
    assert not (tmp_path / "o").exists()
    monkeypatch.setattr("sys.stdout", _FullDisk(fail_on_write=True))
    assert main([]) == 1                                   # the help, printed by argparse
    assert capsys.readouterr().err == "minidl: standard output: No space left on device [errno 28]\n"
    monkeypatch.setattr("sys.stdout", None)                # `minidl >&-`: Python has no sys.stdout at all
    assert main([]) == 0 and "usage: minidl" in capsys.readouterr().err

