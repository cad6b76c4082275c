"""Summaries of one layer's values: the numbers Glorot & Bengio (2010) plot.

Fig. 2 plots the mean and standard deviation of each hidden layer's activations; Fig. 3 their
2nd/98th percentiles; Figs. 6-8 normalized histograms. Everything here works on plain ndarrays.
"""
from __future__ import annotations

import numpy as np

PERCENTILES = (2.0, 50.0, 98.0)
EXACT_PERCENTILE_LIMIT = 200_000   # larger arrays: percentiles/histograms from a random subsample of this size


def _percentile_sample(array: np.ndarray) -> np.ndarray:
    """`array` (flat) itself, or EXACT_PERCENTILE_LIMIT of its entries drawn at random (a fixed seed: the
    same entries every time) when it holds more.

    The error of an estimated percentile is then about sqrt(q (1 - q) / n) in probability (~3e-4 for the
    98th at n = 2e5), far below what any figure shows. (A regular stride, used before, kept the same units of
    a flattened (examples, units) array whenever the stride divided the row length: every other unit of a
    300 x 1000 layer.)"""
    if array.size <= EXACT_PERCENTILE_LIMIT:
        return array
    return array[np.random.default_rng(0).integers(0, array.size, EXACT_PERCENTILE_LIMIT)]


def summarize(values) -> dict:
    """Mean, std, second moment, min/max and the `PERCENTILES` of all entries of `values`.

    Returns plain floats (JSON-ready): {"mean", "std", "second_moment", "min", "max", "p2", "p50", "p98"}.
    Moments are exact, accumulated in float64; percentiles of arrays over EXACT_PERCENTILE_LIMIT entries are
    estimated on a random subsample (see `_percentile_sample`).
    """
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    array = array.ravel()
    if array.size == 0:
        raise ValueError("summarize: got an empty array")
    summary = {
        "mean": float(array.mean(dtype=np.float64)),
        "std": float(array.std(dtype=np.float64)),
        "second_moment": float(np.mean(np.square(array, dtype=np.float64))),
        "min": float(array.min()),
        "max": float(array.max()),
    }
    for q, value in zip(PERCENTILES, np.percentile(_percentile_sample(array), PERCENTILES)):
        summary[f"p{q:g}"] = float(value)
    return summary


def histogram(values, value_range: tuple[float, float], bins: int = 50) -> dict:
    """Normalized histogram of `values` over `value_range` (values outside are clipped into the end bins).

    Arrays over EXACT_PERCENTILE_LIMIT entries are histogrammed on a random subsample (the density of each
    bin then carries a relative sampling error of about 1/sqrt(count), invisible in a plot).

    Returns {"edges": [bins+1 floats], "density": [bins floats]} where density integrates to 1, the form
    in which the paper's Figs. 6-8 overlay one curve per layer.
    """
    low, high = float(value_range[0]), float(value_range[1])
    if not high > low:
        raise ValueError(f"histogram: value_range must have high > low, got {value_range}")
    array = np.clip(_percentile_sample(np.asarray(values).ravel()).astype(np.float64), low, high)
    density, edges = np.histogram(array, bins=bins, range=(low, high), density=True)
    return {"edges": edges.tolist(), "density": density.tolist()}


def symmetric_range(arrays, quantile: float = 99.9) -> tuple[float, float]:
    """(-a, a) with a the `quantile`-th percentile of |v| over all `arrays`: a shared histogram axis."""
    magnitude = max(float(np.percentile(np.abs(_percentile_sample(np.asarray(a).ravel())), quantile))
                    for a in arrays)
    magnitude = magnitude if magnitude > 0 else 1.0
    return (-magnitude, magnitude)


def ratio_per_layer(values) -> float:
    """Geometric-mean factor by which a per-layer quantity changes from one layer to the next.

    (values[-1] / values[0]) ** (1 / (len - 1)): the "x0.58 per layer" of the paper's Fig. 6 reading.
    """
    values = [float(v) for v in values]
    if len(values) < 2:
        raise ValueError("ratio_per_layer needs at least two layers")
    if values[0] <= 0 or values[-1] <= 0:
        return float("nan")
    return (values[-1] / values[0]) ** (1.0 / (len(values) - 1))
