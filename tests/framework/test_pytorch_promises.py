"""The promises a PyTorch user relies on without thinking (issue 11), one regression test each: every one
of these failed, silently or with an unhelpful error, before the fix. Expected values are worked out by hand
(or are micrograd's own) and agree with PyTorch 2.x on the same computations."""
import copy
import pickle

import numpy as np
import pytest

import minidl as mdl
from minidl import nn, optim
from minidl.nn import functional as F


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


# ---- 2. in-place operators ----------------------------------------------------------------------------
def test_the_manual_sgd_idiom_updates_the_model_in_place():
    model = nn.Linear(3, 2)
    params = list(model.parameters())
    before = [(p, p.data, p.data.copy()) for p in params]
    F.mse_loss(model(mdl.tensor(np.ones((4, 3)))), mdl.tensor(np.zeros((4, 2)))).backward()
    with mdl.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    for (p, buffer, old), now in zip(before, model.parameters()):
        assert now is p and p.data is buffer and p.requires_grad and p.is_leaf
        np.testing.assert_allclose(p.data, old - 0.1 * p.grad, rtol=1e-6)


@pytest.mark.parametrize("symbol,expected", [("+=", [3.0, 4.0]), ("-=", [-1.0, 0.0]), ("*=", [2.0, 4.0]),
                                             ("/=", [0.5, 1.0])])
def test_in_place_keeps_object_and_buffer(symbol, expected):
    t = mdl.tensor([1.0, 2.0])
    obj, buffer = t, t.data
    namespace = {"t": t}
    exec(f"t {symbol} 2", namespace)
    assert namespace["t"] is obj and obj.data is buffer and obj.dtype == np.float32
    np.testing.assert_array_equal(obj.data, expected)


def test_in_place_on_a_leaf_that_requires_grad_is_refused_with_grad_mode_on():
    w = mdl.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        w -= 0.1
    np.testing.assert_array_equal(w.data, [1.0, 2.0])


def test_in_place_on_a_non_leaf_is_out_of_place():
    x = mdl.tensor([1.0, 2.0], requires_grad=True)
    c = x * 2
    node = c
    c += c + 1                                 # c = 2c + 1 = 4x + 1
    assert c is not node
    c.sum().backward()
    np.testing.assert_array_equal(c.data, [5.0, 9.0])
    np.testing.assert_array_equal(x.grad, [4.0, 4.0])


def test_in_place_on_a_non_leaf_keeps_its_dtype():
    """As PyTorch (and as a plain tensor here): float32 += a float64 tensor stays float32; the gradient
    reaches the float64 leaf in its own dtype."""
    x = mdl.tensor(np.ones(2, np.float32), requires_grad=True)
    y = mdl.tensor(np.full(2, 0.5), requires_grad=True)
    c = x * 2
    c += y
    assert c.dtype == np.float32
    c.sum().backward()
    assert x.grad.dtype == np.float32 and y.grad.dtype == np.float64
    np.testing.assert_array_equal(y.grad, [1.0, 1.0])


def test_a_tensor_changed_through_a_view_refuses_to_be_read():
    """``row = buf[0]; row += w`` changes buf in PyTorch and gives w buf's gradient; minidl records the change
    as a new tensor for row alone, so buf kept its old values and w.grad was None: reading buf now raises."""
    a = mdl.tensor(np.ones((2, 3)), requires_grad=True)
    w = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    buf = a * 1
    row = buf[0]
    row += w
    for read in (lambda: buf.sum(), lambda: buf.data, lambda: buf + 1, lambda: buf.numpy(), lambda: buf.detach()):
        with pytest.raises(RuntimeError, match=r"a view of this tensor \(shape \(2, 3\)\) was changed in place"):
            read()
    assert "was changed in place" in repr(buf)
    row.sum().backward()                             # the view's own result is right
    np.testing.assert_array_equal(w.grad, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(a.grad, [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])


def test_in_place_through_a_view_inside_a_module_is_allowed():
    """``x = x.view(n, -1); x += self.b`` in a block: the base is still held (Sequential's loop, the call) but
    never read again, as in PyTorch; an earlier version refused it by counting references."""
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.b = nn.Parameter(np.ones(8, np.float32))

        def forward(self, x):
            x = x.view(x.shape[0], -1)
            x += self.b
            return x
    model = nn.Sequential(nn.Linear(4, 8), Block())
    model(mdl.tensor(np.ones((6, 4), np.float32))).sum().backward()
    np.testing.assert_array_equal(model[1].b.grad, np.full(8, 6.0))


def test_backward_through_where_and_a_bias_after_their_inputs_were_replaced():
    """Their backward read the inputs' shapes through .data, which a tensor replaced by `op=` refuses: the
    backward failed where PyTorch's works (and where it worked before that refusal)."""
    x = mdl.tensor(np.ones((2, 3)), requires_grad=True)
    w = mdl.tensor(np.ones((3, 3)), requires_grad=True)
    h = x @ w
    z = mdl.where(h > 0, h, 0.0)
    h += 1
    bias = w.sum(0) * 2
    y = F.linear(x, w, bias)
    bias += 1
    (z.sum() + y.sum()).backward()
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 6.0))
    np.testing.assert_array_equal(w.grad, np.full((3, 3), 2.0 + 2.0 + 2 * 2))


def test_a_tensor_replaced_by_op_equals_refuses_to_be_read_under_its_other_names():
    """``t op= x`` in a graph gives a new tensor; a second name for t (a list, a caller's variable) kept the
    old values, silently (PyTorch changes t itself): such reads now raise; h.retain_grad() carries over."""
    a = mdl.tensor(np.ones((2, 3)), requires_grad=True)
    h = a * 2
    features = [h]
    h += 1
    with pytest.raises(RuntimeError, match=r"was changed in place by `\+=`, which minidl records as a new tensor"):
        features[0].sum()

    def scale_(t):
        t *= 2
    g = a * 3
    scale_(g)
    with pytest.raises(RuntimeError, match=r"changed in place by `\*=`"):
        g.sum()
    kept = a * 2
    kept.retain_grad()
    kept += 1
    kept.sum().backward()
    np.testing.assert_array_equal(kept.grad, np.ones((2, 3)))


def test_in_place_through_a_view_of_a_leaf_that_requires_grad_is_refused():
    w = mdl.tensor([[1.0, 2.0]], requires_grad=True)
    row = w[0]
    with pytest.raises(RuntimeError, match="view of a leaf tensor that requires grad"):
        row *= 2
    np.testing.assert_array_equal(w.data, [[1.0, 2.0]])


def test_in_place_through_a_view_of_an_unreachable_tensor_is_out_of_place():
    """Where only the view holds its base, no one can see the base keep its values: as PyTorch."""
    a = mdl.tensor(np.ones((2, 3)), requires_grad=True)
    w = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    row = (a * 2)[1]
    row += w * w
    h = (a * 3).reshape(3, 2).T
    h *= 2
    (row.sum() + h.sum()).backward()
    np.testing.assert_array_equal(row.data, [3.0, 6.0, 11.0])
    np.testing.assert_array_equal(w.grad, [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(a.grad, [[6.0, 6.0, 6.0], [8.0, 8.0, 8.0]])


def test_a_plain_view_taking_a_grad_operand_in_place_is_refused():
    """A view of a plain tensor would change the tensor's values without its gradient path (PyTorch records
    one: buf would require grad); the view of a temporary joins the graph as any plain tensor does."""
    buf = mdl.zeros(2, 3)
    w = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    row = buf[0]
    with pytest.raises(RuntimeError, match="view of an array that something else holds"):
        row += w
    np.testing.assert_array_equal(buf.data, np.zeros((2, 3)))
    alone = mdl.zeros(2, 3)[0]
    alone += w
    alone.sum().backward()
    np.testing.assert_array_equal(w.grad, [1.0, 1.0, 1.0])
    with mdl.no_grad():                        # no gradient involved: the view writes into buf, as PyTorch
        row += w
    np.testing.assert_array_equal(buf.data[0], [1.0, 2.0, 3.0])


def test_in_place_into_a_plain_tensor_with_a_grad_operand_joins_the_graph():
    acc = mdl.zeros(2)
    buffer = acc.data
    w = mdl.tensor([1.0, 3.0], requires_grad=True)
    acc += w * w                               # as PyTorch: acc itself now holds w² and is in the graph
    assert acc.data is buffer and acc.requires_grad and not acc.is_leaf
    acc *= w                                   # a non-leaf now: as if out of place, acc = w³
    acc.sum().backward()
    np.testing.assert_array_equal(acc.data, [1.0, 27.0])
    np.testing.assert_array_equal(w.grad, [3.0, 27.0])


def test_in_place_into_a_plain_tensor_refuses_a_grad_operand_that_broadcasts_it_larger():
    """As PyTorch ("output with shape [3] doesn't match the broadcast shape [1, 3]"), and as a plain operand
    is refused: before, t took the values in its own shape and backward() failed in the chain rule."""
    w = mdl.tensor(np.ones((1, 3), np.float32), requires_grad=True)
    for write in (lambda t: t.__iadd__(w), lambda t: t.add_(w), lambda t: t.__imul__(w)):
        t = mdl.zeros(3)
        with pytest.raises(ValueError, match=r"shape \(3,\) cannot hold the result of shape \(1, 3\)"):
            write(t)
        assert not t.requires_grad and t.is_leaf
        np.testing.assert_array_equal(t.data, np.zeros(3))
    t = mdl.zeros(1, 3)                         # the same shape: joins the graph
    t += w
    t.sum().backward()
    np.testing.assert_array_equal(w.grad, [[1.0, 1.0, 1.0]])


def test_in_place_into_a_tensor_that_the_right_hand_side_read_is_refused():
    """acc's old value is saved by acc * w (for w's gradient); overwriting it would corrupt that gradient
    (PyTorch raises at backward: its version counter)."""
    acc = mdl.ones(2)
    w = mdl.tensor([1.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="reads this tensor"):
        acc += acc * w
    np.testing.assert_array_equal(acc.data, [1.0, 1.0])
    acc = acc + acc * w                        # out of place: right
    acc.sum().backward()
    np.testing.assert_array_equal(w.grad, [1.0, 1.0])


def _changed_constant():
    w, x = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True), mdl.tensor([1.0, 1.0, 1.0])
    y = (w * x).sum()
    x += 1                                     # saved by w * x for w's gradient
    return y


def _changed_leaf():
    w = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (w * w).sum()
    with mdl.no_grad():
        w -= 1
    return y


def _changed_non_leaf():
    w = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = w * 2
    y = (h * h).sum()
    with mdl.no_grad():
        h += 1
    return y


def _changed_through_a_view():
    w, base = mdl.tensor([1.0, 2.0], requires_grad=True), mdl.tensor(np.ones((2, 2), np.float32))
    y = (w * base[0]).sum()
    row = base[0]                              # another view of the same buffer
    row *= 10
    return y


@pytest.mark.parametrize("make", [_changed_constant, _changed_leaf, _changed_non_leaf, _changed_through_a_view])
def test_values_changed_in_place_after_the_forward_pass_stop_backward(make):
    """PyTorch raises ("modified by an inplace operation"); minidl computed gradients from the new values."""
    y = make()
    with pytest.raises(RuntimeError, match=r"changed in place after the forward pass.*modified by `[-+*]=`"):
        y.backward()


def test_a_change_followed_by_thousands_of_other_writes_still_stops_backward():
    """The write log kept only the last 4096 writes, so a graph older than that backpropagated through a
    changed value unchecked (w.grad from x's new values)."""
    w, x = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True), mdl.tensor([1.0, 1.0, 1.0])
    y = (w * x).sum()
    x += 1
    other = mdl.zeros(4)
    for _ in range(5000):
        other += 1
    with pytest.raises(RuntimeError, match=r"modified by `\+=`"):
        y.backward()
    z = (w * x).sum()                          # recorded after all of them: nothing to refuse
    for _ in range(5000):
        other += 1
    z.backward()
    np.testing.assert_array_equal(w.grad, [2.0, 2.0, 2.0])


def test_the_write_log_answers_exactly_until_it_must_merge():
    """Small limits: 2 exact entries, 2 older ranges (latest write each), then one merged range."""
    from minidl.autograd import _InPlaceWrites
    log = _InPlaceWrites(maxlen=2, max_older=2)
    for number, low in enumerate([0, 100, 0, 100, 200, 300, 400], start=1):
        log.append(number, low, low + 10, f"w{number}")
    assert [what for *_, what in log.since(0)] == ["w7", "w6", "w5", "w4",
                                                   "one of the in-place writes before the last 4"]
    assert list(log.since(4)) == [(7, 400, 410, "w7"), (6, 300, 310, "w6"), (5, 200, 210, "w5")]
    assert list(log.since(2))[-1] == (3, 0, 10, "one of the in-place writes before the last 4")


def test_values_the_gradient_does_not_read_may_change_in_place():
    """As PyTorch: a + b saves neither operand, w * c (c constant) saves only c."""
    w, c = mdl.tensor([1.0, 2.0], requires_grad=True), mdl.tensor([3.0, 4.0])
    y = (w + c).sum()
    c += 1
    y.backward()
    np.testing.assert_array_equal(w.grad, [1.0, 1.0])
    w.grad = None
    y = (w * c).sum()
    with mdl.no_grad():
        w *= 2                                 # w's values are not needed for w's gradient
    y.backward()
    np.testing.assert_array_equal(w.grad, [4.0, 5.0])


def test_indexing_reads_no_value_of_its_input_in_backward():
    """As PyTorch (index backward keeps the shape only): x changed in place after x[idx] still has its
    gradient; the in-place check refused it, the backward having kept x's array for its shape."""
    for index in (np.array([0, 2]), slice(0, 3, 2), np.array([True, False, True])):
        x = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x[index].sum()
        with mdl.no_grad():
            x *= 2
        y.backward()
        np.testing.assert_array_equal(x.grad, [1.0, 0.0, 1.0])


@pytest.mark.parametrize("product", [lambda x, w: x @ w, lambda x, w: F.linear(x, w),
                                     lambda x, w: F.linear(x, w, mdl.zeros(4))], ids=["matmul", "linear", "bias"])
def test_a_product_whose_input_needs_no_gradient_does_not_read_its_weight_in_backward(product):
    """As PyTorch (mm saves W only for x's gradient): one layer's retained graph, an optimizer step, and a
    second backward gives W's gradient again; the in-place check refused it, as if W were saved."""
    x = mdl.tensor(np.ones((2, 3), np.float32))
    w = mdl.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    loss = product(x, w).sum()
    loss.backward(retain_graph=True)
    with mdl.no_grad():
        w -= 0.1 * mdl.tensor(w.grad)
    loss.backward()
    np.testing.assert_array_equal(w.grad, np.full((3, 4), 4.0))
    x = mdl.tensor(np.ones((2, 3), np.float32), requires_grad=True)   # x's gradient reads W: refused
    loss = product(x, w).sum()
    loss.backward(retain_graph=True)
    with mdl.no_grad():
        w -= 0.1
    with pytest.raises(RuntimeError, match=r"an array of shape \(3, 4\)"):
        loss.backward()


@pytest.mark.parametrize("make_optimizer", [lambda p: optim.SGD(p, lr=0.5),
                                            lambda p: optim.SGD(p, lr=0.5, momentum=0.9),
                                            lambda p: optim.Adam(p, lr=0.5)], ids=["sgd", "momentum", "adam"])
def test_an_optimizer_step_between_two_backward_calls_through_one_graph_is_refused(make_optimizer):
    """The GAN/two-loss mistake: the second backward would mix the old activations with the new weights."""
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    opt = make_optimizer(model.parameters())
    out = model(mdl.tensor(np.ones((5, 3), np.float32)))
    out.sum().backward(retain_graph=True)
    opt.step()
    opt.zero_grad()
    with pytest.raises(RuntimeError, match=r"modified by an optimizer step \((SGD|Adam)\)"):
        (out * out).sum().backward()
    loss = model(mdl.tensor(np.ones((5, 3), np.float32))).sum()     # a fresh forward pass is fine
    loss.backward()
    opt.step()


def test_in_place_into_a_read_only_array_says_so():
    """The message was the broadcast one ("cannot hold the result of shapes (2, 3) and ()")."""
    for array in (np.broadcast_to(np.ones(3, np.float32), (2, 3)), np.ones(3)):
        array.flags.writeable = False             # (a broadcast view is read-only already)
        t = mdl.Tensor(array)
        with pytest.raises(ValueError, match="is read-only"):
            t += 1
        np.testing.assert_array_equal(t.data, np.ones(array.shape))


def test_in_place_bad_shape_and_dtype_name_them():
    t = mdl.tensor([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        t += np.ones((2, 3))
    c = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True) * 2
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        c += np.ones((2, 3))                   # a non-leaf cannot grow either (as PyTorch)
    i = mdl.tensor(np.array([1, 2]))
    with pytest.raises(TypeError, match=r"result \(dtype float64\) cannot be stored in a tensor of dtype int64"):
        i /= 2                                 # the message said "the result (dtype int64)"
    with pytest.raises(TypeError, match=r"result \(dtype float64\) cannot be stored in a tensor of dtype int64"):
        i *= np.array([0.5, 1.5])
    i += 1                                     # int64 += int stays int64, in place
    np.testing.assert_array_equal(i.data, [2, 3])


# ---- 3. comparisons, hashing, truth, iteration ------------------------------------------------------
def test_comparisons_are_elementwise_bool_tensors_without_grad():
    a = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = mdl.tensor([1.0, 2.0, 0.0])
    results = {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b,
               "scalar": a > 1.5, "reflected": 1.5 < a, "ndarray": a == np.array([1.0, 0.0, 3.0])}
    expected = {"==": [1, 1, 0], "!=": [0, 0, 1], "<": [0, 0, 0], "<=": [1, 1, 0], ">": [0, 0, 1],
                ">=": [1, 1, 1], "scalar": [0, 1, 1], "reflected": [0, 1, 1], "ndarray": [1, 0, 1]}
    for name, out in results.items():
        assert isinstance(out, mdl.Tensor) and out.dtype == np.bool_ and not out.requires_grad, name
        np.testing.assert_array_equal(out.data, np.array(expected[name], dtype=bool), err_msg=name)
    assert np.mean(a == b) == pytest.approx(2 / 3)         # the example
    assert (a == b).mean().item() == pytest.approx(2 / 3)
    assert (a == None) is False and (a != None) is True    # noqa: E711 (as PyTorch)


def test_tensors_hash_by_identity():
    a, b = mdl.tensor([1.0]), mdl.tensor([1.0])
    assert len({a, b, a}) == 2 and {a: 1}[a] == 1


def test_bool_only_for_one_element():
    assert bool(mdl.tensor([0.0])) is False and bool(mdl.tensor(2.0)) is True and bool(mdl.tensor([[3]]))
    assert not mdl.tensor(0.0)
    for t in (mdl.tensor([1.0, 2.0]), mdl.tensor(np.zeros(0))):
        with pytest.raises(RuntimeError, match="ambiguous"):
            bool(t)


def test_0d_tensors_are_not_iterable_and_have_no_len():
    t = mdl.tensor(1.0)
    with pytest.raises(TypeError, match="0-d"):
        list(t)
    with pytest.raises(TypeError, match="0-d"):
        len(t)
    rows = list(mdl.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert len(rows) == 2 and rows[1].shape == (2,) and rows[1].data.tolist() == [3.0, 4.0]


# ---- 6. max with NaN, dtype promotion, axis errors, bool scalars ----------------------------------------
@pytest.mark.parametrize("reduce", ["max", "min"])
def test_the_gradient_of_max_goes_to_the_nan(reduce):
    x = mdl.tensor([1.0, np.nan, 3.0], requires_grad=True)
    out = getattr(x, reduce)()
    assert np.isnan(out.item())
    out.backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 0.0])
    y = mdl.tensor([[1.0, np.nan], [4.0, 3.0]], requires_grad=True)
    getattr(y, reduce)(axis=1).sum().backward()
    np.testing.assert_array_equal(y.grad, [[0.0, 1.0], [1.0, 0.0]] if reduce == "max" else [[0.0, 1.0], [0.0, 1.0]])


@pytest.mark.parametrize("make,dtype", [
    (lambda: mdl.tensor(np.array([1, 2])) * mdl.tensor([1.5, 2.0]), np.float32),            # int64 * float32
    (lambda: mdl.tensor([1.0, 2.0]) + mdl.tensor(np.float64(1.0)), np.float32),            # + 0-d float64
    (lambda: mdl.tensor(np.float64(1.0)) + mdl.tensor([1.0, 2.0]), np.float32),
    (lambda: mdl.tensor([1.0, 2.0]) * 2.5, np.float32),                                    # Python scalar
    (lambda: mdl.tensor(np.array([1, 2])) * 2.5, np.float32),
    (lambda: mdl.tensor(np.array([1, 2])) + 1, np.int64),
    (lambda: mdl.tensor(np.array([1, 2])) / 2, np.float32),                                # true division
    (lambda: mdl.tensor(np.array([1, 2])) / mdl.tensor(np.array([2, 2])), np.float32),
    (lambda: mdl.tensor(np.array([1, 2])) + mdl.tensor(np.float64(1.0)), np.float64),      # category wins
    (lambda: mdl.tensor(np.array([1.0, 2.0])) + mdl.tensor(np.ones(2, np.float32)), np.float64),
    (lambda: mdl.tensor(np.array([True, False])) + 1, np.int64),
    (lambda: mdl.tensor(np.array([1, 2])) ** 0.5, np.float32),
    (lambda: mdl.tensor(np.array([1, 2])) @ mdl.tensor(np.ones((2, 2), np.float32)), np.float32),
    (lambda: mdl.tensor(np.array([1, 2])).exp(), np.float32),
    (lambda: mdl.tensor(np.array([1, 2])).sigmoid(), np.float32),
])
def test_type_promotion_follows_pytorch(make, dtype):
    assert make().dtype == dtype


def test_promotion_keeps_gradients_in_each_leafs_dtype():
    a = mdl.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    s = mdl.tensor(np.float64(3.0), requires_grad=True)
    out = a * s
    assert out.dtype == np.float32
    out.sum().backward()
    assert a.grad.dtype == np.float32 and s.grad.dtype == np.float64 and s.grad.shape == ()
    np.testing.assert_array_equal(a.grad, [3.0, 3.0])
    assert s.grad == 3.0


def test_axis_of_a_0d_tensor():
    t = mdl.tensor(2.0, requires_grad=True)
    assert t.mean(0).item() == 2.0 and t.sum(-1).item() == 2.0 and t.max(dim=0).item() == 2.0   # as PyTorch
    for bad in (1, -2):
        with pytest.raises(IndexError, match=r"axis .* out of range .*shape \(\)"):
            t.mean(bad)
    with pytest.raises(IndexError, match=r"out of range .*\(2, 3\)"):
        mdl.tensor(np.ones((2, 3))).sum(axis=2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_python_bools_are_numbers(dtype):
    t = mdl.tensor(np.array([1.0, 2.0], dtype), requires_grad=True)
    out = t + True
    assert out.dtype == dtype
    np.testing.assert_array_equal(out.data, [2.0, 3.0])
    (t * False + True).sum().backward()
    np.testing.assert_array_equal(t.grad, [0.0, 0.0])
    assert (mdl.tensor(np.array([True, False])) + True).dtype == np.bool_


def test_everyday_pytorch_idioms():
    """f"{loss:.3f}", int(t), t.requires_grad_(), model[:-1](x), p.data = a Tensor: each failed before."""
    loss = mdl.tensor(3.14159)
    assert f"{loss:.3f}" == "3.142" and f"{loss}" == str(loss.item()) and int(mdl.tensor(7.9)) == 7
    with pytest.raises(TypeError):
        f"{mdl.tensor([1.0, 2.0]):.3f}"                         # as PyTorch: only 0-d tensors format as numbers
    w = mdl.tensor([1.0, 2.0])
    assert w.requires_grad_() is w and w.requires_grad and not w.requires_grad_(False).requires_grad
    with pytest.raises(RuntimeError, match="non-leaf"):
        (mdl.tensor([1.0], requires_grad=True) * 2).requires_grad_(False)
    with pytest.raises(TypeError, match="floating-point"):
        mdl.tensor(np.array([1, 2])).requires_grad_()
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    head = model[:-1]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is model[0]
    x = mdl.tensor(np.ones((5, 3), np.float32))
    np.testing.assert_array_equal(head(x).data, model[1](model[0](x)).data)
    p = model[0].weight
    p.data = mdl.tensor(np.zeros((3, 4), np.float32))           # an ndarray again, not a Tensor inside one
    assert type(p.data) is np.ndarray and (p.data == 0).all()
    p.data = [[1.0] * 4] * 3
    assert p.data.dtype == np.float32 and p.data.shape == (3, 4)


def test_item_assignment_and_mask_logic_outside_graphs():
    """t[mask] = 0, ~mask, mask & other, t[[i, j]]: PyTorch idioms that raised TypeError."""
    t = mdl.tensor([1.0, -2.0, 3.0, -4.0])
    negative = t < 0
    t[negative] = 0
    t[0] = mdl.tensor(5.0)
    np.testing.assert_array_equal(t.data, [5.0, 0.0, 3.0, 0.0])
    assert t.dtype == np.float32
    np.testing.assert_array_equal((~negative).data, [True, False, True, False])
    np.testing.assert_array_equal((negative & (t > -10)).data, [False, True, False, True])
    np.testing.assert_array_equal((True | negative).data, [True] * 4)
    np.testing.assert_array_equal((negative ^ negative).data, [False] * 4)
    np.testing.assert_array_equal((mdl.tensor(np.array([5, 6])) & 3).data, [1, 2])
    for bad in (lambda: t & negative, lambda: ~t):
        with pytest.raises(TypeError, match="bool or integer"):
            bad()
    i = mdl.tensor(np.array([1, 2]))
    with pytest.raises(TypeError, match="dtype int64"):
        i[0] = 2.5                                         # same-kind casting, as t += x
    x = mdl.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x[[mdl.tensor(np.int64(1)), 1]]                    # a list is one advanced index
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0, 0], [2, 2, 2]])


def test_item_assignment_with_gradients_is_refused_or_checked():
    w = mdl.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="item assignment .* not recorded"):
        w[0] = 3.0
    buf = mdl.zeros(2)
    with pytest.raises(RuntimeError, match="item assignment"):
        buf[0] = w[0]                                      # a value with a gradient
    y = w * w
    with mdl.no_grad():
        w[1] = 10.0                                        # allowed (PyTorch too) ...
    with pytest.raises(RuntimeError, match="modified by item assignment"):
        y.sum().backward()                                 # ... but the graph that saved w refuses it


# ---- PyTorch's in-place methods (add_, sub_, mul_, div_, clamp_, zero_, fill_, copy_) ---------------
def test_the_hand_written_sgd_step_with_add_():
    """``p.add_(p.grad, alpha=-lr)`` under no_grad: the same object and buffer, the same numbers as -=."""
    w = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    buffer = w.data
    (w * w).sum().backward()
    with mdl.no_grad():
        assert w.add_(w.grad, alpha=-0.25) is w
        w.sub_(mdl.tensor([1.0, 1.0, 1.0]), alpha=0.5).mul_(2).div_(4)
    assert w.data is buffer and w.requires_grad and w.is_leaf
    np.testing.assert_allclose(w.data, ([0.5, 1.0, 1.5] - np.array([0.5, 0.5, 0.5])) * 2 / 4)


def test_zero_fill_copy_and_clamp_in_place():
    t = mdl.tensor([[-2.0, 0.5], [3.0, 1.0]])
    buffer = t.data
    assert t.clamp_(-1, 1) is t and t.data.tolist() == [[-1.0, 0.5], [1.0, 1.0]]
    assert t.copy_(np.array([7.0, 8.0])) is t and t.data.tolist() == [[7.0, 8.0], [7.0, 8.0]]   # broadcast
    assert t.fill_(mdl.tensor(2.5)).data.tolist() == [[2.5, 2.5], [2.5, 2.5]]
    assert t.zero_().data.tolist() == [[0.0, 0.0], [0.0, 0.0]] and t.data is buffer and t.dtype == np.float32


def test_in_place_methods_on_graph_tensors_are_refused():
    """``h.add_(b)`` cannot rebind h as ``h += b`` does, so on a non-leaf in a graph it would have left h as
    it was, silently: refused, as is a leaf that requires grad (PyTorch's error)."""
    w = mdl.tensor([1.0, 2.0], requires_grad=True)
    h = w * 2
    for call in (lambda: h.add_(1), lambda: h.zero_(), lambda: h.copy_(np.ones(2)), lambda: h.clamp_(0, 1)):
        with pytest.raises(RuntimeError, match="part of a graph"):
            call()
    for call in (lambda: w.mul_(2), lambda: w.fill_(0)):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            call()
    with pytest.raises(RuntimeError, match="operand that requires grad"):
        mdl.zeros(2).copy_(w)
    np.testing.assert_array_equal(h.data, [2.0, 4.0])
    np.testing.assert_array_equal(w.data, [1.0, 2.0])


def test_in_place_methods_log_their_writes_and_check_arguments():
    w, x = mdl.tensor([1.0, 2.0], requires_grad=True), mdl.tensor([3.0, 4.0])
    y = (w * x).sum()
    x.zero_()                                    # x was saved for w's gradient
    with pytest.raises(RuntimeError, match=r"modified by zero_\(\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"shape \(3,\) do not broadcast to the tensor's shape \(2,\)"):
        x.copy_(np.ones(3))
    ints, flags = mdl.tensor(np.array([1, 2])), mdl.tensor(np.array([True, False]))
    assert ints.fill_(2.7).data.tolist() == [2, 2] and flags.zero_().data.tolist() == [False, False]  # as PyTorch
    assert ints.copy_(np.array([3.9, -1.5])).data.tolist() == [3, -1] and ints.dtype == np.int64
    acc = mdl.zeros(2)
    acc.add_(w * w)                              # a plain tensor joins the graph, as with +=
    acc.sum().backward()
    np.testing.assert_array_equal(w.grad, [2.0, 4.0])


def test_a_float_index_is_refused_saying_why():
    """``x[mdl.tensor([0, 2])]``: the index is float32 here (lists become float32), int64 in PyTorch. Taking
    whole floats as indices read a float mask (``x[m.float()]``) as a gather of rows 0 and 1, silently; so
    refused, as PyTorch refuses float indices, with the way out in the message."""
    a = mdl.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    for index in (mdl.tensor([0, 2]), (a[:, 0] > 4).float(), [mdl.tensor(0), mdl.tensor(3)], (mdl.tensor([0, 1]), 1)):
        with pytest.raises(IndexError, match=r"must be integer or bool, got float32 .*dtype=np.int64"):
            a[index]
    a[mdl.tensor([0, 0, 2], dtype=np.int64)].sum().backward()
    np.testing.assert_array_equal(a.grad[:, 0], [2.0, 0.0, 1.0, 0.0])
    assert a[a[:, 0] > 4].shape == (2, 3)


def test_size_and_clone_as_pytorch():
    """``x.size(0)`` (the batch size in PyTorch code) raised 'int is not callable'; ``x.clone()`` was missing.
    ``t.size`` stays NumPy's element count where it is used as a number."""
    x = mdl.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert x.size == 6 and x.size() == (2, 3) and x.size(0) == 2 and x.size(-1) == 3
    assert (x.sum() / x.size).item() == 2.5 and (x * x.size).dtype == x.dtype and (x == x.size).shape == (2, 3)
    assert pickle.loads(pickle.dumps(x.size))(0) == 2 and copy.deepcopy(x.size) == 6
    with pytest.raises(IndexError, match="a 0-d tensor has no dimensions"):
        mdl.tensor(3.0).size(0)
    with pytest.raises(IndexError, match=r"size\(2\): a tensor of shape \(2, 3\) has dimensions -2..1"):
        x.size(2)
    y = x.clone()
    assert y.data is not x.data and not np.shares_memory(y.data, x.data)
    (y * y).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * x.data)
    with mdl.no_grad():
        y += 1
    np.testing.assert_array_equal(x.data, np.arange(6.0).reshape(2, 3))
