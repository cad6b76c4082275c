"""`minidl reproduce` never overwrites a study, refuses bad input before any work, holds a lock, keeps its
status true (SIGTERM like Ctrl-C) and resumes an interrupted study to the same results."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minidl.cli import main
from minidl.experiments.study import comparable

from study_helpers import PACKAGE_PARENT, TINY, results_of as _results, start_study
from study_helpers import wait_for_checkpoint as _wait_for_checkpoint


def _start(out: Path) -> subprocess.Popen:
    return start_study(TINY + ["--out", str(out)])


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def test_a_complete_study_has_its_report_and_figures_and_no_checkpoints_left(uninterrupted, tmp_path):
    assert uninterrupted["status"] == "complete" and len(uninterrupted["training"]["runs"]) == 4
    assert [r["execution"]["task"] for r in uninterrupted["training"]["runs"]] == [
        "run-tanh-standard-seed0", "run-tanh-xavier_uniform-seed0", "run-tanh-standard-seed1",
        "run-tanh-xavier_uniform-seed1"]
    assert all(r["execution"]["attempts"] == 1 and r["execution"]["resumed_from_update"] is None
               for r in uninterrupted["training"]["runs"])


def test_an_occupied_out_is_refused_and_the_old_study_is_untouched(uninterrupted, tmp_path, capsys):
    out = tmp_path / "study"
    out.mkdir()
    (out / "results.json").write_text(json.dumps(uninterrupted))
    (out / "report.md").write_text("the old report")
    before = _snapshot(out)
    assert main(TINY + ["--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "is not empty" in error and "--resume" in error and len(error.strip().splitlines()) == 1
    assert _snapshot(out) == before
    assert main(TINY[:1] + ["--out", str(out), "--resume", "--no-progress"]) == 2      # complete: nothing to do
    assert "complete; nothing to resume" in capsys.readouterr().err and _snapshot(out) == before


@pytest.mark.parametrize("options,message", [
    (["--seeds", "1,1"], "seeds must be distinct non-negative integers, got 1,1"),
    (["--workers", "2", "--scheduler", "tcp://localhost:1"], "not both"),
    (["--workers", "1000000"], "--workers 1000000: a cluster on this machine runs at most one run per core"),
    (["--dataset", "fashion-mnist", "--data-dir", "/nonexistent/minidl"],
     "--data-dir /nonexistent/minidl: no such folder"),
    (["--data-dir", "/nonexistent/minidl"], "--data-dir does not apply to shapeset"),
    (["--resume"], "--resume needs --out"),
    (["--init-depths", "5,10"], "--init-depths does not apply with --skip-at-init (that part is not run)"),
    (["--skip-training"], "with --skip-training leaves nothing to run"),
    (["--lr-search-updates", "50"], "--lr-search-updates applies to the learning-rate search: add --lr-search"),
])
def test_bad_options_are_one_line_errors_before_any_work(tmp_path, capsys, options, message):
    out = tmp_path / "study"
    args = [a for a in TINY if a != "--no-progress"] + options + ["--no-progress"]
    if options != ["--resume"]:
        args += ["--out", str(out)]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1 and error.startswith("minidl reproduce: ")
    assert not out.exists()


@pytest.mark.parametrize("options,message", [
    (["--lr", "nan"], "argument --lr: must be a finite number > 0, got 'nan'"),
    (["--lr", "-1"], "argument --lr: must be a finite number > 0, got '-1'"),
    (["--lr-search", "--lr-grid", "0.1,inf"], "argument --lr-grid: must be a finite number > 0, got 'inf'"),
    (["--lr-search", "--lr-grid", "0.1,,0.3"], "argument --lr-grid: has an empty item: '0.1,,0.3'"),
    (["--time-budget", "-1"], "argument --time-budget: must be a finite number >= 0, got '-1'"),
    (["--time-budget", "nan"], "argument --time-budget: must be a finite number >= 0, got 'nan'"),
    (["--seeds=-1"], "argument --seeds: must be an integer >= 0, got '-1'"),
    (["--seeds", "0,,1"], "argument --seeds: has an empty item: '0,,1'"),
    (["--updates", "0"], "argument --updates: must be an integer >= 1, got '0'"),
    (["--depth", "0"], "argument --depth: must be an integer >= 1, got '0'"),
    (["--width", "-3"], "argument --width: must be an integer >= 1, got '-3'"),
    (["--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got '0'"),
    (["--init-depths", "1"], "argument --init-depths: must be an integer >= 2, got '1'"),
    (["--init-depths", "5,,10"], "argument --init-depths: has an empty item: '5,,10'"),
    (["--activations", "tanh,,relu"], "argument --activations: has an empty item: 'tanh,,relu'"),
    (["--checkpoint-every", "0"], "argument --checkpoint-every: must be an integer >= 1, got '0'"),
    (["--threads-per-run", "0"], "argument --threads-per-run: must be an integer >= 1, got '0'"),
    (["--workers", "0"], "argument --workers: must be an integer >= 1, got '0'"),
    (["--max-attempts", "0"], "argument --max-attempts: must be an integer >= 1, got '0'"),
    (["--out", ""], "argument --out: must be a path, got an empty one"),
    (["--data-dir", ""], "argument --data-dir: must be a path, got an empty one"),
])
def test_bad_values_are_argparse_errors_naming_the_option_and_value(tmp_path, capsys, options, message):
    """Bounds were checked after parsing, in words naming neither ("training needs depth, width, updates, batch
    size >= 1 and at least one seed" for --depth 0); an empty item ("5,,10") was dropped in silence; --out ''
    wrote the study to a default folder under runs/."""
    out = tmp_path / "study"
    args = [a for a in TINY if a != "--no-progress"] + ["--no-progress", "--out", str(out)] + options
    with pytest.raises(SystemExit) as exit_:
        main(args)
    error = capsys.readouterr().err
    assert exit_.value.code == 2 and message in error and len(error.strip().splitlines()) == 1, error
    assert error.startswith("minidl reproduce: error: ") and not out.exists()


def test_a_missing_dataset_is_a_one_line_error_before_any_work(tmp_path, capsys, monkeypatch):
    from minidl.data import datasets

    monkeypatch.setattr(datasets, "WELL_KNOWN_ROOTS", [tmp_path / "nowhere"])
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    out = tmp_path / "study"
    assert main(["reproduce", "--quick", "--dataset", "mnist", "--no-progress", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "no folder holds the mnist files" in error and "Searched:" in error and "--data-dir" in error
    assert len(error.strip().splitlines()) == 1 and not out.exists()


def test_resume_refuses_options_that_change_the_study_and_a_folder_without_one(tmp_path, capsys):
    out = tmp_path / "study"
    out.mkdir()
    assert main(["reproduce", "--out", str(out), "--resume", "--width", "10", "--no-progress"]) == 2
    assert "drop --width" in capsys.readouterr().err
    assert main(["reproduce", "--out", str(out), "--resume", "--no-progress"]) == 2
    assert "results.json does not exist; nothing to resume" in capsys.readouterr().err
    (out / "results.json").write_text('{"format": "minidl-reproduce/1", "status": "interrupted"}')
    assert main(["reproduce", "--out", str(out), "--resume", "--no-progress"]) == 2
    assert "was written by a minidl that cannot resume studies" in capsys.readouterr().err
    (out / "results.json").write_text('{"format": "something else"}')
    assert main(["reproduce", "--out", str(out), "--resume", "--no-progress"]) == 2
    assert "is not a minidl reproduce study" in capsys.readouterr().err


def test_a_folder_in_use_is_refused_with_its_holder(tmp_path, capsys):
    from minidl.training.run_lock import acquire

    out = tmp_path / "study"
    with acquire(out, "another minidl reproduce"):
        assert main(TINY + ["--out", str(out)]) == 2
        error = capsys.readouterr().err
        assert "in use by another minidl reproduce" in error and f"PID {os.getpid()}" in error
        assert [p.name for p in out.iterdir()] == [".lock"]


def test_sigterm_is_handled_like_ctrl_c_and_resume_gives_the_same_results(uninterrupted, tmp_path):
    out = tmp_path / "study"
    process = _start(out)
    _wait_for_checkpoint(process, out, runs_done=1)          # one run finished, the second one under way
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and f"minidl reproduce --out {out} --resume" in err
    results = _results(out)
    assert results["status"] == "interrupted"
    kept = comparable(results)["training"]["runs"]                                  # finished work kept
    assert len(kept) >= 1 and kept == comparable(uninterrupted)["training"]["runs"][:len(kept)]
    assert "The study was interrupted" in (out / "report.md").read_text()
    checkpoints = list((out / "checkpoints").glob("*.npz"))
    assert len(checkpoints) == 1                       # the run in progress saved its state when stopped
    assert main(["reproduce", "--out", str(out), "--resume", "--no-progress"]) == 0
    resumed = _results(out)
    assert resumed["status"] == "complete" and comparable(resumed) == comparable(uninterrupted)
    continued = [r for r in resumed["training"]["runs"] if r["execution"]["resumed_from_update"]]
    assert len(continued) == 1 and continued[0]["execution"]["attempts"] == 2
    assert not (out / "checkpoints").exists()
    assert len(resumed["execution"]["invocations"]) == 2


def test_sigterm_outside_a_run_stops_a_study_started_with_ctrl_c_ignored(tmp_path):
    """`minidl reproduce &` from a script starts with SIGINT ignored; SIGTERM was turned into a SIGINT,
    which was ignored too: the study ran on to `complete` with exit 0."""
    out = tmp_path / "study"
    script = (
        "import os, signal, sys\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "from minidl.experiments import data\n"
        "load = data.load_study_data\n"
        "def load_then_terminate(*args, **kwargs):\n"
        "    loaded = load(*args, **kwargs)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return loaded\n"
        "data.load_study_data = load_then_terminate\n"
        "from minidl.cli import main\n"
        f"sys.exit(main({TINY + ['--out', str(out)]!r}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=PACKAGE_PARENT)
    assert done.returncode == 130, done.stderr
    assert _results(out)["status"] == "interrupted"


def test_the_trainer_leaves_an_ignored_ctrl_c_ignored():
    from minidl.training.trainer import _StopSignals

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _StopSignals():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_killed_client_is_resumed_from_its_checkpoints_to_the_same_results(uninterrupted, tmp_path):
    out = tmp_path / "study"
    process = _start(out)
    checkpoint = _wait_for_checkpoint(process, out)
    process.kill()                                      # SIGKILL: no handler, no last words
    process.communicate(timeout=60)
    assert _results(out)["status"] == "running" and checkpoint.exists()
    assert main(["reproduce", "--out", str(out), "--resume", "--no-progress"]) == 0   # the stale lock is taken over
    resumed = _results(out)
    assert resumed["status"] == "complete" and comparable(resumed) == comparable(uninterrupted)
    assert any(r["execution"]["resumed_from_update"] for r in resumed["training"]["runs"])


def test_ctrl_c_while_the_report_is_written_leaves_status_interrupted(tmp_path, monkeypatch, capsys):
    from minidl.experiments import figures

    out = tmp_path / "study"
    real = figures.draw_all
    calls = []

    def draw_once_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(figures, "draw_all", draw_once_then_interrupt)
    args = [a if a != "300" else "20" for a in TINY]
    assert main(args + ["--out", str(out)]) == 130
    assert _results(out)["status"] == "interrupted"
    assert "wrote" not in capsys.readouterr().out


def test_ctrl_c_while_the_report_imports_matplotlib_is_an_interrupt_and_the_report_is_written(tmp_path):
    """The import stopped half-way left matplotlib's submodules behind; drawing what finished imported it again,
    which raised AttributeError, and the Ctrl-C was reported as "the study failed"."""
    out = tmp_path / "study"
    args = [a if a != "300" else "20" for a in TINY]
    script = (
        "import importlib.abc, sys\n"
        "class CtrlCInMatplotlib(importlib.abc.MetaPathFinder):\n"     # Ctrl-C once, amid matplotlib's import
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'matplotlib.colors':\n"
        "            sys.meta_path.remove(self)\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, CtrlCInMatplotlib())\n"
        "from minidl.cli import main\n"
        f"sys.exit(main({args + ['--out', str(out)]!r}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=PACKAGE_PARENT)
    assert done.returncode == 130 and "failed" not in done.stderr, done.stderr
    assert f"what finished is in {out} (report.md, results.json)" in done.stderr
    assert _results(out)["status"] == "interrupted" and "The study was interrupted" in (out / "report.md").read_text()


def test_a_report_that_cannot_be_written_after_ctrl_c_leaves_the_interrupt_reported(tmp_path, monkeypatch, capsys):
    from minidl.experiments import figures

    def interrupted_then_broken(*args, **kwargs):
        if not calls:
            calls.append(1)
            raise KeyboardInterrupt
        raise AttributeError("module 'matplotlib' has no attribute 'get_data_path'")

    calls = []
    monkeypatch.setattr(figures, "draw_all", interrupted_then_broken)
    out = tmp_path / "study"
    assert main([a if a != "300" else "20" for a in TINY] + ["--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "report.md was not written (AttributeError: module 'matplotlib'" in err and "failed" not in err, err
    assert "interrupted: what finished is in" in err and _results(out)["status"] == "interrupted"
    assert "(results.json; report.md was not written)" in err


def test_an_old_report_is_not_called_written_by_a_resumed_study_that_could_not_write_its_own(tmp_path,
                                                                                            monkeypatch, capsys):
    """--resume finds the last run's report.md: the message took it for the one just written."""
    from minidl.experiments import figures

    out = tmp_path / "study"
    calls = []

    def interrupted_then_broken(*args, **kwargs):
        if not calls:
            calls.append(1)
            raise KeyboardInterrupt
        raise OSError("disk full")
    monkeypatch.setattr(figures, "draw_all", interrupted_then_broken)
    tiny = [a if a != "300" else "20" for a in TINY]
    assert main(tiny + ["--out", str(out)]) == 130
    (out / "report.md").write_text("the last run's report\n")
    os.utime(out / "report.md", (time.time() - 60, time.time() - 60))
    calls.clear()
    capsys.readouterr()
    assert main(["reproduce", "--out", str(out), "--resume"]) == 130
    assert "(results.json; report.md was not written)" in capsys.readouterr().err


def test_a_full_disk_is_named_where_it_struck_and_the_study_resumes(uninterrupted, tmp_path, monkeypatch, capsys):
    """The figures fill the disk, then results.json cannot take the status `failed` either: that second error
    replaced the first, so the message named results.json (whatever had filled the disk) and said nothing of
    how to go on."""
    import errno

    from minidl.experiments import figures
    from minidl.experiments.study import Study

    out = tmp_path / "study"
    figure = out / "figures" / "fig11_12_learning_curves.png"
    save = Study.save

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(figure))

    def save_until_full(self):
        if self.results["status"] != "running":
            events.append("status not saved")
            raise OSError(errno.ENOSPC, "No space left on device", str(out / "results.json"))
        save(self)
    events = []
    close_runner = Study._close_runner

    def close_and_note(self):
        events.append("runner closed")
        close_runner(self)
    monkeypatch.setattr(figures, "draw_all", disk_full)
    monkeypatch.setattr(Study, "save", save_until_full)
    monkeypatch.setattr(Study, "_close_runner", close_and_note)
    assert main(TINY + ["--out", str(out)]) == 1
    # the runner is closed (again: idempotent) after the failed status write, as a Dask cluster's workers must be
    assert events[-2:] == ["status not saved", "runner closed"], events
    err = capsys.readouterr().err
    assert f"the study failed (OSError: [Errno 28] No space left on device: '{figure}')" in err, err
    assert f"fix this, then continue with: minidl reproduce --out {out} --resume" in err
    assert "results.json was not updated" in err and "Traceback" not in err
    assert _results(out)["status"] == "running"             # the last status it could write
    monkeypatch.undo()
    assert main(["reproduce", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert comparable(_results(out)) == comparable(uninterrupted)


def test_a_second_ctrl_c_while_the_status_is_written_never_leaves_it_running(tmp_path, monkeypatch, capsys):
    """Two Ctrl-C 30 ms apart: the second cut the write of `interrupted` short, and results.json said `running`."""
    from minidl.experiments import training_study
    from minidl.experiments.study import Study

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    save, sent = Study.save, []

    def save_amid_a_second_ctrl_c(self):
        if self.results["status"] != "running" and not sent:
            sent.append(self.results["status"])
            os.kill(os.getpid(), signal.SIGINT)         # a real signal: raised at once where nothing holds it
        save(self)

    monkeypatch.setattr(training_study, "train_run", ctrl_c)
    monkeypatch.setattr(Study, "save", save_amid_a_second_ctrl_c)
    out = tmp_path / "study"
    assert main(TINY + ["--out", str(out)]) == 130
    assert sent == ["interrupted"] and _results(out)["status"] == "interrupted"
    assert "interrupted: what finished is in" in capsys.readouterr().err


def test_interrupts_held_delay_ctrl_c_and_sigterm_to_the_end_of_the_block():
    from minidl.interrupts import interrupts_held, sigterm_as_ctrl_c

    for signum in (signal.SIGINT, signal.SIGTERM):
        done = []
        with sigterm_as_ctrl_c(), pytest.raises(KeyboardInterrupt):
            with interrupts_held():
                os.kill(os.getpid(), signum)
                time.sleep(0.05)                    # the handler runs here, in the block, and is held
                done.append(True)
        assert done == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_interrupts_held_leave_an_ignored_ctrl_c_ignored():
    from minidl.interrupts import interrupts_held

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts_held():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("changed", [False, True], ids=["intact", "one-digit-changed"])
def test_a_record_left_by_a_finished_run_is_kept_not_trained_again(uninterrupted, tmp_path, changed, capsys):
    """As if the client had been killed after the last run finished on a worker but before it saved the
    record. One changed digit in that file (still valid JSON) went into results.json and the report."""
    from minidl.experiments.results import write_json_sealed

    out = tmp_path / "study"
    (out / "checkpoints").mkdir(parents=True)
    results = json.loads(json.dumps(uninterrupted))
    last = results["training"]["runs"].pop()
    results["status"] = "interrupted"
    (out / "results.json").write_text(json.dumps(results))
    left = out / "checkpoints" / f"{last['execution']['task']}.npz.record.json"
    write_json_sealed(left, last)
    if changed:
        text = left.read_text()
        error = json.dumps(last["final_test_error"])
        left.write_text(text.replace(f'"final_test_error":{error}', f'"final_test_error":{error[:-1]}9', 1))
        assert left.read_text() != text
    capsys.readouterr()
    assert main(["reproduce", "--out", str(out), "--resume", "--no-progress"]) == 0
    said = capsys.readouterr()
    assert (f"{left} was changed since its run wrote it, or is another run's: {last['execution']['task']} is "
            f"trained again" in said.out + said.err) is changed
    resumed = _results(out)
    assert comparable(resumed) == comparable(uninterrupted)      # a changed record is trained again, not taken
    if not changed:
        assert resumed["training"]["runs"][-1]["execution"] == last["execution"]  # the same record, not a new run
    assert not (out / "checkpoints").exists()


def test_records_that_do_not_fit_the_study_are_dropped_and_run_again(uninterrupted, tmp_path):
    """A resumed results.json with a duplicate run, a seed the study does not have and a record of other
    settings (another study's, copied in) reported them all beside the study's own (n=3 for two seeds)."""
    out = tmp_path / "study"
    out.mkdir()
    results = json.loads(json.dumps(uninterrupted))
    runs = results["training"]["runs"]
    stranger = json.loads(json.dumps(runs[0]))
    stranger["seed"], stranger["execution"]["task"] = 7, "run-tanh-standard-seed7"
    other_settings = runs.pop()
    other_settings = dict(other_settings, updates_planned=other_settings["updates_planned"] * 3)
    runs += [json.loads(json.dumps(runs[1])), stranger, other_settings]
    results["status"] = "interrupted"
    (out / "results.json").write_text(json.dumps(results))
    assert main(["reproduce", "--out", str(out), "--resume", "--no-progress"]) == 0
    resumed = _results(out)
    assert comparable(resumed) == comparable(uninterrupted)
    assert [r["execution"]["task"] for r in resumed["training"]["runs"]] == [
        r["execution"]["task"] for r in uninterrupted["training"]["runs"]]
    assert resumed["training"]["runs"][-1]["execution"]["attempts"] == 1        # run again, not the copy


def test_a_study_stopped_as_it_starts_can_be_resumed(uninterrupted, tmp_path, monkeypatch):
    """figures/ was made before the first results.json: a kill in between left a folder that a new run calls
    not empty and --resume finds nothing in. results.json comes first now."""
    import pathlib

    out = tmp_path / "study"
    real_mkdir = pathlib.Path.mkdir

    def stop_at_figures(self, *args, **kwargs):
        if self.name == "figures" and self.parent == out:
            raise KeyboardInterrupt
        return real_mkdir(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(pathlib.Path, "mkdir", stop_at_figures)
        assert main(TINY + ["--out", str(out)]) == 130
    assert (out / "results.json").exists()
    assert main(["reproduce", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert comparable(_results(out)) == comparable(uninterrupted)
