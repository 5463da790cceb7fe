"""Termination at γ = 1: structural (some state never ends) and numerical (it ends with a
probability that rounds to zero). Book: episodes and γ = 1 (``ep-corridor``).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.linalg import LinAlgWarning, lu_factor, lu_solve

from ..mdp import TabularMDP

__all__ = ["MAX_EPISODE_LENGTH"]


def _never_terminating(mdp: TabularMDP, P_π: np.ndarray) -> np.ndarray:
    """States from which no terminal state is reachable under ``P_π`` (backward search)."""
    reach = mdp.terminal.copy()
    support = np.abs(P_π) > 0
    while True:
        grow = ~reach & (support[:, reach].any(axis=1))
        if not grow.any():
            return np.flatnonzero(~reach)
        reach |= grow


def _listed(states: np.ndarray) -> str:
    return ", ".join(str(int(s)) for s in states[:10]) + (" …" if len(states) > 10 else "")


def _check_termination(mdp: TabularMDP, P_π: np.ndarray) -> None:
    """With γ = 1, every non-terminal state must reach a terminal one under ``P_π``."""
    stuck = _never_terminating(mdp, P_π)
    if stuck.size:
        raise ValueError(
            f"gamma = 1 but the policy does not reach a terminal state with probability 1 "
            f"from {len(stuck)} state(s) ({_listed(stuck)}); values are infinite there. "
            "Use gamma < 1 or make those states able to terminate."
        )


#: At γ = 1, an expected episode length ``L`` (in steps, worst start state) beyond which the
#: termination probability is numerically zero: ``1 - P_π`` cancels and values carry a
#: relative rounding error of about ``L · 2.2e-16``, 1e-3 at this bound.
MAX_EPISODE_LENGTH = float(1e-3 / np.finfo(float).eps)


def _factor(M: np.ndarray, undiscounted: bool) -> tuple:
    """LU of ``M = I - γ P_π``; with ``γ = 1``, refuse a numerically non-terminating policy."""
    if not undiscounted:
        return lu_factor(M, check_finite=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LinAlgWarning)
        try:
            lu = lu_factor(M, check_finite=False)
            with np.errstate(all="ignore"):
                L = lu_solve(lu, np.ones(M.shape[0], dtype=M.dtype), check_finite=False)
        except (LinAlgWarning, np.linalg.LinAlgError):
            L = np.array([np.inf])
    worst = float(np.max(np.abs(L))) if np.all(np.isfinite(L)) else np.inf
    if not worst <= MAX_EPISODE_LENGTH:
        raise ValueError(
            "gamma = 1 but the policy's termination probability is numerically zero: the "
            f"expected episode length is {worst:.3g} steps (limit {MAX_EPISODE_LENGTH:.3g}), "
            "so 1 - P_π cancels in floating point and V, η would be inf/nan or wrong. "
            "Use a less deterministic θ (smaller logits) or gamma < 1."
        )
    return lu
