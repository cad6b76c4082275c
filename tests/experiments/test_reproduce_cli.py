"""`minidl reproduce --quick` end to end (small widths: ~10-30 s) and an interrupted study."""
import json

import numpy as np
import pytest

from minidl.cli import main

SMALL = ["reproduce", "--quick", "--dataset", "shapeset", "--no-progress", "--width", "40",
         "--init-depths", "4", "--updates", "40"]
FIGURES = {"fig2_sigmoid_activation_mean_std.png", "fig3_tanh_softsign_percentiles.png",
           "fig4_final_activation_histograms.png", "fig6_activation_histograms_init.png",
           "fig7_backprop_gradient_histograms_init.png", "fig8_weight_gradient_histograms_init.png",
           "fig11_12_learning_curves.png", "variance_propagation.png", "jacobian_singular_values.png"}


def test_quick_writes_report_figures_results_and_csvs(tmp_path):
    out = tmp_path / "run"
    assert main(SMALL + ["--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["format"] == "minidl-reproduce/1" and results["status"] == "complete"
    for key in ("started", "finished", "wall_seconds", "config", "environment", "data", "at_init", "training",
                "paper_table1"):
        assert key in results
    assert results["data"]["name"] == "shapeset" and "requested" in results["data"]["reason"]
    record = results["at_init"][0]
    for key in ("activation", "scheme", "depth", "layers", "summary", "histograms", "output_gradient_var"):
        assert key in record
    layer = record["layers"][0]
    for key in ("activation", "backprop_gradient", "weight_gradient", "pre_activation", "predicted",
                "jacobian_mean_singular_value"):
        assert key in layer
    runs = results["training"]["runs"]
    assert {(r["activation"], r["scheme"]) for r in runs} == {
        (a, s) for a in ("sigmoid", "tanh", "softsign") for s in ("standard", "xavier_uniform")}
    run = runs[0]
    for key in ("curve", "monitor", "final_histograms", "final_test_error", "lr", "updates_done"):
        assert key in run
    assert run["updates_done"] == 40 and run["curve"]["updates"][-1] == 40
    assert len(run["monitor"]["layers"]) == 3 and len(run["monitor"]["layers"][0]["p98"]) >= 2
    assert {p.name for p in (out / "figures").iterdir()} == FIGURES
    for name in ("at_init_layers.csv", "training_curves.csv", "training_monitor.csv", "final_errors.csv"):
        assert (out / name).stat().st_size > 0
    report = (out / "report.md").read_text()
    assert "Data: **shapeset**" in report                 # the report names the dataset it used
    assert "| sigmoid | Xavier" in report and "82.61" in report       # Table 1 beside this run's errors
    for name in FIGURES:
        assert f"figures/{name}" in report


def test_interrupted_study_keeps_what_finished(tmp_path, monkeypatch):
    from minidl.experiments import training_study

    real = training_study.train_run
    calls = []

    def interrupt_second_run(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training_study, "train_run", interrupt_second_run)
    out = tmp_path / "run"
    assert main(SMALL + ["--out", str(out), "--init-activations", "tanh"]) == 130
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "interrupted"
    assert len(results["at_init"]) == 3 and len(results["training"]["runs"]) == 1
    assert "interrupted" in (out / "report.md").read_text()


def test_data_dir_with_the_generated_dataset_is_refused(tmp_path, capsys):
    """It was silently ignored (minidl train refuses the same combination)."""
    out = tmp_path / "run"
    assert main(["reproduce", "--quick", "--no-progress", "--dataset", "shapeset", "--data-dir", str(tmp_path),
                 "--out", str(out)]) == 2
    assert "--data-dir does not apply to shapeset" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("damage,message", [
    ("truncated", "t10k-images-idx3-ubyte.gz: not a valid IDX file: corrupt or truncated gzip data"),
    ("too few images", "train-images-idx3-ubyte.gz: expected 5 28x28 uint8 images for the fashion-mnist train "
                       "split, found uint8 of shape (4, 28, 28)")])
def test_a_damaged_data_file_is_a_one_line_error_before_any_work(tmp_path, capsys, monkeypatch, damage, message):
    """Only the files' presence was checked: a truncated file started the study, which failed and left a
    "failed" --out (its report said "Data: **None**") that a rerun refused as not empty."""
    from minidl.data import datasets, write_idx
    from minidl.experiments import data as study_data

    monkeypatch.setitem(datasets.SPLIT_SIZES, "train", 5)            # tiny files: 5 train, 3 test images
    monkeypatch.setitem(datasets.SPLIT_SIZES, "test", 3)
    monkeypatch.setattr(study_data, "VALIDATION_SIZE", 2)
    data = tmp_path / "data"
    data.mkdir()
    for prefix, n in (("train", 4 if damage == "too few images" else 5), ("t10k", 3)):
        write_idx(data / f"{prefix}-images-idx3-ubyte.gz", np.zeros((n, 28, 28), np.uint8))
        write_idx(data / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n if prefix == "t10k" else 5, dtype=np.uint8))
    if damage == "truncated":
        damaged = data / "t10k-images-idx3-ubyte.gz"
        damaged.write_bytes(damaged.read_bytes()[:-12])
    out = tmp_path / "study"
    for dataset in ("fashion-mnist", "auto"):
        assert main(["reproduce", "--quick", "--no-progress", "--dataset", dataset, "--data-dir", str(data),
                     "--skip-at-init", "--batch-size", "1", "--out", str(out)]) == 2
        error = capsys.readouterr().err
        assert error.startswith(f"minidl reproduce: {data / message}") and len(error.strip().splitlines()) == 1
        assert not out.exists()


@pytest.mark.parametrize("option,value,what", [
    ("--schemes", "standard,xavier_uniform,standard", "init schemes"), ("--activations", "tanh,Tanh", "activations"),
    ("--init-depths", "5,5", "at-init depths"), ("--lr-grid", "0.1,0.3,0.1", "--lr-grid learning rates")])
def test_a_value_listed_twice_is_refused(tmp_path, capsys, option, value, what):
    """Each run was trained twice under one name: the report said n=2 (\"mean over 2 seeds\") for one seed."""
    out = tmp_path / "run"
    search = ["--lr-search"] if option == "--lr-grid" else []
    assert main(["reproduce", "--quick", "--no-progress", *search, option, value, "--out", str(out)]) == 2
    assert f"{what} must be distinct" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("preset,dataset,most", [("--quick", "auto", 10_000), ("--extensions", "shapeset", 50_000)])
def test_a_batch_larger_than_the_training_set_is_refused(tmp_path, capsys, preset, dataset, most):
    """The loader quietly used the whole set per update while results.json and the report said the batch
    given (and "5 updates (≈50.00 epochs)" for 5 epochs)."""
    out = tmp_path / "run"
    assert main(["reproduce", preset, "--no-progress", "--dataset", dataset, "--batch-size", str(most + 1),
                 "--out", str(out)]) == 2
    assert f"--batch-size {most + 1} is larger than the {most} training examples" in capsys.readouterr().err
    assert not out.exists()


def test_the_loaded_training_set_bounds_the_batch_too(monkeypatch):
    """Where the preset cannot tell (the default dataset, no cap), the study checks once the data is loaded."""
    from minidl.experiments import config as study_config
    from minidl.experiments.study import Study

    config = study_config.preset("quick")
    config.training.batch_size, config.training.train_examples = 300, 200
    study = Study.__new__(Study)
    study.config, study.results = config, {}
    monkeypatch.setattr(Study, "save", lambda self: None)
    with pytest.raises(ValueError, match="--batch-size 300 is larger than the 200 training examples"):
        study._load_data()


def test_too_many_threads_per_run_is_refused_before_anything_runs(tmp_path, capsys):
    """--threads-per-run 100000 crashed the process (segfault) and left results.json saying "running"."""
    out = tmp_path / "run"
    assert main(["reproduce", "--quick", "--no-progress", "--threads-per-run", "100000", "--out", str(out)]) == 2
    assert "--threads-per-run must be at most 4096" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("option,value,message", [("--schemes", "bogus", "unknown init scheme 'bogus'"),
                                                   ("--init-schemes", "normal_-1", "unknown init scheme"),
                                                   ("--activations", "tanh,swish", "unknown activation 'swish'")])
def test_bad_options_are_refused(capsys, option, value, message):
    with pytest.raises(SystemExit) as exit_:            # argparse: one line (no usage block), status 2
        main(["reproduce", "--quick", option, value, "--no-progress"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_time_budget_cuts_updates_equally(tmp_path):
    out = tmp_path / "run"
    args = ["reproduce", "--quick", "--dataset", "shapeset", "--no-progress", "--skip-at-init", "--width", "20",
            "--activations", "tanh", "--updates", "150", "--time-budget", "1", "--out", str(out)]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    budget = results["training"]["budget"]
    assert budget["cut"] and budget["updates_planned"] == 150 and budget["updates_per_run"] == 100
    assert budget["measured_seconds_per_update"] > 0
    assert {r["updates_done"] for r in results["training"]["runs"]} == {100}
    assert "were cut from tanh 150 to tanh 100 (equally for every run)" in (out / "report.md").read_text()


def test_a_second_interruption_while_writing_leaves_no_half_written_file(tmp_path):
    """The CSVs, figures and report.md were written in place: a second Ctrl-C while the study wrote what
    finished left a truncated file (report.md and figures go through the same write_atomically)."""
    from minidl.experiments import results

    path = tmp_path / "final_errors.csv"
    path.write_text("the previous table\n")

    def rows():
        yield ["tanh", "standard", 0, 0.1, 10, None, 0.5]
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        results._write_csv(path, ["activation", "scheme", "seed", "lr", "updates_done", "diverged_at", "error"], rows())
    assert path.read_text() == "the previous table\n" and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_the_interrupted_message_says_whether_report_md_exists(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr("minidl.experiments.study.run_study", interrupted)
    out = tmp_path / "study"
    assert main(["reproduce", "--quick", "--no-progress", "--out", str(out)]) == 130
    assert "report.md was not written" in capsys.readouterr().err
    out.mkdir()
    (out / "report.md").write_text("# a report")
    monkeypatch.setattr("minidl.experiments.study.check_out", lambda *args, **kwargs: None)
    assert main(["reproduce", "--quick", "--no-progress", "--out", str(out)]) == 130
    assert f"what finished is in {out} (report.md, results.json)" in capsys.readouterr().err


def test_the_interrupted_message_resumes_on_dask_where_the_study_ran_there(tmp_path, monkeypatch, capsys):
    """The command it gave dropped --workers, so following it literally resumed the study serially."""
    pytest.importorskip("distributed", reason="Dask is not installed (pip install 'minidl[dask]')")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr("minidl.experiments.study.run_study", interrupted)
    out = tmp_path / "study"
    assert main(["reproduce", "--quick", "--no-progress", "--workers", "2", "--out", str(out)]) == 130
    assert f"continue with: minidl reproduce --out {out} --resume --workers 2\n" in capsys.readouterr().err


def test_an_out_that_cannot_be_made_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    """--out a file said "is not empty"; --out under a file or an unwritable folder said "the study failed
    (PermissionError...); what finished is in OUT" though nothing ran there."""
    afile = tmp_path / "afile"
    afile.write_text("")
    for out, said in ((afile, f"--out {afile} is a file, not a folder"),
                      (afile / "sub", f"--out {afile / 'sub'}: {afile} is a file")):
        assert main(["reproduce", "--quick", "--no-progress", "--out", str(out)]) == 2
        assert said in capsys.readouterr().err
    import os
    monkeypatch.setattr(os, "access", lambda path, mode: False)       # as a user who may not write there
    assert main(["reproduce", "--quick", "--no-progress", "--out", str(tmp_path / "new")]) == 2
    assert f"--out {tmp_path / 'new'}: {tmp_path} is not writable" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_width_past_this_machines_memory_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["reproduce", "--quick", "--no-progress", "--width", "10000000000", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "--width 10000000000 with depth" in error and "GB of memory" in error and len(error.splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("execution", [{"config": {"dataset": "auto"}, "invocations": []},
                                       {"config": {}, "invocations": []}, {"config": None}])
def test_resuming_a_damaged_study_says_so_in_one_line(tmp_path, capsys, execution):
    """A hand-edited results.json that is valid JSON said "the study failed (KeyError: 'preset')"."""
    out = tmp_path / "study"
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"format": "minidl-reproduce/1", "status": "interrupted",
                                                  "execution": execution}))
    assert main(["reproduce", "--out", str(out), "--resume", "--no-progress"]) == 2
    assert f"--resume: {out / 'results.json'} is damaged" in capsys.readouterr().err


def test_an_out_that_is_a_dangling_link_is_refused_before_any_work(tmp_path, capsys):
    """It passed the checks (a broken link does not 'exist') and the study "failed (FileExistsError)"."""
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere" / "x")
    assert main(["reproduce", "--quick", "--no-progress", "--out", str(link)]) == 2
    assert f"--out {link} is a link to" in capsys.readouterr().err and not (tmp_path / "nowhere").exists()


def test_an_out_folder_named_in_bytes_that_are_not_utf8_gets_its_report(tmp_path, monkeypatch, capsys):
    """The command line in report.md held the name's lone surrogate ('\udcff', from the byte 0xff): encoding
    the report raised UnicodeEncodeError, and the study "failed" without report.md, exit status 1."""
    out = str(tmp_path / "study\udcff")
    args = ["reproduce", "--quick", "--dataset", "shapeset", "--skip-at-init", "--width", "8", "--depth", "1",
            "--updates", "20", "--no-progress", "--out", out]
    monkeypatch.setattr("sys.argv", ["minidl", *args])
    assert main(args) == 0, capsys.readouterr().err
    assert "--out " in (tmp_path / "study\udcff" / "report.md").read_text(encoding="utf-8")


def test_a_finished_study_whose_output_fails_says_so_in_one_line(tmp_path, capsys, monkeypatch):
    """`minidl reproduce ... > /dev/full` wrote the whole study, then ended in a traceback on its last line."""
    class FullDisk:         # what is printed is buffered; the flush of the last line fails (ENOSPC)
        def write(self, text):
            return len(text)

        def flush(self):
            raise OSError(28, "No space left on device")

    out = tmp_path / "run"
    monkeypatch.setattr("sys.stdout", FullDisk())
    assert main(["reproduce", "--quick", "--dataset", "shapeset", "--no-progress", "--updates", "20", "--width",
                 "16", "--depth", "2", "--init-depths", "2", "--init-activations", "tanh", "--init-schemes",
                 "standard,xavier_uniform", "--activations", "tanh", "--schemes", "standard", "--out", str(out)]) == 1
    assert capsys.readouterr().err == (f"minidl reproduce: standard output: No space left on device; the study "
                                       f"finished: {out / 'report.md'} (complete)\n")
    assert json.loads((out / "results.json").read_text())["status"] == "complete"

