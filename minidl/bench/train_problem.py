"""The benchmarked problem, identical in every contender's process: network, weights, batches.

The 784-1000x5-10 sigmoid MLP of Glorot & Bengio (2010), softmax cross-entropy, plain SGD, float32.
Weights are Xavier-uniform, U[-a, a] with a = sqrt(6 / (fan_in + fan_out)), laid out (fan_in, fan_out);
biases start at 0. Everything is drawn from a seeded NumPy generator, so every process that calls these
functions with the same arguments holds the same arrays (no file or pickle passes between processes).

This module imports only NumPy: the NumPy and PyTorch contenders run without importing minidl.
"""
from __future__ import annotations

import numpy as np

SIZES = (784, 1000, 1000, 1000, 1000, 1000, 10)
LEARNING_RATE = 0.01
BATCH_POOL = 8          # distinct batches cycled through by every contender


def initial_weights(seed: int = 0, sizes=SIZES) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(W of shape (fan_in, fan_out), b of shape (fan_out,))] per layer, float32."""
    rng = np.random.default_rng(seed)
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = np.float32(np.sqrt(6.0 / (fan_in + fan_out)))
        weight = rng.random((fan_in, fan_out), dtype=np.float32)
        weight *= 2 * bound
        weight -= bound
        layers.append((weight, np.zeros(fan_out, dtype=np.float32)))
    return layers


def batches(batch_size: int, seed: int = 1, count: int = BATCH_POOL, sizes=SIZES) -> list[tuple]:
    """[(x float32 (batch_size, sizes[0]) in [0, 1), y int64 class indices (batch_size,))]."""
    rng = np.random.default_rng(seed)
    return [(rng.random((batch_size, sizes[0]), dtype=np.float32),
             rng.integers(0, sizes[-1], size=batch_size)) for _ in range(count)]


def parameter_count(sizes=SIZES) -> int:
    return sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))
