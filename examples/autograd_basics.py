"""Autograd in a few lines: build an expression, call backward(), read .grad.

    python examples/autograd_basics.py
"""
import numpy as np

import minidl as mdl

# Leaves: tensors we want gradients for. Python numbers/lists become float32.
x = mdl.tensor([1.0, 2.0, 3.0], requires_grad=True)
w = mdl.tensor([[0.5], [-1.0], [2.0]], requires_grad=True)

# y = sigmoid(x @ w) — matmul and sigmoid run in minidl's compiled core.
y = (x.reshape(1, 3) @ w).sigmoid()
y.backward()                                   # one element: no grad argument needed
s = y.item()
print(f"y = {s:.4f}")
print("dy/dw =", w.grad.ravel(), " (expected x·y(1-y) =", np.array([1, 2, 3]) * s * (1 - s), ")")

# A node used twice: b = a + a, c = b + b  =>  dc/da = 4.
a = mdl.tensor(2.0, requires_grad=True)
b = a + a
c = b + b
c.backward()
print("dc/da =", a.grad)

# Gradients accumulate across backward calls, as in PyTorch; reset with .grad = None (or zero_grad).
(a * 3).backward()
print("after another backward, a.grad =", a.grad, "(4 + 3)")
a.grad = None

# Broadcasting: the gradient is summed back to each input's shape.
m = mdl.tensor(np.ones((4, 3)), requires_grad=True)
bias = mdl.tensor([0.1, 0.2, 0.3], requires_grad=True)
((m + bias) ** 2).mean().backward()
print("bias.grad shape:", bias.grad.shape, "values:", bias.grad)

# Inside no_grad nothing is recorded (evaluation, manual parameter updates).
with mdl.no_grad():
    z = x * 2
print("recorded under no_grad?", z.requires_grad)

# Peek at an intermediate gradient: retain_grad() or a hook.
h = x.tanh()
h.retain_grad()
h.register_hook(lambda g: print("hook sees dL/dh =", g))
(h * h).sum().backward()
print("h.grad =", h.grad)
