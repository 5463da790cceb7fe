r"""Exact optimisation dynamics: plain and natural gradient ascent, PPO-clip, KL penalty, TRPO.

No sampling: every update uses exact expectations, and ``J`` is evaluated exactly after each
one. The clipped and KL-penalised objectives are the book's surrogate
(:func:`~pgnotes.exact.surrogate`, un-normalised ``J`` units) with PPO's modifications:

.. math::
    L^{CLIP}_{θ_0}(θ) = \sum_s η_{θ_0}(s) \sum_a π_{θ_0}(a|s)
        \min\big(r\,A_{θ_0}(s,a),\ \mathrm{clip}(r, 1-ε, 1+ε)\,A_{θ_0}(s,a)\big),
    \qquad r = π_θ(a|s) / π_{θ_0}(a|s),

    L^{KL}_{θ_0}(θ) = L_{θ_0}(θ) - J(θ_0) - β\, \overline{KL}(θ_0, θ),

with :math:`\overline{KL}` the visited-state mean of :func:`~pgnotes.exact.mean_kl`. Book:
from the gradient to trust regions I (``tr-ppo``); II (``ng-dynamics``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import as_count
from ..policy import softmax_policy
from ._evaluation import evaluate, policy_gradient
from ._trust import _visited_natural_direction, kl_per_state, mean_kl, natural_gradient

__all__ = ["Path", "ascent", "clip_objective", "surrogate_ascent", "trpo_step", "METHODS"]

#: The update rules :func:`ascent` knows.
METHODS = ("pg", "npg", "ppo", "kl", "trpo")


@dataclass(frozen=True)
class Path:
    """An exact optimisation run.

    Attributes
    ----------
    θ : array, shape ``(n+1,) + θ0.shape``, the parameters after each update (``θ[0] = θ0``).
    J : array, shape (n+1,), the exact objective at each ``θ[k]``.
    mean_kl, max_kl : arrays, shape (n,), the KL of each update from ``θ[k]`` to ``θ[k+1]``.
    """

    θ: np.ndarray
    J: np.ndarray
    mean_kl: np.ndarray
    max_kl: np.ndarray


def _positive(x, name: str) -> float:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.number)):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    if not (np.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be a positive finite number, got {x}")
    return float(x)


def clip_objective(mdp, θ, θ_old, cliprange: float, *, features=None) -> tuple[float, np.ndarray]:
    r"""PPO's clipped surrogate ``L^CLIP_{θ_old}(θ)`` and its exact gradient in ``θ``.

    Zero at ``θ = θ_old``, where its gradient is ``∇J(θ_old)``. Pairs whose ratio has left
    ``[1-ε, 1+ε]`` in the direction the advantage favours contribute no gradient.
    Book: from the gradient to trust regions I, ``tr-ppo``.
    """
    ε = _positive(cliprange, "cliprange")
    return _clip(evaluate(mdp, θ_old, features=features), softmax_policy(mdp, θ, features=features), ε)


def _clip(old, π_θ, ε):
    r = π_θ.probs / old.π
    unclipped, clipped = r * old.A, np.clip(r, 1 - ε, 1 + ε) * old.A
    value = float(np.sum(old.η[:, None] * old.π * np.minimum(unclipped, clipped)))
    active = unclipped <= clipped  # the min picks the unclipped term: it carries ∇r
    return value, π_θ.score_contract(old.η[:, None] * π_θ.probs * old.A * active)


def _kl_gradient(old, π_θ):
    """``∇_θ`` of the visited-state mean ``Σ_s μ(s) KL(π_old(·|s) ‖ π_θ(·|s))``."""
    μ = old.η / old.η.sum()
    return π_θ.score_contract(-μ[:, None] * old.π)


def surrogate_ascent(mdp, θ_old, *, lr, epochs, cliprange=None, kl_coef=0.0, features=None):
    r"""``epochs`` full-batch gradient steps of size ``lr`` on a PPO-style objective from ``θ_old``.

    Maximises ``L^CLIP`` (``cliprange`` given) or the unclipped surrogate ``L`` (``cliprange``
    None), minus ``kl_coef`` times the mean KL from ``θ_old``: the exact counterpart of PPO's
    epochs over one batch. Returns the new ``θ``. Book: from the gradient to trust regions I, ``tr-ppo``.
    """
    lr = _positive(lr, "lr")
    epochs = as_count(epochs, "epochs", minimum=1, maximum=100_000)
    θ_old = np.asarray(θ_old, dtype=float)
    old = evaluate(mdp, θ_old, features=features)
    ε = None if cliprange is None else _positive(cliprange, "cliprange")
    θ = θ_old.copy()
    for _ in range(epochs):
        π_θ = softmax_policy(mdp, θ, features=features)
        if ε is None:
            g = π_θ.score_contract(old.η[:, None] * π_θ.probs * old.A)
        else:
            g = _clip(old, π_θ, ε)[1]
        if kl_coef:
            g = g - kl_coef * _kl_gradient(old, π_θ)
        θ = θ + lr * g
    return θ


def trpo_step(mdp, θ_old, δ, *, features=None, backtracks: int = 20) -> np.ndarray:
    r"""One exact TRPO update: the natural direction scaled to mean KL ``δ``, then backtracking.

    The quadratic model ``mean KL ≈ ½ Δ^T F_μ Δ``, with ``F_μ = Σ_s μ(s) Σ_a π ψ ψ^T`` the
    Fisher matrix under the visited-state law ``μ = η / Σ η`` (``F / Σ_s d^γ(s)`` when
    ``γ < 1``), gives ``Δ = √(2δ / x^T F_μ x) x`` with ``x = F_μ^+ ∇J``; the step is halved
    until the exact mean KL is at most ``δ`` and the surrogate improves (Schulman et al.
    2015, Appendix C). Works at any ``γ``, episodic ``γ = 1`` included.
    Book: from the gradient to trust regions II, ``tr-ppo``.
    """
    δ = _positive(δ, "δ")
    θ_old = np.asarray(θ_old, dtype=float)
    x, quad = _visited_natural_direction(mdp, θ_old, features)
    if quad <= 0.0:
        return θ_old.copy()  # a stationary point: nothing to gain
    Δ = np.sqrt(2.0 * δ / quad) * x
    old = evaluate(mdp, θ_old, features=features)
    for _ in range(backtracks):
        θ = θ_old + Δ
        π = softmax_policy(mdp, θ, features=features).probs
        gain = float(np.sum(old.η[:, None] * π * old.A))
        if gain > 0.0 and mean_kl(mdp, θ_old, θ, features=features) <= δ:
            try:
                evaluate(mdp, θ, features=features)  # at γ = 1: the new policy must still end episodes
                return θ
            except ValueError:
                pass
        Δ = Δ / 2.0
    return θ_old.copy()


def ascent(mdp, θ0, step, *, n, method: str = "pg", features=None, **options) -> Path:
    r"""Run ``n`` exact updates from ``θ0`` and record ``θ``, ``J`` and each update's KL.

    Methods
    -------
    ``"pg"``: ``θ ← θ + step · ∇J`` (softmax policy gradient, Mei et al. 2020).
    ``"npg"``: ``θ ← θ + step · F^+ ∇J``; tabular: soft policy iteration
    ``π ← π exp(step · A / (1-γ)) / Z`` (Kakade 2001; Agarwal et al. 2021). ``γ < 1``.
    ``"ppo"``: :func:`surrogate_ascent` with ``lr = step`` and ``options`` ``cliprange``,
    ``epochs`` (and optionally ``kl_coef``).
    ``"kl"``: :func:`surrogate_ascent` without clipping, ``options`` ``kl_coef``, ``epochs``.
    ``"trpo"``: :func:`trpo_step` with ``δ = step`` (any ``γ``).

    Book: from the gradient to trust regions II, ``ng-dynamics``; trust regions, ``tr-ppo``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    step = _positive(step, "step")
    n = as_count(n, "n", minimum=0, maximum=1_000_000)
    θ = np.asarray(θ0, dtype=float).copy()
    θs, Js = [θ], [evaluate(mdp, θ, features=features).J]
    mean, mx = [], []
    for _ in range(n):
        if method == "pg":
            new = θ + step * policy_gradient(mdp, θ, features=features)
        elif method == "npg":
            new = θ + step * natural_gradient(mdp, θ, features=features)
        elif method == "trpo":
            new = trpo_step(mdp, θ, step, features=features)
        else:
            kw = dict(options)
            if method == "kl":
                kw["cliprange"] = None
            new = surrogate_ascent(mdp, θ, lr=step, features=features, **kw)
        kl = kl_per_state(mdp, θ, new, features=features)
        η = evaluate(mdp, θ, features=features).η
        mean.append(float(np.sum(η * kl) / η.sum()))
        mx.append(float(kl[~mdp.terminal].max()))
        θ = new
        θs.append(θ)
        Js.append(evaluate(mdp, θ, features=features).J)
    return Path(np.array(θs), np.array(Js), np.array(mean), np.array(mx))
