r"""Reference implementations, written the way trainers write them, on the arrays of :data:`VOCABULARY`.

One job: compute, for each legitimate variant and each known mistake, the advantages a
trainer would produce and the per-token weight :math:`W_{i,t} = -∂\,\mathrm{loss}/∂\log π_θ(y_{i,t}|s_{i,t})`
of its loss, from plain arrays (``a`` is :attr:`Scenario.arrays`), independently of
:mod:`pgnotes.ppo` and :mod:`pgnotes.groups` (the tests compare the two). Every function is
vectorised numpy; none sees the probability of a row. Book: check your own PPO or GRPO code,
``verify-reference``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "token_rewards",
    "gae",
    "whiten",
    "group_centred",
    "group_std",
    "surrogate_weight",
    "kl_weight",
    "aggregation_weight",
    "kl_not_detached_weight",
    "value_weight",
]


def token_rewards(a: dict, β: float, *, place: str = "last_real", mask=None, source: str = "old_log_prob") -> np.ndarray:
    r"""Per-token rewards: the score on one position, ``-β (log π_old - log π_ref)`` on every real token.

    ``place``: ``"last_real"`` (correct: the last real token, ``token_level_scores``),
    ``"last_column"`` (mistake: column ``T-1``, whatever the row's length), ``"first_pad"``
    (mistake: index ``|y|``, then masked away). ``source="log_prob"`` is the KL of the policy
    being trained (the mistake of a KL reward that is not detached). Book: check your own PPO or GRPO code, ``verify-reference``.
    """
    m = a["response_mask"] if mask is None else mask
    N, T = m.shape
    lengths = m.sum(axis=1).astype(int)
    r = np.zeros((N, T))
    if place == "last_real":
        r[np.arange(N), np.maximum(lengths - 1, 0)] = a["scores"] * (lengths > 0)
    elif place == "last_column":
        r[:, -1] = a["scores"]
    elif place == "first_pad":
        inside = lengths < T
        r[np.flatnonzero(inside), lengths[inside]] = a["scores"][inside]
    else:
        raise ValueError(f"place must be 'last_real', 'last_column' or 'first_pad', got {place!r}")
    return (r - β * (a[source] - a["ref_log_prob"])) * m


def gae(rewards, values, mask, λ: float, γ: float = 1.0) -> np.ndarray:
    r"""GAE(λ) over the real tokens, verl/TRL style: a reverse loop, ``V = 0`` after the last real token.

    Book: language models II, ``ppo-gae``.
    """
    v = values * mask
    N, T = v.shape
    A, last = np.zeros((N, T)), np.zeros(N)
    for t in reversed(range(T)):
        nxt = v[:, t + 1] if t + 1 < T else np.zeros(N)
        δ = rewards[:, t] + γ * nxt - v[:, t]
        last = (δ + γ * λ * last) * mask[:, t] + last * (1 - mask[:, t])
        A[:, t] = last
    return A * mask


def whiten(A, mask, *, ddof: int = 0, padded: bool = False) -> np.ndarray:
    r"""``(A - mean) / std`` with the moments over the real tokens (``padded``: over every position).

    Book: check your own PPO or GRPO code, ``lab-aggregation``.
    """
    m = np.ones_like(mask) if padded else mask
    n = m.sum()
    μ = (A * m).sum() / n
    var = (((A - μ) ** 2) * m).sum() / (n - ddof)
    return (A - μ) / np.sqrt(var) * mask


def group_centred(a: dict, *, baseline: str = "mean", scores=None) -> np.ndarray:
    r"""``r_i - b_i`` per row with ``b`` the group mean (GRPO, Dr. GRPO) or leave-one-out mean (RLOO).

    Groups are the rows sharing ``index``; ``baseline="batch"`` uses the
    mean of the whole batch (a mistake for GRPO). Book: language models I, ``lm-groups``.
    """
    r = a["scores"] if scores is None else scores
    run = np.unique(a["index"], return_inverse=True)[1]
    tot, cnt = np.bincount(run, r), np.bincount(run)
    if baseline == "mean":
        return r - (tot / cnt)[run]
    if baseline == "loo":
        return r - ((tot[run] - r) / (cnt[run] - 1))
    if baseline == "batch":
        return r - r.mean()
    raise ValueError(f"baseline must be 'mean', 'loo' or 'batch', got {baseline!r}")


def group_std(a: dict, ddof: int) -> np.ndarray:
    """The standard deviation of each row's group (rows sharing ``index``), shape (N,)."""
    r = a["scores"]
    run = np.unique(a["index"], return_inverse=True)[1]
    cnt = np.bincount(run)
    μ = np.bincount(run, r) / cnt
    return np.sqrt(np.bincount(run, (r - μ[run]) ** 2) / (cnt - ddof))[run]


def surrogate_weight(ratio, A, *, low: float, high: float, mode: str = "standard", c: float = 3.0) -> np.ndarray:
    r"""``-∂/∂ log π`` of the per-token policy loss ``-min(r A, clip(r, 1-low, 1+high) A)``.

    ``mode``: ``"standard"`` (PPO), ``"dual"`` (dual-clip: for ``A < 0`` the loss is capped at
    ``-c A``, so tokens with ``r > c`` get no gradient), ``"swapped"`` (mistake: ``max`` for
    ``min``), ``"none"`` (mistake: no clipping at all). Book: language models II, ``ppo-clip``.
    """
    w = ratio * A
    above, below = ratio > 1 + high, ratio < 1 - low
    if mode == "none":
        return w
    if mode == "swapped":
        return np.where(((A > 0) & below) | ((A < 0) & above), 0.0, w)
    flat = ((A > 0) & above) | ((A < 0) & below)
    if mode == "dual":
        flat = flat | ((A < 0) & (ratio > c))
    elif mode != "standard":
        raise ValueError(f"mode must be 'standard', 'dual', 'swapped' or 'none', got {mode!r}")
    return np.where(flat, 0.0, w)


def kl_weight(a: dict, kind: str) -> np.ndarray:
    r"""``-∂ k / ∂ log π`` of a per-token KL estimator in the loss: k1, k2 or k3 (GRPO's, verl's low_var_kl).

    With :math:`u = \log π_{ref} - \log π`: ``k1 = -u`` gives ``-1``, ``k2 = u²/2`` gives ``u``,
    ``k3 = e^u - u - 1`` gives ``e^u - 1``. Book: language models II, ``ppo-k3``.
    """
    u = a["ref_log_prob"] - a["log_prob"]
    return {"k1": -np.ones_like(u), "k2": u, "k3": np.expm1(u)}[kind] * a["response_mask"]


def aggregation_weight(mask, mode: str) -> np.ndarray:
    r"""The factor of each token's loss in the batch loss, shape (N, T): ``"token"`` (one constant)
    or ``"sequence"`` (``1/|y_i|``, the sequence mean of token means), up to the overall constant.

    Book: check your own PPO or GRPO code, ``lab-aggregation``.
    """
    if mode == "token":
        return mask.astype(float)
    if mode == "sequence":
        return mask / np.maximum(mask.sum(axis=1, keepdims=True), 1)
    raise ValueError(f"mode must be 'token' or 'sequence', got {mode!r}")


def kl_not_detached_weight(a: dict, ratio, A, c, β: float, λ: float, *, low: float, high: float) -> np.ndarray:
    r"""The extra ``-∂ loss/∂ log π`` when the KL reward is computed from ``log_prob`` (not detached).

    The reward of token ``s`` moves by ``-β d log π_s`` and GAE passes it to the tokens
    ``t ≤ s`` of its row with weight ``λ^{s-t}``; each pays ``c_t ∂ f_t / ∂ A_t`` (``r_t`` on the
    unclipped branch, ``clip(r_t)`` on the clipped one). Unwhitened advantages only.
    Book: check your own PPO or GRPO code, ``verify-catalogue``.
    """
    m = a["response_mask"]
    clipped = np.clip(ratio, 1 - low, 1 + high)
    flat = ((A > 0) & (ratio > 1 + high)) | ((A < 0) & (ratio < 1 - low))
    h = c * np.where(flat, clipped, ratio) * m
    N, T = m.shape
    out, run = np.zeros((N, T)), np.zeros(N)
    for s in range(T):
        run = run * λ + h[:, s]
        out[:, s] = run
    return -β * out * m


def value_weight(a: dict, *, mode: str = "max") -> np.ndarray:
    r"""``-∂/∂ v`` of the per-token value loss ``½ max((v - R)², (clip(v, v_old ± c) - R)²)``.

    ``mode``: ``"max"`` (PPO's clipped value loss), ``"plain"`` (no clipping), ``"min"``
    (mistake: the minimum, which lets the critic jump). Book: language models II, ``ppo-clip``.
    """
    v, R, old, cv = a["vpreds"], a["returns"], a["values"], a["cliprange_value"]
    vc = np.clip(v, old - cv, old + cv)
    l1, l2 = (v - R) ** 2, (vc - R) ** 2
    g1 = -(v - R)
    g2 = np.where(np.abs(v - old) < cv, -(vc - R), 0.0)
    if mode == "plain":
        return g1 * a["response_mask"]
    use1 = l1 >= l2 if mode == "max" else l1 <= l2
    return np.where(use1, g1, g2) * a["response_mask"]
