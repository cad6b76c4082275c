"""When the kernels use threads: the least work per thread derived from the measured fork-join cost and
rates (csrc/blocking.c, csrc/dispatch.c), and results equal to NumPy's on both sides of every threshold.
No test here times anything: the fork-join cost is injected (_set_test_fork_join) wherever a result depends
on it."""
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import _core
from minidl._core import _kernels

KINDS = _kernels.WORK_KINDS
FALLBACK = {"sigmoid_forward": 32768.0, "sigmoid_backward": 32768.0, "axpby": 65536.0, "gemm": 1048576.0}
RANGE = 16.0                                   # thresholds stay within [1/16, 16] x the fallback
RATES = {"sigmoid_forward": 2e9, "sigmoid_backward": 5e9, "axpby": 8e9, "gemm": 5e10}   # per second
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])


@pytest.fixture
def fork_join():
    """Inject the fork-join cost (s) of every team; measured again afterwards."""
    yield _kernels._set_test_fork_join
    _kernels._set_test_fork_join(None)


# ------------------------------------------------------------------ the derivation (a pure function)
def test_fallbacks_when_the_fork_join_cost_is_unknown():
    for bad in (0.0, -1.0, -1e-6, math.nan, math.inf):
        assert _kernels.derive_thresholds(bad, RATES) == FALLBACK


def test_a_kind_without_a_rate_keeps_its_fallback_and_the_others_are_derived():
    for bad in (0.0, -5e9, math.nan, math.inf):
        got = _kernels.derive_thresholds(2e-6, {**RATES, "axpby": bad})
        assert got["axpby"] == FALLBACK["axpby"]
        assert all(got[k] != FALLBACK[k] for k in KINDS if k != "axpby")
    assert _kernels.derive_thresholds(2e-6, {}) == FALLBACK


def test_the_least_work_is_a_fixed_multiple_of_fork_join_times_rate():
    """min = K * fork_join * rate: proportional to each; one K for the elementwise kernels, a larger one for
    the GEMM (its threads pack panels one thread packs once)."""
    base = _kernels.derive_thresholds(2e-6, RATES)
    factors = {k: base[k] / (2e-6 * RATES[k]) for k in KINDS}
    elementwise = factors["sigmoid_forward"]
    assert factors["sigmoid_backward"] == pytest.approx(elementwise) == factors["axpby"]
    assert 1.0 <= elementwise < factors["gemm"] <= 100.0
    doubled_cost = _kernels.derive_thresholds(4e-6, RATES)
    doubled_rate = _kernels.derive_thresholds(2e-6, {k: 2 * v for k, v in RATES.items()})
    for k in KINDS:
        assert doubled_cost[k] == pytest.approx(2 * base[k]) == doubled_rate[k]


def test_clamped_to_a_range_around_the_fallbacks():
    assert _kernels.derive_thresholds(1e-12, RATES) == {k: v / RANGE for k, v in FALLBACK.items()}
    assert _kernels.derive_thresholds(1.0, RATES) == {k: v * RANGE for k, v in FALLBACK.items()}


positive = st.floats(min_value=1e-12, max_value=1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(cost=positive, cost_factor=st.floats(1.0, 1e6), rate=positive.map(lambda x: x * 1e9),
       rate_factor=st.floats(1.0, 1e6))
def test_monotone_and_bounded(cost, cost_factor, rate, rate_factor):
    """A dearer fork-join or a faster core never lowers the least work per thread; always within the clamps."""
    rates = dict.fromkeys(KINDS, rate)
    base = _kernels.derive_thresholds(cost, rates)
    dearer = _kernels.derive_thresholds(cost * cost_factor, rates)
    faster = _kernels.derive_thresholds(cost, dict.fromkeys(KINDS, rate * rate_factor))
    for k in KINDS:
        assert FALLBACK[k] / RANGE <= base[k] <= FALLBACK[k] * RANGE
        assert dearer[k] >= base[k] and faster[k] >= base[k]


# ------------------------------------------------------------------ what the kernels use
@DTYPES
def test_thresholds_in_use_follow_from_what_was_measured(kernels, dtype):
    got = _core.thread_thresholds(dtype, threads=2)
    assert got["threads"] == 2 and set(got["rates"]) == set(got["min_per_thread"]) == set(KINDS)
    if not _core.openmp_enabled():
        assert got["fork_join_s"] is None and got["min_per_thread"] == FALLBACK
        return
    assert all(rate > 0 for rate in got["rates"].values())          # timed on this machine's kernels
    cost = got["fork_join_s"]
    assert cost is None or 0 < cost <= 200e-6       # None: a busy machine, measured again later
    assert got["min_per_thread"] == _kernels.derive_thresholds(cost or 0.0, got["rates"])


def test_one_thread_needs_no_team_and_keeps_the_fallbacks():
    got = _core.thread_thresholds("float32", threads=1)
    assert got["fork_join_s"] is None and got["min_per_thread"] == FALLBACK


@DTYPES
def test_injected_fork_join_cost_sets_the_thresholds(fork_join, dtype):
    fork_join(3e-6)
    got = _core.thread_thresholds(dtype, threads=2)
    assert got["fork_join_s"] == 3e-6
    assert got["min_per_thread"] == _kernels.derive_thresholds(3e-6, got["rates"])


FORKED = """
import os
from minidl import _core
_core.set_num_threads(2)
_core._kernels._set_test_fork_join(None)
parent = _core.thread_thresholds("float32")["fork_join_s"]   # the parent's team has run
pid = os.fork()
if pid == 0:
    got = _core.thread_thresholds("float32", threads=3)     # a team not measured yet: starting it would hang
    os._exit(0 if got["fork_join_s"] is None and got["min_per_thread"]["axpby"] == 65536.0 else 1)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_measures_no_team_and_keeps_the_fallbacks():
    package_parent = Path(_core.__file__).resolve().parents[2]     # the minidl this process imported
    result = subprocess.run([sys.executable, "-c", FORKED], capture_output=True, text=True, check=True,
                            timeout=60, cwd=package_parent)
    assert result.stdout.strip() == "0"


def test_thread_thresholds_rejects_other_dtypes():
    with pytest.raises(TypeError, match="int32"):
        _core.thread_thresholds("int32")


# ------------------------------------------------------------------ results on both sides of each threshold
def team_of(call):
    """How many threads ran `call`'s parallel region (0: it ran on the calling thread, no region)."""
    _kernels._set_test_clock(None)
    _kernels._reset_contention_state()         # no back-off to one thread left from earlier tests
    _kernels._take_largest_team()
    call()
    return _kernels._take_largest_team()


def sizes_around(threshold):
    """Element counts just below and at the size where two threads are used (each gets `threshold`)."""
    first_two = math.ceil(2 * threshold)
    return [(first_two - 1, 0), (first_two, 2), (first_two + 31, 2)]


ELEMENTWISE = {
    "sigmoid_forward": (lambda x, g, out: _core.sigmoid_forward(x, out=out),
                        lambda x, g: 1 / (1 + np.exp(-x.astype(np.float64)))),
    "sigmoid_backward": (lambda x, g, out: _core.sigmoid_backward(x, g, out=out),
                         lambda x, g: g.astype(np.float64) * x * (1 - x.astype(np.float64))),
    "axpby": (lambda x, g, out: _core.axpby(-0.25, x, 1.0, out),
              lambda x, g: -0.25 * x.astype(np.float64) + g),
}


@pytest.mark.parametrize("cost", [1e-12, 2e-6, 1.0], ids=["lowest", "derived", "highest"])
@pytest.mark.parametrize("kind", list(ELEMENTWISE))
@DTYPES
def test_elementwise_kernels_match_numpy_around_their_threshold(kernels, fork_join, rng, cost, kind, dtype):
    """Just below the threshold one thread runs, from it on two; every element is right either way (the
    split's bounds are where a range left out or done twice would show)."""
    _core.set_num_threads(2)
    fork_join(cost)
    threshold = _core.thread_thresholds(dtype, threads=2)["min_per_thread"][kind]
    run, reference = ELEMENTWISE[kind]
    sizes = sizes_around(threshold)
    largest = sizes[-1][0]
    x_all = rng.uniform(-6, 6, largest) if kind == "sigmoid_forward" else rng.uniform(0, 1, largest)
    x_all, g_all = x_all.astype(dtype), rng.standard_normal(largest).astype(dtype)
    for n, team in sizes:
        x, g = x_all[:n], g_all[:n]
        out = g.copy() if kind == "axpby" else np.full(n, np.nan, dtype)
        want = reference(x, g)
        ran = team_of(lambda: run(x, g, out))
        eps = np.finfo(dtype).eps    # the forward pass: the sigmoid tests' accuracy; others: 4 roundings
        rtol = {np.float32: 1e-6, np.float64: 1e-14}[dtype] if kind == "sigmoid_forward" else 4 * eps
        np.testing.assert_allclose(out, want, rtol=rtol, atol=4 * eps)
        if _core.openmp_enabled():
            assert ran == team, (n, threshold)


@pytest.mark.parametrize("cost", [1e-12, 1.0], ids=["lowest", "highest"])
@DTYPES
def test_matmul_matches_numpy_around_its_threshold(kernels, fork_join, rng, cost, dtype):
    """2mnk / 2 threads against the least flops per thread: one below it runs on one thread, at it on two."""
    _core.set_num_threads(2)
    fork_join(cost)
    threshold = _core.thread_thresholds(dtype, threads=2)["min_per_thread"]["gemm"]
    m = n = 32 if cost < 1 else 128
    k_two = math.ceil(2 * threshold / (2 * m * n))        # the smallest k for which each thread gets enough
    for k, team in [(k_two - 1, 0), (k_two, 2), (k_two + 5, 2)]:
        for trans_a, trans_b in [(False, False), (True, True)]:
            a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
            b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
            want = (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b)
            got = np.empty((m, n), dtype)
            ran = team_of(lambda: _core.matmul(a, b, trans_a=trans_a, trans_b=trans_b, out=got))
            np.testing.assert_allclose(got, want, rtol=0, atol=8 * k * np.finfo(dtype).eps * np.abs(want).max())
            if _core.openmp_enabled():
                assert ran == team, (m, n, k, threshold)
