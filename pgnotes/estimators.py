r"""Per-trajectory policy-gradient estimators and the weights they put on the score.

Every estimator here has the form

.. math:: \hat g(τ) = \sum_{t=0}^{T-1} w_t(τ)\, ∇_θ \log π_θ(a_t|s_t),

and returns one sample per trajectory, shape ``(n,) + θ.shape``, so that means and
variances can be taken over a sampled batch (:mod:`pgnotes.sampling`) or exactly over an
enumerated one (:mod:`pgnotes.trajectories`). Steps after termination get zero weight.

Value tables may be stationary (``V`` of shape (S,), ``Q``/``A`` of shape (S, A)) or
time-indexed as returned by :mod:`pgnotes.finite` (``V`` of shape (T+1, S), ``Q``/``A`` of
shape (T, S, A)); time-indexed tables make the critic estimators exactly unbiased for the
finite-horizon ``∇J_T``.

=====================================  =================================  ===================
estimator                              weight ``w_t``                     book
=====================================  =================================  ===================
:func:`reinforce_total_return`         ``R(τ)``                           A, eq. (2)
:func:`reinforce`                      ``G_t = Σ_{k≥t} γ^k r_k``          A, boxed
:func:`reinforce_baseline`             ``G_t − γ^t b(s_t)``               B, A2C
:func:`q_actor_critic`                 ``γ^t Q(s_t, a_t)``                B, boxed
:func:`advantage_actor_critic`         ``γ^t A(s_t, a_t)``                B, A2C
:func:`td_actor_critic`                ``γ^t δ_t``                        GAE(λ)
:func:`gae`                            ``γ^t Â_t^{GAE(γ,λ)}``             GAE(λ)
:func:`reinforce_no_gamma_t`           ``Σ_{k≥t} γ^{k−t} r_k`` (no γ^t)    dropped discount
=====================================  =================================  ===================
"""

from __future__ import annotations

import numpy as np

from ._validate import as_real, real_array
from .mdp import TabularMDP
from .policy import softmax_policy
from .sampling import Batch

__all__ = [
    "discount_cumsum",
    "discounts",
    "total_return",
    "returns_to_go",
    "past_returns",
    "td_errors",
    "gae_advantages",
    "score_sum",
    "reinforce_total_return",
    "reinforce",
    "reinforce_baseline",
    "q_actor_critic",
    "advantage_actor_critic",
    "td_actor_critic",
    "gae",
    "reinforce_no_gamma_t",
    "mean_and_stderr",
    "gae_bias_variance",
]


def _check_batch(batch) -> Batch:
    if not isinstance(batch, Batch):
        raise TypeError(f"batch must be a pgnotes.Batch, got {type(batch).__name__}")
    return batch


def discount_cumsum(x, discount) -> np.ndarray:
    r"""The backward recursion :math:`y_t = x_t + c_t\, y_{t+1}`, :math:`y_T = 0`, over the last axis.

    With a constant ``c`` this is :math:`y_t = \sum_{k \ge t} c^{k-t} x_k`: the return counted
    from ``t`` (``x = r``, ``c = γ``), GAE (``x = δ``, ``c = γλ``), token-level GAE (``c = λ``).
    ``discount`` is a number or an array broadcastable to ``x`` (a per-step ``c_t``; 0 cuts the
    sum, as at the end of an episode). Every return and advantage of the package is this one
    function (Spinning Up's ``discount_cumsum``; rlax's "special cases call the general one").
    Book: GAE(λ), ``gae-gae``.

    Examples
    --------
    >>> discount_cumsum([1.0, 1.0, 1.0], 0.5)
    array([1.75, 1.5 , 1.  ])
    >>> discount_cumsum([[1.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [0.0, 1.0]])  # per-step c_t
    array([[3., 2.],
           [3., 4.]])
    """
    x = real_array(x, "x")
    if x.ndim == 0:
        raise ValueError("x must have at least one axis (time is the last one)")
    c = np.broadcast_to(real_array(discount, "discount"), x.shape)
    y = np.empty_like(x)
    acc = np.zeros(x.shape[:-1])
    for t in reversed(range(x.shape[-1])):
        acc = x[..., t] + c[..., t] * acc
        y[..., t] = acc
    return y


def discounts(batch: Batch) -> np.ndarray:
    """``γ^t`` for ``t = 0..T-1``, shape (T,). ``0^0 = 1``."""
    return _check_batch(batch).gamma ** np.arange(batch.horizon, dtype=float)


def total_return(batch: Batch) -> np.ndarray:
    r"""``R(τ) = Σ_{t<T} γ^t r_t`` per trajectory, shape (n,). Book: derivation A, ``a-J``."""
    return (batch.rewards * discounts(batch)).sum(axis=1)


def returns_to_go(batch: Batch, *, from_time_zero: bool = True) -> np.ndarray:
    r"""Return-to-go per step, shape (n, T).

    With ``from_time_zero=True`` (the source's definition) :math:`G_t = \sum_{k=t}^{T-1} γ^k r_k`;
    otherwise the return counted from ``t``, :math:`\sum_{k=t}^{T-1} γ^{k-t} r_k`, the one most
    code computes. They differ by the factor ``γ^t``. Book: derivation A, boxed form;
    converting A into B, ``ab-EG``.

    Examples
    --------
    >>> import numpy as np
    >>> from pgnotes import Batch
    >>> ones = np.ones((1, 3))
    >>> batch = Batch(0 * ones.astype(int), 0 * ones.astype(int), ones, 0 * ones.astype(int), ones > 0, gamma=0.5)
    >>> returns_to_go(batch)  # γ^t counted from t = 0: G_1 = 0.5 + 0.25
    array([[1.75, 0.75, 0.25]])
    >>> returns_to_go(batch, from_time_zero=False)
    array([[1.75, 1.5 , 1.  ]])
    """
    batch = _check_batch(batch)
    G = discount_cumsum(batch.rewards, batch.gamma)  # G'_t = r_t + γ G'_{t+1}
    return G * discounts(batch) if from_time_zero else G


def past_returns(batch: Batch) -> np.ndarray:
    r"""The "past" part of eq. (3) of the source, :math:`\sum_{k<t} γ^k r_k`, shape (n, T)."""
    disc = batch.rewards * discounts(batch)
    return np.cumsum(disc, axis=1) - disc


def _at(table, batch: Batch, states, name: str, lead: int, offset: int = 0) -> np.ndarray:
    """Look up a stationary (S, …) or time-indexed (T+·, S, …) table at ``states[i, t]``."""
    table = real_array(table, name)
    if table.ndim == lead:
        return table[states] if lead == 1 else table[states, batch.actions]
    if table.ndim == lead + 1:
        need = batch.horizon + offset
        if table.shape[0] < need:
            raise ValueError(f"time-indexed {name} needs at least {need} rows, got {table.shape[0]}")
        t = np.arange(batch.horizon)[None, :] + offset
        return table[t, states] if lead == 1 else table[t, states, batch.actions]
    raise ValueError(f"{name} must be stationary or time-indexed, got shape {table.shape}")


def td_errors(mdp: TabularMDP, batch: Batch, V) -> np.ndarray:
    r"""TD errors :math:`δ_t = r_t + γ V(s_{t+1}) - V(s_t)`, shape (n, T); zero after termination.

    ``V`` of a terminal state is taken as 0 whatever the table says: the episode has ended.
    At the last step ``T-1`` the tail is bootstrapped with ``V(s_T)``. Book: GAE(λ), ``gae-delta``.
    """
    batch = _check_batch(batch)
    v_now = _at(V, batch, batch.states, "V", lead=1)
    v_next = _at(V, batch, batch.next_states, "V", lead=1, offset=1)
    v_now = np.where(mdp.terminal[batch.states], 0.0, v_now)
    v_next = np.where(mdp.terminal[batch.next_states], 0.0, v_next)
    return np.where(batch.mask, batch.rewards + batch.gamma * v_next - v_now, 0.0)


def gae_advantages(mdp: TabularMDP, batch: Batch, V, lam: float) -> np.ndarray:
    r"""GAE(γ, λ) advantages :math:`Â_t = \sum_{l \ge 0} (γλ)^l δ_{t+l}`, shape (n, T).

    ``λ = 0`` gives the TD error; ``λ = 1`` gives ``Σ_{k≥t} γ^{k-t} r_k - V(s_t)`` plus the
    bootstrapped tail (Schulman et al. 2016). Book: GAE(λ), ``gae-gae``.

    Examples
    --------
    >>> import numpy as np
    >>> from pgnotes import envs, exact, finite, sample
    >>> mdp, θ = envs.two_state_mdp(0.9), np.zeros((2, 2))
    >>> batch = sample(mdp, θ, n=4, horizon=6, rng=np.random.default_rng(1))
    >>> V = exact.state_values(mdp, θ)
    >>> bool(np.allclose(gae_advantages(mdp, batch, V, 0.0), td_errors(mdp, batch, V)))  # λ = 0: TD errors
    True
    """
    λ = as_real(lam, "lam (GAE λ)", low=0.0, high=1.0)
    δ = td_errors(mdp, batch, V)
    return discount_cumsum(δ, batch.gamma * λ)  # GAE-λ: Â_t = δ_t + γλ Â_{t+1}


def score_sum(mdp: TabularMDP, θ, batch: Batch, weights, *, features=None) -> np.ndarray:
    r"""``Σ_t mask_t w_t ∇_θ log π_θ(a_t|s_t)`` per trajectory, shape ``(n,) + θ.shape``.

    The common form of every estimator in this module.
    """
    batch = _check_batch(batch)
    weights = real_array(weights, "weights", shape=batch.states.shape)  # one per trajectory and step
    π_θ = softmax_policy(mdp, θ, features=features)
    return π_θ.score_sum(batch.states, batch.actions, np.where(batch.mask, weights, 0.0))


def reinforce_total_return(mdp, θ, batch, *, features=None):
    r"""``R(τ) Σ_t ∇log π(a_t|s_t)``: eq. (2) of the source, before dropping past rewards."""
    R = total_return(batch)
    return score_sum(mdp, θ, batch, np.broadcast_to(R[:, None], batch.states.shape), features=features)


def reinforce(mdp, θ, batch, *, features=None):
    r"""``Σ_t G_t ∇log π(a_t|s_t)`` with the source's ``G_t = Σ_{k≥t} γ^k r_k`` (boxed form of A).

    Examples
    --------
    >>> import numpy as np
    >>> from pgnotes import envs, finite, trajectories
    >>> mdp, θ = envs.two_state_mdp(0.9), np.zeros((2, 2))
    >>> batch = trajectories.enumerate_trajectories(mdp, θ, horizon=3)
    >>> g = trajectories.expectation(batch, reinforce(mdp, θ, batch))  # exactly unbiased for ∇J_T
    >>> bool(np.allclose(g, finite.policy_gradient(mdp, θ, horizon=3), atol=1e-12))
    True
    """
    return score_sum(mdp, θ, batch, returns_to_go(batch), features=features)


def reinforce_baseline(mdp, θ, batch, b, *, features=None):
    r"""``Σ_t (G_t - γ^t b(s_t)) ∇log π(a_t|s_t)`` for a state baseline ``b`` (S,) or (T+1, S)."""
    base = _at(b, batch, batch.states, "b", lead=1) * discounts(batch)
    return score_sum(mdp, θ, batch, returns_to_go(batch) - base, features=features)


def q_actor_critic(mdp, θ, batch, Q, *, features=None):
    r"""``Σ_t γ^t Q(s_t,a_t) ∇log π(a_t|s_t)``: the boxed theorem of derivation B, sampled."""
    w = _at(Q, batch, batch.states, "Q", lead=2) * discounts(batch)
    return score_sum(mdp, θ, batch, w, features=features)


def advantage_actor_critic(mdp, θ, batch, A, *, features=None):
    r"""``Σ_t γ^t A(s_t,a_t) ∇log π(a_t|s_t)``: A2C with the exact advantage."""
    w = _at(A, batch, batch.states, "A", lead=2) * discounts(batch)
    return score_sum(mdp, θ, batch, w, features=features)


def td_actor_critic(mdp, θ, batch, V, *, features=None):
    r"""``Σ_t γ^t δ_t ∇log π(a_t|s_t)``: the one-step TD error as advantage (GAE with λ = 0)."""
    return score_sum(mdp, θ, batch, td_errors(mdp, batch, V) * discounts(batch), features=features)


def gae(mdp, θ, batch, V, lam, *, features=None):
    r"""``Σ_t γ^t Â_t ∇log π(a_t|s_t)`` with GAE(γ, λ) advantages."""
    return score_sum(mdp, θ, batch, gae_advantages(mdp, batch, V, lam) * discounts(batch), features=features)


def gae_bias_variance(mdp: TabularMDP, θ, V, lambdas, *, horizon: int,
                      features=None) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact bias and total variance of the GAE gradient estimator :func:`gae`, for each λ.

    With every trajectory of ``T`` steps enumerated (:func:`pgnotes.trajectories.enumerate_trajectories`)
    the moments are finite sums over ``P(τ)``:

    .. math::
        \operatorname{bias}(λ) = E[\hat g_λ] - ∇J_T, \qquad
        \operatorname{Var}(λ) = E\,\|\hat g_λ - E[\hat g_λ]\|^2, \qquad
        \hat g_λ = \sum_{t<T} γ^t Â_t^{GAE(γ,λ)} ∇_θ \log π_θ(a_t|s_t),

    against the exact finite-horizon gradient ``∇J_T`` of :func:`pgnotes.finite.policy_gradient`.
    With the exact time-indexed critic (:func:`pgnotes.finite.state_values`) the bias is zero
    for every λ; with any critic it is zero at ``λ = 1`` as soon as the bootstrapped tail
    ``V(s_T)`` vanishes (a time-indexed critic with ``V_T = 0``, or episodes that all end before ``T``).
    Book: GAE(λ), ``gae-bias`` (book/06_gae.ipynb).

    Parameters
    ----------
    mdp, θ, features
        The MDP and the softmax policy.
    V : array, shape (S,) or (T+1, S)
        The critic, stationary or time-indexed.
    lambdas : sequence of float in [0, 1]
    horizon : int
        The horizon ``T``; the enumeration must stay below ``MAX_TRAJECTORIES``.

    Returns
    -------
    bias : array, shape ``(len(lambdas),) + θ.shape``
    variance : array, shape ``(len(lambdas),)``
    """
    from .finite import policy_gradient
    from .trajectories import enumerate_trajectories, expectation, variance

    lambdas = np.atleast_1d(np.asarray(lambdas, dtype=float))
    if lambdas.ndim != 1:
        raise ValueError(f"lambdas must be a sequence of numbers, got shape {lambdas.shape}")
    batch = enumerate_trajectories(mdp, θ, horizon=horizon, features=features)
    g = policy_gradient(mdp, θ, horizon=horizon, features=features)
    bias, var = [], []
    for λ in lambdas:
        X = gae(mdp, θ, batch, V, λ, features=features)
        bias.append(expectation(batch, X) - g)
        var.append(variance(batch, X))
    return np.array(bias), np.array(var)


def reinforce_no_gamma_t(mdp, θ, batch, *, features=None):
    r"""``Σ_t (Σ_{k≥t} γ^{k-t} r_k) ∇log π(a_t|s_t)``: the return counted from ``t``, **no γ^t**.

    What most implementations compute. For ``γ < 1`` it is *not* an unbiased estimate of
    ``∇J`` (Thomas 2014; Nota & Thomas 2020). Book: the discount that practice
    drops (book/04_dropped_discount.ipynb).
    """
    return score_sum(mdp, θ, batch, returns_to_go(batch, from_time_zero=False), features=features)


def mean_and_stderr(samples) -> tuple[np.ndarray, np.ndarray]:
    """Monte-Carlo mean and its standard error, per coordinate, over the first axis."""
    X = np.asarray(samples, dtype=float)
    if X.shape[0] < 2:
        raise ValueError("a standard error needs at least two samples")
    return X.mean(axis=0), X.std(axis=0, ddof=1) / np.sqrt(X.shape[0])
