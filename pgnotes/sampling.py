r"""Vectorised Monte-Carlo sampling of trajectories, ``n`` at a time.

Book: derivation A (Monte Carlo against the exact gradient) and every chapter after it.

Each step draws the pair ``(a_t, s_{t+1})`` from the joint law
:math:`π(a|s_t) P(s'|s_t, a)` with Walker's alias method: one uniform number per trajectory
per step, and a constant number of array operations, whatever the sizes of ``A`` and ``S``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import as_count, check_rng
from .mdp import TabularMDP
from .policy import softmax_policy

__all__ = ["Batch", "sample", "MAX_STEPS"]

#: Largest ``n · horizon`` drawn in one call (each step stores about 30 bytes).
MAX_STEPS = 100_000_000


@dataclass(frozen=True)
class Batch:
    r"""Trajectories ``τ = (s_0, a_0, r_0, s_1, …)`` stored as (n, horizon) arrays.

    Attributes
    ----------
    states, actions, next_states : int arrays, shape (n, horizon)
        ``s_t``, ``a_t`` and ``s_{t+1}``.
    rewards : float array, shape (n, horizon)
        ``r_t = R(s_t, a_t)``; zero once the episode has ended.
    mask : bool array, shape (n, horizon)
        True while the episode is running (``s_t`` not terminal). Steps taken in a terminal
        state carry no reward and no score: estimators multiply by the mask.
    prob : float array, shape (n,), or None
        Exact probability ``P(τ|π_θ)`` of each trajectory when the batch is an enumeration
        (:func:`pgnotes.trajectories.enumerate_trajectories`); None for samples.
    gamma : float
        The discount of the MDP the batch came from.
    """

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_states: np.ndarray
    mask: np.ndarray
    gamma: float
    prob: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of trajectories."""
        return self.states.shape[0]

    @property
    def horizon(self) -> int:
        """Number of steps ``T`` per trajectory."""
        return self.states.shape[1]


def _alias_tables(q: np.ndarray):
    """Walker/Vose alias tables for each row of ``q`` (rows sum to 1), in scaled form.

    Returns ``(threshold, other)``: for a uniform ``u ∈ [0, M)`` and ``j = ⌊u⌋``, the outcome is
    ``j`` if ``u < threshold[j]`` and ``other[j]`` otherwise.
    """
    R, M = q.shape
    keep = np.ones((R, M))
    other = np.tile(np.arange(M), (R, 1))
    for r in range(R):
        scaled = q[r] * M
        small = [j for j in range(M) if scaled[j] < 1.0]
        large = [j for j in range(M) if scaled[j] >= 1.0]
        while small and large:
            s, l = small.pop(), large[-1]
            keep[r, s], other[r, s] = scaled[s], l
            scaled[l] -= 1.0 - scaled[s]
            if scaled[l] < 1.0:
                small.append(large.pop())
        # Leftovers are 1 up to rounding: they keep their own column.
    return np.arange(M) + keep, other


def sample(mdp: TabularMDP, θ, *, n: int, horizon: int, rng: np.random.Generator, features=None) -> Batch:
    r"""Draw ``n`` trajectories of ``horizon`` steps from ``ρ0``, ``π_θ`` and ``P``.

    Book: derivation A, Monte Carlo.

    Parameters
    ----------
    mdp, θ, features
        The MDP and the softmax policy (log-linear when ``features`` is given).
    n, horizon : int
        Batch size and number of steps ``T``.
    rng : numpy.random.Generator
        The only source of randomness; pass a seeded one.

    Returns
    -------
    Batch
        With ``mask`` False from the first terminal state on.

    Examples
    --------
    >>> import numpy as np
    >>> from pgnotes import envs
    >>> mdp = envs.two_state_mdp(0.9)
    >>> batch = sample(mdp, np.zeros((2, 2)), n=1000, horizon=5, rng=np.random.default_rng(0))
    >>> batch.states.shape, batch.prob is None
    ((1000, 5), True)
    """
    rng = check_rng(rng)
    n = as_count(n, "n", minimum=1, maximum=MAX_STEPS)
    T = as_count(horizon, "horizon", minimum=1, maximum=MAX_STEPS)
    if n * T > MAX_STEPS:
        raise ValueError(f"n · horizon = {n * T} exceeds MAX_STEPS = {MAX_STEPS}; draw in chunks")
    π = softmax_policy(mdp, θ, features=features).probs
    if np.iscomplexobj(π):
        raise ValueError("sampling needs a real θ")
    S, A = mdp.n_states, mdp.n_actions

    # Joint law of (a, s') in each state; a terminal state stays put with "action" 0.
    joint = π[:, :, None] * mdp.P
    joint[mdp.terminal] = 0.0
    joint[mdp.terminal, 0, mdp.terminal] = 1.0
    joint = joint.reshape(S, A * S)
    M = int((joint > 0).sum(axis=1).max())
    # Keep the M most likely outcomes of each row (all of its support), padded with zeros.
    order = np.argsort(-joint, axis=1, kind="stable")[:, :M]
    q = np.take_along_axis(joint, order, axis=1)
    q /= q.sum(axis=1, keepdims=True)
    threshold, other = _alias_tables(q)
    threshold = threshold.ravel()
    jump = (other - np.arange(M)).ravel()  # alias cell minus own cell, within a row
    outcome = order.ravel()  # flat (a, s') index of each table cell
    next_base = (outcome % S) * M
    action_of = outcome // S

    # The loop below is the sampler's whole cost: preallocated buffers, int32 indices and
    # in-place ufuncs keep it to a few passes over n numbers per step (dev/benchmarks.py).
    itype = np.int32 if S * M < 2**31 else np.intp
    jump, next_base = jump.astype(itype), next_base.astype(itype)
    cell = np.empty((T, n), dtype=itype)
    at = (rng.choice(S, size=n, p=mdp.rho0) * M).astype(itype)
    u, f = np.empty(n), np.empty(n)
    k, hop = np.empty(n, dtype=itype), np.empty(n, dtype=itype)
    go = np.empty(n, dtype=bool)  # True: take the alias cell
    for t in range(T):
        rng.random(out=u)
        np.multiply(u, M, out=u)
        k[:] = u  # ⌊u⌋, the table column, as u ≥ 0
        np.add(k, at, out=k)
        np.take(threshold, k, out=f)
        np.greater_equal(u, f, out=go)
        np.take(jump, k, out=hop)
        np.multiply(hop, go, out=hop)
        np.add(k, hop, out=cell[t])
        np.take(next_base, cell[t], out=at)

    # Everything else is a lookup per table cell. Arrays stay in (T, n) memory order and are
    # returned as (n, T) views, so a column t (one time step of every trajectory) is contiguous.
    states = cell // M
    actions = np.take(action_of.astype(itype), cell)
    live_of = ~mdp.terminal[np.arange(S * M) // M]
    mask = np.take(live_of, cell)
    reward_of = np.where(live_of, mdp.R.ravel()[(np.arange(S * M) // M) * A + action_of], 0.0)
    rewards = np.take(reward_of, cell)
    next_states = np.empty_like(states)
    next_states[:-1] = states[1:]
    next_states[-1] = at // M
    states, actions, rewards, next_states, mask = (x.T for x in (states, actions, rewards, next_states, mask))
    return Batch(states, actions, rewards, next_states, mask, mdp.gamma)
