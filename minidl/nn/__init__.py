"""Neural-network building blocks with PyTorch's names: Module, Linear, activations, normalization,
dropout, containers, losses, MLP, and ``nn.utils.clip_grad_norm_``."""
from minidl.nn import functional, utils
from minidl.nn.activation import (ELU, GELU, Activation, Identity, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax,
                                  Softsign, Tanh, make_activation)
from minidl.nn.container import MLP, ModuleList, Sequential
from minidl.nn.dropout import Dropout
from minidl.nn.flatten import Flatten
from minidl.nn.linear import Linear
from minidl.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from minidl.nn.module import Module, Parameter
from minidl.nn.normalization import BatchNorm1d, LayerNorm

__all__ = ["functional", "utils", "Module", "Parameter", "Linear", "Sequential", "ModuleList", "MLP",
           "Activation", "make_activation", "Sigmoid", "Tanh", "ReLU", "Softsign", "LeakyReLU", "ELU", "GELU",
           "Identity", "Softmax", "LogSoftmax", "Flatten", "Dropout", "BatchNorm1d", "LayerNorm", "CrossEntropyLoss",
           "NLLLoss", "MSELoss", "BCEWithLogitsLoss"]
