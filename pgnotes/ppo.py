r"""PPO at the token level: per-token rewards with a KL term, GAE, the clipped surrogate, a critic.

Everything takes a :class:`~pgnotes.tokens.TokenMDP` and padded :class:`~pgnotes.tokens.TokenBatch`
arrays, as an LLM-PPO implementation would, so that each piece can be checked against the exact
quantities of :mod:`pgnotes.tokens`. Book: language models II, ``ppo-clip``, ``ppo-gae``, ``ppo-k3``.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_count, as_real, check_kl_coefficient, check_token_batch, check_token_mdp, real_array
from .estimators import discount_cumsum
from .tokens import TokenBatch, TokenMDP, row_weights, sample_groups, score_sum, token_log_probs

__all__ = [
    "token_rewards",
    "gae_advantages",
    "clipped_surrogate",
    "clipped_surrogate_gradient",
    "clip_fraction",
    "conditional_expectation",
    "fit_values",
]

def token_rewards(tmdp: TokenMDP, batch: TokenBatch, *, beta: float = 0.0, θ=None, theta_ref=None,
                  features=None) -> np.ndarray:
    r"""Per-token rewards, shape (N, L): the verifier's ``r`` on the last real token, minus a KL term on every one.

    .. math:: r_t = r(x, y)\, 1[t = |y| - 1] \;-\; β \log\frac{π_θ(y_t|s_t)}{π_{ref}(y_t|s_t)}, \qquad t < |y|,

    and 0 on padding. The last real token is the EOS, or the ``L``-th token of a truncated
    completion; a row with no real token (a mask emptied on purpose) gets no reward. The KL
    term (``β > 0``, it needs ``θ`` and ``θ_ref``) is the per-token penalty of Ziegler et al.
    and InstructGPT: its expected sum along a completion is the sequence KL
    (:func:`~pgnotes.tokens.sequence_kl`), and with it the returns are those of :func:`~pgnotes.tokens.evaluate` with ``β``.
    Book: language models II, ``ppo-gae``.
    """
    tmdp, batch = check_token_mdp(tmdp), check_token_batch(tmdp, batch)
    beta = check_kl_coefficient(beta, theta_ref)
    N = batch.n
    r = np.zeros(batch.tokens.shape)
    last = batch.lengths - 1
    ok = last >= 0
    r[np.arange(N)[ok], last[ok]] = batch.rewards[ok]
    if beta > 0:
        if θ is None:
            raise ValueError("a KL term in the reward (β > 0) needs the policy parameters θ")
        log_ratio = (token_log_probs(tmdp, θ, batch, features=features)
                     - token_log_probs(tmdp, theta_ref, batch, features=features))
        if np.iscomplexobj(log_ratio):
            raise ValueError("token_rewards needs a real θ")
        r = r - beta * log_ratio
    return np.where(batch.mask, r, 0.0)


def gae_advantages(tmdp: TokenMDP, batch: TokenBatch, rewards, values, lam: float) -> np.ndarray:
    r"""Token-level GAE with ``γ = 1``: :math:`\hat A_t = \sum_{l ≥ 0} λ^l δ_{t+l}`, shape (N, L).

    .. math:: δ_t = r_t + V(s_{t+1}) - V(s_t), \qquad \hat A_t = δ_t + λ \hat A_{t+1},

    over the real tokens of each row, with :math:`V(s_{|y|}) = 0` (the completion has ended, at
    its EOS or at length ``L``) and 0 on padding. ``values`` is a critic, one number per
    non-terminal prefix (shape (n_prefixes,)), read at ``batch.prefixes``. With the exact
    ``V`` (:func:`~pgnotes.tokens.state_values`) the advantages are unbiased for every ``λ``; with ``λ = 1``
    they are the return-to-go minus ``V(s_t)``, and with ``V = 0`` too, every token of the
    completion gets the return :math:`\sum_{t' ≥ t} r_{t'}` (REINFORCE). Book: language models II, ``ppo-gae``.

    Examples
    --------
    >>> from pgnotes.tokens import completions, long_answer_mdp, row_weights, state_values
    >>> tmdp = long_answer_mdp(max_len=6, targets=(2, 4))
    >>> θ, zero_critic = np.zeros((tmdp.n_prefixes, 2)), np.zeros(tmdp.n_prefixes)
    >>> c = completions(tmdp, θ)
    >>> A = gae_advantages(tmdp, c, token_rewards(tmdp, c), zero_critic, 1.0)  # λ = 1, V = 0
    >>> bool(np.all(A[c.mask] == np.repeat(c.rewards, c.lengths)))  # REINFORCE: r on every token
    True
    >>> A = gae_advantages(tmdp, c, token_rewards(tmdp, c), state_values(tmdp, θ), 0.5)
    >>> bool(abs(row_weights(tmdp, c) @ A[:, 0]) < 1e-12)  # the exact critic: mean zero
    True
    """
    tmdp, batch = check_token_mdp(tmdp), check_token_batch(tmdp, batch)
    r = real_array(rewards, "rewards", shape=batch.tokens.shape)
    V = real_array(values, "values (one per non-terminal prefix)", shape=(tmdp.n_prefixes,))
    lam = as_real(lam, "lam (GAE λ)", low=0.0, high=1.0)
    V_t = np.where(batch.mask, np.append(V, 0.0)[batch.prefixes], 0.0)  # the done state is worth 0
    V_next = np.concatenate([V_t[:, 1:], np.zeros((batch.n, 1))], axis=1)  # 0 after the last real token
    δ = np.where(batch.mask, np.where(batch.mask, r, 0.0) + V_next - V_t, 0.0)
    return np.where(batch.mask, discount_cumsum(δ, lam), 0.0)  # Â_t = δ_t + λ Â_{t+1}


def _clip_range(ε) -> float:
    return as_real(ε, "cliprange (the clip range ε)", low=0.0, high=1.0, low_open=True, high_open=True)


def _ratio_and_branch(tmdp, θ, θ_old, batch, advantages, cliprange, features):
    eps = _clip_range(cliprange)
    Â = real_array(advantages, "advantages", shape=batch.tokens.shape)
    old = token_log_probs(tmdp, θ_old, batch, features=features)
    if np.iscomplexobj(old):
        raise ValueError("θ_old must be real")
    ρ = np.exp(token_log_probs(tmdp, θ, batch, features=features) - old)
    # min(ρÂ, clip(ρ)Â) takes the clipped, constant branch only where the ratio has left the
    # trust region in the direction the advantage pushes it; the real part decides (complex steps).
    flat = ((Â > 0) & (ρ.real > 1 + eps)) | ((Â < 0) & (ρ.real < 1 - eps))
    return ρ, Â, flat, eps


def clipped_surrogate(tmdp: TokenMDP, θ, θ_old, batch: TokenBatch, advantages, *,
                      cliprange: float = 0.2, features=None) -> np.ndarray:
    r"""PPO's clipped surrogate per completion, :math:`\sum_t \min(ρ_t \hat A_t, \mathrm{clip}(ρ_t, 1-ε, 1+ε)\hat A_t)`, shape (N,).

    :math:`ρ_t = π_θ(y_t|s_t) / π_{old}(y_t|s_t)` per real token, ``advantages`` (N, L) fixed
    numbers (computed under ``θ_old``). The PPO objective (Schulman et al. 2017) is the mean of
    these over a batch drawn from ``π_old`` (or their ``ρ(x) π_old(y|x)``-weighted sum over
    :func:`~pgnotes.tokens.completions` of ``θ_old``: the exact expectation). Accepts complex ``θ`` for complex
    steps: the branch of ``min`` is chosen by the real part, so the result is analytic away
    from the kinks ``ρ_t = 1 ± ε``. Book: language models II, ``ppo-clip``.
    """
    tmdp, batch = check_token_mdp(tmdp), check_token_batch(tmdp, batch)
    ρ, Â, flat, eps = _ratio_and_branch(tmdp, θ, θ_old, batch, advantages, cliprange, features)
    value = np.where(flat, np.clip(ρ.real, 1 - eps, 1 + eps) * Â, ρ * Â)
    return np.where(batch.mask, value, 0.0).sum(axis=1)


def clipped_surrogate_gradient(
    tmdp: TokenMDP, θ, θ_old, batch: TokenBatch, advantages, *, cliprange: float = 0.2, features=None
) -> np.ndarray:
    r"""``∇_θ`` of :func:`clipped_surrogate` per completion, shape ``(N,) + θ.shape``.

    .. math:: \sum_t 1[\text{unclipped}_t]\; ρ_t \hat A_t\, ∇_θ \log π_θ(y_t|s_t),

    where a token is clipped (gradient 0) when :math:`\hat A_t > 0, ρ_t > 1+ε` or
    :math:`\hat A_t < 0, ρ_t < 1-ε`. At ``θ = θ_old`` every ``ρ_t = 1``: it is the policy-gradient
    estimator with weights :math:`\hat A_t`. Book: language models II, ``ppo-clip``.
    """
    tmdp, batch = check_token_mdp(tmdp), check_token_batch(tmdp, batch)
    ρ, Â, flat, _ = _ratio_and_branch(tmdp, θ, θ_old, batch, advantages, cliprange, features)
    if np.iscomplexobj(ρ):
        raise ValueError("clipped_surrogate_gradient needs a real θ")
    return score_sum(tmdp, θ, batch, np.where(batch.mask & ~flat, ρ * Â, 0.0), features=features)


def clip_fraction(tmdp: TokenMDP, θ, θ_old, batch: TokenBatch, *, cliprange: float = 0.2,
                  features=None) -> float:
    r"""The fraction of real tokens whose ratio has left :math:`[1-ε, 1+ε]`: PPO's logged ``clipfrac``.

    Book: language models II, ``ppo-clip``.
    """
    tmdp, batch = check_token_mdp(tmdp), check_token_batch(tmdp, batch)
    eps = _clip_range(cliprange)
    log_ratio = (token_log_probs(tmdp, θ, batch, features=features)
                 - token_log_probs(tmdp, θ_old, batch, features=features))
    if np.iscomplexobj(log_ratio):
        raise ValueError("clip_fraction needs real parameters")
    return float((np.abs(np.exp(log_ratio) - 1.0) > eps)[batch.mask].mean())


def conditional_expectation(tmdp: TokenMDP, batch: TokenBatch, X) -> tuple[np.ndarray, np.ndarray]:
    r"""``E[X_t | s_t = s, y_t = a]`` per (prefix, token) over an enumeration, and ``Pr(s_t = s, y_t = a)``.

    ``batch`` comes from :func:`~pgnotes.tokens.completions` (it needs ``p``); ``X`` (N, L) is a per-token
    quantity, for example advantages. Each completion weighs :math:`ρ(x)\, π_θ(y|x)`; the second
    result is :math:`μ(s)\, π_θ(a|s)`, and the first is 0 where that is 0. Book: language models II, ``ppo-critic``.
    """
    tmdp, batch = check_token_mdp(tmdp), check_token_batch(tmdp, batch)
    q = row_weights(tmdp, batch)  # refuses a sampled batch (no p)
    X = real_array(X, "X", shape=batch.tokens.shape)
    w = np.broadcast_to(q[:, None], X.shape)[batch.mask]
    k, a = batch.prefixes[batch.mask], batch.tokens[batch.mask]
    prob = np.zeros((tmdp.n_prefixes, tmdp.n_vocab))
    num = np.zeros_like(prob)
    np.add.at(prob, (k, a), w)
    np.add.at(num, (k, a), w * X[batch.mask])
    return np.divide(num, prob, out=np.zeros_like(num), where=prob > 0), prob


def fit_values(
    tmdp: TokenMDP, θ, values, *, steps: int, step_size: float, group_size: int, rng: np.random.Generator,
    beta: float = 0.0, theta_ref=None, features=None, history: bool = False,
) -> np.ndarray:
    r"""A tabular critic after ``steps`` of Monte Carlo regression on returns sampled from ``π_θ``.

    Each step draws ``G`` completions per prompt (:func:`~pgnotes.tokens.sample_groups`), computes the
    returns-to-go :math:`G_t = \sum_{t' ≥ t} r_{t'}` of :func:`token_rewards` (KL term included
    when ``β > 0``), and takes one gradient step on :math:`\frac1{2N}\sum_{i,t}(G_{i,t} - V(s_{i,t}))^2`:

    .. math:: V(s) \leftarrow V(s) + \frac{α}{N} \sum_{i,t:\ s_{i,t} = s} \big(G_{i,t} - V(s)\big),

    with ``α = step_size`` and ``N`` the number of completions. A prefix moves in proportion to
    how often it is visited, so rarely visited prefixes keep their initial value. Returns ``V``
    (n_prefixes,), or with ``history=True`` the values before and after each step, (steps + 1, n_prefixes).
    Book: language models II, ``ppo-critic``.
    """
    tmdp = check_token_mdp(tmdp)
    V = real_array(values, "values (one per non-terminal prefix)", shape=(tmdp.n_prefixes,)).copy()
    steps = as_count(steps, "steps", minimum=0, maximum=10**6)
    α = as_real(step_size, "step_size", low=0.0, low_open=True)
    out = [V.copy()]
    zeros = np.zeros(tmdp.n_prefixes)
    for _ in range(steps):
        b = sample_groups(tmdp, θ, group_size=group_size, rng=rng, features=features)
        ret = gae_advantages(tmdp, b,
                             token_rewards(tmdp, b, beta=beta, θ=θ, theta_ref=theta_ref,
                                           features=features), zeros, 1.0)
        k = b.prefixes[b.mask]
        resid = np.bincount(k, ret[b.mask], minlength=tmdp.n_prefixes) - np.bincount(k, minlength=tmdp.n_prefixes) * V
        V = V + α * resid / b.n
        out.append(V.copy())
    return np.array(out) if history else V
