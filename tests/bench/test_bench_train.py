"""`minidl bench train` end to end on a tiny configuration, and its contenders agreeing step by step."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minidl.bench import step_minidl, step_numpy, train_problem
from minidl.bench.train import agreement, memory_by_threads

PACKAGE_PARENT = str(Path(train_problem.__file__).resolve().parents[2])
HAS_TORCH = importlib.util.find_spec("torch") is not None
NO_TORCH = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed: its contender is not checked")
HAS_JAX = importlib.util.find_spec("jax") is not None
NO_JAX = pytest.mark.skipif(not HAS_JAX, reason="JAX is not installed: its contender is not checked")
SMALL = (12, 16, 16, 5)       # a small MLP of the same kind: sigmoid hidden layers, logits out


def run_bench(*args, timeout=300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "minidl", "bench", "train", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=PACKAGE_PARENT, timeout=timeout)


def bench(*args):
    result = run_bench(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bench_train_json_runs_every_contender_and_they_agree():
    report = json.loads(bench("--threads", "1", "--batches", "10", "--rounds", "1", "--block-seconds", "0.01",
                              "--warmup", "1", "--pause", "0", "--growth-steps", "3", "--json"))
    assert report["benchmark"] == "train"
    rows = {r["contender"]: r for r in report["results"]}
    assert set(rows) == {"minidl", "numpy"} | ({"torch"} if HAS_TORCH else set()) | ({"jax"} if HAS_JAX else set())
    if not HAS_TORCH:
        assert "PyTorch is not installed" in " ".join(report["notes"])     # said, not silently dropped
    if not HAS_JAX:
        assert "JAX is not installed" in " ".join(report["notes"])
    for row in rows.values():
        assert row["verified"], row
        assert row["threads"] == 1 and row["batch"] == 10 and row["steps_timed"] >= 3 and len(row["samples_ms"]) == row["steps_timed"]
        assert row["ms"] > 0 and row["samples_per_s"] > 0 and row["peak_mb"] >= row["imports_mb"] > 0
        assert row["growth_steps"] == row["steps_timed"] + 3
        assert len(row["losses"]) == report["settings"]["verify_steps"]
    assert rows["minidl"]["backoffs"] >= 0                  # minidl's kernels count their back-offs ...
    assert all(row["backoffs"] is None for name, row in rows.items() if name != "minidl")   # ... nobody else's
    (summary,) = report["summary"]
    assert summary["vs_numpy"] > 0 and summary["memory_vs_numpy"] > 0
    assert [len(row["round_ms"]) for row in rows.values()] == [1] * len(rows)     # one round: one block each
    assert summary["vs_numpy_rounds"] == [pytest.approx(rows["numpy"]["round_ms"][0] / rows["minidl"]["round_ms"][0])]


@NO_TORCH
def test_bench_train_json_includes_the_torch_contender():
    report = json.loads(bench("--threads", "1", "--batches", "10", "--rounds", "1", "--block-seconds", "0.01",
                              "--warmup", "1", "--pause", "0", "--contenders", "torch,numpy", "--json"))
    assert {r["contender"] for r in report["results"]} == {"torch", "numpy"}
    assert all(r["verified"] for r in report["results"])


def test_bench_train_table_without_torch():
    text = bench("--quick", "--contenders", "minidl,numpy", "--block-seconds", "0.01", "--pause", "0")
    assert "minidl" in text and "numpy" in text and "x NumPy" in text and "backoffs" in text
    assert "False" not in text                   # every contender agrees with the NumPy step


@NO_JAX
def test_bench_train_json_includes_the_jax_contender():
    report = json.loads(bench("--threads", "1", "--batches", "10", "--rounds", "1", "--block-seconds", "0.01",
                              "--warmup", "1", "--pause", "0", "--contenders", "jax,numpy", "--json"))
    assert {r["contender"] for r in report["results"]} == {"jax", "numpy"}
    assert all(r["verified"] for r in report["results"])
    assert report["summary"] == []              # no minidl row: nothing to compare against


def test_bench_train_rejects_an_unknown_contender():
    result = run_bench("--contenders", "tensorflow", timeout=60)
    assert result.returncode == 2 and "tensorflow" in result.stderr


def run_steps(step_class, layers, data, steps):
    step = step_class(layers, 0.5, 1)
    losses = [float(step(*step.prepare(*data[i % len(data)]))) for i in range(steps)]
    return losses, [np.array(p, copy=True) for p in step.parameters()]


def step_class_named(name):
    if name == "torch":
        from minidl.bench import step_torch
        return step_torch.TorchStep
    if name == "jax":
        from minidl.bench import step_jax
        # threads=None: a thread count would pin this test process to fewer CPUs (sched_setaffinity)
        return lambda layers, lr, threads: step_jax.JaxStep(layers, lr)
    return step_minidl.MinidlStep



@pytest.mark.parametrize("name", ["minidl", pytest.param("torch", marks=NO_TORCH), pytest.param("jax", marks=NO_JAX)])
def test_contenders_match_the_numpy_step_parameter_by_parameter(name):
    step_class = step_class_named(name)
    layers = train_problem.initial_weights(3, SMALL)
    data = train_problem.batches(7, seed=4, count=3, sizes=SMALL)
    ref_losses, ref_params = run_steps(step_numpy.NumpyStep, layers, data, 5)
    losses, params = run_steps(step_class, layers, data, 5)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    assert ref_losses[-1] != ref_losses[0]
    for got, want, start in zip(params, ref_params, [p for pair in layers for p in pair]):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert not np.array_equal(want, start)          # every parameter was updated


def test_import_memory_is_read_after_the_step_class_imports_its_library(monkeypatch):
    """JAX's step imports jax in its constructor (after limiting its threads), so "imports MB" was read before
    jax was imported: 25 MB (Python and NumPy) beside PyTorch's 220. The worker now has a step class import
    its library before it reads that memory."""
    from minidl.bench import train_worker

    events = []

    class Step(step_numpy.NumpyStep):
        @staticmethod
        def import_library(threads):
            events.append(("import", threads))
    real_memory_mb = train_worker.memory_mb
    monkeypatch.setattr(train_worker, "load_step_class", lambda contender: Step)
    monkeypatch.setattr(train_worker, "memory_mb", lambda: events.append("memory") or real_memory_mb())
    train_worker.Worker("jax", 2, 3, 0, 0.01)
    assert events[:2] == [("import", 2), "memory"]


@NO_JAX
def test_jax_imports_memory_includes_jax():
    def imports_mb(contender):
        worker = subprocess.run([sys.executable, str(Path(train_problem.__file__).with_name("train_worker.py")),
                                 contender, "1", "2"], input='{"cmd": "memory"}\n', capture_output=True, text=True,
                                cwd=PACKAGE_PARENT, timeout=120)
        return json.loads(worker.stdout.splitlines()[1])["after_imports"]["rss_mb"]
    assert imports_mb("jax") > imports_mb("numpy") + 50          # jax and jaxlib: ~150 MB here


def test_peak_memory_without_proc_is_in_mb_on_macos(monkeypatch):
    """Without /proc the peak came from ru_maxrss as KiB, which macOS gives in bytes: 1024x too many MB."""
    import builtins
    import resource

    from minidl.bench import train_worker

    def no_proc(path, *args, **kwargs):
        raise FileNotFoundError(path)
    monkeypatch.setattr(builtins, "open", no_proc)
    monkeypatch.setattr(resource, "getrusage", lambda who: type("Usage", (), {"ru_maxrss": 300 << 20})())
    monkeypatch.setattr(sys, "platform", "darwin")
    assert train_worker.memory_mb()["peak_mb"] == 314.6                  # 300 MiB in MB (10⁶ bytes)
    monkeypatch.setattr(sys, "platform", "linux")
    assert train_worker.memory_mb()["peak_mb"] == 322122.5


def test_memory_from_proc_is_in_mb_of_a_million_bytes_as_labelled(monkeypatch):
    """/proc gives KiB; dividing by 1024 gave MiB under an "MB" label, 4.9% below the profile's MB."""
    import builtins
    import io

    from minidl.bench import train_worker

    status = "Name:\tpython\nVmHWM:\t  231744 kB\nVmRSS:\t  200000 kB\n"
    monkeypatch.setattr(builtins, "open", lambda path, *args, **kwargs: io.StringIO(status))
    assert train_worker.memory_mb() == {"peak_mb": 237.3, "rss_mb": 204.8}


def test_numpy_step_gradient_matches_finite_differences():
    """The hand-written backprop is the reference the others are checked against: check it too."""
    sizes = (5, 4, 3)
    layers = [(w.astype(np.float64), b + 0.1) for w, b in train_problem.initial_weights(0, sizes)]
    x, y = train_problem.batches(6, seed=2, count=1, sizes=sizes)[0]
    x = x.astype(np.float64)

    def loss_at(params):
        return step_numpy.NumpyStep(params, lr=0.0, dtype=np.float64)(x, y)

    lr = 1e-3
    step = step_numpy.NumpyStep(layers, lr, dtype=np.float64)
    step(x, y)
    eps = 1e-6
    for layer, (i, j) in [(0, (0, 0)), (0, (2, 3)), (1, (3, 1))]:
        gradient = (layers[layer][0][i, j] - step.weights[layer][i, j]) / lr   # the update reveals it
        plus = [(w.copy(), b) for w, b in layers]
        minus = [(w.copy(), b) for w, b in layers]
        plus[layer][0][i, j] += eps
        minus[layer][0][i, j] -= eps
        numeric = (loss_at(plus) - loss_at(minus)) / (2 * eps)
        assert gradient == pytest.approx(numeric, rel=1e-5, abs=1e-10)
        assert gradient != 0


def test_agreement_flags_a_wrong_update():
    reference = {"losses": [2.3, 2.2], "parameter_changes": [[-0.1, 0.3], [-2.0, 0.05]]}
    assert agreement(reference, {"losses": [2.3, 2.2], "parameter_changes": [[-0.1, 0.3], [-2.0, 0.05]]})[0]
    assert not agreement(reference, {"losses": [2.3, 2.2], "parameter_changes": [[-0.1, 0.3], [-2.1, 0.05]]})[0]
    assert not agreement(reference, {"losses": [2.3, 2.21], "parameter_changes": [[-0.1, 0.3], [-2.0, 0.05]]})[0]


@pytest.mark.parametrize("damage", ["last layer's update negated", "gradient rows permuted", "biases not updated"])
def test_the_probes_see_wrong_updates_that_the_sums_missed(damage):
    """The check compared each layer's Σ(W - W₀) only: these wrong NumPy steps passed it (the last layer's
    sum is ~0 by construction; a permutation keeps sums). Every parameter is now seen through a sum and a
    randomly weighted sum; minidl's correct step (other roundings) still agrees."""
    from minidl.bench.train_worker import probes

    layers = train_problem.initial_weights(3, SMALL)
    start = [np.array(p, copy=True) for pair in layers for p in pair]
    data = train_problem.batches(7, seed=4, count=1, sizes=SMALL)
    losses, params = run_steps(step_numpy.NumpyStep, layers, data, 3)

    def check(params_after, losses_after):
        changes = [[a - b for a, b in zip(now, before)] for now, before in zip(probes(params_after), probes(start))]
        return {"losses": losses_after, "parameter_changes": changes}
    reference = check(params, losses)
    minidl_losses, minidl_params = run_steps(step_minidl.MinidlStep, layers, data, 3)
    assert agreement(reference, check(minidl_params, minidl_losses))[0]
    wrong = [p.copy() for p in params]
    if damage == "last layer's update negated":
        wrong[-2] = 2 * start[-2] - params[-2]
    elif damage == "gradient rows permuted":
        wrong[0] = start[0] + (params[0] - start[0])[::-1]
    else:
        wrong[1::2] = start[1::2]
    assert not agreement(reference, check(wrong, losses))[0]


def test_memory_by_threads_reports_each_contender_at_the_largest_batch():
    rows = [dict(contender=c, threads=t, batch=b, peak_mb=100 + t + b / 100)
            for c in ("minidl", "numpy") for t in (1, 2, 16) for b in (10, 256)]
    assert memory_by_threads(rows) == {c: {1: 103.56, 2: 104.56, 16: 118.56} for c in ("minidl", "numpy")}
    assert memory_by_threads([r for r in rows if r["threads"] == 1]) == {}     # one thread count: nothing to compare


def test_targets_are_checked_per_contender_and_batch_at_two_threads_only():
    from minidl.bench.train import missed_targets, summarize, targets_verdict

    def row(contender, threads, batch, ms, peak=100.0):
        return dict(contender=contender, threads=threads, batch=batch, ms=ms, peak_mb=peak)
    rows = [row("minidl", 2, 10, 1.0), row("torch", 2, 10, 2.9), row("jax", 2, 10, 1.6), row("numpy", 2, 10, 1.3),
            row("minidl", 2, 256, 1.0, 140.0), row("numpy", 2, 256, 1.0),
            row("minidl", 1, 10, 1.0), row("torch", 1, 10, 0.5)]
    rows.append(row("numpy", 1, 10, 0.5))
    rows[5]["ms"] = 0.9                                     # NumPy's step at 256: no target there (DESIGN.md)
    summary = summarize(rows)
    assert [(s["threads"], s["batch"]) for s in summary] == [(1, 10), (2, 10), (2, 256)]
    assert summary[0]["torch_target"] is None and summary[0]["numpy_target"] is None    # one thread: none
    assert summary[2]["numpy_target"] is None and summary[1]["numpy_target"] == 1.2
    missed = missed_targets(summary)
    assert missed == ["batch 10: 2.90x PyTorch < 3.0x", "batch 256: peak memory 1.40x NumPy's > 1.3x"]
    assert targets_verdict(summary, missed) == "targets at 2 threads: missed: " + "; ".join(missed)
    assert targets_verdict(summary, []) == "targets at 2 threads: all met"
    alone = summarize([r for r in rows if r["contender"] == "minidl"])
    assert targets_verdict(alone, []) == "targets at 2 threads: none compared (minidl alone; they are ratios to others)"
    assert targets_verdict(summary[:1], []) is None
    memory_only = summarize([r for r in rows if r["batch"] == 256])          # NumPy at 256: its memory target
    assert targets_verdict(memory_only, missed_targets(memory_only)).startswith("targets at 2 threads: missed: ")
    other_batch = summarize([row("minidl", 2, 128, 1.0), row("torch", 2, 128, 2.0)])
    assert targets_verdict(other_batch, []) == "targets at 2 threads: none at these batch sizes"


def test_a_contender_that_disagrees_meets_no_target():
    """With minidl's step wrong (its losses and updates off the NumPy step's) the table still said "targets at 2
    threads: all met" above the CONTENDERS DISAGREE line."""
    from minidl.bench.train import missed_targets, summarize

    rows = [dict(contender="minidl", threads=2, batch=10, ms=1.0, peak_mb=100.0, verified=False),
            dict(contender="numpy", threads=2, batch=10, ms=2.0, peak_mb=100.0, verified=True),
            dict(contender="torch", threads=1, batch=10, ms=2.0, peak_mb=100.0, verified=False),
            dict(contender="minidl", threads=1, batch=10, ms=1.0, peak_mb=100.0, verified=True)]
    assert missed_targets(summarize(rows)) == ["batch 10: minidl's step disagrees with the reference"]


def test_per_round_ratios_pair_the_blocks_of_each_round_and_show_their_spread():
    from minidl.bench.train import missed_targets, summarize

    rows = [dict(contender="minidl", threads=2, batch=64, ms=10.0, peak_mb=100.0, round_ms=[10.0, 20.0, 10.0]),
            dict(contender="torch", threads=2, batch=64, ms=16.0, peak_mb=300.0, round_ms=[16.0, 36.0, 15.0]),
            dict(contender="numpy", threads=2, batch=64, ms=15.0, peak_mb=100.0, round_ms=[15.0, 30.0, 16.0])]
    (entry,) = summarize(rows)
    # a slow second round slowed both processes alike: its ratio is 1.8, not the 2.0-3.6 of unpaired blocks
    assert entry["vs_torch_rounds"] == [pytest.approx(1.6), pytest.approx(1.8), pytest.approx(1.5)]
    assert missed_targets([entry]) == ["batch 64: 1.60x PyTorch < 1.7x (rounds 1.50-1.80)"]


def bench_refused(*args):
    result = run_bench(*args, timeout=60)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_quick_fills_in_only_what_was_not_given():
    """--quick replaced --threads and --batches by 1 and 10 silently, in the table and the JSON."""
    report = json.loads(bench("--quick", "--threads", "2", "--batches", "12", "--rounds", "3", "--contenders",
                              "minidl,numpy", "--block-seconds", "0.01", "--pause", "0", "--warmup", "1", "--json"))
    assert {(r["threads"], r["batch"]) for r in report["results"]} == {(2, 12)}
    assert report["settings"]["rounds"] == 3 and all(len(r["round_ms"]) == 3 for r in report["results"])


@pytest.mark.parametrize("args,said", [
    (["--contenders", "minidl,numpy,minidl"], "--contenders: lists minidl more than once"),
    (["--contenders", ",,"], "--contenders: must be a comma-separated list"),
    (["--contenders", "minidl,,numpy"], "--contenders: has an empty item"), (["--contenders", ""], "--contenders"),
    (["--batches", "10,,64"], "--batches: has an empty item"), (["--json", ""], "--json: must be a path"),
    (["--pause", "1e30"], "--pause: must be a finite number in [0, 3600]"),
    (["--block-seconds", "1e308"], "--block-seconds: must be a finite number in (0, 3600]"),
    (["--threads", "1,1"], "lists 1 more than once"), (["--batches", "10,64,10"], "lists 10 more than once"),
    (["--json", "/nonexistent-folder/x.json"], "no folder /nonexistent-folder"),
    (["--profile", "--json"], "--profile measures minidl alone")])
def test_arguments_that_would_skew_or_lose_results_are_refused_up_front(args, said):
    """Duplicates were measured twice (the per-round ratios then paired the wrong blocks); a --json path
    that could not be written failed with a traceback after the whole run; --profile ignored --json; an empty
    item ("10,,64") was dropped in silence and an empty --contenders meant all; --pause 1e30 crashed time.sleep
    (OverflowError) and --block-seconds 1e308 round() after the worker processes had started."""
    assert said in bench_refused(*args)


@pytest.mark.skipif(HAS_JAX, reason="needs a machine without JAX")
def test_only_missing_contenders_is_a_one_line_error():
    """It ended in ZeroDivisionError (an empty contender list)."""
    assert "JAX is not installed" in bench_refused("--contenders", "jax", "--quick")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the worker processes")
def test_sigterm_stops_the_workers_too():
    """SIGTERM to the benchmark left both workers running, orphaned, at full speed."""
    import os
    import signal
    import time

    process = subprocess.Popen([sys.executable, "-m", "minidl", "bench", "train", "--threads", "1", "--batches",
                                "10", "--rounds", "50", "--block-seconds", "0.05", "--contenders", "minidl,numpy"],
                               cwd=PACKAGE_PARENT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(workers := _children(process.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(workers) == 2
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted; its workers stopped" in err
    for pid in workers:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
