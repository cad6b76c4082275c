"""tools/ab_kernels.py, the in-process A/B of two builds' GEMM calls (or, --step, of the whole training step): it
loads another build's extension beside this one and prints a line per call kind; a build compared with itself
gives ratios near 1."""
import collections
import importlib.util
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minidl._core import _kernels

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "ab_kernels.py"
pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="tools/ is in the source tree only (not installed)")


def test_a_build_against_itself():
    result = subprocess.run([sys.executable, str(SCRIPT), _kernels.__file__, "--size", "64", "--rounds", "3",
                             "--calls", "2", "--threads", "1"], capture_output=True, text=True, timeout=120,
                            cwd=Path(_kernels.__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("  ")]
    assert len(lines) == 4, result.stdout
    for line in lines:
        ratio = float(re.search(r"ratio (\d+\.\d+)", line).group(1))
        assert 0.2 < ratio < 5.0, line


def test_both_builds_run_the_kernel_build_asked_for():
    """--kernels: the plain-C build here as on any CPU, named in the header; an unknown build is refused."""
    cwd = Path(_kernels.__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, str(SCRIPT), _kernels.__file__, "--size", "40", "--rounds", "2",
                             "--calls", "1", "--threads", "1", "--kernels", "generic"], capture_output=True,
                            text=True, timeout=120, cwd=cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "generic kernels" in result.stdout.splitlines()[0], result.stdout
    assert len([line for line in result.stdout.splitlines() if line.startswith("  ")]) == 4, result.stdout
    result = subprocess.run([sys.executable, str(SCRIPT), _kernels.__file__, "--kernels", "avx9"], capture_output=True,
                            text=True, timeout=60, cwd=cwd)
    assert result.returncode == 2 and "--kernels: kernel build 'avx9' is not available here" in result.stderr


def test_a_file_that_is_no_extension_is_refused(tmp_path):
    bogus = tmp_path / "_kernels.so"
    bogus.write_text("not an extension")
    result = subprocess.run([sys.executable, str(SCRIPT), str(bogus)], capture_output=True, text=True, timeout=60,
                            cwd=Path(_kernels.__file__).resolve().parents[2])
    assert result.returncode == 1
    assert f"cannot load {bogus}" in result.stderr and "Traceback" not in result.stderr


def test_the_whole_step_against_itself():
    """--step: the benchmark's training step, the other build's kernels swapped in for its blocks."""
    result = subprocess.run([sys.executable, str(SCRIPT), _kernels.__file__, "--step", "--batch", "2", "--rounds", "2",
                             "--calls", "1", "--threads", "1"], capture_output=True, text=True, timeout=120,
                            cwd=Path(_kernels.__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("  ")]
    assert len(lines) == 1 and lines[0].split()[0] == "step", result.stdout
    ratio = float(re.search(r"ratio (\d+\.\d+)", lines[0]).group(1))
    assert 0.2 < ratio < 5.0, lines[0]


@pytest.mark.parametrize("extra", [["--size", "64"], ["--dtype", "float64"]])
def test_the_step_takes_no_size_or_dtype(extra):
    result = subprocess.run([sys.executable, str(SCRIPT), _kernels.__file__, "--step", *extra], capture_output=True,
                            text=True, timeout=60, cwd=Path(_kernels.__file__).resolve().parents[2])
    assert result.returncode == 2
    assert "--step runs the benchmark's own" in result.stderr


def test_separate_belongs_to_the_step():
    result = subprocess.run([sys.executable, str(SCRIPT), _kernels.__file__, "--separate"], capture_output=True,
                            text=True, timeout=60, cwd=Path(_kernels.__file__).resolve().parents[2])
    assert result.returncode == 2 and "--separate chooses how the step applies" in result.stderr


@pytest.fixture
def tool():
    """tools/ab_kernels.py as a module, for its step_rounds; the thread count it sets is restored after."""
    from minidl import _core
    spec = importlib.util.spec_from_file_location("ab_kernels_tool", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = _core.get_num_threads()
    yield module
    _core.set_num_threads(threads)


def test_the_other_builds_kernels_run_in_its_blocks_only(tool):
    """step_rounds swaps the other build in for its own blocks: a stand-in build counting its calls sees the
    sigmoids of exactly its steps (2 warm-up + 1 per round, 5 sigmoid layers each), its blocks are the ones
    timed as "other" (each of its calls sleeps 5 ms), and nothing stays swapped."""
    from minidl import _core, ops
    calls = collections.Counter()

    class Counting:
        def __getattr__(self, name):
            kernel = getattr(_kernels, name)        # the compiled module's own, never a swapped-in wrapper

            def counted(*args, **kwargs):
                calls[name] += 1
                time.sleep(0.005)
                return kernel(*args, **kwargs)
            return counted

    other_s, this_s = tool.step_rounds(Counting(), batch=2, threads=1, rounds=3, steps=1)
    assert len(other_s) == len(this_s) == 3 and min(other_s) > 0.05 > max(this_s)
    assert calls["sigmoid_forward"] == calls["sigmoid_backward"] == 5 * (2 + 3)
    assert calls["matmul_after_update"] > 0
    assert all(getattr(_core, name) is getattr(_kernels, name) for name in ops.KERNELS)
    assert calls["_reset_contention_state"] == sum(calls[name] for name in ops.KERNELS)


def test_each_kernel_call_of_the_step_starts_with_its_builds_guard_reset(tool, monkeypatch):
    """--step: this build's kernel calls too forget its earlier stalls first (a back-off of one build would
    otherwise skew the ratio: tools/ab_kernels.py, fresh)."""
    from minidl import ops
    resets, kernel_calls = [], []

    class ResetCounting:
        def __getattr__(self, name):
            return getattr(_kernels, name)

        def _reset_contention_state(self):
            resets.append(1)

    def count(name, kernel):
        def call(*args, **kwargs):
            kernel_calls.append(name)
            return kernel(*args, **kwargs)
        return call

    monkeypatch.setattr(tool, "this_build", ResetCounting())
    with ops.wrap_kernels(count):
        tool.step_rounds(_kernels, batch=2, threads=1, rounds=2, steps=1)
    assert kernel_calls and len(resets) == len(kernel_calls)    # the other build is not counted here


@pytest.mark.parametrize("separate", [False, True], ids=["fused", "separate"])
def test_the_step_pins_how_sgds_update_is_applied_for_both_builds(tool, separate):
    """--step does not let deferred_update.fusion time the two builds' calls together: every product after an
    update, of either build, runs the way asked (the fused way is passed to the other build without fuse=,
    which builds from before it take), and the choice in use comes back afterwards."""
    from minidl import deferred_update, ops
    seen = []

    class Recording:
        def __getattr__(self, name):
            kernel = getattr(_kernels, name)
            if name != "matmul_after_update":
                return kernel

            def recorded(*args, **kwargs):
                seen.append(("other", kwargs.get("fuse", "absent")))
                return kernel(*args, **kwargs)
            return recorded

    def record_this(name, kernel):
        if name != "matmul_after_update":
            return kernel

        def recorded(*args, **kwargs):
            seen.append(("this", kwargs["fuse"]))
            return kernel(*args, **kwargs)
        return recorded

    chooser = deferred_update.fusion
    with ops.wrap_kernels(record_this):
        tool.step_rounds(Recording(), batch=2, threads=1, rounds=2, steps=1, separate=separate)
    assert deferred_update.fusion is chooser
    expected = {("other", False), ("this", False)} if separate else {("other", "absent"), ("this", True)}
    assert set(seen) == expected


def test_a_build_without_bias_adds_it_afterwards(tool):
    """--step against a build from before the GEMMs took bias=: its kernels get the bias added after the call,
    as ops.linear did then (the same bits as this build's epilogue); kernels that take bias pass unchanged."""
    import numpy as np

    from minidl import _core

    def old_matmul(a, b, *, trans_a=False, trans_b=False, out=None, alpha=1.0, beta=0.0):
        return _core.matmul(a, b, trans_a=trans_a, trans_b=trans_b, out=out, alpha=alpha, beta=beta)

    rng = np.random.default_rng(3)
    x, w, bias = (rng.standard_normal(shape).astype(np.float32) for shape in ((10, 40), (40, 33), (33,)))
    wrapped = tool.without_bias(old_matmul)
    np.testing.assert_array_equal(wrapped(x, w, bias=bias), _core.matmul(x, w, bias=bias))
    np.testing.assert_array_equal(wrapped(x, w), _core.matmul(x, w))
    assert tool.without_bias(_core.matmul) is _core.matmul
