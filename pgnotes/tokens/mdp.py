r"""The token-level MDP: prefixes, the prefix tree, features and the next-token softmax policy.

The tabular counterparts are :mod:`pgnotes.mdp` and :mod:`pgnotes.policy`. Book: language
models I, ``lm-mdp`` and ``lm-policy``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .._validate import as_count, check_token_mdp, is_int, real_array
from ..policy import LogLinearSoftmax, SoftmaxPolicy, TabularSoftmax

__all__ = ["EOS", "MAX_PREFIXES", "MAX_TOKENS", "TokenMDP", "token_features", "token_policy"]

#: The end-of-sequence token.
EOS = 0
#: Largest number of non-terminal prefixes (rows of a tabular ``θ``) a :class:`TokenMDP` may have.
MAX_PREFIXES = 20_000
#: Largest ``N · L`` (and ``N · θ.size`` for scores) handled in one call.
MAX_TOKENS = 50_000_000


def _token_tuple(seq, n_vocab: int, what: str, *, allow_eos: bool) -> tuple:
    if isinstance(seq, (str, bytes)) or not hasattr(seq, "__iter__"):
        raise TypeError(f"{what} must be a sequence of token ids, got {seq!r}")
    seq = tuple(seq)
    for j, v in enumerate(seq):
        if not is_int(v):
            raise TypeError(f"{what} holds {v!r} at position {j}; token ids must be integers")
        if not 0 <= v < n_vocab:
            raise ValueError(f"{what} holds token {v} at position {j}, outside the vocabulary 0..{n_vocab - 1}")
        if v == EOS and not allow_eos:
            raise ValueError(f"{what} holds the EOS token {EOS} at position {j}; it may not contain EOS")
    return tuple(int(v) for v in seq)


def _reward_value(v, x, y) -> float:
    v = float(v) if isinstance(v, (bool, np.bool_)) else v  # a pass/fail verifier may return a bool
    return float(real_array(v, f"the verifier's reward for prompt {x} and completion {y}", shape=()))


class TokenMDP:
    r"""Generation as an MDP: vocabulary ``V`` (EOS ``= 0``), prompts with law ``ρ``, length ``L``, verifier ``r``.

    A completion ``y = (y_1, …, y_n)`` ends at the first EOS or is truncated at ``n = L`` (its
    last token may then be anything, EOS included). The non-terminal prefixes are ``(x, y)``
    with ``len(y) < L`` and no EOS in ``y``: per prompt there are :math:`\sum_{k<L} (V-1)^k` of
    them, and :math:`\sum_{k \le L} (V-1)^k` completions. Book: language models I, ``lm-mdp``.

    Parameters
    ----------
    n_vocab : int ≥ 2
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

    def __init__(self, n_vocab: int, prompts, max_len: int, reward, rho=None):
        n_vocab = as_count(n_vocab, "n_vocab (V)", minimum=2, maximum=256)
        L = as_count(max_len, "max_len (L)", minimum=1, maximum=64)
        if isinstance(prompts, (str, bytes)) or not hasattr(prompts, "__len__"):
            raise TypeError(f"prompts must be a non-empty sequence of token sequences, got {prompts!r}")
        if len(prompts) == 0:
            raise ValueError("prompts is empty; give at least one prompt (a sequence of token ids)")
        xs = tuple(_token_tuple(x, n_vocab, f"prompt {i}", allow_eos=False) for i, x in enumerate(prompts))
        for i, x in enumerate(xs):
            if not x:
                raise ValueError(f"prompt {i} is empty; prompts need at least one token")
            if x in xs[:i]:
                raise ValueError(f"prompt {i} = {x} repeats prompt {xs.index(x)}; prompts must be distinct")
        n_prompts = len(xs)
        if rho is None:
            ρ = np.full(n_prompts, 1.0 / n_prompts)
        else:
            ρ = real_array(rho, "rho (the prompt law, shape (n_prompts,))", shape=(n_prompts,))
            if np.any(ρ < 0) or abs(ρ.sum() - 1.0) > 1e-9:
                raise ValueError(f"rho must be a probability vector (non-negative, summing to 1), got {ρ}")
        per_prompt = sum((n_vocab - 1) ** k for k in range(L))
        if per_prompt * n_prompts > MAX_PREFIXES:
            raise ValueError(
                f"{n_prompts} prompts with V = {n_vocab} and L = {L} give {per_prompt * n_prompts} prefixes, more than "
                f"MAX_PREFIXES = {MAX_PREFIXES}; use a smaller vocabulary or a shorter L"
            )
        if isinstance(reward, Mapping):
            table = dict(reward)
            verifier = lambda x, y: table.get((x, y), 0.0)  # noqa: E731
        elif callable(reward):
            table, verifier = None, reward
        else:
            raise TypeError(f"reward must be a callable verifier or a mapping, got {type(reward).__name__}")

        prefixes = []
        for i in range(n_prompts):
            level = [()]
            for _ in range(L):
                prefixes += [(i, y) for y in level]
                level = [y + (a,) for y in level for a in range(1, n_vocab)]
        index = {p: k for k, p in enumerate(prefixes)}
        n = len(prefixes)
        child = np.full((n, n_vocab), -1, dtype=np.intp)
        R = np.zeros((n, n_vocab))
        seen = set()
        for k, (i, y) in enumerate(prefixes):
            for a in range(n_vocab):
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

        self.n_vocab, self.max_len, self.prompts, self.n_prompts = n_vocab, L, xs, n_prompts
        self.rho = ρ
        self.prefixes = tuple(prefixes)
        self.n_prefixes = n
        self.depth = np.array([len(y) for _, y in prefixes], dtype=np.intp)
        self.prompt_of = np.array([i for i, _ in prefixes], dtype=np.intp)
        self.roots = np.array([index[(i, ())] for i in range(n_prompts)], dtype=np.intp)
        self.child, self.ends, self.reward_table = child, child < 0, R
        self.pad = n_vocab
        for arr in (self.rho, self.depth, self.prompt_of, self.roots, self.child, self.ends, self.reward_table):
            arr.setflags(write=False)
        self._levels = [np.flatnonzero(self.depth == d) for d in range(L)]
        self._index = index
        # Row k: the prefixes y[:0], …, y[:len(y)] on the path to prefixes[k] (n after), and y padded.
        self._path = np.full((n, L), n, dtype=np.intp)
        self._content = np.full((n, L), n_vocab, dtype=np.intp)
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
            f"TokenMDP(V={self.n_vocab}, L={self.max_len}, prompts={self.n_prompts}, "
            f"prefixes={self.n_prefixes}, completions={int(self.ends.sum())})"
        )


def token_features(tmdp: TokenMDP, kinds=("bigram", "position", "prompt")) -> np.ndarray:
    r"""One-hot features ``φ(prefix, token)`` for a log-linear policy, shape ``(n_prefixes, V, d)``.

    Kinds, concatenated in the order given: ``"bigram"`` one-hot of (last token, token), the last
    token of the prompt when the completion is empty (``d += V²``); ``"position"`` one-hot of
    (``len(y)``, token) (``d += L V``); ``"prompt"`` one-hot of (prompt id, token)
    (``d += n_prompts V``). Parameters are shared between prefixes with equal features.
    Book: language models I, ``lm-policy``.
    """
    tmdp = check_token_mdp(tmdp)
    n_vocab, n = tmdp.n_vocab, tmdp.n_prefixes
    if isinstance(kinds, str) or len(kinds) == 0:
        raise TypeError(f"kinds must be a non-empty sequence of 'bigram', 'position', 'prompt', got {kinds!r}")
    last = np.array([y[-1] if y else tmdp.prompts[i][-1] for i, y in tmdp.prefixes], dtype=np.intp)
    keys = {"bigram": (last, n_vocab), "position": (tmdp.depth, tmdp.max_len),
            "prompt": (tmdp.prompt_of, tmdp.n_prompts)}
    blocks = []
    for kind in kinds:
        if kind not in keys:
            raise ValueError(f"unknown feature kind {kind!r}; choose among 'bigram', 'position', 'prompt'")
        key, size = keys[kind]
        block = np.zeros((n, n_vocab, size, n_vocab))
        block[np.arange(n)[:, None], np.arange(n_vocab)[None, :], key[:, None],
              np.arange(n_vocab)[None, :]] = 1.0
        blocks.append(block.reshape(n, n_vocab, size * n_vocab))
    return np.concatenate(blocks, axis=2)


def _check_features(tmdp: TokenMDP, features) -> np.ndarray:
    φ = real_array(features, "features")
    n, n_vocab = tmdp.n_prefixes, tmdp.n_vocab
    if φ.ndim != 3 or φ.shape[:2] != (n, n_vocab) or φ.shape[2] == 0:
        raise ValueError(f"features must have shape (n_prefixes, V, d) = ({n}, {n_vocab}, d), got {φ.shape}")
    return φ


def token_policy(tmdp: TokenMDP, θ, *, features=None, name: str = "θ") -> tuple[SoftmaxPolicy, np.ndarray]:
    """The softmax policy over next tokens and its log-probabilities ``log π`` (n_prefixes, V).

    Validates ``θ`` (and ``features``) against ``tmdp``; accepts complex ``θ`` for complex steps.
    Book: language models I, ``lm-policy``.
    """
    n, n_vocab = tmdp.n_prefixes, tmdp.n_vocab
    shape = np.shape(θ)
    if features is None:
        if shape != (n, n_vocab):
            raise ValueError(
                f"{name} of a tabular token policy must have shape (n_prefixes, V) = {(n, n_vocab)}, "
                f"one row per non-terminal prefix; got {shape}"
            )
        pol = TabularSoftmax(θ, n, n_vocab)
        logits = pol.θ
    else:
        φ_shape = _check_features(tmdp, features).shape
        if shape != (φ_shape[2],):
            raise ValueError(
                f"{name} of a log-linear token policy must have shape (d,) = ({φ_shape[2]},), got {shape}"
            )
        pol = LogLinearSoftmax(θ, features, n, n_vocab)
        logits = pol.φ @ pol.θ
    z = logits - logits.real.max(axis=1, keepdims=True)  # log-softmax, analytic for complex steps
    return pol, z - np.log(np.exp(z).sum(axis=1, keepdims=True))
