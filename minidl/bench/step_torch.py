"""The same training step in PyTorch (CPU), written the way its tutorials do: nn.Sequential of
Linear and Sigmoid, nn.CrossEntropyLoss, torch.optim.SGD. Optional: imported only when torch is."""
from __future__ import annotations

import numpy as np
import torch


class TorchStep:
    """One SGD step of the MLP on a batch: ``loss = step(x, y)``."""

    name = "torch"

    def __init__(self, layers, lr: float, threads: int | None = None):
        if threads:
            torch.set_num_threads(threads)
        modules = []
        for i, (w, b) in enumerate(layers):
            linear = torch.nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():               # torch stores W as (fan_out, fan_in)
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
                linear.bias.copy_(torch.from_numpy(b))
            modules.append(linear)
            if i < len(layers) - 1:
                modules.append(torch.nn.Sigmoid())
        self.model = torch.nn.Sequential(*modules)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr)

    def prepare(self, x: np.ndarray, y: np.ndarray):
        return torch.from_numpy(x), torch.from_numpy(y)

    def __call__(self, x, y):
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return loss

    def parameters(self) -> list[np.ndarray]:
        """[W₁, b₁, W₂, ...] as ndarrays, W laid out (fan_in, fan_out) like the others."""
        out = []
        for module in self.model:
            if isinstance(module, torch.nn.Linear):
                out += [module.weight.detach().numpy().T, module.bias.detach().numpy()]
        return out
