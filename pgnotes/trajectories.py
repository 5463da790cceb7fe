r"""Exact enumeration of every trajectory of a short horizon, and exact moments over them.

Book: derivation A. With every trajectory ``τ`` and its probability ``P(τ|π_θ)`` in hand,
the expectation **and the variance** of any per-trajectory estimator are finite sums:

.. math:: E[X] = \sum_τ P(τ) X(τ), \qquad \operatorname{Var}[X] = \sum_τ P(τ)\,\|X(τ) - E[X]\|^2 .
"""

from __future__ import annotations

import numpy as np

from ._validate import as_count
from .mdp import TabularMDP
from .policy import softmax_policy
from .sampling import Batch

__all__ = [
    "MAX_TRAJECTORIES",
    "enumerate_trajectories",
    "log_probability",
    "expectation",
    "variance",
    "conditional_expectation",
]

#: Largest number of trajectories :func:`enumerate_trajectories` will list.
MAX_TRAJECTORIES = 2_000_000


def enumerate_trajectories(mdp: TabularMDP, θ, *, horizon: int, features=None) -> Batch:
    r"""Every trajectory of ``horizon`` steps with positive probability, and ``P(τ|π_θ)``.

    A trajectory is ``(s_0, a_0, s_1, …, a_{T-1}, s_T)``, with

    .. math:: P(τ|π_θ) = ρ_0(s_0) \prod_{t=0}^{T-1} π_θ(a_t|s_t) P(s_{t+1}|s_t, a_t),

    the factorisation below eq. (1) of the source. Once a terminal state is reached the
    episode has ended: no action is drawn there (``mask`` is False, the stored action is 0).
    Book: derivation A, ``a-Ptau``.

    Raises
    ------
    ValueError
        If more than :data:`MAX_TRAJECTORIES` trajectories would be listed.

    Examples
    --------
    >>> import numpy as np
    >>> from pgnotes import envs, estimators, finite
    >>> mdp, θ = envs.two_state_mdp(0.9), np.zeros((2, 2))
    >>> batch = enumerate_trajectories(mdp, θ, horizon=3)
    >>> batch.n, round(float(batch.prob.sum()), 12)
    (54, 1.0)
    >>> J_T = expectation(batch, estimators.total_return(batch))  # E[R(τ)] = J_T, exactly
    >>> bool(abs(J_T - finite.objective(mdp, θ, horizon=3)) < 1e-12)
    True
    """
    T = as_count(horizon, "horizon", minimum=1, maximum=64)
    π = softmax_policy(mdp, θ, features=features).probs
    if np.iscomplexobj(π):
        raise ValueError("enumeration needs a real θ")
    S, A = mdp.n_states, mdp.n_actions

    joint = π[:, :, None] * mdp.P  # π(a|s) P(s'|s,a)
    joint[mdp.terminal] = 0.0
    joint[mdp.terminal, 0, mdp.terminal] = 1.0
    joint = joint.reshape(S, A * S)

    states = np.flatnonzero(mdp.rho0 > 0)[:, None]
    p = mdp.rho0[states[:, 0]]
    actions = np.empty((states.shape[0], 0), dtype=np.intp)
    nexts = np.empty_like(actions)
    for _ in range(T):
        cur = states[:, -1] if nexts.shape[1] == 0 else nexts[:, -1]
        branch = joint[cur]  # (N, A·S)
        row, out = np.nonzero(branch > 0)
        if row.size > MAX_TRAJECTORIES:
            raise ValueError(
                f"horizon {T} gives more than MAX_TRAJECTORIES = {MAX_TRAJECTORIES} trajectories; "
                "shorten the horizon or use pgnotes.sample"
            )
        if nexts.shape[1]:
            states = np.concatenate([states[row], cur[row, None]], axis=1)
        else:
            states = states[row]
        p = p[row] * branch[row, out]
        actions = np.concatenate([actions[row], (out // S)[:, None]], axis=1)
        nexts = np.concatenate([nexts[row], (out % S)[:, None]], axis=1)
    mask = ~mdp.terminal[states]
    rewards = np.where(mask, mdp.R[states, actions], 0.0)
    return Batch(states, actions, rewards, nexts, mask, mdp.gamma, p)


def log_probability(mdp: TabularMDP, θ, batch: Batch, *, features=None,
                    include_env: bool = True) -> np.ndarray:
    r"""``log P(τ|π_θ)`` for each trajectory of ``batch``, shape (n,).

    ``log ρ0(s_0) + Σ_t log P(s_{t+1}|s_t,a_t) + Σ_t log π_θ(a_t|s_t)``. With
    ``include_env=False`` only the policy terms are kept. Accepts complex ``θ``, so its
    complex-step derivative is ``∇_θ log P(τ)`` (book: derivation A, the dynamics drop out).
    """
    π = softmax_policy(mdp, θ, features=features).probs
    logπ = np.log(π[batch.states, batch.actions])
    out = np.where(batch.mask, logπ, 0.0).sum(axis=1)
    if include_env:
        env = np.log(mdp.rho0[batch.states[:, 0]])
        env = env + np.log(mdp.P[batch.states, batch.actions, batch.next_states]).sum(axis=1)
        out = out + env
    return out


def _probabilities(batch: Batch) -> np.ndarray:
    if batch.prob is None:
        raise ValueError("exact moments need an enumerated batch (batch.prob is None for samples)")
    return batch.prob


def expectation(batch: Batch, X) -> np.ndarray:
    r"""``E[X] = Σ_τ P(τ) X(τ)`` for per-trajectory values ``X`` of shape ``(n, …)``."""
    p = _probabilities(batch)
    X = np.asarray(X)
    if X.shape[:1] != (batch.n,):
        raise ValueError(f"X must have one row per trajectory ({batch.n}), got shape {X.shape}")
    return np.tensordot(p, X, axes=1)


def variance(batch: Batch, X, *, total: bool = True):
    r"""Exact variance of per-trajectory values ``X`` under ``P(τ)``.

    With ``total=True`` (default) the total variance ``E‖X - E X‖²`` (the trace of the
    covariance), a float; otherwise the per-coordinate variances, shape ``X.shape[1:]``.
    """
    p = _probabilities(batch)
    X = np.asarray(X)
    dev = X - expectation(batch, X)
    per = np.tensordot(p, dev**2, axes=1)
    return float(np.sum(per)) if total else per


def conditional_expectation(mdp: TabularMDP, batch: Batch, X) -> tuple[np.ndarray, np.ndarray]:
    r"""``E[X_t | s_t = s, a_t = a]`` for per-step values ``X`` of shape (n, T), exactly.

    Groups the enumerated trajectories by ``(t, s_t, a_t)`` and weighs them by ``P(τ)``:

    .. math::
        \Pr(s_t = s, a_t = a) = \sum_τ P(τ)\, 1[s_t = s, a_t = a], \qquad
        E[X_t \mid s_t = s, a_t = a] = \frac{\sum_τ P(τ)\, X_t(τ)\, 1[s_t = s, a_t = a]}
                                          {\Pr(s_t = s, a_t = a)} .

    Steps taken after termination (``mask`` False) are not counted: no action is drawn there.
    Book: converting A into B, ``ab-EG`` (``E[G_t | s_t, a_t] = γ^t Q_t(s_t, a_t)``).

    Returns
    -------
    E : array, shape (T, S, A)
        The conditional expectations; NaN where ``Pr(s_t = s, a_t = a) = 0``.
    prob : array, shape (T, S, A)
        ``Pr(s_t = s, a_t = a)`` over running steps.
    """
    p = _probabilities(batch)
    X = np.asarray(X, dtype=float)
    if X.shape != batch.states.shape:
        raise ValueError(f"X must have shape (n, T) = {batch.states.shape}, got {X.shape}")
    T, S, A = batch.horizon, mdp.n_states, mdp.n_actions
    key = (np.arange(T)[None, :] * S + batch.states) * A + batch.actions
    w = np.where(batch.mask, p[:, None], 0.0)
    prob = np.bincount(key.ravel(), w.ravel(), minlength=T * S * A).reshape(T, S, A)
    num = np.bincount(key.ravel(), (w * X).ravel(), minlength=T * S * A).reshape(T, S, A)
    with np.errstate(invalid="ignore", divide="ignore"):
        E = np.where(prob > 0, num / np.where(prob > 0, prob, 1.0), np.nan)
    return E, prob
