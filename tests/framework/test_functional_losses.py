"""softmax / log_softmax / cross_entropy / mse_loss: values, stability, gradients, input checks."""
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minidl as mdl
from minidl import nn
from minidl.nn import functional as F
from fw_gradcheck import check_gradients


def logits(n, c, seed, scale=2.0):
    return np.random.default_rng(seed).normal(0, scale, size=(n, c))


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 5), st.integers(1, 6), st.sampled_from([0, 1, -1]), st.integers(0, 2**16))
def test_softmax_and_log_softmax_gradients(n, c, axis, seed):
    x = logits(n, c, seed)
    check_gradients(lambda t: F.softmax(t, axis=axis), x)
    check_gradients(lambda t: F.log_softmax(t, axis=axis), x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    np.testing.assert_allclose(F.softmax(mdl.tensor(x, dtype=np.float64), axis=axis).data,
                               e / e.sum(axis=axis, keepdims=True))


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**16))
def test_cross_entropy_gradient_and_value(n, c, seed):
    x = logits(n, c, seed)
    y = np.random.default_rng(seed + 1).integers(0, c, size=n)
    check_gradients(lambda t: F.cross_entropy(t, y), x)
    logp = x - x.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    expected = -np.mean(logp[np.arange(n), y])
    assert F.cross_entropy(mdl.tensor(x, dtype=np.float64), y).item() == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_of_zero_logits_is_ln10():
    loss = F.cross_entropy(mdl.tensor(np.zeros((7, 10), dtype=np.float32)), np.arange(7))
    assert loss.item() == pytest.approx(math.log(10), rel=1e-6)
    assert loss.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_stay_finite_and_correct(dtype):
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]]) * 1e5
    t = mdl.tensor(x, dtype=dtype, requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="ignore", under="ignore"):
        p = F.softmax(t).data
        lp = F.log_softmax(t).data
        loss = F.cross_entropy(t, np.array([2, 0]))
        loss.backward()
    np.testing.assert_allclose(p, [[0, 0, 1], [0, 1, 0]], atol=1e-30)
    np.testing.assert_allclose(lp, x - x.max(1, keepdims=True), rtol=1e-6)
    assert np.isfinite(loss.item()) and loss.item() == pytest.approx(1.5e5 / 2, rel=1e-6)
    np.testing.assert_allclose(t.grad, [[0, 0, 0], [-0.5, 0.5, 0]], atol=1e-7)


def test_cross_entropy_matches_composed_log_softmax():
    x = logits(4, 5, 3)
    y = np.array([4, 0, 2, 2])
    a = F.cross_entropy(mdl.tensor(x, dtype=np.float64), y).item()
    b = -(F.log_softmax(mdl.tensor(x, dtype=np.float64))[np.arange(4), y]).mean().item()
    assert a == pytest.approx(b, rel=1e-12)
    assert nn.CrossEntropyLoss()(mdl.tensor(x), mdl.tensor(y)).item() == pytest.approx(a, rel=1e-6)


def test_cross_entropy_input_checks():
    x = mdl.tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"\(2,\).*\(3, 4\)"):
        F.cross_entropy(x, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        F.cross_entropy(x, np.array([0, 1, 4]))
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(x, np.array([0.0, 1.5, 2.0]))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        F.cross_entropy(x, mdl.tensor([0, 1, 4]))


def test_cross_entropy_takes_whole_number_float_targets():
    """mdl.tensor([0, 2]) is float32 (the contract); its whole numbers are class indices."""
    z = logits(2, 3, seed=3)
    expected = F.cross_entropy(mdl.tensor(z), np.array([0, 2])).item()
    assert F.cross_entropy(mdl.tensor(z), mdl.tensor([0, 2])).item() == expected
    with pytest.raises(ValueError, match=r"targets of shape \(1,\) do not match logits of shape \(4,\) "
                                         r"\(expected \(\)\)"):
        F.cross_entropy(mdl.tensor(np.zeros(4)), np.array([0]))


@pytest.mark.parametrize("shape", [(3, 2), (), (4,), (4, 1), (2, 3, 1)])
def test_mse_loss_gradient_and_value(shape):
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=shape), rng.normal(size=shape)
    check_gradients(F.mse_loss, a, b)
    assert F.mse_loss(mdl.tensor(a, dtype=np.float64), b).item() == pytest.approx(np.mean((a - b) ** 2))
    assert nn.MSELoss()(mdl.tensor(a), mdl.tensor(b)).item() == pytest.approx(np.mean((a - b) ** 2), rel=1e-5)


@pytest.mark.parametrize("sa,sb", [((3, 1), (3,)), ((3, 2), (2,)), ((), (4,)), ((4, 1), (1, 3))])
def test_mse_loss_of_different_shapes_names_both(sa, sb):
    """(N, 1) against (N,) used to broadcast to an N×N loss silently (issue 11, item 5)."""
    a, b = mdl.tensor(np.zeros(sa)), mdl.tensor(np.ones(sb))
    with pytest.raises(ValueError, match=re.escape(f"{sa}") + ".*" + re.escape(f"{sb}")):
        F.mse_loss(a, b)
    with pytest.raises(ValueError, match="differ"):
        nn.MSELoss()(a, b)


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
def test_softmax_over_an_axis_of_length_zero_is_empty(fn):
    """NumPy's max of nothing raised ('zero-size array to reduction operation maximum'); PyTorch gives an
    empty tensor and an empty gradient."""
    x = mdl.tensor(np.zeros((3, 0)), requires_grad=True)
    y = fn(x, dim=1)
    y.sum().backward()
    assert y.shape == (3, 0) and x.grad.shape == (3, 0)
    assert fn(mdl.tensor(np.zeros((0, 4))), dim=1).shape == (0, 4)


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
def test_softmax_axis_out_of_range_or_not_an_int_is_named(fn):
    """dim=3 of a 2-D tensor raised IndexError 'tuple index out of range' from inside; None/1.0 a TypeError
    about tuple indices."""
    x = mdl.tensor(np.ones((2, 3)))
    for axis in (2, -3):
        with pytest.raises(IndexError, match=rf"axis {axis} is out of range for a tensor of shape \(2, 3\)"):
            fn(x, dim=axis)
    for axis in (None, 1.0, True):
        with pytest.raises(TypeError, match="axis must be an int"):
            fn(x, axis=axis)
    with pytest.raises(IndexError, match="out of range"):
        nn.Softmax(dim=2)(x)
    assert fn(mdl.tensor(1.5), 0).shape == () and fn(x, np.int64(0)).shape == (2, 3)
