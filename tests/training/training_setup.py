"""Small, fast training setups shared by the training tests (a plain module: no conftest name clashes)."""
import numpy as np

import minidl as mdl
from minidl import nn, optim
from minidl.data import ArrayDataset, DataLoader


def make_data(n=240, features=12, classes=3, seed=0):
    """A learnable problem: class = argmax of a fixed linear map of uint8 'images'."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, features), dtype=np.uint8)
    projection = rng.standard_normal((features, classes))
    labels = (images.astype(np.float64) / 255 - 0.5) @ projection
    return ArrayDataset(images, labels.argmax(axis=1).astype(np.int64))


def make_setup(seed=0, optimizer="adam", batch_size=32, lr=None):
    """(model, optimizer, train_loader, eval_loaders) built from `seed` the same way every time."""
    mdl.manual_seed(seed)
    dataset = make_data(seed=seed)
    train, test = dataset.subset(np.arange(200)), dataset.subset(np.arange(200, 240))
    model = nn.MLP([12, 16, 3], activation="tanh")
    if optimizer == "adam":
        opt = optim.Adam(model.parameters(), lr=lr or 0.01)
    else:
        opt = optim.SGD(model.parameters(), lr=lr or 0.1, momentum=0.9)
    loader = DataLoader(train, batch_size=batch_size, seed=seed)   # 200/32: 7 batches, last one partial
    return model, opt, loader, {"test": DataLoader(test, 100, shuffle=False)}

