"""Implementations for tests/test_verify.py (no tests here), written independently in the style of verl, TRL and OpenRLHF.

Each is a function of the arrays of ``pgnotes.verify.VOCABULARY``. ``CORRECT`` maps a name to a
function that is right (in some legitimate variant); ``BUGGY`` maps a name to (function, the
mistake ``pgnotes.verify.check`` must report). Numpy here; the torch versions live in
``tests/test_verify_torch.py``.
"""

import numpy as np


def _gae(rewards, values, mask, gamma, lam):
    N, T = rewards.shape
    last, adv = np.zeros(N), np.zeros((N, T))
    for t in reversed(range(T)):
        nxt = values[:, t + 1] if t < T - 1 else 0.0
        delta = rewards[:, t] + gamma * nxt - values[:, t]
        last = delta + gamma * lam * last
        adv[:, t] = last
    return adv * mask


def _masked_whiten(x, mask, unbiased=True, eps=1e-8):
    n = mask.sum()
    mean = (x * mask).sum() / n
    var = (((x - mean) ** 2) * mask).sum() / n
    if unbiased:
        var = var * n / (n - 1)
    return (x - mean) / np.sqrt(var + eps)


def verl_gae_whitened(token_level_scores, values, response_mask, old_log_prob, ref_log_prob, kl_coef, gamma, lam):
    """verl: KL-penalised token rewards, GAE, masked_whiten (Bessel, eps 1e-8), masked."""
    rewards = token_level_scores - kl_coef * (old_log_prob - ref_log_prob) * response_mask
    return _masked_whiten(_gae(rewards, values, response_mask, gamma, lam), response_mask) * response_mask


def plain_gae(scores, values, response_mask, old_log_prob, ref_log_prob, kl_coef, lam):
    """No whitening; reward placed from scores at each row's last real token."""
    N, T = response_mask.shape
    last = response_mask.sum(1).astype(int) - 1
    r = -kl_coef * (old_log_prob - ref_log_prob) * response_mask
    r[np.arange(N), last] += scores
    return _gae(r, values, response_mask, 1.0, lam)


def grpo_advantages_verl(token_level_scores, index, response_mask):
    """verl compute_grpo_outcome_advantage: group by uid, population std, eps 1e-6."""
    s = token_level_scores.sum(-1)
    out = np.zeros_like(s)
    for uid in np.unique(index):
        rows = index == uid
        out[rows] = (s[rows] - s[rows].mean()) / (s[rows].std() + 1e-6)
    return out[:, None] * response_mask


def reward_last_column(token_level_scores, values, response_mask, old_log_prob, ref_log_prob, kl_coef, lam):
    """Bug: the score written on column T-1."""
    N, T = response_mask.shape
    r = -kl_coef * (old_log_prob - ref_log_prob) * response_mask
    r[:, -1] += token_level_scores.sum(-1)
    return _gae(r * response_mask, values, response_mask, 1.0, lam)


def eos_masked(responses, token_level_scores, values, response_mask, old_log_prob, ref_log_prob, kl_coef, lam):
    """Bug: pad_id == eos_id, so the mask drops the EOS."""
    mask = response_mask * (responses != 0)
    N, T = mask.shape
    r = -kl_coef * (old_log_prob - ref_log_prob) * mask
    last = np.maximum(mask.sum(1).astype(int) - 1, 0)
    r[np.arange(N), last] += token_level_scores.sum(-1)
    return _gae(r, values * mask, mask, 1.0, lam)


def whiten_padded(token_level_scores, values, response_mask, old_log_prob, ref_log_prob, kl_coef, lam):
    """Bug: A.mean() and A.std() over the padded tensor."""
    rewards = token_level_scores - kl_coef * (old_log_prob - ref_log_prob) * response_mask
    A = _gae(rewards, values, response_mask, 1.0, lam)
    return (A - A.mean()) / (A.std() + 1e-8) * response_mask


def zero_critic(token_level_scores, values, response_mask, old_log_prob, ref_log_prob, kl_coef, lam):
    """Bug: the value head's output is never used."""
    rewards = token_level_scores - kl_coef * (old_log_prob - ref_log_prob) * response_mask
    return _gae(rewards, 0 * values, response_mask, 1.0, lam)


def _ppo_terms(log_prob, old_log_prob, A, cliprange):
    ratio = np.exp(log_prob - old_log_prob)
    return -A * ratio, -A * np.clip(ratio, 1 - cliprange, 1 + cliprange)


def kl_not_detached(log_prob, old_log_prob, ref_log_prob, token_level_scores, values, response_mask, kl_coef, lam,
                    cliprange):
    """Bug: the KL reward uses log_prob (which carries the gradient) instead of old_log_prob."""
    rewards = token_level_scores - kl_coef * (log_prob - ref_log_prob) * response_mask
    A = _gae(rewards, values, response_mask, 1.0, lam)
    l1, l2 = _ppo_terms(log_prob, old_log_prob, A, cliprange)
    return (np.maximum(l1, l2) * response_mask).sum() / response_mask.sum()


def forgotten_mask(log_prob, old_log_prob, advantages, cliprange):
    """Bug: the policy loss is averaged over every position of the padded batch."""
    l1, l2 = _ppo_terms(log_prob, old_log_prob, advantages + 0.1, cliprange)
    return np.maximum(l1, l2).mean()


def clip_swapped(log_prob, old_log_prob, advantages, response_mask, cliprange):
    """Bug: torch.min of the two losses instead of torch.max."""
    l1, l2 = _ppo_terms(log_prob, old_log_prob, advantages, cliprange)
    return (np.minimum(l1, l2) * response_mask).sum() / response_mask.sum()


def kl_twice(log_prob, old_log_prob, ref_log_prob, token_level_scores, values, response_mask, kl_coef, lam,
             cliprange):
    """Bug: KL in the reward (PPO) and a k3 KL loss (GRPO) switched on together."""
    rewards = token_level_scores - kl_coef * (old_log_prob - ref_log_prob) * response_mask
    A = _gae(rewards, values, response_mask, 1.0, lam)
    l1, l2 = _ppo_terms(log_prob, old_log_prob, A, cliprange)
    d = ref_log_prob - log_prob
    per_token = np.maximum(l1, l2) + kl_coef * (np.exp(d) - d - 1)
    return (per_token * response_mask).sum() / response_mask.sum()


def value_loss_min(vpreds, values, returns, response_mask, cliprange_value):
    """Bug: the clipped value loss takes the minimum of the two errors."""
    clipped = values + np.clip(vpreds - values, -cliprange_value, cliprange_value)
    loss = np.minimum((vpreds - returns) ** 2, (clipped - returns) ** 2)
    return 0.5 * (loss * response_mask).sum() / response_mask.sum()


def value_loss_verl(vpreds, values, returns, response_mask, cliprange_value):
    """verl compute_value_loss: clipped, max, token-mean, 0.5."""
    clipped = values + np.clip(vpreds - values, -cliprange_value, cliprange_value)
    loss = np.maximum((vpreds - returns) ** 2, (clipped - returns) ** 2)
    return 0.5 * (loss * response_mask).sum() / response_mask.sum()


def logits_off_by_one(logits, responses, old_log_prob, advantages, response_mask, cliprange):
    """Bug: logits treated as unshifted HF output: token t scored by logits[t - 1]."""
    z = logits - logits.max(-1, keepdims=True)
    logp_all = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ids = np.where(response_mask > 0, responses, 0)
    logp = np.zeros(responses.shape)
    logp[:, 1:] = np.take_along_axis(logp_all[:, :-1], ids[:, 1:, None], -1)[..., 0]
    logp[:, 0] = old_log_prob[:, 0]
    l1, l2 = _ppo_terms(logp, old_log_prob, advantages, cliprange)
    return (np.maximum(l1, l2) * response_mask).sum() / response_mask.sum()


def logits_correct(logits, responses, old_log_prob, advantages, response_mask, cliprange):
    """Log-probs from the logits, gathered at the token's own position."""
    z = logits - logits.max(-1, keepdims=True)
    logp_all = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ids = np.where(response_mask > 0, responses, 0)
    logp = np.take_along_axis(logp_all, ids[..., None], -1)[..., 0]
    l1, l2 = _ppo_terms(logp, old_log_prob, advantages, cliprange)
    return (np.maximum(l1, l2) * response_mask).sum() / response_mask.sum()


CORRECT = {f.__name__: f for f in (verl_gae_whitened, plain_gae, grpo_advantages_verl, value_loss_verl, logits_correct)}
BUGGY = {
    "reward_last_column": (reward_last_column, "reward_last_column"),
    "eos_masked": (eos_masked, "eos_masked"),
    "whiten_padded": (whiten_padded, "whiten_padded"),
    "zero_critic": (zero_critic, "zero_critic"),
    "kl_not_detached": (kl_not_detached, "kl_not_detached"),
    "forgotten_mask": (forgotten_mask, "forgotten_mask"),
    "clip_swapped": (clip_swapped, "clip_swapped"),
    "kl_twice": (kl_twice, "kl_twice"),
    "value_loss_min": (value_loss_min, "value_clip_min"),
    "logits_off_by_one": (logits_off_by_one, "logits_shift"),
}


def rloo_advantages(scores, index, response_mask):
    """RLOO: the mean of the other completions of the group as baseline, no std."""
    out = np.zeros_like(scores)
    for uid in np.unique(index):
        rows = index == uid
        G = rows.sum()
        out[rows] = scores[rows] - (scores[rows].sum() - scores[rows]) / (G - 1)
    return out[:, None] * response_mask


CORRECT[rloo_advantages.__name__] = rloo_advantages
