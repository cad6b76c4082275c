"""Neural-network building blocks with PyTorch's names: Module, Linear, activations, losses, MLP."""
from minidl.nn import functional, utils
from minidl.nn.activation import Activation, Identity, ReLU, Sigmoid, Softsign, Tanh, make_activation
from minidl.nn.container import MLP, Sequential
from minidl.nn.linear import Linear
from minidl.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from minidl.nn.module import Module, Parameter

__all__ = ["functional", "utils", "Module", "Parameter", "Linear", "Sequential", "MLP", "Activation",
           "make_activation", "Sigmoid", "Tanh", "ReLU", "Softsign", "Identity", "CrossEntropyLoss", "NLLLoss",
           "MSELoss", "BCEWithLogitsLoss"]
