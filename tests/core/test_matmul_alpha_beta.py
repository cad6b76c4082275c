"""matmul's BLAS gemm epilogue C <- alpha op(A) op(B) + beta C against a float64 NumPy reference: every
kernel build, both dtypes, awkward shapes, transposes, many K blocks, strided and aliased outputs."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import _core
from minidl._core import _kernels

from core_helpers import TEST_THREADS
from test_matmul import AWKWARD, DTYPES, TRANSPOSES, operands

# (alpha, beta): the defaults, SGD's update (-lr, 1), weight decay (beta < 1), momentum (beta = mu),
# a scaled product alone (beta 0) and arbitrary values.
COEFFICIENTS = [(1.0, 0.0), (1.0, 1.0), (-0.1, 1.0), (-0.01, 0.99), (1.0, 0.9), (2.5, 0.0), (-1.75, -0.5)]


def reference(a, b, trans_a=False, trans_b=False):
    """(op(a) op(b), |op(a)| |op(b)|, k) in float64."""
    opa = (a.T if trans_a else a).astype(np.float64)
    opb = (b.T if trans_b else b).astype(np.float64)
    return opa @ opb, np.abs(opa) @ np.abs(opb), opa.shape[1]


def assert_gemm_close(got, a, b, c0, alpha, beta, trans_a=False, trans_b=False, ref=None):
    """|C - C_ref| <= 2 (k + 2) eps (|alpha| |op(a)| |op(b)| + |beta C0|): the GEMM error bound with the
    epilogue's two extra roundings; alpha and beta rounded to the dtype as the kernel does."""
    dtype = a.dtype.type
    alpha, beta = float(dtype(alpha)), float(dtype(beta))
    product, magnitude, k = ref or reference(a, b, trans_a, trans_b)
    want = alpha * product + (beta * c0.astype(np.float64) if beta else 0.0)
    assert got.shape == want.shape and got.dtype == a.dtype
    scale = abs(alpha) * magnitude + abs(beta) * np.abs(c0.astype(np.float64))
    bound = 2 * (k + 2) * np.finfo(a.dtype).eps * scale + np.finfo(a.dtype).tiny
    err = np.abs(got.astype(np.float64) - want)
    assert np.all(err <= bound), f"max error {err.max()} (bound {bound[err > bound].min()})"


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES, ids=["NN", "NT", "TN", "TT"])
@pytest.mark.parametrize("m,k,n", AWKWARD, ids=[f"{m}x{k}x{n}" for m, k, n in AWKWARD])
def test_awkward_shapes(kernels, rng, m, k, n, dtype, trans_a, trans_b):
    a, b = operands(rng, m, k, n, dtype, trans_a, trans_b)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    ref = reference(a, b, trans_a, trans_b)
    for alpha, beta in COEFFICIENTS:
        out = c0.copy()
        got = _core.matmul(a, b, trans_a=trans_a, trans_b=trans_b, out=out, alpha=alpha, beta=beta)
        assert got is out
        assert_gemm_close(out, a, b, c0, alpha, beta, trans_a, trans_b, ref=ref)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("m,k,n", [(5, 7, 3073), (9, 600, 2100), (200, 1300, 260), (1000, 10, 1000)])
def test_beta_applies_once_over_many_k_and_n_blocks(kernels, threads, rng, m, k, n, dtype):
    """K beyond KC: only the first K block scales C by beta, the later ones add to it."""
    a, b = operands(rng, m, k, n, dtype, True, False)          # X^T dY: the weight-gradient layout
    c0 = rng.standard_normal((m, n)).astype(dtype)
    out = c0.copy()
    _core.matmul(a, b, trans_a=True, out=out, alpha=-0.05, beta=0.75)
    assert_gemm_close(out, a, b, c0, -0.05, 0.75, trans_a=True)


@pytest.mark.parametrize("caches", [(1, 1, 1), (4 << 10, 16 << 10, 64 << 10)], ids=["tiny", "small"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_smallest_blocks(kernels, threads, caches, dtype, rng):
    """KC 16, MC = MR, NC = NR: every loop of the driver runs many times, every edge tile is hit."""
    _kernels._override_cache_sizes(*caches)
    try:
        for (m, k, n), ta, tb in itertools.product([(7, 33, 5), (13, 200, 70), (100, 37, 129)],
                                                   (False, True), (False, True)):
            a, b = operands(rng, m, k, n, dtype, ta, tb)
            c0 = rng.standard_normal((m, n)).astype(dtype)
            out = c0.copy()
            _core.matmul(a, b, trans_a=ta, trans_b=tb, out=out, alpha=0.5, beta=-2.0)
            assert_gemm_close(out, a, b, c0, 0.5, -2.0, ta, tb)
    finally:
        _kernels._override_cache_sizes()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (13, 17, 19), (66, 784, 1000), (200, 300, 260)])
def test_beta_zero_ignores_nan_and_inf_in_out(kernels, threads, rng, m, k, n, dtype):
    """As BLAS: with beta = 0, out is written, never read (NaN * 0 would be NaN)."""
    a, b = operands(rng, m, k, n, dtype, False, False)
    out = np.full((m, n), np.nan, dtype=dtype)
    out[::2] = np.inf
    _core.matmul(a, b, out=out, alpha=3.0, beta=0.0)
    assert_gemm_close(out, a, b, np.zeros((m, n), dtype), 3.0, 0.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_alpha_zero_scales_out_without_reading_the_operands(kernels, threads, rng, dtype):
    """As BLAS: alpha = 0 gives beta * C (0 with beta = 0) even where op(a) op(b) would be NaN."""
    a = np.full((30, 40), np.nan, dtype=dtype)
    b = np.full((40, 50), np.inf, dtype=dtype)
    c0 = rng.standard_normal((30, 50)).astype(dtype)
    out = c0.copy()
    _core.matmul(a, b, out=out, alpha=0.0, beta=0.5)
    np.testing.assert_array_equal(out, c0 * dtype(0.5))
    out[...] = np.nan
    _core.matmul(a, b, out=out, alpha=0.0)
    np.testing.assert_array_equal(out, np.zeros_like(out))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_zero_inner_dimension_scales_out(kernels, dtype):
    out = np.full((3, 4), 2.0, dtype=dtype)
    _core.matmul(np.ones((3, 0), dtype), np.ones((0, 4), dtype), out=out, alpha=5.0, beta=-1.5)
    np.testing.assert_array_equal(out, np.full((3, 4), -3.0, dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_defaults_are_bitwise_the_plain_product(kernels, threads, rng, dtype):
    """alpha = 1, beta = 0 and (alpha = 1, beta = 1 onto zeros) round exactly as the plain product."""
    a, b = operands(rng, 70, 600, 90, dtype, True, False)
    plain = _core.matmul(a, b, trans_a=True)
    np.testing.assert_array_equal(_core.matmul(a, b, trans_a=True, alpha=1.0, beta=0.0), plain)
    out = np.zeros_like(plain)
    np.testing.assert_array_equal(_core.matmul(a, b, trans_a=True, out=out, beta=1.0), plain)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_strided_fortran_and_reversed_outputs(kernels, rng, dtype):
    """An out the kernel cannot write in place goes through a temporary that starts as out's values."""
    a, b = operands(rng, 20, 30, 40, dtype, False, False)
    c0 = rng.standard_normal((20, 40)).astype(dtype)
    big = np.zeros((20, 80), dtype=dtype)
    layouts = {"strided": big[:, ::2], "fortran": np.zeros((20, 40), dtype=dtype, order="F"),
               "reversed": np.zeros((20, 40), dtype=dtype)[::-1]}
    for name, out in layouts.items():
        out[...] = c0
        assert _core.matmul(a, b, out=out, alpha=-0.5, beta=2.0) is out
        assert_gemm_close(out, a, b, c0, -0.5, 2.0)
    assert np.all(big[:, 1::2] == 0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_out_aliasing_an_input_reads_the_inputs_as_they_were(kernels, rng, dtype):
    """out may be a or b (np.may_share_memory): computed in a temporary seeded with out, then copied."""
    a = rng.standard_normal((33, 33)).astype(dtype)
    b = rng.standard_normal((33, 33)).astype(dtype)
    a0, b0 = a.copy(), b.copy()
    assert _core.matmul(a, b, out=a, alpha=0.5, beta=-1.0) is a
    assert_gemm_close(a, a0, b0, a0, 0.5, -1.0)
    _core.matmul(a0, b, trans_b=True, out=b, alpha=2.0, beta=1.0)
    assert_gemm_close(b, a0, b0, b0, 2.0, 1.0, trans_b=True)


def test_bad_alpha_beta_raise_before_any_work():
    a, b = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="beta=0.5 needs out="):
        _core.matmul(a, b, beta=0.5)
    with pytest.raises(TypeError, match="alpha must be a real number"):
        _core.matmul(a, b, alpha="1")
    with pytest.raises(TypeError, match="beta must be a real number"):
        _core.matmul(a, b, out=np.ones((2, 4), np.float32), beta=1j)
    with pytest.raises(ValueError, match=r"out has shape \(4, 2\)"):
        _core.matmul(a, b, out=np.ones((4, 2), np.float32), beta=1.0)
    assert _core.matmul(a, b, alpha=np.float32(2))[0, 0] == 6.0     # NumPy scalars are numbers


@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(0, 40), k=st.integers(0, 40), n=st.integers(0, 70),
    trans_a=st.booleans(), trans_b=st.booleans(), dtype=st.sampled_from(DTYPES),
    alpha=st.floats(-4, 4), beta=st.sampled_from([0.0, 1.0, -1.0, 0.5, 0.9]),
    nthreads=st.sampled_from(TEST_THREADS), kernel=st.sampled_from(_core.available_kernels()),
    seed=st.integers(0, 2**31),
)
def test_random_shapes_and_coefficients(m, k, n, trans_a, trans_b, dtype, alpha, beta, nthreads, kernel, seed):
    _core.use_kernels(kernel)
    _core.set_num_threads(nthreads)
    rng = np.random.default_rng(seed)
    a, b = operands(rng, m, k, n, dtype, trans_a, trans_b)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    out = c0.copy()
    _core.matmul(a, b, trans_a=trans_a, trans_b=trans_b, out=out, alpha=alpha, beta=beta)
    assert_gemm_close(out, a, b, c0, alpha, beta, trans_a, trans_b)
