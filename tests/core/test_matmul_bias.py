"""The bias epilogue of matmul and matmul_after_update (C[i, j] += bias[j], added to each tile as its last K
block is stored): bitwise what the product followed by a separate add gives, on every path (dot products,
B read in place, packed, the fused update), every kernel build, both dtypes, any thread count; bad biases
are refused before any work."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import _core
from minidl._core import _kernels

from core_helpers import TEST_THREADS
from test_matmul import AWKWARD, DTYPES, TRANSPOSES, operands

COEFFICIENTS = [(1.0, 0.0), (-0.1, 1.0), (2.5, -0.5), (0.0, 0.75)]


def product_then_add(a, b, bias, trans_a=False, trans_b=False, c0=None, alpha=1.0, beta=0.0):
    """The reference: the GEMM without bias, then ``+= bias`` in NumPy (one rounding per element)."""
    out = c0.copy() if c0 is not None else None
    result = _core.matmul(a, b, trans_a=trans_a, trans_b=trans_b, out=out, alpha=alpha, beta=beta)
    result += bias
    return result


def assert_bias_epilogue_exact(a, b, bias, trans_a=False, trans_b=False, c0=None, alpha=1.0, beta=0.0):
    want = product_then_add(a, b, bias, trans_a, trans_b, c0, alpha, beta)
    out = c0.copy() if c0 is not None else None
    got = _core.matmul(a, b, trans_a=trans_a, trans_b=trans_b, out=out, alpha=alpha, beta=beta, bias=bias)
    if out is not None:
        assert got is out
    assert got.dtype == a.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES, ids=["NN", "NT", "TN", "TT"])
@pytest.mark.parametrize("m,k,n", AWKWARD, ids=[f"{m}x{k}x{n}" for m, k, n in AWKWARD])
def test_awkward_shapes_bitwise(kernels, rng, m, k, n, dtype, trans_a, trans_b):
    a, b = operands(rng, m, k, n, dtype, trans_a, trans_b)
    bias = rng.standard_normal(n).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    assert_bias_epilogue_exact(a, b, bias, trans_a, trans_b)
    for alpha, beta in COEFFICIENTS:
        assert_bias_epilogue_exact(a, b, bias, trans_a, trans_b, c0, alpha, beta)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["NN", "NT"])
@pytest.mark.parametrize("m", [1, 10, 31, 32, 33, 64, 70, 71, 256])
def test_the_mlp_layer_on_every_path(kernels, threads, rng, m, trans_b, dtype):
    """x @ W + b and dY @ W^T + b of the 1000-wide layers: dot products (NT, up to 32 rows), B in place with
    the short and the long K block, packed panels; several K blocks each."""
    a, b = operands(rng, m, 1000, 1000, dtype, False, trans_b)
    assert_bias_epilogue_exact(a, b, rng.standard_normal(1000).astype(dtype), trans_b=trans_b)


@pytest.mark.parametrize("caches", [(1, 1, 1), (4 << 10, 16 << 10, 64 << 10)], ids=["tiny", "small"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_smallest_blocks(kernels, threads, caches, dtype, rng):
    """KC 16, MC = MR, NC = NR: the epilogue lands on the last K block of every tile, edge tiles included,
    and only there."""
    _kernels._override_cache_sizes(*caches)
    try:
        for (m, k, n), ta, tb in itertools.product([(7, 33, 5), (13, 200, 70), (100, 37, 129)],
                                                   (False, True), (False, True)):
            a, b = operands(rng, m, k, n, dtype, ta, tb)
            bias = rng.standard_normal(n).astype(dtype)
            assert_bias_epilogue_exact(a, b, bias, ta, tb)
            assert_bias_epilogue_exact(a, b, bias, ta, tb, rng.standard_normal((m, n)).astype(dtype), 0.5, -2.0)
    finally:
        _kernels._override_cache_sizes()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_no_product_leaves_beta_c_plus_bias(kernels, rng, dtype):
    """k == 0 or alpha == 0: C = beta C + bias (the operands unread: NaN there is ignored)."""
    bias = rng.standard_normal(5).astype(dtype)
    c0 = rng.standard_normal((3, 5)).astype(dtype)
    np.testing.assert_array_equal(_core.matmul(np.ones((3, 0), dtype), np.ones((0, 5), dtype), bias=bias),
                                  np.broadcast_to(bias, (3, 5)))
    out = c0.copy()
    _core.matmul(np.full((3, 4), np.nan, dtype), np.full((4, 5), np.nan, dtype), out=out, alpha=0.0, beta=0.5,
                 bias=bias)
    want = c0 * dtype(0.5)
    want += bias
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_bias_is_read_in_place_through_strides_and_byte_order(kernels, rng, dtype):
    a, b = operands(rng, 20, 50, 40, dtype, False, False)
    wide = rng.standard_normal(80).astype(dtype)
    assert_bias_epilogue_exact(a, b, wide[::2])                                    # a strided view
    assert_bias_epilogue_exact(a, b, wide[::-2])                                   # reversed
    swapped = wide[:40].astype(np.dtype(dtype).newbyteorder())
    got = _core.matmul(a, b, bias=swapped)
    np.testing.assert_array_equal(got, product_then_add(a, b, wide[:40]))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_outputs_the_kernel_cannot_write_in_place_get_the_bias_too(kernels, rng, dtype):
    """A Fortran-ordered or column-strided out is computed in a temporary and copied over: bias included."""
    a, b = operands(rng, 20, 30, 40, dtype, False, False)
    bias = rng.standard_normal(40).astype(dtype)
    c0 = rng.standard_normal((20, 40)).astype(dtype)
    want = product_then_add(a, b, bias, c0=c0, beta=0.5)
    for out in (np.asfortranarray(c0), np.repeat(c0, 2, axis=1)[:, ::2]):
        assert not out.flags.c_contiguous
        assert _core.matmul(a, b, out=out, beta=0.5, bias=bias) is out
        np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_bias_inside_out_is_read_as_it_was(kernels, threads, rng, dtype):
    """A bias that is a row of out itself (or of w, which the update writes): the kernels read a copy."""
    a, b = operands(rng, 30, 100, 64, dtype, False, False)
    out = rng.standard_normal((30, 64)).astype(dtype)
    bias_before = out[3].copy()
    want = product_then_add(a, b, bias_before)
    got = _core.matmul(a, b, out=out, bias=out[3])
    assert got is out
    np.testing.assert_array_equal(out, want)
    x, w = operands(rng, 10, 64, 64, dtype, False, False)
    u, v = rng.standard_normal((10, 64)).astype(dtype), rng.standard_normal((10, 64)).astype(dtype)
    w_ref, row = w.copy(), w[5].copy()
    _core.matmul(u, v, trans_a=True, out=w_ref, alpha=-0.1, beta=1.0)
    want = _core.matmul(x, w_ref)
    want += row
    np.testing.assert_array_equal(_core.matmul_after_update(x, w, u, v, -0.1, 1.0, bias=w[5]), want)


@pytest.mark.parametrize("bias, error, words", [
    (np.zeros(7, np.float32), ValueError, "bias has shape (7,), expected (6,)"),
    (np.zeros((1, 6), np.float32), ValueError, "bias has shape (1, 6), expected (6,)"),
    (np.zeros((), np.float32), ValueError, "bias has shape (), expected (6,)"),
    (np.zeros(6, np.float64), TypeError, "bias has dtype float64, expected float32"),
    (np.zeros(6, np.int32), TypeError, "bias has dtype int32"),
    ([0.0] * 6, TypeError, "bias must be a numpy.ndarray, got list"),
])
def test_bad_bias_raises_before_any_work(bias, error, words):
    a, b = np.ones((4, 5), np.float32), np.ones((5, 6), np.float32)
    out = np.full((4, 6), 7.0, np.float32)
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        _core.matmul(a, b, out=out, bias=bias)
    assert np.all(out == 7.0)
    w = np.ones((5, 6), np.float32)
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        _core.matmul_after_update(a, w, np.ones((2, 5), np.float32), np.ones((2, 6), np.float32), -1.0, 1.0,
                                  bias=bias)
    assert np.all(w == 1.0)                 # the update was not applied


def update_problem(rng, m, k, n, r, dtype):
    x, w = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    u, v = rng.standard_normal((r, k)).astype(dtype), rng.standard_normal((r, n)).astype(dtype)
    return x, w, u, v, rng.standard_normal(n).astype(dtype)


def assert_update_product_bias_exact(x, w, u, v, bias, alpha=-0.01, beta=1.0):
    """matmul_after_update(..., bias) fused and separate: w as the update's GEMM leaves it, the product
    bitwise that of the plain product of the updated w followed by += bias."""
    w_ref = w.copy()
    _core.matmul(u, v, trans_a=True, out=w_ref, alpha=alpha, beta=beta)
    want = _core.matmul(x, w_ref)
    want += bias
    for fuse in (True, False):
        w_out = w.copy()
        got = _core.matmul_after_update(x, w_out, u, v, alpha, beta, fuse=fuse, bias=bias)
        np.testing.assert_array_equal(w_out, w_ref)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("m,k,n,r", [(1, 1, 1, 1), (10, 1000, 1000, 10), (64, 1000, 1000, 64), (33, 784, 1000, 33),
                                     (7, 3000, 45, 7), (70, 50, 1001, 3), (71, 90, 33, 71), (5, 10, 31, 200)])
def test_after_update_on_every_path(kernels, threads, rng, m, k, n, r, dtype):
    """The fused pass (one wave, several waves: k = 3000), the update run first (more rows than skinny_m, or
    more update rows than a K block), edge strips of W."""
    assert_update_product_bias_exact(*update_problem(rng, m, k, n, r, dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_after_update_smallest_blocks(kernels, threads, rng, dtype):
    """Tiny caches: many K blocks, many waves of them, every grain a strip."""
    _kernels._override_cache_sizes(1, 1, 1)
    try:
        for m, k, n, r in [(3, 100, 70, 2), (13, 257, 33, 5), (20, 64, 129, 16)]:
            assert_update_product_bias_exact(*update_problem(rng, m, k, n, r, dtype))
    finally:
        _kernels._override_cache_sizes()


@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(0, 90), k=st.integers(0, 300), n=st.integers(0, 140),
    trans_a=st.booleans(), trans_b=st.booleans(), dtype=st.sampled_from(DTYPES),
    beta=st.sampled_from([0.0, 1.0, -0.5]), nthreads=st.sampled_from(TEST_THREADS),
    kernel=st.sampled_from(_core.available_kernels()), seed=st.integers(0, 2**31),
)
def test_random_shapes(m, k, n, trans_a, trans_b, dtype, beta, nthreads, kernel, seed):
    _core.use_kernels(kernel)               # conftest restores both after the test
    _core.set_num_threads(nthreads)
    rng = np.random.default_rng(seed)
    a, b = operands(rng, m, k, n, dtype, trans_a, trans_b)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    assert_bias_epilogue_exact(a, b, rng.standard_normal(n).astype(dtype), trans_a, trans_b, c0, 1.5, beta)
