r"""Group-relative estimators on token MDPs: REINFORCE, RLOO and GRPO advantages, exact expectations and variances.

A group is ``G`` completions of one prompt. This module computes group advantages the way
GRPO, Dr. GRPO and RLOO do, and the exact expectation of the resulting gradient estimators on
a :class:`~pgnotes.tokens.TokenMDP`, so that each can be compared with the exact ``∇J``, and
their exact variances, with or without DAPO's dynamic sampling.
Book: language models I, ``lm-groups`` and ``lm-grpo``; the KL estimators, ``klv-variance``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ._validate import as_count, as_real, check_token_mdp, real_array
from .tokens import TokenMDP, completions, score_sum, token_policy

__all__ = [
    "MAX_GROUP_CONFIGURATIONS",
    "group_advantages",
    "group_advantage_given_reward",
    "group_estimator_expectation",
    "drop_equal_groups",
    "group_advantage_moments",
    "group_estimator_variance",
]

#: Largest number of reward configurations (own reward × counts of the others) enumerated by
#: :func:`group_advantage_given_reward`.
MAX_GROUP_CONFIGURATIONS = 2_000_000


def group_advantages(rewards, *, baseline: str = "mean", divide_by_std: bool = False, ddof: int = 0, eps: float = 1e-4) -> np.ndarray:
    r"""Group-relative advantages of ``G`` completions of one prompt, over the last axis of ``rewards``.

    .. math::

        A_i = \frac{r_i - b_i}{\mathrm{std}(r_1, …, r_G) + ε}\ \text{(with divide_by_std)}, \qquad
        A_i = r_i - b_i \ \text{(without)},

    with the baseline ``b_i`` the group mean :math:`\bar r = \frac1G \sum_j r_j` (``"mean"``,
    as in GRPO and Dr. GRPO), the mean of the *other* rewards :math:`\frac{1}{G-1}\sum_{j≠i} r_j`
    (``"loo"``, leave-one-out, as in RLOO), or 0 (``"none"``, plain REINFORCE). The standard
    deviation is the population one (``ddof=0``) or Bessel-corrected (``ddof=1``, the default of
    ``torch.std``). A group whose rewards are all equal gets ``A = 0`` with the mean baseline (and,
    with ``eps = 0``, ``A = 0`` wherever the standard deviation is 0).
    Book: language models I, ``lm-groups``.

    Parameters
    ----------
    rewards : array of shape (..., G), real and finite; ``G ≥ 2`` for ``"loo"`` or ``ddof=1``.
    baseline : ``"mean"``, ``"loo"`` or ``"none"``.
    divide_by_std : bool, divide by the group's standard deviation plus ``eps`` (GRPO).
    ddof : 0 or 1, the degrees of freedom of the standard deviation.
    eps : float ≥ 0, added to the standard deviation.

    Returns
    -------
    float array, the shape of ``rewards``.

    Examples
    --------
    >>> group_advantages([[1.0, 0.0, 0.0, 1.0]])  # GRPO / Dr. GRPO: minus the group mean
    array([[ 0.5, -0.5, -0.5,  0.5]])
    >>> group_advantages([[1.0, 0.0, 0.0, 1.0]], divide_by_std=True, eps=0.0)  # GRPO with the std
    array([[ 1., -1., -1.,  1.]])
    >>> group_advantages([[1.0, 0.0, 0.0, 0.0]], baseline="loo").round(3)  # RLOO
    array([[ 1.   , -0.333, -0.333, -0.333]])
    """
    r = real_array(rewards, "rewards (shape (..., G))")
    if r.ndim == 0:
        raise ValueError(f"rewards must have shape (..., G), got a scalar {rewards!r}")
    G = r.shape[-1]
    if baseline not in ("mean", "loo", "none"):
        raise ValueError(f"baseline must be 'mean', 'loo' or 'none', got {baseline!r}")
    ddof = as_count(ddof, "ddof", minimum=0, maximum=1)
    eps = as_real(eps, "eps", low=0.0)
    need = 2 if (baseline == "loo" or (divide_by_std and ddof == 1)) else 1
    if G < need:
        raise ValueError(f"this advantage needs groups of G ≥ 2 completions, got G = {G}")
    total = r.sum(axis=-1, keepdims=True)
    if baseline == "mean":
        A = r - total / G
    elif baseline == "loo":
        A = r - (total - r) / (G - 1)
    else:
        A = r.copy()
    if divide_by_std:
        scale = r.std(axis=-1, ddof=ddof, keepdims=True) + eps
        A = np.divide(A, scale, out=np.zeros_like(A), where=scale > 0)  # eps = 0: equal rewards give A = 0
    return A


def group_advantage_given_reward(q, values, group_size: int, advantage_fn) -> np.ndarray:
    r"""``E[A_1 | r_1 = v_k]``: the mean advantage of a completion given its own reward, in a group of ``G``.

    The ``G`` rewards of a group are i.i.d. with ``P(r = v_k) = q_k``. Given ``r_1 = v``, the
    other ``G - 1`` rewards keep their law, and an exchangeable advantage depends on them only
    through their counts :math:`n \sim \mathrm{Multinomial}(G-1, q)`, so

    .. math::

        E[A_1 \mid r_1 = v_k] = \sum_{n} \binom{G-1}{n_1, …, n_K} \prod_l q_l^{n_l}\;
        A_1(v_k, \underbrace{v_1, …, v_1}_{n_1}, …, \underbrace{v_K, …, v_K}_{n_K}),

    a finite sum over the :math:`\binom{G+K-2}{K-1}` count vectors (``G`` of them for a 0/1 reward).
    Book: language models I, ``lm-groups``.

    Parameters
    ----------
    q : array of shape (..., K), the probabilities of the reward values (each row sums to 1).
    values : array of shape (K,), the distinct reward values.
    group_size : int ≥ 1, the group size.
    advantage_fn : callable mapping rewards (M, G) to advantages (M, G), permutation-equivariant
        (permuting a group's rewards permutes its advantages), e.g. ``group_advantages``.

    Returns
    -------
    array of shape (..., K).

    Raises
    ------
    ValueError
        On a bad ``q`` or ``values``, more than :data:`MAX_GROUP_CONFIGURATIONS` configurations,
        or an ``advantage_fn`` that returns the wrong shape, non-finite numbers, or is not
        permutation-equivariant.
    """
    v, q, G = _check_reward_law(q, values, group_size)
    K = v.size
    counts, log_coef = _count_vectors(G - 1, K)
    n_counts = counts.shape[0]
    others = _others(v, counts, G - 1)
    R = np.concatenate([np.repeat(v, n_counts)[:, None], np.tile(others, (K, 1))], axis=1)  # (K·n, G)
    A = _advantages_of(advantage_fn, R)
    A_own = A[:, 0].reshape(K, n_counts)
    return np.einsum("...n,kn->...k", _count_probabilities(q, counts, log_coef), A_own)


def _check_reward_law(q, values, group_size, pairs: bool = False):
    v = real_array(values, "values")
    if v.ndim != 1 or v.size == 0 or np.unique(v).size != v.size:
        raise ValueError(f"values must be a 1-d array of distinct finite reward values, got {values!r}")
    K = v.size
    q = real_array(q, "q")
    if q.ndim == 0 or q.shape[-1] != K:
        raise ValueError(f"q must have shape (..., K) = (..., {K}), got {q.shape}")
    if np.any(q < 0) or np.abs(q.sum(axis=-1) - 1).max() > 1e-9:
        raise ValueError("each row of q must be a probability vector (non-negative, summing to 1)")
    G = as_count(group_size, "group_size (G, completions per prompt)", minimum=1, maximum=10_000)
    n_configs = math.comb(G + K - 2, K - 1) * K * (K if pairs else 1)
    if n_configs > MAX_GROUP_CONFIGURATIONS:
        raise ValueError(
            f"{K} reward values and G = {G} give {n_configs} configurations, more than "
            f"MAX_GROUP_CONFIGURATIONS = {MAX_GROUP_CONFIGURATIONS}; use fewer distinct rewards or a smaller G"
        )
    return v, q, G


def _count_vectors(n: int, K: int):
    """The count vectors of ``n`` draws over ``K`` values (stars and bars), and log multinomial coefficients."""
    n_counts = math.comb(n + K - 1, K - 1)
    counts = np.empty((n_counts, K), dtype=np.intp)
    for row, bars in enumerate(itertools.combinations(range(n + K - 1), K - 1)):
        edges = (-1,) + bars + (n + K - 1,)
        counts[row] = np.diff(edges) - 1
    log_coef = math.lgamma(n + 1) - np.array([sum(math.lgamma(c + 1) for c in m) for m in counts])
    return counts, log_coef


def _others(v, counts, n):
    """Each count vector written out as ``n`` rewards, shape (n_counts, n)."""
    return np.repeat(np.tile(v, (counts.shape[0], 1)).ravel(), counts.ravel()).reshape(counts.shape[0], n)


def _advantages_of(advantage_fn, R):
    """``advantage_fn(R)``, checked: real, the shape of ``R``, permutation-equivariant."""
    A = real_array(advantage_fn(R), "advantage_fn(rewards (M, G)), real advantages (M, G),", shape=R.shape)
    G = R.shape[1]
    if G > 1:  # exchangeability: moving the own reward to the last slot moves its advantage there
        perm = np.r_[1:G, 0]
        A_perm = np.asarray(advantage_fn(R[:, perm]))
        if A_perm.shape != R.shape or np.abs(A_perm - A[:, perm]).max() > 1e-9 * (1 + np.abs(A).max()):
            raise ValueError("advantage_fn must be permutation-equivariant (the same rule for every member of the group)")
    return A


def _count_probabilities(q, counts, log_coef):
    """Multinomial probabilities of each count vector under each row of ``q``, shape (..., n_counts)."""
    with np.errstate(divide="ignore"):
        log_q = np.log(q)
    # Π q_l^{n_l}, with 0^0 = 1: only the counts with n_l > 0 use log q_l
    log_p = log_coef + np.einsum("...k,nk->...n", np.where(np.isneginf(log_q), 0.0, log_q), counts)
    dead = np.einsum("...k,nk->...n", np.isneginf(log_q).astype(float), counts) > 0
    return np.where(dead, 0.0, np.exp(log_p))


def _reward_law(tmdp, θ, features):
    """Every completion ``c``, the distinct rewards ``values``, each completion's reward index
    ``k``, and each prompt's law of the reward ``q[x, j] = P(r = values[j] | x)``."""
    c = completions(tmdp, θ, features=features)
    values, k = np.unique(c.rewards, return_inverse=True)
    q = np.zeros((tmdp.n_prompts, values.size))
    np.add.at(q, (c.prompt_ids, k), c.prob)
    q /= q.sum(axis=1, keepdims=True)  # rounding only
    return c, values, k, q


def group_estimator_expectation(
    tmdp: TokenMDP, θ, group_size: int, advantage_fn, *, sequence_weight=None, dynamic_sampling: bool = False,
    features=None, per_prompt: bool = False
) -> np.ndarray:
    r"""The exact expectation of a group-relative policy-gradient estimator, by conditioning on rewards.

    For each prompt ``x``, ``G`` completions :math:`y_1, …, y_G \sim π_θ(\cdot|x)` are scored
    :math:`r_i = r(x, y_i)` and the estimator is

    .. math::

        \hat g(x) = \frac1G \sum_{i=1}^G A_i(r_1, …, r_G)\; c(y_i)\; ∇_θ \log π_θ(y_i|x),

    with ``A = advantage_fn`` (permutation-equivariant) and ``c = sequence_weight`` (1 by
    default; ``1/|y|`` for GRPO's per-sequence token mean). Given its own reward, ``y_i`` is
    independent of the other rewards, so with the distinct reward values ``v_k`` and
    :func:`group_advantage_given_reward`

    .. math::

        E[\hat g(x)] = \sum_k E[A_1 \mid r_1 = v_k]\; E\big[c(y)\, ∇_θ\log π_θ(y|x)\, 1\{r(x, y) = v_k\}\big],

    where the last expectation is a sum over every completion (:func:`~pgnotes.tokens.completions`). For
    ``c = 1`` it is :math:`∇_θ P(r = v_k \mid x)`. Returns :math:`E_{x∼ρ} E[\hat g(x)]`, or each
    :math:`E[\hat g(x)]` with ``per_prompt=True``. With ``G = 1`` and ``A_1 = r_1`` this is
    REINFORCE, whose expectation is :func:`~pgnotes.tokens.policy_gradient`. Book: language models I, ``lm-groups``.

    Parameters
    ----------
    tmdp, θ, features : the token MDP and policy, as in :func:`~pgnotes.tokens.evaluate` (real ``θ``).
    group_size : int ≥ 1, the group size.
    advantage_fn : callable (M, G) -> (M, G), e.g. ``lambda r: group_advantages(r, divide_by_std=True)``.
    sequence_weight : callable taking a :class:`TokenBatch` and returning ``c``, shape (N,), or None.
    dynamic_sampling : bool, DAPO's dynamic sampling: each prompt's group is redrawn until its
        rewards are not all equal, so the expectation is conditional on that event ``E``,
        :math:`E[\hat g(x) 1_E]/P(E \mid x)`, with :math:`P(E \mid x) = 1 - \sum_k q_k^G`
        (a prompt with :math:`P(E|x) = 0` contributes 0). Book: the KL estimators, ``klv-variance``.
    per_prompt : bool, return shape ``(n_prompts,) + θ.shape`` instead of ``θ.shape``.

    Raises
    ------
    ValueError
        As :func:`group_advantage_given_reward`, or if ``sequence_weight`` returns a bad array.
    """
    tmdp = check_token_mdp(tmdp)
    c, values, k, q = _reward_law(tmdp, θ, features)
    if dynamic_sampling:
        advantage_fn = drop_equal_groups(advantage_fn)
    cond = group_advantage_given_reward(q, values, group_size, advantage_fn)  # (n_prompts, K)
    if dynamic_sampling:
        cond = cond * _inverse_kept(q, group_size)[:, None]
    w = c.prob * cond[c.prompt_ids, k]
    if sequence_weight is not None:
        w = w * real_array(sequence_weight(c), "sequence_weight(batch), one real weight per completion,", shape=(c.n,))
    pol = token_policy(tmdp, θ, features=features)[0]
    rows = np.repeat(np.arange(c.n), c.lengths)
    k_t, a_t = c.prefixes[c.mask], c.tokens[c.mask]  # row-major: the tokens of each completion in turn
    W = np.zeros((tmdp.n_prefixes, tmdp.n_vocab))
    np.add.at(W, (k_t, a_t), w[rows])  # Σ over the completions through (prefix, token) of their weight
    if not per_prompt:
        return pol.score_contract(tmdp.rho[tmdp.prompt_of][:, None] * W)
    return np.stack([pol.score_contract(np.where((tmdp.prompt_of == i)[:, None], W, 0.0)) for i in range(tmdp.n_prompts)])


def _inverse_kept(q, group_size):
    """``1 / P(E | x)`` per prompt, ``E`` = the rewards of a group are not all equal; 0 where ``P(E) = 0``."""
    kept = 1.0 - (np.asarray(q) ** group_size).sum(axis=-1)
    return np.divide(1.0, kept, out=np.zeros_like(kept), where=kept > 1e-15)


def drop_equal_groups(advantage_fn):
    r"""``advantage_fn`` times :math:`1\{r_1, …, r_G \text{ not all equal}\}`: DAPO's dynamic-sampling filter.

    Multiplying the advantages of a discarded group by 0 gives :math:`E[\hat g\, 1_E]`; dividing by
    :math:`P(E|x)` (the ``dynamic_sampling`` option of :func:`group_estimator_expectation` and
    :func:`group_estimator_variance`) conditions on the group being kept. Book: the KL estimators, ``klv-variance``.

    Examples
    --------
    >>> f = drop_equal_groups(lambda r: r - r.mean(axis=-1, keepdims=True) + 1.0)
    >>> f(np.array([[1.0, 1.0], [1.0, 0.0]]))
    array([[0. , 0. ],
           [1.5, 0.5]])
    """
    if not callable(advantage_fn):
        raise TypeError(f"advantage_fn must be callable (rewards (M, G) -> advantages (M, G)), got {advantage_fn!r}")

    def kept(r):
        r = np.asarray(r)
        return np.asarray(advantage_fn(r)) * (r.max(axis=-1, keepdims=True) > r.min(axis=-1, keepdims=True))

    return kept


def group_advantage_moments(q, values, group_size: int, advantage_fn):
    r"""The first two conditional moments of a group advantage, as exact finite sums.

    With the ``G`` rewards i.i.d., :math:`P(r = v_k) = q_k`, returns

    .. math::

        m_k = E[A_1 \mid r_1 = v_k],\qquad s_k = E[A_1^2 \mid r_1 = v_k],\qquad
        c_{kl} = E[A_1 A_2 \mid r_1 = v_k, r_2 = v_l],

    each a sum over the multinomial counts of the other rewards (``G - 1`` of them for ``m, s``,
    ``G - 2`` for ``c``; ``c = 0`` when ``G = 1``). ``m`` is :func:`group_advantage_given_reward`.
    Book: the KL estimators, ``klv-variance``.

    Returns
    -------
    (m, s, c) of shapes (..., K), (..., K), (..., K, K).
    """
    v, q, G = _check_reward_law(q, values, group_size, pairs=True)
    K = v.size
    counts, log_coef = _count_vectors(G - 1, K)
    n = counts.shape[0]
    R = np.concatenate([np.repeat(v, n)[:, None], np.tile(_others(v, counts, G - 1), (K, 1))], axis=1)
    A = _advantages_of(advantage_fn, R)[:, 0].reshape(K, n)
    prob = _count_probabilities(q, counts, log_coef)
    m, s = np.einsum("...n,kn->...k", prob, A), np.einsum("...n,kn->...k", prob, A**2)
    if G == 1:
        return m, s, np.zeros(q.shape + (K,))
    counts, log_coef = _count_vectors(G - 2, K)
    n = counts.shape[0]
    own = np.stack(np.meshgrid(v, v, indexing="ij"), axis=-1).reshape(K * K, 2)
    R = np.concatenate([np.repeat(own, n, axis=0), np.tile(_others(v, counts, G - 2), (K * K, 1))], axis=1)
    A = _advantages_of(advantage_fn, R)
    AA = (A[:, 0] * A[:, 1]).reshape(K, K, n)
    c = np.einsum("...n,kln->...kl", _count_probabilities(q, counts, log_coef), AA)
    return m, s, c


def group_estimator_variance(
    tmdp: TokenMDP, θ, group_size: int, advantage_fn, *, sequence_weight=None, dynamic_sampling: bool = False,
    directions=None, features=None
) -> np.ndarray:
    r"""The exact variance of a group estimator :math:`\hat g(x)` of :func:`group_estimator_expectation`, per prompt.

    With :math:`u_i = c(y_i)∇\log π_θ(y_i|x)` and, for each reward value, :math:`a_k = E[u\,1\{r = v_k\}]`
    and :math:`b_k = E[\|u\|^2 1\{r = v_k\}]`, the conditional independence of the ``y_i`` given
    the rewards gives

    .. math::

        E\|\hat g\|^2 = \frac1G \sum_k s_k b_k + \frac{G-1}{G} \sum_{k,l} c_{kl}\, a_k \cdot a_l,
        \qquad \mathrm{tr\,Cov}\,\hat g = E\|\hat g\|^2 - \Big\|\sum_k m_k a_k\Big\|^2,

    with ``m, s, c`` from :func:`group_advantage_moments`. With ``directions`` (rows ``d_j``) the
    same sums with :math:`u` replaced by :math:`d_j \cdot u` give :math:`\mathrm{Var}(d_j\cdot\hat g)`.
    With ``dynamic_sampling`` both moments are conditional on the group being kept, as in
    :func:`group_estimator_expectation`. Book: the KL estimators, ``klv-variance``.

    Parameters
    ----------
    tmdp, θ, group_size, advantage_fn, sequence_weight, features : as in :func:`group_estimator_expectation`.
    dynamic_sampling : bool, DAPO's dynamic sampling (condition on not-all-equal rewards).
    directions : None, or an array of shape ``(n_directions,) + θ.shape``.

    Returns
    -------
    array (n_prompts,): the trace of the covariance; or (n_prompts, n_directions).
    """
    tmdp = check_token_mdp(tmdp)
    c, values, k, q = _reward_law(tmdp, θ, features)
    G = as_count(group_size, "group_size (G, completions per prompt)", minimum=1, maximum=10_000)
    if dynamic_sampling:
        advantage_fn = drop_equal_groups(advantage_fn)
    m, s, cc = group_advantage_moments(q, values, G, advantage_fn)
    cw = np.ones(c.n)
    if sequence_weight is not None:
        cw = real_array(sequence_weight(c), "sequence_weight(batch), one real weight per completion,", shape=(c.n,))
    u = score_sum(tmdp, θ, c, c.mask * cw[:, None], features=features).reshape(c.n, -1)
    if directions is not None:
        d = real_array(directions, "directions (n_directions,) + θ.shape")
        if d.ndim < 2 or d.shape[1:] != np.shape(θ):
            raise ValueError(f"directions must have shape (n_directions,) + θ.shape = (n, *{np.shape(θ)}), got {d.shape}")
        u = u @ d.reshape(d.shape[0], -1).T  # (N, n_directions)
    onehot = np.zeros((c.n, tmdp.n_prompts, values.size))
    onehot[np.arange(c.n), c.prompt_ids, k] = c.prob
    a = np.einsum("nxk,nd->xkd", onehot, u)  # E[u 1{r = v_k}] per prompt
    if directions is None:
        b = np.einsum("nxk,n->xk", onehot, (u**2).sum(axis=1))
        second = (np.einsum("xk,xk->x", s, b) / G
                  + (G - 1) / G * np.einsum("xkl,xkd,xld->x", cc, a, a))
        mean_sq = (np.einsum("xk,xkd->xd", m, a) ** 2).sum(axis=1)
    else:
        b = np.einsum("nxk,nd->xkd", onehot, u**2)
        second = np.einsum("xk,xkd->xd", s, b) / G + (G - 1) / G * np.einsum("xkl,xkd,xld->xd", cc, a, a)
        mean_sq = np.einsum("xk,xkd->xd", m, a) ** 2
    if dynamic_sampling:  # E[X | E] = E[X 1_E] / P(E): the second moment once, the mean squared twice
        inv = _inverse_kept(q, G)
        inv = inv if directions is None else inv[:, None]
        return second * inv - mean_sq * inv**2
    return second - mean_sq
