"""LayerProbe: watch a feed-forward net's layers during the forward and backward passes.

The instrument behind Glorot & Bengio's Figs. 2-8. For each layer i with s^i = z^{i-1} W^i + b^i and
z^i = f(s^i) it records, through hooks (nothing in the model changes):
    s^i           pre-activation           (forward hook on the Linear module)
    z^i           activation               (forward hook on the activation module)
    dC/ds^i       back-propagated gradient (a gradient hook on the tensor s^i)
    dC/dW^i       weight gradient          (the Linear's weight.grad, read after backward)
Only the last forward/backward pass is kept. Usage:

    probe = LayerProbe.from_modules(list_of_linear_and_activation_modules)
    with probe:
        loss = loss_fn(model(x), y); loss.backward()
    probe.activations[0], probe.pre_activation_grads[-1], probe.weight_grad(2), probe.summary()
"""
from __future__ import annotations

import numpy as np

from minidl import activations
from minidl.diagnostics.statistics import summarize


def _array(value) -> np.ndarray:
    """The ndarray behind a Tensor (or an ndarray itself)."""
    return np.asarray(getattr(value, "data", value))


def activation_name(module) -> str | None:
    """The registry name of an activation module (one whose ``.activation`` is a
    ``minidl.activations.Activation``, as every ``nn`` activation's is); None for any other module."""
    entry = getattr(module, "activation", None)
    return entry.name if isinstance(entry, activations.Activation) else None


def _is_linear(module) -> bool:
    weight = getattr(module, "weight", None)
    return weight is not None and _array(weight).ndim == 2


class LayerProbe:
    """Records per-layer forward values and back-propagated gradients of a stack of layers.

    Args:
        linears: the affine modules in forward order (each has `.weight` of shape (fan_in, fan_out)).
        activations: for each linear, the activation module applied to its output, or None (output layer).
    """

    def __init__(self, linears, activations):
        if len(linears) != len(activations):
            raise ValueError(f"LayerProbe: {len(linears)} linear modules but {len(activations)} activations")
        if not linears:
            raise ValueError("LayerProbe: no layers to observe")
        for module in linears:
            if not _is_linear(module):
                raise TypeError(f"LayerProbe: {type(module).__name__} has no 2-D .weight")
        self.linears = list(linears)
        self.activation_modules = list(activations)
        self.activation_names = [activation_name(a) if a is not None else None for a in activations]
        self._handles = []
        self.clear()

    @classmethod
    def from_modules(cls, modules) -> "LayerProbe":
        """Pair each Linear in `modules` (forward order) with the activation module right after it."""
        modules = list(modules)
        linears, activations = [], []
        for index, module in enumerate(modules):
            if _is_linear(module):
                following = modules[index + 1] if index + 1 < len(modules) else None
                linears.append(module)
                activations.append(following if following is not None and activation_name(following) else None)
        return cls(linears, activations)

    # --- attaching -----------------------------------------------------------------------------
    def attach(self) -> "LayerProbe":
        if self._handles:
            return self
        # One hook per activation module, however many layers it serves: a module reused after several
        # Linears (``act = nn.Tanh()`` twice in a Sequential) fires once per use, and each of its hooks
        # would record every use, leaving the last layer's z in every slot.
        layers_of = {}
        for index, (linear, activation) in enumerate(zip(self.linears, self.activation_modules)):
            self._handles.append(linear.register_forward_hook(self._pre_activation_hook(index)))
            if activation is not None:
                layers_of.setdefault(id(activation), (activation, []))[1].append(index)
        for activation, indices in layers_of.values():
            self._handles.append(activation.register_forward_hook(self._activation_hook(indices)))
        return self

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> "LayerProbe":
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.detach()

    def clear(self) -> None:
        count = len(self.linears)
        self.pre_activations: list = [None] * count
        self.activations: list = [None] * count
        self.pre_activation_grads: list = [None] * count
        self.inputs: list = [None] * count
        self._last_linear = None     # index of the Linear that ran last: whose output an activation sees

    def _pre_activation_hook(self, index: int):
        def hook(module, inputs, output):
            self._last_linear = index
            self.inputs[index] = _array(inputs[0] if isinstance(inputs, (tuple, list)) else inputs)
            self.pre_activations[index] = _array(output)
            self.pre_activation_grads[index] = None
            if getattr(output, "requires_grad", False):
                def grad_hook(grad):
                    self.pre_activation_grads[index] = np.array(_array(grad), copy=True)
                output.register_hook(grad_hook)
        return hook

    def _activation_hook(self, indices: list):
        """Records z into the slot of the layer this call belongs to: the last of `indices` (the layers
        this module serves) at or before the Linear that ran last."""
        def hook(module, inputs, output):
            last = self._last_linear
            index = max((i for i in indices if last is not None and i <= last), default=indices[0])
            self.activations[index] = _array(output)
        return hook

    # --- reading -------------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self.linears)

    def weight(self, index: int) -> np.ndarray:
        return _array(self.linears[index].weight)

    def weight_grad(self, index: int) -> np.ndarray | None:
        grad = getattr(self.linears[index].weight, "grad", None)
        return None if grad is None else _array(grad)

    def activation_derivatives(self, index: int) -> np.ndarray:
        """f'(s^i) for the recorded pre-activations of layer `index` (for the layer Jacobian)."""
        if self.pre_activations[index] is None:
            raise RuntimeError("LayerProbe: no forward pass recorded yet")
        return activations.get(self.activation_names[index] or "identity").derivative(self.pre_activations[index])

    def summary(self) -> list[dict]:
        """Per layer: summaries (see `summarize`) of s, z, dC/ds and dC/dW from the last pass; None if absent."""
        rows = []
        for index in range(self.num_layers):
            weight_grad = self.weight_grad(index)
            rows.append({
                "layer": index + 1,
                "activation": self.activation_names[index],
                "pre_activation": _maybe(summarize, self.pre_activations[index]),
                "activation_values": _maybe(summarize, self.activations[index]),
                "backprop_gradient": _maybe(summarize, self.pre_activation_grads[index]),
                "weight_gradient": _maybe(summarize, weight_grad),
            })
        return rows


def _maybe(function, value):
    return None if value is None else function(value)
