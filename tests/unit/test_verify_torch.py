"""pgnotes.verify on PyTorch implementations written in the style of verl, TRL and OpenRLHF.

Each function below is independent trainer-style torch code; ``torch_fn`` is the three-line
wrapper of the docs (numpy arrays in, a tensor out, the signature kept by functools.wraps).
Every correct one must be judged correct, with the variant named; the buggy one must not.
"""

import functools

import numpy as np
import pytest

from pgnotes import verify

torch = pytest.importorskip("torch")


def torch_fn(f):
    @functools.wraps(f)
    def g(**kw):
        return f(**{k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()})
    return g


def masked_mean(x, mask, dim=None):
    return (x * mask).sum() / mask.sum() if dim is None else (x * mask).sum(dim) / mask.sum(dim)


def gae(rewards, values, mask, gamma, lam):
    lastgaelam, out = 0, []
    T = rewards.shape[-1]
    for t in reversed(range(T)):
        nextvalues = values[:, t + 1] if t < T - 1 else 0.0
        delta = rewards[:, t] + gamma * nextvalues - values[:, t]
        lastgaelam = delta + gamma * lam * lastgaelam
        out.append(lastgaelam)
    return torch.stack(out[::-1], dim=1) * mask


def masked_whiten(x, mask):
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask) * mask.sum() / (mask.sum() - 1)
    return (x - mean) * torch.rsqrt(var + 1e-8)


def verl_ppo(log_prob, old_log_prob, ref_log_prob, token_level_scores, values, response_mask, kl_coef, gamma,
             lam, cliprange, clip_ratio_c):
    """verl: KL reward, GAE, whitening, dual-clip (c = 3), token-mean."""
    with torch.no_grad():
        rewards = token_level_scores - kl_coef * (old_log_prob - ref_log_prob)
        adv = masked_whiten(gae(rewards * response_mask, values, response_mask, gamma, lam), response_mask)
    neg_kl = log_prob - old_log_prob
    ratio = torch.exp(neg_kl)
    pg1 = -adv * ratio
    pg2 = -adv * torch.clamp(ratio, 1 - cliprange, 1 + cliprange)
    clip1 = torch.maximum(pg1, pg2)
    pg3 = -adv * clip_ratio_c
    losses = torch.where(adv < 0, torch.min(pg3, clip1), clip1)
    return masked_mean(losses, response_mask)


def openrlhf_ppo(log_prob, old_log_prob, ref_log_prob, token_level_scores, values, response_mask, kl_coef, lam,
                 cliprange):
    """OpenRLHF-style: no KL in the reward, a k3 KL loss (use_kl_loss), per-sequence token mean."""
    adv = gae(token_level_scores, values, response_mask, 1.0, lam).detach()
    ratio = (log_prob - old_log_prob).exp()
    surr = torch.min(ratio * adv, ratio.clamp(1 - cliprange, 1 + cliprange) * adv)
    log_ratio = ref_log_prob - log_prob
    k3 = log_ratio.exp() - 1 - log_ratio
    return (masked_mean(-surr, response_mask, dim=-1) + kl_coef * masked_mean(k3, response_mask, dim=-1)).mean()


def verl_policy_loss(old_log_prob, log_prob, advantages, response_mask, cliprange_low, cliprange_high):
    """verl compute_policy_loss with clip-higher (DAPO) and loss_agg_mode='seq-mean-token-sum'."""
    ratio = torch.exp(log_prob - old_log_prob)
    pg = torch.maximum(-advantages * ratio, -advantages * torch.clamp(ratio, 1 - cliprange_low, 1 + cliprange_high))
    return (pg * response_mask).sum(-1).mean()


def trl_grpo(log_prob, old_log_prob, ref_log_prob, scores, index, response_mask, kl_coef, cliprange):
    """TRL GRPOTrainer, loss_type='grpo': std with Bessel (torch.std), ε = 1e-4, k3 in the loss."""
    G = int((index == index[0]).sum())
    grouped = scores.view(-1, G)
    adv = (grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-4)
    adv = adv.view(-1, 1)
    ratio = torch.exp(log_prob - old_log_prob)
    per_token = -torch.min(ratio * adv, torch.clamp(ratio, 1 - cliprange, 1 + cliprange) * adv)
    kl = torch.exp(ref_log_prob - log_prob) - (ref_log_prob - log_prob) - 1
    per_token = per_token + kl_coef * kl
    return ((per_token * response_mask).sum(-1) / response_mask.sum(-1).clamp(min=1)).mean()


def dr_grpo(log_prob, old_log_prob, scores, index, response_mask, cliprange):
    """Dr. GRPO: no std, no KL, sum over tokens / (N · max_len)."""
    G = int((index == index[0]).sum())
    grouped = scores.view(-1, G)
    adv = (grouped - grouped.mean(1, keepdim=True)).view(-1, 1)
    ratio = torch.exp(log_prob - old_log_prob)
    per_token = -torch.min(ratio * adv, torch.clamp(ratio, 1 - cliprange, 1 + cliprange) * adv)
    return (per_token * response_mask).sum() / (response_mask.shape[0] * response_mask.shape[1])


def dapo(log_prob, old_log_prob, scores, index, response_mask, cliprange_low, cliprange_high):
    """DAPO: population std, token-mean over the batch, clip-higher, no KL."""
    adv = torch.zeros_like(scores)
    for uid in torch.unique(index):
        rows = index == uid
        adv[rows] = (scores[rows] - scores[rows].mean()) / (scores[rows].std(unbiased=False) + 1e-6)
    ratio = torch.exp(log_prob - old_log_prob)
    a = adv[:, None]
    per_token = -torch.min(ratio * a, torch.clamp(ratio, 1 - cliprange_low, 1 + cliprange_high) * a)
    return masked_mean(per_token, response_mask)


def trl_ppo_advantages(token_level_scores, values, response_mask, old_log_prob, ref_log_prob, kl_coef, lam):
    """TRL PPOTrainer's advantages: KL reward, GAE, masked_whiten (Bessel), masked."""
    rewards = token_level_scores - kl_coef * (old_log_prob - ref_log_prob)
    return masked_whiten(gae(rewards * response_mask, values, response_mask, 1.0, lam), response_mask) * response_mask


def grpo_sign_flipped(log_prob, old_log_prob, scores, index, response_mask, cliprange):
    """Bug: the surrogate returned as the loss (no minus sign)."""
    G = int((index == index[0]).sum())
    grouped = scores.view(-1, G)
    adv = ((grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-4)).view(-1, 1)
    ratio = torch.exp(log_prob - old_log_prob)
    surr = torch.min(ratio * adv, torch.clamp(ratio, 1 - cliprange, 1 + cliprange) * adv)
    return masked_mean(surr, response_mask)


CORRECT = {
    "verl_ppo": ("dual-clip c=3", "token-mean, whitening with Bessel"),
    "openrlhf_ppo": ("k3 loss", "sequence"),
    "verl_policy_loss": ("asymmetric", "seq-mean-token-sum"),
    "trl_grpo": ("std (Bessel) + ε=1.0e-04", "k3 loss"),
    "dr_grpo": ("no std division", "Dr. GRPO N·T"),
    "dapo": ("ε≈1.0e-06", "clip-higher", "token-mean"),
    "trl_ppo_advantages": ("whitened (Bessel)", "KL in reward"),
}


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_torch_implementations_are_judged_correct_and_named(name):
    report = verify.check(torch_fn(globals()[name]))
    assert report.ok, str(report)
    labels = " ".join(r.label for r in report.rows)
    for part in CORRECT[name]:
        assert part in labels, (part, str(report))


def test_a_sign_flipped_torch_loss_is_caught():
    report = verify.check(torch_fn(grpo_sign_flipped))
    assert not report.ok and report.mistakes == ["sign_flipped"], str(report)


def test_grpo_rows_carry_the_exact_group_expectation():
    # evidence: Dr. GRPO's exact expectation (pgnotes.groups) is ∇J (G-1)/G: angle 0, rel. error 1/G
    report = verify.check(torch_fn(dr_grpo))
    rows = [r for r in report.rows if "θ=θ_old" in r.scenario]
    for r, G in zip(rows, (8, 4)):
        assert r.exact_angle < 1e-6 and abs(r.exact_relative_error - 1 / G) < 1e-12, r
    trl = verify.check(torch_fn(trl_grpo))  # std and the per-sequence mean turn the update
    assert all(r.exact_angle > 1 for r in trl.rows if "θ=θ_old" in r.scenario and "β=0 " in r.scenario)
