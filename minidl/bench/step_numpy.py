"""The training step written by hand in NumPy: what a Python framework can reach with BLAS alone.

Forward  zᵢ = hᵢ₋₁ Wᵢ + bᵢ,  hᵢ = σ(zᵢ) (no σ on the last layer: logits),
loss     L = mean over the batch of  log Σⱼ e^{z_j} - z_y   (softmax cross-entropy, max-shifted),
backward δ = (softmax(z) - onehot(y)) / N at the logits, then per layer from the top:
         ∂W = hᵢ₋₁ᵀ δ,  ∂b = Σ_batch δ,  δ ← (δ Wᵢᵀ) ⊙ hᵢ₋₁ (1 - hᵢ₋₁);
update   W -= hᵢ₋₁ᵀ (lr δ),  b -= Σ_batch lr δ, each layer right after its gradient (plain SGD): lr scales
         δ (batch × fan_out), not ∂W, which would be one more pass over the weights' size.
"In place where easy": products go into buffers kept between steps (``out=``), σ and the softmax are
computed in place, δ is scaled in place. Imports only NumPy.
"""
from __future__ import annotations

import numpy as np


class NumpyStep:
    """One SGD step of the MLP on a batch: ``loss = step(x, y)``."""

    name = "numpy"

    def __init__(self, layers, lr: float, threads: int | None = None, dtype=np.float32):
        self.dtype = np.dtype(dtype)
        self.weights = [np.array(w, dtype=dtype) for w, _ in layers]
        self.biases = [np.array(b, dtype=dtype) for _, b in layers]
        self.lr = self.dtype.type(lr)
        self.weight_steps = [np.empty_like(w) for w in self.weights]     # hᵢ₋₁ᵀ (lr δ), each W's update
        self._batch_buffers: dict[int, tuple[list, list]] = {}

    def _buffers(self, n: int):
        """Per-layer outputs zᵢ/hᵢ (n, fan_out) and back-propagated δ (n, fan_in), reused every step."""
        if n not in self._batch_buffers:
            outputs = [np.empty((n, w.shape[1]), self.dtype) for w in self.weights]
            deltas = [np.empty((n, w.shape[0]), self.dtype) for w in self.weights]
            self._batch_buffers[n] = (outputs, deltas)
        return self._batch_buffers[n]

    def prepare(self, x: np.ndarray, y: np.ndarray):
        return x, y

    def __call__(self, x: np.ndarray, y: np.ndarray) -> float:
        with np.errstate(over="ignore"):       # e^{-z} = inf for z < -88 gives σ = 0, as it should
            return self._step(x, y)

    def _step(self, x: np.ndarray, y: np.ndarray) -> float:
        n = x.shape[0]
        outputs, deltas = self._buffers(n)
        last = len(self.weights) - 1
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = np.matmul(h, w, out=outputs[i])
            z += b
            if i < last:                       # σ(z) = 1 / (1 + e^{-z}), in place
                np.negative(z, out=z)
                np.exp(z, out=z)
                z += 1
                np.reciprocal(z, out=z)
            h = z
        rows = np.arange(n)
        logits = h
        logits -= logits.max(axis=1, keepdims=True)
        picked = logits[rows, y]
        np.exp(logits, out=logits)
        total = logits.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(total[:, 0]) - picked))
        delta = logits
        delta /= total                          # softmax
        delta[rows, y] -= 1
        delta *= self.dtype.type(1.0 / n)
        for i in range(last, -1, -1):
            w, step_w = self.weights[i], self.weight_steps[i]
            h_prev = outputs[i - 1] if i else x
            if i:                               # δ for the layer below, with the weights before the update
                below = np.matmul(delta, w.T, out=deltas[i])
            delta *= self.lr
            np.matmul(h_prev.T, delta, out=step_w)
            w -= step_w
            self.biases[i] -= delta.sum(axis=0)
            if i:
                slope = 1 - h_prev
                slope *= h_prev
                below *= slope
                delta = below
        return loss

    def parameters(self) -> list[np.ndarray]:
        """[W₁, b₁, W₂, ...] as ndarrays, W laid out (fan_in, fan_out)."""
        return [p for pair in zip(self.weights, self.biases) for p in pair]
