r"""How much a mistake matters: the exact expected update of the mistaken code against the correct one.

One job: on a scenario whose rows are every completion (``enumerate_all=True``), weigh each
row by its probability :math:`ρ_0(x)\,π_{old}(y|x)` (:func:`pgnotes.tokens.row_weights`) and
form :math:`E[\hat g] = \sum_i q_i \sum_t W_{i,t} ∇_θ \log π_θ(y_{i,t}|s_{i,t})` for the
correct PPO weights (KL in the reward, GAE, the clipped surrogate, summed over tokens) and for
the same code with one mistake of :data:`~pgnotes.verify.catalogue.MISTAKES` switched on.
Mistakes that need batch statistics, padding or logits have no entry. For GRPO,
:func:`group_signature` gives the exact expectation of a matched variant (through
:func:`pgnotes.groups.group_estimator_expectation`) against :math:`∇J`. Book: check your own PPO or GRPO code,
``verify-check``.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from .. import groups, llm_loss
from .. import tokens as tk
from ..reference import angle
from . import reference as ref
from .layout import scenario

__all__ = ["EXPECTED", "signature", "group_signature"]


def _weights(a: dict, β: float, λ: float, mistake: str | None) -> np.ndarray:
    m = a["response_mask"]
    noeos = m * (a["responses"] != 0)
    mask = noeos if mistake == "eos_masked" else m
    place = {"reward_last_column": "last_column", "reward_on_pad": "first_pad"}.get(mistake, "last_real")
    kl_in = β if mistake not in ("kl_missing", "kl_k1_loss") else 0.0
    values = 0 * a["values"] if mistake == "zero_critic" else a["values"]
    source = "log_prob" if mistake == "kl_not_detached" else "old_log_prob"
    A = ref.gae(ref.token_rewards(a, kl_in, place=place, mask=mask, source=source), values * mask, mask, λ)
    ratio = np.exp(a["log_prob"] - a["old_log_prob"]) * m
    mode = {"clip_swapped": "swapped", "clip_missing": "none"}.get(mistake, "standard")
    W = ref.surrogate_weight(ratio, A, low=a["cliprange"], high=a["cliprange"], mode=mode) * mask
    if mistake == "kl_twice":
        W = W + β * ref.kl_weight(a, "k3")
    elif mistake == "kl_k1_loss":
        W = W + β * ref.kl_weight(a, "k1")
    elif mistake == "kl_not_detached":
        W = W + ref.kl_not_detached_weight(a, ratio, A, m, β, λ, low=a["cliprange"], high=a["cliprange"])
    elif mistake == "sign_flipped":
        W = -W
    return W


#: The mistakes with an exact expected signature, and the β they need (0: any).
EXPECTED = {"reward_last_column": 0, "reward_on_pad": 0, "eos_masked": 0, "zero_critic": 0, "kl_twice": 1,
            "kl_missing": 1, "kl_k1_loss": 1, "kl_not_detached": 1, "clip_swapped": 0, "clip_missing": 0,
            "sign_flipped": 0}


@functools.lru_cache(maxsize=256)
def signature(mistake: str, setting: str, β: float, λ: float, away: bool) -> tuple[float, float] | None:
    r"""``(angle in degrees, relative error)`` of :math:`E[\hat g]` with ``mistake`` against the correct one.

    None when the mistake has no exact signature (not in :data:`EXPECTED`, or it needs ``β > 0``).
    Book: check your own PPO or GRPO code, ``verify-check``.
    """
    if mistake not in EXPECTED or (EXPECTED[mistake] and β == 0):
        return None
    sc = scenario(setting, beta=β, lam=λ, away=away, enumerate_all=True)
    st, a = sc.setting, sc.arrays
    q = tk.row_weights(st.tmdp, sc.batch)

    def update(W):
        return q @ tk.score_sum(st.tmdp, sc.θ, sc.batch, W, features=st.features)
    good, bad = update(_weights(a, β, λ, None)), update(_weights(a, β, λ, mistake))
    return angle(bad, good), float(np.linalg.norm(bad - good) / np.linalg.norm(good))


def _group_spec(label: str):
    """(ddof or None, ε, per-sequence mean) read from a GRPO variant's label; None if not GRPO-like."""
    m = re.search(r"ε[=≈]([0-9.e+-]+)", label)
    if "no std" in label:
        std, eps = None, 0.0
    elif m and "std" in label:
        std, eps = (1 if "(Bessel)" in label else 0), float(m.group(1))
    else:
        return None
    return std, eps, "| sequence |" in label


@functools.lru_cache(maxsize=64)
def group_signature(setting: str, group_size: int, label: str) -> tuple[float, float] | None:
    r"""``(angle, relative error)`` of a GRPO variant's exact expected update against :math:`∇J`.

    The variant (standard deviation with or without Bessel's correction and its ε, or none;
    per-sequence token mean or not) is read from its label; the expectation is
    :func:`pgnotes.groups.group_estimator_expectation` with groups of ``group_size``, at ``θ = θ_old``
    without KL. Book: language models I, ``lm-groups``.
    """
    spec = _group_spec(label)
    if spec is None:
        return None
    std, eps, sequence = spec
    st = llm_loss.setting(setting)

    def advantage(r):
        return groups.group_advantages(r, divide_by_std=std is not None, ddof=std or 0, eps=eps)
    weight = (lambda b: 1.0 / np.maximum(b.lengths, 1)) if sequence else None
    e = groups.group_estimator_expectation(st.tmdp, st.θ, group_size, advantage, sequence_weight=weight,
                                           features=st.features)
    g = tk.policy_gradient(st.tmdp, st.θ, features=st.features)
    return angle(e, g), float(np.linalg.norm(e - g) / np.linalg.norm(g))
