"""Minibatches over in-memory arrays: a dataset view, a train/validation split, a seeded loader.

`ArrayDataset` keeps the images once in memory (uint8 stays uint8); a subset is an index array over the
same arrays, never a copy. Each batch is gathered and scaled to float32 on the fly (uint8 -> x / 255).

`DataLoader` shuffles with a permutation drawn from SeedSequence((seed, epoch)): epoch e's order depends
only on (seed, e), so training can stop anywhere and resume at (epoch, batch) with identical batches.
"""
from __future__ import annotations

import numbers
from typing import Iterator

import numpy as np

from minidl import random

__all__ = ["ArrayDataset", "DataLoader", "train_val_split"]


class ArrayDataset:
    """Images and integer labels held once in memory, optionally restricted to `indices`.

    Args:
        images: (N, ...) uint8 (scaled to [0, 1] per batch) or float array (passed on as float32).
        labels: (N,) integer class indices.
        indices: optional 1-D integer index array selecting the examples of this view.
        flatten: batches come as (B, prod(...)) rows, the layout an MLP takes (default True).
    """

    def __init__(self, images, labels, indices=None, *, flatten: bool = True):
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.ndim < 1 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(f"ArrayDataset: images {images.shape} and labels {labels.shape} must have the "
                             f"same first dimension, labels 1-D")
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(f"ArrayDataset: labels must be integers, got {labels.dtype}")
        if not (images.dtype == np.uint8 or np.issubdtype(images.dtype, np.floating)):
            raise TypeError(f"ArrayDataset: images must be uint8 or floating point, got {images.dtype}")
        if indices is not None:
            indices = np.asarray(indices)
            if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
                raise TypeError(f"ArrayDataset: indices must be a 1-D integer array, got {indices.dtype} "
                                f"of shape {indices.shape}")
            if indices.size and (indices.min() < 0 or indices.max() >= images.shape[0]):
                raise ValueError(f"ArrayDataset: indices must lie in [0, {images.shape[0]})")
        self.images, self.labels, self.indices, self.flatten = images, labels, indices, flatten

    def __len__(self) -> int:
        return self.labels.shape[0] if self.indices is None else self.indices.shape[0]

    @property
    def num_features(self) -> int:
        return int(np.prod(self.images.shape[1:], dtype=np.int64))

    @property
    def num_classes(self) -> int:
        """1 + the largest label in the underlying arrays."""
        return int(self.labels.max()) + 1 if self.labels.size else 0

    def subset(self, indices) -> "ArrayDataset":
        """A view of the examples `indices` selects, sharing the same arrays: positions in this dataset
        (negative ones count from the end) or a boolean mask of its length, as NumPy indexes (a mask was read
        as positions 0 and 1, and 2.9 as 2)."""
        base = self._positions(indices, "subset")
        if self.indices is not None:
            base = self.indices[base]
        return ArrayDataset(self.images, self.labels, base, flatten=self.flatten)

    def _positions(self, selection, func: str) -> np.ndarray:
        """`selection` (integers or a boolean mask) as int64 positions in this dataset; IndexError if it
        selects outside it or holds other numbers."""
        selection = np.asarray(selection)
        if selection.size == 0 and selection.dtype.kind not in "biu":
            selection = selection.astype(np.int64)           # [] is float64 to NumPy
        if selection.ndim != 1 or selection.dtype.kind not in "biu":
            raise IndexError(f"{func}: expected a 1-D array of integer positions or a boolean mask, got "
                             f"{selection.dtype} of shape {selection.shape}")
        try:
            return np.arange(len(self), dtype=np.int64)[selection]
        except IndexError as error:
            raise IndexError(f"{func}: {error} (a dataset of {len(self)} examples)") from None

    def batch(self, positions) -> tuple[np.ndarray, np.ndarray]:
        """(x float32, y int64) for the examples at `positions` (positions in this dataset, or a mask)."""
        positions = np.asarray(positions)
        if positions.dtype.kind != "i":                     # the loader's own int64 batches skip this
            positions = self._positions(positions, "batch")
        rows = positions if self.indices is None else self.indices[positions]
        x = self.images[rows]
        if x.dtype == np.uint8:
            x = x.astype(np.float32)
            x /= np.float32(255.0)      # x * (1/255) is 1 ulp off x / 255 for 126 of the 256 values
        else:
            x = x.astype(np.float32, copy=False)
        if self.flatten:
            x = x.reshape(x.shape[0], self.num_features)    # -1 cannot be solved for 0 rows
        return x, self.labels[rows].astype(np.int64, copy=False)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole dataset as one scaled batch (x float32, y int64)."""
        return self.batch(np.arange(len(self)))


def train_val_split(dataset: ArrayDataset, val_size: int | float,
                    seed: int | None = None) -> tuple[ArrayDataset, ArrayDataset]:
    """Split `dataset` at random into (train, validation) views; `val_size` is a count or a fraction in (0, 1).

    The permutation comes from numpy.random.default_rng(seed); `seed=None` draws one from
    minidl.random.generator(), so `mdl.manual_seed` decides it. No image is copied.
    """
    n = len(dataset)
    if isinstance(val_size, bool) or not isinstance(val_size, (numbers.Integral, numbers.Real)):
        raise TypeError(f"train_val_split: val_size must be a count or a fraction, got {val_size!r}")
    if not isinstance(val_size, numbers.Integral):          # float, np.float32, ...: a fraction
        if not 0.0 < val_size < 1.0:
            raise ValueError(f"train_val_split: a fractional val_size must lie in (0, 1), got {val_size}")
        count = int(round(float(val_size) * n))
    else:
        count = int(val_size)
    if not 0 < count < n:
        raise ValueError(f"train_val_split: validation size {count} must lie in [1, {n - 1}] for {n} examples")
    order = np.random.default_rng(_seed_or_draw(seed)).permutation(n)
    return dataset.subset(np.sort(order[count:])), dataset.subset(np.sort(order[:count]))


def _seed_or_draw(seed: int | None) -> int:
    """`seed` itself, or (None) a seed drawn from minidl's global generator."""
    return int(random.generator().integers(2**31)) if seed is None else seed


class DataLoader:
    """Minibatches (x float32 (B, D), y int64 (B,)) over an ArrayDataset.

    Args:
        dataset: an ArrayDataset (or a pair (images, labels), wrapped in one).
        batch_size: examples per batch.
        shuffle: reshuffle every epoch with a permutation from SeedSequence((seed, epoch)).
        seed: non-negative int seed of the shuffling; None (default) draws one from
            minidl.random.generator(), so `mdl.manual_seed` decides the order (without shuffle: 0, no draw).
        drop_last: drop the final partial batch (default False: keep it).

    Each ``iter()`` gives the batches of epoch `self.epoch` and advances `epoch` by one at once, so a loop
    that stops early still gets a new order next time (PyTorch's DataLoader reshuffles at every ``iter()``);
    `batches(epoch, start)` yields the batches of any epoch from batch index `start` (what resuming needs).
    """

    def __init__(self, dataset, batch_size: int, *, shuffle: bool = True, seed: int | None = None, drop_last: bool = False):
        if isinstance(dataset, tuple):
            if len(dataset) != 2:           # a third item would become ArrayDataset's `indices`: a silent subset
                raise TypeError(f"DataLoader: a tuple dataset must be (images, labels), got {len(dataset)} items")
            dataset = ArrayDataset(*dataset)
        if not isinstance(dataset, ArrayDataset):
            raise TypeError(f"DataLoader: expected an ArrayDataset or (images, labels), got {type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if seed is None and not shuffle:    # no order to draw: leave the global generator as it was, as PyTorch's
            seed = 0                        # SequentialSampler does (a test loader made after the model moved it)
        seed = _seed_or_draw(seed)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"DataLoader: seed must be a non-negative int, got {seed!r}")
        if drop_last and len(dataset) < batch_size:
            raise ValueError(f"DataLoader: drop_last with batch_size {batch_size} > {len(dataset)} examples "
                             f"leaves no batch")
        self.dataset, self.batch_size, self.shuffle = dataset, int(batch_size), shuffle
        self.seed, self.drop_last, self.epoch = int(seed), drop_last, 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The example order of `epoch` (the identity when shuffle is off)."""
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ValueError(f"DataLoader: epoch must be a non-negative int, got {epoch!r}")
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng(np.random.SeedSequence((self.seed, int(epoch)))).permutation(n)

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield the batches of `epoch` from batch index `start` (0 to len(self)) on."""
        if isinstance(start, bool) or not isinstance(start, numbers.Integral) or not 0 <= start <= len(self):
            raise ValueError(f"batches: start must be a batch index from 0 to {len(self)}, got {start!r}")
        order = self.order(epoch)
        for index in range(start, len(self)):
            yield self.dataset.batch(order[index * self.batch_size : (index + 1) * self.batch_size])

    def __iter__(self):
        epoch = self.epoch
        self.epoch = epoch + 1
        return self.batches(epoch)
