r"""Exact training runs: PPO, GRPO, Dr. GRPO, RLOO and DAPO on a token MDP, with exact metrics.

Each run draws batches from the policy (a seeded ``numpy.random.Generator``), turns them into
one weight per token as its algorithm does, takes gradient steps, and after every iteration
records the *exact* objective, KL to the reference, entropy and expected length of the current
policy (:func:`exact_metrics`, one backward and one forward pass over the prefix tree). Every
algorithm spends the same budget of sampled tokens. Book: exact training runs, ``run-loop``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import as_count, as_real, check_kl_coefficient, check_rng, check_token_mdp, real_array
from .groups import group_advantages
from .ppo import gae_advantages, token_rewards
from .tokens import completions, evaluate, row_weights, sample_groups, score_sum, token_log_probs

__all__ = ["ALGORITHMS", "Run", "exact_metrics", "kl_controller", "mismatch_expectation", "train"]

#: The algorithms :func:`train` runs: advantage, aggregation and what else each one changes.
ALGORITHMS = {
    "ppo": "a learned tabular critic, GAE(λ), k1 KL in the reward, token-mean loss",
    "grpo": "(r − mean)/(std + 1e-4) per group, k3 KL in the loss, mean over each completion's "
    "tokens then over completions",
    "dr_grpo": "r − mean per group, no std, sum over tokens divided by the constant L",
    "rloo": "r − mean of the other G − 1 rewards, sum over tokens, mean over completions",
    "dapo": "GRPO's advantage, groups with all-equal rewards dropped (dynamic sampling), "
    "token-mean loss, clip-higher (ε_low, ε_high) = (0.2, 0.28), no KL",
}


def exact_metrics(tmdp, θ, *, theta_ref=None, features=None) -> dict:
    r"""The exact ``J``, ``E_x KL(π_θ‖π_ref)``, sequence entropy and expected length of ``π_θ``.

    With ``μ(s)`` the probability that the prefix ``s`` is visited (every visited prefix emits
    one token):

    .. math::

        E|y| = \sum_s μ(s), \qquad
        H = -\sum_s μ(s) \sum_a π_θ(a|s)\log π_θ(a|s) = E_x E_y[-\log π_θ(y|x)],

    and the KL is :func:`~pgnotes.tokens.sequence_kl` averaged over ``ρ``. Book: exact training
    runs, ``run-metrics``.

    Returns
    -------
    dict with float entries ``J``, ``kl`` (0 without ``theta_ref``), ``entropy``, ``length``.

    Examples
    --------
    >>> from pgnotes import llm_loss
    >>> s = llm_loss.setting("toy")
    >>> m = exact_metrics(s.tmdp, s.θ_ref, theta_ref=s.θ_ref, features=s.features)
    >>> {k: round(v, 3) for k, v in m.items()}  # at the reference the KL is 0
    {'J': 0.077, 'kl': 0.0, 'entropy': 4.281, 'length': 3.571}
    """
    ev = evaluate(tmdp, θ, theta_ref=theta_ref, features=features)
    if np.iscomplexobj(ev.π):
        raise ValueError("exact_metrics needs a real θ")
    plogp = np.where(ev.π > 0, ev.π * ev.log_π, 0.0).sum(axis=1)
    return {"J": float(ev.J), "kl": 0.0 if ev.kl is None else float(tmdp.rho @ ev.kl),
            "entropy": float(-ev.μ @ plogp), "length": float(ev.μ.sum())}


def kl_controller(beta: float, kl: float, *, target: float, horizon: float, n_steps: int) -> float:
    r"""Ziegler et al.'s adaptive KL coefficient, one update.

    .. math:: e = \mathrm{clip}\Big(\frac{\mathrm{KL} - \mathrm{KL}_{target}}{\mathrm{KL}_{target}}, -0.2, 0.2\Big),
              \qquad β \leftarrow β\,\big(1 + e\, n_{steps}/H\big),

    with ``KL`` the batch's estimate and ``n_steps`` the samples of the batch (TRL's
    ``AdaptiveKLController``, OpenRLHF's ``init_kl_coef`` with ``kl_target`` and ``kl_horizon``).
    Book: exact training runs, ``run-controller``.

    Examples
    --------
    >>> round(kl_controller(0.05, 0.3, target=0.2, horizon=200, n_steps=24), 6)  # e = 0.2 (clipped)
    0.0512
    """
    β = as_real(beta, "beta", low=0.0)
    target = as_real(target, "target (the KL target)", low=0.0, low_open=True)
    horizon = as_real(horizon, "horizon (the controller's horizon)", low=0.0, low_open=True)
    n_steps = as_count(n_steps, "n_steps", minimum=1)
    e = float(np.clip((as_real(kl, "kl") - target) / target, -0.2, 0.2))
    return β * (1.0 + e * n_steps / horizon)


def mismatch_expectation(tmdp, θ, θ_roll, *, correction: str = "none", cap=None,
                         features=None) -> np.ndarray:
    r"""The exact expected REINFORCE step when the completions come from ``π_roll``, not ``π_θ``.

    .. math:: E_{x∼ρ} E_{y∼π_{roll}}\Big[r(x, y) \sum_t w_t\, ∇_θ \log π_θ(y_t|s_t)\Big],

    by enumeration of every completion, with ``w_t = 1`` (``"none"``: the trainer ignores the
    mismatch), ``w_t = \min(π_θ(y_t|s_t)/π_{roll}(y_t|s_t), C)`` (``"token"``: truncated
    importance sampling per token, untruncated with ``cap=None``) or ``w_t = π_θ(y|x)/π_{roll}(y|x)`` for every ``t``
    (``"sequence"``: the full sequence ratio, which makes the step exactly ``∇J``).
    Book: exact training runs, ``run-mismatch``.
    """
    if correction not in ("none", "token", "sequence"):
        raise ValueError(f"correction must be 'none', 'token' or 'sequence', got {correction!r}")
    C = np.inf if cap is None else as_real(cap, "cap (truncation C ≥ 1, None for none)", low=1.0)
    c = completions(tmdp, θ_roll, features=features)
    q = row_weights(tmdp, c)
    log_w = (token_log_probs(tmdp, θ, c, features=features)
             - token_log_probs(tmdp, θ_roll, c, features=features))
    if correction == "none":
        w = np.ones(c.tokens.shape)
    elif correction == "token":
        w = np.minimum(np.exp(log_w), C)
    else:
        w = np.broadcast_to(np.exp(log_w.sum(axis=1))[:, None], c.tokens.shape)
    X = score_sum(tmdp, θ, c, np.where(c.mask, c.rewards[:, None] * w, 0.0), features=features)
    return np.tensordot(q, X, axes=1)


@dataclass(frozen=True)
class Run:
    r"""The record of one run: arrays over the iterates ``θ_0, θ_1, …`` (one entry each).

    Attributes
    ----------
    tokens : int, sampled tokens spent before each iterate (0 first).
    J, kl, entropy, length : exact :func:`exact_metrics` of each iterate.
    beta : the KL coefficient in force at each iterate.
    dropped : fraction of groups dynamic sampling dropped at each iteration (0 elsewhere).
    θ : the last iterate.
    """

    tokens: np.ndarray
    J: np.ndarray
    kl: np.ndarray
    entropy: np.ndarray
    length: np.ndarray
    beta: np.ndarray
    dropped: np.ndarray
    θ: np.ndarray


def _advantages(batch, name, group_size):
    """Per-token advantages (N, L) of the group algorithms; the KL is in the loss or absent."""
    r = batch.rewards.reshape(-1, group_size)
    if name == "grpo" or name == "dapo":
        A = group_advantages(r, baseline="mean", divide_by_std=True, eps=1e-4)
    elif name == "dr_grpo":
        A = group_advantages(r, baseline="mean")
    else:
        A = group_advantages(r, baseline="loo")
    return np.where(batch.mask, A.reshape(-1)[:, None], 0.0)


def _aggregation(batch, name, max_len):
    """The factor of each token in the loss (N, L): how the algorithm averages."""
    m = batch.mask.astype(float)
    if name in ("ppo", "dapo"):
        return m / max(m.sum(), 1.0)  # token-mean
    if name == "grpo":
        return m / np.maximum(batch.lengths, 1)[:, None] / batch.n  # mean over tokens, then rows
    if name == "dr_grpo":
        return m / max_len / batch.n  # constant normaliser
    return m / batch.n  # rloo: sum over tokens, mean over rows


def _gradient(pol, batch, w):
    """``Σ_{i,t} w_{i,t} ∇ log π_θ(y_{i,t}|s_{i,t})`` by one contraction over (prefix, token)."""
    W = np.zeros(pol.probs.shape)
    np.add.at(W, (batch.prefixes[batch.mask], batch.tokens[batch.mask]), w[batch.mask])
    return pol.score_contract(W)


def _critic_step(V, V_old, batch, returns, step_size, value_clip):
    """One step on the (optionally clipped) squared error of a tabular critic."""
    k, R = batch.prefixes[batch.mask], returns[batch.mask]
    v, v0 = V[k], V_old[k]
    g = v - R
    if value_clip is not None:
        vc = v0 + np.clip(v - v0, -value_clip, value_clip)
        use_clipped = (vc - R) ** 2 > (v - R) ** 2
        g = np.where(use_clipped, (vc - R) * (np.abs(v - v0) < value_clip), g)
    n = np.bincount(k, minlength=V.size)
    return V - step_size * np.bincount(k, g, minlength=V.size) / np.maximum(n, 1)


def _options(algorithm, beta, theta_ref, cliprange, entropy_coef, tis_cap, mismatch):
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {sorted(ALGORITHMS)}, got {algorithm!r}")
    β = check_kl_coefficient(beta, theta_ref)
    if isinstance(cliprange, (tuple, list)):
        if len(cliprange) != 2:
            raise ValueError(f"cliprange must be a number or a pair (ε_low, ε_high), got {cliprange!r}")
        lo = as_real(cliprange[0], "cliprange[0] (ε_low)", low=0.0, high=1.0, low_open=True, high_open=True)
        hi = as_real(cliprange[1], "cliprange[1] (ε_high)", low=0.0, low_open=True)
    else:
        lo = hi = as_real(cliprange, "cliprange", low=0.0, high=1.0, low_open=True, high_open=True)
    if algorithm == "dapo" and not isinstance(cliprange, (tuple, list)):
        lo, hi = 0.2, 0.28
    c_H = as_real(entropy_coef, "entropy_coef", low=0.0)
    cap = None if tis_cap is None else as_real(tis_cap, "tis_cap (truncation C ≥ 1)", low=1.0)
    δ = as_real(mismatch, "mismatch (the rollout engine's logit noise)", low=0.0)
    return β, lo, hi, c_H, cap, δ


def train(tmdp, θ, *, algorithm: str, token_budget: int, group_size: int, step_size: float,
          rng: np.random.Generator, n_prompts=None, epochs: int = 1, cliprange=0.2,
          beta: float = 0.0, theta_ref=None, kl_target=None, kl_horizon: float = 10_000.0,
          entropy_coef: float = 0.0, lam: float = 0.95, critic_step: float = 0.5,
          value_clip=None, mismatch: float = 0.0, tis_cap=None, features=None) -> Run:
    r"""Train ``π_θ`` with ``algorithm`` until ``token_budget`` sampled tokens are spent.

    Each iteration draws ``G = group_size`` completions per prompt (every prompt once, or
    ``n_prompts`` draws from ``ρ``) from the *rollout* policy, builds per-token advantages
    :math:`\hat A_{i,t}` and loss factors :math:`c_{i,t}` (:data:`ALGORITHMS`), and takes
    ``epochs`` ascent steps of size ``step_size`` on

    .. math::

        \sum_{i,t} c_{i,t}\, w_{i,t} \min\big(ρ_{i,t}\hat A_{i,t},
            \mathrm{clip}(ρ_{i,t}, 1-ε_{low}, 1+ε_{high})\hat A_{i,t}\big)
        - β \sum_{i,t} c_{i,t}\, k_3(i,t) + c_H \sum_{i,t} c_{i,t} H(π_θ(\cdot|s_{i,t})),

    with :math:`ρ_{i,t} = π_θ/π_{old}` (1 at the first epoch), ``k3`` only for the group
    algorithms with ``β > 0`` (PPO puts :math:`-β\log π_θ/π_{ref}` in the reward instead) and
    :math:`w_{i,t} = \min(π_{old}/π_{roll}, C)` the truncated importance weight when
    ``tis_cap = C`` is given (else 1). The rollout engine samples from ``θ + δ z``, ``δ =
    mismatch`` and ``z`` one standard normal draw of ``θ``'s shape per run: a fixed mismatch
    between the engine's and the trainer's log-probabilities. PPO's critic is a table over the
    prefixes, 0 at the start, moved ``epochs`` times per iteration by ``critic_step`` times the
    mean residual at each visited prefix, with PPO's value clipping at ``value_clip``. With
    ``kl_target`` the coefficient follows :func:`kl_controller` after each iteration. A
    ``cliprange`` pair is (ε_low, ε_high); DAPO's default is (0.2, 0.28). Book: exact training
    runs, ``run-loop``.

    Returns
    -------
    Run

    Raises
    ------
    ValueError
        For an unknown algorithm, a non-positive budget or step, ``β > 0`` without ``theta_ref``,
        a KL target without ``theta_ref``, or ``tis_cap < 1``.
    TypeError
        If ``rng`` is not a numpy Generator.
    """
    tmdp, rng = check_token_mdp(tmdp), check_rng(rng)
    β, lo, hi, c_H, cap, δ = _options(algorithm, beta, theta_ref, cliprange, entropy_coef,
                                      tis_cap, mismatch)
    budget = as_count(token_budget, "token_budget", minimum=1, maximum=10**8)
    G = as_count(group_size, "group_size", minimum=2, maximum=10**5)
    α = as_real(step_size, "step_size", low=0.0, low_open=True)
    epochs = as_count(epochs, "epochs", minimum=1, maximum=100)
    lam = as_real(lam, "lam (the GAE λ)", low=0.0, high=1.0)
    critic_step = as_real(critic_step, "critic_step", low=0.0, low_open=True)
    if value_clip is not None:
        value_clip = as_real(value_clip, "value_clip", low=0.0, low_open=True)
    if kl_target is not None and theta_ref is None:
        raise ValueError("an adaptive KL target needs the reference parameters theta_ref")
    θ = real_array(θ, "θ").astype(float)
    z = rng.standard_normal(θ.shape)
    V = np.zeros(tmdp.n_prefixes)
    hist = {k: [] for k in ("tokens", "J", "kl", "entropy", "length", "beta", "dropped")}

    def record(spent, dropped):
        m = exact_metrics(tmdp, θ, theta_ref=theta_ref, features=features)
        for k, v in (("tokens", spent), ("beta", β), ("dropped", dropped), *m.items()):
            hist[k].append(v)

    spent = 0
    record(0, 0.0)
    while spent < budget:
        b = sample_groups(tmdp, θ + δ * z, group_size=G, rng=rng, n_prompts=n_prompts,
                          features=features)
        spent += int(b.mask.sum())
        old = token_log_probs(tmdp, θ, b, features=features)
        w_is = 1.0 if cap is None else np.minimum(
            np.exp(old - token_log_probs(tmdp, θ + δ * z, b, features=features)), cap)
        ref = None if theta_ref is None else token_log_probs(tmdp, theta_ref, b, features=features)
        c, dropped = _aggregation(b, algorithm, tmdp.max_len), 0.0
        if algorithm == "ppo":
            r = token_rewards(tmdp, b, beta=β, θ=θ, theta_ref=theta_ref, features=features)
            returns = gae_advantages(tmdp, b, r, np.zeros(tmdp.n_prefixes), 1.0)
            A, V_old = gae_advantages(tmdp, b, r, V, lam), V.copy()
        else:
            A = _advantages(b, algorithm, G)
        if algorithm == "dapo":
            keep = np.repeat(np.ptp(b.rewards.reshape(-1, G), axis=1) > 0, G)
            dropped = 1.0 - float(keep.mean())
            m = b.mask & keep[:, None]
            c = m / max(m.sum(), 1.0)
        for _ in range(epochs):
            ev = evaluate(tmdp, θ, features=features)
            cur = token_log_probs(tmdp, θ, b, features=features)
            ρ = np.exp(cur - old)
            flat = ((A > 0) & (ρ > 1 + hi)) | ((A < 0) & (ρ < 1 - lo))
            w = c * w_is * np.where(flat, 0.0, ρ * A)
            if β > 0 and algorithm != "ppo":
                w = w - β * c * (1.0 - np.exp(ref - cur))  # -β ∇k3 = -β (1 − π_ref/π) ∇log π
            g = _gradient(ev.policy, b, np.where(b.mask, w, 0.0))
            if c_H > 0:
                visits = np.bincount(b.prefixes[b.mask], c[b.mask], minlength=tmdp.n_prefixes)
                plogp = np.where(ev.π > 0, ev.π * ev.log_π, 0.0)
                g = g + c_H * ev.policy.score_contract(-visits[:, None] * plogp)
            if algorithm == "ppo":
                V = _critic_step(V, V_old, b, returns, critic_step, value_clip)
            θ = θ + α * g
        if kl_target is not None:
            kl_batch = float(np.where(b.mask, old - ref, 0.0).sum(axis=1).mean())
            β = kl_controller(β, kl_batch, target=kl_target, horizon=kl_horizon, n_steps=b.n)
        record(spent, dropped)
    return Run(**{k: np.array(v) for k, v in hist.items()}, θ=θ)
