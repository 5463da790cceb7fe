r"""The catalogue: every legitimate variant and every known mistake, as weights on one batch.

One job: for a :class:`~pgnotes.verify.layout.Scenario` and the form of a user's output
(advantages, or the gradient of a policy or value loss), list :class:`Candidate` s. Each is
a small linear family ``Σ_j c_j B_j`` of (N, T) arrays (``B_j`` from
:mod:`pgnotes.verify.reference`) whose free coefficients are the constants a legitimate
implementation may choose (the loss normaliser, GRPO's ``std + ε`` per group, the KL-loss
coefficient), with a rule that reads the fitted coefficients back: which variant, and
whether it is legitimate. Book: check your own PPO or GRPO code, ``verify-catalogue``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

import numpy as np

from . import reference as ref
from .layout import Scenario

__all__ = ["MISTAKES", "AGGREGATIONS", "Candidate", "candidates", "EPS_MAX"]

#: The mistakes the checker names, with what goes wrong and the fix.
MISTAKES = {
    "reward_last_column": "the score is written on the last column (T-1) instead of each row's "
    "last real token; the mask then erases it for every completion shorter than T",
    "reward_on_pad": "the score is written one position too far (index |y|, the first PAD) and "
    "masked away: only the KL term is left",
    "eos_masked": "the EOS token is masked as padding: it gets no reward, advantage or gradient",
    "whiten_padded": "advantages whitened with moments over every position of the padded batch",
    "zero_critic": "the critic's values are ignored (V = 0): with λ < 1 the score decays toward "
    "the start of the completion",
    "group_batch_mean": "GRPO's baseline is the mean of the whole batch, not of the row's group",
    "kl_twice": "the KL penalty is in the reward and again in the loss",
    "kl_missing": "kl_coef is taken but no KL term reaches the update",
    "kl_hardcoded": "a KL loss term whose coefficient is not kl_coef",
    "kl_k1_loss": "the k1 estimator log π - log π_ref in the loss: its expected gradient is 0",
    "kl_not_detached": "the KL reward is computed from log_prob (with gradient), not from "
    "old_log_prob: the loss differentiates through the reward",
    "clip_swapped": "min and max swapped in the clipped loss: the clip acts on the wrong side",
    "clip_missing": "cliprange is taken but the ratio is not clipped",
    "sign_flipped": "the loss has the wrong sign: minimising it ascends the loss",
    "advantages_scaled": "the advantages are rescaled by a constant that is not a whitening",
    "forgotten_mask": "the loss puts weight on padding positions (a forgotten loss mask)",
    "logits_shift": "the logits are off by one position: token t is scored by the logits of t-1",
    "value_clip_min": "the value loss takes the minimum of the clipped and unclipped errors",
    "value_not_clipped": "cliprange_value is taken but the value loss is not clipped",
    "not_in_catalogue": "the output matches no variant and no known mistake",
}

#: Aggregations (one constant per token, or 1/|y_i| per row), with TRL's and verl's names.
AGGREGATIONS = {
    "token": "token-mean (verl 'token-mean', TRL 'bnpo'/'dapo', PPO) or another constant "
    "normaliser (verl 'seq-mean-token-sum', 'seq-mean-token-sum-norm', TRL 'dr_grpo')",
    "sequence": "sequence mean of token means (verl 'seq-mean-token-mean', TRL 'grpo', OpenRLHF)",
}

#: The largest ε (in GRPO's std + ε, or in a whitening's variance + ε) read as "a small ε",
#: relative to the std (resp. variance) it is added to.
EPS_MAX = 0.01


@dataclasses.dataclass
class Candidate:
    """A family ``Σ_j c_j bases[j]``; ``read(c, tol)`` returns (legitimate, label, mistake or None)."""

    name: str
    bases: list
    read: Callable
    correct: bool = False  #: a legitimate structure (no built-in mistake): a target for the angle


def _constant_name(s: float, a: dict, whitened: bool = False) -> str:
    m = a["response_mask"]
    N, T = m.shape
    n = m.sum()
    for f, how in ((1.0, ""), (np.sqrt(n / (n - 1)), ", whitening with Bessel")) if whitened else ((1.0, ""),):
        for name, k in (("sum", 1.0), ("token-mean", n), ("seq-mean-token-sum", N),
                        ("Dr. GRPO N·T, TRL dr_grpo", N * T), ("1/T, verl seq-mean-token-sum-norm", T)):
            if abs(s * f * k - 1) < 1e-6:
                return name + how
    return f"constant 1/{1 / s:.4g}"


def _kl_read(label, kl, b, s, β, in_reward, tol):
    """The KL part: (legit, label, mistake) from the fitted loss coefficient b (overall scale s)."""
    coef = b / s if kl else 0.0
    if kl == "k1":
        return False, label + f" + k1 loss β={coef:.3g}", "kl_k1_loss"
    if in_reward and β > 0 and kl:
        return False, label + f" + {kl} loss β={coef:.3g}", "kl_twice"
    if kl:
        if abs(coef - β) > 100 * tol * (1 + β):
            return False, label + f" + {kl} loss β={coef:.3g} (kl_coef={β:g})", "kl_hardcoded"
        return True, label + f" + {kl} loss (use_kl_loss)", None
    if β > 0 and not in_reward:
        return False, label + " (no KL anywhere)", "kl_missing"
    return True, label, None


def _group_read(k, sd0, sd1, tol, s=None, G=None):
    """Per-group scales k_g = s / (std_g + ε): returns (ok, s, label). ``s`` known (advantages: 1;
    a loss with a KL term: its coefficient over kl_coef) or fitted from the line 1/k = std/s + ε/s.
    With ``s`` known, a constant ``k = s G/(G-1)`` is RLOO's leave-one-out baseline."""
    if np.ptp(k) <= 100 * tol * np.abs(k).max():
        if s is None or abs(k.mean() - s) <= 100 * tol * s:
            return True, float(k.mean()), "no std division (Dr. GRPO; RLOO is this up to G/(G-1))"
        if G and abs(k.mean() - s * G / (G - 1)) <= 100 * tol * s:
            return True, s, "RLOO leave-one-out baseline, no std division"
    if s is not None:
        for ddof, sd in ((0, sd0), (1, sd1)):
            ε = s / k - sd
            if np.ptp(ε) <= 100 * tol * sd.max() and -100 * tol * sd.min() <= ε.mean() <= EPS_MAX * sd.min():
                return True, s, f"std{' (Bessel)' if ddof else ''} + ε={max(ε.mean(), 0):.1e}"
    X = np.stack([sd0, np.ones_like(sd0)], axis=1)
    (α, γ), *_ = np.linalg.lstsq(X, 1 / k, rcond=None)
    res = np.abs(X @ [α, γ] - 1 / k).max() * np.abs(k).max()
    ε = γ / α if α != 0 else np.inf
    if s is None and α > 0 and res <= 100 * tol and -100 * tol * sd0.min() <= ε <= EPS_MAX * sd0.min():
        return True, float(1 / α), f"std (ddof 0 or 1) + ε≈{max(ε, 0):.1e}"
    return False, float(k.mean()), "a per-group scale that is not 1/(std + ε)"


def _advantage_variants(sc: Scenario, form: str):
    """(label, A or per-group list, in_reward, mistake, whitened) for the scenario's kind."""
    a, m, λ, β = sc.arrays, sc.arrays["response_mask"], sc.λ, sc.β
    if form == "given":
        yield "given advantages", a["advantages"], False, None, False
        return
    if sc.kind == "grpo":
        tls_last = a["token_level_scores"][:, -1]
        for label, base, mistake in (("GRPO group mean", ref.group_centred(a), None),
                                     ("batch mean", ref.group_centred(a, baseline="batch"), "group_batch_mean"),
                                     ("score of the last column", ref.group_centred(a, scores=tls_last),
                                      "reward_last_column")):
            if mistake:
                yield label, base[:, None] * m, False, mistake, False
                continue
            grp = np.unique(a["index"], return_inverse=True)[1]
            parts = [np.where(grp == g, base, 0.0)[:, None] * m for g in np.unique(grp)]
            yield label, [p for p in parts if np.abs(p).max() > 0], False, mistake, False
        return
    noeos = m * (a["responses"] != 0)
    for kl_in in ((True, False) if β > 0 else (True,)):
        b = β if kl_in else 0.0
        for place, mask, critic, mistake in (("last_real", m, True, None), ("last_column", m, True, "reward_last_column"),
                                             ("first_pad", m, True, "reward_on_pad"), ("last_real", noeos, True, "eos_masked"),
                                             ("last_real", m, False, "zero_critic")):
            if mistake and not kl_in:
                continue
            r = ref.token_rewards(a, b, place=place, mask=mask)
            A = ref.gae(r, a["values"] * critic, mask, λ)
            label = "GAE" + ((", KL in reward" if kl_in else ", no KL in reward") if β > 0 else "")
            yield label, A, kl_in, mistake, False
            yield label + ", whitened", ref.whiten(A, mask), kl_in, mistake, True
            if mistake is None and kl_in:
                yield label + ", whitened over padding", ref.whiten(A, m, padded=True), kl_in, "whiten_padded", True


def candidates(sc: Scenario, form: str, declared: set, tol: float) -> list:
    r"""The :class:`Candidate` s for a scenario; ``form`` is ``"advantages"``, ``"loss"``,
    ``"loss_given"`` (a policy loss that takes ``advantages``) or ``"value"``.

    Book: check your own PPO or GRPO code, ``verify-catalogue``.
    """
    a, m, β = sc.arrays, sc.arrays["response_mask"], sc.β
    out = []
    if form == "value":
        for agg, mode in itertools.product(("token", "sequence"), ("max", "plain", "min")):
            B = ref.aggregation_weight(m, agg) * ref.value_weight(a, mode=mode)
            claims = "cliprange_value" in declared
            mistake = {"min": "value_clip_min", "plain": "value_not_clipped" if claims else None}.get(mode)

            def read(c, tol, agg=agg, mode=mode, mistake=mistake):
                if c[0] <= 0:
                    return False, f"value loss {mode}, negative scale", "sign_flipped"
                return mistake is None, f"value loss ({mode}) | {agg}", mistake
            out.append(Candidate(f"value {mode} {agg}", [B], read, mistake is None))
        return out
    if form == "advantages":
        for label, A, kl_in, mistake, whitened in _advantage_variants(sc, "own"):
            if isinstance(A, list):
                out.append(Candidate(label, A, _grpo_adv_reader(label, a, mistake), mistake is None))
            else:
                out.append(Candidate(label, [A], _ppo_adv_reader(label, A, m, kl_in, β, mistake, whitened),
                                     mistake is None and (kl_in or β == 0)))
        return out
    ratio = np.exp(a["log_prob"] - a["old_log_prob"]) * m
    asym = "cliprange_high" in declared
    low, high = (a["cliprange_low"], a["cliprange_high"]) if asym else (a["cliprange"], a["cliprange"])
    clip_names = ("standard", "dual", "swapped", "none")
    kls = ("k3", "k2", "k1", None) if "ref_log_prob" in declared or "kl_coef" in declared else (None,)
    source = "given" if form == "loss_given" else "own"
    for label, A, kl_in, mistake, whitened in _advantage_variants(sc, source):
        groups = A if isinstance(A, list) else [A]
        for agg, clip, kl in itertools.product(("token", "sequence"), clip_names, kls):
            c = ref.aggregation_weight(m, agg)
            bases = [c * ref.surrogate_weight(ratio, G, low=low, high=high, mode=clip, c=a["clip_ratio_c"]) for G in groups]
            if kl:
                bases.append(c * ref.kl_weight(a, kl))
            cm = {"swapped": "clip_swapped", "none": "clip_missing"}.get(clip)
            out.append(Candidate(f"{label} | {agg} | {clip} | {kl}", bases,
                                 _loss_reader(label, a, agg, clip, kl, kl_in, β, mistake or cm,
                                              isinstance(A, list), asym, whitened),
                                 not (mistake or cm) and kl in (None, "k3", "k2") and (kl_in or β == 0) != bool(kl)
                                 if β > 0 else not (mistake or cm) and kl is None))
        if sc.kind == "ppo" and kl_in and β > 0 and not whitened and mistake is None:
            for agg in ("token", "sequence"):
                c = ref.aggregation_weight(m, agg)
                A_nd = ref.gae(ref.token_rewards(a, β, source="log_prob"), a["values"], m, sc.λ)
                B = c * ref.surrogate_weight(ratio, A_nd, low=low, high=high)
                B = B + ref.kl_not_detached_weight(a, ratio, A_nd, c, β, sc.λ, low=low, high=high)
                out.append(Candidate(f"{label} | {agg} | KL reward not detached", [B],
                                     lambda c, tol, agg=agg: (False, f"KL reward not detached | {agg}", "kl_not_detached")))
    return out


def _ppo_adv_reader(label, A, m, kl_in, β, mistake, whitened):
    def read(c, tol):
        s = c[0]
        if s <= 0:
            return False, label + f" × {s:.3g}", "sign_flipped"
        name = label + ("" if kl_in or β == 0 else " (legitimate with a KL loss term, use_kl_loss)")
        if not whitened:
            if abs(s - 1) > 100 * tol:
                return False, label + f" × {s:.4g}", mistake or "advantages_scaled"
            return mistake is None, name, mistake
        n = m.sum()
        for ddof in (0, 1):
            ε = (1 / s**2) * (n - ddof) / n - 1  # ε / var(ddof): (var + ε)^(-1/2) = s var0^(-1/2)
            if -100 * tol <= ε <= EPS_MAX:
                return mistake is None, name + (" (Bessel)" if ddof else "") + (f", ε={ε:.1e}·var" if ε > 100 * tol else ""), mistake
        return False, label + f" × {s:.4g}", mistake or "advantages_scaled"
    return read


def _grpo_adv_reader(label, a, mistake):
    sd0, sd1 = ref.group_std(a, 0), ref.group_std(a, 1)

    def read(c, tol, groups=None):
        k = np.asarray(c)
        if np.any(k <= 0):
            return False, label + " with a negative scale", "sign_flipped"
        idx = _mixed_group_rows(a)
        G = int(np.bincount(np.unique(a["index"], return_inverse=True)[1]).max())
        ok, s, what = _group_read(k, sd0[idx], sd1[idx], tol, s=1.0, G=G)
        return ok and mistake is None, f"{label}, {what}", mistake or (None if ok else "advantages_scaled")
    return read


def _mixed_group_rows(a):
    """One row of each group whose scores are not all equal, in group order."""
    grp = np.unique(a["index"], return_inverse=True)[1]
    rows = []
    for g in np.unique(grp):
        r = np.flatnonzero(grp == g)
        if np.ptp(a["scores"][r]) > 0:
            rows.append(r[0])
    return np.array(rows, dtype=int)


def _loss_reader(label, a, agg, clip, kl, kl_in, β, mistake, grouped, asym, whitened):
    sd0, sd1 = ref.group_std(a, 0), ref.group_std(a, 1)
    clip_label = {"standard": "clip", "dual": "dual-clip c=3", "swapped": "clip swapped",
                  "none": "no clip"}[clip] + (" (asymmetric, clip-higher)" if asym else "")

    def read(c, tol):
        c = np.asarray(c)
        k, b = (c[:-1], c[-1]) if kl else (c, 0.0)
        if np.any(k <= 0):
            return False, f"{label} | {agg} | {clip_label}: wrong sign", "sign_flipped"
        if kl and abs(b) <= 100 * tol * np.abs(k).max():
            return False, "(a KL term with coefficient 0)", "kl_hardcoded"
        if grouped:
            idx = _mixed_group_rows(a)
            ok_g, s, what = False, None, ""
            if kl and β > 0:
                ok_g, s, what = _group_read(k, sd0[idx], sd1[idx], tol, s=b / β)
            if not ok_g:
                ok_g, s, what = _group_read(k, sd0[idx], sd1[idx], tol)
            base = f"{label}, {what} | {agg} | {clip_label}"
        else:
            ok_g, s, base = True, float(k[0]), f"{label} | {agg} | {clip_label}"
        if agg == "token":
            base += f" ({_constant_name(s, a, whitened)})"
        ok_kl, full, m_kl = _kl_read(base, kl, b, s, β, kl_in, tol)
        m_all = mistake or m_kl or (None if ok_g else "advantages_scaled")
        return ok_g and ok_kl and m_all is None, full, m_all
    return read
