"""matmul_after_update(x, w, u, v, alpha, beta) = x @ w after w <- beta w + alpha uᵀv: bitwise what the update
as its own GEMM (SGD's call) followed by the plain product gives, whether the update is fused into the
product's pass over w (few rows of x: the skinny path) or runs first (more rows, more update rows than a
K block, or fuse=False); every kernel build, both dtypes, awkward shapes, the smallest blocks; bad arguments
leave w alone."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import _core
from minidl._core import _kernels

from core_helpers import TEST_THREADS
from test_matmul import AWKWARD, DTYPES

def problem(rng, m, k, n, r, dtype):
    x, w = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    u, v = rng.standard_normal((r, k)).astype(dtype), rng.standard_normal((r, n)).astype(dtype)
    return x, w, u, v


def assert_same_as_update_then_product(x, w, u, v, alpha, beta):
    """Both results bitwise equal to the two separate calls' (w is updated in place by both), whether the
    update may be fused (the default) or must run as its own GEMM first (fuse=False, on a copy of w)."""
    w_ref, w_separate = w.copy(), w.copy()
    _core.matmul(u, v, trans_a=True, out=w_ref, alpha=alpha, beta=beta)
    y_ref = _core.matmul(x, w_ref)
    y = _core.matmul_after_update(x, w, u, v, alpha, beta)
    y_separate = _core.matmul_after_update(x, w_separate, u, v, alpha, beta, fuse=False)
    assert y.shape == y_ref.shape and y.dtype == w.dtype and y.flags.c_contiguous
    for w_out, y_out in ((w, y), (w_separate, y_separate)):
        np.testing.assert_array_equal(w_out, w_ref)
        np.testing.assert_array_equal(y_out, y_ref)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("m,k,n", AWKWARD, ids=[f"{m}x{k}x{n}" for m, k, n in AWKWARD])
def test_awkward_shapes(kernels, threads, rng, m, k, n, dtype):
    for r in (1, 10, 71):
        x, w, u, v = problem(rng, m, k, n, r, dtype)
        assert_same_as_update_then_product(x, w, u, v, -0.1, 1.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("r", [1, 10, 300], ids=["r1", "r10", "r300"])
@pytest.mark.parametrize("m", [10, 64, 71])
def test_the_training_step_shapes(kernels, threads, rng, m, r, dtype):
    """The MLP's 784 x 1000 weight (several K blocks, an 8-column edge strip); batches 10 and 64 take the
    fused path, 71 rows the update-first path, r 300 either (it is more than some builds' K block); SGD's
    (alpha, beta) with and without weight decay."""
    for alpha, beta in [(-0.1, 1.0), (-0.01, 0.99)]:
        x, w, u, v = problem(rng, m, 784, 1000, r, dtype)
        assert_same_as_update_then_product(x, w, u, v, alpha, beta)


@pytest.mark.parametrize("caches", [(1, 1, 1), (4 << 10, 16 << 10, 64 << 10)], ids=["tiny", "small"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_smallest_blocks(kernels, threads, caches, dtype, rng):
    """KC 16, MC = MR, NC = NR: many K and N blocks, each strip updated once; updates beyond KC run first."""
    _kernels._override_cache_sizes(*caches)
    try:
        for (m, k, n), r in itertools.product([(7, 33, 5), (13, 200, 70), (30, 37, 129)], (1, 9, 16, 40)):
            x, w, u, v = problem(rng, m, k, n, r, dtype)
            assert_same_as_update_then_product(x, w, u, v, 0.5, -2.0)
    finally:
        _kernels._override_cache_sizes()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_update_rows_at_the_edges_of_both_k_blocks(kernels, threads, rng, dtype):
    """The update fuses only while its rows fit one K block of its own GEMM, whose rows are w's: the skinny
    path's KC for a w of at most skinny_kc_m rows, the packed path's for more (blocking.c)."""
    blk = _core.gemm_blocking(np.dtype(dtype).name)
    for k in (max(1, blk["skinny_kc_m"] - 3), blk["skinny_kc_m"] + 5, blk["skinny_m"] + 5):
        for r in sorted({blk["skinny_kc"], blk["skinny_kc"] + 1, blk["kc"], blk["kc"] + 1}):
            x, w, u, v = problem(rng, 9, k, 45, r, dtype)
            assert_same_as_update_then_product(x, w, u, v, -0.05, 1.0)


@pytest.mark.parametrize("caches", [(1, 1, 1), None], ids=["tiny", "detected"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_threads_share_the_k_blocks_bit_for_bit(kernels, caches, dtype, rng):
    """The fused path gives each thread strips of a wave of K blocks, the wave's other blocks summing apart
    and added in block order: on 2, 3, 4 and 16 threads (teams even for these small products; 16 as on a
    16-core server, more threads than grains or strips for some), the same bits as
    on one thread and as the two GEMMs, over one wave, several, a last wave of one block, and splits of a
    block between threads."""
    _kernels._set_test_fork_join(1e-12)
    if caches:
        _kernels._override_cache_sizes(*caches)
    try:
        blk = _core.gemm_blocking(np.dtype(dtype).name)
        taller = blk["skinny_kc_m"] + 1                                # past the skinny K block, B still in place

        def kc(m):
            return blk["skinny_kc"] if m <= blk["skinny_kc_m"] else blk["kc"]
        for m, k, n, r in [(10, 5 * kc(10), 70, 10), (3, 3 * kc(3) + 1, 33, 1), (14, 2 * kc(14), 1, 7),
                           (1, 7 * kc(1) - 3, 130, 16), (taller, 2 * kc(taller) + 5, 70, 12)]:
            x, w, u, v = problem(rng, m, k, n, r, dtype)
            results = []
            for threads in (1, 2, 3, 4, 16):
                _core.set_num_threads(threads)
                w_t = w.copy()
                assert_same_as_update_then_product(x, w_t, u, v, -0.25, 0.5)
                results.append((w_t, _core.matmul(x, w_t)))
            for w_t, y_t in results[1:]:
                np.testing.assert_array_equal(w_t, results[0][0])
                np.testing.assert_array_equal(y_t, results[0][1])
    finally:
        _kernels._override_cache_sizes()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_nan_in_the_update_reaches_w_and_the_product(threads, rng, dtype):
    x, w, u, v = problem(rng, 10, 50, 40, 10, dtype)
    v[3, 7] = np.nan
    assert_same_as_update_then_product(x, w, u, v, -0.1, 1.0)
    assert np.isnan(w[:, 7]).all() and np.isnan(_core.matmul(x, w)[:, 7]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_alpha_zero_scales_w_without_reading_u_and_v(threads, rng, dtype):
    """As matmul (BLAS): with alpha 0 (lr 0) NaN in the update's factors is ignored, w is only scaled."""
    x, w, u, v = problem(rng, 10, 50, 40, 10, dtype)
    u[2, 3], v[1, 1] = np.nan, np.inf
    w0 = w.copy()
    assert_same_as_update_then_product(x, w, u, v, 0.0, 0.5)
    np.testing.assert_array_equal(w, w0 * dtype(0.5))


def test_bad_arguments_raise_and_leave_w_alone(rng):
    x, w, u, v = problem(rng, 4, 6, 5, 3, np.float32)
    w0 = w.copy()
    cases = [
        ((x, w, u, v[:, :4]), ValueError, r"shapes do not fit"),
        ((x[:, :5], w, u, v), ValueError, r"shapes do not fit"),
        ((x, w, u[:, :5], v), ValueError, r"shapes do not fit"),
        ((x, w, u[:2], v), ValueError, r"shapes do not fit"),
        ((x[0], w, u, v), ValueError, r"2-D arrays"),
        ((x, w, u, v.astype(np.float64)), TypeError, r"one dtype"),
        ((x.astype(np.int32), w, u, v), TypeError, r"dtype int32"),
        ((x, w.tolist(), u, v), TypeError, r"w must be a numpy.ndarray"),
        ((x, np.asfortranarray(w), u, v), ValueError, r"C-contiguous"),
        ((x, w[:, ::-1], u, v), ValueError, r"C-contiguous"),
        ((x, np.zeros((6, 5), ">f4"), u, v), ValueError, r"native byte order"),
    ]
    for args, error, message in cases:
        with pytest.raises(error, match=message):
            _core.matmul_after_update(*args, -0.1, 1.0)
    readonly = w.copy()
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core.matmul_after_update(x, readonly, u, v, -0.1, 1.0)
    with pytest.raises(TypeError, match="alpha must be a real number"):
        _core.matmul_after_update(x, w, u, v, "0.1", 1.0)
    np.testing.assert_array_equal(w, w0)


def test_w_sharing_memory_with_an_operand_is_refused(rng):
    """The fused pass would read an operand it is rewriting."""
    big = rng.standard_normal((12, 6)).astype(np.float32)
    w, x = big[:6], big[6:]                     # x lies right after w in one buffer: disjoint
    u, v = rng.standard_normal((2, 6)).astype(np.float32), rng.standard_normal((2, 6)).astype(np.float32)
    assert_same_as_update_then_product(x, w, u, v, -0.1, 1.0)
    w2 = rng.standard_normal((6, 6)).astype(np.float32)
    w0 = w2.copy()
    for args in [(w2, w2, u, v), (x, w2, w2[:2], v), (x, w2, u, w2[4:])]:
        with pytest.raises(ValueError, match="shares memory"):
            _core.matmul_after_update(*args, -0.1, 1.0)
    np.testing.assert_array_equal(w2, w0)


@settings(max_examples=80, deadline=None)
@given(
    m=st.integers(0, 80), k=st.integers(0, 90), n=st.integers(0, 80), r=st.integers(0, 40),
    dtype=st.sampled_from(DTYPES), alpha=st.floats(-4, 4), beta=st.sampled_from([1.0, 0.99, 0.0, -0.5]),
    nthreads=st.sampled_from(TEST_THREADS), kernel=st.sampled_from(_core.available_kernels()),
    strided_inputs=st.booleans(), seed=st.integers(0, 2**31),
)
def test_random_problems(m, k, n, r, dtype, alpha, beta, nthreads, kernel, strided_inputs, seed):
    _core.use_kernels(kernel)
    _core.set_num_threads(nthreads)
    x, w, u, v = problem(np.random.default_rng(seed), m, k, n, r, dtype)
    if strided_inputs:      # x, u, v as every other column of a wider array: read through a copy
        x, u, v = (np.repeat(a, 2, axis=1)[:, ::2] for a in (x, u, v))
    assert_same_as_update_then_product(x, w, u, v, alpha, beta)
