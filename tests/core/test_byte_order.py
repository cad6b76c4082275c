"""Byte-swapped and misaligned arrays, 0-d ones too, in every kernel entry point: the same numbers and shapes
as NumPy gives for native arrays (a wrapper converts what the C code cannot read in place)."""
import numpy as np
import pytest

from minidl import _core

DTYPES = [np.float32, np.float64]


def swapped(values, dtype):
    return np.asarray(values, dtype=np.dtype(dtype).newbyteorder(">" if np.little_endian else "<"))


def misaligned(values, dtype):
    """``values`` in an array whose data starts one byte into its buffer."""
    values = np.asarray(values, dtype=dtype)
    buffer = np.zeros(values.nbytes + 1, np.uint8)
    out = buffer[1:].view(dtype).reshape(values.shape)
    out[...] = values
    assert not out.flags.aligned
    return out


def sigmoid(x):
    return 1 / (1 + np.exp(-np.asarray(x, np.float64)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make", [swapped, misaligned])
def test_a_0d_input_stays_0d(kernels, dtype, make):
    """np.ascontiguousarray made every converted 0-d array 1-d: shape (1,), or a refusal saying
    'y has shape () but grad_y has shape ()'."""
    x = make(0.5, dtype)
    assert _core.sigmoid_forward(x).shape == ()
    assert _core.normal_cdf(x).shape == ()
    np.testing.assert_allclose(_core.sigmoid_backward(x, np.array(2.0, dtype)), 0.5, rtol=1e-6)
    y = np.array(1.0, dtype)
    assert _core.axpby(2.0, x, 1.0, y) is y and y == 2.0
    out = np.empty((), dtype)
    assert _core.sigmoid_forward(x, out=out) is out and out == pytest.approx(sigmoid(0.5), rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_byte_swapped_out_gets_the_right_numbers(kernels, dtype, rng):
    """A swapped `out` of the right dtype was refused ('out has dtype >f8, expected float64'), and the path
    meant for it wrote native bytes into a swapped buffer."""
    tol = 1e-5 if dtype == np.float32 else 1e-12
    a, b = swapped(rng.normal(size=(5, 7)), dtype), swapped(rng.normal(size=(7, 3)), dtype)
    out = swapped(np.ones((5, 3)), dtype)
    assert _core.matmul(a, b, out=out, alpha=2.0, beta=1.0) is out
    np.testing.assert_allclose(out, 2 * (a.astype(np.float64) @ b.astype(np.float64)) + 1, rtol=tol, atol=tol)
    x = swapped(np.linspace(-4, 4, 9), dtype)
    for kernel, expected in ((_core.sigmoid_forward, sigmoid(x)), (_core.normal_cdf, None)):
        out = swapped(np.zeros(9), dtype)
        assert kernel(x, out=out) is out
        np.testing.assert_allclose(out, kernel(x.astype(dtype)) if expected is None else expected, rtol=tol)
    out = swapped(np.zeros(9), dtype)
    _core.sigmoid_backward(swapped(np.full(9, 0.5), dtype), x, out=out)
    np.testing.assert_allclose(out, 0.25 * x.astype(np.float64), rtol=tol)
    y = swapped(np.ones(9), dtype)
    _core.axpby(2.0, x, 3.0, y)
    np.testing.assert_allclose(y, 2 * x.astype(np.float64) + 3, rtol=tol)


def test_a_byte_swapped_weight_in_the_fused_update_is_refused_clearly():
    """The fused update writes w in place, so w must be native; the message said the dtypes differed."""
    x, u, v = np.ones((2, 3)), np.ones((5, 3)), np.ones((5, 4))
    with pytest.raises(ValueError, match="native byte order"):
        _core.matmul_after_update(x, swapped(np.ones((3, 4)), np.float64), u, v, -0.1, 1.0)
