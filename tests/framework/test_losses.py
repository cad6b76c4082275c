"""cross_entropy (reduction, label_smoothing), nll_loss, binary_cross_entropy_with_logits, mse_loss
reductions, dropout and the normalization functions as graph ops: formulas written out here, float64
central differences for every gradient, and the bad inputs of issue 11 (integer logits, mismatched
shapes, out-of-range classes). (Numbers from PyTorch itself: test_torch_goldens.py.)"""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minidl as mdl
from minidl import nn
from minidl.nn import functional as F
from fw_gradcheck import check_gradients


def logits(n, c, seed, scale=2.0):
    return np.random.default_rng(seed).normal(0, scale, size=(n, c))


def log_softmax(z):
    shifted = z - z.max(1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(1, keepdims=True))


def reduce(losses, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction](losses)


# ---- cross_entropy, nll_loss ---------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 5), st.sampled_from(["mean", "sum", "none"]),
       st.sampled_from([0.0, 0.1, 0.5, 1.0]), st.integers(0, 2**16))
def test_cross_entropy_with_label_smoothing_is_pytorchs_formula(n, c, reduction, smoothing, seed):
    z = logits(n, c, seed)
    y = np.random.default_rng(seed + 1).integers(0, c, size=n)
    logp = log_softmax(z)
    # PyTorch: (1-ε)·(-log p[y]) + ε·(-(1/C) Σ_c log p[c]) per example, then the reduction
    losses = (1 - smoothing) * -logp[np.arange(n), y] + smoothing * -logp.mean(axis=1)
    got = F.cross_entropy(mdl.tensor(z, dtype=np.float64), y, reduction=reduction, label_smoothing=smoothing)
    np.testing.assert_allclose(got.data, reduce(losses, reduction), rtol=1e-12)
    check_gradients(lambda t: F.cross_entropy(t, y, reduction=reduction, label_smoothing=smoothing), z)


def test_cross_entropy_module_passes_its_options():
    z, y = logits(4, 3, 0), np.array([0, 2, 1, 1])
    loss = nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.2)(mdl.tensor(z, dtype=np.float64), y)
    assert loss.item() == pytest.approx(F.cross_entropy(mdl.tensor(z, dtype=np.float64), y, "sum", 0.2).item())
    assert "reduction='sum'" in repr(nn.CrossEntropyLoss(reduction="sum"))


def test_cross_entropy_refuses_integer_logits():
    """Issue 11, item 4: integer logits used to give a truncated integer loss (0 for a true 0.7201)."""
    for dtype in (np.int64, np.int32, np.uint8, np.bool_):
        with pytest.raises(TypeError, match=f"floating-point input, got dtype {np.dtype(dtype)}"):
            F.cross_entropy(mdl.tensor(np.array([[1, 0], [0, 1]], dtype=dtype)), np.array([0, 0]))
    with pytest.raises(TypeError, match="floating-point"):
        nn.NLLLoss()(mdl.tensor(np.zeros((2, 3), dtype=np.int64)), np.array([0, 1]))
    assert F.cross_entropy(mdl.tensor([[1, 0], [0, 1]]), np.array([0, 0])).item() == pytest.approx(0.8132616875)


@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss])
def test_bad_targets_name_the_values_and_shapes(fn):
    name = fn.__name__
    z = mdl.tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=rf"{name}: class indices must lie in \[0, 4\), got range \[-1, 2\]"):
        fn(z, np.array([0, -1, 2]))
    with pytest.raises(ValueError, match=rf"{name}: class indices must lie in \[0, 4\), got range \[0, 9\]"):
        fn(z, np.array([0, 9, 2]))
    with pytest.raises(ValueError, match=rf"{name}: targets of shape \(3, 1\) do not match logits of shape \(3, 4\)"):
        fn(z, np.array([[0], [1], [2]]))
    with pytest.raises(ValueError, match=rf"{name}: targets of shape \(2,\) do not match logits of shape "
                                         r"\(2, 3, 4\) \(expected \(2, 4\)\)"):
        fn(mdl.tensor(np.zeros((2, 3, 4))), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"\(classes,\), \(batch, classes\) or \(batch, classes, d1, ...\), got \(\)"):
        fn(mdl.tensor(np.zeros(())), np.array(0))
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none', got 'avg'"):
        fn(z, np.array([0, 1, 2]), reduction="avg")
    with pytest.raises(TypeError, match="got a ndarray; pass weight= and reduction= by keyword"):
        fn(z, np.array([0, 1, 2]), np.array([1.0, 2.0, 3.0, 4.0]))   # PyTorch's third positional: weight
    for bad in ([0.0, np.inf, 1.0], [0.0, np.nan, 1.0]):        # inf was cast to int64: "range [-9223372036854775808, 1]"
        with pytest.raises(TypeError, match="integer class indices"):
            fn(z, np.array(bad))
    with pytest.raises(ValueError, match=r"\[0, 4\), got range \[0, 100000000000000000000\]"):
        fn(z, np.array([0.0, 1e20, 1.0]))


def test_label_smoothing_must_lie_in_0_1():
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=f"label_smoothing must lie in \\[0, 1\\], got {bad}"):
            F.cross_entropy(mdl.tensor(np.zeros((2, 3))), np.array([0, 1]), label_smoothing=bad)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_picks_the_target_log_probabilities(reduction):
    lp = logits(5, 3, 2)
    y = np.array([2, 0, 1, 1, 0])
    got = F.nll_loss(mdl.tensor(lp, dtype=np.float64), y, reduction=reduction)
    np.testing.assert_allclose(got.data, reduce(-lp[np.arange(5), y], reduction), rtol=1e-15)
    check_gradients(lambda t: F.nll_loss(t, y, reduction=reduction), lp)
    z = mdl.tensor(logits(5, 3, 3), dtype=np.float64)
    np.testing.assert_allclose(nn.NLLLoss(reduction=reduction)(F.log_softmax(z), y).data,
                               F.cross_entropy(z, y, reduction=reduction).data, rtol=1e-12)


# ---- binary_cross_entropy_with_logits --------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_with_logits_formula_and_gradients_for_input_and_target(reduction, weighted):
    rng = np.random.default_rng(4)
    x, y = rng.normal(0, 3, size=(4, 3)), rng.random((4, 3))
    kwargs = dict(weight=rng.random(3) + 0.5, pos_weight=np.array([0.5, 2.0, 3.0])) if weighted else {}
    p = 1 / (1 + np.exp(-x))
    pw = kwargs.get("pos_weight", 1.0)
    losses = -(pw * y * np.log(p) + (1 - y) * np.log(1 - p)) * kwargs.get("weight", 1.0)     # textbook form
    got = F.binary_cross_entropy_with_logits(mdl.tensor(x, dtype=np.float64), y, reduction=reduction, **kwargs)
    np.testing.assert_allclose(got.data, reduce(losses, reduction), rtol=1e-12)
    check_gradients(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction, **kwargs), x, y)
    module = nn.BCEWithLogitsLoss(reduction=reduction, **kwargs)
    np.testing.assert_allclose(module(mdl.tensor(x, dtype=np.float64), mdl.tensor(y)).data, got.data, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_is_stable_for_huge_logits(dtype):
    x = mdl.tensor(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0]), dtype=dtype, requires_grad=True)
    y = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
        loss.sum().backward()
    np.testing.assert_allclose(loss.data, [1000.0, 0.0, np.log(2), 0.0, 1000.0], rtol=1e-6, atol=1e-20)
    np.testing.assert_allclose(x.grad, [-1.0, 0.0, -0.5, 0.0, 1.0], atol=1e-7)
    assert loss.dtype == dtype and x.grad.dtype == dtype


def test_bce_with_logits_checks_shapes_and_dtypes():
    with pytest.raises(ValueError, match=r"input of shape \(4, 1\) and target of shape \(4,\) differ"):
        F.binary_cross_entropy_with_logits(mdl.tensor(np.zeros((4, 1))), np.zeros(4))
    with pytest.raises(TypeError, match="floating-point"):
        F.binary_cross_entropy_with_logits(mdl.tensor(np.zeros(3, dtype=np.int64)), np.zeros(3))
    with pytest.raises(ValueError, match=r"broadcast the loss to \(2, 4\)"):
        F.binary_cross_entropy_with_logits(mdl.tensor(np.zeros(4)), np.zeros(4), weight=np.ones((2, 4)))
    # NumPy's "operands could not be broadcast together with shapes (3,) (2,)" named neither argument
    for kwargs in ({"weight": np.ones(2)}, {"pos_weight": np.ones(2)}, {"weight": np.ones((3, 1)), "pos_weight": [1.0, 2.0]}):
        with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: weight/pos_weight of shapes .* "
                                             r"do not broadcast against the input's \(3, 3\)"):
            nn.BCEWithLogitsLoss(**kwargs)(mdl.tensor(np.zeros((3, 3))), np.zeros((3, 3)))
    # integer 0/1 targets are read in the input's dtype
    loss = F.binary_cross_entropy_with_logits(mdl.tensor([0.0, 0.0]), np.array([0, 1]))
    assert loss.dtype == np.float32 and loss.item() == pytest.approx(np.log(2))


# ---- mse_loss reductions ----------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_reductions(reduction):
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    got = F.mse_loss(mdl.tensor(a, dtype=np.float64), b, reduction=reduction)
    np.testing.assert_allclose(got.data, reduce((a - b) ** 2, reduction), rtol=1e-14)
    check_gradients(lambda x, t: F.mse_loss(x, t, reduction=reduction), a, b)
    np.testing.assert_allclose(nn.MSELoss(reduction)(mdl.tensor(a), mdl.tensor(b)).data, got.data, rtol=1e-6)


def test_mse_loss_of_n_1_against_n_is_refused_not_broadcast():
    """Issue 11, item 5: (N, 1) against (N,) computed an N×N loss."""
    with pytest.raises(ValueError, match=r"input of shape \(5, 1\) and target of shape \(5,\) differ"):
        F.mse_loss(mdl.tensor(np.zeros((5, 1))), mdl.tensor(np.zeros(5)))
    with pytest.raises(TypeError, match="floating-point"):
        F.mse_loss(mdl.tensor(np.zeros(3, dtype=np.int64)), np.zeros(3))
    assert F.mse_loss(mdl.tensor([1.0, 3.0]), np.array([0, 1])).item() == pytest.approx(2.5)


# ---- every new fused op follows the recording rules ----------------------------------------------------
FUSED = {
    "cross_entropy_none": lambda t: F.cross_entropy(t, np.array([0, 2, 1]), reduction="none", label_smoothing=0.1),
    "nll_loss_sum": lambda t: F.nll_loss(t, np.array([0, 2, 1]), reduction="sum"),
    "bce_with_logits": lambda t: F.binary_cross_entropy_with_logits(t, np.ones((3, 4))),
    "dropout": lambda t: F.dropout(t, 0.5),
    "batch_norm": lambda t: F.batch_norm(t, training=True),
    "layer_norm": lambda t: F.layer_norm(t, 4),
    "mse_loss_none": lambda t: F.mse_loss(t, np.zeros((3, 4)), reduction="none"),
}


@pytest.mark.parametrize("name", list(FUSED))
def test_fused_ops_record_only_when_needed(name):
    fn = FUSED[name]
    x = mdl.tensor(np.random.default_rng(6).normal(size=(3, 4)), dtype=np.float32, requires_grad=True)
    with mdl.no_grad():
        plain = fn(x)
    assert not plain.requires_grad and plain._backward is None
    assert not fn(x.detach()).requires_grad
    out = fn(x)
    assert out.requires_grad and not out.is_leaf
    out.backward(np.ones(out.shape, dtype=np.float32))
    assert x.grad.shape == (3, 4) and x.grad.dtype == np.float32


def test_class_weights_and_ignore_index_are_checked_and_an_all_ignored_mean_is_nan():
    """The values are PyTorch's (test_torch_goldens); here the edges: a weight per class, NaN where every
    target is ignored (PyTorch's 0/0), the modules passing both on."""
    z = mdl.tensor(np.zeros((3, 4)), requires_grad=True)
    with pytest.raises(ValueError, match=r"weight must hold one number per class, shape \(4,\)"):
        F.cross_entropy(z, np.array([0, 1, 2]), weight=np.ones(3))
    with pytest.raises(ValueError, match="ignore_index=-100 are skipped"):
        F.nll_loss(z, np.array([0, -1, 2]))
    loss = F.cross_entropy(z, np.array([-100, -100, -100]))
    assert np.isnan(loss.item())
    y = np.array([1, 7, 3])
    module = nn.CrossEntropyLoss(weight=mdl.tensor([1.0, 2.0, 1.0, 4.0]), ignore_index=7)
    expected = (2.0 * np.log(4) + 4.0 * np.log(4)) / 6.0
    assert module(z, y).item() == pytest.approx(expected)
    assert nn.NLLLoss(ignore_index=7)(z, y).item() == 0.0


@pytest.mark.parametrize("weight", [np.array([1.0, 2.0, 1.0, 4.0]), mdl.tensor([1.0, 2.0, 1.0, 4.0])])
def test_loss_modules_take_pytorchs_positional_order(weight):
    """PyTorch's CrossEntropyLoss(w) and NLLLoss(w): class weights first, ignore_index third, reduction fifth
    (a weight array in the reduction's place crashed in NumPy's truth test)."""
    rng = np.random.default_rng(3)
    z = mdl.tensor(rng.normal(size=(5, 4)))
    y = np.array([0, 3, 1, 3, 2])
    expected = F.cross_entropy(z, y, weight=weight).item()
    assert nn.CrossEntropyLoss(weight)(z, y).item() == pytest.approx(expected)
    assert nn.NLLLoss(weight, None, -100, None, "sum")(F.log_softmax(z), y).item() == pytest.approx(
        F.nll_loss(F.log_softmax(z), y, "sum", weight=weight).item())
    assert nn.CrossEntropyLoss(weight, None, 3)(z, y).item() == pytest.approx(
        F.cross_entropy(z, y, weight=weight, ignore_index=3).item())
    for loss in (nn.CrossEntropyLoss, nn.NLLLoss, nn.BCEWithLogitsLoss):
        with pytest.raises(TypeError, match=r"pass the reduction by name: \w+\(reduction='sum'\)"):
            loss("sum")         # BCEWithLogitsLoss: "could not convert string to float: 'sum'" when called
    for loss in (nn.CrossEntropyLoss, nn.NLLLoss, nn.BCEWithLogitsLoss, nn.MSELoss):
        with pytest.raises(ValueError, match="size_average and reduce are deprecated"):
            loss(size_average=False)
        assert loss(size_average=None, reduce=None, reduction="sum").reduction == "sum"    # MSELoss: TypeError
    pos_weight = np.array([2.0, 0.5])          # PyTorch's order: (weight, size_average, reduce, reduction, pos_weight)
    bce = nn.BCEWithLogitsLoss(None, None, None, "sum", pos_weight)
    assert bce.reduction == "sum" and bce.pos_weight is pos_weight


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_ignored_targets_get_no_gradient_whatever_comes_back(loss):
    """A batch of padding only (mean: 0/0) and an ignored row's zero loss under a square root (an infinite
    gradient back) gave NaN gradients, which reached every weight; PyTorch never writes those rows."""
    fn = F.cross_entropy if loss == "cross_entropy" else lambda z, y, **kw: F.nll_loss(F.log_softmax(z, 1), y, **kw)
    z = mdl.tensor(np.array([[0.5, -1.0], [2.0, 0.0]]), requires_grad=True)
    fn(z, np.array([-100, -100])).backward()
    np.testing.assert_array_equal(z.grad, np.zeros((2, 2)))
    z = mdl.tensor(np.array([[0.5, -1.0], [2.0, 0.0]]), requires_grad=True)
    (fn(z, np.array([0, -100]), reduction="none") ** 0.5).sum().backward()
    np.testing.assert_allclose(z.grad, [[-0.20324111, 0.20324111], [0, 0]], rtol=1e-7)    # PyTorch 2.13


# ---- PyTorch's other input forms: unbatched, K-dimensional, class probabilities, an empty batch -----------
def rows_of(z):
    """(N, C, d...) logits as (N·d..., C) rows, the class axis last."""
    return np.moveaxis(z, 1, -1).reshape(-1, z.shape[1])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
def test_unbatched_and_k_dimensional_logits_are_pytorchs_forms(fn, reduction):
    """Logits (C,) with a 0-d target (PyTorch's unbatched form) and (N, C, d₁, d₂) with (N, d₁, d₂) targets
    (the K-dimensional form: class axis 1) raised "expects logits of shape (batch, classes)"; they are the
    (batch, classes) loss of the rows, its "none" in the targets' shape."""
    rng = np.random.default_rng(4)
    kwargs = dict(reduction=reduction, weight=np.array([1.0, 2.0, 0.5, 1.5]))
    if fn == "cross_entropy":
        kwargs["label_smoothing"] = 0.1
    loss = getattr(F, fn)
    z, y = rng.normal(size=(2, 4, 3, 2)), rng.integers(0, 4, size=(2, 3, 2))
    y[0, 1, 1] = -100
    got = loss(mdl.tensor(z), y, **kwargs).data
    want = loss(mdl.tensor(rows_of(z)), y.reshape(-1), **kwargs).data
    np.testing.assert_allclose(got, want if reduction != "none" else want.reshape(2, 3, 2), rtol=1e-12)
    check_gradients(lambda t: loss(t, y, **kwargs), z)
    z1 = rng.normal(size=4)
    one = loss(mdl.tensor(z1), np.array(2), **kwargs)
    assert one.shape == ()
    assert one.item() == pytest.approx(loss(mdl.tensor(z1[None]), np.array([2]), **kwargs).data.sum(), rel=1e-12)
    check_gradients(lambda t: loss(t, np.array(2), **kwargs), z1)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_takes_class_probabilities_as_pytorch(reduction, smoothing):
    """Float targets of the logits' shape are class probabilities (PyTorch's rule; a TypeError "non-integer
    values" before): lossₙ = -Σ_c w[c]·t'ₙ[c]·log pₙ[c], t' = (1-ε)t + ε/C, "mean" over the rows."""
    rng = np.random.default_rng(5)
    z, t, w = rng.normal(size=(3, 4)), rng.dirichlet(np.ones(4), size=3), np.array([1.0, 2.0, 0.5, 1.5])
    smoothed = (1 - smoothing) * t + smoothing / 4
    expected = reduce(-(smoothed * w * log_softmax(z)).sum(1), reduction)
    got = F.cross_entropy(mdl.tensor(z), t, reduction=reduction, label_smoothing=smoothing, weight=w)
    np.testing.assert_allclose(got.data, expected, rtol=1e-12)
    check_gradients(lambda a, b: F.cross_entropy(a, b, reduction=reduction, label_smoothing=smoothing, weight=w),
                    z, t)
    one_hot = np.eye(4)[[2, 0, 3]]          # probabilities 0/1 are the class indices' loss
    np.testing.assert_allclose(F.cross_entropy(mdl.tensor(z), one_hot, reduction=reduction).data,
                               F.cross_entropy(mdl.tensor(z), np.array([2, 0, 3]), reduction=reduction).data)
    k_dim = rng.normal(size=(2, 4, 3))
    probabilities = rng.dirichlet(np.ones(4), size=(2, 3)).transpose(0, 2, 1)
    check_gradients(lambda a, b: F.cross_entropy(a, b, reduction=reduction, label_smoothing=smoothing), k_dim,
                    probabilities)
    assert F.cross_entropy(mdl.tensor(z[0]), t[0], reduction=reduction).shape == ()
    assert nn.CrossEntropyLoss(reduction=reduction)(mdl.tensor(z), t).shape == got.shape


def test_class_probability_targets_refuse_ignore_index():
    """PyTorch 2.13: "ignore_index is not supported for floating point target"; minidl ignored it silently."""
    with pytest.raises(ValueError, match="ignore_index \\(0\\) is not supported for class-probability targets"):
        F.cross_entropy(mdl.tensor(np.zeros((2, 3))), np.full((2, 3), 1 / 3), ignore_index=0)


def test_cross_entropy_with_probabilities_matches_pytorch():
    z = mdl.tensor([[0.5, -1.0, 2.0], [0.0, 1.0, -0.5]], dtype=np.float64, requires_grad=True)
    t = mdl.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]], dtype=np.float64, requires_grad=True)
    loss = F.cross_entropy(z, t, weight=np.array([1.0, 2.0, 0.5]), label_smoothing=0.1)
    loss.backward()
    assert loss.item() == pytest.approx(1.913316878563713, rel=1e-12)                  # PyTorch 2.13
    np.testing.assert_allclose(z.grad, [[-0.0136166835, -0.2825710757, 0.2961877592],
                                        [-0.3491278520, 0.2861702906, 0.0629575614]], rtol=1e-9)
    np.testing.assert_allclose(t.grad, [[0.7835900835, 2.9171801670, 0.0542950417],
                                        [0.6589659528, 0.4179319057, 0.4419829764]], rtol=1e-9)
    with pytest.raises(ValueError, match="class probabilities, targets of the logits' shape, are floating point"):
        F.cross_entropy(z, np.eye(2, 3, dtype=np.int64))


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss", "soft", "mse_loss", "bce"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_empty_batch_is_nan_for_mean_and_0_for_sum(loss, dtype):
    """PyTorch's: the mean of no losses is NaN, the sum 0, "none" empty, the gradient empty; cross_entropy
    and nll_loss raised "an empty batch (its mean is undefined)" where mse_loss and BCE gave NaN (with
    NumPy's "Mean of empty slice" warning, which is gone)."""
    fns = {"cross_entropy": lambda z, **kw: F.cross_entropy(z, np.zeros(0, np.int64), **kw),
           "nll_loss": lambda z, **kw: F.nll_loss(z, np.zeros(0, np.int64), **kw),
           "soft": lambda z, **kw: F.cross_entropy(z, np.zeros((0, 4), dtype), label_smoothing=0.1, **kw),
           "mse_loss": lambda z, **kw: F.mse_loss(z, np.zeros((0, 4), dtype), **kw),
           "bce": lambda z, **kw: F.binary_cross_entropy_with_logits(z, np.zeros((0, 4), dtype), **kw)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for reduction, expected in (("mean", np.nan), ("sum", 0.0)):
            z = mdl.tensor(np.zeros((0, 4), dtype), requires_grad=True)
            out = fns[loss](z, reduction=reduction)
            assert out.shape == () and out.dtype == dtype
            np.testing.assert_equal(out.item(), expected)
            out.backward()
            assert z.grad.shape == (0, 4)
        assert fns[loss](mdl.tensor(np.zeros((0, 4), dtype)), reduction="none").shape[0] == 0
