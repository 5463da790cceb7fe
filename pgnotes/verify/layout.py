r"""The batch a trainer sees: the arrays of verl's ``DataProto`` and TRL, built from a token MDP.

One job: turn a :class:`~pgnotes.llm_loss.Setting` and a choice of ``(θ_old, θ, β, λ)`` into a
:class:`Scenario`, a sampled batch in the layout real trainers use (:data:`VOCABULARY`),
together with what :mod:`pgnotes` needs to judge an update on it (the
:class:`~pgnotes.tokens.TokenBatch`, the parameters, the features). Book: check your own PPO or GRPO code,
``verify-layout``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import llm_loss
from .. import ppo
from .. import tokens as tk

__all__ = ["VOCABULARY", "Scenario", "scenario", "TRAINER_NAMES"]

#: The keyword arguments a user's function may declare, with their meaning (N rows, T positions).
VOCABULARY = {
    "prompts": "int (N, P): the prompt ids, left-padded with the pad id",
    "responses": "int (N, T): the completion ids, right-padded with the pad id (= n_vocab)",
    "response_mask": "float (N, T): 1 on generated tokens (the final EOS included), 0 on padding",
    "log_prob": "float (N, T): log π_θ(y_t|s_t) under the policy being trained (0 on padding)",
    "old_log_prob": "float (N, T): log π_old(y_t|s_t), the policy that sampled the batch",
    "ref_log_prob": "float (N, T): log π_ref(y_t|s_t), the reference (SFT) policy",
    "logits": "float (N, T, n_vocab): the logits of the distribution of responses[:, t]",
    "values": "float (N, T): the critic's V(s_t) under π_old (0 on padding)",
    "token_level_scores": "float (N, T): the verifier's score on the last real token, 0 elsewhere",
    "scores": "float (N,): the verifier's score of each completion",
    "index": "int (N,): the group id of each row (verl's uid): rows of one prompt's group share it",
    "advantages": "float (N, T): advantages computed by the trainer (GAE, or group-normalised)",
    "vpreds": "float (N, T): the critic's new predictions (a value loss differentiates these)",
    "returns": "float (N, T): the value targets, advantages + values",
    "cliprange": "float: PPO's clip range ε (0.2)",
    "cliprange_low": "float: the lower clip range ε_low (0.2)",
    "cliprange_high": "float: the upper clip range ε_high (0.28, DAPO's clip-higher)",
    "clip_ratio_c": "float: the dual-clip bound c for negative advantages (3.0)",
    "cliprange_value": "float: the value clip range (0.2)",
    "kl_coef": "float: the KL coefficient β (0 or 0.05)",
    "gamma": "float: the discount γ (1.0)",
    "lam": "float: the GAE parameter λ (0.95 or 1.0)",
}

#: Our names beside TRL's, verl's and OpenRLHF's (None: the library has no such array).
TRAINER_NAMES = {
    "responses": ("completion_ids", "responses", "sequences[:, prompt_len:]"),
    "response_mask": ("completion_mask", "response_mask", "action_mask"),
    "log_prob": ("per_token_logps", "log_prob", "action_log_probs"),
    "old_log_prob": ("old_per_token_logps", "old_log_probs", "old_action_log_probs"),
    "ref_log_prob": ("ref_per_token_logps", "ref_log_prob", "base_action_log_probs"),
    "values": ("values", "values", "values"),
    "token_level_scores": (None, "token_level_scores", None),
    "scores": ("rewards", "scores (acc)", "rewards"),
    "index": (None, "uid / index", None),
    "advantages": ("advantages", "advantages", "advantages"),
    "kl_coef": ("beta", "kl_ctrl.kl_coef / kl_loss_coef", "init_kl_coef"),
    "cliprange": ("epsilon (cliprange)", "clip_ratio", "eps_clip"),
}

CLIP, CLIP_LOW, CLIP_HIGH, CLIP_C, CLIP_VALUE = 0.2, 0.2, 0.28, 3.0, 0.2


@dataclasses.dataclass(frozen=True)
class Scenario:
    r"""One batch on which a user's function is run and judged.

    ``arrays`` holds the :data:`VOCABULARY` (plus the scalars); the other fields are what
    :mod:`pgnotes` keeps to itself: the setting, the sampled :class:`~pgnotes.tokens.TokenBatch`
    (drawn from ``θ_old``), ``θ`` (where ``log_prob`` is evaluated), ``θ_old``, ``θ_ref``.
    """

    name: str
    kind: str
    setting: llm_loss.Setting
    β: float
    λ: float
    away: bool | str
    batch: tk.TokenBatch
    θ: np.ndarray
    θ_old: np.ndarray
    arrays: dict

    @property
    def n(self) -> int:
        """The number of rows ``N``."""
        return self.batch.n

    @property
    def mask(self) -> np.ndarray:
        """The response mask as booleans, shape (N, T)."""
        return self.batch.mask


def _groups(st: llm_loss.Setting, kind: str, rng: np.random.Generator) -> tuple[tk.TokenBatch, int]:
    """A batch from θ: PPO 4 per prompt; GRPO 6 groups (8 or 4), redrawn until 3 have distinct spreads."""
    φ, P = st.features, st.tmdp.n_prompts
    if kind == "ppo":
        return tk.sample_groups(st.tmdp, st.θ, group_size=4, rng=rng, features=φ), 4
    G = 8 if st.name == "toy" else 4
    for _ in range(200):
        b = tk.sample_groups(st.tmdp, st.θ, group_size=G, rng=rng,
                             prompt_ids=np.tile(np.arange(P), 2), features=φ)
        sd = b.rewards.reshape(-1, G).std(axis=1)
        if np.unique(np.round(sd[sd > 0], 9)).size >= 3:
            return b, G
    raise RuntimeError("no GRPO batch with three mixed groups in 200 draws")  # pragma: no cover


def _away(st: llm_loss.Setting, batch: tk.TokenBatch, A: np.ndarray) -> np.ndarray:
    """θ after three normalised ascent steps on the batch's clipped surrogate (ratios leave [1-ε, 1+ε])."""
    θ = np.array(st.θ, dtype=float)
    for _ in range(3):
        g = ppo.clipped_surrogate_gradient(st.tmdp, θ, st.θ, batch, A, cliprange=CLIP,
                                           features=st.features).mean(axis=0)
        θ = θ + 0.6 * g / np.linalg.norm(g)
    return θ


def _stale(st: llm_loss.Setting, batch: tk.TokenBatch, A: np.ndarray) -> np.ndarray:
    """θ_old plus a seeded standard normal step: the first draw where a token with A < 0 has ratio > c."""
    old = tk.token_log_probs(st.tmdp, st.θ, batch, features=st.features)
    for k in range(100):
        θ = st.θ + np.random.default_rng(k).standard_normal(st.θ.shape)
        ρ = np.exp(tk.token_log_probs(st.tmdp, θ, batch, features=st.features) - old)
        if np.any((A < 0) & (ρ > CLIP_C) & batch.mask) and np.any((A > 0) & (ρ > 1 + CLIP) & batch.mask):
            return θ
    raise RuntimeError("no stale θ with a dual-clipped token in 100 draws")  # pragma: no cover


def scenario(setting: str, kind: str = "ppo", *, beta: float = 0.0, lam: float = 0.95,
             away: bool | str = False, seed: int = 0, enumerate_all: bool = False) -> Scenario:
    r"""A batch in the trainer layout: ``setting`` of :func:`pgnotes.llm_loss.setting`, ``kind`` ppo or grpo.

    The batch is drawn from ``θ_old`` (the setting's ``θ``) with ``default_rng(seed)``;
    ``log_prob`` is evaluated at ``θ_old`` or, with ``away=True``, after three normalised ascent
    steps on the batch's clipped surrogate, so that ratios leave ``[1-ε, 1+ε]`` on both sides;
    ``away="stale"`` adds a seeded random step instead (a stale batch), large enough that a
    token with a negative advantage has a ratio above the dual-clip bound ``c``.
    ``values`` is the exact ``V`` of ``π_old`` with the KL-shaped reward of coefficient ``β``.
    With ``enumerate_all=True`` (PPO) the rows are every completion instead (``batch.prob`` holds
    ``π_old(y|x)``), at the same ``θ``: the exact expectations of :mod:`~pgnotes.verify.expectation`.
    Book: check your own PPO or GRPO code, ``verify-layout``.
    """
    if kind not in ("ppo", "grpo"):
        raise ValueError(f"kind must be 'ppo' or 'grpo', got {kind!r}")
    st = llm_loss.setting(setting)
    tmdp, φ, θ_old, θ_ref = st.tmdp, st.features, st.θ, st.θ_ref
    rng = np.random.default_rng(seed)
    batch, G = _groups(st, kind, rng)
    N, T, V = batch.n, tmdp.max_len, tmdp.n_vocab
    mask = batch.mask
    old = tk.token_log_probs(tmdp, θ_old, batch, features=φ)
    ref = tk.token_log_probs(tmdp, θ_ref, batch, features=φ)
    critic = tk.state_values(tmdp, θ_old, beta=beta, theta_ref=θ_ref, features=φ)
    values = np.where(mask, np.append(critic, 0.0)[batch.prefixes], 0.0)
    r = ppo.token_rewards(tmdp, batch, beta=beta, θ=θ_old, theta_ref=θ_ref, features=φ)
    A = ppo.gae_advantages(tmdp, batch, r, critic, lam)
    scores = batch.rewards.astype(float)
    if kind == "grpo":
        s = scores.reshape(-1, G)
        A = ((s - s.mean(1, keepdims=True)) / (s.std(1, keepdims=True) + 1e-6)).reshape(-1, 1) * mask
    if away not in (False, True, "stale"):
        raise ValueError(f"away must be False, True or 'stale', got {away!r}")
    θ = _stale(st, batch, A) if away == "stale" else _away(st, batch, A) if away else np.array(θ_old)
    lam_text = f" λ={lam:g}" if kind == "ppo" else ""  # GRPO has no critic, no λ
    name = f"{kind} {st.name} β={beta:g}{lam_text} {'stale' if away == 'stale' else 'away' if away else 'θ=θ_old'}"
    if enumerate_all:
        batch, G, rng = tk.completions(tmdp, θ_old, features=φ), 1, np.random.default_rng(seed)
        N, mask, scores = batch.n, batch.mask, batch.rewards.astype(float)
        old, ref = tk.token_log_probs(tmdp, θ_old, batch, features=φ), tk.token_log_probs(tmdp, θ_ref, batch, features=φ)
        values = np.where(mask, np.append(critic, 0.0)[batch.prefixes], 0.0)
        r = ppo.token_rewards(tmdp, batch, beta=beta, θ=θ_old, theta_ref=θ_ref, features=φ)
        A, name = ppo.gae_advantages(tmdp, batch, r, critic, lam), name + " (every completion)"
    log_π = tk.token_policy(tmdp, θ, features=φ)[1]
    k = np.where(mask, batch.prefixes, 0)
    logits = np.where(mask[..., None], log_π[k] + rng.normal(0, 1, (N, T, 1)), 0.0)
    P = max(len(x) for x in tmdp.prompts)
    prompts = np.array([(tmdp.pad,) * (P - len(tmdp.prompts[i])) + tmdp.prompts[i] for i in batch.prompt_ids])
    tls = np.zeros((N, T))
    tls[np.arange(N), batch.lengths - 1] = scores
    vpreds = np.where(mask, values + 0.3 * rng.standard_normal((N, T)), 0.0)
    arrays = dict(
        prompts=prompts, responses=batch.tokens.copy(), response_mask=mask.astype(float),
        log_prob=tk.token_log_probs(tmdp, θ, batch, features=φ), old_log_prob=old, ref_log_prob=ref,
        logits=logits, values=values, token_level_scores=tls, scores=scores,
        index=np.arange(N) // G, advantages=A, vpreds=vpreds, returns=np.where(mask, A + values, 0.0),
        cliprange=CLIP, cliprange_low=CLIP_LOW, cliprange_high=CLIP_HIGH, clip_ratio_c=CLIP_C,
        cliprange_value=CLIP_VALUE, kl_coef=float(beta), gamma=1.0, lam=float(lam),
    )
    return Scenario(name, kind, st, float(beta), float(lam), away, batch, θ, np.array(θ_old), arrays)
