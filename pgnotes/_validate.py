"""Argument checks shared by every public module: the one place that decides what is refused.

The rule: a wrong *type* raises ``TypeError`` (a string where a number belongs, a boolean or
complex array where real numbers belong, an object of the wrong class), a wrong *value* raises
``ValueError`` (a shape, a NaN, a number out of range). Every message names the argument and
what it should be.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "is_int",
    "as_count",
    "as_real",
    "real_array",
    "check_rng",
    "check_token_mdp",
    "check_token_batch",
    "check_kl_coefficient",
]


def is_int(v) -> bool:
    """Whether ``v`` is a Python or NumPy integer (booleans are not)."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def as_count(k, name: str, minimum: int = 0, maximum: int = 10**7) -> int:
    """``k`` as a Python int in ``[minimum, maximum]``; ``TypeError`` if not an integer, else ``ValueError``."""
    if not is_int(k):
        raise TypeError(f"{name} must be an integer, got {k!r}")
    k = int(k)
    if not (minimum <= k <= maximum):
        raise ValueError(f"{name} must lie in [{minimum}, {maximum}], got {k}")
    return k


def as_real(x, name: str, *, low: float = -np.inf, high: float = np.inf,
            low_open: bool = False, high_open: bool = False) -> float:
    """``x`` as a finite Python float in the interval from ``low`` to ``high`` (open ends as asked).

    ``TypeError`` unless ``x`` is a real number (``bool`` and strings are not); ``ValueError`` if it
    is NaN, infinite or outside the interval.
    """
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {x!r}")
    x = float(x)
    below = x <= low if low_open else x < low
    above = x >= high if high_open else x > high
    if not np.isfinite(x) or below or above:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be a finite number in {interval}, got {x}")
    return x


def real_array(x, name: str, *, shape: tuple | None = None, finite: bool = True,
               allow_complex: bool = False) -> np.ndarray:
    """``x`` as a float array; the one check for "an array of real numbers".

    ``TypeError`` if ``x`` holds booleans, complex numbers or non-numbers; ``ValueError`` if it
    cannot be read as an array (ragged), has another ``shape`` than asked, or (``finite``) holds
    NaN or inf. With ``allow_complex`` (parameters ``θ``, which complex-step checks perturb) a
    complex array is accepted and returned as complex.
    """
    try:
        a = np.asarray(x)
    except Exception as exc:  # ragged nested lists, for instance
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number) or (np.iscomplexobj(a) and not allow_complex):
        raise TypeError(f"{name} must be an array of real numbers, got dtype {a.dtype}")
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {a.shape}")
    a = a.astype(complex if np.iscomplexobj(a) else float)
    if finite and not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def check_rng(rng) -> np.random.Generator:
    """``rng`` itself if it is a ``numpy.random.Generator``, else ``TypeError``: randomness is always passed in."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            "rng must be a seeded numpy.random.Generator, e.g. np.random.default_rng(2024); "
            f"got {type(rng).__name__}"
        )
    return rng


def check_token_mdp(tmdp):
    """``tmdp`` itself if it is a :class:`~pgnotes.tokens.TokenMDP`, else ``TypeError``."""
    from .tokens.mdp import TokenMDP  # here, not at the top: pgnotes.tokens imports this module

    if not isinstance(tmdp, TokenMDP):
        raise TypeError(f"tmdp must be a pgnotes.tokens.TokenMDP, got {type(tmdp).__name__}")
    return tmdp


def check_token_batch(tmdp, batch):
    """``batch`` itself if it is a :class:`~pgnotes.tokens.TokenBatch` (of ``tmdp``'s shape unless ``tmdp`` is None).

    ``TypeError`` for another object, ``ValueError`` if its length ``L`` or its prefixes do not
    belong to ``tmdp``.
    """
    from .tokens.batches import TokenBatch

    if not isinstance(batch, TokenBatch):
        raise TypeError(f"batch must be a pgnotes.tokens.TokenBatch, got {type(batch).__name__}")
    if tmdp is not None and (batch.tokens.shape[1] != tmdp.max_len or batch.prefixes.max(initial=0) > tmdp.n_prefixes):
        raise ValueError("batch does not come from this TokenMDP (its length L or its prefixes do not match)")
    return batch


def check_kl_coefficient(β, θ_ref) -> float:
    """``β`` as a float ≥ 0, with ``θ_ref`` required when ``β > 0``."""
    β = as_real(β, "β (the KL coefficient)", low=0.0)
    if β > 0 and θ_ref is None:
        raise ValueError("a KL penalty β > 0 needs the reference parameters θ_ref")
    return β
