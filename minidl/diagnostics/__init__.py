"""Diagnostics: observe a network's layers during forward and backward passes (Glorot & Bengio 2010).

- `LayerProbe`: hooks that record per-layer pre-activations, activations, back-propagated gradients
  dC/ds and weight gradients.
- `summarize`, `histogram`, `symmetric_range`, `ratio_per_layer`: the statistics the paper plots.
- `mean_singular_value`, `singular_values`, `activation_derivative`: the layer Jacobian diag(f'(s)) W^T.
- `predict_forward`, `predict_backward`, `predict_weight_gradient`: the variance recursions of the derivation.
"""
from minidl.diagnostics.jacobian import (QUARTER_CIRCLE_MEAN, activation_derivative, layer_jacobian,
                                         mean_singular_value, singular_values)
from minidl.diagnostics.probe import LayerProbe, activation_name
from minidl.diagnostics.statistics import PERCENTILES, histogram, ratio_per_layer, summarize, symmetric_range
from minidl.diagnostics.theory import (activation_moments, predict_backward, predict_forward,
                                       predict_weight_gradient)

__all__ = [
    "LayerProbe", "activation_name", "summarize", "histogram", "symmetric_range", "ratio_per_layer",
    "PERCENTILES", "activation_derivative", "layer_jacobian", "singular_values", "mean_singular_value",
    "QUARTER_CIRCLE_MEAN", "activation_moments", "predict_forward", "predict_backward",
    "predict_weight_gradient",
]
