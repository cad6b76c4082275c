"""A small MLP learns a separable toy problem to 100% training accuracy (the whole stack at once)."""
import numpy as np
import pytest

import minidl as mdl
from minidl import nn, optim


def four_blobs(n_per_class=50, seed=0):
    """Four well-separated Gaussian blobs at the corners of a square, labels 0–3."""
    rng = np.random.default_rng(seed)
    centers = np.array([[2, 2], [-2, 2], [-2, -2], [2, -2]], dtype=np.float32)
    x = np.concatenate([c + 0.4 * rng.standard_normal((n_per_class, 2)) for c in centers]).astype(np.float32)
    y = np.repeat(np.arange(4), n_per_class)
    return x, y


@pytest.mark.parametrize("activation,opt", [("sigmoid", "sgd"), ("tanh", "sgd"), ("relu", "adam"),
                                            ("softsign", "adam")])
def test_mlp_fits_separable_blobs(activation, opt):
    mdl.manual_seed(0)
    x, y = four_blobs()
    model = nn.MLP([2, 16, 16, 4], activation=activation)
    optimizer = (optim.SGD(model.parameters(), lr=0.5, momentum=0.9) if opt == "sgd"
                 else optim.Adam(model.parameters(), lr=0.02))
    loss_fn = nn.CrossEntropyLoss()
    order = np.random.default_rng(1)
    first = None
    for epoch in range(40):
        perm = order.permutation(len(x))
        for i in range(0, len(x), 20):
            idx = perm[i:i + 20]
            optimizer.zero_grad()
            loss = loss_fn(model(mdl.Tensor(x[idx])), y[idx])
            loss.backward()
            optimizer.step()
            first = loss.item() if first is None else first
    with mdl.no_grad():
        logits = model(mdl.Tensor(x))
    accuracy = np.mean(logits.data.argmax(axis=1) == y)
    final = loss_fn(logits, y).item()
    assert accuracy == 1.0, f"training accuracy {accuracy}"
    assert final < 0.1 * first, f"loss went from {first} to {final}"
    assert all(p.dtype == np.float32 for p in model.parameters())
