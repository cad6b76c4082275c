"""The deep nets of the study: `depth` hidden layers of `width` units, a softmax output layer, zero biases.

All layers, the output layer included, are initialized with the same scheme, as in the paper.
"""
from __future__ import annotations

from minidl import init
from minidl.diagnostics import LayerProbe


def layer_sizes(n_inputs: int, depth: int, width: int, n_classes: int) -> list[int]:
    return [n_inputs] + [width] * depth + [n_classes]


def build_network(n_inputs: int, depth: int, width: int, n_classes: int, activation: str, scheme: str,
                  seed: int):
    """(model, probe): an `nn.MLP` (Linear/activation pairs, logits out) and a LayerProbe over its layers.

    The weights come from a generator of the net's own, PCG64(seed) (the stream `manual_seed(seed)` would
    give), so the same seed gives the same weights and nets built at once in threads do not race on
    minidl's global generator, which is left alone.
    """
    import numpy as np

    from minidl import nn

    weights = np.random.Generator(np.random.PCG64(int(seed)))
    model = nn.MLP(layer_sizes(n_inputs, depth, width, n_classes), activation=activation, init=scheme,
                   generator=weights)
    return model, LayerProbe(model.linears, list(model.activations) + [None])


def weight_variances(sizes: list[int], scheme: str) -> list[float]:
    """Var(W^i) of every layer (hidden and output) under `scheme` (minidl.init's registry)."""
    variance = init.get(scheme).variance
    return [variance(a, b) for a, b in zip(sizes[:-1], sizes[1:])]


def build_batchnorm_network(n_inputs: int, depth: int, width: int, n_classes: int, activation: str, scheme: str,
                            seed: int):
    """(model, probe): as `build_network`, with a `BatchNorm1d` between each hidden Linear and its
    activation (Ioffe & Szegedy 2015: normalize the pre-activations); the probe records the activations."""
    import numpy as np

    from minidl import nn
    from minidl.nn.activation import make_activation

    weights = np.random.Generator(np.random.PCG64(int(seed)))
    sizes = layer_sizes(n_inputs, depth, width, n_classes)
    linears = [nn.Linear(a, b, init=scheme, generator=weights) for a, b in zip(sizes[:-1], sizes[1:])]
    activations, stack = [], []
    for linear in linears[:-1]:
        activations.append(make_activation(activation))
        stack += [linear, nn.BatchNorm1d(linear.weight.shape[1]), activations[-1]]
    model = nn.Sequential(*stack, linears[-1])
    return model, LayerProbe(linears, activations + [None])
