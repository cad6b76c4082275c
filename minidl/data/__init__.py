"""Data for minidl: IDX files, MNIST/Fashion-MNIST, the Shapeset-3x2 generator, minibatch loading.

    from minidl.data import load_fashion_mnist, shapeset, ArrayDataset, DataLoader, train_val_split
    images, labels = load_fashion_mnist(split="train")       # uint8 (60000, 28, 28), int64 (60000,)
    train, val = train_val_split(ArrayDataset(images, labels), val_size=10_000, seed=0)
    for x, y in DataLoader(train, batch_size=64, seed=0):    # x float32 (64, 784) in [0, 1], y int64
        ...
"""
from minidl.data.datasets import (DatasetNotFoundError, dataset_files, find_dataset, fingerprint, load_fashion_mnist,
                                  load_mnist, load_split)
from minidl.data.idx import IDXFormatError, read_idx, write_idx
from minidl.data.loader import ArrayDataset, DataLoader, train_val_split
from minidl.data.shapeset import SHAPESET_CLASS_PROBABILITIES, SHAPESET_CLASSES, shapeset

__all__ = [
    "read_idx", "write_idx", "IDXFormatError",
    "load_mnist", "load_fashion_mnist", "find_dataset", "DatasetNotFoundError", "dataset_files", "load_split",
    "fingerprint",
    "shapeset", "SHAPESET_CLASSES", "SHAPESET_CLASS_PROBABILITIES",
    "ArrayDataset", "DataLoader", "train_val_split",
]
