import numpy as np
import pytest

from minidl.diagnostics import histogram, ratio_per_layer, summarize, symmetric_range


def test_summarize_known_values():
    values = np.arange(101, dtype=np.float32)          # 0..100: percentiles are the values themselves
    s = summarize(values.reshape(1, 101))
    assert s["mean"] == 50 and s["min"] == 0 and s["max"] == 100
    assert s["std"] == pytest.approx(np.sqrt(np.mean((np.arange(101) - 50.0) ** 2)))
    assert s["second_moment"] == pytest.approx(np.mean(np.arange(101.0) ** 2))
    assert (s["p2"], s["p50"], s["p98"]) == (2, 50, 98)


def test_summarize_rejects_empty():
    with pytest.raises(ValueError, match="empty"):
        summarize(np.array([]))


def test_histogram_density_integrates_to_one_and_clips():
    rng = np.random.default_rng(0)
    values = rng.normal(size=10_000)
    h = histogram(values, (-1.0, 1.0), bins=20)
    widths = np.diff(h["edges"])
    assert len(h["density"]) == 20 and np.sum(np.array(h["density"]) * widths) == pytest.approx(1.0)
    # values beyond the range are clipped into the end bins: the end bins hold P(|x| > 0.9) / 2 each
    assert h["density"][0] * widths[0] == pytest.approx(np.mean(values <= -0.9), abs=1e-9)
    with pytest.raises(ValueError):
        histogram(values, (1.0, 1.0))


def test_ratio_per_layer_and_symmetric_range():
    assert ratio_per_layer([1.0, 0.5, 0.25, 0.125]) == pytest.approx(0.5)
    assert ratio_per_layer([2.0, 2.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ratio_per_layer([1.0])
    low, high = symmetric_range([np.array([-3.0, 1.0]), np.array([2.0])], quantile=100)
    assert (low, high) == (-3.0, 3.0)


def test_percentiles_of_large_arrays_come_from_a_subsample():
    values = np.random.default_rng(1).uniform(size=1_000_003).astype(np.float32)
    s = summarize(values)
    assert s["p98"] == pytest.approx(0.98, abs=0.003) and s["p2"] == pytest.approx(0.02, abs=0.003)
    assert s["mean"] == pytest.approx(float(values.mean(dtype=np.float64)), rel=1e-12)   # moments stay exact


def test_the_subsample_reaches_every_unit_of_a_layer():
    """A (300 examples, 1000 units) layer whose odd units are 10x wider: a stride of 2 over the flattened array
    kept only even units (p98 2.06 for 17.4). The sampled p98 of 2e5 draws has a standard error of about
    sqrt(q(1-q)/n) in probability, i.e. ~0.3 here; 1.0 is three of them."""
    rng = np.random.default_rng(2)
    layer = rng.standard_normal((300, 1000))
    layer[:, 1::2] *= 10
    assert summarize(layer)["p98"] == pytest.approx(np.percentile(layer, 98), abs=1.0)
    assert summarize(layer)["p98"] == summarize(layer)["p98"]                     # the same draws every time
