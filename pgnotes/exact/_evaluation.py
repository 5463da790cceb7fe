r"""Exact quantities of a softmax policy on a tabular MDP, infinite horizon (derivation B).

One LU factorisation of :math:`M = I - γ P_π` (restricted to non-terminal states) serves
both solves of the policy gradient theorem:

* values, :math:`M V = r_π` (Bellman equation, book: derivation B, ``b-bellman``);
* visit counts, :math:`M^\top η = ρ_0` (book: derivation B, ``b-eta``), i.e.
  :math:`η(s) = \sum_k γ^k \Pr(s_k = s)`.

The gradient is then :math:`∇J = \sum_s η(s) φ(s)` with
:math:`φ(s) = \sum_a ∇π(a|s) Q(s,a)` (eq. (5) of the source), with no numerical
differentiation.

All functions take ``(mdp, θ, *, features=None)``; ``features`` selects the log-linear policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import lu_solve

from .._validate import as_count, real_array
from ..mdp import TabularMDP
from ..policy import SoftmaxPolicy, TabularSoftmax, softmax_policy
from ._termination import MAX_EPISODE_LENGTH, _check_termination, _factor, _listed, _never_terminating

__all__ = [
    "Evaluation",
    "evaluate",
    "policy_matrix",
    "state_values",
    "action_values",
    "advantages",
    "k_step",
    "visit_counts",
    "truncated_visit_counts",
    "occupancy",
    "on_policy_distribution",
    "objective",
    "phi",
    "policy_gradient",
    "value_gradient",
    "undiscounted_update",
    "score_function_moments",
]


@dataclass(frozen=True)
class Evaluation:
    """Everything one factorisation gives. Fields use the book's symbols.

    Attributes
    ----------
    π : (S, A) policy probabilities.
    P_π : (S, S) state-to-state transition matrix under ``π``.
    r_π : (S,) expected one-step reward under ``π``.
    V, Q, A : (S,), (S, A), (S, A) values, action values, advantages; zero at terminal states.
    η : (S,) discounted visit counts of non-terminal states.
    J : float (complex for complex ``θ``), the objective ``ρ0·V``.
    policy : the :class:`~pgnotes.policy.SoftmaxPolicy`.
    """

    π: np.ndarray
    P_π: np.ndarray
    r_π: np.ndarray
    V: np.ndarray
    Q: np.ndarray
    A: np.ndarray
    η: np.ndarray
    J: complex | float
    policy: SoftmaxPolicy
    _lu: tuple
    _live: np.ndarray


def evaluate(mdp: TabularMDP, θ, *, features=None) -> Evaluation:
    r"""Evaluate ``π_θ`` exactly: ``P_π, r_π, V, Q, A, η, J`` from one LU factorisation.

    Book: derivation B, Bellman equations and ``b-eta``.

    Raises
    ------
    ValueError
        For a malformed ``θ``/``features``; or ``γ = 1`` when some state never terminates,
        or when it terminates with a probability that is numerically zero (expected episode
        length above :data:`MAX_EPISODE_LENGTH`).
    """
    π_θ = softmax_policy(mdp, θ, features=features)
    π = π_θ.probs
    P_π = np.einsum("sa,sax->sx", π, mdp.P)
    r_π = np.einsum("sa,sa->s", π, mdp.R)
    if mdp.gamma == 1.0:
        _check_termination(mdp, P_π)

    live = np.flatnonzero(~mdp.terminal)
    M = np.eye(live.size) - mdp.gamma * P_π[np.ix_(live, live)]
    lu = _factor(M, undiscounted=mdp.gamma == 1.0)

    V = np.zeros(mdp.n_states, dtype=π.dtype)
    V[live] = lu_solve(lu, r_π[live], check_finite=False)
    η = np.zeros(mdp.n_states, dtype=π.dtype)
    η[live] = lu_solve(lu, mdp.rho0[live], trans=1, check_finite=False)
    Q = mdp.R + mdp.gamma * np.einsum("sax,x->sa", mdp.P, V)
    A = Q - V[:, None]
    J = mdp.rho0 @ V
    J = J.item() if np.iscomplexobj(J) else float(J)
    return Evaluation(π, P_π, r_π, V, Q, A, η, J, π_θ, lu, live)


def policy_matrix(mdp, θ, *, features=None) -> np.ndarray:
    r"""``P_π(x|s) = Σ_a π(a|s) P(x|s,a)`` = ``d(s→x;1)``, shape (S, S). Book: derivation B, ``b-kstep``."""
    π = softmax_policy(mdp, θ, features=features).probs
    return np.einsum("sa,sax->sx", π, mdp.P)


def state_values(mdp, θ, *, features=None) -> np.ndarray:
    r"""``V_π(s)``, the solution of ``V = r_π + γ P_π V`` (zero at terminal states). Book: derivation B, ``b-bellman``."""
    return evaluate(mdp, θ, features=features).V


def action_values(mdp, θ, *, features=None) -> np.ndarray:
    r"""``Q_π(s,a) = R(s,a) + γ Σ_{s'} P(s'|s,a) V_π(s')``, shape (S, A). Book: derivation B, ``b-bellman``."""
    return evaluate(mdp, θ, features=features).Q


def advantages(mdp, θ, *, features=None) -> np.ndarray:
    r"""``A_π(s,a) = Q_π(s,a) - V_π(s)``, shape (S, A). Book: derivation B, A2C."""
    return evaluate(mdp, θ, features=features).A


def k_step(mdp, θ, k: int, *, features=None) -> np.ndarray:
    r"""k-step transition probabilities ``d(s→x;k) = Pr(s_k = x | s_0 = s) = (P_π^k)[s, x]``.

    Book: derivation B, ``b-kstep``. Terminal states are absorbing, so rows sum to 1.
    """
    k = as_count(k, "k", minimum=0)
    return np.linalg.matrix_power(policy_matrix(mdp, θ, features=features), k)


def visit_counts(mdp, θ, *, features=None) -> np.ndarray:
    r"""Discounted visit counts ``η(s) = E_{s0~ρ0} Σ_k γ^k d(s0→s;k)`` of non-terminal states.

    Solves ``(I - γ P_π)^T η = ρ0`` instead of summing the series. ``Σ_s η(s)`` is the expected
    discounted episode length: ``1/(1-γ)`` when episodes never end, less when they do.
    Book: derivation B, ``b-eta``.
    """
    return evaluate(mdp, θ, features=features).η


def truncated_visit_counts(mdp, θ, K: int, *, features=None) -> np.ndarray:
    r"""The series for ``η`` cut after ``K`` terms: ``Σ_{k<K} γ^k ρ0^T P_π^k`` on non-terminal states.

    It is also the finite-horizon visit count ``η_T`` with ``T = K`` (book: converting A
    into B): :func:`pgnotes.finite.visit_counts` calls this function, so the two are one
    recursion, checked against the enumeration of trajectories (tests). Book: derivation B,
    the unrolled recursion.
    """
    K = as_count(K, "K", minimum=0)
    P_π = policy_matrix(mdp, θ, features=features)
    μ = mdp.rho0.astype(P_π.dtype)
    η = np.zeros_like(μ)
    for k in range(K):
        η = η + mdp.gamma**k * μ
        μ = μ @ P_π
    η[mdp.terminal] = 0.0
    return η


def occupancy(mdp, θ, *, features=None) -> np.ndarray:
    r"""Normalised discounted occupancy ``d^γ(s) = (1-γ) η(s)``, shape (S,).

    A probability distribution when episodes never end. With terminal states its mass is
    ``1 - E[γ^T]`` (the probability of being mid-episode, discounted). Book: derivation B,
    ``b-dgamma``.

    Raises
    ------
    ValueError
        If ``γ = 1``: the factor ``1-γ`` is zero. Use :func:`visit_counts` or
        :func:`on_policy_distribution`.
    """
    if mdp.gamma == 1.0:
        raise ValueError(
            "occupancy d^γ = (1-γ)η is identically zero at gamma = 1; "
            "use visit_counts (η) or on_policy_distribution (η / Σ η) instead"
        )
    return (1.0 - mdp.gamma) * visit_counts(mdp, θ, features=features)


def on_policy_distribution(mdp, θ, *, features=None) -> np.ndarray:
    r"""``μ(s) = η(s) / Σ_x η(x)``, the normalisation valid for any ``γ`` (Sutton & Barto §9.2).

    Book: episodes and γ = 1, ``ep-theorem``.
    """
    η = visit_counts(mdp, θ, features=features)
    return η / η.sum()


def objective(mdp, θ, *, features=None) -> float:
    r"""``J(θ) = E_{s0~ρ0} V_π(s0)``. Book: derivation B, ``b-J``."""
    return evaluate(mdp, θ, features=features).J


def phi(mdp, θ, *, features=None) -> np.ndarray:
    r"""``φ(s) = Σ_a ∇_θ π(a|s) Q(s,a)`` for every state, shape ``(S,) + θ.shape``.

    Book: derivation B, eq. (4) of the source.
    """
    ev = evaluate(mdp, θ, features=features)
    return ev.policy.score_contract(ev.π * ev.Q, per_state=True)


def policy_gradient(mdp, θ, *, features=None) -> np.ndarray:
    r"""``∇J(θ) = Σ_s η(s) Σ_a π(a|s) Q(s,a) ∇ log π(a|s)``, the policy gradient theorem.

    Same shape as ``θ``. ``η`` and ``V`` come from one shared factorisation.
    Book: derivation B, eqs. (5)-(6) of the source.
    """
    ev = evaluate(mdp, θ, features=features)
    return ev.policy.score_contract(ev.η[:, None] * ev.π * ev.Q)


def undiscounted_update(mdp, θ, *, features=None) -> np.ndarray:
    r"""Exact expectation of the "no γ^t" update most code implements, over whole episodes.

    The sampled update is :math:`\sum_t \big(\sum_{k \ge t} γ^{k-t} r_k\big) ∇_θ \log π_θ(a_t|s_t)`
    (:func:`pgnotes.estimators.reinforce_no_gamma_t`): the return is counted from ``t`` but
    the factor :math:`γ^t` of the true gradient is dropped (Thomas 2014; Nota & Thomas 2020).
    Since :math:`E[\sum_{k\ge t} γ^{k-t} r_k \mid s_t, a_t] = Q_γ(s_t, a_t)`, its expectation is

    .. math::

        u(θ) = \sum_s η_1(s) \sum_a π_θ(a|s)\, Q_γ(s,a)\, ∇_θ \log π_θ(a|s),
        \qquad η_1(s) = \sum_{t \ge 0} \Pr(s_t = s),

    the policy gradient theorem (:func:`policy_gradient`) with the discounted visit counts
    ``η = η_γ`` replaced by the *undiscounted* expected visit counts ``η_1`` of non-terminal
    states (``Σ_s η_1(s)`` is the expected episode length). ``Q_γ`` keeps the MDP's ``γ``.
    With ``γ = 1`` the two coincide. ``u`` is in general not the gradient of any function.
    Book: the discount that practice drops, ``dg-update``.

    Parameters
    ----------
    mdp : TabularMDP
        An episodic MDP (with terminal states), any ``γ`` in [0, 1].
    θ, features
        The softmax policy, as in :func:`evaluate`; complex ``θ`` is accepted (complex step).

    Returns
    -------
    array of ``θ.shape``

    Raises
    ------
    ValueError
        If the MDP has no terminal state, or if under ``π_θ`` some state does not reach a
        terminal state with probability 1: then ``η_1`` is infinite and the update has no
        finite expectation over an episode.
    """
    if not mdp.episodic:
        raise ValueError(
            "undiscounted_update needs an episodic MDP: this one has no terminal state, so "
            "episodes never end and the undiscounted visit counts η_1 are infinite"
        )
    # Q_γ with the MDP's own γ (at γ = 1, check termination first, with the message below)
    ev = None if mdp.gamma == 1.0 else evaluate(mdp, θ, features=features)
    stuck = _never_terminating(mdp, policy_matrix(mdp, θ, features=features) if ev is None else ev.P_π)
    if stuck.size:
        raise ValueError(
            f"undiscounted_update needs episodes that end with probability 1, but under π_θ "
            f"{len(stuck)} state(s) ({_listed(stuck)}) never reach a terminal state; the undiscounted "
            "visit counts η_1 are infinite there"
        )
    ev = evaluate(mdp, θ, features=features) if ev is None else ev
    live = ev._live
    η_1 = np.zeros(mdp.n_states, dtype=ev.π.dtype)
    if mdp.gamma == 1.0:
        η_1[live] = ev.η[live]
    else:  # (I - P_π)^T η_1 = ρ0 on non-terminal states
        M = np.eye(live.size) - ev.P_π[np.ix_(live, live)]
        lu = _factor(M, undiscounted=True)
        η_1[live] = lu_solve(lu, mdp.rho0[live].astype(M.dtype), trans=1, check_finite=False)
    return ev.policy.score_contract(η_1[:, None] * ev.π * ev.Q)


def value_gradient(mdp, θ, *, features=None) -> np.ndarray:
    r"""``∇_θ V(s)`` for every state, shape ``(S,) + θ.shape``: ``(I - γ P_π)^{-1} φ``.

    The fixed point of recursion (4) of the source. Book: derivation B, ``b-recursion``.
    """
    ev = evaluate(mdp, θ, features=features)
    Φ = ev.policy.score_contract(ev.π * ev.Q, per_state=True)
    flat = Φ.reshape(mdp.n_states, -1)
    out = np.zeros_like(flat)
    out[ev._live] = lu_solve(ev._lu, flat[ev._live], check_finite=False)
    return out.reshape(Φ.shape)


def score_function_moments(mdp, θ, weights, *, features=None) -> tuple[np.ndarray, float]:
    r"""Exact mean and total variance of one draw of ``w(s,a) ∇_θ log π_θ(a|s)``, ``s ~ d^γ``, ``a ~ π_θ(·|s)``.

    Both are finite sums over states and actions:

    .. math::

        m = \sum_s d^γ(s) \sum_a π(a|s)\, w(s,a)\, ∇_θ \log π(a|s), \qquad
        v = \sum_s d^γ(s) \sum_a π(a|s)\, w(s,a)^2 \,\lVert ∇_θ \log π(a|s) \rVert^2 - \lVert m \rVert^2 .

    ``v`` is the trace of the covariance matrix (the sum of the coordinate variances).
    With ``w = Q`` the draw is the boxed actor-critic estimator and ``m = (1-γ) ∇J``; with
    ``w = A`` (A2C) the mean is the same and ``v`` measures the variance the baseline removes.
    Book: derivation B, ``b-a2c``.

    Parameters
    ----------
    mdp, θ, features
        A continuing MDP (no terminal state, ``γ < 1``) and a softmax policy with real ``θ``.
    weights : array, shape (S, A)
        The real table ``w(s, a)``, e.g. ``Q`` or ``A`` from :func:`evaluate`.

    Returns
    -------
    m : array of ``θ.shape``
    v : float

    Raises
    ------
    ValueError
        If the MDP has terminal states (then ``d^γ`` is not a probability distribution),
        if ``γ = 1``, if ``θ`` is complex, or if ``weights`` is not a finite real (S, A) table.
    """
    if mdp.episodic:
        raise ValueError(
            "score_function_moments samples s ~ d^γ, which is a probability distribution only "
            "when episodes never end; this MDP has terminal states"
        )
    if np.iscomplexobj(np.asarray(θ)):
        raise ValueError("score_function_moments needs a real θ")
    W = real_array(weights, "weights (a real (S, A) table)", shape=(mdp.n_states, mdp.n_actions))
    d_γ = occupancy(mdp, θ, features=features)  # raises at γ = 1
    ev = evaluate(mdp, θ, features=features)
    p = d_γ[:, None] * ev.π  # joint law of (s, a)
    m = ev.policy.score_contract(p * W)
    if isinstance(ev.policy, TabularSoftmax):  # ‖e_a - π(·|s)‖² without the (S, A, S, A) tensor
        sq = 1.0 - 2.0 * ev.π + (ev.π**2).sum(axis=1, keepdims=True)
    else:
        sq = (ev.policy.score_table() ** 2).reshape(mdp.n_states, mdp.n_actions, -1).sum(axis=2)
    v = float(np.sum(p * W**2 * sq) - np.sum(m**2))
    return m, v
