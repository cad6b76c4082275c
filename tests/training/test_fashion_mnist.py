"""Integration: a short training run on the real Fashion-MNIST files (Debian's dataset-fashion-mnist)."""
import numpy as np
import pytest

import minidl as mdl
from minidl import nn, optim
from minidl.data import ArrayDataset, DataLoader, DatasetNotFoundError, find_dataset, load_fashion_mnist
from minidl.training import Trainer


@pytest.fixture(scope="module")
def fashion():
    try:
        find_dataset("fashion-mnist", "train")
        find_dataset("fashion-mnist", "test")
    except DatasetNotFoundError as error:
        pytest.skip(f"Fashion-MNIST files are absent (install Debian's dataset-fashion-mnist or set "
                    f"$MINIDL_DATA): {error}")
    return load_fashion_mnist(split="train"), load_fashion_mnist(split="test")


def test_short_run_learns(fashion, tmp_path):
    (train_x, train_y), (test_x, test_y) = fashion
    mdl.manual_seed(0)
    train = ArrayDataset(train_x, train_y).subset(np.arange(12_000))
    model = nn.MLP([784, 64, 10], activation="relu", init="xavier_uniform")
    trainer = Trainer(model, optim.Adam(model.parameters(), lr=2e-3), DataLoader(train, 64, seed=0),
                      eval_loaders={"test": DataLoader(ArrayDataset(test_x, test_y), 1000, shuffle=False)},
                      out_dir=tmp_path, progress=False, log=None)
    history = trainer.fit(epochs=1)
    # An MLP reaches ~80% accuracy on Fashion-MNIST after one pass over 12k images; chance is 90% error.
    assert history[-1]["test_error"] < 0.25
    assert (tmp_path / "model.npz").exists()
