r"""GRPO, DAPO and GSPO objectives at ``θ ≠ θ_old``, as exact expectations over groups.

A group is ``G`` completions :math:`y_1, …, y_G \sim π_{old}(\cdot|x)` of one prompt with
rewards :math:`r_i` and group advantages :math:`A_i` (:func:`pgnotes.groups.group_advantages`).
Every objective here is

.. math::

    \mathcal L(θ) = E_{x∼ρ}\, E_{y_{1:G} ∼ π_{old}} \sum_{i=1}^G a_i \sum_{t<|y_i|}
    \min\big(r_{i,t}(θ) A_i,\ \mathrm{clip}(r_{i,t}(θ), 1-ε_{low}, 1+ε_{high}) A_i\big),

with the ratio :math:`r_{i,t}(θ)` per token (``ratio="token"``, GRPO and DAPO:
:math:`π_θ(y_t|s_t)/π_{old}(y_t|s_t)`), per sequence and length-normalised
(``"geometric"``, GSPO: :math:`(π_θ(y|x)/π_{old}(y|x))^{1/|y|}`) or the full sequence ratio
(``"product"``), and the aggregation weight ``a_i``:
``"sequence"`` :math:`1/(G|y_i|)` (GRPO), ``"token"`` :math:`1/\sum_j |y_j|` (DAPO's token-level
loss, over one group), ``"constant"`` :math:`1/(G L)` (Dr. GRPO). DAPO's dynamic sampling
conditions each prompt's group on not all rewards being equal; its overlong filter drops
truncated completions from the loss (advantages still use the whole group).

The expectation is exact: since :math:`\min(rA, \mathrm{clip}(r)A) = A^+ \min(r, 1+ε_{high})
- A^- \max(r, 1-ε_{low})`, only :math:`E[G a_1 A_1^\pm \mid \text{key}(y_1)]` is needed, a finite
sum over the configurations of the other ``G - 1`` completions
(:func:`pgnotes.groups.group_advantage_given_reward`), keyed by the reward (and the length, for
the token-level loss). Book: GRPO, DAPO and GSPO written in full, ``obj-grpo``, ``obj-decomp``.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_count, as_real, check_rng, check_token_batch, check_token_mdp, real_array
from .groups import group_advantage_given_reward, group_advantages
from .tokens import EOS, TokenMDP, completions, row_weights, sample_groups, score_sum, token_log_probs

__all__ = [
    "ADVANTAGES",
    "advantage_rule",
    "truncated",
    "overlong_penalty",
    "overlong_shaped_mdp",
    "dynamic_sampling_probability",
    "clip_fractions",
    "expected_surrogate",
    "expected_surrogate_gradient",
    "sampled_surrogate_gradient",
]

#: The group advantages of the objectives, by name.
ADVANTAGES = ("grpo", "dr_grpo", "rloo")
RATIOS = ("token", "geometric", "product")
AGGREGATIONS = ("sequence", "token", "constant")


def advantage_rule(advantage="grpo"):
    r"""The group advantage ``A(r_1, …, r_G)`` as a callable on rewards (..., G).

    ``"grpo"``: :math:`(r_i - \bar r)/(\mathrm{std} + 10^{-4})` (Shao et al. 2024);
    ``"dr_grpo"``: :math:`r_i - \bar r` (Liu et al. 2025, DAPO uses GRPO's); ``"rloo"``: the
    leave-one-out baseline. A callable is returned unchanged. Book: GRPO, DAPO and GSPO,
    ``obj-grpo``.
    """
    if callable(advantage):
        return advantage
    if advantage == "grpo":
        return lambda r: group_advantages(r, divide_by_std=True)
    if advantage == "dr_grpo":
        return lambda r: group_advantages(r)
    if advantage == "rloo":
        return lambda r: group_advantages(r, baseline="loo")
    raise ValueError(f"advantage must be one of {ADVANTAGES} or a callable, got {advantage!r}")


def truncated(tmdp: TokenMDP, batch) -> np.ndarray:
    r"""True for completions cut at ``L`` tokens without an EOS, shape (N,).

    Book: GRPO, DAPO and GSPO, ``obj-overlong``.
    """
    tmdp, batch = check_token_mdp(tmdp), check_token_batch(tmdp, batch)
    last = batch.tokens[np.arange(batch.n), np.maximum(batch.lengths - 1, 0)]
    return (batch.lengths == tmdp.max_len) & (last != EOS)


def overlong_penalty(lengths, *, max_len: int, cache: int) -> np.ndarray:
    r"""DAPO's soft overlong punishment, added to the reward (Yu et al. 2025).

    .. math:: R_{len}(y) = 0 \text{ if } |y| ≤ L - L_c, \quad \frac{L - L_c - |y|}{L_c}
       \text{ if } L - L_c < |y| ≤ L,

    with ``L = max_len`` and :math:`L_c` = ``cache``; it falls linearly to −1 at ``|y| = L``.
    Book: GRPO, DAPO and GSPO, ``obj-overlong``.
    """
    L = as_count(max_len, "max_len (L)", minimum=1, maximum=10**6)
    Lc = as_count(cache, "cache (the soft-penalty interval L_c)", minimum=1, maximum=L)
    n = real_array(lengths, "lengths (|y|, tokens per completion)")
    if np.any(n < 0) or np.any(n > L) or np.any(n != np.rint(n)):
        raise ValueError(f"lengths must be whole numbers of tokens in [0, L = {L}]")
    return np.where(n <= L - Lc, 0.0, (L - Lc - n) / Lc)


def overlong_shaped_mdp(tmdp: TokenMDP, *, cache: int) -> TokenMDP:
    r"""The same task with :func:`overlong_penalty` added to every completion's reward.

    Book: GRPO, DAPO and GSPO, ``obj-overlong``.
    """
    tmdp = check_token_mdp(tmdp)
    c = completions(tmdp)
    r = c.rewards + overlong_penalty(c.lengths, max_len=tmdp.max_len, cache=cache)
    table = {(tmdp.prompts[i], tuple(int(v) for v in y[:n])): float(v)
             for i, y, n, v in zip(c.prompt_ids, c.tokens, c.lengths, r)}
    return TokenMDP(tmdp.n_vocab, tmdp.prompts, tmdp.max_len, table, rho=tmdp.rho)


def dynamic_sampling_probability(tmdp: TokenMDP, θ, *, group_size: int, features=None) -> np.ndarray:
    r"""Per prompt, the probability :math:`1 - \sum_v P(r = v \mid x)^G` that a group is kept.

    For a 0/1 reward with success rate ``p`` it is :math:`1 - p^G - (1-p)^G`. DAPO's dynamic
    sampling drops the other groups, so it divides each prompt's expected update by this
    number. Book: GRPO, DAPO and GSPO, ``obj-dynamic``.
    """
    tmdp = check_token_mdp(tmdp)
    G = as_count(group_size, "group_size (G, completions per prompt)", minimum=1, maximum=10_000)
    c = completions(tmdp, θ, features=features)
    values, k = np.unique(c.rewards, return_inverse=True)
    q = np.zeros((tmdp.n_prompts, values.size))
    np.add.at(q, (c.prompt_ids, k), c.prob)
    return 1.0 - (q**G).sum(axis=1)


def clip_fractions(tmdp: TokenMDP, θ, θ_old, *, cliprange: float = 0.2, features=None) -> dict:
    r"""The exact share of the batch whose ratio lies outside :math:`[1-ε, 1+ε]`, for each ratio.

    Under :math:`ρ(x)\,π_{old}(y|x)`: for ``"token"`` the share of tokens (the expected number
    of such tokens over the expected number of tokens), for ``"geometric"`` and ``"product"``
    the probability of a completion. Book: GRPO, DAPO and GSPO, ``obj-ratios``.
    """
    tmdp = check_token_mdp(tmdp)
    eps = as_real(cliprange, "cliprange (ε)", low=0.0, high=1.0, low_open=True, high_open=True)
    c = completions(tmdp, θ_old, features=features)
    q = row_weights(tmdp, c)
    out = {}
    for ratio in RATIOS:
        w = _ratios(tmdp, θ, θ_old, c, ratio, features)
        if np.iscomplexobj(w):
            raise ValueError("clip_fractions needs a real θ")
        outside = (np.abs(w - 1.0) > eps) & c.mask
        if ratio == "token":
            out[ratio] = float((q @ outside.sum(axis=1)) / (q @ c.lengths))
        else:
            out[ratio] = float(q @ outside[:, 0])
    return out


def _options(ratio, aggregation, cliprange_low, cliprange_high):
    if ratio not in RATIOS:
        raise ValueError(f"ratio must be one of {RATIOS}, got {ratio!r}")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    if cliprange_low is None:
        if cliprange_high is not None:
            raise ValueError("give cliprange_low with cliprange_high (None for both: no clipping)")
        return None, None
    lo = as_real(cliprange_low, "cliprange_low (ε_low)", low=0.0, high=1.0, low_open=True, high_open=True)
    hi = lo if cliprange_high is None else as_real(cliprange_high, "cliprange_high (ε_high)", low=0.0, low_open=True)
    return lo, hi


def _weights(tmdp, θ_old, G, advantage, aggregation, dynamic_sampling, overlong_filter, features):
    """Completions under θ_old, their ρ π_old, and E[G a_1 A_1^± | key(y_1)] per completion."""
    c = completions(tmdp, θ_old, features=features)
    adv = advantage_rule(advantage)
    keep = ~truncated(tmdp, c) if overlong_filter else np.ones(c.n, dtype=bool)
    n_eff = np.where(keep, c.lengths, 0).astype(float)
    keys = np.stack([c.rewards, n_eff if aggregation == "token" else 0 * n_eff], axis=1)

    def rule(C, uniq, sign):
        C = np.rint(C).astype(np.intp)
        r = uniq[C, 0]
        A = np.asarray(adv(r), dtype=float)
        if dynamic_sampling:
            A = A * (r.max(axis=-1) > r.min(axis=-1))[..., None]
        A = np.maximum(sign * A, 0.0)
        if aggregation == "token":  # G a_1 = G / Σ_j |y_j| over the kept tokens of the group
            n = uniq[C, 1].sum(axis=-1, keepdims=True)
            A = np.divide(G * A, n, out=np.zeros_like(A), where=n > 0)
        return A

    W = [np.zeros(c.n), np.zeros(c.n)]
    for x in range(tmdp.n_prompts):  # one prompt at a time: only its own keys enter the sums
        rows = np.flatnonzero(c.prompt_ids == x)
        uniq, code = np.unique(keys[rows], axis=0, return_inverse=True)
        code = code.ravel()
        q = np.bincount(code, c.prob[rows], minlength=len(uniq))
        q = q / q.sum()
        codes = np.arange(len(uniq), dtype=float)
        for w, s in zip(W, (1.0, -1.0)):
            w[rows] = group_advantage_given_reward(q, codes, G, lambda C, u=uniq, s=s: rule(C, u, s))[code]
    if aggregation == "sequence":
        W = [w / c.lengths for w in W]
    elif aggregation == "constant":
        W = [w / tmdp.max_len for w in W]
    if dynamic_sampling:
        kept = dynamic_sampling_probability(tmdp, θ_old, group_size=G, features=features)[c.prompt_ids]
        W = [np.divide(w, kept, out=np.zeros_like(w), where=kept > 0) for w in W]
    W = [np.where(keep, w, 0.0) for w in W]
    return c, row_weights(tmdp, c), W[0], W[1]


def _ratios(tmdp, θ, θ_old, c, ratio, features):
    log_w = token_log_probs(tmdp, θ, c, features=features) - token_log_probs(tmdp, θ_old, c, features=features)
    if ratio == "token":
        return np.exp(log_w)
    total = log_w.sum(axis=1, keepdims=True)
    s = np.exp(total / c.lengths[:, None] if ratio == "geometric" else total)
    return np.where(c.mask, s, 0.0)


def _prepare(tmdp, θ, θ_old, group_size, advantage, ratio, aggregation, cliprange_low, cliprange_high,
             dynamic_sampling, overlong_filter, features):
    tmdp = check_token_mdp(tmdp)
    G = as_count(group_size, "group_size (G, completions per prompt)", minimum=1, maximum=10_000)
    lo, hi = _options(ratio, aggregation, cliprange_low, cliprange_high)
    c, prob, Wp, Wm = _weights(tmdp, θ_old, G, advantage, aggregation, dynamic_sampling, overlong_filter,
                               features)
    return tmdp, c, prob, Wp, Wm, _ratios(tmdp, θ, θ_old, c, ratio, features), lo, hi


def expected_surrogate(tmdp: TokenMDP, θ, θ_old, *, group_size: int, advantage="grpo", ratio: str = "token",
                       aggregation: str = "sequence", cliprange_low=0.2, cliprange_high=None,
                       dynamic_sampling: bool = False, overlong_filter: bool = False, features=None):
    r"""The exact expected clipped objective :math:`\mathcal L(θ)` of the module docstring.

    Groups are drawn from :math:`π_{old}` (``θ_old``); ``cliprange_low=None`` (with
    ``cliprange_high=None``) removes the clipping; ``cliprange_high`` defaults to
    ``cliprange_low``, a larger one is DAPO's clip-higher. Accepts a complex ``θ`` (the branch of
    ``min`` is chosen by the real part), so a complex step checks
    :func:`expected_surrogate_gradient`. Book: GRPO, DAPO and GSPO, ``obj-grpo``.

    Parameters
    ----------
    tmdp, θ, θ_old, features : the token MDP, the policy being optimised and the policy that
        drew the groups, as in :func:`~pgnotes.tokens.evaluate` (``θ_old`` real).
    group_size : int ≥ 1, ``G``.
    advantage : ``"grpo"``, ``"dr_grpo"``, ``"rloo"`` or a callable (see :func:`advantage_rule`).
    ratio : ``"token"`` (GRPO, DAPO), ``"geometric"`` (GSPO) or ``"product"``.
    aggregation : ``"sequence"`` (GRPO), ``"token"`` (DAPO) or ``"constant"`` (Dr. GRPO).
    cliprange_low, cliprange_high : ``ε_low`` in (0, 1) and ``ε_high > 0``, or both None.
    dynamic_sampling : bool, condition each prompt's group on unequal rewards (DAPO).
    overlong_filter : bool, drop truncated completions from the loss (DAPO).

    Returns
    -------
    float (complex for a complex ``θ``), the expectation over prompts and groups.

    Examples
    --------
    >>> from pgnotes import tokens as tk
    >>> tmdp = tk.toy_mdp()
    >>> θ_old = np.zeros((tmdp.n_prefixes, tmdp.n_vocab))
    >>> g = expected_surrogate_gradient(tmdp, θ_old, θ_old, group_size=4, advantage="dr_grpo",
    ...                                 aggregation="constant")
    >>> bool(np.allclose(g, 0.75 * tk.policy_gradient(tmdp, θ_old) / tmdp.max_len))
    True

    Raises
    ------
    ValueError
        On an unknown ``advantage``, ``ratio`` or ``aggregation``, or bad clip ranges.
    """
    tmdp, c, prob, Wp, Wm, w, lo, hi = _prepare(tmdp, θ, θ_old, group_size, advantage, ratio, aggregation,
                                                cliprange_low, cliprange_high, dynamic_sampling,
                                                overlong_filter, features)
    if lo is None:
        up, down = w, w
    else:
        up = np.where(w.real < 1 + hi, w, 1 + hi)
        down = np.where(w.real > 1 - lo, w, 1 - lo)
    per = Wp * np.where(c.mask, up, 0).sum(axis=1) - Wm * np.where(c.mask, down, 0).sum(axis=1)
    return prob @ per


def expected_surrogate_gradient(tmdp: TokenMDP, θ, θ_old, *, group_size: int, advantage="grpo",
                                ratio: str = "token", aggregation: str = "sequence", cliprange_low=0.2,
                                cliprange_high=None, dynamic_sampling: bool = False,
                                overlong_filter: bool = False, features=None) -> np.ndarray:
    r"""``∇_θ`` of :func:`expected_surrogate`, exactly: the expected update of the objective.

    A token (or a sequence) whose ratio has left the clip range on the side its advantage
    pushes it contributes nothing; elsewhere :math:`∇r = r\, ∇\log r` with
    :math:`∇\log r = ∇\log π_θ(y_t|s_t)` (token), :math:`\frac1{|y|}\sum_t ∇\log π_θ(y_t|s_t)`
    (geometric) or :math:`\sum_t ∇\log π_θ(y_t|s_t)` (product). At ``θ = θ_old`` every ratio is 1
    and it is the group estimator's expectation of :func:`pgnotes.groups.group_estimator_expectation`.
    Book: GRPO, DAPO and GSPO, ``obj-grpo``.
    """
    tmdp, c, prob, Wp, Wm, w, lo, hi = _prepare(tmdp, θ, θ_old, group_size, advantage, ratio, aggregation,
                                                cliprange_low, cliprange_high, dynamic_sampling,
                                                overlong_filter, features)
    if np.iscomplexobj(w):
        raise ValueError("expected_surrogate_gradient needs a real θ")
    live_up = np.ones_like(w, dtype=bool) if lo is None else w < 1 + hi
    live_down = np.ones_like(w, dtype=bool) if lo is None else w > 1 - lo
    coef = (Wp[:, None] * live_up - Wm[:, None] * live_down) * w  # dL/d log w, per token
    if ratio == "product":  # |y| equal terms, each with ∇log w = Σ_t ∇log π (geometric: 1/|y| of it)
        coef = coef * c.lengths[:, None]
    weights = np.where(c.mask, prob[:, None] * coef, 0.0)
    return score_sum(tmdp, θ, c, weights, features=features).sum(axis=0)


def sampled_surrogate_gradient(tmdp: TokenMDP, θ, θ_old, *, group_size: int, n_groups: int,
                               rng: np.random.Generator, advantage="grpo", ratio: str = "token",
                               aggregation: str = "sequence", cliprange_low=0.2, cliprange_high=None,
                               dynamic_sampling: bool = False, overlong_filter: bool = False,
                               features=None) -> np.ndarray:
    r"""A Monte Carlo estimate of :func:`expected_surrogate_gradient` from sampled groups.

    Draws ``n_groups`` groups per prompt from ``π_old``, computes each group's advantages,
    aggregation and clipped gradient as a trainer would, and averages per prompt (over the
    kept groups, with ``dynamic_sampling``), then over ``ρ``. An independent route to the
    exact expectation. Book: GRPO, DAPO and GSPO, ``obj-grpo``.
    """
    tmdp = check_token_mdp(tmdp)
    check_rng(rng)
    G = as_count(group_size, "group_size (G, completions per prompt)", minimum=1, maximum=10_000)
    m = as_count(n_groups, "n_groups (groups per prompt)", minimum=1, maximum=10**6)
    lo, hi = _options(ratio, aggregation, cliprange_low, cliprange_high)
    ids = np.repeat(np.arange(tmdp.n_prompts), m)
    b = sample_groups(tmdp, θ_old, group_size=G, rng=rng, prompt_ids=ids, features=features)
    r = b.rewards.reshape(-1, G)
    A = np.asarray(advantage_rule(advantage)(r), dtype=float)
    kept = r.max(axis=1) > r.min(axis=1) if dynamic_sampling else np.ones(len(r), dtype=bool)
    keep = ~truncated(tmdp, b) if overlong_filter else np.ones(b.n, dtype=bool)
    n = b.lengths.astype(float)
    if aggregation == "sequence":
        a = 1.0 / (G * n)
    elif aggregation == "constant":
        a = np.full(b.n, 1.0 / (G * tmdp.max_len))
    else:
        tot = np.where(keep, n, 0).reshape(-1, G).sum(axis=1)
        a = np.repeat(np.divide(1.0, tot, out=np.zeros_like(tot), where=tot > 0), G)
    w = _ratios(tmdp, θ, θ_old, b, ratio, features)
    Ar = A.ravel()[:, None]
    live = np.ones_like(w, dtype=bool) if lo is None else np.where(Ar > 0, w < 1 + hi, w > 1 - lo)
    coef = Ar * live * w * (b.lengths[:, None] if ratio == "product" else 1.0)
    coef = coef * (a * keep)[:, None] * G  # per group: Σ_i a_i …; G for a per-completion mean below
    per = score_sum(tmdp, θ, b, np.where(b.mask, coef, 0.0), features=features)
    per = per.reshape((len(r), G) + per.shape[1:]).mean(axis=1) * kept.reshape((-1,) + (1,) * (per.ndim - 1))
    per = per.reshape((tmdp.n_prompts, m) + per.shape[1:])
    n_kept = kept.reshape(tmdp.n_prompts, m).sum(axis=1)
    mean = per.sum(axis=1) / np.maximum(n_kept, 1).reshape((-1,) + (1,) * (per.ndim - 2))
    return np.tensordot(tmdp.rho, mean, axes=1)
