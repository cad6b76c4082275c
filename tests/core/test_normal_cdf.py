"""normal_cdf (GELU's Φ) against Python's math.erfc, the same libm function: equal to the last bit in
float64, rounded once in float32, on awkward shapes and inputs."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minidl import _core


def reference(x: np.ndarray) -> np.ndarray:
    """Φ element by element in double precision (math.erfc), rounded to x's dtype."""
    flat = [0.5 * math.erfc(-float(v) / math.sqrt(2)) for v in np.asarray(x, np.float64).ravel()]
    return np.array(flat, np.float64).reshape(np.shape(x)).astype(x.dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (0,), (1,), (7,), (3, 0, 2), (5, 33), (2, 3, 4)])
def test_equals_math_erfc_on_every_shape(shape, dtype):
    x = np.random.default_rng(1).normal(scale=4.0, size=shape).astype(dtype)
    y = _core.normal_cdf(x)
    assert y.dtype == dtype and y.shape == np.shape(x)           # 0-d stays 0-d
    np.testing.assert_array_equal(y, reference(x))


def test_tails_limits_and_nan():
    x = np.array([-30.0, -8.0, 0.0, 8.0, 40.0, -np.inf, np.inf, np.nan])
    y = _core.normal_cdf(x)
    assert y[0] == 0.5 * math.erfc(30 / math.sqrt(2)) > 0                # 4.9e-198: no cancellation
    assert 0 < y[1] < 1e-15 and y[2] == 0.5 and y[3] == 1.0 - 0.5 * math.erfc(8 / math.sqrt(2)) == y[3]
    assert (y[4], y[5], y[6]) == (1.0, 0.0, 1.0) and np.isnan(y[7])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_contiguous_input_and_out(dtype):
    base = np.random.default_rng(2).normal(size=(6, 10)).astype(dtype)
    view = base[::2, 1::3]                                  # strided, neither C- nor F-contiguous
    out = np.empty((3, 3), dtype)
    assert _core.normal_cdf(view, out=out) is out
    np.testing.assert_array_equal(out, reference(view))
    transposed = base.T
    np.testing.assert_array_equal(_core.normal_cdf(transposed), reference(transposed))


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(TypeError, match="normal_cdf: x has dtype int64"):
        _core.normal_cdf(np.arange(3))
    with pytest.raises(TypeError, match="must be a numpy.ndarray"):
        _core.normal_cdf([0.0, 1.0])
    with pytest.raises(ValueError, match=r"out has shape \(2,\), expected \(3,\)"):
        _core.normal_cdf(np.zeros(3), out=np.zeros(2))
    with pytest.raises(TypeError, match="out has dtype float32, expected float64"):
        _core.normal_cdf(np.zeros(3), out=np.zeros(3, np.float32))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(hnp.arrays(st.sampled_from([np.float32, np.float64]), hnp.array_shapes(min_dims=0, max_dims=3, max_side=9),
                  elements=st.floats(-60, 60, width=32)))
def test_random_arrays(x):
    np.testing.assert_array_equal(_core.normal_cdf(x).reshape(x.shape), reference(x))
