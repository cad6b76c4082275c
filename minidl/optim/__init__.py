"""Optimizers with PyTorch's update rules: SGD (momentum, Nesterov, weight decay) and Adam."""
from minidl.optim.adam import Adam
from minidl.optim.optimizer import Optimizer
from minidl.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam"]
