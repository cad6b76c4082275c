"""minidl: a tiny deep-learning framework with a Cython core (Glorot & Bengio 2010, reproduced).

    import minidl as mdl
    from minidl import nn, optim, init
"""
from minidl.random import manual_seed
from minidl.allocator import tune_malloc
from minidl.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from minidl.tensor import Tensor, tensor
from minidl.factories import arange, ones, rand, randn, zeros
from minidl.serialization import load, save
from minidl import ops
from minidl import in_place_methods     # attaches add_, zero_, copy_, ... to Tensor
from minidl.ops import cat, stack, where
from minidl import init
from minidl import nn
from minidl import optim
from minidl import random

__version__ = "0.1.0"

__all__ = ["Tensor", "tensor", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "manual_seed", "tune_malloc", "save", "load", "nn", "optim", "init", "random", "ops", "in_place_methods",
           "zeros", "ones", "rand", "randn", "arange", "cat", "stack", "where"]
