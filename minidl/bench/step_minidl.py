"""The training step with minidl's public API, as a user writes it (nn.MLP, cross_entropy, optim.SGD)."""
from __future__ import annotations

import numpy as np

import minidl as mdl
from minidl import _core, nn, optim
from minidl.nn import functional as F


class MinidlStep:
    """One SGD step of the MLP on a batch: ``loss = step(x, y)``."""

    name = "minidl"

    def __init__(self, layers, lr: float, threads: int | None = None):
        if threads:
            _core.set_num_threads(threads)
        mdl.tune_malloc()           # as the `minidl` command does for its own process (minidl/allocator.py)
        sizes = [layers[0][0].shape[0]] + [w.shape[1] for w, _ in layers]
        self.model = nn.MLP(sizes, activation="sigmoid")
        state = {}
        for linear_index, (w, b) in zip(range(0, 2 * len(layers), 2), layers):
            state[f"{linear_index}.weight"], state[f"{linear_index}.bias"] = w, b
        self.model.load_state_dict(state)
        self.optimizer = optim.SGD(self.model.parameters(), lr=lr)

    def prepare(self, x: np.ndarray, y: np.ndarray):
        return mdl.Tensor(x), y

    def __call__(self, x, y):
        """The plain loop of README's API screen (step_torch.py writes PyTorch's the same way)."""
        self.optimizer.zero_grad()
        loss = F.cross_entropy(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return loss

    @staticmethod
    def contention_backoffs() -> int:
        """How many times the kernels have backed off to one thread (a busy machine: minidl/_core/csrc/dispatch.c)."""
        return _core.contention_backoffs()

    def parameters(self) -> list[np.ndarray]:
        """[W₁, b₁, W₂, ...] as ndarrays, W laid out (fan_in, fan_out)."""
        return [p.data for p in self.model.parameters()]
