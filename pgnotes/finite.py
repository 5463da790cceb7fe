r"""Exact quantities for a finite horizon ``T`` (derivation A).

The objective is the source's :math:`J_T(θ) = E[\sum_{t=0}^{T-1} γ^t r_t]` under a stationary
policy. Time-indexed values are discounted from their own time ``t``:

.. math::
    V_t(s) = E\Big[\sum_{k=t}^{T-1} γ^{k-t} r_k \,\Big|\, s_t = s\Big], \qquad
    Q_t(s,a) = R(s,a) + γ \sum_{s'} P(s'|s,a) V_{t+1}(s'), \qquad V_T = 0,

computed by a backward recursion; the state distributions :math:`μ_t(s) = \Pr(s_t = s)` by a
forward one. The gradient is

.. math:: ∇J_T = \sum_{t=0}^{T-1} γ^t \sum_s μ_t(s) \sum_a ∇π(a|s)\, Q_t(s,a),

the finite-horizon form of eq. (5) of the source. Because the source's return-to-go
:math:`G_t = \sum_{k \ge t} γ^k r_k` is discounted from time 0,
:math:`E[G_t | s_t, a_t] = γ^t Q_t(s_t, a_t)` (book: converting A into B).
"""

from __future__ import annotations

import numpy as np

from ._validate import as_count
from .exact import truncated_visit_counts
from .mdp import TabularMDP
from .policy import softmax_policy

__all__ = [
    "MAX_TABLE",
    "state_values",
    "action_values",
    "state_distributions",
    "visit_counts",
    "objective",
    "policy_gradient",
]

#: Largest ``T·S·A`` for which time-indexed tables are built (about 400 MB of float64).
MAX_TABLE = 50_000_000


def _horizon(mdp: TabularMDP, T) -> int:
    T = as_count(T, "horizon (T)", minimum=1)
    if T * mdp.n_states * mdp.n_actions > MAX_TABLE:
        raise ValueError(
            f"T·S·A = {T * mdp.n_states * mdp.n_actions} exceeds MAX_TABLE = {MAX_TABLE}; "
            "use a shorter horizon"
        )
    return T


def _backward(mdp, π, T):
    V = np.zeros((T + 1, mdp.n_states), dtype=π.dtype)
    Q = np.zeros((T, mdp.n_states, mdp.n_actions), dtype=π.dtype)
    for t in range(T - 1, -1, -1):
        Q[t] = mdp.R + mdp.gamma * (mdp.P @ V[t + 1])
        V[t] = np.einsum("sa,sa->s", π, Q[t])
    return V, Q


def _forward(mdp, π, T):
    P_π = np.einsum("sa,sax->sx", π, mdp.P)
    μ = np.zeros((T, mdp.n_states), dtype=π.dtype)
    μ[0] = mdp.rho0
    for t in range(1, T):
        μ[t] = μ[t - 1] @ P_π
    return μ


def state_values(mdp, θ, *, horizon, features=None) -> np.ndarray:
    r"""``V_t(s)`` for ``t = 0..T``, shape (T+1, S); ``V_T = 0``. Book: converting A into B."""
    T = _horizon(mdp, horizon)
    return _backward(mdp, softmax_policy(mdp, θ, features=features).probs, T)[0]


def action_values(mdp, θ, *, horizon, features=None) -> np.ndarray:
    r"""``Q_t(s,a)`` for ``t = 0..T-1``, shape (T, S, A). Book: converting A into B, ``ab-EG``."""
    T = _horizon(mdp, horizon)
    return _backward(mdp, softmax_policy(mdp, θ, features=features).probs, T)[1]


def state_distributions(mdp, θ, *, horizon, features=None) -> np.ndarray:
    r"""``μ_t(s) = Pr(s_t = s)`` for ``t = 0..T-1``, shape (T, S). Rows sum to 1."""
    T = _horizon(mdp, horizon)
    return _forward(mdp, softmax_policy(mdp, θ, features=features).probs, T)


def visit_counts(mdp, θ, *, horizon, features=None) -> np.ndarray:
    r"""``η_T(s) = Σ_{t<T} γ^t μ_t(s)`` on non-terminal states. Book: converting A into B.

    The same series as :func:`pgnotes.exact.truncated_visit_counts` with ``K = T``, which
    computes it (one implementation, ``O(S)`` memory instead of a ``T × S`` table).
    """
    T = _horizon(mdp, horizon)
    return truncated_visit_counts(mdp, θ, T, features=features)


def objective(mdp, θ, *, horizon, features=None) -> float:
    r"""``J_T(θ) = E[Σ_{t<T} γ^t r_t] = ρ0·V_0``. Book: derivation A, ``a-J``."""
    T = _horizon(mdp, horizon)
    V, _ = _backward(mdp, softmax_policy(mdp, θ, features=features).probs, T)
    J = mdp.rho0 @ V[0]
    return J.item() if np.iscomplexobj(J) else float(J)


def policy_gradient(mdp, θ, *, horizon, features=None) -> np.ndarray:
    r"""``∇J_T(θ) = Σ_t γ^t Σ_s μ_t(s) Σ_a π(a|s) Q_t(s,a) ∇log π(a|s)``, shape of ``θ``.

    Values by backward recursion, state distributions by forward recursion.
    Book: derivation A, the boxed REINFORCE form (its exact value).
    """
    T = _horizon(mdp, horizon)
    π_θ = softmax_policy(mdp, θ, features=features)
    π = π_θ.probs
    _, Q = _backward(mdp, π, T)
    μ = _forward(mdp, π, T)
    W = np.einsum("t,ts,sa,tsa->sa", mdp.gamma ** np.arange(T), μ, π, Q)
    return π_θ.score_contract(W)
