r"""A debugging lab: a reference LLM policy-gradient loss with named, switchable mistakes.

Book: a debugging lab, the debugging lab (``lab-*``). One job: compute the per-token
weights :math:`w_{i,t}` of a policy-gradient loss for a batch of completions, the way an
LLM-PPO implementation does (rewards on tokens, a KL penalty, a critic, GAE, whitening, an
aggregation over tokens), either correctly or with one well-known mistake switched on. The
gradient estimate of completion ``i`` is

.. math:: \hat g_i = \sum_t w_{i,t}\, ∇_θ \log π_θ(y_{i,t} \mid s_{i,t})

(the gradient of ``-loss`` at ``θ = θ_old``, where PPO's ratios are 1), and a batch's estimate
is the mean of the :math:`\hat g_i`. Over an enumeration of every completion
(:func:`pgnotes.tokens.completions`) the mean weighs completion ``i`` by :math:`ρ(x)\,π_θ(y|x)`:
that is the exact expected estimate, compared with the exact :math:`∇J_β`
(:func:`pgnotes.tokens.policy_gradient`).

The correct computation, :func:`token_weights` with ``mistake=None``:

1. per-token rewards: the verifier's ``r`` on the last real token (the EOS, or the ``L``-th
   token of a truncated completion), :math:`-β \log(π_θ/π_{ref})` on every real token;
2. the critic ``V`` (by default the exact ``V`` of :math:`π_θ` with the KL-shaped reward);
3. GAE(λ) with ``γ = 1`` on the real tokens (:func:`pgnotes.ppo.gae_advantages`);
4. optionally (``whiten=True``) whitening of the advantages with the mean and standard
   deviation over the real tokens of the batch;
5. sum over the tokens of each completion, mean over completions.

With the exact critic it is unbiased for :math:`∇J_β` for every ``λ``. Batch statistics
(the whitening moments, the token count of ``"token_mean"``) are those of the batch; for an
enumeration they are the :math:`ρ(x)\,π_θ(y|x)`-weighted population values, the limit of a
large batch.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import ppo
from . import tokens as tk
from ._validate import as_count, check_token_batch, check_token_mdp, real_array
from .reference import angle

__all__ = [
    "Setting",
    "SETTINGS",
    "setting",
    "MISTAKES",
    "AGGREGATIONS",
    "angle",
    "whitened_expectation",
    "prompt_blind_values",
    "token_weights",
    "policy_gradient_estimate",
    "expected_estimate",
    "compare",
    "export_completions",
    "check_weights",
]

#: The names of the lab's two settings, for :func:`setting`.
SETTINGS = ("toy", "long_answer")


@dataclasses.dataclass(frozen=True)
class Setting:
    r"""One of the lab's two worlds: a token MDP, its features and three policies.

    Attributes
    ----------
    name : ``"toy"`` or ``"long_answer"``.
    tmdp : the :class:`~pgnotes.tokens.TokenMDP`.
    features : ``φ``, shape (n_prefixes, n_vocab, d), :func:`pgnotes.tokens.token_features`.
    θ_ref : the reference (SFT) policy, where RL starts.
    θ : a policy some way into training (the lab's ``θ``, chapter 10's ``θ_far``/``θ_long``).
    β, λ : the KL coefficient and the GAE parameter of the lab's tables.
    """

    name: str
    tmdp: tk.TokenMDP
    features: np.ndarray
    θ_ref: np.ndarray
    θ: np.ndarray
    β: float = 0.05
    λ: float = 0.95


def setting(name: str = "toy") -> Setting:
    r"""The lab's settings, shared by chapters 10 and 11 and the tests: ``"toy"`` or ``"long_answer"``.

    ``"toy"``: :func:`pgnotes.tokens.toy_mdp` ``("sum")`` with ``rng = default_rng(0)``,
    ``θ_ref = 0.5 z_1`` and ``θ = θ_ref + 0.7 z_2`` (``z`` standard normal draws of size ``d``).
    ``"long_answer"``: :func:`pgnotes.tokens.long_answer_mdp` with ``θ_ref = 0.3 z_1`` lowered
    by 2 on the (position, EOS) features, so that the reference policy writes long answers,
    and ``θ = θ_ref + 0.5 z_2``. Book: a debugging lab, ``lab-settings``.

    Raises
    ------
    ValueError
        For another name.
    """
    if name not in SETTINGS:
        raise ValueError(f"unknown setting {name!r}; choose among {SETTINGS}")
    rng = np.random.default_rng(0)
    if name == "toy":
        tmdp = tk.toy_mdp("sum")
        φ = tk.token_features(tmdp)
        θ_ref = 0.5 * rng.standard_normal(φ.shape[2])
        θ = θ_ref + 0.7 * rng.standard_normal(φ.shape[2])
    else:
        tmdp = tk.long_answer_mdp()
        φ = tk.token_features(tmdp)
        θ_ref = 0.3 * rng.standard_normal(φ.shape[2])
        n_vocab = tmdp.n_vocab
        θ_ref[n_vocab**2 + n_vocab * np.arange(tmdp.max_len)] -= 2.0  # the (position, EOS) features
        θ = θ_ref + 0.5 * rng.standard_normal(φ.shape[2])
    for a in (φ, θ_ref, θ):
        a.flags.writeable = False
    return Setting(name, tmdp, φ, θ_ref, θ)


#: The aggregations :func:`token_weights` offers: legitimate choices, each with its own target.
AGGREGATIONS = {
    "sum": "the sum over the tokens of each completion, then the mean over completions "
    "(verl 'seq-mean-token-sum'); unbiased for ∇J_β",
    "token_mean": "the mean over all real tokens of the batch (verl 'token-mean', TRL 'bnpo'/'dapo', "
    "the PPO paper): weights divided by the batch's mean length; in a large batch ∇J_β / E|y|",
    "sequence_mean": "the mean over the tokens of each completion (weights divided by |y|), then over "
    "completions (verl 'seq-mean-token-mean', TRL 'grpo', OpenRLHF): another objective",
    "constant": "the sum divided by a constant, here L (Dr. GRPO, TRL 'dr_grpo'): ∇J_β / L",
}

#: The mistakes :func:`token_weights` can switch on, with what each one does.
MISTAKES = {
    "reward_on_pad": "the verifier's reward is written one position too far, on the first PAD "
    "(index |y|), and then masked with the padding: it vanishes (and falls off the end of a "
    "truncated completion, |y| = L)",
    "eos_masked": "the EOS token is masked as if it were padding: it gets no reward, no "
    "advantage and no gradient; the reward moves to the token before it",
    "kl_twice": "the KL penalty is in the reward (-β log π/π_ref per token) and, again, in "
    "the loss (β Σ_t k3_t, k3 = π_ref/π - log(π_ref/π) - 1, as in GRPO)",
    "whiten_padded": "advantages are whitened with the mean and standard deviation over every "
    "position of the padded batch, PAD positions (advantage 0) included",
    "zero_critic": "the critic is V ≡ 0 (an untrained value head); with λ < 1 the terminal "
    "reward decays as λ^k toward the start of the completion",
    "prompt_blind_critic": "the critic sees only the position and the last generated token, not "
    "the prompt (the best such critic, prompt_blind_values)",
}




def prompt_blind_values(tmdp: tk.TokenMDP, θ, *, beta: float = 0.0, theta_ref=None,
                        features=None) -> np.ndarray:
    r"""The best critic that sees only the position and the last generated token, shape (n_prefixes,).

    Prefixes with the same length ``|y|`` and the same last completion token (none for the
    empty completion) share one value, the :math:`μ`-weighted mean of the exact ``V`` over
    them: the least-squares fit :math:`\min \sum_s μ(s) (V(s) - v_{c(s)})^2` of a critic with one
    number per class ``c``, which Monte Carlo regression on returns converges to. Classes that
    are never visited get the plain mean. Book: a debugging lab, ``lab-critic``.
    """
    ev = tk.evaluate(tmdp, θ, beta=beta, theta_ref=theta_ref, features=features)
    if np.iscomplexobj(ev.V):
        raise ValueError("prompt_blind_values needs a real θ")
    n_vocab = tmdp.n_vocab
    last = np.array([y[-1] if y else 0 for _, y in tmdp.prefixes], dtype=np.intp)  # 0: no token yet
    cls = tmdp.depth * n_vocab + last
    n_cls = tmdp.max_len * n_vocab
    w = np.bincount(cls, ev.μ, minlength=n_cls)
    s = np.bincount(cls, ev.μ * ev.V, minlength=n_cls)
    plain = np.bincount(cls, ev.V, minlength=n_cls) / np.maximum(np.bincount(cls, minlength=n_cls), 1)
    mean = np.divide(s, w, out=plain.copy(), where=w > 0)
    return mean[cls]


def _token_mean_factor(lengths, q, N, L) -> np.ndarray:
    """E[N / (n + S)] for each row's length n, S the sum of N - 1 i.i.d. lengths with law q."""
    N = as_count(N, "batch_size", minimum=1, maximum=1024)
    law = np.bincount(lengths, q, minlength=L + 1)  # P(|y| = ℓ), ℓ = 0..L
    S = np.ones(1)
    for _ in range(N - 1):
        S = np.convolve(S, law)
    s = np.arange(S.size)
    return np.array([S @ (N / (n + s)) if n > 0 else 0.0 for n in range(L + 1)])[lengths]


def _population(tmdp, batch) -> np.ndarray:
    """Weights of the rows of a batch: ρ(x) π(y|x) for an enumeration, 1/N for a sample."""
    if batch.prob is not None:
        return tmdp.rho[batch.prompt_ids] * batch.prob
    return np.full(batch.n, 1.0 / batch.n)


def token_weights(
    tmdp: tk.TokenMDP, θ, batch: tk.TokenBatch, *, mistake: str | None = None, lam: float = 1.0, critic=None,
    beta: float = 0.0, theta_ref=None, whiten: bool = False, batch_size: int | None = None, features=None,
    aggregation: str = "sum",
) -> np.ndarray:
    r"""The per-token weights :math:`w_{i,t}` of the policy-gradient loss, shape (N, L), 0 on padding.

    The steps are those of the module docstring; ``mistake`` (a key of :data:`MISTAKES`, or
    None) switches one step to its well-known wrong version. ``λ`` is the GAE parameter,
    ``critic`` a table of ``V`` per prefix (default: the exact ``V`` of ``π_θ`` with the
    KL-shaped reward), ``β`` and ``θ_ref`` the KL penalty, ``whiten`` the (correct) whitening of
    the advantages over the real tokens. ``batch_size`` (for ``aggregation="token_mean"`` on an enumeration
    only) is the number ``N`` of completions in a batch, each with its prompt drawn from ``ρ``:
    the weight of a completion of length ``n`` is then the exact :math:`E[N / (n + S)]`, ``S`` the
    total length of the ``N - 1`` others (``N = 1`` is the sequence mean); by default it is the
    large-batch limit :math:`1 / E[n]`. Critic: for ``"reward_on_pad"`` the default critic is the
    exact ``V`` of the rewards that code uses (the KL term only), as a critic trained on them
    would learn. Book: a debugging lab, ``lab-reference``.

    Raises
    ------
    ValueError
        On an unknown mistake, ``"kl_twice"`` without ``β > 0``, or the errors of :mod:`pgnotes.tokens`.
    """
    tmdp = check_token_mdp(tmdp)
    batch = check_token_batch(tmdp, batch)
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; choose among {sorted(AGGREGATIONS)}")
    if mistake is not None and mistake not in MISTAKES:
        raise ValueError(f"unknown mistake {mistake!r}; choose among {sorted(MISTAKES)} or None")
    if mistake == "kl_twice" and not beta > 0:
        raise ValueError("the mistake 'kl_twice' needs a KL penalty β > 0 and θ_ref")
    n, pad = tmdp.n_prefixes, tmdp.pad
    if mistake == "eos_masked":  # the EOS is treated as padding everywhere downstream
        m = batch.mask & (batch.tokens != tk.EOS)
        batch = dataclasses.replace(
            batch, mask=m, lengths=m.sum(axis=1), tokens=np.where(m, batch.tokens, pad),
            prefixes=np.where(m, batch.prefixes, n),
        )
    mask = batch.mask
    if mistake == "reward_on_pad":  # the KL terms as usual, the verifier's reward written at index |y|:
        r = ppo.token_rewards(tmdp, dataclasses.replace(batch, rewards=np.zeros(batch.n)),
                              beta=beta, θ=θ, theta_ref=theta_ref, features=features)
        wide = np.zeros((batch.n, tmdp.max_len + 1))
        wide[np.arange(batch.n), batch.lengths] = batch.rewards  # the first PAD, or off the end (|y| = L)
        r = r + wide[:, : tmdp.max_len] * mask  # ... and the padding mask removes it
    else:
        r = ppo.token_rewards(tmdp, batch, beta=beta, θ=θ, theta_ref=theta_ref, features=features)
    if critic is None:
        critic = tk.state_values(tmdp, θ, beta=beta, theta_ref=theta_ref, features=features)
        if mistake == "reward_on_pad":  # the exact critic of the rewards this code uses: the KL term only
            critic = critic - tk.state_values(tmdp, θ, features=features)
    if mistake == "zero_critic":
        critic = np.zeros(n)
    elif mistake == "prompt_blind_critic":
        critic = prompt_blind_values(tmdp, θ, beta=beta, theta_ref=theta_ref, features=features)
    A = ppo.gae_advantages(tmdp, batch, r, critic, lam)
    q = _population(tmdp, batch)
    if mistake == "whiten_padded":  # moments over all N × L positions, PAD counted as 0
        L = tmdp.max_len
        μ = q @ A.sum(axis=1) / (q.sum() * L)
        var = q @ (np.where(mask, (A - μ) ** 2, μ**2)).sum(axis=1) / (q.sum() * L)
        A = np.where(mask, (A - μ) / np.sqrt(var), 0.0)
    elif whiten:
        cnt = q @ mask.sum(axis=1)
        μ = q @ A.sum(axis=1) / cnt
        var = q @ np.where(mask, (A - μ) ** 2, 0.0).sum(axis=1) / cnt
        A = np.where(mask, (A - μ) / np.sqrt(var), 0.0)
    if mistake == "kl_twice":  # ∇ of -β k3 through the loss: -β (1 - π_ref/π) ∇log π
        log_ratio = (tk.token_log_probs(tmdp, θ, batch, features=features)
                     - tk.token_log_probs(tmdp, theta_ref, batch, features=features))
        A = A - beta * (1.0 - np.exp(-log_ratio))
    if aggregation == "sequence_mean":
        A = A / np.maximum(batch.lengths, 1)[:, None]
    elif aggregation == "constant":
        A = A / tmdp.max_len
    elif aggregation == "token_mean":
        if batch.prob is not None and batch_size is not None:
            A = A * _token_mean_factor(batch.lengths, q / q.sum(), batch_size, tmdp.max_len)[:, None]
        else:
            A = A / (q @ batch.lengths / q.sum())
    return np.where(mask, A, 0.0)


def whitened_expectation(tmdp: tk.TokenMDP, θ, N: int, *, lam: float = 1.0, beta: float = 0.0, theta_ref=None,
                         features=None) -> np.ndarray:
    r"""The exact expected estimate of whitening with the moments of a batch of ``N`` completions.

    Each of the ``N`` rows has its prompt drawn from ``ρ`` and its completion from ``π_θ``;
    the advantages (GAE with the exact critic) are whitened with the mean and the standard
    deviation over the real tokens of that batch, summed over tokens, and averaged over rows.
    The expectation is a finite sum over every ordered ``N``-tuple of completions, each with
    the product of their probabilities (at most 200 000 tuples). Batches whose advantages are
    all equal get weight 0. Book: a debugging lab, ``lab-aggregation``.
    """
    N = as_count(N, "N (completions per batch)", minimum=1, maximum=8)
    c = tk.completions(tmdp, θ, features=features)
    if c.n**N > 200_000:
        raise ValueError(f"{c.n}^{N} tuples exceed 200 000; use a smaller N or a smaller task")
    kl = dict(beta=beta, theta_ref=theta_ref, features=features)
    A = ppo.gae_advantages(tmdp, c, ppo.token_rewards(tmdp, c, θ=θ, **kl), tk.state_values(tmdp, θ, **kl), lam)
    q = tk.row_weights(tmdp, c)
    idx = np.stack(np.meshgrid(*[np.arange(c.n)] * N, indexing="ij"), -1).reshape(-1, N)  # (M, N)
    a, m = A[idx], c.mask[idx]  # (M, N, L)
    cnt = m.sum(axis=(1, 2))
    μ = a.sum(axis=(1, 2)) / cnt
    var = np.where(m, (a - μ[:, None, None]) ** 2, 0.0).sum(axis=(1, 2)) / cnt
    sd = np.sqrt(var)
    w = np.where(m & (sd[:, None, None] > 1e-12), (a - μ[:, None, None]) / np.where(sd > 1e-12, sd, 1)[:, None, None], 0.0)
    w = w * (np.prod(q[idx], axis=1) / N)[:, None, None]
    W = np.zeros(A.shape)
    np.add.at(W, idx.ravel(), w.reshape(-1, tmdp.max_len))
    return tk.score_sum(tmdp, θ, c, W, features=features).sum(axis=0)


def policy_gradient_estimate(tmdp: tk.TokenMDP, θ, batch: tk.TokenBatch, **options) -> np.ndarray:
    r"""Per-completion estimates :math:`\hat g_i = \sum_t w_{i,t} ∇_θ \log π_θ(y_{i,t}|s_{i,t})`, shape ``(N,) + θ.shape``.

    ``options`` are those of :func:`token_weights`; the batch estimate is the mean over rows.
    Book: a debugging lab, ``lab-reference``.
    """
    features = options.get("features")
    return tk.score_sum(tmdp, θ, batch, token_weights(tmdp, θ, batch, **options), features=features)


def expected_estimate(tmdp: tk.TokenMDP, θ, **options) -> np.ndarray:
    r"""The exact expectation :math:`\sum_{x, y} ρ(x)\, π_θ(y|x)\, \hat g(x, y)` over every completion, shape ``θ.shape``.

    Batch statistics are the population ones (the large-batch limit). With ``mistake=None``
    and the exact critic it equals :func:`pgnotes.tokens.policy_gradient` (with ``β``), times
    :math:`1/σ` with ``whiten=True``. Book: a debugging lab, ``lab-reference``.
    """
    c = tk.completions(tmdp, θ, features=options.get("features"))
    w = token_weights(tmdp, θ, c, **options) * _population(tmdp, c)[:, None]
    return tk.score_sum(tmdp, θ, c, w, features=options.get("features")).sum(axis=0)


def compare(tmdp: tk.TokenMDP, θ, mistake: str, **options) -> dict:
    r"""A mistake's numeric signature: its expected estimate against the correct one and against ``∇J_β``.

    The correct counterpart is :func:`expected_estimate` with the same ``options`` and
    ``mistake=None``; for ``"whiten_padded"`` it whitens correctly (``whiten=True``). Returns a
    dict with ``expected`` (mistaken), ``correct``, ``exact`` (:math:`∇J_β`), ``angle`` (degrees,
    mistaken vs correct), ``relative_error`` (:math:`\|m - c\| / \|c\|`), ``angle_exact`` and
    ``relative_error_exact`` (against :math:`∇J_β`), and ``norm_ratio`` (:math:`\|m\| / \|c\|`).
    Book: a debugging lab, ``lab-summary``.
    """
    if mistake not in MISTAKES:
        raise ValueError(f"unknown mistake {mistake!r}; choose among {sorted(MISTAKES)}")
    correct_options = dict(options, whiten=True) if mistake == "whiten_padded" else options
    m = expected_estimate(tmdp, θ, mistake=mistake, **options)
    c = expected_estimate(tmdp, θ, **correct_options)
    g = tk.policy_gradient(tmdp, θ, beta=options.get("beta", 0.0), theta_ref=options.get("theta_ref"),
                           features=options.get("features"))
    nc = np.linalg.norm(c)
    return dict(
        expected=m, correct=c, exact=g, angle=angle(m, c), relative_error=float(np.linalg.norm(m - c) / nc),
        angle_exact=angle(m, g), relative_error_exact=float(np.linalg.norm(m - g) / np.linalg.norm(g)),
        norm_ratio=float(np.linalg.norm(m) / nc),
    )


def export_completions(tmdp: tk.TokenMDP, θ, *, beta: float = 0.0, theta_ref=None, features=None) -> dict:
    r"""Every completion of the toy model as plain arrays, for testing another implementation.

    Keys (``N`` completions, ``L`` positions, ``d = θ.size``): ``prompt_ids`` (N,), ``tokens``
    (N, L) with PAD ``= V``, ``mask`` (N, L), ``lengths`` (N,), ``rewards`` (N,) the verifier's,
    ``weight`` (N,) :math:`ρ(x)\,π_θ(y|x)` (the probability of the row), ``logp`` and
    ``logp_ref`` (N, L) per-token log-probabilities (``logp_ref`` only with ``θ_ref``), ``values``
    (N, L) the exact ``V(s_t)`` with the KL-shaped reward, ``advantages`` (N, L) the exact
    ``A(s_t, y_t)``, ``scores`` (N, L, d) the per-token :math:`∇_θ \log π_θ(y_t|s_t)`, and the
    target ``policy_gradient`` (d,) :math:`∇J_β`. Padding holds 0. Book: a debugging lab, ``lab-recipe``.
    """
    c = tk.completions(tmdp, θ, features=features)
    ev = tk.evaluate(tmdp, θ, beta=beta, theta_ref=theta_ref, features=features)
    k, a = np.where(c.mask, c.prefixes, 0), np.where(c.mask, c.tokens, 0)
    pol = ev.policy
    S = pol.score(k, a).reshape(c.n, tmdp.max_len, -1)
    out = dict(
        prompt_ids=c.prompt_ids, tokens=c.tokens, mask=c.mask, lengths=c.lengths, rewards=c.rewards,
        weight=tmdp.rho[c.prompt_ids] * c.prob, logp=tk.token_log_probs(tmdp, θ, c, features=features),
        values=np.where(c.mask, ev.V[k], 0.0), advantages=np.where(c.mask, ev.A[k, a], 0.0),
        scores=np.where(c.mask[:, :, None], S, 0.0),
        policy_gradient=tk.policy_gradient(tmdp, θ, beta=beta, theta_ref=theta_ref,
                                           features=features).ravel(),
    )
    if theta_ref is not None:
        out["logp_ref"] = tk.token_log_probs(tmdp, theta_ref, c, features=features)
    return out


def check_weights(data: dict, weights) -> dict:
    r"""Score another implementation's per-token weights on exported completions.

    ``data`` is :func:`export_completions`; ``weights`` (N, L) are the other code's
    :math:`w_{i,t}`, the factor of :math:`\log π_θ(y_{i,t}|s_{i,t})` in its loss (its
    advantages, after whitening and aggregation), at ``θ = θ_old``. The expected gradient is
    :math:`\sum_i q_i \sum_t w_{i,t}\, ∇\log π_θ(y_{i,t}|s_{i,t})` with ``q = data["weight"]``.
    Returns ``expected``, ``exact`` (the target), ``angle`` (degrees) and ``relative_error``.
    Book: a debugging lab, ``lab-recipe``.
    """
    if not isinstance(data, dict):
        raise TypeError(f"data must be the dict of export_completions, got {type(data).__name__}")
    missing = sorted({"mask", "weight", "scores", "policy_gradient"} - data.keys())
    if missing:
        raise ValueError(f"data must be the dict of export_completions; it lacks {missing}")
    w = real_array(weights, "weights, a finite array of shape (N, L),", shape=data["mask"].shape)
    w = np.where(data["mask"], w, 0.0)
    g = np.einsum("n,nt,ntd->d", data["weight"], w, data["scores"])
    ref = data["policy_gradient"]
    return dict(expected=g, exact=ref, angle=angle(g, ref), relative_error=float(np.linalg.norm(g - ref) / np.linalg.norm(ref)))
