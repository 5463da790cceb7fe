"""Probabilities of paths, written out term by term: routes that use no matrix power,
no recursion and no logarithm, so that the book can check those against them.

- :func:`trajectory_probability` multiplies ``ρ0(s_0) ∏_t π_θ(a_t|s_t) P(s_{t+1}|s_t,a_t)``
  for every trajectory of a batch (derivation A, ``a-Ptau``); it accepts a complex ``θ``, so
  its complex step is ``∇_θ P(τ)`` computed without ``log P`` (``a-logtrick``).
- :func:`k_step_by_paths` lists every path ``s_0, a_0, s_1, …, a_{k-1}, s_k`` of ``k`` steps
  and adds up their probabilities, the ``k``-step transition probabilities
  ``d(s → x; k)`` of derivation B (``b-kstep``) without ``P_π^k``.
"""

from __future__ import annotations

import numpy as np

from .mdp import TabularMDP
from .policy import softmax_policy
from .sampling import Batch

__all__ = ["trajectory_probability", "k_step_by_paths"]

MAX_PATHS = 5_000_000


def trajectory_probability(mdp: TabularMDP, θ, batch: Batch, *, features=None) -> np.ndarray:
    r"""``P(τ|π_θ) = ρ0(s_0) ∏_t π_θ(a_t|s_t) P(s_{t+1}|s_t,a_t)`` for each trajectory.

    The product of eq. ``a-Ptau`` (book: derivation A, step 2), multiplied out with no
    logarithm. Steps after the episode ended (``batch.mask`` False) contribute the factor 1.
    ``θ`` may be complex, so ``pgnotes.reference.complex_step_jacobian`` of this function is
    ``∇_θ P(τ)`` by a route independent of ``trajectories.log_probability`` (eq. ``a-logtrick``).

    Parameters
    ----------
    batch : Batch
        Trajectories, e.g. from ``pgnotes.enumerate_trajectories``.
    mdp : TabularMDP
    θ : array_like
        Policy parameters, real or complex.
    features : array_like, optional
        Features ``φ(s, a)`` of a log-linear policy; tabular if None.

    Returns
    -------
    numpy.ndarray
        Shape ``(batch.n,)``, complex if ``θ`` is.
    """
    if not isinstance(batch, Batch):
        raise TypeError(f"batch must be a pgnotes.Batch, got {type(batch).__name__}")
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"mdp must be a pgnotes.TabularMDP, got {type(mdp).__name__}")
    too_big = (batch.states.max(initial=0) >= mdp.n_states
               or batch.actions.max(initial=0) >= mdp.n_actions)
    if too_big:
        raise ValueError("batch holds states or actions that mdp does not have; "
                         "pass the MDP the batch was drawn from")
    π = softmax_policy(mdp, θ, features=features).probs
    s, a, s_next = batch.states, batch.actions, batch.next_states
    step = π[s, a] * mdp.P[s, a, s_next]
    step = np.where(batch.mask, step, 1.0)
    return mdp.rho0[s[:, 0]] * step.prod(axis=1)


def k_step_by_paths(mdp: TabularMDP, θ, k: int, *, features=None) -> np.ndarray:
    r"""``d(s → x; k) = Pr(s_k = x | s_0 = s)`` by listing every path of ``k`` steps.

    Book: derivation B, eq. ``b-kstep``. Each path ``s_0, a_0, s_1, …, a_{k-1}, s_k`` gets the
    probability ``∏_t π_θ(a_t|s_t) P(s_{t+1}|s_t,a_t)``, and the paths ending in ``x`` are
    added up: no matrix product is formed, so the result checks ``pgnotes.exact.k_step``
    (``P_π^k``) and the Chapman–Kolmogorov equations independently. The number of paths is
    ``S (A S)^k``; paths of probability zero are dropped as they are found.

    Parameters
    ----------
    mdp : TabularMDP
    θ : array_like
        Policy parameters.
    k : int
        Number of steps, ``k ≥ 0``.
    features : array_like, optional
        Features ``φ(s, a)`` of a log-linear policy; tabular if None.

    Returns
    -------
    numpy.ndarray
        Shape ``(S, S)``; row ``s`` is the law of ``s_k`` given ``s_0 = s``.

    Raises
    ------
    ValueError
        If ``k`` is negative or the paths would exceed ``MAX_PATHS`` (use a smaller ``k``).
    """
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"mdp must be a pgnotes.TabularMDP, got {type(mdp).__name__}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if k < 0:
        raise ValueError(f"k must be ≥ 0, got {k}")
    S, A = mdp.n_states, mdp.n_actions
    if S * (A * S) ** k > MAX_PATHS:
        raise ValueError(f"{S}·({A}·{S})^{k} paths exceed MAX_PATHS = {MAX_PATHS:,}; "
                         "use a smaller k (pgnotes.exact.k_step has no such limit)")
    π = softmax_policy(mdp, θ, features=features).probs
    start = np.arange(S)                    # s_0 of each path
    last = np.arange(S)                     # s_t of each path
    prob = np.ones(S)
    for _ in range(k):
        # every path branches into every (a, s'): probability × π(a|s_t) P(s'|s_t, a)
        branch = π[last][:, :, None] * mdp.P[last]                  # (n, A, S)
        n = last.size
        start = np.repeat(start, A * S)
        last = np.tile(np.tile(np.arange(S), A), n)
        prob = (prob[:, None] * branch.reshape(n, A * S)).ravel()
        keep = prob > 0
        start, last, prob = start[keep], last[keep], prob[keep]
    out = np.zeros((S, S))
    np.add.at(out, (start, last), prob)
    return out
