"""Fit a small tanh MLP to a toy 2-D problem (two interleaved moons), PyTorch style.

    python examples/fit_mlp.py
"""
import os
import tempfile

import numpy as np

import minidl as mdl
from minidl import nn, optim


def two_moons(n, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper[:, None], np.c_[np.cos(t), np.sin(t)], np.c_[1 - np.cos(t), 0.5 - np.sin(t)])
    x += noise * rng.standard_normal((n, 2))
    return x.astype(np.float32), upper.astype(np.int64)


mdl.manual_seed(0)
x, y = two_moons(512)
model = nn.MLP([2, 32, 32, 2], activation="tanh", init="xavier_uniform")
optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
loss_fn = nn.CrossEntropyLoss()
print(model)

rng = np.random.default_rng(1)
for epoch in range(1, 61):
    perm = rng.permutation(len(x))
    for i in range(0, len(x), 32):
        idx = perm[i:i + 32]
        optimizer.zero_grad()
        loss = loss_fn(model(mdl.Tensor(x[idx])), y[idx])
        loss.backward()
        optimizer.step()
    if epoch % 10 == 0:
        with mdl.no_grad():
            logits = model(mdl.Tensor(x))
        acc = np.mean(logits.numpy().argmax(1) == y)
        print(f"epoch {epoch:3d}  loss {loss_fn(logits, y).item():.4f}  train accuracy {acc:.3f}")

with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "fit_mlp.npz")
    mdl.save(model.state_dict(), path)                # .npz, written atomically, no pickle
    restored = nn.MLP([2, 32, 32, 2], activation="tanh")
    restored.load_state_dict(mdl.load(path))
print("restored model agrees:", np.allclose(restored(mdl.Tensor(x)).numpy(), model(mdl.Tensor(x)).numpy()))
