r"""Example tasks on token MDPs: verifiers and the book's small problems.

The tabular counterpart is :mod:`pgnotes.envs`. Book: language models I, ``lm-verifier``.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._validate import as_count, as_real, is_int
from .mdp import EOS, TokenMDP

__all__ = ["modular_sum_verifier", "target_verifier", "toy_mdp", "long_answer_mdp"]


def modular_sum_verifier(m: int, *, partial: bool = False, require_eos: bool = True, length_penalty: float = 0.0):
    r"""Verifier ``r(x, y) = c(x, y) - λ |y|``: is the total :math:`Σx + Σy` divisible by ``m``?

    The target residue :math:`-Σx \bmod m` depends on the prompt, so the best policy does too.
    ``c = 1`` when :math:`d = (Σx + Σy) \bmod m` is 0, else 0; with ``partial=True``
    :math:`c = 1 - \min(d, m-d)/\lfloor m/2 \rfloor` (credit for a near miss). With
    ``require_eos`` a truncated completion (no EOS) gets ``c = 0``. ``λ = length_penalty``
    charges each generated token, EOS included. Book: language models I, ``lm-verifier``.
    """
    m = as_count(m, "m", minimum=2, maximum=10**6)
    λ = as_real(length_penalty, "length_penalty")

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
    early or too late costs credit. Book: language models I, ``lm-verifier``.
    """
    if not isinstance(targets, Mapping):
        raise TypeError(f"targets must map each prompt to a target completion, got {type(targets).__name__}")
    goal = {}
    for x, t in targets.items():
        t = tuple(t)
        if any(not is_int(v) or v <= EOS for v in t):
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
    Book: language models I, ``lm-mdp``.
    """
    prompts = [(1,), (2,), (3, 1)]
    if kind == "sum":
        verifier = modular_sum_verifier(4, partial=partial)
    elif kind == "target":
        verifier = target_verifier({(1,): (2,), (2,): (3, 1), (3, 1): (1, 1, 2)}, partial=partial)
    else:
        raise ValueError(f"kind must be 'sum' or 'target', got {kind!r}")
    return TokenMDP(4, prompts, 4, verifier)


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
    if not targets or any(not is_int(t) or not 0 <= t < L for t in targets):
        raise ValueError(f"targets must be a non-empty sequence of integers in [0, L) = [0, {L}), got {targets!r}")
    prompts = [(1,) * (i + 1) for i in range(len(targets))]
    return TokenMDP(2, prompts, L, target_verifier({x: (1,) * t for x, t in zip(prompts, targets)}, partial=True))
