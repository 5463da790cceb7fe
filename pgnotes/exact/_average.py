r"""The average-reward objective of a continuing MDP (Sutton & Barto 2018, §10.3 and §13.6).

For a policy whose chain has one stationary law :math:`μ_θ` (:math:`μ^\top P_π = μ^\top`),

.. math::
    r(θ) = \sum_s μ_θ(s) \sum_a π_θ(a|s) R(s,a), \qquad
    ∇ r(θ) = \sum_s μ_θ(s) \sum_a π_θ(a|s)\, \tilde Q(s,a)\, ∇ \log π_θ(a|s),

with the differential values :math:`\tilde V = r_π - r + P_π \tilde V` (:math:`μ^\top
\tilde V = 0`) and :math:`\tilde Q = R - r + P \tilde V`. Replacing :math:`\tilde Q` by the
discounted :math:`Q_γ` gives the stationary-weighted, no-:math:`γ^t` update of chapter 04; its
gap to :math:`∇r` vanishes as :math:`γ → 1`. Book: from the gradient to trust regions I, ``tr-average``.
"""

from __future__ import annotations

import numpy as np

from ..policy import softmax_policy
from ._evaluation import evaluate

__all__ = ["stationary_distribution", "average_reward", "average_reward_gradient"]


def _continuing(mdp, what: str) -> None:
    if mdp.episodic:
        raise ValueError(
            f"{what} needs a continuing MDP (no terminal state): an episodic chain is absorbed "
            "and its average reward is 0; use gridworld(..., episodic=False), for instance"
        )


def _stationary(mdp, π):
    P_π = np.einsum("sa,sax->sx", π, mdp.P)
    S = mdp.n_states
    M = np.eye(S, dtype=P_π.dtype) - P_π.T
    M[-1] = 1.0  # replace one balance equation by Σ μ = 1
    b = np.zeros(S, dtype=P_π.dtype)
    b[-1] = 1.0
    try:
        μ = np.linalg.solve(M, b)
    except np.linalg.LinAlgError:
        μ = np.full(S, np.nan)
    if not np.all(np.isfinite(μ)) or np.abs(μ.imag if np.iscomplexobj(μ) else 0).max() > 1:
        raise ValueError("the policy's chain has no unique stationary law (it is not unichain)")
    resid = np.abs(μ @ P_π - μ).max()
    if resid > 1e-8:
        raise ValueError(f"the policy's chain has no unique stationary law (residual {resid:.1e})")
    return μ, P_π


def stationary_distribution(mdp, θ, *, features=None) -> np.ndarray:
    r"""``μ_θ``, the stationary law of ``P_π`` (``μ^T P_π = μ^T``, ``Σ μ = 1``), shape (S,).

    Raises ``ValueError`` for an episodic MDP or a chain with no unique stationary law.
    Book: from the gradient to trust regions I, ``tr-average``.
    """
    _continuing(mdp, "stationary_distribution")
    return _stationary(mdp, softmax_policy(mdp, θ, features=features).probs)[0]


def average_reward(mdp, θ, *, features=None) -> float:
    r"""``r(θ) = Σ_s μ_θ(s) Σ_a π_θ(a|s) R(s,a)``; complex ``θ`` allowed (complex step).

    Book: from the gradient to trust regions I, ``tr-average``.
    """
    _continuing(mdp, "average_reward")
    π = softmax_policy(mdp, θ, features=features).probs
    μ, _ = _stationary(mdp, π)
    r = μ @ np.einsum("sa,sa->s", π, mdp.R)
    return r.item() if np.iscomplexobj(r) else float(r)


def average_reward_gradient(mdp, θ, *, features=None, critic_gamma=None) -> np.ndarray:
    r"""``Σ_s μ(s) Σ_a π(a|s) Q̃(s,a) ∇log π(a|s)``, shape of ``θ``.

    With ``critic_gamma=None``, ``Q̃`` is the differential action value and the result is
    ``∇r(θ)`` (Sutton & Barto §13.6). With ``critic_gamma = γ < 1``, ``Q̃ = Q_γ``: the
    expectation of one step of the no-``γ^t`` update of chapter 04 in a long continuing
    run; it tends to ``∇r`` as ``γ → 1``. Book: from the gradient to trust regions I, ``tr-average``.
    """
    _continuing(mdp, "average_reward_gradient")
    π_θ = softmax_policy(mdp, θ, features=features)
    μ, P_π = _stationary(mdp, π_θ.probs)
    if critic_gamma is None:
        r_π = np.einsum("sa,sa->s", π_θ.probs, mdp.R)
        r = μ @ r_π
        S = mdp.n_states
        # (I - P_π + 1 μ^T) V = r_π - r has the unique solution with μ·V = 0
        V = np.linalg.solve(np.eye(S) - P_π + np.outer(np.ones(S), μ), r_π - r)
        Q = mdp.R - r + mdp.P @ V
    else:
        g = float(critic_gamma)
        if not 0.0 <= g < 1.0:
            raise ValueError(f"critic_gamma must lie in [0, 1), got {critic_gamma}")
        Q = evaluate(mdp.with_gamma(g), θ, features=features).Q
    return π_θ.score_contract(μ[:, None] * π_θ.probs * Q)
