"""Construction, dtype rules, array-like properties, conversions."""
import numpy as np
import pytest

import minidl as mdl


@pytest.mark.parametrize("data", [1, 2.5, [1, 2, 3], [[1.0, 2.0]], (1.0, 2.0), True])
def test_python_numbers_and_lists_become_float32(data):
    assert mdl.tensor(data).dtype == np.float32
    assert mdl.Tensor(data).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_ndarrays_keep_dtype(dtype):
    a = np.ones((2, 3), dtype=dtype)
    assert mdl.tensor(a).dtype == dtype
    t = mdl.Tensor(a)
    assert t.dtype == dtype and t.data is a           # Tensor wraps, tensor copies
    assert mdl.tensor(a).data is not a


def test_integer_ndarrays_keep_dtype_but_cannot_require_grad():
    idx = np.array([0, 2, 1])
    assert mdl.tensor(idx).dtype == idx.dtype
    with pytest.raises(TypeError, match="floating"):
        mdl.tensor(idx, requires_grad=True)


def test_explicit_dtype_and_properties():
    t = mdl.tensor([[1, 2, 3], [4, 5, 6]], dtype=np.float64, requires_grad=True)
    assert t.dtype == np.float64 and t.shape == (2, 3) and t.ndim == 2 and len(t) == 2
    assert t.requires_grad and t.grad is None and t.is_leaf
    assert isinstance(t.numpy(), np.ndarray) and t.numpy() is t.data
    assert np.asarray(t) is t.data
    assert "requires_grad=True" in repr(t)


def test_item():
    assert mdl.tensor([[3.5]]).item() == 3.5 and float(mdl.tensor([3.5])) == 3.5
    assert isinstance(mdl.tensor(2).item(), float)
    with pytest.raises(ValueError, match=r"\(2,\)"):
        mdl.tensor([1, 2]).item()


def test_float32_stays_float32_with_python_scalars():
    t = mdl.tensor([1.0, 2.0])
    for out in (t + 1, 2 - t, t * 2.5, 10.0 / t, t ** 2, -t, t / 3, (t * 2).mean(), t.exp()):
        assert out.dtype == np.float32


def test_ndarray_on_left_defers_to_tensor():
    out = np.ones(2) + mdl.tensor([1.0, 2.0], requires_grad=True)
    assert isinstance(out, mdl.Tensor) and out.requires_grad


def test_object_data_refused():
    with pytest.raises(TypeError):
        mdl.tensor(["a", "b"])


def test_zero_dim_results_hold_ndarrays():
    a = mdl.tensor(2.0, requires_grad=True)
    for out in (a * mdl.tensor(3.0), a + a, a.exp(), a.sigmoid(), a.tanh(), -a, a ** 2, a.sum(), 1.0 / a,
                mdl.tensor(2.0) * 3, mdl.tensor(2.0).exp()):
        assert type(out.data) is np.ndarray and out.shape == ()


def test_numpy_scalars_do_not_promote_float32():
    t = mdl.tensor([1.0, 2.0], requires_grad=True)
    for out in (t * np.float64(2), np.float64(2) * t, t + np.sqrt(2.0), np.float64(1) - t, t / np.float64(3),
                np.float64(3) / t, t ** np.float64(2), t - np.int64(1)):
        assert isinstance(out, mdl.Tensor) and out.dtype == np.float32
    (t * np.float64(3)).sum().backward()
    assert t.grad.dtype == np.float32
    np.testing.assert_array_equal(t.grad, [3.0, 3.0])


def test_a_one_element_integer_tensor_is_an_index_as_in_pytorch():
    """``classes[logits.argmax()]`` and ``range(n)`` take a one-element integer tensor (PyTorch's __index__);
    minidl raised 'list indices must be integers or slices, not Tensor'."""
    logits = mdl.tensor([0.1, 2.0, -1.0])
    assert ["cat", "dog", "car"][logits.argmax()] == "dog"
    assert list(range(mdl.arange(3).sum())) == [0, 1, 2]
    assert np.arange(10)[mdl.tensor(np.array([4]))] == 4                      # NumPy reads it as an int too
    assert ["no", "yes"][mdl.tensor(np.array(True))] == "yes"
    for bad in (mdl.tensor(1.0), mdl.arange(2)):
        with pytest.raises(TypeError, match="only integer tensors of a single element"):
            [1, 2][bad]


def test_tolist_numel_and_dim_as_pytorch():
    t = mdl.tensor(np.arange(6).reshape(2, 3))
    assert t.tolist() == [[0, 1, 2], [3, 4, 5]] and type(t.tolist()[0][0]) is int
    assert mdl.tensor(2.5).tolist() == 2.5
    assert t.numel() == 6 and t.dim() == 2 and mdl.tensor(1.0).dim() == 0 and mdl.zeros(0, 3).numel() == 0


def test_repr_of_an_empty_tensor_names_its_shape():
    """``tensor([])`` was printed for shapes (2, 0) and (0, 3) alike; PyTorch adds ``size=``."""
    assert repr(mdl.zeros(2, 0)) == "tensor([], size=(2, 0))"
    assert repr(mdl.zeros(0, 3, dtype=np.float64)) == "tensor([], size=(0, 3), dtype=float64)"
    assert repr(mdl.zeros(0)) == "tensor([])"


def test_an_assigned_grad_is_checked_as_in_pytorch():
    """``t.grad = x`` kept anything: a list became [1, 2, 3] + the next gradient as a float64 array, a
    (1, 3) array took the next backward by broadcasting and kept its shape, an integer array failed inside
    backward. PyTorch refuses them at the assignment; so does minidl."""
    t = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(TypeError, match="ndarray or Tensor"):
        t.grad = [1.0, 2.0, 3.0]
    for dtype in (np.int64, np.float16):     # float16: every later gradient kept at its precision
        with pytest.raises(TypeError, match="float32 or float64"):
            t.grad = np.zeros(3, dtype)
    with pytest.raises(ValueError, match=r"shape \(3,\) cannot take a .grad of shape \(1, 3\)"):
        t.grad = np.zeros((1, 3), np.float32)
    assert t.grad is None
    t.grad = np.broadcast_to(np.float32(1.0), (3,))              # read-only: kept as a copy backward adds into
    (2 * t).sum().backward()
    np.testing.assert_array_equal(t.grad, [3.0, 3.0, 3.0])
    t.grad = mdl.zeros(3)
    assert type(t.grad) is np.ndarray
    t.grad = None
    assert t.grad is None


@pytest.mark.parametrize("make", [
    lambda: mdl.Tensor(np.array([1 + 2j])), lambda: mdl.tensor(np.complex64(1)), lambda: mdl.Tensor(np.array(["a"])),
    lambda: mdl.tensor([1.0], dtype=np.float16), lambda: mdl.tensor([1.0], dtype=complex), lambda: mdl.tensor([1], dtype=str),
    lambda: mdl.zeros(2, dtype=np.float16), lambda: mdl.ones(2, dtype=complex), lambda: mdl.arange(3, dtype=np.float16)])
def test_dtypes_no_op_computes_in_are_refused(make):
    """A complex or str array made a Tensor whose every binary op failed with KeyError 'c' / 'U'; an explicit
    dtype=float16 gave float32 silently (``astype(np.float16)`` is refused)."""
    with pytest.raises(TypeError, match="minidl tensors hold bool, integer, float32 or float64"):
        make()


def test_factories_read_dtype_none_as_float32_as_pytorch():
    """NumPy reads dtype=None as float64: mdl.zeros(2, dtype=None) was float64, PyTorch's is float32."""
    for make in (mdl.zeros, mdl.ones, mdl.rand, mdl.randn):
        assert make(2, dtype=None).dtype == np.float32
    assert mdl.zeros(2, dtype="float64").dtype == np.float64 and mdl.ones(2, dtype=bool).dtype == np.bool_


def test_in_looks_for_an_element_as_in_pytorch():
    """``2.0 in matrix`` raised 'Boolean value of a tensor with more than one value is ambiguous' (Python
    compared 2.0 with each row) and ``2.0 in t`` of a 0-d t 'not iterable'; PyTorch reads it as (t == x).any()."""
    m = mdl.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert 2.0 in m and 5.0 not in m and mdl.tensor(4.0) in m and np.float64(3.0) in m
    assert 2.0 in mdl.tensor(2.0) and 0.1 in mdl.tensor(np.array([0.1], np.float32))     # compared as t - 0.1 is
    with pytest.raises(TypeError, match="number or a Tensor"):
        "a" in m
