"""sigmoid_forward / sigmoid_backward against a stable float64 reference, including the extremes."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minidl import _core

# Tolerances of the issue: max relative error 1e-6 (float32), 1e-14 (float64) on normal outputs.
RTOL = {np.float32: 1e-6, np.float64: 1e-14}


def reference_sigmoid(x):
    """Stable float64 sigmoid: 1/(1+e) for x >= 0, e/(1+e) for x < 0, e = exp(-|x|)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sweep_inputs(dtype):
    """A dense sweep plus +-100, +-1000, +-inf, signed zeros and the inputs with subnormal outputs."""
    info = np.finfo(dtype)
    # sigmoid(x) ~ exp(x) is subnormal for log(smallest_subnormal) < x < log(tiny).
    sub_lo, sub_hi = np.log(float(info.smallest_subnormal)), np.log(float(info.tiny))
    parts = [
        np.linspace(-50, 50, 20001),
        np.linspace(-1000, 1000, 4001),
        np.linspace(sub_lo - 2, sub_hi + 1, 2001),
        [-1000, 1000, -100, 100, -np.inf, np.inf, 0.0, -0.0, 1e-30, -1e-30, float(info.tiny), 88.7, -88.7],
    ]
    return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts]).astype(dtype)


def assert_sigmoid_accurate(y, x):
    dtype = x.dtype.type
    ref = reference_sigmoid(x)
    info = np.finfo(dtype)
    assert not np.isnan(y).any()
    assert np.all((y >= 0) & (y <= 1))
    normal = ref >= info.tiny
    rel = np.abs(y[normal] - ref[normal]) / ref[normal]
    if rel.size:
        assert rel.max() <= RTOL[dtype], f"max relative error {rel.max():.3g} at x={x[normal][rel.argmax()]}"
    # Subnormal outputs carry fewer bits: within two spacings of the subnormal grid.
    err_sub = np.abs(y[~normal].astype(np.float64) - ref[~normal])
    assert np.all(err_sub <= 2 * float(info.smallest_subnormal))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_forward_accuracy_and_stability(kernels, threads, dtype):
    x = sweep_inputs(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / invalid-value warnings
        y = _core.sigmoid_forward(x)
    assert y.dtype == dtype and y.shape == x.shape
    assert_sigmoid_accurate(y, x)
    special = _core.sigmoid_forward(np.array([np.inf, -np.inf, 1000, -1000, 0], dtype=dtype))
    assert special.tolist() == [1.0, 0.0, 1.0, 0.0, 0.5]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_forward_large_array_split_across_threads(kernels, threads, rng, dtype):
    x = (rng.standard_normal(300_007) * 20).astype(dtype)  # odd length: vector tail on the last thread
    assert_sigmoid_accurate(_core.sigmoid_forward(x), x)


def test_nan_propagates(kernels):
    for dtype in (np.float32, np.float64):
        y = _core.sigmoid_forward(np.array([np.nan, 1.0] * 9, dtype=dtype))
        assert np.isnan(y[::2]).all() and not np.isnan(y[1::2]).any()


@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5), (2, 3, 4, 5), (0,), (4, 0, 2), (1001,)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_odd_shapes_forward_and_backward(kernels, rng, shape, dtype):
    x = np.asarray(rng.standard_normal(shape) * 5, dtype=dtype)
    y = _core.sigmoid_forward(x)
    assert y.shape == x.shape and y.dtype == dtype
    assert_sigmoid_accurate(y.reshape(-1), x.reshape(-1))
    gy = np.asarray(rng.standard_normal(shape), dtype=dtype)
    gx = _core.sigmoid_backward(y, gy)
    assert gx.shape == x.shape and gx.dtype == dtype
    ref = gy.astype(np.float64) * y * (1.0 - y.astype(np.float64))
    np.testing.assert_allclose(gx, ref, rtol=4 * np.finfo(dtype).eps, atol=np.finfo(dtype).tiny)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_backward_is_the_derivative(kernels, dtype):
    """grad_y * y * (1 - y) matches a central difference of the float64 reference."""
    x = np.linspace(-8, 8, 101)
    y = _core.sigmoid_forward(x.astype(dtype))
    gx = _core.sigmoid_backward(y, np.ones_like(y))
    h = 1e-5
    numeric = (reference_sigmoid(x + h) - reference_sigmoid(x - h)) / (2 * h)
    np.testing.assert_allclose(gx, numeric, rtol=2e-6 if dtype == np.float32 else 1e-9, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_non_contiguous_inputs_and_out(kernels, rng, dtype):
    base = (rng.standard_normal((40, 60)) * 10).astype(dtype)
    x = base[::2, ::-3]
    y = _core.sigmoid_forward(x)
    assert_sigmoid_accurate(y.reshape(-1), np.ascontiguousarray(x).reshape(-1))
    out = np.zeros((20, 40), dtype=dtype)[:, ::2]
    assert _core.sigmoid_forward(x, out=out) is out
    np.testing.assert_array_equal(out, y)
    fortran = np.asfortranarray(x)
    np.testing.assert_array_equal(_core.sigmoid_forward(fortran), y)
    gy = base[1::2, ::3]
    gx = _core.sigmoid_backward(y.T.copy().T, gy)
    np.testing.assert_allclose(gx, gy * y * (1 - y), rtol=4 * np.finfo(dtype).eps)


def test_in_place_and_overlapping_out(kernels):
    x = np.linspace(-5, 5, 64)
    expected = reference_sigmoid(x)
    same = x.copy()
    assert _core.sigmoid_forward(same, out=same) is same
    np.testing.assert_allclose(same, expected, rtol=1e-14)
    # out overlaps x shifted by one element: computed through a temporary, never read after written.
    buf = np.concatenate([[0.0], x])
    _core.sigmoid_forward(buf[1:], out=buf[:-1])
    np.testing.assert_allclose(buf[:-1], expected, rtol=1e-14)
    y = reference_sigmoid(x)
    g = np.ones_like(y)
    assert _core.sigmoid_backward(y, g, out=g) is g
    np.testing.assert_allclose(g, y * (1 - y), rtol=1e-15)


@settings(max_examples=50, deadline=None)
@given(
    x=hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64]),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=40),
        elements={"allow_nan": False, "allow_infinity": True},
    ),
    kernel=st.sampled_from(_core.available_kernels()),
)
def test_random_inputs(x, kernel):
    _core.use_kernels(kernel)
    y = _core.sigmoid_forward(x)
    assert_sigmoid_accurate(y.reshape(-1), x.reshape(-1))
