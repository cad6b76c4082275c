"""The promises a PyTorch user relies on without thinking (issue 11), one regression test each: every one
of these failed, silently or with an unhelpful error, before the fix. Expected values are worked out by hand
(or are micrograd's own) and agree with PyTorch 2.x on the same computations."""
import numpy as np
import pytest

import minidl as mdl
from minidl import optim


# ---- 1. 0-d gradients with three or more contributions ----------------------------------------------
def test_a_0d_leaf_used_three_times():
    x = mdl.tensor(2.0, requires_grad=True)
    (x + x + x).backward()
    assert x.grad == 3.0


def test_a_0d_polynomial():
    s = mdl.tensor(2.0, requires_grad=True)
    (s * s * s + s).backward()                 # 3s² + 1
    assert s.grad == 13.0


def test_a_0d_sum_reused():
    x = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    s = x.sum()
    (s * s + s).backward()                     # (2s + 1) · 1 with s = 6
    np.testing.assert_array_equal(x.grad, [13.0, 13.0, 13.0])


def test_a_0d_element_reused():
    a = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = a[1]
    (v * v + v + v).backward()                 # 2v + 2 with v = 2
    np.testing.assert_array_equal(a.grad, [0.0, 6.0, 0.0])


def test_micrograd_more_ops_with_0d_tensors():
    """micrograd's test_more_ops (its expected values: PyTorch's), with 0-d tensors and in-place ops."""
    a = mdl.tensor(-4.0, dtype=np.float64, requires_grad=True)
    b = mdl.tensor(2.0, dtype=np.float64, requires_grad=True)
    c = a + b
    d = a * b + b ** 3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e ** 2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    assert g.item() == pytest.approx(24.70408163265306, rel=1e-12)
    assert a.grad == pytest.approx(138.83381924198252, rel=1e-12)
    assert b.grad == pytest.approx(645.5772594752186, rel=1e-12)


def test_a_0d_grad_is_an_ndarray_that_zero_grad_clears():
    x = mdl.tensor(2.0, requires_grad=True)
    for _ in range(2):                         # the second pass accumulates into the first one's .grad
        (x * x + x + x).backward()
    assert type(x.grad) is np.ndarray and x.grad.shape == () and x.grad.dtype == np.float32
    assert x.grad == 12.0
    optim.SGD([x], lr=0.1).zero_grad(set_to_none=False)
    assert type(x.grad) is np.ndarray and x.grad == 0.0


@pytest.mark.parametrize("shape", [(), (1,), (2, 1), (0, 3)])
def test_grad_has_the_leaf_shape_however_often_it_is_reused(shape):
    x = mdl.tensor(np.full(shape, 1.5), requires_grad=True)
    y = x
    for _ in range(4):
        y = y * x + x
    y.sum().backward()
    assert type(x.grad) is np.ndarray and x.grad.shape == x.shape
    value = 1.5                                # y_k = y_{k-1}·x + x, so y'_k = y'_{k-1}·x + y_{k-1} + 1
    grad = 1.0
    for _ in range(4):
        value, grad = value * 1.5 + 1.5, grad * 1.5 + value + 1
    np.testing.assert_allclose(x.grad, np.full(shape, grad), rtol=1e-6)
