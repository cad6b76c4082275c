"""Optimizers with PyTorch's update rules: SGD (momentum, Nesterov, weight decay), Adam, AdamW, RMSprop,
Adagrad; and ``optim.lr_scheduler`` (StepLR, MultiStepLR, ExponentialLR, LambdaLR, CosineAnnealingLR,
ReduceLROnPlateau)."""
from minidl.optim import lr_scheduler
from minidl.optim.adagrad import Adagrad
from minidl.optim.adam import Adam, AdamW
from minidl.optim.optimizer import Optimizer
from minidl.optim.rmsprop import RMSprop
from minidl.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler"]
