r"""Token-level MDPs: generation by a language model as an MDP, solved exactly.

Book: practice, language models (``lm-mdp``). Generation is an MDP with

* states the prefixes :math:`s_t = (x, y_{<t})`: a prompt ``x`` and the completion so far;
* actions the next token :math:`y_t` in a vocabulary of ``V`` tokens, :data:`EOS` ``= 0`` among them;
* deterministic transitions :math:`s_{t+1} = (x, y_{\le t})`; a completion ends at EOS or is
  truncated after ``L`` tokens;
* reward the verifier's :math:`r(x, y)`, paid when the completion ends, and :math:`γ = 1`:

.. math::

    J(θ) = E_{x \sim ρ}\, E_{y \sim π_θ(\cdot|x)}\, r(x, y), \qquad
    π_θ(y|x) = \prod_t π_θ(y_t \mid x, y_{<t}).

Every prefix is reached by exactly one path, so the prefix tree replaces the linear solves of
:mod:`pgnotes.exact`: values by one backward pass over the depths, reach probabilities by one
forward pass. :func:`to_tabular` writes the same problem as a :class:`~pgnotes.TabularMDP`
(one state per prefix plus one absorbing "done" state), so that every number here can be
checked against :mod:`pgnotes.exact` and :mod:`pgnotes.finite`.

The policy is a softmax over the next token (:mod:`pgnotes.policy`): tabular, ``θ`` of shape
``(n_prefixes, V)`` with one row per non-terminal prefix, or log-linear, ``θ`` of shape ``(d,)``
with features ``φ(prefix, token)`` of shape ``(n_prefixes, V, d)`` (:func:`token_features`).
Complex ``θ`` is accepted by the exact routines (complex-step checks).

Padded batches (:class:`TokenBatch`) use :attr:`TokenMDP.pad` ``= V`` after the end of a
completion: distinct from EOS, and out of range for any ``(…, V)`` table, so a forgotten mask
fails loudly instead of reading a wrong entry.
"""

from __future__ import annotations

import dataclasses

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .._validate import as_count, check_rng
from ..mdp import MAX_STATES, TabularMDP
from ..policy import LogLinearSoftmax, SoftmaxPolicy, TabularSoftmax

__all__ = [
    "EOS",
    "MAX_PREFIXES",
    "MAX_TOKENS",
    "TokenMDP",
    "TokenBatch",
    "TokenEvaluation",
    "TabularForm",
    "modular_sum_verifier",
    "target_verifier",
    "toy_mdp",
    "token_features",
    "completions",
    "evaluate",
    "objective",
    "policy_gradient",
    "state_values",
    "action_values",
    "advantages",
    "sequence_kl",
    "to_tabular",
    "sample_groups",
    "token_log_probs",
    "log_probability",
    "score_sum",
    "check_token_mdp",
    "check_token_batch",
    "check_kl_coefficient",
    "token_policy",
    "long_answer_mdp",
    "row_weights",
    "subset",
    "at_tokens",
]

#: The end-of-sequence token.
EOS = 0
#: Largest number of non-terminal prefixes (rows of a tabular ``θ``) a :class:`TokenMDP` may have.
MAX_PREFIXES = 20_000
#: Largest ``N · L`` (and ``N · θ.size`` for scores) handled in one call.
MAX_TOKENS = 50_000_000


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _token_tuple(seq, V: int, what: str, *, allow_eos: bool) -> tuple:
    if isinstance(seq, (str, bytes)) or not hasattr(seq, "__iter__"):
        raise ValueError(f"{what} must be a sequence of token ids, got {seq!r}")
    seq = tuple(seq)
    for j, v in enumerate(seq):
        if not _is_int(v):
            raise ValueError(f"{what} holds {v!r} at position {j}; token ids must be integers")
        if not 0 <= v < V:
            raise ValueError(f"{what} holds token {v} at position {j}, outside the vocabulary 0..{V - 1}")
        if v == EOS and not allow_eos:
            raise ValueError(f"{what} holds the EOS token {EOS} at position {j}; it may not contain EOS")
    return tuple(int(v) for v in seq)


def _reward_value(v, x, y) -> float:
    a = np.asarray(v)
    if a.ndim != 0 or not (a.dtype == bool or np.issubdtype(a.dtype, np.number)) or np.iscomplexobj(a):
        raise ValueError(f"the verifier must return a real number; it returned {v!r} for prompt {x} and completion {y}")
    f = float(a)
    if not np.isfinite(f):
        raise ValueError(f"the verifier returned {f} for prompt {x} and completion {y}; rewards must be finite")
    return f


class TokenMDP:
    r"""Generation as an MDP: vocabulary ``V`` (EOS ``= 0``), prompts with law ``ρ``, length ``L``, verifier ``r``.

    A completion ``y = (y_1, …, y_n)`` ends at the first EOS or is truncated at ``n = L`` (its
    last token may then be anything, EOS included). The non-terminal prefixes are ``(x, y)``
    with ``len(y) < L`` and no EOS in ``y``: per prompt there are :math:`\sum_{k<L} (V-1)^k` of
    them, and :math:`\sum_{k \le L} (V-1)^k` completions. Book: practice, language models, ``lm-mdp``.

    Parameters
    ----------
    vocab_size : int ≥ 2
        ``V``; token ``0`` is EOS, tokens ``1..V-1`` are content.
    prompts : sequence of sequences of int
        Distinct, non-empty prompts of content tokens (no EOS). Prompt ``i`` has id ``i``.
    max_len : int ≥ 1
        ``L``, the largest number of completion tokens (EOS included).
    reward : callable or mapping
        The verifier ``reward(prompt, completion) -> float``, called once per completion here
        with tuples of ints; ``completion`` includes its final EOS when it has one. A mapping
        ``{(prompt, completion): r}`` is a table; missing completions score 0.
    rho : array of shape (n_prompts,), optional
        The prompt law ``ρ``; uniform by default.

    Attributes
    ----------
    prefixes : tuple of (prompt id, completion) pairs, one per non-terminal prefix, ordered by
        prompt, then length, then lexicographically. Row ``k`` of a tabular ``θ`` is ``prefixes[k]``.
    depth, prompt_of : int arrays (n_prefixes,), ``len(y)`` and the prompt id of each prefix.
    roots : int array (n_prompts,), the empty-completion prefix of each prompt.
    child : int array (n_prefixes, V), the prefix after token ``a``, ``-1`` where ``a`` ends the completion.
    ends : bool array (n_prefixes, V), ``child == -1``.
    reward_table : float array (n_prefixes, V), ``r(x, y + (a,))`` where ``a`` ends the completion, else 0.
    pad : int, ``V``, the padding id of :class:`TokenBatch`.

    Raises
    ------
    ValueError
        On ``V < 2``, ``L < 1``, an empty, repeated or out-of-vocabulary prompt, a prompt holding
        EOS, a bad ``ρ``, more than :data:`MAX_PREFIXES` prefixes, a table key that is not a
        completion of this MDP, or a verifier returning a non-number, NaN or inf.
    """

    def __init__(self, vocab_size: int, prompts, max_len: int, reward, rho=None):
        V = as_count(vocab_size, "vocab_size (V)", minimum=2, maximum=256)
        L = as_count(max_len, "max_len (L)", minimum=1, maximum=64)
        if isinstance(prompts, (str, bytes)) or not hasattr(prompts, "__len__") or len(prompts) == 0:
            raise ValueError(f"prompts must be a non-empty sequence of token sequences, got {prompts!r}")
        xs = tuple(_token_tuple(x, V, f"prompt {i}", allow_eos=False) for i, x in enumerate(prompts))
        for i, x in enumerate(xs):
            if not x:
                raise ValueError(f"prompt {i} is empty; prompts need at least one token")
            if x in xs[:i]:
                raise ValueError(f"prompt {i} = {x} repeats prompt {xs.index(x)}; prompts must be distinct")
        P = len(xs)
        if rho is None:
            ρ = np.full(P, 1.0 / P)
        else:
            ρ = np.asarray(rho)
            if ρ.dtype == bool or not np.issubdtype(ρ.dtype, np.number) or np.iscomplexobj(ρ):
                raise ValueError(f"rho must be a real array of prompt probabilities, got dtype {ρ.dtype}")
            ρ = ρ.astype(float)
            if ρ.shape != (P,):
                raise ValueError(f"rho must have shape (n_prompts,) = ({P},), got {ρ.shape}")
            if not np.all(np.isfinite(ρ)) or np.any(ρ < 0) or abs(ρ.sum() - 1.0) > 1e-9:
                raise ValueError(f"rho must be a probability vector (non-negative, summing to 1), got {ρ}")
        per_prompt = sum((V - 1) ** k for k in range(L))
        if per_prompt * P > MAX_PREFIXES:
            raise ValueError(
                f"{P} prompts with V = {V} and L = {L} give {per_prompt * P} prefixes, more than "
                f"MAX_PREFIXES = {MAX_PREFIXES}; use a smaller vocabulary or a shorter L"
            )
        if isinstance(reward, Mapping):
            table = dict(reward)
            verifier = lambda x, y: table.get((x, y), 0.0)  # noqa: E731
        elif callable(reward):
            table, verifier = None, reward
        else:
            raise ValueError(f"reward must be a callable verifier or a mapping, got {type(reward).__name__}")

        prefixes = []
        for i in range(P):
            level = [()]
            for _ in range(L):
                prefixes += [(i, y) for y in level]
                level = [y + (a,) for y in level for a in range(1, V)]
        index = {p: k for k, p in enumerate(prefixes)}
        n = len(prefixes)
        child = np.full((n, V), -1, dtype=np.intp)
        R = np.zeros((n, V))
        seen = set()
        for k, (i, y) in enumerate(prefixes):
            for a in range(V):
                if a == EOS or len(y) == L - 1:
                    R[k, a] = _reward_value(verifier(xs[i], y + (a,)), xs[i], y + (a,))
                    seen.add((xs[i], y + (a,)))
                else:
                    child[k, a] = index[(i, y + (a,))]
        if table is not None:
            stray = [key for key in table if key not in seen]
            if stray:
                raise ValueError(
                    f"the reward table has key {stray[0]!r}, which is not a (prompt, completion) pair "
                    f"of this MDP (completions end with EOS = {EOS} or have length L = {L})"
                )

        self.vocab_size, self.max_len, self.prompts, self.n_prompts = V, L, xs, P
        self.rho = ρ
        self.prefixes = tuple(prefixes)
        self.n_prefixes = n
        self.depth = np.array([len(y) for _, y in prefixes], dtype=np.intp)
        self.prompt_of = np.array([i for i, _ in prefixes], dtype=np.intp)
        self.roots = np.array([index[(i, ())] for i in range(P)], dtype=np.intp)
        self.child, self.ends, self.reward_table = child, child < 0, R
        self.eos, self.pad = EOS, V
        for arr in (self.rho, self.depth, self.prompt_of, self.roots, self.child, self.ends, self.reward_table):
            arr.setflags(write=False)
        self._levels = [np.flatnonzero(self.depth == d) for d in range(L)]
        self._index = index
        # Row k: the prefixes y[:0], …, y[:len(y)] on the path to prefixes[k] (n after), and y padded.
        self._path = np.full((n, L), n, dtype=np.intp)
        self._content = np.full((n, L), V, dtype=np.intp)
        for k, (i, y) in enumerate(prefixes):
            self._path[k, : len(y) + 1] = [index[(i, y[:t])] for t in range(len(y) + 1)]
            self._content[k, : len(y)] = y

    def prefix_index(self, prompt_id: int, completion=()) -> int:
        """Row of the prefix ``(prompt, completion)`` in :attr:`prefixes` (and in a tabular ``θ``)."""
        key = (prompt_id, tuple(completion))
        if key not in self._index:
            raise ValueError(f"({prompt_id}, {tuple(completion)}) is not a non-terminal prefix of this MDP")
        return self._index[key]

    def __repr__(self) -> str:
        return (
            f"TokenMDP(V={self.vocab_size}, L={self.max_len}, prompts={self.n_prompts}, "
            f"prefixes={self.n_prefixes}, completions={int(self.ends.sum())})"
        )


def modular_sum_verifier(m: int, *, partial: bool = False, require_eos: bool = True, length_penalty: float = 0.0):
    r"""Verifier ``r(x, y) = c(x, y) - λ |y|``: is the total :math:`Σx + Σy` divisible by ``m``?

    The target residue :math:`-Σx \bmod m` depends on the prompt, so the best policy does too.
    ``c = 1`` when :math:`d = (Σx + Σy) \bmod m` is 0, else 0; with ``partial=True``
    :math:`c = 1 - \min(d, m-d)/\lfloor m/2 \rfloor` (credit for a near miss). With
    ``require_eos`` a truncated completion (no EOS) gets ``c = 0``. ``λ = length_penalty``
    charges each generated token, EOS included. Book: practice, language models, ``lm-verifier``.
    """
    m = as_count(m, "m", minimum=2, maximum=10**6)
    λ = float(length_penalty)
    if not np.isfinite(λ):
        raise ValueError(f"length_penalty must be a finite number, got {length_penalty!r}")

    def verifier(x, y):
        if require_eos and (len(y) == 0 or y[-1] != EOS):
            return 0.0 - λ * len(y)
        d = (sum(x) + sum(y)) % m
        c = (1.0 - min(d, m - d) / (m // 2)) if partial else float(d == 0)
        return c - λ * len(y)

    return verifier


def target_verifier(targets, *, partial: bool = False):
    r"""Verifier ``r(x, y) = 1[y = t(x) + (EOS,)]`` for a target completion ``t(x)`` per prompt.

    ``targets`` maps each prompt (tuple) to its target, a tuple of content tokens (no EOS), of
    length below ``L`` to be reachable. With ``partial=True`` the reward is the fraction of
    positions where ``y`` and ``t(x) + (EOS,)`` agree, over the longer of the two: stopping too
    early or too late costs credit. Book: practice, language models, ``lm-verifier``.
    """
    if not isinstance(targets, Mapping):
        raise ValueError(f"targets must map each prompt to a target completion, got {type(targets).__name__}")
    goal = {}
    for x, t in targets.items():
        t = tuple(t)
        if any(not _is_int(v) or v <= EOS for v in t):
            raise ValueError(f"the target {t} of prompt {x} must hold content tokens (integers ≥ 1, no EOS)")
        goal[tuple(x)] = t + (EOS,)

    def verifier(x, y):
        if x not in goal:
            raise ValueError(f"target_verifier has no target for prompt {x}")
        t = goal[x]
        if not partial:
            return float(tuple(y) == t)
        return sum(a == b for a, b in zip(y, t)) / max(len(y), len(t))

    return verifier


def toy_mdp(kind: str = "sum", *, partial: bool = False) -> TokenMDP:
    r"""The book's small example: ``V = 4``, ``L = 4``, prompts ``(1,), (2,), (3, 1)``, uniform ``ρ``.

    ``kind="sum"``: :func:`modular_sum_verifier` with ``m = 4`` (prompt (3, 1) is solved by an
    immediate EOS, the others need one or more tokens). ``kind="target"``: :func:`target_verifier`
    with targets ``(2,)``, ``(3, 1)``, ``(1, 1, 2)``. 120 prefixes, 363 completions.
    Book: practice, language models, ``lm-mdp``.
    """
    prompts = [(1,), (2,), (3, 1)]
    if kind == "sum":
        verifier = modular_sum_verifier(4, partial=partial)
    elif kind == "target":
        verifier = target_verifier({(1,): (2,), (2,): (3, 1), (3, 1): (1, 1, 2)}, partial=partial)
    else:
        raise ValueError(f"kind must be 'sum' or 'target', got {kind!r}")
    return TokenMDP(4, prompts, 4, verifier)


def check_token_mdp(tmdp) -> TokenMDP:
    """``tmdp`` itself if it is a :class:`TokenMDP`, else ``TypeError`` (for the modules built on this one)."""
    if not isinstance(tmdp, TokenMDP):
        raise TypeError(f"tmdp must be a pgnotes.tokens.TokenMDP, got {type(tmdp).__name__}")
    return tmdp


def token_features(tmdp: TokenMDP, kinds=("bigram", "position", "prompt")) -> np.ndarray:
    r"""One-hot features ``φ(prefix, token)`` for a log-linear policy, shape ``(n_prefixes, V, d)``.

    Kinds, concatenated in the order given: ``"bigram"`` one-hot of (last token, token), the last
    token of the prompt when the completion is empty (``d += V²``); ``"position"`` one-hot of
    (``len(y)``, token) (``d += L V``); ``"prompt"`` one-hot of (prompt id, token)
    (``d += n_prompts V``). Parameters are shared between prefixes with equal features.
    Book: practice, language models, ``lm-policy``.
    """
    tmdp = check_token_mdp(tmdp)
    V, n = tmdp.vocab_size, tmdp.n_prefixes
    if isinstance(kinds, str) or len(kinds) == 0:
        raise ValueError(f"kinds must be a non-empty sequence of 'bigram', 'position', 'prompt', got {kinds!r}")
    last = np.array([y[-1] if y else tmdp.prompts[i][-1] for i, y in tmdp.prefixes], dtype=np.intp)
    keys = {"bigram": (last, V), "position": (tmdp.depth, tmdp.max_len), "prompt": (tmdp.prompt_of, tmdp.n_prompts)}
    blocks = []
    for kind in kinds:
        if kind not in keys:
            raise ValueError(f"unknown feature kind {kind!r}; choose among 'bigram', 'position', 'prompt'")
        key, size = keys[kind]
        block = np.zeros((n, V, size, V))
        block[np.arange(n)[:, None], np.arange(V)[None, :], key[:, None], np.arange(V)[None, :]] = 1.0
        blocks.append(block.reshape(n, V, size * V))
    return np.concatenate(blocks, axis=2)


def _check_features(tmdp: TokenMDP, features) -> np.ndarray:
    φ = np.asarray(features)
    if φ.dtype == bool or not np.issubdtype(φ.dtype, np.number) or np.iscomplexobj(φ):
        raise ValueError(f"features must be a real array, got dtype {φ.dtype}")
    n, V = tmdp.n_prefixes, tmdp.vocab_size
    if φ.ndim != 3 or φ.shape[:2] != (n, V) or φ.shape[2] == 0:
        raise ValueError(f"features must have shape (n_prefixes, V, d) = ({n}, {V}, d), got {φ.shape}")
    if not np.all(np.isfinite(φ)):
        raise ValueError("features contain NaN or inf")
    return φ.astype(float)


def token_policy(tmdp: TokenMDP, θ, features, name: str = "θ") -> tuple[SoftmaxPolicy, np.ndarray]:
    """The softmax policy over next tokens and its log-probabilities ``log π`` (n_prefixes, V).

    Validates ``θ`` (and ``features``) against ``tmdp``; accepts complex ``θ`` for complex steps.
    Book: language models I, ``lm-policy``.
    """
    n, V = tmdp.n_prefixes, tmdp.vocab_size
    shape = np.shape(θ)
    if features is None:
        if shape != (n, V):
            raise ValueError(
                f"{name} of a tabular token policy must have shape (n_prefixes, V) = {(n, V)}, "
                f"one row per non-terminal prefix; got {shape}"
            )
        pol = TabularSoftmax(θ, n, V)
        logits = pol.θ
    else:
        φ_shape = _check_features(tmdp, features).shape
        if shape != (φ_shape[2],):
            raise ValueError(
                f"{name} of a log-linear token policy must have shape (d,) = ({φ_shape[2]},), got {shape}"
            )
        pol = LogLinearSoftmax(θ, features, n, V)
        logits = pol.φ @ pol.θ
    z = logits - logits.real.max(axis=1, keepdims=True)  # log-softmax, analytic for complex steps
    return pol, z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def check_kl_coefficient(β, θ_ref) -> float:
    """``β`` as a float ≥ 0, with ``θ_ref`` required when ``β > 0``; else ``ValueError``."""
    if isinstance(β, (bool, np.bool_)) or not isinstance(β, (int, float, np.integer, np.floating)):
        raise ValueError(f"β must be a real number ≥ 0, got {β!r}")
    β = float(β)
    if not (np.isfinite(β) and β >= 0):
        raise ValueError(f"β must be a finite number ≥ 0, got {β}")
    if β > 0 and θ_ref is None:
        raise ValueError("a KL penalty β > 0 needs the reference parameters θ_ref")
    return β


@dataclass(frozen=True)
class TokenEvaluation:
    r"""Exact per-prefix quantities of ``π_θ`` on a :class:`TokenMDP`, undiscounted (``γ = 1``).

    Attributes
    ----------
    π, log_π : (n_prefixes, V) next-token probabilities and their logarithms.
    reach : (n_prefixes,) ``P(prefix | prompt)``, the product of ``π`` along its path.
    μ : (n_prefixes,) ``ρ(x) · reach``, the probability of visiting the prefix.
    Q, V, A : (n_prefixes, V), (n_prefixes,), (n_prefixes, V) values with the (KL-shaped) reward.
    reward : (n_prompts,) ``E[r(x, y) | x]``.
    kl : (n_prompts,) ``KL(π_θ(·|x) ‖ π_ref(·|x))`` over whole completions, or None without ``θ_ref``.
    J : the objective ``E_x V(root of x)`` = ``ρ·(reward − β kl)``.
    policy : the :class:`~pgnotes.policy.SoftmaxPolicy` over next tokens.
    """

    π: np.ndarray
    log_π: np.ndarray
    reach: np.ndarray
    μ: np.ndarray
    Q: np.ndarray
    V: np.ndarray
    A: np.ndarray
    reward: np.ndarray
    kl: np.ndarray | None
    J: complex | float
    policy: SoftmaxPolicy


def evaluate(tmdp: TokenMDP, θ, *, β: float = 0.0, θ_ref=None, features=None) -> TokenEvaluation:
    r"""Exact values on the prefix tree, with an optional per-token KL penalty to ``π_ref``.

    With the KL-shaped reward :math:`r_β(s, a) = r(s, a) - β \log\frac{π_θ(a|s)}{π_{ref}(a|s)}`
    (``r(s, a)`` the verifier's reward when ``a`` ends the completion, else 0):

    .. math::

        Q(s, a) = r_β(s, a) + V(s a), \qquad V(s) = \sum_a π_θ(a|s) Q(s, a),

    where ``s a`` is the prefix ``s`` extended by ``a`` and ``V = 0`` once the completion has
    ended; computed backward over the depths, ``reach`` forward. Then :math:`J_β = E_x V(x) = E[r(x, y)] - β\, E_x \mathrm{KL}(π_θ(\cdot|x) \,\|\, π_{ref}(\cdot|x))`,
    since the per-token log-ratios sum to the sequence-level KL (chain rule).
    Book: practice, language models, ``lm-values`` and ``lm-kl``.

    Raises
    ------
    ValueError
        For a malformed ``θ``, ``θ_ref`` or ``features``, ``β < 0``, or ``β > 0`` without ``θ_ref``.
    """
    tmdp = check_token_mdp(tmdp)
    β = check_kl_coefficient(β, θ_ref)
    pol, log_π = token_policy(tmdp, θ, features)
    π = np.exp(log_π)
    log_ratio = None if θ_ref is None else log_π - token_policy(tmdp, θ_ref, features, "θ_ref")[1]
    r = tmdp.reward_table - β * log_ratio if β > 0 else tmdp.reward_table.astype(π.dtype)
    n, ch = tmdp.n_prefixes, tmdp.child
    Q = np.zeros((n, tmdp.vocab_size), dtype=π.dtype)
    V = np.zeros(n, dtype=π.dtype)
    for idx in reversed(tmdp._levels):  # children are one level deeper: already done
        Q[idx] = r[idx] + np.where(ch[idx] >= 0, V[np.maximum(ch[idx], 0)], 0.0)
        V[idx] = np.einsum("ka,ka->k", π[idx], Q[idx])
    reach = np.zeros(n, dtype=π.dtype)
    reach[tmdp.roots] = 1.0
    for idx in tmdp._levels[:-1]:
        live = ch[idx] >= 0
        reach[ch[idx][live]] = (reach[idx, None] * π[idx])[live]
    μ = tmdp.rho[tmdp.prompt_of] * reach

    def per_prompt(x):  # Σ over the prefixes of each prompt (np.add.at also takes complex)
        out = np.zeros(tmdp.n_prompts, dtype=π.dtype)
        np.add.at(out, tmdp.prompt_of, x)
        return out

    reward = per_prompt(reach * np.einsum("ka,ka->k", π, tmdp.reward_table))
    kl = None if log_ratio is None else per_prompt(reach * np.einsum("ka,ka->k", π, log_ratio))
    J = tmdp.rho @ V[tmdp.roots]
    J = J.item() if np.iscomplexobj(J) else float(J)
    return TokenEvaluation(π, log_π, reach, μ, Q, V, Q - V[:, None], reward, kl, J, pol)


def objective(tmdp: TokenMDP, θ, *, β: float = 0.0, θ_ref=None, features=None):
    r"""``J_β(θ) = E_{x∼ρ} E_{y∼π_θ}[r(x, y)] − β E_x KL(π_θ(·|x) ‖ π_ref(·|x))``; ``J`` at ``β = 0``.

    Book: practice, language models, ``lm-kl``.
    """
    return evaluate(tmdp, θ, β=β, θ_ref=θ_ref, features=features).J


def state_values(tmdp: TokenMDP, θ, *, β: float = 0.0, θ_ref=None, features=None) -> np.ndarray:
    r"""``V(s)`` at every non-terminal prefix, shape (n_prefixes,); see :func:`evaluate`."""
    return evaluate(tmdp, θ, β=β, θ_ref=θ_ref, features=features).V


def action_values(tmdp: TokenMDP, θ, *, β: float = 0.0, θ_ref=None, features=None) -> np.ndarray:
    r"""Per-token ``Q(s, a)``, shape (n_prefixes, V); see :func:`evaluate`."""
    return evaluate(tmdp, θ, β=β, θ_ref=θ_ref, features=features).Q


def advantages(tmdp: TokenMDP, θ, *, β: float = 0.0, θ_ref=None, features=None) -> np.ndarray:
    r"""Per-token ``A(s, a) = Q(s, a) − V(s)``, shape (n_prefixes, V); see :func:`evaluate`."""
    return evaluate(tmdp, θ, β=β, θ_ref=θ_ref, features=features).A


def sequence_kl(tmdp: TokenMDP, θ, θ_ref, features=None) -> np.ndarray:
    r"""Sequence-level ``KL(π_θ(·|x) ‖ π_ref(·|x))`` per prompt, shape (n_prompts,).

    By the chain rule it is the expected sum of per-token log-ratios,
    :math:`E_{y∼π_θ}\big[\sum_t \log π_θ(y_t|s_t)/π_{ref}(y_t|s_t)\big]`.

    Book: practice, language models, ``lm-kl``.
    """
    if θ_ref is None:
        raise ValueError("sequence_kl needs the reference parameters θ_ref")
    return evaluate(tmdp, θ, θ_ref=θ_ref, features=features).kl


def policy_gradient(tmdp: TokenMDP, θ, *, β: float = 0.0, θ_ref=None, features=None) -> np.ndarray:
    r"""The exact gradient ``∇_θ J_β(θ)``, shape of ``θ``, by the policy gradient theorem on the tree.

    .. math:: ∇J_β = \sum_s μ(s) \sum_a π_θ(a|s)\, Q(s, a)\, ∇_θ \log π_θ(a|s),

    with ``Q`` from :func:`evaluate` (KL-shaped reward included). This is the *total* derivative
    of :math:`J_β = E[r] - β\,\mathrm{KL}` over whole sequences, although the KL reward depends
    on ``θ``: its explicit derivative contributes
    :math:`-β \sum_s μ(s) \sum_a π_θ(a|s) ∇\log π_θ(a|s) = -β \sum_s μ(s)\, ∇ \sum_a π_θ(a|s) = 0`.
    So treating the KL reward as a constant (a stop-gradient, as RLHF code that puts the KL in
    the reward does) leaves the on-policy score-function estimator unbiased for ``∇J_β``. Book: practice, language models, ``lm-gradient``.
    """
    ev = evaluate(tmdp, θ, β=β, θ_ref=θ_ref, features=features)
    return ev.policy.score_contract(ev.μ[:, None] * ev.π * ev.Q)


@dataclass(frozen=True)
class TabularForm:
    """The token MDP as a :class:`~pgnotes.TabularMDP` over prefixes (see :func:`to_tabular`).

    Attributes
    ----------
    mdp : TabularMDP with ``S = n_prefixes + 1`` states and ``A = V``; ``γ = 1``.
    features : (S, V, d) features (zero in the done state), or None.
    done : int, the absorbing state ``n_prefixes`` every ended completion moves to.
    """

    mdp: TabularMDP
    features: np.ndarray | None
    done: int

    def parameters(self, θ) -> np.ndarray:
        """``θ`` for :mod:`pgnotes.exact` on :attr:`mdp`: a tabular ``θ`` gets a zero row for the done state."""
        θ = np.asarray(θ)
        return θ if self.features is not None else np.concatenate([θ, np.zeros((1, θ.shape[1]), θ.dtype)])

    def restrict(self, table) -> np.ndarray:
        """A per-state table of :attr:`mdp` (``V``, ``Q``, ``η``, a tabular gradient …) on the prefixes only."""
        return np.asarray(table)[: self.done]


def to_tabular(tmdp: TokenMDP, *, features=None, β: float = 0.0, θ=None, θ_ref=None) -> TabularForm:
    r"""The same problem as a :class:`~pgnotes.TabularMDP`: the bridge to :mod:`pgnotes.exact`.

    State ``k < n_prefixes`` is ``tmdp.prefixes[k]``; state ``n_prefixes`` is an absorbing "done"
    state. ``P(child | k, a) = 1``, or ``P(done | k, a) = 1`` when ``a`` ends the completion;
    ``R(k, a)`` is the verifier's reward there, else 0; ``ρ0 = ρ`` on the prompts; ``γ = 1``.

    With ``β > 0`` the reward also holds the per-token KL term
    :math:`-β \log π_θ(a|s)/π_{ref}(a|s)` *frozen at the given* ``θ``: the tabular ``J`` at ``θ``
    is then ``J_β(θ)`` and, by the argument of :func:`policy_gradient`, its policy gradient is
    ``∇J_β(θ)`` (but not at any other ``θ``). Book: practice, language models, ``lm-mdp``.

    Raises
    ------
    ValueError
        If ``β > 0`` without a real ``θ`` and a ``θ_ref``, or on malformed parameters.
    """
    tmdp = check_token_mdp(tmdp)
    β = check_kl_coefficient(β, θ_ref)
    n, V = tmdp.n_prefixes, tmdp.vocab_size
    if n + 1 > MAX_STATES:
        raise ValueError(
            f"the tabular form would have {n + 1} states, more than pgnotes.mdp.MAX_STATES = {MAX_STATES}; "
            "use a smaller token MDP (the token-level routines themselves handle it)"
        )
    R = np.vstack([tmdp.reward_table, np.zeros((1, V))])
    if β > 0:
        if θ is None or np.iscomplexobj(np.asarray(θ)):
            raise ValueError("to_tabular with β > 0 needs the real θ at which the KL reward is frozen")
        log_ratio = token_policy(tmdp, θ, features)[1] - token_policy(tmdp, θ_ref, features, "θ_ref")[1]
        R[:n] -= β * log_ratio
    P = np.zeros((n + 1, V, n + 1))
    k, a = np.nonzero(np.ones((n, V), dtype=bool))
    P[k, a, np.where(tmdp.child[k, a] >= 0, tmdp.child[k, a], n)] = 1.0
    P[n, :, n] = 1.0
    ρ0 = np.zeros(n + 1)
    ρ0[tmdp.roots] = tmdp.rho
    φ = None
    if features is not None:
        φ = _check_features(tmdp, features)
        φ = np.concatenate([φ, np.zeros((1,) + φ.shape[1:])])
    return TabularForm(TabularMDP(P, R, ρ0, 1.0), φ, n)


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
    p : float (N,) or None, ``π_θ(y|x)`` for an enumeration (:func:`completions`), None for samples.
    """

    prompt_ids: np.ndarray
    tokens: np.ndarray
    mask: np.ndarray
    prefixes: np.ndarray
    lengths: np.ndarray
    rewards: np.ndarray
    p: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of completions ``N``."""
        return self.tokens.shape[0]


def completions(tmdp: TokenMDP, θ=None, features=None) -> TokenBatch:
    r"""Every (prompt, completion) pair, with ``p = π_θ(y|x)`` (computed on the tree) when ``θ`` is given.

    Rows are ordered by prompt, then by the prefix the completion ends from, then by its last
    token. ``Σ p = 1`` over the rows of each prompt, and :math:`J = \sum ρ(x)\, p\, r`.
    Book: practice, language models, ``lm-mdp``.
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
    tmdp: TokenMDP, θ, *, G: int, rng: np.random.Generator, prompt_ids=None, n_prompts=None, features=None
) -> TokenBatch:
    r"""Draw ``G`` completions per prompt, vectorised over the batch (a loop over the ``L`` positions only).

    The prompts are ``prompt_ids`` (given), or ``n_prompts`` draws from ``ρ``, or by default every
    prompt once. Rows ``i·G … i·G + G - 1`` form the group of the ``i``-th prompt, the layout of
    group-relative estimators (RLOO, GRPO). Each token is drawn by inverting the cumulative
    ``π_θ(·|s_t)`` at one uniform number per row and position. Book: practice, language models, ``lm-groups``.

    Raises
    ------
    ValueError
        If ``G < 1``, both or bad prompt choices, or a complex ``θ``.
    TypeError
        If ``rng`` is not a numpy Generator.
    """
    tmdp = check_token_mdp(tmdp)
    check_rng(rng)
    G = as_count(G, "G (completions per prompt)", minimum=1, maximum=MAX_TOKENS)
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
    if N * max(L, tmdp.vocab_size) > MAX_TOKENS:
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


def check_token_batch(tmdp: TokenMDP, batch) -> TokenBatch:
    """``batch`` itself if it is a :class:`TokenBatch` of ``tmdp``'s shape, else ``TypeError``/``ValueError``."""
    if not isinstance(batch, TokenBatch):
        raise TypeError(f"batch must be a pgnotes.tokens.TokenBatch, got {type(batch).__name__}")
    if batch.tokens.shape[1] != tmdp.max_len or batch.prefixes.max(initial=0) > tmdp.n_prefixes:
        raise ValueError("batch does not come from this TokenMDP (its length L or its prefixes do not match)")
    return batch


def token_log_probs(tmdp: TokenMDP, θ, batch: TokenBatch, features=None) -> np.ndarray:
    r"""``log π_θ(y_t | s_t)`` at every position, shape (N, L), 0 where ``mask`` is False.

    Per-token log-ratios to a reference are ``token_log_probs(θ) − token_log_probs(θ_ref)``;
    accepts complex ``θ``. Book: practice, language models, ``lm-score``.
    """
    tmdp, batch = check_token_mdp(tmdp), check_token_batch(tmdp, batch)
    log_π = token_policy(tmdp, θ, features)[1]
    k = np.where(batch.mask, batch.prefixes, 0)
    a = np.where(batch.mask, batch.tokens, 0)
    return np.where(batch.mask, log_π[k, a], 0.0)


def log_probability(tmdp: TokenMDP, θ, batch: TokenBatch, features=None) -> np.ndarray:
    r"""Sequence log-probability :math:`\log π_θ(y|x) = \sum_t \log π_θ(y_t|s_t)`, shape (N,).

    Book: practice, language models, ``lm-score``.
    """
    return token_log_probs(tmdp, θ, batch, features).sum(axis=1)


def score_sum(tmdp: TokenMDP, θ, batch: TokenBatch, weights=None, features=None) -> np.ndarray:
    r"""Per-sequence weighted scores :math:`\sum_t w_{i,t}\, ∇_θ \log π_θ(y_{i,t}|s_{i,t})`, shape ``(N,) + θ.shape``.

    Weights outside ``mask`` are ignored. The default ``w = mask`` gives the sequence score
    :math:`∇_θ \log π_θ(y|x)`; ``w[i, t] = r_i`` gives REINFORCE, ``r_i − b_i`` RLOO or GRPO, a
    per-token advantage the token-level estimators. Book: practice, language models, ``lm-score``.

    Raises
    ------
    ValueError
        If ``weights`` is not a finite real (N, L) array, or the result would exceed :data:`MAX_TOKENS` numbers.
    """
    tmdp, batch = check_token_mdp(tmdp), check_token_batch(tmdp, batch)
    w = batch.mask.astype(float) if weights is None else np.asarray(weights)
    if w.dtype == bool or not np.issubdtype(w.dtype, np.number) or np.iscomplexobj(w):
        raise ValueError(f"weights must be a real (N, L) array, got dtype {w.dtype}")
    if w.shape != batch.tokens.shape:
        raise ValueError(f"weights must have shape (N, L) = {batch.tokens.shape}, got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights contain NaN or inf")
    pol = token_policy(tmdp, θ, features)[0]
    if batch.n * pol.θ.size > MAX_TOKENS:
        raise ValueError(f"N · θ.size = {batch.n * pol.θ.size} exceeds MAX_TOKENS = {MAX_TOKENS}; split the batch")
    k = np.where(batch.mask, batch.prefixes, 0)
    a = np.where(batch.mask, batch.tokens, 0)
    return pol.score_sum(k, a, np.where(batch.mask, w.astype(float), 0.0))


def long_answer_mdp(max_len: int = 16, targets=(4, 8, 12)) -> TokenMDP:
    r"""A task whose answers are long: ``V = 2`` (EOS and the content token 1), one prompt per target.

    Prompt ``i`` is ``(1,) * (i + 1)`` and its answer is ``targets[i]`` tokens 1 then EOS; the
    reward is :func:`target_verifier`'s partial credit, the fraction of positions that agree with
    the answer over the longer of the two, so stopping too early or too late costs credit and a
    truncated completion (``L = max_len`` tokens, no EOS) still earns some. There are
    ``len(targets) · max_len`` prefixes: cheap to solve exactly at lengths where the decay of a
    terminal reward and the critic matter. Book: language models II, ``ppo-critic``.
    """
    L = as_count(max_len, "max_len (L)", minimum=2, maximum=64)
    targets = tuple(targets)
    if not targets or any(not _is_int(t) or not 0 <= t < L for t in targets):
        raise ValueError(f"targets must be a non-empty sequence of integers in [0, L) = [0, {L}), got {targets!r}")
    prompts = [(1,) * (i + 1) for i in range(len(targets))]
    return TokenMDP(2, prompts, L, target_verifier({x: (1,) * t for x, t in zip(prompts, targets)}, partial=True))


def row_weights(tmdp: TokenMDP, batch: TokenBatch) -> np.ndarray:
    r"""The probability of each row of an enumeration, :math:`ρ_0(x)\,π_θ(y|x)`, shape (N,).

    Over :func:`completions` with ``θ`` given these sum to 1, and the exact expectation of any
    per-completion quantity ``X`` is ``row_weights(tmdp, c) @ X``. Book: language models I,
    ``lm-mdp``.

    Raises
    ------
    ValueError
        If ``batch.p`` is None (a sampled batch: its rows are already draws, each of weight 1/N).
    """
    tmdp, batch = check_token_mdp(tmdp), check_token_batch(tmdp, batch)
    if batch.p is None:
        raise ValueError("row_weights needs an enumeration with probabilities: "
                         "build it with completions(tmdp, θ, features)")
    return tmdp.rho[batch.prompt_ids] * batch.p


def subset(batch: TokenBatch, rows) -> TokenBatch:
    """The rows ``rows`` (indices or a boolean mask) of a batch, ``p`` included when present."""
    if not isinstance(batch, TokenBatch):
        raise TypeError(f"batch must be a pgnotes.tokens.TokenBatch, got {type(batch).__name__}")
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
    if not isinstance(batch, TokenBatch):
        raise TypeError(f"batch must be a pgnotes.tokens.TokenBatch, got {type(batch).__name__}")
    table = np.asarray(table)
    if table.ndim != 2 or table.shape[0] < batch.prefixes.max(initial=0) or table.shape[1] <= batch.tokens[batch.mask].max(initial=0):
        raise ValueError(f"table must be a (n_prefixes, n_vocab) array, got shape {table.shape}")
    k = np.where(batch.mask, batch.prefixes, 0)
    a = np.where(batch.mask, batch.tokens, 0)
    return np.where(batch.mask, table[k, a], 0)
