"""Every op's gradient against central differences (float64), over hypothesis-drawn shapes and
broadcast pairs (0-d tensors and size-1 axes included), plus forward values against NumPy."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import minidl as mdl
from minidl.nn import functional as F
from fw_gradcheck import check_gradients

SETTINGS = settings(max_examples=25, deadline=None)
broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)

# hand-picked broadcast pairs, each a classic source of wrong gradient shapes
PAIRS = [((), ()), ((), (3,)), ((3,), ()), ((1,), (3,)), ((2, 3), (3,)), ((3,), (2, 3)),
         ((2, 1), (1, 3)), ((2, 3), (1, 1)), ((1, 1), (2, 3)), ((4, 1, 3), (2, 1)),
         ((2, 3), (2, 3)), ((1, 2, 1), (3, 1, 4)), ((2, 3, 4), ()), ((1,), ()), ((5, 1), (5,))]


def data(shape, seed, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def away_from_zero(shape, seed):
    x = data(shape, seed, 0.5, 2.0)
    return x * np.where(np.random.default_rng(seed + 1).random(shape) < 0.5, -1, 1)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("sa,sb", PAIRS)
def test_binary_op_gradients_on_broadcast_pairs(name, sa, sb):
    a = data(sa, 1)
    b = away_from_zero(sb, 2) if name == "div" else data(sb, 2)
    check_gradients(BINARY[name], a, b)
    expected = {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b}[name]
    np.testing.assert_allclose((BINARY[name](mdl.tensor(a), mdl.tensor(b))).data, expected)


@SETTINGS
@given(broadcast_pairs, st.sampled_from(sorted(BINARY)), st.integers(0, 2**16))
def test_binary_op_gradients_hypothesis(shapes_pair, name, seed):
    sa, sb = shapes_pair.input_shapes
    b = away_from_zero(sb, seed + 7) if name == "div" else data(sb, seed + 7)
    check_gradients(BINARY[name], data(sa, seed), b)


@pytest.mark.parametrize("fn", [lambda t: 2 - t, lambda t: 10.0 / t, lambda t: t - 3, lambda t: 3 + t,
                                lambda t: t * 0.5, lambda t: 0.5 * t, lambda t: t / 4, lambda t: -t,
                                lambda t: 2 ** t, lambda t: 0.5 ** t],
                         ids=["rsub", "rdiv", "sub", "radd", "mul", "rmul", "div", "neg", "rpow", "rpow_below_1"])
def test_python_scalars_on_either_side(fn):
    check_gradients(fn, away_from_zero((2, 3), 3))


@pytest.mark.parametrize("fn", [lambda t, c: c - t, lambda t, c: c / t, lambda t, c: c * t,
                                lambda t, c: c + t, lambda t, c: c @ t.reshape(3, 2), lambda t, c: np.abs(c) ** t],
                         ids=["rsub", "rdiv", "rmul", "radd", "rmatmul", "rpow"])
def test_ndarray_on_the_left_gives_tensor_and_gradient(fn):
    c = data((2, 3), 4)
    out = fn(mdl.tensor(away_from_zero((2, 3), 5)), c)
    assert isinstance(out, mdl.Tensor)
    check_gradients(lambda t: fn(t, c), away_from_zero((2, 3), 5))


@pytest.mark.parametrize("p", [2, 3, 0.5, -1, -2.5, 1, 0])
def test_pow_scalar_exponent(p):
    x = data((3, 2), 6, 0.5, 2.0)
    check_gradients(lambda t: t ** p, x)
    np.testing.assert_allclose((mdl.tensor(x) ** p).data, x ** p, rtol=1e-6)


def test_a_number_to_a_tensor_power_follows_pytorch_at_base_zero_and_for_integers():
    t = mdl.tensor([0.5, 0.0, 2.0], requires_grad=True)
    (0.0 ** t).sum().backward()                 # 0 where the exponent is >= 0 (PyTorch's rule), not nan
    np.testing.assert_array_equal(t.grad, [0.0, 0.0, 0.0])
    ints = 2 ** mdl.tensor(np.array([1, 2, 3]))
    assert ints.dtype == np.int64 and ints.data.tolist() == [2, 4, 8]


def test_pow_with_tensor_exponent_is_refused():
    with pytest.raises(TypeError):
        mdl.tensor([1.0]) ** mdl.tensor([2.0])


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((1, 1), (1, 1)), ((5, 1), (1, 2)), ((4,), (4, 3)),
                                   ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 2)), ((2, 1, 3, 4), (2, 4, 2))])
def test_matmul_gradients(sa, sb):
    check_gradients(lambda a, b: a @ b, data(sa, 8), data(sb, 9))
    np.testing.assert_allclose((mdl.tensor(data(sa, 8)) @ data(sb, 9)).data,
                               data(sa, 8).astype(np.float32) @ data(sb, 9).astype(np.float32), rtol=1e-5)


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**16))
def test_matmul_2d_through_core_hypothesis(m, k, n, seed):
    check_gradients(lambda a, b: a @ b, data((m, k), seed), data((k, n), seed + 1))


def test_matmul_of_transposed_views():
    a, b = data((4, 3), 10), data((5, 4), 11)
    check_gradients(lambda x, y: x.T @ y.T, a, b)


def test_matmul_shape_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        mdl.tensor(np.ones((2, 3))) @ mdl.tensor(np.ones((4, 5)))


@SETTINGS
@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5), st.booleans(), st.integers(0, 2**16))
def test_fused_linear_gradients(n, fin, fout, with_bias, seed):
    args = [data((n, fin), seed), data((fin, fout), seed + 1)] + ([data((fout,), seed + 2)] if with_bias else [])
    check_gradients(lambda x, w, *b: F.linear(x, w, *b), *args)
    x, w = args[0], args[1]
    expected = x @ w + (args[2] if with_bias else 0)
    out = F.linear(mdl.tensor(x, dtype=np.float64), mdl.tensor(w, dtype=np.float64),
                   mdl.tensor(args[2], dtype=np.float64) if with_bias else None)
    np.testing.assert_allclose(out.data, expected)


REDUCTIONS = {"sum": np.sum, "mean": np.mean, "max": np.max}


@SETTINGS
@given(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4), st.sampled_from(sorted(REDUCTIONS)),
       st.booleans(), st.data())
def test_reduction_gradients(shape, name, keepdims, draw):
    axis = draw.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1) if shape else st.none(),
                               st.lists(st.integers(0, max(len(shape) - 1, 0)), unique=True, max_size=len(shape))
                               .map(tuple)))
    if name == "max" and 0 in shape:
        return
    x = data(shape, draw.draw(st.integers(0, 2**16)))
    fn = lambda t: getattr(t, name)(axis=axis, keepdims=keepdims)
    out = fn(mdl.tensor(x, dtype=np.float64))
    numpy_axis = None if axis == () else axis                # PyTorch: no axes listed means all of them
    with warnings.catch_warnings():                          # NumPy's own mean of nothing: NaN, with a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = REDUCTIONS[name](x, axis=numpy_axis, keepdims=keepdims)
    np.testing.assert_allclose(out.data, expected)
    assert isinstance(out.data, np.ndarray)
    if x.size:
        check_gradients(fn, x)
    else:                                        # an empty axis: backward gives an empty gradient of x's shape
        t = mdl.tensor(x, dtype=np.float64, requires_grad=True)
        fn(t).sum().backward()
        assert t.grad.shape == x.shape


def test_max_splits_gradient_among_ties():
    t = mdl.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]], requires_grad=True)
    t.max(axis=1).sum().backward()
    np.testing.assert_array_equal(t.grad, [[0, 0.5, 0.5], [1, 0, 0]])


@SETTINGS
@given(shapes, st.integers(0, 2**16))
def test_reshape_and_transpose_gradients(shape, seed):
    x = data(shape, seed)
    check_gradients(lambda t: t.reshape(-1) * np.arange(x.size), x)
    check_gradients(lambda t: t.transpose() * np.arange(x.size).reshape(x.T.shape), x)
    if len(shape) == 3:
        check_gradients(lambda t: t.transpose(1, -1, 0) * np.arange(x.size).reshape(np.transpose(x, (1, 2, 0)).shape), x)


def test_reshape_forms_and_errors():
    t = mdl.tensor(np.arange(6.0))
    assert t.reshape(2, 3).shape == (2, 3) and t.reshape((3, 2)).shape == (3, 2) and t.reshape(-1, 1).shape == (6, 1)
    assert t.reshape(2, 3).T.shape == (3, 2)
    with pytest.raises(ValueError, match=r"\(6,\).*\(4, 2\)"):
        t.reshape(4, 2)


@pytest.mark.parametrize("index", [1, (slice(None), 0), (Ellipsis, slice(1, 3)), ([0, 0, 2],),
                                   (np.array([1, 0, 1]), np.array([2, 2, 0]))], ids=str)
def test_getitem_gradients_incl_repeated_indices(index):
    check_gradients(lambda t: t[index], data((3, 4), 12))


UNARY = {
    "exp": (lambda t: t.exp(), np.exp, lambda s, seed: data(s, seed)),
    "log": (lambda t: t.log(), np.log, lambda s, seed: data(s, seed, 0.2, 3.0)),
    "sigmoid": (lambda t: t.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), lambda s, seed: data(s, seed, -6, 6)),
    "tanh": (lambda t: t.tanh(), np.tanh, lambda s, seed: data(s, seed)),
    "relu": (lambda t: t.relu(), lambda x: np.maximum(x, 0), away_from_zero),
    "softsign": (lambda t: t.softsign(), lambda x: x / (1 + np.abs(x)), away_from_zero),
}


@SETTINGS
@given(shapes, st.sampled_from(sorted(UNARY)), st.integers(0, 2**16))
def test_unary_gradients_and_values(shape, name, seed):
    fn, ref, gen = UNARY[name]
    x = gen(shape, seed)
    np.testing.assert_allclose(fn(mdl.tensor(x, dtype=np.float64)).data, ref(x), rtol=1e-12, atol=1e-15)
    check_gradients(fn, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_saturated_inputs_have_finite_gradients(dtype):
    t = mdl.tensor(np.array([-1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0]), dtype=dtype, requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = t.sigmoid()
        y.sum().backward()
    assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(t.grad))
    assert y.data[0] == 0.0 and y.data[-1] == 1.0 and y.data[3] == 0.5 and t.grad[3] == 0.25
    assert np.all(t.grad >= 0) and np.all(t.grad <= 0.25)
    check_gradients(lambda x: x.sigmoid(), np.array([-100.0, -20.0, 20.0, 100.0]))


def test_relu_gradient_at_zero_is_zero():
    t = mdl.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    t.relu().sum().backward()
    np.testing.assert_array_equal(t.grad, [0, 0, 1])


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax], ids=["softmax", "log_softmax"])
def test_softmax_of_a_transposed_tensor_can_be_viewed_flat(fn):
    """PyTorch's softmax result is contiguous; NumPy's kept the transposed layout and view(-1) raised."""
    t = mdl.tensor(np.arange(6.0).reshape(2, 3)).T
    flat = fn(t, -1).view(-1)
    np.testing.assert_allclose(flat.data, fn(mdl.tensor(np.arange(6.0).reshape(2, 3).T.copy()), -1).data.ravel())


def test_relu_of_integers_keeps_their_dtype_and_values():
    """As PyTorch: relu maps integers to integers (through float32, 2**40 + 1 came back as 2**40)."""
    for dtype in (np.int64, np.int32):
        out = mdl.tensor(np.array([-2, 3, 2**30 + 1], dtype=dtype)).relu()
        assert out.dtype == dtype and out.data.tolist() == [0, 3, 2**30 + 1]
    assert mdl.tensor(np.array([2**40 + 1])).relu().data.tolist() == [2**40 + 1]
    assert mdl.tensor(np.array([-2, 3])).sigmoid().dtype == np.float32          # others: float32, as torch


@pytest.mark.parametrize("cut", [lambda t: t.relu(), lambda t: t.clamp(min=0.0), lambda t: t.clamp(0.0, 10.0),
                                 lambda t: -((-t).clamp(max=0.0))], ids=["relu", "clamp_min", "clamp_both", "clamp_max"])
def test_a_cut_off_input_gets_zero_gradient_even_from_an_infinite_one(cut):
    """sqrt(relu(x)) sends inf back where relu gave 0: g·0 was NaN there (and then everywhere upstream);
    PyTorch selects, giving 0."""
    t = mdl.tensor([-1.0, 4.0, -2.0], dtype=np.float64, requires_grad=True)
    with np.errstate(divide="ignore"):
        (cut(t) ** 0.5).sum().backward()
    assert np.all(np.isfinite(t.grad)), t.grad
    assert (t.grad == 0).sum() >= 1


def test_nan_coming_back_through_a_zero_base_power_stays_nan():
    """0 ** t has no gradient for t >= 0, but a NaN from further on still shows (PyTorch multiplies by the
    masked factor); it was hidden as 0."""
    t = mdl.tensor([0.5], dtype=np.float64, requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ((0.0 ** t) ** 0.5).sum().backward()
    assert np.isnan(t.grad[0])


def test_a_bool_scalar_in_an_index_with_arrays_is_read_as_pytorch_reads_it():
    x = mdl.tensor(X4)
    assert x[True, 0, :, np.array([0, 1])].shape == (2, 3, 5)          # PyTorch 2.13 (as NumPy here)


def test_comparisons_promote_as_arithmetic_does():
    """float32 against a 0-d float64 compared in float64 (NumPy's rule): 0.1f == 0.1 was False while
    x - 0.1 gave 0."""
    x = mdl.tensor(np.array([0.1, 0.2], np.float32))
    threshold = mdl.tensor(np.array(0.1))
    assert (x == threshold).data.tolist() == [True, False] and (x - threshold).data[0] == 0
    assert (x <= threshold).data.tolist() == [True, False] and (x != np.array(0.1)).data.tolist() == [False, True]
    ints = mdl.tensor(np.array([16777217]))
    assert (ints == mdl.tensor(np.array([16777216.0], np.float32))).data.tolist() == [True]   # float32, as torch
    assert (mdl.tensor(np.array([1, 2])) < mdl.tensor(np.array([1.5, 2.0]))).data.tolist() == [True, False]


X4 = np.arange(120.0).reshape(2, 3, 4, 5)


@pytest.mark.parametrize("index, expected_shape", [
    ((0, slice(None), np.array([0, 2])), (3, 2, 5)),                  # NumPy: (2, 3, 5)
    ((1, None, np.array([0, 2])), (1, 2, 4, 5)),                      # NumPy: (2, 1, 4, 5)
    ((np.array([1, 1]), slice(None), 0), (2, 3, 5)),
    ((np.array(1), slice(None), np.array([0, 2])), (3, 2, 5)),        # a 0-d integer array is an int too
    ((0, slice(None), np.array([[1, 0], [3, 3]]), None), (3, 2, 2, 1, 5)),
    ((0, np.array([True, False, True]), 2), (2, 5)),
    ((0, Ellipsis, np.array([1, 4])), (3, 4, 2)),
    ((0, slice(None), [0, 2]), (3, 2, 5)),                            # a list is an array index too
], ids=str)
def test_integers_in_an_index_are_taken_first_as_pytorch_does(index, expected_shape):
    """PyTorch selects at each integer, then indexes the rest; NumPy counts an integer among the array
    indices, and a slice between them moves the arrays' axes first (shapes from PyTorch 2.13)."""
    ints = tuple(int(i) if isinstance(i, (int, np.ndarray)) and np.ndim(i) == 0 else
                 slice(None) for i in index if i is not None)
    rest = tuple(i for i in index if not (isinstance(i, (int, np.ndarray)) and np.ndim(i) == 0))
    want = X4[ints][rest]
    t = mdl.tensor(X4, requires_grad=True)
    out = t[index]
    assert out.shape == expected_shape == want.shape
    np.testing.assert_array_equal(out.data, want)
    check_gradients(lambda u: u[index], X4.copy())
    written = mdl.tensor(X4.copy())
    written[index] = -np.ones(expected_shape)
    expected = X4.copy()
    expected[ints][rest] = -1                       # basic then advanced: lands in `expected`
    np.testing.assert_array_equal(written.data, expected)


def test_composite_expression_gradient():
    """A small network-like expression exercising several ops and a reused node at once."""
    def f(x, w, b):
        h = (x @ w + b).tanh()
        return ((h * h).sum(axis=1, keepdims=True) / (1 + h.exp().mean()) - h.max()).softsign()
    check_gradients(f, data((3, 4), 13), data((4, 2), 14), data((2,), 15))


@SETTINGS
@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**16))
def test_non_contiguous_views_through_the_core(m, k, n, seed):
    """Strided and transposed views into matmul / sigmoid / linear give the same values and gradients."""
    rng = np.random.default_rng(seed)
    big_a = rng.normal(size=(2 * m, 3 * k))
    big_b = rng.normal(size=(n, k)).T                  # a transposed (F-ordered) view
    a_view = big_a[::2, ::3]
    assert not a_view.flags.c_contiguous or a_view.size <= 1
    for dtype in (np.float32, np.float64):
        strided, transposed = big_a.astype(dtype)[::2, ::3], big_b.T.astype(dtype).T   # views, not copies
        assert strided.base is not None and not strided.flags.c_contiguous or strided.size <= 1
        out = mdl.Tensor(strided) @ mdl.Tensor(transposed)
        assert out.data.dtype == dtype
        np.testing.assert_allclose(out.data, a_view @ big_b, rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-5)
    np.testing.assert_allclose(mdl.Tensor(a_view).sigmoid().data, 1 / (1 + np.exp(-a_view)), rtol=1e-12)
    check_gradients(lambda x, w: (x @ w).sigmoid(), a_view, big_b)
    check_gradients(lambda x, w: F.linear(x.T.T, w), a_view, big_b)


def test_an_empty_list_index_selects_nothing_as_pytorch():
    """t[[]] was refused ('tensors used as indices must be integer or bool, got float64': NumPy's empty array
    is float64); PyTorch selects nothing, shape (0, ...), and t[[]] = v writes nothing."""
    t = mdl.tensor(X4, requires_grad=True)
    assert t[[]].shape == (0, 3, 4, 5) and t[:, []].shape == (2, 0, 4, 5)
    t[[]].sum().backward()
    np.testing.assert_array_equal(t.grad, np.zeros_like(X4))
    u = mdl.tensor(X4)
    u[[]] = 7.0
    np.testing.assert_array_equal(u.data, X4)


def test_a_0d_tensor_transposes_its_dims_0_and_minus_1_with_themselves_as_pytorch():
    """PyTorch's t.transpose(0, -1) of a 0-d tensor is t; minidl raised 'axes (0, -1) do not fit'."""
    t = mdl.tensor(2.0, requires_grad=True)
    out = t.transpose(0, -1)
    assert out.shape == () and out.item() == 2.0
    (3 * out).backward()
    assert t.grad == 3.0
    with pytest.raises(IndexError, match="out of range"):
        t.transpose(0, 1)
