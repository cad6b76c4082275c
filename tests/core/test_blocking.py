"""GEMM blocking from the machine's caches (csrc/blocking.c) and packing memory that follows the threads alive."""
import itertools
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from minidl import _core
from minidl._core import _kernels

TILES = [(6, 16, 4), (6, 8, 8), (4, 8, 4), (4, 4, 8), (12, 32, 4), (12, 16, 8)]   # (MR, NR, item size)
EXTREME = [0, 1, 4 << 10, 32 << 10, 48 << 10, 2 << 20, 300 << 20, 1 << 40]        # bytes


@pytest.mark.parametrize("mr,nr,item", TILES)
def test_blocking_stays_within_its_bounds_for_any_cache_sizes(mr, nr, item):
    for l1, l2, l3, threads in itertools.product(EXTREME, EXTREME, EXTREME, [1, 2, 16, 1024]):
        b = _kernels.derive_blocking(l1, l2, l3, threads, mr, nr, item)
        for kc, mc in ((b["kc"], b["mc"]), (b["skinny_kc"], b["skinny_mc"])):
            assert 16 <= kc <= 1024 and kc % 8 == 0, b
            assert mr <= mc <= 2048 and mc % mr == 0, b
        assert b["skinny_kc"] <= b["kc"], b        # a fused update that fits the skinny K block fits its GEMM's
        assert nr <= b["nc"] <= 4096 and b["nc"] % nr == 0, b
        assert 1 <= b["skinny_m"] <= b["skinny_mc"], b
        assert min(mr, b["skinny_m"]) <= b["skinny_kc_m"] <= b["skinny_m"], b
        if l1 >= 4 << 10:                  # the panels reused from L1 fit the share they were sized for
            assert b["kc"] * mr * item <= 0.75 * l1 or b["kc"] == 16                   # packed: A's
            assert b["skinny_kc"] * (mr + nr) * item <= 0.75 * l1 or b["skinny_kc"] == 16   # skinny: B's and A's
            assert (b["skinny_kc_m"] + nr) * b["skinny_kc"] * item <= l1 or b["skinny_kc_m"] == min(mr, b["skinny_m"])
            assert (b["skinny_kc_m"] + 1 + nr) * b["skinny_kc"] * item > l1 or b["skinny_kc_m"] == b["skinny_m"]
        if l2 >= 1 << 20 and l1 <= 48 << 10:
            assert b["mc"] * b["kc"] * item <= 0.5 * l2    # the packed A block within half of L2
            assert b["skinny_mc"] * b["skinny_kc"] * item <= 0.5 * l2
        if l3 >= 1 << 20 and l1 <= 48 << 10 and threads <= 16:
            assert b["kc"] * b["nc"] * item <= 0.5 * l3 / threads or b["nc"] == nr


@pytest.mark.parametrize("bad", [{"mr": 0}, {"nr": 0}, {"threads": 0}, {"itemsize": 0}, {"l2": -1}, {"mr": 2.5}])
def test_bad_blocking_arguments_are_refused_not_a_crash(bad):
    """mr = 0 divided by zero in C: SIGFPE killed the interpreter."""
    args = {"l1d": 32 << 10, "l2": 512 << 10, "l3": 32 << 20, "threads": 1, "mr": 8, "nr": 8, "itemsize": 4} | bad
    with pytest.raises(ValueError, match=f"derive_blocking: {next(iter(bad))} must be an integer"):
        _kernels.derive_blocking(*args.values())


@pytest.mark.parametrize("threads", [0, -5, _core.MAX_THREADS + 1, 2.0, True])
def test_thread_counts_of_the_blocking_queries_are_checked(threads):
    for query in (_core.gemm_blocking, _core.thread_thresholds):
        with pytest.raises(ValueError, match="threads must be an integer from 1"):
            query(threads=threads)


def test_blocking_follows_the_caches():
    small = _kernels.derive_blocking(32 << 10, 512 << 10, 32 << 20, 2, 6, 16, 4)
    large = _kernels.derive_blocking(48 << 10, 2 << 20, 105 << 20, 2, 6, 16, 4)
    assert small == {"kc": 1024, "mc": 60, "nc": 2048, "skinny_m": 66,    # the 2-core Zen 3 EPYC's caches
                     "skinny_kc": 272, "skinny_mc": 240, "skinny_kc_m": 14}  # (its hand-tuned KC and MC)
    assert large["skinny_kc"] > small["skinny_kc"] and large["skinny_mc"] > small["skinny_mc"]
    zen4 = _kernels.derive_blocking(32 << 10, 1 << 20, 32 << 20, 2, 14, 32, 4)   # the avx512 float32 tile
    assert (zen4["kc"], zen4["mc"], zen4["skinny_kc"], zen4["skinny_mc"], zen4["skinny_kc_m"]) == (432, 294, 128, 1022, 32)
    assert _kernels.derive_blocking(32 << 10, 512 << 10, 8 << 20, 16, 6, 16, 4)["nc"] < 4096  # L3 shared by 16


def test_gemm_blocking_is_the_active_builds_tile_blocked_for_these_caches(kernels):
    sizes = _core.cache_sizes()
    for dtype in ("float32", "float64"):
        got = _core.gemm_blocking(dtype, threads=2)
        tile = {"generic": (4, 8 if dtype == "float32" else 4), "avx2": (6, 16 if dtype == "float32" else 8),
                "avx512": (14, 32 if dtype == "float32" else 16)}[kernels]
        assert (got["mr"], got["nr"]) == tile
        item = 4 if dtype == "float32" else 8
        assert {k: v for k, v in got.items() if k not in ("mr", "nr")} == _kernels.derive_blocking(
            sizes["l1d"], sizes["l2"], sizes["l3"], 2, *tile, item)
    with pytest.raises(TypeError, match="int32"):
        _core.gemm_blocking("int32")


def test_detected_cache_sizes_are_positive():
    sizes = _kernels.cache_sizes()
    assert set(sizes) == {"l1d", "l2", "l3"} and all(v > 0 for v in sizes.values())
    assert sizes["l1d"] <= sizes["l2"] <= sizes["l3"]


def _sysfs_caches() -> dict:
    """cpu0's data and unified caches as Linux's sysfs lists them: {(level, type): bytes}."""
    caches = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind, size = ((index / name).read_text().strip() for name in ("level", "type", "size"))
        except OSError:
            continue
        caches[int(level), kind] = int(size[:-1]) << {"K": 10, "M": 20, "G": 30}[size[-1]]
    return caches


def test_detected_cache_sizes_are_the_kernels_where_sysfs_lists_them():
    """sysfs, not sysconf: on the 2-core EPYC glibc's sysconf says L3 256 MiB, sysfs 32 MiB."""
    listed = _sysfs_caches()
    wanted = {"l1d": (1, "Data"), "l2": (2, "Unified"), "l3": (3, "Unified")}
    if not any(key in listed for key in wanted.values()):
        pytest.skip("this system's sysfs lists no caches of cpu0")
    sizes = _kernels.cache_sizes()
    for name, key in wanted.items():
        if key in listed:
            assert sizes[name] == listed[key], (name, sizes, listed)


SHAPES = [(1, 1, 1), (7, 33, 5), (13, 200, 70), (100, 37, 129), (64, 300, 40), (150, 90, 300)]


@pytest.mark.parametrize("caches", [(1, 1, 1), (4 << 10, 16 << 10, 64 << 10), (1 << 40, 1 << 40, 1 << 40)],
                         ids=["tiny", "small", "huge"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_is_right_with_extreme_blocking(kernels, threads, caches, dtype, rng):
    """The smallest blocks (KC 16, MC = MR, NC = NR: every loop runs many times, every edge is hit) and
    the largest: the same products as NumPy's, transposed or not."""
    _kernels._override_cache_sizes(*caches)
    try:
        for (m, k, n), ta, tb in itertools.product(SHAPES, (False, True), (False, True)):
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
            b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
            want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b)
            got = _core.matmul(a, b, trans_a=ta, trans_b=tb)
            np.testing.assert_allclose(got, want, rtol=0, atol=8 * k * np.finfo(dtype).eps * max(1, np.abs(want).max()))
    finally:
        _kernels._override_cache_sizes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_both_loop_orders_give_the_same_bits(kernels, threads, dtype):
    """The packed path runs row panels outside column panels while the B block fits in L2 as the A block does,
    BLIS's order otherwise (gemm_template.h). The L1 share alone sets KC, so an L2 of 16 KiB (BLIS's order)
    and of 1 TiB (rows outside) sum every element in the same order: the same bits, and NumPy's product."""
    results = []
    for l2 in (16 << 10, 1 << 40):
        _kernels._override_cache_sizes(32 << 10, l2, 32 << 20)
        try:
            runs = []
            for ta, tb in itertools.product((False, True), (False, True)):
                a = np.random.default_rng(1).standard_normal((600, 200) if ta else (200, 600)).astype(dtype)
                b = np.random.default_rng(2).standard_normal((520, 600) if tb else (600, 520)).astype(dtype)
                out = np.random.default_rng(3).standard_normal((200, 520)).astype(dtype)
                want = 0.5 * (a.T if ta else a).astype(np.float64) @ (b.T if tb else b) - 2.0 * out
                _core.matmul(a, b, trans_a=ta, trans_b=tb, out=out, alpha=0.5, beta=-2.0)
                np.testing.assert_allclose(out, want, rtol=0, atol=8 * 600 * np.finfo(dtype).eps * np.abs(want).max())
                runs.append(out)
            results.append(runs)
        finally:
            _kernels._override_cache_sizes()
    for blis_order, rows_outside in zip(*results):
        np.testing.assert_array_equal(blis_order, rows_outside)


def test_packing_memory_follows_the_threads_alive(rng):
    """Kernels of every size (teams of 1 to 4 working threads) start no new threads once the team exists,
    and a Python thread's packing buffers are freed when it ends."""
    if not _core.openmp_enabled():
        pytest.skip("single-threaded build: no worker threads")
    _core.set_num_threads(4)
    _kernels._reset_contention_state()
    calls = [lambda: _core.matmul(rng.random((300, 300)), rng.random((300, 300))),
             lambda: _core.matmul(rng.random((100, 150)), rng.random((150, 100))),   # 3 MFLOP: 2 threads work
             lambda: _core.matmul(rng.random((60, 60)), rng.random((60, 60))),      # 1 thread
             lambda: _core.sigmoid_forward(rng.random(70000)),
             lambda: _core.axpby(1.0, rng.random(140000), 1.0, rng.random(140000))]
    calls[0]()
    made = _kernels._threads_with_buffers(ever=True)
    for _ in range(20):
        for call in calls:
            call()
    assert _kernels._threads_with_buffers(ever=True) == made    # no worker was replaced
    alive = _kernels._threads_with_buffers()
    worker = threading.Thread(target=lambda: _core.matmul(np.ones((5, 5)), np.ones((5, 5))))
    worker.start()
    worker.join()              # the Python thread is done; its OS thread ends (and frees) just after
    deadline = time.monotonic() + 10
    while _kernels._threads_with_buffers() > alive and time.monotonic() < deadline:
        time.sleep(0.001)
    assert _kernels._threads_with_buffers() == alive            # its buffers went with it
    assert _kernels._threads_with_buffers(ever=True) == made + 1
