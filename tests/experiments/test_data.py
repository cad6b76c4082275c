"""The study's data choice: Fashion-MNIST when found, else Shapeset-3x2, with the reason recorded."""
import numpy as np
import pytest

from minidl.data import datasets
from minidl.experiments.data import VALIDATION_SIZE, load_study_data


def test_auto_falls_back_to_shapeset_and_says_why(monkeypatch):
    def missing(*args, **kwargs):
        raise datasets.DatasetNotFoundError("fashion-mnist not found; looked in /nowhere")

    monkeypatch.setattr(datasets, "load_fashion_mnist", missing)
    data = load_study_data("auto", train_examples=200)
    assert data.name == "shapeset" and data.n_classes == 9
    assert "Fashion-MNIST was not found" in data.reason and "/nowhere" in data.reason
    assert data.x_train.shape == (200, 1024) and data.x_valid.shape == (VALIDATION_SIZE, 1024)
    assert data.x_train.dtype == np.float32 and 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert data.majority_error == pytest.approx(1 - np.mean(data.y_test == np.bincount(data.y_train).argmax()))


def test_explicit_missing_dataset_raises(tmp_path):
    with pytest.raises(datasets.DatasetNotFoundError):      # an empty folder: no silent fallback
        load_study_data("mnist", data_dir=tmp_path / "empty")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_study_data("cifar")
