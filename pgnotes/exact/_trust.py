r"""From the gradient to trust regions: exact quantities between two policies.

The book's objective is un-normalised, :math:`J(θ) = E_{s_0∼ρ_0} \sum_t γ^t r_t`, and
:math:`η_θ(s) = \sum_t γ^t \Pr(s_t = s)` are the discounted visit counts, so the
performance-difference lemma (Kakade & Langford 2002) reads, with no :math:`1/(1-γ)`,

.. math:: J(θ') - J(θ) = \sum_s η_{θ'}(s) \sum_a π_{θ'}(a|s)\, A_θ(s,a),

and the surrogate :math:`L_θ(θ') - J(θ)` puts :math:`η_θ` in place of :math:`η_{θ'}`.
The Fisher matrix uses the normalised occupancy :math:`d^γ = (1-γ)η` (``γ < 1``):

.. math:: F(θ) = \sum_s d^γ(s) \sum_a π(a|s)\, ψ(s,a) ψ(s,a)^\top, \qquad
          ψ = ∇_θ \log π_θ(a|s).

Book: from the gradient to trust regions I (``book/07_trust_region.ipynb``) and the natural gradient
(``book/08_natural_gradient.ipynb``).
"""

from __future__ import annotations

import numpy as np
from scipy.special import rel_entr

from ..mdp import TabularMDP
from ..policy import softmax_policy
from ._evaluation import evaluate

__all__ = [
    "performance_difference",
    "surrogate",
    "kl_per_state",
    "max_kl",
    "mean_kl",
    "trpo_lower_bound",
    "mismatch_coefficient",
    "optimal_values",
    "score_matrix",
    "fisher",
    "natural_gradient",
    "critic_gradient",
]


def _scalar(x):
    return x.item() if np.iscomplexobj(x) else float(x)


def _need_discount(mdp: TabularMDP, what: str) -> None:
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"mdp must be a pgnotes.TabularMDP, got {type(mdp).__name__}")
    if mdp.gamma == 1.0:
        raise ValueError(
            f"{what} needs gamma < 1 (its (1-γ) factors vanish or blow up at gamma = 1); "
            "use mdp.with_gamma(0.99), for instance"
        )


def performance_difference(mdp, θ, θ_new, *, features=None) -> float:
    r"""``Σ_s η_{θ'}(s) Σ_a π_{θ'}(a|s) A_θ(s,a)``, which equals ``J(θ') - J(θ)``.

    The performance-difference lemma (Kakade & Langford 2002, Lemma 6.1), in the book's
    un-normalised ``J``. Any ``γ`` (episodic ``γ = 1`` included). ``θ_new`` may be complex
    (complex step). Book: from the gradient to trust regions I, ``tr-pdl``.
    """
    ev, new = evaluate(mdp, θ, features=features), evaluate(mdp, θ_new, features=features)
    return _scalar(np.sum(new.η[:, None] * new.π * ev.A))


def surrogate(mdp, θ, θ_new, *, features=None) -> float:
    r"""``L_θ(θ') - J(θ) = Σ_s η_θ(s) Σ_a π_{θ'}(a|s) A_θ(s,a)``: the PDL with ``η_θ`` for ``η_{θ'}``.

    Equal to ``J(θ') - J(θ)`` to first order in ``θ' - θ``: both have gradient ``∇J(θ)``
    at ``θ' = θ``. Book: from the gradient to trust regions I, ``tr-surrogate``.
    """
    ev = evaluate(mdp, θ, features=features)
    π_new = softmax_policy(mdp, θ_new, features=features).probs
    return _scalar(np.sum(ev.η[:, None] * π_new * ev.A))


def kl_per_state(mdp, θ, θ_new, *, features=None) -> np.ndarray:
    r"""``KL(π_θ(·|s) ‖ π_{θ'}(·|s))`` for every state, shape (S,); zero at terminal states.

    The old policy comes first, as in TRPO. Book: from the gradient to trust regions I, ``tr-kl-bound``.
    """
    p = softmax_policy(mdp, θ, features=features).probs
    q = softmax_policy(mdp, θ_new, features=features).probs
    kl = rel_entr(p, q).sum(axis=1)  # 0 log 0 = 0; inf where q = 0 < p
    kl[mdp.terminal] = 0.0
    return np.maximum(kl, 0.0)


def max_kl(mdp, θ, θ_new, *, features=None) -> float:
    r"""``D_KL^max = max_s KL(π_θ(·|s) ‖ π_{θ'}(·|s))`` over non-terminal states (TRPO, Theorem 1).

    Book: from the gradient to trust regions I, ``tr-kl-bound``.
    """
    return float(np.max(kl_per_state(mdp, θ, θ_new, features=features)[~mdp.terminal]))


def mean_kl(mdp, θ, θ_new, *, features=None) -> float:
    r"""``Σ_s μ_θ(s) KL(π_θ(·|s) ‖ π_{θ'}(·|s))`` with ``μ_θ = η_θ / Σ η_θ``.

    The average over visited states that PPO and TRPO constrain in practice (a per-token mean
    for a language model). For a continuing MDP ``μ_θ = d^γ``. Book: from the gradient to trust regions I,
    ``tr-ppo``.
    """
    η = evaluate(mdp, θ, features=features).η
    return float(np.sum(η * kl_per_state(mdp, θ, θ_new, features=features)) / np.sum(η))


def trpo_lower_bound(mdp, θ, θ_new, *, features=None) -> float:
    r"""TRPO's Theorem 1 (Schulman et al. 2015), as a lower bound on ``J(θ') - J(θ)``.

    .. math::
        J(θ') - J(θ) \ge L_θ(θ') - J(θ) - \frac{4 ε γ}{(1-γ)^2} D_{KL}^{\max}(θ, θ'),
        \qquad ε = \max_{s,a} |A_θ(s,a)|,

    in the book's un-normalised ``J`` (TRPO's ``η`` is the same quantity). It comes from the
    total-variation bound of Kakade & Langford with ``D_TV^2 ≤ D_KL``. Needs ``γ < 1``.
    Book: from the gradient to trust regions I, ``tr-kl-bound``.
    """
    _need_discount(mdp, "trpo_lower_bound")
    ev = evaluate(mdp, θ, features=features)
    ε = float(np.max(np.abs(ev.A[~mdp.terminal])))
    C = 4.0 * ε * mdp.gamma / (1.0 - mdp.gamma) ** 2
    return surrogate(mdp, θ, θ_new, features=features) - C * max_kl(mdp, θ, θ_new, features=features)


def mismatch_coefficient(mdp, θ, θ_ref, *, features=None) -> float:
    r"""``‖η_{θ_ref} / η_θ‖_∞ = max_s d^γ_{θ_ref}(s) / d^γ_θ(s)``, the distribution-mismatch coefficient.

    ``inf`` when ``θ_ref`` visits a state that ``θ`` never does. With ``θ_ref`` optimal it
    bounds the suboptimality by the best surrogate (Agarwal et al. 2021, gradient domination):
    ``J* - J(θ) ≤ coefficient · Σ_s η_θ(s) max_a A_θ(s,a)``. Book: from the gradient to trust regions I,
    ``tr-mismatch``.
    """
    η, η_ref = evaluate(mdp, θ, features=features).η, evaluate(mdp, θ_ref, features=features).η
    live = η_ref > 0
    if np.any(η[live] == 0):
        return float("inf")
    return float(np.max(η_ref[live] / η[live]))


def optimal_values(mdp, *, tol: float = 1e-12, max_iter: int = 100_000):
    r"""``V*`` and ``Q*`` by value iteration, ``Q ← R + γ P max_a Q``, to ``max|ΔQ| ≤ tol``.

    Needs ``γ < 1`` (a contraction). A greedy ``θ* = c · 1[Q* = max Q*]`` with large ``c``
    is then a near-optimal softmax policy. Book: from the gradient to trust regions I, ``tr-mismatch``.

    Returns
    -------
    V : (S,) array, Q : (S, A) array
    """
    _need_discount(mdp, "optimal_values")
    Q = np.zeros((mdp.n_states, mdp.n_actions))
    for _ in range(int(max_iter)):
        new = mdp.R + mdp.gamma * mdp.P @ Q.max(axis=1)
        if np.max(np.abs(new - Q)) <= tol:
            return new.max(axis=1), new
        Q = new
    raise ValueError(f"value iteration did not reach tol = {tol} in {max_iter} iterations")


def score_matrix(mdp, θ, *, features=None) -> np.ndarray:
    r"""``Ψ[(s,a), :] = ∇_θ \log π_θ(a|s)``, shape ``(S·A, θ.size)`` (rows in ``s``-major order).

    Book: from the gradient to trust regions II, ``ng-fisher``.
    """
    π_θ = softmax_policy(mdp, θ, features=features)
    return π_θ.score_table().reshape(mdp.n_states * mdp.n_actions, -1)


def _weights(mdp, θ, features):
    """``p(s,a) = d^γ(s) π(a|s)`` flattened, and the evaluation."""
    ev = evaluate(mdp, θ, features=features)
    return ((1.0 - mdp.gamma) * ev.η[:, None] * ev.π).ravel(), ev


def fisher(mdp, θ, *, features=None) -> np.ndarray:
    r"""``F(θ) = Σ_s d^γ(s) Σ_a π(a|s) ψ ψ^T``, shape ``(θ.size, θ.size)``, ``d^γ = (1-γ)η``.

    For the tabular softmax ``F`` is block diagonal, ``d^γ(s)(diag π_s - π_s π_s^T)`` per
    state, and singular: each block kills the constant vector (adding a constant to a
    state's logits leaves ``π`` unchanged), and unvisited or terminal states give zero
    blocks. Needs ``γ < 1``. Book: from the gradient to trust regions II, ``ng-fisher``.
    """
    _need_discount(mdp, "fisher")
    p, _ = _weights(mdp, θ, features)
    Ψ = score_matrix(mdp, θ, features=features)
    return (Ψ * p[:, None]).T @ Ψ


def natural_gradient(mdp, θ, *, features=None) -> np.ndarray:
    r"""``F(θ)^+ ∇J(θ)``, the minimum-norm natural gradient, shape of ``θ``.

    Computed as the compatible least-squares fit (Sutton et al. 2000; Kakade 2001):
    ``w = argmin_w Σ_{s,a} d^γ(s) π(a|s) (ψ^T w - A(s,a))^2`` (minimum norm), and
    ``F^+ ∇J = w / (1-γ)``. Solving with ``√p Ψ`` rather than ``F = Ψ^T P Ψ`` avoids
    squaring the condition number near deterministic policies. For the tabular softmax it
    is ``(A(s,·) - mean_a A(s,·)) / (1-γ)`` at visited states and 0 elsewhere: ``A/(1-γ)``
    up to a constant per state. Needs ``γ < 1``. Book: from the gradient to trust regions II, ``ng-npg``.
    """
    _need_discount(mdp, "natural_gradient")
    p, ev = _weights(mdp, θ, features)
    w = _fit(score_matrix(mdp, θ, features=features), p, ev.A.ravel())
    return (w / (1.0 - mdp.gamma)).reshape(np.shape(θ))


def _fit(Ψ, p, y):
    """Minimum-norm ``argmin_w Σ p (Ψ w - y)^2`` through ``√p Ψ`` (no squared condition)."""
    root = np.sqrt(p)
    return np.linalg.lstsq(root[:, None] * Ψ, root * y, rcond=None)[0]


def _visited_natural_direction(mdp, θ, features):
    """``x = F_μ^+ ∇J / Σ η`` and ``x^T F_μ x``, with ``F_μ`` under ``μ = η / Σ η`` (any γ)."""
    ev = evaluate(mdp, θ, features=features)
    p = (ev.η[:, None] * ev.π).ravel() / ev.η.sum()
    Ψ = score_matrix(mdp, θ, features=features)
    x = _fit(Ψ, p, ev.A.ravel())
    return x.reshape(np.shape(θ)), float(np.sum(p * (Ψ @ x) ** 2))


def critic_gradient(mdp, θ, critic_features, *, features=None) -> tuple[np.ndarray, np.ndarray]:
    r"""The policy gradient with ``Q`` replaced by a fitted linear critic ``f_w = χ^T w``.

    ``w`` minimises ``Σ_{s,a} d^γ(s) π(a|s) (χ(s,a)^T w - Q(s,a))^2`` (minimum norm), and the
    returned gradient is ``Σ_s η(s) Σ_a π(a|s) f_w(s,a) ∇log π(a|s)``. With compatible
    features ``χ = ψ`` (:func:`score_matrix`) it equals ``∇J`` exactly (Sutton et al. 2000,
    Theorem 2) and ``w / (1-γ)`` is the natural gradient; other features in general do not.

    Parameters
    ----------
    critic_features : array, shape (S, A, k)
        ``χ(s, a)``; pass ``score_matrix(mdp, θ).reshape(S, A, -1)`` for the compatible critic.

    Returns
    -------
    gradient : array of ``θ.shape``
    w : array, shape (k,)

    Book: from the gradient to trust regions II, ``ng-compatible``.
    """
    _need_discount(mdp, "critic_gradient")
    χ = np.asarray(critic_features, dtype=float)
    S, A = mdp.n_states, mdp.n_actions
    if χ.ndim != 3 or χ.shape[:2] != (S, A):
        raise ValueError(f"critic_features must have shape (S, A, k) = ({S}, {A}, k), got {χ.shape}")
    p, ev = _weights(mdp, θ, features)
    w = _fit(χ.reshape(S * A, -1), p, ev.Q.ravel())
    f = (χ @ w).reshape(S, A)
    return ev.policy.score_contract(ev.η[:, None] * ev.π * f), w
