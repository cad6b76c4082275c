"""Central-difference gradient checking in float64, shared by the framework tests."""
from __future__ import annotations

import numpy as np

import minidl as mdl


def numerical_vjp(fn, arrays, cotangent, eps=1e-6):
    """d/dx_k of sum(fn(*arrays) * cotangent) by central differences, for every input array."""
    grads = []
    for k, x in enumerate(arrays):
        g = np.zeros_like(x)
        flat = x.reshape(-1)              # a view: writes reach arrays[k]
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            plus = np.sum(_eval(fn, arrays) * cotangent)
            flat[i] = old - eps
            minus = np.sum(_eval(fn, arrays) * cotangent)
            flat[i] = old
            g.reshape(-1)[i] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def _eval(fn, arrays):
    with mdl.no_grad():
        return np.asarray(fn(*[mdl.Tensor(a) for a in arrays]).data, dtype=np.float64)


def check_gradients(fn, *arrays, rtol=1e-5, atol=1e-7, seed=0):
    """Compare autograd's gradients of fn (Tensors -> Tensor) with central differences.

    A random cotangent makes this check a full vector-Jacobian product, not only the gradient of a sum.
    Returns the analytic gradients.
    """
    # autograd sees the inputs as given (strided views stay views); differences use C-ordered copies
    tensors = [mdl.Tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    arrays = [np.array(a, dtype=np.float64, order="C") for a in arrays]
    out = fn(*tensors)
    rng = np.random.default_rng(seed)
    cotangent = rng.standard_normal(out.shape)
    out.backward(cotangent)
    expected = numerical_vjp(fn, arrays, cotangent)
    for k, (t, want) in enumerate(zip(tensors, expected)):
        assert t.grad is not None, f"input {k} received no gradient"
        assert isinstance(t.grad, np.ndarray), f"input {k}: .grad is {type(t.grad).__name__}"
        assert t.grad.shape == t.shape, f"input {k}: grad shape {t.grad.shape} != input shape {t.shape}"
        np.testing.assert_allclose(t.grad, want, rtol=rtol, atol=atol, err_msg=f"input {k}")
    return [t.grad for t in tensors]
