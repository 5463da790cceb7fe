"""Shared strategies: random MDPs and policies drawn through hypothesis."""

import numpy as np
import pytest
from hypothesis import strategies as st

import pgnotes as pg

GAMMAS = [0.0, 0.5, 0.9, 0.99]


@st.composite
def mdp_and_θ(draw, *, log_linear=None, gammas=GAMMAS, episodic_gamma_one=True):
    """A random MDP (continuing with γ in ``gammas``, or episodic with γ = 1) and a θ."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    S = draw(st.integers(1, 6))
    A = draw(st.integers(1, 4))
    options = [(g, 0) for g in gammas] + ([(1.0, 1)] if episodic_gamma_one else [])
    gamma, n_terminal = draw(st.sampled_from(options))
    if n_terminal:
        S = max(S, 2)
    mdp = pg.envs.random_mdp(S, A, gamma, rng, n_terminal=n_terminal)
    loglin = draw(st.booleans()) if log_linear is None else log_linear
    scale = draw(st.sampled_from([0.1, 1.0, 3.0]))
    if loglin:
        d = draw(st.integers(1, 5))
        φ = pg.envs.random_features(S, A, d, rng)
        return mdp, scale * rng.standard_normal(d), φ
    return mdp, scale * rng.standard_normal((S, A)), None


def episodic_case(seed: int, S: int, gamma: float, p_end: float, A: int = 2):
    """A random episodic MDP (one terminal state), a tabular θ drawn after it, and the generator."""
    rng = np.random.default_rng(seed)
    mdp = pg.envs.random_mdp(S, A, gamma, rng, n_terminal=1, p_end=p_end)
    return mdp, rng.standard_normal((S, A)), rng


@pytest.fixture
def small_episodic():
    return episodic_case(7, 4, 0.9, 0.3)[:2]
