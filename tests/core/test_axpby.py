"""axpby (y <- alpha x + beta y, in place) against the same formula in float64."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minidl import _core

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])


def expected(alpha, x, beta, y):
    """alpha x + beta y in float64, rounded to y's dtype once."""
    return (alpha * x.astype(np.float64) + beta * y.astype(np.float64)).astype(y.dtype)


def assert_close(got, want):
    # Two roundings in the kernel's dtype (product, then sum) against one: within 2 ulps of the result.
    eps = np.finfo(want.dtype).eps
    np.testing.assert_allclose(got, want, rtol=2 * eps, atol=2 * eps * float(np.abs(want).max(initial=0)))


# 0, 1, odd, a tail of 15 after a multiple of 16, and sizes split across threads (65536 per thread).
SIZES = [0, 1, 7, 31, 1000, 65536 * 2 + 15, 65536 * 5 + 3]


@DTYPES
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("alpha, beta", [(-0.01, 1.0), (0.9, 0.5), (1.0, 0.0), (2.0, -1.0)])
def test_matches_the_formula(kernels, threads, rng, dtype, n, alpha, beta):
    x = rng.standard_normal(n).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    want = expected(alpha, x, beta, y)
    x_before = x.copy()
    assert _core.axpby(alpha, x, beta, y) is y
    assert_close(y, want)
    np.testing.assert_array_equal(x, x_before)       # x is only read


def test_every_element_is_updated_once_across_the_thread_split(kernels, threads):
    """A range left out or done twice by the split shows up as 0 or 2 instead of 1."""
    _core._kernels._reset_contention_state()       # no back-off to one thread left from earlier tests
    assert _core.effective_num_threads() == (threads if _core.openmp_enabled() else 1)
    n = 65536 * 3 + 17
    y = np.zeros(n, np.float32)
    _core.axpby(1.0, np.ones(n, np.float32), 1.0, y)
    assert np.count_nonzero(y != 1.0) == 0


@DTYPES
def test_multi_dimensional_and_strided_arrays(kernels, rng, dtype):
    base_x = rng.standard_normal((30, 40)).astype(dtype)
    base_y = rng.standard_normal((30, 40)).astype(dtype)
    # strided x, C-contiguous y: x is read through a contiguous copy
    x, y = base_x[:, ::2], base_y[:, :20].copy()
    want = expected(-0.5, x, 1.0, y)
    _core.axpby(-0.5, x, 1.0, y)
    assert_close(y, want)
    # non-contiguous y (a view into a parameter): updated in place through NumPy
    y = base_y.copy()
    view = y[::3, 1::2]
    want_view = expected(0.25, base_x[::3, ::2], 0.75, view)
    untouched = y.copy()
    untouched[::3, 1::2] = 0
    assert _core.axpby(0.25, base_x[::3, ::2], 0.75, view) is view
    assert_close(view, want_view)
    rest = y.copy()
    rest[::3, 1::2] = 0
    np.testing.assert_array_equal(rest, untouched)
    # Fortran order
    y = np.asfortranarray(base_y)
    want = expected(2.0, base_x, 1.0, y)
    _core.axpby(2.0, base_x, 1.0, y)
    assert_close(y, want)


@pytest.mark.parametrize("n", [10, 65536 * 3])
def test_aliasing_x_and_y(kernels, threads, n):
    y = np.arange(n, dtype=np.float64)
    _core.axpby(1.0, y, 0.5, y)                       # y <- 1.5 y
    np.testing.assert_array_equal(y, 1.5 * np.arange(n))
    # x one element behind y: an in-place loop would read x[i] = y[i-1] after writing it
    buf = np.arange(n + 1, dtype=np.float64)
    _core.axpby(1.0, buf[:-1], 1.0, buf[1:])
    np.testing.assert_array_equal(buf[1:], np.arange(n) + np.arange(1, n + 1))
    # the same with a y that is not contiguous (the NumPy path): x is read before y is scaled
    base = np.arange(2 * n, dtype=np.float64)
    view = base[::2]
    _core.axpby(1.0, view, 0.5, view)
    np.testing.assert_array_equal(view, 1.5 * np.arange(0, 2 * n, 2))


def test_bad_input_is_rejected_before_any_work():
    y = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=r"x has shape \(3,\) but y has shape \(4,\)"):
        _core.axpby(1.0, np.zeros(3, np.float32), 1.0, y)
    with pytest.raises(TypeError, match="x has dtype float64 but y has dtype float32"):
        _core.axpby(1.0, np.zeros(4), 1.0, y)
    with pytest.raises(TypeError, match="expected float32 or float64"):
        _core.axpby(1.0, np.zeros(4, np.int64), 1.0, np.zeros(4, np.int64))
    with pytest.raises(TypeError, match="y must be a numpy.ndarray"):
        _core.axpby(1.0, np.zeros(4, np.float32), 1.0, [0.0] * 4)
    frozen = np.zeros(4, np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="y is read-only"):
        _core.axpby(1.0, np.zeros(4, np.float32), 1.0, frozen)
    np.testing.assert_array_equal(y, 0)


@pytest.mark.parametrize("alpha, beta", [(1j, 1.0), (None, 1.0), ("2", 1.0), (1.0, [1.0])])
def test_non_real_scalars_are_refused_by_name(alpha, beta):
    """The message was Cython's bare 'must be real number, not complex', naming neither axpby nor the argument."""
    y = np.zeros(4, np.float32)
    with pytest.raises(TypeError, match="axpby: alpha and beta must be real numbers"):
        _core.axpby(alpha, np.ones(4, np.float32), beta, y)
    np.testing.assert_array_equal(y, 0)


def test_scalars_are_rounded_to_the_arrays_dtype():
    """beta = 7.17e-45 is 5 float32 subnormal spacings (7.006e-45): the kernel scales y by that."""
    y = np.array(40.0, np.float32)
    _core.axpby(0.0, np.array(0.0, np.float32), 7.167645874247791e-45, y)
    assert y == np.float32(40.0) * np.float32(7.167645874247791e-45)
    assert y == np.array(40.0, np.float32) * 7.167645874247791e-45      # NumPy rounds beta the same way


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from([np.float32, np.float64]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=30),
    alpha=st.floats(-10, 10),
    beta=st.floats(-10, 10),
    kernel=st.sampled_from(_core.available_kernels()),
)
def test_random_inputs(data, dtype, shape, alpha, beta, kernel):
    _core.use_kernels(kernel)
    elements = st.floats(-1e3, 1e3, width=32)
    x = data.draw(hnp.arrays(dtype, shape, elements=elements))
    y = data.draw(hnp.arrays(dtype, shape, elements=elements))
    # The kernel computes in y's dtype: alpha and beta are rounded to it first, as NumPy rounds a Python
    # float that meets a float32 array. A tiny beta (7e-45) loses half its digits in that rounding.
    alpha, beta = float(dtype(alpha)), float(dtype(beta))
    want = expected(alpha, x, beta, y)
    # fl(fl(a x) + fl(b y)) against the rounded exact value: within 3 eps of the two terms' magnitudes
    # (taken before y is overwritten), plus a few subnormal spacings where a product underflows
    scale = np.abs(alpha * x.astype(np.float64)) + np.abs(beta * y.astype(np.float64))
    _core.axpby(alpha, x, beta, y)
    info = np.finfo(dtype)
    error = np.abs(y.astype(np.float64) - want.astype(np.float64))
    assert np.all(error <= 3 * float(info.eps) * scale + 4 * float(info.smallest_subnormal))
