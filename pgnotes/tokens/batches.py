r"""Padded batches of completions: every completion with its probability, samples, scores, helpers.

A :class:`TokenBatch` is the token-level :class:`~pgnotes.Batch`: ``N`` rows of ``L`` positions,
padded with :attr:`TokenMDP.pad`. The tabular counterparts are :mod:`pgnotes.trajectories`
(enumeration) and :mod:`pgnotes.sampling`. Book: language models I, ``lm-mdp``, ``lm-groups``
and ``lm-score``.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass

import numpy as np

from .._validate import as_count, check_rng, check_token_batch, check_token_mdp, real_array
from .exact import evaluate
from .mdp import MAX_TOKENS, TokenMDP, token_policy

__all__ = [
    "TokenBatch",
    "completions",
    "sample_groups",
    "token_log_probs",
    "log_probability",
    "score_sum",
    "row_weights",
    "subset",
    "at_tokens",
]


@dataclass(frozen=True)
class TokenBatch:
    r"""Completions as padded arrays: ``N`` rows of ``L`` positions.

    Attributes
    ----------
    prompt_ids : int (N,), the prompt of each row.
    tokens : int (N, L), the completion, :attr:`TokenMDP.pad` (``= V``) after its end.
    mask : bool (N, L), True on generated tokens, the final EOS included.
    prefixes : int (N, L), the row in ``tmdp.prefixes`` of the state ``s_t`` the token was drawn
        in; ``n_prefixes`` (the done state of :func:`to_tabular`) where ``mask`` is False.
    lengths : int (N,), ``mask.sum(1)``.
    rewards : float (N,), the verifier's ``r(x, y)`` (no KL term).
    prob : float (N,) or None, ``π_θ(y|x)`` for an enumeration (:func:`completions`), None for samples.
    """

    prompt_ids: np.ndarray
    tokens: np.ndarray
    mask: np.ndarray
    prefixes: np.ndarray
    lengths: np.ndarray
    rewards: np.ndarray
    prob: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of completions ``N``."""
        return self.tokens.shape[0]


def _indices(batch: TokenBatch) -> tuple[np.ndarray, np.ndarray]:
    """The (prefix, token) row and column of every position, (0, 0) on padding: safe to index with."""
    return np.where(batch.mask, batch.prefixes, 0), np.where(batch.mask, batch.tokens, 0)


def completions(tmdp: TokenMDP, θ=None, *, features=None) -> TokenBatch:
    r"""Every (prompt, completion) pair, with ``prob = π_θ(y|x)`` (computed on the tree) when ``θ`` is given.

    Rows are ordered by prompt, then by the prefix the completion ends from, then by its last
    token. ``Σ p = 1`` over the rows of each prompt, and :math:`J = \sum ρ(x)\, p\, r`.
    Book: language models I, ``lm-mdp``.

    Examples
    --------
    >>> from pgnotes import tokens as tk
    >>> tmdp = tk.toy_mdp()
    >>> θ = np.zeros((tmdp.n_prefixes, tmdp.n_vocab))
    >>> c = tk.completions(tmdp, θ)
    >>> c.n, round(float(tk.row_weights(tmdp, c).sum()), 12)
    (363, 1.0)
    >>> bool(abs(tk.row_weights(tmdp, c) @ c.rewards - tk.objective(tmdp, θ)) < 1e-12)  # J by enumeration
    True
    """
    tmdp = check_token_mdp(tmdp)
    L = tmdp.max_len
    k, a = np.nonzero(tmdp.ends)  # row-major: by prefix, then token
    lengths = tmdp.depth[k] + 1
    tokens = tmdp._content[k].copy()
    tokens[np.arange(k.size), lengths - 1] = a
    p = None
    if θ is not None:
        ev = evaluate(tmdp, θ, features=features)
        if np.iscomplexobj(ev.π):
            raise ValueError("completions needs a real θ")
        p = ev.reach[k] * ev.π[k, a]
    mask = np.arange(L)[None, :] < lengths[:, None]
    return TokenBatch(tmdp.prompt_of[k], tokens, mask, tmdp._path[k], lengths, tmdp.reward_table[k, a], p)


def sample_groups(
    tmdp: TokenMDP, θ, *, group_size: int, rng: np.random.Generator, prompt_ids=None, n_prompts=None, features=None
) -> TokenBatch:
    r"""Draw ``G`` completions per prompt, vectorised over the batch (a loop over the ``L`` positions only).

    The prompts are ``prompt_ids`` (given), or ``n_prompts`` draws from ``ρ``, or by default every
    prompt once. Rows ``i·G … i·G + G - 1`` form the group of the ``i``-th prompt, the layout of
    group-relative estimators (RLOO, GRPO). Each token is drawn by inverting the cumulative
    ``π_θ(·|s_t)`` at one uniform number per row and position. Book: language models I, ``lm-groups``.

    Raises
    ------
    ValueError
        If ``G < 1``, both or bad prompt choices, or a complex ``θ``.
    TypeError
        If ``rng`` is not a numpy Generator.
    """
    tmdp = check_token_mdp(tmdp)
    check_rng(rng)
    G = as_count(group_size, "group_size (G, completions per prompt)", minimum=1, maximum=MAX_TOKENS)
    if prompt_ids is not None and n_prompts is not None:
        raise ValueError("give prompt_ids or n_prompts, not both")
    if n_prompts is not None:
        n_prompts = as_count(n_prompts, "n_prompts", minimum=1, maximum=MAX_TOKENS)
        ids = rng.choice(tmdp.n_prompts, size=n_prompts, p=tmdp.rho)
    elif prompt_ids is not None:
        ids = np.asarray(prompt_ids)
        if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"prompt_ids must be a non-empty 1-d array of integers, got {prompt_ids!r}")
        if ids.min() < 0 or ids.max() >= tmdp.n_prompts:
            raise ValueError(f"prompt_ids must lie in 0..{tmdp.n_prompts - 1}, got {ids.min()}..{ids.max()}")
    else:
        ids = np.arange(tmdp.n_prompts)
    ids = np.repeat(ids.astype(np.intp), G)
    N, L, n = ids.size, tmdp.max_len, tmdp.n_prefixes
    if N * max(L, tmdp.n_vocab) > MAX_TOKENS:
        raise ValueError(f"N = {N} completions exceed MAX_TOKENS = {MAX_TOKENS} tokens; draw in chunks")
    π = evaluate(tmdp, θ, features=features).π
    if np.iscomplexobj(π):
        raise ValueError("sampling needs a real θ")
    cdf = np.cumsum(π, axis=1)
    cdf[:, -1] = 1.0  # rounding must not leave a gap above the last token

    tokens = np.full((N, L), tmdp.pad, dtype=np.intp)
    prefixes = np.full((N, L), n, dtype=np.intp)
    mask = np.zeros((N, L), dtype=bool)
    cur, alive = tmdp.roots[ids], np.ones(N, dtype=bool)
    last_k, last_a = np.zeros(N, dtype=np.intp), np.zeros(N, dtype=np.intp)
    for t in range(L):
        u = rng.random(N)
        tok = (u[:, None] >= cdf[cur]).sum(axis=1)  # P(tok = a) = cdf[a] − cdf[a−1]
        tokens[alive, t], prefixes[alive, t], mask[:, t] = tok[alive], cur[alive], alive
        last_k, last_a = np.where(alive, cur, last_k), np.where(alive, tok, last_a)
        nxt = tmdp.child[cur, tok]
        alive = alive & (nxt >= 0)
        cur = np.where(alive, nxt, 0)
    return TokenBatch(ids, tokens, mask, prefixes, mask.sum(axis=1), tmdp.reward_table[last_k, last_a])


def token_log_probs(tmdp: TokenMDP, θ, batch: TokenBatch, *, features=None) -> np.ndarray:
    r"""``log π_θ(y_t | s_t)`` at every position, shape (N, L), 0 where ``mask`` is False.

    Per-token log-ratios to a reference are ``token_log_probs(θ) − token_log_probs(θ_ref)``;
    accepts complex ``θ``. Book: language models I, ``lm-score``.
    """
    tmdp, batch = check_token_mdp(tmdp), check_token_batch(tmdp, batch)
    return at_tokens(token_policy(tmdp, θ, features=features)[1], batch)


def log_probability(tmdp: TokenMDP, θ, batch: TokenBatch, *, features=None) -> np.ndarray:
    r"""Sequence log-probability :math:`\log π_θ(y|x) = \sum_t \log π_θ(y_t|s_t)`, shape (N,).

    Book: language models I, ``lm-score``.
    """
    return token_log_probs(tmdp, θ, batch, features=features).sum(axis=1)


def score_sum(tmdp: TokenMDP, θ, batch: TokenBatch, weights=None, *, features=None) -> np.ndarray:
    r"""Per-sequence weighted scores :math:`\sum_t w_{i,t}\, ∇_θ \log π_θ(y_{i,t}|s_{i,t})`, shape ``(N,) + θ.shape``.

    Weights outside ``mask`` are ignored. The default ``w = mask`` gives the sequence score
    :math:`∇_θ \log π_θ(y|x)`; ``w[i, t] = r_i`` gives REINFORCE, ``r_i − b_i`` RLOO or GRPO, a
    per-token advantage the token-level estimators. Book: language models I, ``lm-score``.

    Raises
    ------
    ValueError
        If ``weights`` is not a finite real (N, L) array, or the result would exceed :data:`MAX_TOKENS` numbers.
    """
    tmdp, batch = check_token_mdp(tmdp), check_token_batch(tmdp, batch)
    w = batch.mask.astype(float) if weights is None else real_array(weights, "weights", shape=batch.tokens.shape)
    pol = token_policy(tmdp, θ, features=features)[0]
    if batch.n * pol.θ.size > MAX_TOKENS:
        raise ValueError(f"N · θ.size = {batch.n * pol.θ.size} exceeds MAX_TOKENS = {MAX_TOKENS}; split the batch")
    k, a = _indices(batch)
    return pol.score_sum(k, a, np.where(batch.mask, w, 0.0))


def row_weights(tmdp: TokenMDP, batch: TokenBatch) -> np.ndarray:
    r"""The probability of each row of an enumeration, :math:`ρ_0(x)\,π_θ(y|x)`, shape (N,).

    Over :func:`completions` with ``θ`` given these sum to 1, and the exact expectation of any
    per-completion quantity ``X`` is ``row_weights(tmdp, c) @ X``. Book: language models I,
    ``lm-mdp``.

    Raises
    ------
    ValueError
        If ``batch.prob`` is None (a sampled batch: its rows are already draws, each of weight 1/N).
    """
    tmdp, batch = check_token_mdp(tmdp), check_token_batch(tmdp, batch)
    if batch.prob is None:
        raise ValueError("row_weights needs an enumeration with probabilities: "
                         "build it with completions(tmdp, θ, features)")
    return tmdp.rho[batch.prompt_ids] * batch.prob


def subset(batch: TokenBatch, rows) -> TokenBatch:
    """The rows ``rows`` (indices or a boolean mask) of a batch, ``prob`` included when present."""
    batch = check_token_batch(None, batch)
    rows = np.asarray(rows)
    if rows.dtype != bool and not np.issubdtype(rows.dtype, np.integer):
        raise TypeError(f"rows must be integer indices or a boolean mask, got dtype {rows.dtype}")
    if rows.dtype == bool and rows.shape != (batch.n,):
        raise ValueError(f"a boolean rows mask must have shape ({batch.n},), got {rows.shape}")
    if rows.dtype != bool and rows.size and (rows.min() < -batch.n or rows.max() >= batch.n):
        raise ValueError(f"row indices must lie in [0, {batch.n}), got {rows.min()}..{rows.max()}")
    return dataclasses.replace(
        batch, **{f.name: None if getattr(batch, f.name) is None else getattr(batch, f.name)[rows]
                  for f in dataclasses.fields(batch)})


def at_tokens(table, batch: TokenBatch) -> np.ndarray:
    r"""A (prefix, token) table read at every real token of a batch, shape (N, L), 0 on padding.

    ``at_tokens(advantages(tmdp, θ), batch)[i, t]`` is :math:`A(s_{i,t}, y_{i,t})`. Book: language
    models II, ``ppo-clip``.
    """
    batch = check_token_batch(None, batch)
    table = np.asarray(table)
    if table.ndim != 2 or table.shape[0] < batch.prefixes.max(initial=0) or table.shape[1] <= batch.tokens[batch.mask].max(initial=0):
        raise ValueError(f"table must be a (n_prefixes, n_vocab) array, got shape {table.shape}")
    k, a = _indices(batch)
    return np.where(batch.mask, table[k, a], 0)
