"""The tensor API of the contract beyond the basic operators: each differentiable method gradient-checked
against float64 central differences on 0-d, size-0 and size-1 shapes, forward values against NumPy, the
dim= aliases, the factories, and bad input named in the error."""
import numpy as np
import pytest

import minidl as mdl
from fw_gradcheck import check_gradients

SHAPES = [(), (1,), (3,), (2, 1), (1, 3), (2, 3), (2, 1, 3), (0,), (2, 0), (0, 3, 1)]


def data(shape, seed, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def axes_of(shape):
    """None, every single axis (negative too) and, for 2+ dims, a pair."""
    axes = [None] + list(range(len(shape))) + [-1] * bool(shape)
    return axes + ([(0, len(shape) - 1)] if len(shape) >= 2 else []) + ([0] if not shape else [])


REDUCTIONS = {"sum": np.sum, "mean": np.mean, "var": lambda x, **k: np.var(x, ddof=1, **k),
              "std": lambda x, **k: np.std(x, ddof=1, **k), "max": np.max, "min": np.min}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("shape", SHAPES)
def test_reductions_gradients_and_values(name, shape):
    x = data(shape, 1)
    for axis in axes_of(shape):
        for keepdims in (False, True):
            reduced = [shape[a] for a in np.atleast_1d(axis if axis is not None else range(len(shape)))] \
                if shape else [1]
            if name in ("max", "min") and 0 in reduced:
                with pytest.raises(ValueError, match="empty"):
                    getattr(mdl.tensor(x), name)(axis=axis)
                continue
            if name in ("var", "std", "mean") and np.prod(reduced) <= (1 if name != "mean" else 0):
                continue                                       # NaN/inf by definition: checked below
            fn = lambda t: getattr(t, name)(axis=axis, keepdims=keepdims)   # noqa: E731
            check_gradients(fn, x)
            np_axis = () if (not shape and axis is not None) else axis
            with np.errstate(all="ignore"):
                expected = REDUCTIONS[name](x, axis=np_axis, keepdims=keepdims)
            np.testing.assert_allclose(fn(mdl.tensor(x)).data, expected, rtol=1e-12, atol=1e-12)


def test_var_and_std_correction_and_degenerate_counts():
    x = data((4, 5), 2)
    check_gradients(lambda t: t.var(axis=1, correction=0), x)
    check_gradients(lambda t: t.std(dim=0, correction=0, keepdim=True), x)
    np.testing.assert_array_equal(mdl.tensor(x).var(0, unbiased=False).data, np.var(x, axis=0))
    np.testing.assert_array_equal(mdl.tensor(x).std(0, unbiased=True).data, mdl.tensor(x).std(0).data)
    np.testing.assert_allclose(mdl.tensor(x).var(correction=0).item(), np.var(x))
    assert np.var(mdl.tensor(x)).item() == pytest.approx(np.var(x))            # NumPy passes ddof=0
    assert np.std(mdl.tensor(x), ddof=1).item() == pytest.approx(np.std(x, ddof=1))
    one = mdl.tensor([2.0], requires_grad=True)
    assert np.isnan(one.var().item()) and np.isnan(one.std().item())          # 0/0, as PyTorch
    assert mdl.tensor([2.0]).var(correction=0).item() == 0.0


def test_std_gradient_is_zero_where_std_is_zero():
    x = mdl.tensor([3.0, 3.0, 3.0], requires_grad=True)
    x.std().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0])     # PyTorch masks the 0/0


def test_max_and_min_split_ties():
    x = mdl.tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5])
    y = mdl.tensor(np.zeros((0, 2)))
    assert y.max(axis=1).shape == (0,)                          # reducing a non-empty axis is fine


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin(name):
    x = data((3, 4, 2), 3)
    ref = getattr(np, name)
    t = mdl.tensor(x, requires_grad=True)
    out = getattr(t, name)()
    assert out.dtype == np.int64 and out.shape == () and not out.requires_grad
    assert out.item() == ref(x)
    for axis in (0, 1, -1):
        np.testing.assert_array_equal(getattr(t, name)(axis).data, ref(x, axis=axis))
        np.testing.assert_array_equal(getattr(t, name)(dim=axis, keepdim=True).data, ref(x, axis=axis, keepdims=True))
    assert getattr(mdl.tensor(5.0), name)(0).item() == 0 and getattr(mdl.tensor(5.0), name)().item() == 0
    assert getattr(mdl.tensor([1.0, np.nan, 2.0]), name)().item() == 1      # NaN wins, as PyTorch
    assert getattr(np, name)(t).item() == ref(x)
    with pytest.raises(ValueError, match=r"\(0, 2\)"):
        getattr(mdl.tensor(np.zeros((0, 2))), name)()


@pytest.mark.parametrize("shape", SHAPES)
def test_unary_math_gradients(shape):
    x = data(shape, 4)
    away = np.where(np.abs(x) < 0.1, 0.5, x)                   # away from the kinks at 0
    check_gradients(lambda t: t.abs(), away)
    check_gradients(lambda t: abs(t), away)
    check_gradients(lambda t: t.sqrt(), np.abs(away))
    check_gradients(lambda t: t.clamp(-1.0, 1.0), np.where(np.abs(np.abs(x) - 1) < 0.1, 0.5, x))
    check_gradients(lambda t: t.clamp(min=0.5), np.where(np.abs(x - 0.5) < 0.1, 0.0, x))
    check_gradients(lambda t: t.clip(max=-0.5), np.where(np.abs(x + 0.5) < 0.1, 0.0, x))
    np.testing.assert_array_equal(mdl.tensor(x).abs().data, np.abs(x))
    np.testing.assert_array_equal(mdl.tensor(x).clamp(-1, 1).data, np.clip(x, -1, 1))


def test_clamp_follows_pytorch():
    x = mdl.tensor([-2.0, 0.5, np.nan, 1.0, 3.0], requires_grad=True)
    out = x.clamp(0.0, 1.0)
    np.testing.assert_array_equal(out.data, [0.0, 0.5, np.nan, 1.0, 1.0])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 0.0, 0.0, 0.0])       # PyTorch 2.14: 0 at the bounds
    for one_sided in (lambda t: t.clamp(min=0.0), lambda t: -((-t).clamp(max=0.0))):
        x = mdl.tensor([0.0, 1.0, -1.0], requires_grad=True)
        one_sided(x).sum().backward()
        relu = mdl.tensor([0.0, 1.0, -1.0], requires_grad=True)
        relu.relu().sum().backward()
        np.testing.assert_array_equal(x.grad, relu.grad)                   # [0, 1, 0], as relu at 0
    np.testing.assert_array_equal(mdl.tensor([0.0, 5.0]).clamp(3.0, 1.0).data, [1.0, 1.0])   # max wins
    assert mdl.tensor(np.array([1, 5])).clamp(max=2.5).dtype == np.float32
    with pytest.raises(ValueError, match="min= or max="):
        x.clamp()


def test_a_number_to_negative_integer_powers_as_pytorch():
    """NumPy refuses integers to negative integer powers; PyTorch's 2 ** t truncates as integer division."""
    t = mdl.tensor(np.array([-3, -2, -1, 0, 2]))
    torch_2_14 = {0: [0, 0, 0, 1, 0], 2: [0, 0, 0, 1, 4], -2: [0, 0, 0, 1, 4], 1: [1, 1, 1, 1, 1],
                  -1: [-1, 1, -1, 1, 1], 3: [0, 0, 0, 1, 9]}
    for base, expected in torch_2_14.items():
        out = base ** t
        assert out.dtype == np.int64 and out.data.tolist() == expected, base
    np.testing.assert_allclose((2.5 ** t).data, 2.5 ** np.array([-3.0, -2, -1, 0, 2]), rtol=1e-6)
    assert (np.array([2, 3]) ** mdl.tensor(np.array([-1, 1]))).data.tolist() == [0, 3]


def test_sqrt_and_abs_at_zero_as_pytorch():
    x = mdl.tensor([0.0, 4.0], requires_grad=True)
    with np.errstate(all="raise"):
        (x.sqrt().sum() + x.abs().sum()).backward()
    np.testing.assert_array_equal(x.grad, [np.inf, 1.25])


SHAPE_OPS = {
    "flatten": lambda t: t.flatten(),
    "flatten_1": lambda t: t.flatten(1) if t.ndim >= 2 else t.flatten(),
    "unsqueeze_0": lambda t: t.unsqueeze(0),
    "unsqueeze_-1": lambda t: t.unsqueeze(dim=-1),
    "squeeze": lambda t: t.squeeze(),
    "squeeze_0": lambda t: t.squeeze(0),
    "view": lambda t: t.view(-1),
    "reshape": lambda t: t.reshape(t.size),
    "transpose": lambda t: t.transpose(0, -1) if t.ndim else t.transpose(),
    "permute": lambda t: t.permute(*reversed(range(t.ndim))),
}


@pytest.mark.parametrize("name", sorted(SHAPE_OPS))
@pytest.mark.parametrize("shape", SHAPES)
def test_shape_ops_gradients(name, shape):
    check_gradients(SHAPE_OPS[name], data(shape, 5))


@pytest.mark.parametrize("shape", SHAPES)
def test_astype_gradient_is_cast_back(shape):
    """Central differences through a float32 rounding mean nothing, so exact values: d(1.5·float(t))/dt = 1.5."""
    t = mdl.tensor(data(shape, 5), requires_grad=True)
    (t.float() * 1.5).sum().backward()
    assert t.grad.dtype == np.float64 and t.grad.shape == shape and (t.grad == 1.5).all()


def test_shape_ops_values():
    x = data((2, 1, 3), 6)
    t = mdl.tensor(x)
    assert t.flatten().shape == (6,) and t.flatten(1).shape == (2, 3) and t.flatten(0, 1).shape == (2, 3)
    assert mdl.tensor(1.0).flatten().shape == (1,)
    assert t.unsqueeze(0).shape == (1, 2, 1, 3) and t.unsqueeze(3).shape == (2, 1, 3, 1)
    assert t.unsqueeze(-1).shape == (2, 1, 3, 1) and t.unsqueeze(-4).shape == (1, 2, 1, 3)
    assert t.squeeze().shape == (2, 3) and t.squeeze(1).shape == (2, 3)
    assert t.squeeze(0).shape == (2, 1, 3)                      # not size 1: left alone, as PyTorch
    assert t.squeeze((0, 1)).shape == (2, 3)
    np.testing.assert_array_equal(t.transpose(0, 2).data, np.swapaxes(x, 0, 2))    # PyTorch's two-axis swap
    np.testing.assert_array_equal(t.permute(2, 0, 1).data, np.transpose(x, (2, 0, 1)))
    np.testing.assert_array_equal(t.transpose((2, 0, 1)).data, np.transpose(x, (2, 0, 1)))
    m = mdl.tensor(data((2, 3), 7))
    np.testing.assert_array_equal(m.transpose(0, 1).data, m.data.T)


def test_view_shares_data_and_refuses_a_copy():
    t = mdl.tensor(np.arange(6.0))
    v = t.view(2, 3)
    v += 1                                                      # visible through t, as PyTorch
    np.testing.assert_array_equal(t.data, np.arange(6.0) + 1)
    with pytest.raises(RuntimeError, match=r"shape \(3, 2\).*reshape"):
        v.T.view(6)
    assert v.T.reshape(6).shape == (6,)


def test_astype():
    t = mdl.tensor([1.5, -2.5], requires_grad=True)
    assert t.float() is t                                       # already float32, as PyTorch's .to
    d = t.double()
    assert d.dtype == np.float64 and d.requires_grad
    (d * d).sum().backward()
    assert t.grad.dtype == np.float32 and t.grad.tolist() == [3.0, -5.0]
    i = t.astype(np.int64)
    assert i.dtype == np.int64 and not i.requires_grad and i.data.tolist() == [1, -2]
    assert t.long().dtype == np.int64
    with pytest.raises(TypeError, match="float16"):
        t.astype(np.float16)


def test_pytorchs_training_loop_conveniences():
    """pred.eq(y).sum(), x.to(device), .cpu() and .int() raised AttributeError (PyTorch loops use them)."""
    t = mdl.tensor([1.5, -2.5], requires_grad=True)
    y = mdl.tensor([1.5, 0.0])
    assert t.eq(y).tolist() == [True, False] and t.eq(y).sum().item() == 1
    assert [t.ne(y).tolist(), t.lt(y).tolist(), t.le(y).tolist(), t.gt(y).tolist(), t.ge(y).tolist()] == [
        [False, True], [False, True], [True, True], [False, False], [True, False]]
    assert t.int().dtype == np.int32 and t.int().tolist() == [1, -2] and t.bool().dtype == np.bool_
    assert t.cpu() is t and t.to("cpu") is t and t.to("cpu:0") is t
    assert t.to(np.float64).dtype == np.float64 and t.to("cpu", np.float64).dtype == np.float64
    assert t.to(dtype=np.float64).dtype == np.float64 and t.to(mdl.tensor([1], dtype=np.int64)).dtype == np.int64
    copied = t.to("cpu", copy=True)
    assert copied is not t and copied.requires_grad
    (copied * 2).sum().backward()
    assert t.grad.tolist() == [2.0, 2.0]
    with pytest.raises(ValueError, match="CPU only: cannot move a tensor to 'cuda:0'"):
        t.to("cuda:0")


@pytest.mark.parametrize("method", ["sum", "mean", "max", "min", "var", "std"])
def test_dim_is_an_alias_of_axis(method):
    x = data((2, 3, 4), 8)
    t = mdl.tensor(x)
    a = getattr(t, method)(axis=1, keepdims=True)
    b = getattr(t, method)(dim=1, keepdim=True)
    c = getattr(t, method)(1, True)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.data, c.data)
    with pytest.raises(TypeError, match="alias"):
        getattr(t, method)(axis=1, dim=1)


@pytest.mark.parametrize("method", ["sum", "mean", "max", "min", "var", "std"])
@pytest.mark.parametrize("empty", [(), []])
def test_an_empty_list_of_axes_reduces_over_all_as_pytorch(method, empty):
    """PyTorch 2.13: ``x.sum(dim=())`` sums every element (15 for arange(6).reshape(2, 3)), not none; minidl
    returned x unchanged (NumPy's axis=()), so a loss built from it had the wrong value and gradient."""
    x = mdl.tensor(data((2, 3), 10), requires_grad=True)
    reduced = getattr(x, method)(dim=empty)
    whole = getattr(mdl.tensor(x.data), method)()
    assert reduced.shape == () and reduced.item() == pytest.approx(whole.item(), rel=1e-12)
    assert getattr(x, method)(axis=empty, keepdims=True).shape == (1, 1)
    reduced.backward()
    assert x.grad.shape == (2, 3) and np.count_nonzero(x.grad) >= 1
    if method == "sum":
        np.testing.assert_array_equal(x.grad, np.ones((2, 3)))
    if method == "mean":
        np.testing.assert_allclose(x.grad, np.full((2, 3), 1 / 6))


def test_numpy_functions_call_the_methods():
    x = data((3, 4), 9)
    t = mdl.tensor(x)
    for fn in (np.sum, np.mean, np.max, np.min, np.argmax, np.argmin):
        assert fn(t).item() == pytest.approx(fn(x), rel=1e-12)
    assert np.sum(t, axis=0).shape == (4,)


# ---- joins and selection --------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_cat_gradients(axis):
    shapes = [(2, 3), (2, 1), (2, 0), (2, 2)] if axis else [(2, 3), (1, 3), (0, 3)]
    arrays = [data(s, i) for i, s in enumerate(shapes)]
    check_gradients(lambda *ts: mdl.cat(ts, axis=axis) * 1.5, *arrays)
    np.testing.assert_array_equal(mdl.cat([mdl.tensor(a) for a in arrays], dim=axis).data,
                                  np.concatenate(arrays, axis=axis))


@pytest.mark.parametrize("shape", [(), (1,), (2, 3), (0, 2)])
@pytest.mark.parametrize("axis", [0, -1])
def test_stack_gradients(shape, axis):
    arrays = [data(shape, i) for i in range(3)]
    check_gradients(lambda *ts: mdl.stack(list(ts), axis) * 1.5, *arrays)
    np.testing.assert_array_equal(mdl.stack([mdl.tensor(a) for a in arrays], dim=axis).data,
                                  np.stack(arrays, axis=axis))


def test_a_tensor_used_twice_in_cat_gets_both_slices():
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    (mdl.cat([x, x * 3, x]) * mdl.tensor([1.0, 2, 3, 4, 5, 6])).sum().backward()
    np.testing.assert_array_equal(x.grad, [1 + 3 * 3 + 5, 2 + 3 * 4 + 6])


@pytest.mark.parametrize("sc,sa,sb", [((2, 3), (2, 3), (2, 3)), ((2, 3), (3,), ()), ((3,), (2, 1), (1, 3)),
                                      ((), (2,), (2,)), ((1, 3), (2, 1), (3,)), ((0, 2), (2,), (1, 2))])
def test_where_gradients_go_to_a_and_b(sc, sa, sb):
    cond = np.random.default_rng(10).random(sc) < 0.5
    check_gradients(lambda a, b: mdl.where(cond, a, b), data(sa, 11), data(sb, 12))
    a, b = data(sa, 11), data(sb, 12)
    np.testing.assert_array_equal(mdl.where(mdl.tensor(cond), mdl.tensor(a), mdl.tensor(b)).data,
                                  np.where(cond, a, b))


def test_where_with_numbers_and_promotion():
    x = mdl.tensor([-1.0, 2.0], requires_grad=True)
    out = mdl.where(x > 0, x, 0.0)
    assert out.dtype == np.float32
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0])
    assert mdl.where(np.array([True]), mdl.tensor(np.array([1])), mdl.tensor(np.array([2.0], np.float64))
                     ).dtype == np.float64
    with pytest.raises(TypeError, match="bool"):
        mdl.where(np.array([1, 0]), x, x)


# ---- factories ----------------------------------------------------------------------------------
def test_zeros_ones():
    for make, value in ((mdl.zeros, 0.0), (mdl.ones, 1.0)):
        t = make(2, 3)
        assert t.shape == (2, 3) and t.dtype == np.float32 and not t.requires_grad and (t.data == value).all()
        assert make((2, 3)).shape == (2, 3) and make(()).shape == () and make(0, 4).shape == (0, 4)
        u = make(3, dtype=np.float64, requires_grad=True)
        assert u.dtype == np.float64 and u.requires_grad and u.is_leaf
        assert make(2, dtype=np.int64).dtype == np.int64
        with pytest.raises(ValueError, match=r"\(2, -1\)"):
            make(2, -1)
        with pytest.raises(TypeError, match="ints"):
            make(2.5)


def test_rand_randn_follow_the_seed_and_their_laws():
    """Uniform [0, 1): mean 1/2, variance 1/12; normal: mean 0, variance 1. With 10⁵ draws the standard
    error of the mean is ≤ 0.0032 and of the variance ≤ 0.0045 (normal: √(2/N)); 0.02 is ≥ 4.4 of them."""
    mdl.manual_seed(3)
    a = mdl.rand(100_000)
    mdl.manual_seed(3)
    assert np.array_equal(a.data, mdl.rand(100_000).data)
    n = mdl.randn(1000, 100, dtype=np.float64)
    assert a.dtype == np.float32 and n.dtype == np.float64 and n.shape == (1000, 100)
    assert 0.0 <= a.data.min() and a.data.max() < 1.0
    assert abs(a.data.mean() - 0.5) < 0.02 and abs(a.data.var() - 1 / 12) < 0.02
    assert abs(n.data.mean()) < 0.02 and abs(n.data.var() - 1.0) < 0.02
    assert mdl.randn(2, requires_grad=True).requires_grad
    with pytest.raises(TypeError, match="int64"):
        mdl.rand(2, dtype=np.int64)


def test_arange():
    assert mdl.arange(5).dtype == np.int64 and mdl.arange(5).data.tolist() == [0, 1, 2, 3, 4]
    assert mdl.arange(1, 7, 2).data.tolist() == [1, 3, 5]
    f = mdl.arange(0, 1, 0.25)
    assert f.dtype == np.float32 and f.data.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert mdl.arange(3, 0, -1).data.tolist() == [3, 2, 1] and mdl.arange(0).shape == (0,)
    assert mdl.arange(3, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="step"):
        mdl.arange(0, 3, 0)
    with pytest.raises(ValueError, match="end 0"):
        mdl.arange(3, 0)


# 1000 float32 per row: rows 4000 bytes apart, so with the first row on a 64-byte boundary every row starts on
# a 32-byte one (a whole AVX vector), and NumPy's own allocations start 16 bytes past one.
ALIGNMENT_SHAPES = [(), (3,), (5, 7), (1000, 1000), (300, 1000)]


@pytest.mark.parametrize("shape", ALIGNMENT_SHAPES, ids=str)
@pytest.mark.parametrize("make", [
    lambda shape: mdl.zeros(shape), lambda shape: mdl.ones(shape, dtype=np.float64), lambda shape: mdl.rand(shape),
    lambda shape: mdl.randn(shape, dtype=np.float64), lambda shape: mdl.tensor(np.ones(shape)),
    lambda shape: mdl.tensor(np.ones(shape[::-1], np.float32).T, dtype=np.float64),
    lambda shape: mdl.tensor(mdl.Tensor(np.ones(shape, np.float32))),
], ids=["zeros", "ones", "rand", "randn", "tensor", "tensor_dtype", "tensor_of_tensor"])
def test_tensors_made_by_minidl_are_64_byte_aligned(make, shape):
    """As PyTorch's CPU allocator: the GEMM reads a weight in place at small batch, and a weight 16 bytes
    past a line made X @ W 5-13% and SGD's fused update 6-8% slower (10-64 rows, 1000x1000, 2 threads)."""
    t = make(shape)
    assert t.shape == shape and t.data.ctypes.data % 64 == 0 and t.data.flags.owndata


def test_tensor_copies_into_aligned_memory_and_Tensor_keeps_the_arrays():
    source = np.arange(12, dtype=np.float32).reshape(3, 4)
    copy = mdl.tensor(source)
    source[0, 0] = 100.0
    assert copy.data[0, 0] == 0.0 and not np.shares_memory(copy.data, source)
    assert np.array_equal(copy.data[1:], source[1:]) and copy.data.ctypes.data % 64 == 0
    assert mdl.Tensor(source).data is source and mdl.arange(1000).data.ctypes.data % 64 == 0


# ---- bad input names what is wrong -----------------------------------------------------------------
@pytest.mark.parametrize("call,error,match", [
    (lambda: mdl.tensor(np.ones((2, 3))) + mdl.tensor(np.ones(4)), ValueError, r"\(2, 3\).*\(4,\)"),
    (lambda: mdl.tensor(np.ones((2, 3))) * np.ones((3, 2)), ValueError, r"\(2, 3\).*\(3, 2\)"),
    (lambda: mdl.tensor(np.ones((2, 3))) < mdl.tensor(np.ones(4)), ValueError, r"\(2, 3\).*\(4,\)"),
    (lambda: mdl.tensor(np.ones((2, 3))) @ mdl.tensor(np.ones((2, 3))), ValueError, r"\(2, 3\).*\(2, 3\)"),
    (lambda: mdl.cat([mdl.tensor(np.ones((2, 3))), mdl.tensor(np.ones((3, 2)))]), ValueError, r"\(2, 3\).*\(3, 2\)"),
    (lambda: mdl.cat([mdl.tensor(1.0), mdl.tensor(2.0)]), ValueError, "0-d"),
    (lambda: mdl.cat(mdl.tensor([1.0])), TypeError, "list or tuple"),
    (lambda: mdl.cat([]), ValueError, "empty"),
    (lambda: mdl.stack([mdl.tensor(np.ones(2)), mdl.tensor(np.ones(3))]), ValueError, r"\(2,\).*\(3,\)"),
    (lambda: mdl.where(np.ones((2, 3), bool), mdl.tensor(np.ones(4)), 0.0), ValueError, r"\(2, 3\).*\(4,\)"),
    (lambda: mdl.tensor(np.ones((2, 3))).reshape(4, 2), ValueError, r"\(2, 3\).*\(4, 2\)"),
    (lambda: mdl.tensor(np.ones((2, 3))).transpose(0, 0, 1), ValueError, r"\(2, 3\)"),
    (lambda: mdl.tensor(np.ones((2, 3))).transpose((0, 0)), ValueError, r"permutation.*\(2, 3\)"),
    (lambda: mdl.tensor(np.ones((2, 3))).unsqueeze(4), IndexError, r"\(2, 3\)"),
    (lambda: mdl.tensor(np.ones((2, 3))).flatten(1, 0), ValueError, r"\(2, 3\)"),
    (lambda: mdl.tensor(np.ones((2, 3))).sum(axis=(0, 0)), ValueError, "more than once"),
    (lambda: mdl.tensor(np.ones((2, 3))).sum(axis=1.0), TypeError, "int"),
    (lambda: mdl.tensor(np.ones(2)).argmax(axis=(0,)), TypeError, "one axis"),
    (lambda: mdl.tensor(np.ones(2)) + "a", TypeError, "str"),
    (lambda: mdl.tensor(np.ones(2)) ** mdl.tensor(2.0), TypeError, "scalar exponent"),
    (lambda: mdl.tensor(np.ones(2)).clamp(min=mdl.tensor(0.0)), TypeError, "numbers"),
    (lambda: mdl.tensor(np.ones(2)).reshape(2.0), TypeError, "ints"),
    (lambda: mdl.tensor(np.ones(2)) < None, TypeError, "not supported"),
])
def test_bad_input_names_what_is_wrong(call, error, match):
    with pytest.raises(error, match=match):
        call()
