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

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ._validate import as_count, check_rng
from .mdp import MAX_STATES, TabularMDP
from .policy import LogLinearSoftmax, SoftmaxPolicy, TabularSoftmax

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
    "MAX_GROUP_CONFIGURATIONS",
    "group_advantages",
    "group_advantage_given_reward",
    "group_estimator_expectation",
    "long_answer_mdp",
    "token_rewards",
    "gae_advantages",
    "clipped_surrogate",
    "clipped_surrogate_gradient",
    "clip_fraction",
    "conditional_expectation",
    "fit_values",
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


def _check_tmdp(tmdp) -> TokenMDP:
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
    tmdp = _check_tmdp(tmdp)
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


def _policy(tmdp: TokenMDP, θ, features, name: str = "θ") -> tuple[SoftmaxPolicy, np.ndarray]:
    """The softmax policy over next tokens and its log-probabilities ``log π`` (n_prefixes, V)."""
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


def _check_β(β, θ_ref) -> float:
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
    tmdp = _check_tmdp(tmdp)
    β = _check_β(β, θ_ref)
    pol, log_π = _policy(tmdp, θ, features)
    π = np.exp(log_π)
    log_ratio = None if θ_ref is None else log_π - _policy(tmdp, θ_ref, features, "θ_ref")[1]
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
    tmdp = _check_tmdp(tmdp)
    β = _check_β(β, θ_ref)
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
        log_ratio = _policy(tmdp, θ, features)[1] - _policy(tmdp, θ_ref, features, "θ_ref")[1]
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
    tmdp = _check_tmdp(tmdp)
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
    tmdp = _check_tmdp(tmdp)
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


def _check_token_batch(tmdp: TokenMDP, batch) -> TokenBatch:
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
    tmdp, batch = _check_tmdp(tmdp), _check_token_batch(tmdp, batch)
    log_π = _policy(tmdp, θ, features)[1]
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
    tmdp, batch = _check_tmdp(tmdp), _check_token_batch(tmdp, batch)
    w = batch.mask.astype(float) if weights is None else np.asarray(weights)
    if w.dtype == bool or not np.issubdtype(w.dtype, np.number) or np.iscomplexobj(w):
        raise ValueError(f"weights must be a real (N, L) array, got dtype {w.dtype}")
    if w.shape != batch.tokens.shape:
        raise ValueError(f"weights must have shape (N, L) = {batch.tokens.shape}, got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights contain NaN or inf")
    pol = _policy(tmdp, θ, features)[0]
    if batch.n * pol.θ.size > MAX_TOKENS:
        raise ValueError(f"N · θ.size = {batch.n * pol.θ.size} exceeds MAX_TOKENS = {MAX_TOKENS}; split the batch")
    k = np.where(batch.mask, batch.prefixes, 0)
    a = np.where(batch.mask, batch.tokens, 0)
    return pol.score_sum(k, a, np.where(batch.mask, w.astype(float), 0.0))


# --- Group-relative estimators (REINFORCE, RLOO, GRPO): advantages and exact expectations ---

#: Largest number of reward configurations (own reward × counts of the others) enumerated by
#: :func:`group_advantage_given_reward`.
MAX_GROUP_CONFIGURATIONS = 2_000_000


def group_advantages(rewards, *, baseline: str = "mean", divide_by_std: bool = False, ddof: int = 0, eps: float = 1e-4) -> np.ndarray:
    r"""Group-relative advantages of ``G`` completions of one prompt, over the last axis of ``rewards``.

    .. math::

        A_i = \frac{r_i - b_i}{\mathrm{std}(r_1, …, r_G) + ε}\ \text{(with divide_by_std)}, \qquad
        A_i = r_i - b_i \ \text{(without)},

    with the baseline ``b_i`` the group mean :math:`\bar r = \frac1G \sum_j r_j` (``"mean"``,
    as in GRPO and Dr. GRPO), the mean of the *other* rewards :math:`\frac{1}{G-1}\sum_{j≠i} r_j`
    (``"loo"``, leave-one-out, as in RLOO), or 0 (``"none"``, plain REINFORCE). The standard
    deviation is the population one (``ddof=0``) or Bessel-corrected (``ddof=1``, the default of
    ``torch.std``). A group whose rewards are all equal gets ``A = 0`` with the mean baseline (and,
    with ``eps = 0``, ``A = 0`` wherever the standard deviation is 0).
    Book: practice, language models, ``lm-groups``.

    Parameters
    ----------
    rewards : array of shape (..., G), real and finite; ``G ≥ 2`` for ``"loo"`` or ``ddof=1``.
    baseline : ``"mean"``, ``"loo"`` or ``"none"``.
    divide_by_std : bool, divide by the group's standard deviation plus ``eps`` (GRPO).
    ddof : 0 or 1, the degrees of freedom of the standard deviation.
    eps : float ≥ 0, added to the standard deviation.

    Returns
    -------
    float array, the shape of ``rewards``.
    """
    r = np.asarray(rewards)
    if r.dtype == bool or not np.issubdtype(r.dtype, np.number) or np.iscomplexobj(r) or r.ndim == 0:
        raise ValueError(f"rewards must be a real array of shape (..., G), got {rewards!r}")
    r = r.astype(float)
    if not np.all(np.isfinite(r)):
        raise ValueError("rewards contain NaN or inf")
    G = r.shape[-1]
    if baseline not in ("mean", "loo", "none"):
        raise ValueError(f"baseline must be 'mean', 'loo' or 'none', got {baseline!r}")
    if ddof not in (0, 1) or isinstance(ddof, bool):
        raise ValueError(f"ddof must be 0 or 1, got {ddof!r}")
    eps = float(eps)
    if not (np.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite number ≥ 0, got {eps}")
    need = 2 if (baseline == "loo" or (divide_by_std and ddof == 1)) else 1
    if G < need:
        raise ValueError(f"this advantage needs groups of G ≥ 2 completions, got G = {G}")
    total = r.sum(axis=-1, keepdims=True)
    if baseline == "mean":
        A = r - total / G
    elif baseline == "loo":
        A = r - (total - r) / (G - 1)
    else:
        A = r.copy()
    if divide_by_std:
        scale = r.std(axis=-1, ddof=ddof, keepdims=True) + eps
        A = np.divide(A, scale, out=np.zeros_like(A), where=scale > 0)  # eps = 0: equal rewards give A = 0
    return A


def group_advantage_given_reward(q, values, G: int, advantage_fn) -> np.ndarray:
    r"""``E[A_1 | r_1 = v_k]``: the mean advantage of a completion given its own reward, in a group of ``G``.

    The ``G`` rewards of a group are i.i.d. with ``P(r = v_k) = q_k``. Given ``r_1 = v``, the
    other ``G - 1`` rewards keep their law, and an exchangeable advantage depends on them only
    through their counts :math:`n \sim \mathrm{Multinomial}(G-1, q)`, so

    .. math::

        E[A_1 \mid r_1 = v_k] = \sum_{n} \binom{G-1}{n_1, …, n_K} \prod_l q_l^{n_l}\;
        A_1(v_k, \underbrace{v_1, …, v_1}_{n_1}, …, \underbrace{v_K, …, v_K}_{n_K}),

    a finite sum over the :math:`\binom{G+K-2}{K-1}` count vectors (``G`` of them for a 0/1 reward).
    Book: practice, language models, ``lm-groups``.

    Parameters
    ----------
    q : array of shape (..., K), the probabilities of the reward values (each row sums to 1).
    values : array of shape (K,), the distinct reward values.
    G : int ≥ 1, the group size.
    advantage_fn : callable mapping rewards (M, G) to advantages (M, G), permutation-equivariant
        (permuting a group's rewards permutes its advantages), e.g. ``group_advantages``.

    Returns
    -------
    array of shape (..., K).

    Raises
    ------
    ValueError
        On a bad ``q`` or ``values``, more than :data:`MAX_GROUP_CONFIGURATIONS` configurations,
        or an ``advantage_fn`` that returns the wrong shape, non-finite numbers, or is not
        permutation-equivariant.
    """
    import itertools
    import math

    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)) or np.unique(v).size != v.size:
        raise ValueError(f"values must be a 1-d array of distinct finite reward values, got {values!r}")
    K = v.size
    q = np.asarray(q, dtype=float)
    if q.ndim == 0 or q.shape[-1] != K:
        raise ValueError(f"q must have shape (..., K) = (..., {K}), got {q.shape}")
    if not np.all(np.isfinite(q)) or np.any(q < 0) or np.abs(q.sum(axis=-1) - 1).max() > 1e-9:
        raise ValueError("each row of q must be a probability vector (non-negative, summing to 1)")
    G = as_count(G, "G (completions per prompt)", minimum=1, maximum=10_000)
    n_counts = math.comb(G + K - 2, K - 1)
    if n_counts * K > MAX_GROUP_CONFIGURATIONS:
        raise ValueError(
            f"{K} reward values and G = {G} give {n_counts * K} configurations, more than "
            f"MAX_GROUP_CONFIGURATIONS = {MAX_GROUP_CONFIGURATIONS}; use fewer distinct rewards or a smaller G"
        )
    # count vectors n of the G - 1 others (stars and bars), and their multinomial coefficients
    counts = np.empty((n_counts, K), dtype=np.intp)
    for row, bars in enumerate(itertools.combinations(range(G + K - 2), K - 1)):
        edges = (-1,) + bars + (G + K - 2,)
        counts[row] = np.diff(edges) - 1
    log_coef = math.lgamma(G) - np.array([sum(math.lgamma(c + 1) for c in n) for n in counts])
    others = np.repeat(np.tile(v, (n_counts, 1)).ravel(), counts.ravel()).reshape(n_counts, G - 1)
    R = np.concatenate([np.repeat(v, n_counts)[:, None], np.tile(others, (K, 1))], axis=1)  # (K·n, G)
    A = np.asarray(advantage_fn(R))
    if A.shape != R.shape or A.dtype == bool or not np.issubdtype(A.dtype, np.number) or np.iscomplexobj(A):
        raise ValueError(f"advantage_fn must map real rewards (M, G) to real advantages (M, G); got shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ValueError("advantage_fn returned NaN or inf")
    if G > 1:  # exchangeability: moving the own reward to the last slot moves its advantage there
        perm = np.r_[1:G, 0]
        A_perm = np.asarray(advantage_fn(R[:, perm]))
        if A_perm.shape != R.shape or np.abs(A_perm - A[:, perm]).max() > 1e-9 * (1 + np.abs(A).max()):
            raise ValueError("advantage_fn must be permutation-equivariant (the same rule for every member of the group)")
    A_own = A[:, 0].reshape(K, n_counts)
    with np.errstate(divide="ignore"):
        log_q = np.log(q)
    # Π q_l^{n_l}, with 0^0 = 1: only the counts with n_l > 0 use log q_l
    log_p = log_coef + np.einsum("...k,nk->...n", np.where(np.isneginf(log_q), 0.0, log_q), counts)
    dead = np.einsum("...k,nk->...n", np.isneginf(log_q).astype(float), counts) > 0
    prob = np.where(dead, 0.0, np.exp(log_p))
    return np.einsum("...n,kn->...k", prob, A_own)


def group_estimator_expectation(
    tmdp: TokenMDP, θ, G: int, advantage_fn, *, sequence_weight=None, features=None, per_prompt: bool = False
) -> np.ndarray:
    r"""The exact expectation of a group-relative policy-gradient estimator, by conditioning on rewards.

    For each prompt ``x``, ``G`` completions :math:`y_1, …, y_G \sim π_θ(\cdot|x)` are scored
    :math:`r_i = r(x, y_i)` and the estimator is

    .. math::

        \hat g(x) = \frac1G \sum_{i=1}^G A_i(r_1, …, r_G)\; c(y_i)\; ∇_θ \log π_θ(y_i|x),

    with ``A = advantage_fn`` (permutation-equivariant) and ``c = sequence_weight`` (1 by
    default; ``1/|y|`` for GRPO's per-sequence token mean). Given its own reward, ``y_i`` is
    independent of the other rewards, so with the distinct reward values ``v_k`` and
    :func:`group_advantage_given_reward`

    .. math::

        E[\hat g(x)] = \sum_k E[A_1 \mid r_1 = v_k]\; E\big[c(y)\, ∇_θ\log π_θ(y|x)\, 1\{r(x, y) = v_k\}\big],

    where the last expectation is a sum over every completion (:func:`completions`). For
    ``c = 1`` it is :math:`∇_θ P(r = v_k \mid x)`. Returns :math:`E_{x∼ρ} E[\hat g(x)]`, or each
    :math:`E[\hat g(x)]` with ``per_prompt=True``. With ``G = 1`` and ``A_1 = r_1`` this is
    REINFORCE, whose expectation is :func:`policy_gradient`. Book: practice, language models, ``lm-groups``.

    Parameters
    ----------
    tmdp, θ, features : the token MDP and policy, as in :func:`evaluate` (real ``θ``).
    G : int ≥ 1, the group size.
    advantage_fn : callable (M, G) -> (M, G), e.g. ``lambda r: group_advantages(r, divide_by_std=True)``.
    sequence_weight : callable taking a :class:`TokenBatch` and returning ``c``, shape (N,), or None.
    per_prompt : bool, return shape ``(n_prompts,) + θ.shape`` instead of ``θ.shape``.

    Raises
    ------
    ValueError
        As :func:`group_advantage_given_reward`, or if ``sequence_weight`` returns a bad array.
    """
    tmdp = _check_tmdp(tmdp)
    c = completions(tmdp, θ, features)
    values, k = np.unique(c.rewards, return_inverse=True)
    q = np.zeros((tmdp.n_prompts, values.size))
    np.add.at(q, (c.prompt_ids, k), c.p)
    q /= q.sum(axis=1, keepdims=True)  # rounding only
    cond = group_advantage_given_reward(q, values, G, advantage_fn)  # (n_prompts, K)
    w = c.p * cond[c.prompt_ids, k]
    if sequence_weight is not None:
        cw = np.asarray(sequence_weight(c))
        if cw.shape != (c.n,) or cw.dtype == bool or not np.issubdtype(cw.dtype, np.number) or np.iscomplexobj(cw):
            raise ValueError(f"sequence_weight must return a real array of shape (N,) = ({c.n},), got {cw.shape}")
        if not np.all(np.isfinite(cw)):
            raise ValueError("sequence_weight returned NaN or inf")
        w = w * cw
    pol = _policy(tmdp, θ, features)[0]
    rows = np.repeat(np.arange(c.n), c.lengths)
    k_t, a_t = c.prefixes[c.mask], c.tokens[c.mask]  # row-major: the tokens of each completion in turn
    W = np.zeros((tmdp.n_prefixes, tmdp.vocab_size))
    np.add.at(W, (k_t, a_t), w[rows])  # Σ over the completions through (prefix, token) of their weight
    if not per_prompt:
        return pol.score_contract(tmdp.rho[tmdp.prompt_of][:, None] * W)
    return np.stack([pol.score_contract(np.where((tmdp.prompt_of == i)[:, None], W, 0.0)) for i in range(tmdp.n_prompts)])


# --- PPO at the token level: per-token rewards, GAE, the clipped surrogate, a Monte Carlo critic ---


def _real_table(x, shape, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise ValueError(f"{name} must be a real array, got dtype {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a.astype(float)


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


def token_rewards(tmdp: TokenMDP, batch: TokenBatch, *, β: float = 0.0, θ=None, θ_ref=None, features=None) -> np.ndarray:
    r"""Per-token rewards, shape (N, L): the verifier's ``r`` on the last real token, minus a KL term on every one.

    .. math:: r_t = r(x, y)\, 1[t = |y| - 1] \;-\; β \log\frac{π_θ(y_t|s_t)}{π_{ref}(y_t|s_t)}, \qquad t < |y|,

    and 0 on padding. The last real token is the EOS, or the ``L``-th token of a truncated
    completion; a row with no real token (a mask emptied on purpose) gets no reward. The KL
    term (``β > 0``, it needs ``θ`` and ``θ_ref``) is the per-token penalty of Ziegler et al.
    and InstructGPT: its expected sum along a completion is the sequence KL
    (:func:`sequence_kl`), and with it the returns are those of :func:`evaluate` with ``β``.
    Book: language models II, ``ppo-gae``.
    """
    tmdp, batch = _check_tmdp(tmdp), _check_token_batch(tmdp, batch)
    β = _check_β(β, θ_ref)
    N = batch.n
    r = np.zeros(batch.tokens.shape)
    last = batch.lengths - 1
    ok = last >= 0
    r[np.arange(N)[ok], last[ok]] = batch.rewards[ok]
    if β > 0:
        if θ is None:
            raise ValueError("a KL term in the reward (β > 0) needs the policy parameters θ")
        log_ratio = token_log_probs(tmdp, θ, batch, features) - token_log_probs(tmdp, θ_ref, batch, features)
        if np.iscomplexobj(log_ratio):
            raise ValueError("token_rewards needs a real θ")
        r = r - β * log_ratio
    return np.where(batch.mask, r, 0.0)


def gae_advantages(tmdp: TokenMDP, batch: TokenBatch, rewards, values, λ: float) -> np.ndarray:
    r"""Token-level GAE with ``γ = 1``: :math:`\hat A_t = \sum_{l ≥ 0} λ^l δ_{t+l}`, shape (N, L).

    .. math:: δ_t = r_t + V(s_{t+1}) - V(s_t), \qquad \hat A_t = δ_t + λ \hat A_{t+1},

    over the real tokens of each row, with :math:`V(s_{|y|}) = 0` (the completion has ended, at
    its EOS or at length ``L``) and 0 on padding. ``values`` is a critic, one number per
    non-terminal prefix (shape (n_prefixes,)), read at ``batch.prefixes``. With the exact
    ``V`` (:func:`state_values`) the advantages are unbiased for every ``λ``; with ``λ = 1``
    they are the return-to-go minus ``V(s_t)``, and with ``V = 0`` too, every token of the
    completion gets the return :math:`\sum_{t' ≥ t} r_{t'}` (REINFORCE). Book: language models II, ``ppo-gae``.
    """
    tmdp, batch = _check_tmdp(tmdp), _check_token_batch(tmdp, batch)
    r = _real_table(rewards, batch.tokens.shape, "rewards")
    V = _real_table(values, (tmdp.n_prefixes,), "values (one per non-terminal prefix)")
    lam = float(λ)
    if not (np.isfinite(lam) and 0.0 <= lam <= 1.0):
        raise ValueError(f"λ must lie in [0, 1], got {λ!r}")
    V_t = np.where(batch.mask, np.append(V, 0.0)[batch.prefixes], 0.0)  # the done state is worth 0
    V_next = np.concatenate([V_t[:, 1:], np.zeros((batch.n, 1))], axis=1)  # 0 after the last real token
    δ = np.where(batch.mask, np.where(batch.mask, r, 0.0) + V_next - V_t, 0.0)
    A = np.zeros_like(δ)
    nxt = np.zeros(batch.n)
    for t in reversed(range(tmdp.max_len)):
        nxt = δ[:, t] + lam * nxt
        A[:, t] = nxt
    return np.where(batch.mask, A, 0.0)


def _ratio_and_branch(tmdp, θ, θ_old, batch, advantages, ε, features):
    eps = float(ε)
    if not (np.isfinite(eps) and 0.0 < eps < 1.0):
        raise ValueError(f"the clip range ε must lie in (0, 1), got {ε!r}")
    Â = _real_table(advantages, batch.tokens.shape, "advantages")
    old = token_log_probs(tmdp, θ_old, batch, features)
    if np.iscomplexobj(old):
        raise ValueError("θ_old must be real")
    ρ = np.exp(token_log_probs(tmdp, θ, batch, features) - old)
    # min(ρÂ, clip(ρ)Â) takes the clipped, constant branch only where the ratio has left the
    # trust region in the direction the advantage pushes it; the real part decides (complex steps).
    flat = ((Â > 0) & (ρ.real > 1 + eps)) | ((Â < 0) & (ρ.real < 1 - eps))
    return ρ, Â, flat, eps


def clipped_surrogate(tmdp: TokenMDP, θ, θ_old, batch: TokenBatch, advantages, ε: float = 0.2, features=None) -> np.ndarray:
    r"""PPO's clipped surrogate per completion, :math:`\sum_t \min(ρ_t \hat A_t, \mathrm{clip}(ρ_t, 1-ε, 1+ε)\hat A_t)`, shape (N,).

    :math:`ρ_t = π_θ(y_t|s_t) / π_{old}(y_t|s_t)` per real token, ``advantages`` (N, L) fixed
    numbers (computed under ``θ_old``). The PPO objective (Schulman et al. 2017) is the mean of
    these over a batch drawn from ``π_old`` (or their ``ρ(x) π_old(y|x)``-weighted sum over
    :func:`completions` of ``θ_old``: the exact expectation). Accepts complex ``θ`` for complex
    steps: the branch of ``min`` is chosen by the real part, so the result is analytic away
    from the kinks ``ρ_t = 1 ± ε``. Book: language models II, ``ppo-clip``.
    """
    tmdp, batch = _check_tmdp(tmdp), _check_token_batch(tmdp, batch)
    ρ, Â, flat, eps = _ratio_and_branch(tmdp, θ, θ_old, batch, advantages, ε, features)
    value = np.where(flat, np.clip(ρ.real, 1 - eps, 1 + eps) * Â, ρ * Â)
    return np.where(batch.mask, value, 0.0).sum(axis=1)


def clipped_surrogate_gradient(
    tmdp: TokenMDP, θ, θ_old, batch: TokenBatch, advantages, ε: float = 0.2, features=None
) -> np.ndarray:
    r"""``∇_θ`` of :func:`clipped_surrogate` per completion, shape ``(N,) + θ.shape``.

    .. math:: \sum_t 1[\text{unclipped}_t]\; ρ_t \hat A_t\, ∇_θ \log π_θ(y_t|s_t),

    where a token is clipped (gradient 0) when :math:`\hat A_t > 0, ρ_t > 1+ε` or
    :math:`\hat A_t < 0, ρ_t < 1-ε`. At ``θ = θ_old`` every ``ρ_t = 1``: it is the policy-gradient
    estimator with weights :math:`\hat A_t`. Book: language models II, ``ppo-clip``.
    """
    tmdp, batch = _check_tmdp(tmdp), _check_token_batch(tmdp, batch)
    ρ, Â, flat, _ = _ratio_and_branch(tmdp, θ, θ_old, batch, advantages, ε, features)
    if np.iscomplexobj(ρ):
        raise ValueError("clipped_surrogate_gradient needs a real θ")
    return score_sum(tmdp, θ, batch, np.where(batch.mask & ~flat, ρ * Â, 0.0), features)


def clip_fraction(tmdp: TokenMDP, θ, θ_old, batch: TokenBatch, ε: float = 0.2, features=None) -> float:
    r"""The fraction of real tokens whose ratio has left :math:`[1-ε, 1+ε]`: PPO's logged ``clipfrac``.

    Book: language models II, ``ppo-clip``.
    """
    tmdp, batch = _check_tmdp(tmdp), _check_token_batch(tmdp, batch)
    eps = float(ε)
    if not (np.isfinite(eps) and 0.0 < eps < 1.0):
        raise ValueError(f"the clip range ε must lie in (0, 1), got {ε!r}")
    log_ratio = token_log_probs(tmdp, θ, batch, features) - token_log_probs(tmdp, θ_old, batch, features)
    if np.iscomplexobj(log_ratio):
        raise ValueError("clip_fraction needs real parameters")
    return float((np.abs(np.exp(log_ratio) - 1.0) > eps)[batch.mask].mean())


def conditional_expectation(tmdp: TokenMDP, batch: TokenBatch, X) -> tuple[np.ndarray, np.ndarray]:
    r"""``E[X_t | s_t = s, y_t = a]`` per (prefix, token) over an enumeration, and ``Pr(s_t = s, y_t = a)``.

    ``batch`` comes from :func:`completions` (it needs ``p``); ``X`` (N, L) is a per-token
    quantity, for example advantages. Each completion weighs :math:`ρ(x)\, π_θ(y|x)`; the second
    result is :math:`μ(s)\, π_θ(a|s)`, and the first is 0 where that is 0. Book: language models II, ``ppo-critic``.
    """
    tmdp, batch = _check_tmdp(tmdp), _check_token_batch(tmdp, batch)
    if batch.p is None:
        raise ValueError("conditional_expectation needs an enumeration with probabilities p (completions(tmdp, θ))")
    X = _real_table(X, batch.tokens.shape, "X")
    w = np.broadcast_to((tmdp.rho[batch.prompt_ids] * batch.p)[:, None], X.shape)[batch.mask]
    k, a = batch.prefixes[batch.mask], batch.tokens[batch.mask]
    prob = np.zeros((tmdp.n_prefixes, tmdp.vocab_size))
    num = np.zeros_like(prob)
    np.add.at(prob, (k, a), w)
    np.add.at(num, (k, a), w * X[batch.mask])
    return np.divide(num, prob, out=np.zeros_like(num), where=prob > 0), prob


def fit_values(
    tmdp: TokenMDP, θ, values, *, steps: int, step_size: float, G: int, rng: np.random.Generator,
    β: float = 0.0, θ_ref=None, features=None, history: bool = False,
) -> np.ndarray:
    r"""A tabular critic after ``steps`` of Monte Carlo regression on returns sampled from ``π_θ``.

    Each step draws ``G`` completions per prompt (:func:`sample_groups`), computes the
    returns-to-go :math:`G_t = \sum_{t' ≥ t} r_{t'}` of :func:`token_rewards` (KL term included
    when ``β > 0``), and takes one gradient step on :math:`\frac1{2N}\sum_{i,t}(G_{i,t} - V(s_{i,t}))^2`:

    .. math:: V(s) \leftarrow V(s) + \frac{α}{N} \sum_{i,t:\ s_{i,t} = s} \big(G_{i,t} - V(s)\big),

    with ``α = step_size`` and ``N`` the number of completions. A prefix moves in proportion to
    how often it is visited, so rarely visited prefixes keep their initial value. Returns ``V``
    (n_prefixes,), or with ``history=True`` the values before and after each step, (steps + 1, n_prefixes).
    Book: language models II, ``ppo-critic``.
    """
    tmdp = _check_tmdp(tmdp)
    V = _real_table(values, (tmdp.n_prefixes,), "values (one per non-terminal prefix)").copy()
    steps = as_count(steps, "steps", minimum=0, maximum=10**6)
    α = float(step_size)
    if not (np.isfinite(α) and α > 0):
        raise ValueError(f"step_size must be a positive number, got {step_size!r}")
    out = [V.copy()]
    zeros = np.zeros(tmdp.n_prefixes)
    for _ in range(steps):
        b = sample_groups(tmdp, θ, G=G, rng=rng, features=features)
        ret = gae_advantages(tmdp, b, token_rewards(tmdp, b, β=β, θ=θ, θ_ref=θ_ref, features=features), zeros, 1.0)
        k = b.prefixes[b.mask]
        resid = np.bincount(k, ret[b.mask], minlength=tmdp.n_prefixes) - np.bincount(k, minlength=tmdp.n_prefixes) * V
        V = V + α * resid / b.n
        out.append(V.copy())
    return np.array(out) if history else V
