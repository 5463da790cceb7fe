"""Argument checks shared by the public modules."""

from __future__ import annotations

import numpy as np


def as_count(k, name: str, minimum: int = 0, maximum: int = 10**7) -> int:
    """``k`` as a Python int in ``[minimum, maximum]``, else ``ValueError``."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {k!r}")
    k = int(k)
    if not (minimum <= k <= maximum):
        raise ValueError(f"{name} must lie in [{minimum}, {maximum}], got {k}")
    return k


def check_rng(rng) -> np.random.Generator:
    """``rng`` itself if it is a ``numpy.random.Generator``, else ``TypeError``: randomness is always passed in."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            "rng must be a seeded numpy.random.Generator, e.g. np.random.default_rng(2024); "
            f"got {type(rng).__name__}"
        )
    return rng
