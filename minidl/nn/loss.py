"""Loss modules wrapping ``nn.functional``."""
from __future__ import annotations

from minidl.nn import functional as F
from minidl.nn.module import Module

__all__ = ["CrossEntropyLoss", "MSELoss"]


class CrossEntropyLoss(Module):
    """Mean of -log softmax(logits)[target] over the batch; targets are integer class indices."""

    def forward(self, logits, targets):
        return F.cross_entropy(logits, targets)


class MSELoss(Module):
    """mean((input - target)²)."""

    def forward(self, input, target):
        return F.mse_loss(input, target)
