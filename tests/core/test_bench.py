"""`minidl bench gemm|sigmoid` run end to end (tiny settings), verify their results and write JSON."""
import json
import subprocess
import sys

from minidl import _core

from core_helpers import PACKAGE_PARENT


def bench(*args):
    command = [sys.executable, "-m", "minidl", "bench", *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=PACKAGE_PARENT, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bench_gemm_json():
    report = json.loads(bench("gemm", "--quick", "--threads", "1", "--rounds", "1", "--pause", "0",
                              "--json"))
    assert report["benchmark"] == "gemm"
    assert report["environment"]["minidl_kernels"] == _core.kernel_name()
    assert report["environment"]["minidl_cache_sizes"] == _core.cache_sizes()     # what was detected
    assert report["environment"]["minidl_blocking_float32"] == _core.gemm_blocking("float32", 1)
    cases = {r["case"] for r in report["results"]}
    assert {"square 256", "X@W b10 784x1000", "X^T@dY b10 784x1000", "dY@W^T b10 784x1000"} <= cases
    for row in report["results"]:
        assert row["verified"] and row["threads"] == 1 and row["dtype"] == "float32"
        assert row["minidl_gflops"] > 0 and row["numpy_gflops"] > 0 and row["ratio"] > 0
    (summary,) = report["summary"]
    assert summary["cases"] == sum(r["target"] for r in report["results"])
    assert summary["squares"] == [256, 512]     # --quick measures no 1024 (the table said "squares 256-1024")


def test_bench_gemm_header_says_what_was_detected():
    text = bench("gemm", "--quick", "--threads", "1", "--rounds", "1", "--pause", "0")
    l1 = _core.cache_sizes()["l1d"] >> 10
    tile = _core.gemm_blocking("float32", 1)
    assert f"detected caches: L1d {l1} KiB" in text
    assert f"micro-tile {tile['mr']}x{tile['nr']}, MC {tile['mc']}, KC {tile['kc']}" in text
    assert f"up to {tile['skinny_m']} rows B read in place, KC {tile['skinny_kc']} up to {tile['skinny_kc_m']} rows" in text
    assert "target set (squares 256, 512 + 6 MLP products)" in text


def test_header_blocking_is_that_of_the_measured_team(monkeypatch):
    """The header showed the blocking of minidl's default team (NC shares L3 among the threads), not of the
    team the benchmark measured: on a 16-core machine `--threads 1` printed the NC of 16 threads."""
    from minidl.bench import environment

    real = _core.gemm_blocking
    monkeypatch.setattr(_core, "gemm_blocking",
                        lambda dtype="float32", threads=None: {**real(dtype, threads), "nc": 1000 + (threads or 0)})
    info = environment.describe(threads=1)
    assert info["minidl_blocking_float32"]["nc"] == 1001
    assert "NC 1001 (team of 1)" in environment.describe_blocking(info)


def test_header_counts_hyperthreads_as_cpus_not_cores(tmp_path):
    """The header's "N cores" was the number of logical CPUs: a 16-core Xeon with SMT read as 32 cores."""
    from minidl.bench import environment

    for cpu, core in enumerate([0, 1, 0, 1]):               # two cores, two hyper-threads each
        topology = tmp_path / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text("0\n")
        (topology / "core_id").write_text(f"{core}\n")
    assert environment.physical_cores(range(4), root=str(tmp_path)) == 2
    assert environment.physical_cores(range(5), root=str(tmp_path)) is None     # cpu4 unreadable
    info = environment.describe(threads=1)
    assert info["physical_cores"] in (None, *range(1, info["cores"] + 1))
    line = environment.describe_line({**info, "cores": 4, "physical_cores": 2})
    assert ", 4 CPUs on 2 cores (SMT), load" in line
    assert ", 2 cores, load" in environment.describe_line({**info, "cores": 2, "physical_cores": 2})


def test_bench_sigmoid_table():
    text = bench("sigmoid", "--quick", "--threads", "1", "--rounds", "1", "--pause", "0",
                 "--dtype", "float64")
    assert "forward" in text and "backward" in text and "float64" in text
    assert "True" in text and "False" not in text  # every result verified against NumPy
    assert "NumPy: 1/(1+np.exp(-x)) and dy*y*(1-y), one thread at every thread count" in text  # not minidl's count


def test_bench_without_a_name_prints_help():
    result = subprocess.run([sys.executable, "-m", "minidl", "bench"], capture_output=True, text=True,
                            cwd=PACKAGE_PARENT, timeout=120)
    assert result.returncode == 2
    assert "gemm" in result.stdout and "sigmoid" in result.stdout


def test_bad_options_are_one_line_errors():
    """--threads 100000 crashed the process (exit 139); 0, 'abc', negative rounds or a NaN pause gave tracebacks."""
    for args, words in [(("gemm", "--threads", "100000", "--quick"), "--threads: must be an integer in [1, 4096]"),
                        (("gemm", "--threads", "abc"), "--threads: must be an integer"),
                        (("sigmoid", "--threads", "1,0"), "--threads: must be an integer"),
                        (("gemm", "--rounds", "-1"), "--rounds: must be an integer >= 1"),
                        (("sigmoid", "--pause", "nan"), "--pause: must be a finite number in [0, 3600]"),
                        (("train", "--batches", "10,0"), "--batches: must be an integer >= 1"),
                        (("train", "--rounds", "0"), "--rounds: must be an integer >= 1"),
                        (("train", "--block-seconds", "0"), "--block-seconds: must be a finite number in (0, 3600]")]:
        command = [sys.executable, "-m", "minidl", "bench", *args]
        result = subprocess.run(command, capture_output=True, text=True, cwd=PACKAGE_PARENT, timeout=120)
        assert result.returncode == 2 and words in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_nonsense_bounds_and_lists_are_one_line_errors():
    """--pause 1e30 crashed time.sleep (OverflowError, a traceback after the warm-up); "1,,2" dropped the empty
    item in silence; --json '' was "--json : is a folder"; an unknown benchmark printed the usage block too."""
    for args, words in [(("gemm", "--quick", "--threads", "1", "--pause", "1e30"),
                         "argument --pause: must be a finite number in [0, 3600], got '1e30'"),
                        (("sigmoid", "--threads", "1,,2"), "argument --threads: has an empty item: '1,,2'"),
                        (("gemm", "--threads", "1,"), "argument --threads: has an empty item: '1,'"),
                        (("sigmoid", "--json", ""), "argument --json: must be a path, got an empty one"),
                        (("fft",), "argument BENCHMARK: invalid choice: 'fft'")]:
        command = [sys.executable, "-m", "minidl", "bench", *args]
        result = subprocess.run(command, capture_output=True, text=True, cwd=PACKAGE_PARENT, timeout=120)
        assert result.returncode == 2 and words in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == "", (args, result.stderr)


def _kernel_row(case, ratio, verified, target=True):
    return dict(case=case, dtype="float32", threads=2, target=target, ratio=ratio, best_ratio=ratio,
                verified=verified, m=int(case.split()[-1]) if case.startswith("square") else 10)


def test_a_wrong_result_meets_no_target():
    """A case whose result differed from NumPy's still counted: the table ended "-> meets the target" (gemm)
    and "targets ...: all met" (sigmoid) above the RESULT MISMATCH line."""
    from minidl.bench import gemm, sigmoid

    (summary,) = gemm.summarize([_kernel_row("square 256", 1.5, True), _kernel_row("square 512", 1.4, False)])
    assert summary["unverified"] == ["square 512"] and not summary["meets_target"]
    (summary,) = gemm.summarize([_kernel_row("square 256", 1.5, True), _kernel_row("square 512", 1.4, True)])
    assert summary["meets_target"]
    rows = [_kernel_row("forward", 3.5, False, target=3.0), _kernel_row("backward", 1.5, True, target=2.0),
            _kernel_row("forward", 9.0, False, target=None)]
    assert sigmoid.missed_targets(rows) == ["forward 2T result differs from NumPy's", "backward 2T 1.50x < 2.0x"]
