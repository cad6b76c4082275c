"""Thread control, the GIL release, and the import-time kernel choice."""
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from minidl import _core

from core_helpers import PACKAGE_PARENT, TEST_THREADS, run_python


def run_python_without(code, variable):
    environment = {k: v for k, v in os.environ.items() if k != variable}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                            check=True, timeout=60, cwd=PACKAGE_PARENT)
    return result.stdout.strip()


def test_set_and_get_num_threads():
    _core.set_num_threads(1)
    assert _core.get_num_threads() == 1
    _core.set_num_threads(2)
    assert _core.get_num_threads() == (2 if _core.openmp_enabled() else 1)


def test_default_threads_follow_omp_num_threads():
    code = "from minidl import _core; print(_core.get_num_threads())"
    assert run_python(code, OMP_NUM_THREADS="1") == "1"
    if _core.openmp_enabled():
        assert run_python(code, OMP_NUM_THREADS="3") == "3"
        assert run_python_without(code, "OMP_NUM_THREADS") == str(len(os.sched_getaffinity(0)))


def import_core_with_kernels_env(value):
    """`import minidl._core` in a child with MINIDL_KERNELS=value: the finished process."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    environment["MINIDL_KERNELS"] = value
    return subprocess.run([sys.executable, "-c", "import minidl._core as c; print(c.kernel_name())"],
                          capture_output=True, text=True, env=environment, timeout=60, cwd=PACKAGE_PARENT)


@pytest.mark.parametrize("name", _core.available_kernels())
def test_env_var_forces_any_available_build(name):
    child = import_core_with_kernels_env(name.upper() if name == "generic" else name)   # any case
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == name
    assert "Warning" not in child.stderr


UNAVAILABLE = [name for name in _core.KERNEL_BUILDS if name not in _core.available_kernels()]


@pytest.mark.parametrize("value", UNAVAILABLE + ["bogus", "avx1024"])
def test_unavailable_kernels_env_var_warns_and_uses_the_fastest_build(value):
    """A build this machine lacks, or a misspelt name, is a warning at import, never an import error."""
    child = import_core_with_kernels_env(value)
    assert child.returncode == 0, child.stderr
    assert "RuntimeWarning" in child.stderr and f"MINIDL_KERNELS={value!r}" in child.stderr
    assert ", ".join(_core.available_kernels()) in child.stderr    # it names what would have worked
    assert child.stdout.strip() == _core.available_kernels()[0]


def test_best_kernels_chosen_at_import():
    got = run_python_without("from minidl import _core; print(_core.kernel_name())", "MINIDL_KERNELS")
    assert got == _core.available_kernels()[0]
    assert _core.KERNEL_BUILDS[-1] == "generic" and _core.available_kernels()[-1] == "generic"
    assert set(_core.available_kernels()) == set(_core.compiled_kernels()) & set(_core.cpu_supported_kernels())
    assert ("avx2" in _core.cpu_supported_kernels()) == _core.cpu_has_avx2_fma()  # never an illegal instruction


def test_check_build_passes_a_full_build_and_names_what_is_missing(monkeypatch):
    from minidl._core import check_build

    best = _core.cpu_supported_kernels()[0]
    monkeypatch.setattr(_core, "compiled_kernels", lambda: (best, "generic"))
    monkeypatch.setattr(_core, "openmp_enabled", lambda: True)
    monkeypatch.setattr(_core, "kernel_name", lambda: best)
    line, problems = check_build.build_report()
    assert problems == [] and f"this CPU runs: {', '.join(_core.cpu_supported_kernels())}" in line
    if best != "generic":
        monkeypatch.setattr(_core, "kernel_name", lambda: "generic")
        monkeypatch.delenv("MINIDL_KERNELS", raising=False)
        assert any("chosen at import" in p for p in check_build.build_report()[1])
    monkeypatch.setattr(_core, "compiled_kernels", lambda: ("generic",))
    monkeypatch.setattr(_core, "openmp_enabled", lambda: False)
    monkeypatch.setattr(check_build.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    line, problems = check_build.build_report()
    assert "OpenMP off" in line and any("without OpenMP" in p for p in problems)
    if best != "generic":
        assert any(repr(best) in p and "not compiled" in p for p in problems)


@pytest.mark.parametrize("nthreads", TEST_THREADS)
def test_concurrent_python_threads_get_correct_results(kernels, nthreads):
    """The GIL is released; each OS thread has its own packing buffers, so concurrent calls are safe."""
    _core.set_num_threads(nthreads)
    rng = np.random.default_rng(7)
    pairs = [(rng.standard_normal((m, 150)).astype(np.float32),
              rng.standard_normal((150, 97)).astype(np.float32)) for m in (3, 40, 200, 17)]

    def work(pair):
        a, b = pair
        return [np.abs(_core.matmul(a, b) - a.astype(np.float64) @ b).max() for _ in range(5)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        errors = [e for result in pool.map(work, pairs * 2) for e in result]
    assert max(errors) < 1e-3


FORK_CHILD = """
import os, numpy as np
from minidl import _core
_core.set_num_threads(2)
a = np.random.default_rng(0).standard_normal((300, 300)).astype(np.float32)
_core.matmul(a, a)  # the parent's OpenMP thread pool is running now
pid = os.fork()
if pid == 0:
    ok = np.allclose(_core.matmul(a, a), a.astype(np.float64) @ a, atol=1e-2)
    ok = ok and _core.get_num_threads() == 1 and _core.sigmoid_forward(np.zeros(10**6)).mean() == 0.5
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), _core.get_num_threads())
"""


def test_forked_child_runs_single_threaded_instead_of_hanging():
    """GCC's OpenMP runtime hangs in a fork()ed child; minidl's children use one thread instead."""
    expected_parent_threads = 2 if _core.openmp_enabled() else 1
    assert run_python(FORK_CHILD) == f"0 {expected_parent_threads}"


class Clock:
    """The back-off guard's injected clock (seconds): the tests move it, no test sleeps."""

    def __init__(self, start=100.0):
        self.now = start
        _core._kernels._set_test_clock(self.now)

    def advance(self, seconds):
        self.now += seconds
        _core._kernels._set_test_clock(self.now)


@pytest.fixture
def clock():
    if not _core.openmp_enabled():
        pytest.skip("single-threaded build: no thread back-off")
    _core.set_num_threads(2)
    _core._kernels._reset_contention_state()   # no back-off left over from earlier tests' kernels
    yield Clock()
    _core._kernels._set_test_clock(None)
    _core._kernels._reset_contention_state()


def report_region(start_delay, finish_spread=None, duration=0.001):
    """Report a parallel region that began right after the previous one ended (a busy loop of kernels),
    as the kernels do: how late its last thread started, how far apart the threads finished (seconds;
    by default as far as the late start delays that thread), how long it took."""
    _core._kernels._note_team(0.0, 0.0, 0.0)
    _core._kernels._note_team(start_delay, finish_spread, duration)


def region_after_idle(clock, idle, start_delay, finish_spread=None, duration=0.001):
    """Report a region that began `idle` seconds after the previous one ended."""
    _core._kernels._note_team(0.0, 0.0, 0.0)
    clock.advance(idle + duration)
    _core._kernels._note_team(start_delay, finish_spread, duration)


def test_which_regions_count_as_stalled(clock):
    before = _core.contention_backoffs()

    def backed_off():
        nonlocal before
        count, before = _core.contention_backoffs() - before, _core.contention_backoffs()
        _core._kernels._reset_contention_state()
        return count == 1

    report_region(0.0001, 0.0001)
    assert not backed_off()                          # a normal wake-up and split
    report_region(0.0001, 0.004, 0.100)
    assert not backed_off()                          # 4 ms apart over 100 ms: ordinary imbalance
    report_region(0.0001, 0.004, 0.006)
    assert backed_off()                              # one thread preempted half-way
    report_region(0.003, 0.003, 0.005)
    assert backed_off()                              # 3 ms late in a busy loop: the machine is busy
    report_region(0.003, 0.003, 0.100)
    assert not backed_off()                          # 3 ms of 100 ms: cheaper than running on one thread
    region_after_idle(clock, 0.003, 0.005, 0.005, 0.007)
    assert not backed_off()                          # 5 ms late after 3 ms idle: a worker woke from sleep
    region_after_idle(clock, 0.001, 0.005, 0.005, 0.007)
    assert backed_off()                              # ... but 1 ms idle is too short for the workers to sleep
    region_after_idle(clock, 0.016, 0.005, 0.012, 0.014)
    assert backed_off()                              # woke 5 ms late, then lost 7 ms more mid-way
    region_after_idle(clock, 0.010, 0.030, 0.030, 0.032)
    assert backed_off()                              # 30 ms late is more than waking takes


def test_back_off_runs_on_one_thread_then_recovers(clock):
    before = _core.contention_backoffs()
    for _ in range(6):                     # stalls in a row: 10 ms doubled five times = 320 ms
        report_region(0.010)
    assert _core.contention_backoffs() == before + 6
    assert _core.effective_num_threads() == 1
    assert _core.get_num_threads() == 2    # the user's setting is unchanged
    a = np.ones((200, 300), np.float32)
    _core._kernels._take_largest_team()
    assert np.array_equal(_core.matmul(a, a.T), a @ a.T)   # correct on one thread too ...
    assert _core._kernels._take_largest_team() == 0        # ... and it did run on one thread only
    clock.advance(0.319)
    assert _core.effective_num_threads() == 1
    clock.advance(0.002)
    assert _core.effective_num_threads() == 2
    clock.advance(0.400)                   # quiet for longer than the last back-off: back to 10 ms
    report_region(0.010)
    clock.advance(0.009)
    assert _core.effective_num_threads() == 1
    clock.advance(0.002)
    assert _core.effective_num_threads() == 2


def test_an_idle_machine_gets_its_threads_back_after_a_back_off(clock):
    """The first region after a back-off wakes workers that slept through it: a late start within the
    wake-up allowance is no stall, so an idle machine is not held on one thread."""
    report_region(0.010)                   # a 10 ms back-off ...
    before = _core.contention_backoffs()
    while _core.effective_num_threads() == 1:
        clock.advance(0.0005)              # ... while kernels keep running on one thread
    _core._kernels._note_team(0.005)       # threads tried again and woke 5 ms late, as sleeping ones do
    assert _core.contention_backoffs() == before
    assert _core.effective_num_threads() == 2


def test_a_busy_machine_stalls_again_right_after_the_back_off_and_doubles_it(clock):
    report_region(0.010)                   # a 10 ms back-off
    clock.advance(0.011)
    _core._kernels._note_team(0.005)       # the probe wakes the workers late: allowed ...
    before = _core.contention_backoffs()
    _core._kernels._note_team(0.005)       # ... but the next region, in a busy loop, is late too
    assert _core.contention_backoffs() == before + 1
    clock.advance(0.019)
    assert _core.effective_num_threads() == 1              # 20 ms, not a fresh 10 ms
    clock.advance(0.002)
    assert _core.effective_num_threads() == 2


def test_back_off_is_capped(clock):
    for _ in range(12):                    # uncapped, 10 ms doubled eleven times would be 20 s
        report_region(0.010)
    clock.advance(0.499)
    assert _core.effective_num_threads() == 1
    clock.advance(0.002)                   # the cap is 0.5 s
    assert _core.effective_num_threads() == 2


def test_a_stall_soon_after_threads_return_doubles_the_back_off(clock):
    for _ in range(5):                     # 10, 20, 40, 80, 160 ms
        report_region(0.010)
    clock.advance(0.161)                   # threads are tried again (within 160 ms of that) ...
    assert _core.effective_num_threads() == 2
    report_region(0.010)                   # ... and stall at once: 320 ms, not a fresh 10 ms
    clock.advance(0.319)
    assert _core.effective_num_threads() == 1
    clock.advance(0.002)
    assert _core.effective_num_threads() == 2


def busy_loop_of_regions(clock, count, duration, master_cpu, finish_spread=0.00005):
    """`count` sampled regions back to back (the clock moves by each one's duration), each taking `duration`
    seconds, in which the calling thread spent `master_cpu` seconds of CPU on its share."""
    for _ in range(count):
        clock.advance(duration)
        _core._kernels._note_team(0.00001, finish_spread, duration, master_cpu=master_cpu)


def test_a_stall_among_regions_that_saved_more_does_not_back_off(clock):
    """A neighbour that takes a core now and then: one region stalls 4 ms among regions whose threads saved
    far more, so running on one thread would cost more than the stall."""
    before = _core.contention_backoffs()
    busy_loop_of_regions(clock, 20, 0.0035, 0.0035)      # 3.5 ms regions, each thread busy throughout
    lost, saved = _core._kernels._contention_window()
    assert lost < 0.001 < saved
    clock.advance(0.0075)
    _core._kernels._note_team(0.00001, 0.004, 0.0075, master_cpu=0.0035)   # the late thread cost 4 ms
    assert _core.contention_backoffs() == before
    assert _core.effective_num_threads() == 2


def test_a_stall_after_regions_that_lost_more_than_they_saved_backs_off(clock):
    """A busy machine: both threads are preempted (a region takes 20 ms for 0.3 ms of its calling thread's
    CPU), so the threads save nothing; the next stall backs off."""
    before = _core.contention_backoffs()
    busy_loop_of_regions(clock, 3, 0.0035, 0.0035)
    busy_loop_of_regions(clock, 3, 0.020, 0.0003, finish_spread=0.0005)
    assert _core.contention_backoffs() == before         # no region stalled: both threads were late alike
    clock.advance(0.0075)
    _core._kernels._note_team(0.00001, 0.004, 0.0075, master_cpu=0.0035)
    assert _core.contention_backoffs() == before + 1
    assert _core.effective_num_threads() == 1


def test_savings_long_past_do_not_shield_a_stall(clock):
    """The window forgets: a second of quiet after many good regions, then a stall backs off."""
    before = _core.contention_backoffs()
    busy_loop_of_regions(clock, 50, 0.0035, 0.0035)
    clock.advance(1.0)
    clock.advance(0.0075)
    _core._kernels._note_team(0.00001, 0.004, 0.0075, master_cpu=0.0035)
    assert _core.contention_backoffs() == before + 1


def test_the_kernels_report_their_calling_threads_cpu_time():
    """Real parallel regions feed the window: without the calling thread's CPU time (a sampling bug, no
    thread clock) it would stay empty and every stall would back off again."""
    if not _core.openmp_enabled():
        pytest.skip("single-threaded build: no parallel regions")
    _core.set_num_threads(2)
    _core._kernels._set_test_fork_join(1e-12)         # the lowest thresholds, whatever was measured
    _core._kernels._set_test_clock(None)
    _core._kernels._reset_contention_state()
    try:
        a = np.random.default_rng(0).random((300, 300), np.float32)
        deadline = time.monotonic() + 3.0             # a real stall may back off for up to 0.5 s
        lost, saved = 0.0, 0.0
        while saved == 0.0 and time.monotonic() < deadline:
            _core.matmul(a, a)                        # one region in four is sampled
            lost, saved = _core._kernels._contention_window()
        assert saved > 0.0
        assert lost >= 0.0
    finally:
        _core._kernels._set_test_fork_join(None)
        _core._kernels._reset_contention_state()


# Each kernel on sizes large enough for two threads: (name, call)
TWO_THREAD_CALLS = [
    ("matmul f32", lambda rng: _core.matmul(rng.random((300, 200), np.float32), rng.random((200, 300), np.float32))),
    ("matmul f64 transposed", lambda rng: _core.matmul(rng.random((200, 300)), rng.random((300, 200)),
                                                      trans_a=True, trans_b=True)),
    ("sigmoid forward", lambda rng: _core.sigmoid_forward(rng.random(10**6, np.float32))),
    ("sigmoid backward", lambda rng: _core.sigmoid_backward(rng.random(10**6), rng.random(10**6))),
    ("axpby", lambda rng: _core.axpby(0.5, rng.random(10**6, np.float32), 2.0, rng.random(10**6, np.float32))),
]


@pytest.mark.parametrize("call", [c for _, c in TWO_THREAD_CALLS], ids=[n for n, _ in TWO_THREAD_CALLS])
def test_two_threads_really_run(kernels, call):
    """With 2 threads set, each kernel's parallel region ran on two threads (not one, as a build without
    OpenMP or a back-off would)."""
    if not _core.openmp_enabled():
        pytest.skip("single-threaded build (no OpenMP): nothing runs on two threads")
    _core.set_num_threads(2)
    _core._kernels._set_test_fork_join(1e-12)         # the lowest thresholds, whatever was measured
    inputs = np.random.default_rng(1)
    _core._kernels._set_test_clock(None)
    _core._kernels._reset_contention_state()          # a busy machine's back-off would hold one thread
    _core._kernels._take_largest_team()
    call(inputs)
    assert _core._kernels._take_largest_team() == 2
