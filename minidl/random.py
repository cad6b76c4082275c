"""The one random number generator every random draw in minidl comes from.

``manual_seed(seed)`` reseeds it *in place*, so a Generator obtained from ``generator()`` earlier
follows the new seed too. Anything that draws randomness takes an explicit ``numpy.random.Generator``
or falls back to this one.
"""
from __future__ import annotations

import numpy as np

__all__ = ["manual_seed", "generator", "initial_seed"]

_GENERATOR = np.random.Generator(np.random.PCG64())
_SEED: int | None = None


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed minidl's global generator (PCG64) with a non-negative integer; returns the generator."""
    global _SEED
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed expects an integer seed, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"manual_seed expects a non-negative seed, got {seed}")
    _GENERATOR.bit_generator.state = np.random.PCG64(int(seed)).state
    _SEED = int(seed)
    return _GENERATOR


def generator() -> np.random.Generator:
    """The global ``numpy.random.Generator`` that ``manual_seed`` reseeds."""
    return _GENERATOR


def initial_seed() -> int | None:
    """The last seed given to ``manual_seed`` (None if never seeded: fresh OS entropy)."""
    return _SEED
