r"""Independent routes to ``J`` and ``∇J``, for checking the theorem's code path.

Nothing here calls :mod:`pgnotes.exact`'s gradient code:

* :func:`complex_step_gradient` and :func:`central_difference_gradient` differentiate any
  scalar function of ``θ`` numerically;
* :func:`objective` computes ``J(θ)`` with its own softmax and a dense solve;
* :func:`symbolic_objective` builds ``J(θ)`` as a sympy expression for a tabular softmax on a
  small MDP, and :func:`symbolic_gradient` differentiates it symbolically.

Book: derivation B, ``b-thm-pg`` (checked three ways).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._validate import as_real, real_array
from .mdp import TabularMDP

__all__ = [
    "complex_step_gradient",
    "complex_step_jacobian",
    "central_difference_gradient",
    "objective",
    "symbolic_objective",
    "symbolic_gradient",
    "relative_error",
    "angle",
]


def _real_parameter(θ) -> np.ndarray:
    return real_array(θ, "θ")


def _step(h) -> float:
    return as_real(h, "the step h", low=0.0, low_open=True)


def complex_step_gradient(f: Callable, θ, h: float = 1e-20) -> np.ndarray:
    r"""``∂f/∂θ_i ≈ Im f(θ + i h e_i) / h``, exact to rounding for analytic ``f`` (Squire & Trapp 1998).

    ``f`` must accept complex arrays and be analytic in ``θ`` (no ``abs``, no ``.real``).
    There is no subtractive cancellation, so ``h`` can be tiny.

    Examples
    --------
    >>> import numpy as np
    >>> complex_step_gradient(lambda θ: np.sum(θ**3), np.array([1.0, 2.0]))
    array([ 3., 12.])
    """
    θ, h = _real_parameter(θ), _step(h)
    g = np.zeros(θ.size)
    for i in range(θ.size):
        z = θ.astype(complex).ravel()
        z[i] += 1j * h
        g[i] = np.imag(f(z.reshape(θ.shape))) / h
    return g.reshape(θ.shape)


def complex_step_jacobian(f: Callable, θ, h: float = 1e-20) -> np.ndarray:
    r"""Jacobian of an array-valued ``f`` by complex step: ``J[..., i] = Im f(θ + i h e_i) / h``.

    The array version of :func:`complex_step_gradient`: ``f`` returns an array (for example
    one value per trajectory) and the result has shape ``f(θ).shape + θ.shape``, so row
    ``J[k]`` is the gradient of ``f(θ)[k]``. ``f`` must be analytic in ``θ`` and accept complex
    arrays. Book: derivation A, ``a-logtrick`` (``∇_θ P(τ)`` for every trajectory at once).
    """
    θ, h = _real_parameter(θ), _step(h)
    cols = []
    for i in range(θ.size):
        z = θ.astype(complex).ravel()
        z[i] += 1j * h
        cols.append(np.imag(np.asarray(f(z.reshape(θ.shape)))) / h)
    out = np.stack(cols, axis=-1)
    return out.reshape(out.shape[:-1] + θ.shape)


def central_difference_gradient(f: Callable, θ, h: float = 1e-6) -> np.ndarray:
    r"""``∂f/∂θ_i ≈ (f(θ + h e_i) - f(θ - h e_i)) / 2h``; error ``O(h²)`` plus rounding ``O(ε/h)``."""
    θ, h = _real_parameter(θ), _step(h)
    g = np.zeros(θ.size)
    for i in range(θ.size):
        e = np.zeros(θ.size)
        e[i] = h
        g[i] = (f(θ + e.reshape(θ.shape)) - f(θ - e.reshape(θ.shape))) / (2 * h)
    return g.reshape(θ.shape)


def objective(mdp: TabularMDP, θ, *, features=None):
    r"""``J(θ) = ρ0^T (I - γ P_π)^{-1} r_π``, written out independently of :mod:`pgnotes.exact`.

    Terminal states are removed from the solve (their value is 0). Accepts complex ``θ``.
    """
    θ = np.asarray(θ)
    logits = θ if features is None else np.asarray(features) @ θ
    expo = np.exp(logits - logits.real.max(axis=1, keepdims=True))
    π = expo / expo.sum(axis=1, keepdims=True)
    keep = ~mdp.terminal
    P_π = (π[:, :, None] * mdp.P).sum(axis=1)[np.ix_(keep, keep)]
    r_π = (π * mdp.R).sum(axis=1)[keep]
    V = np.linalg.solve(np.eye(int(keep.sum())) - mdp.gamma * P_π, r_π)
    return mdp.rho0[keep] @ V


def symbolic_objective(mdp: TabularMDP):
    r"""``J(θ)`` of the tabular softmax as a sympy expression, for ``S ≤ 3`` and ``A ≤ 3``.

    Returns ``(J, θ_symbols)`` where ``θ_symbols[s][a]`` is the symbol ``θ_{s,a}``. The value
    function is obtained by solving the Bellman system symbolically (book: derivation B,
    ``b-bellman``); rewards, transitions and ``γ`` enter as exact rationals.
    """
    import sympy as sp

    S, A = mdp.n_states, mdp.n_actions
    if S > 3 or A > 3:
        raise ValueError(f"symbolic_objective is for S, A ≤ 3 (got S={S}, A={A}); sympy would be too slow")
    θs = [[sp.Symbol(f"θ_{s}{a}", real=True) for a in range(A)] for s in range(S)]
    q = lambda x: sp.nsimplify(float(x), rational=True)  # noqa: E731
    π = [[sp.exp(θs[s][a]) / sum(sp.exp(θs[s][b]) for b in range(A)) for a in range(A)] for s in range(S)]
    live = [s for s in range(S) if not mdp.terminal[s]]
    P_π = sp.Matrix(len(live), len(live), lambda i, j: sum(π[live[i]][a] * q(mdp.P[live[i], a, live[j]]) for a in range(A)))
    r_π = sp.Matrix(len(live), 1, lambda i, _: sum(π[live[i]][a] * q(mdp.R[live[i], a]) for a in range(A)))
    V = (sp.eye(len(live)) - q(mdp.gamma) * P_π).LUsolve(r_π)
    J = sum(q(mdp.rho0[live[i]]) * V[i] for i in range(len(live)))
    return J, θs


def symbolic_gradient(mdp: TabularMDP, θ) -> np.ndarray:
    """``∇J(θ)`` by sympy differentiation of :func:`symbolic_objective`, evaluated at ``θ``."""
    import sympy as sp

    θ = _real_parameter(θ)
    if θ.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"θ must have shape (S, A) = {(mdp.n_states, mdp.n_actions)}, got {θ.shape}")
    J, θs = symbolic_objective(mdp)
    flat = [x for row in θs for x in row]
    values = {x: sp.Float(v, 30) for x, v in zip(flat, θ.ravel())}
    return np.array([float(sp.diff(J, x).evalf(25, subs=values)) for x in flat]).reshape(θ.shape)


def relative_error(x, y) -> float:
    r"""``‖x - y‖ / max(‖y‖, tiny)``: the error of ``x`` measured against the reference ``y``."""
    x, y = np.asarray(x), np.asarray(y)
    return float(np.linalg.norm(x - y) / max(np.linalg.norm(y), np.finfo(float).tiny))


def angle(u, v) -> float:
    r"""The angle between two arrays as vectors, in degrees; ``nan`` if either is zero.

    Used wherever two gradients are compared. Book: language models I, ``lm-rloo``.

    Computed as :math:`2 \operatorname{atan2}(\|\hat u - \hat v\|, \|\hat u + \hat v\|)` with unit
    vectors, accurate for tiny angles too (``arccos`` of a dot product is not).
    """
    u, v = np.ravel(np.asarray(u, dtype=float)), np.ravel(np.asarray(v, dtype=float))
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return float("nan")
    u, v = u / nu, v / nv
    return float(np.degrees(2.0 * np.arctan2(np.linalg.norm(u - v), np.linalg.norm(u + v))))
