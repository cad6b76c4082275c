"""Optimizers with PyTorch's update rules: SGD (momentum, Nesterov, weight decay), Adam, AdamW; and
``optim.lr_scheduler`` (StepLR, CosineAnnealingLR)."""
from minidl.optim import lr_scheduler
from minidl.optim.adam import Adam, AdamW
from minidl.optim.optimizer import Optimizer
from minidl.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]
