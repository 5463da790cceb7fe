r"""Exact quantities of a next-token policy on a token MDP: values, ``J``, ``∇J``, KL, the tabular bridge.

Every prefix is reached by one path, so one backward pass over the depths gives the values and
one forward pass the reach probabilities. The tabular counterparts are :mod:`pgnotes.exact`
and :mod:`pgnotes.finite`. Book: language models I, ``lm-values``, ``lm-kl``, ``lm-gradient``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import check_kl_coefficient, check_token_mdp
from ..mdp import MAX_STATES, TabularMDP
from ..policy import SoftmaxPolicy
from .mdp import TokenMDP, _check_features, token_policy

__all__ = [
    "TokenEvaluation",
    "evaluate",
    "objective",
    "state_values",
    "action_values",
    "advantages",
    "sequence_kl",
    "policy_gradient",
    "TabularForm",
    "to_tabular",
]


def _reference_log_policy(tmdp: TokenMDP, θ_ref, features) -> np.ndarray:
    """``log π_ref`` (n_prefixes, V); ``θ_ref`` must be real (only ``θ`` may carry a complex step)."""
    log_ref = token_policy(tmdp, θ_ref, features=features, name="θ_ref")[1]
    if np.iscomplexobj(log_ref):
        raise TypeError("θ_ref must be real: the reference policy is fixed (complex steps go into θ only)")
    return log_ref


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


def evaluate(tmdp: TokenMDP, θ, *, beta: float = 0.0, theta_ref=None, features=None) -> TokenEvaluation:
    r"""Exact values on the prefix tree, with an optional per-token KL penalty to ``π_ref``.

    With the KL-shaped reward :math:`r_β(s, a) = r(s, a) - β \log\frac{π_θ(a|s)}{π_{ref}(a|s)}`
    (``r(s, a)`` the verifier's reward when ``a`` ends the completion, else 0):

    .. math::

        Q(s, a) = r_β(s, a) + V(s a), \qquad V(s) = \sum_a π_θ(a|s) Q(s, a),

    where ``s a`` is the prefix ``s`` extended by ``a`` and ``V = 0`` once the completion has
    ended; computed backward over the depths, ``reach`` forward. Then :math:`J_β = E_x V(x) = E[r(x, y)] - β\, E_x \mathrm{KL}(π_θ(\cdot|x) \,\|\, π_{ref}(\cdot|x))`,
    since the per-token log-ratios sum to the sequence-level KL (chain rule).
    Book: language models I, ``lm-values`` and ``lm-kl``.

    Raises
    ------
    ValueError
        For a malformed ``θ``, ``θ_ref`` or ``features``, ``β < 0``, or ``β > 0`` without ``θ_ref``.
    """
    tmdp = check_token_mdp(tmdp)
    beta = check_kl_coefficient(beta, theta_ref)
    pol, log_π = token_policy(tmdp, θ, features=features)
    π = np.exp(log_π)
    log_ratio = None if theta_ref is None else log_π - _reference_log_policy(tmdp, theta_ref, features)
    r = tmdp.reward_table - beta * log_ratio if beta > 0 else tmdp.reward_table.astype(π.dtype)
    n, ch = tmdp.n_prefixes, tmdp.child
    Q = np.zeros((n, tmdp.n_vocab), dtype=π.dtype)
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


def objective(tmdp: TokenMDP, θ, *, beta: float = 0.0, theta_ref=None, features=None):
    r"""``J_β(θ) = E_{x∼ρ} E_{y∼π_θ}[r(x, y)] − β E_x KL(π_θ(·|x) ‖ π_ref(·|x))``; ``J`` at ``β = 0``.

    Book: language models I, ``lm-kl``.

    Examples
    --------
    >>> from pgnotes import tokens as tk
    >>> tmdp = tk.toy_mdp()  # uniform next tokens: a quarter of the completions are correct
    >>> round(tk.objective(tmdp, np.zeros((tmdp.n_prefixes, tmdp.n_vocab))), 6)
    0.1875
    """
    return evaluate(tmdp, θ, beta=beta, theta_ref=theta_ref, features=features).J


def state_values(tmdp: TokenMDP, θ, *, beta: float = 0.0, theta_ref=None, features=None) -> np.ndarray:
    r"""``V(s)`` at every non-terminal prefix, shape (n_prefixes,); see :func:`evaluate`."""
    return evaluate(tmdp, θ, beta=beta, theta_ref=theta_ref, features=features).V


def action_values(tmdp: TokenMDP, θ, *, beta: float = 0.0, theta_ref=None, features=None) -> np.ndarray:
    r"""Per-token ``Q(s, a)``, shape (n_prefixes, V); see :func:`evaluate`."""
    return evaluate(tmdp, θ, beta=beta, theta_ref=theta_ref, features=features).Q


def advantages(tmdp: TokenMDP, θ, *, beta: float = 0.0, theta_ref=None, features=None) -> np.ndarray:
    r"""Per-token ``A(s, a) = Q(s, a) − V(s)``, shape (n_prefixes, V); see :func:`evaluate`."""
    return evaluate(tmdp, θ, beta=beta, theta_ref=theta_ref, features=features).A


def sequence_kl(tmdp: TokenMDP, θ, θ_ref, *, features=None) -> np.ndarray:
    r"""Sequence-level ``KL(π_θ(·|x) ‖ π_ref(·|x))`` per prompt, shape (n_prompts,).

    By the chain rule it is the expected sum of per-token log-ratios,
    :math:`E_{y∼π_θ}\big[\sum_t \log π_θ(y_t|s_t)/π_{ref}(y_t|s_t)\big]`.

    Book: language models I, ``lm-kl``.
    """
    if θ_ref is None:
        raise ValueError("sequence_kl needs the reference parameters θ_ref")
    return evaluate(tmdp, θ, theta_ref=θ_ref, features=features).kl


def policy_gradient(tmdp: TokenMDP, θ, *, beta: float = 0.0, theta_ref=None, features=None) -> np.ndarray:
    r"""The exact gradient ``∇_θ J_β(θ)``, shape of ``θ``, by the policy gradient theorem on the tree.

    .. math:: ∇J_β = \sum_s μ(s) \sum_a π_θ(a|s)\, Q(s, a)\, ∇_θ \log π_θ(a|s),

    with ``Q`` from :func:`evaluate` (KL-shaped reward included). This is the *total* derivative
    of :math:`J_β = E[r] - β\,\mathrm{KL}` over whole sequences, although the KL reward depends
    on ``θ``: its explicit derivative contributes
    :math:`-β \sum_s μ(s) \sum_a π_θ(a|s) ∇\log π_θ(a|s) = -β \sum_s μ(s)\, ∇ \sum_a π_θ(a|s) = 0`.
    So treating the KL reward as a constant (a stop-gradient, as RLHF code that puts the KL in
    the reward does) leaves the on-policy score-function estimator unbiased for ``∇J_β``. Book: language models I, ``lm-gradient``.
    """
    ev = evaluate(tmdp, θ, beta=beta, theta_ref=theta_ref, features=features)
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


def to_tabular(tmdp: TokenMDP, *, features=None, beta: float = 0.0, θ=None, theta_ref=None) -> TabularForm:
    r"""The same problem as a :class:`~pgnotes.TabularMDP`: the bridge to :mod:`pgnotes.exact`.

    State ``k < n_prefixes`` is ``tmdp.prefixes[k]``; state ``n_prefixes`` is an absorbing "done"
    state. ``P(child | k, a) = 1``, or ``P(done | k, a) = 1`` when ``a`` ends the completion;
    ``R(k, a)`` is the verifier's reward there, else 0; ``ρ0 = ρ`` on the prompts; ``γ = 1``.

    With ``β > 0`` the reward also holds the per-token KL term
    :math:`-β \log π_θ(a|s)/π_{ref}(a|s)` *frozen at the given* ``θ``: the tabular ``J`` at ``θ``
    is then ``J_β(θ)`` and, by the argument of :func:`policy_gradient`, its policy gradient is
    ``∇J_β(θ)`` (but not at any other ``θ``). Book: language models I, ``lm-mdp``.

    Raises
    ------
    ValueError
        If ``β > 0`` without a real ``θ`` and a ``θ_ref``, or on malformed parameters.
    """
    tmdp = check_token_mdp(tmdp)
    beta = check_kl_coefficient(beta, theta_ref)
    n, n_vocab = tmdp.n_prefixes, tmdp.n_vocab
    if n + 1 > MAX_STATES:
        raise ValueError(
            f"the tabular form would have {n + 1} states, more than pgnotes.mdp.MAX_STATES = {MAX_STATES}; "
            "use a smaller token MDP (the token-level routines themselves handle it)"
        )
    R = np.vstack([tmdp.reward_table, np.zeros((1, n_vocab))])
    if beta > 0:
        if θ is None or np.iscomplexobj(np.asarray(θ)):
            raise ValueError("to_tabular with β > 0 needs the real θ at which the KL reward is frozen")
        log_ratio = (token_policy(tmdp, θ, features=features)[1]
                     - _reference_log_policy(tmdp, theta_ref, features))
        R[:n] -= beta * log_ratio
    P = np.zeros((n + 1, n_vocab, n + 1))
    k, a = np.nonzero(np.ones((n, n_vocab), dtype=bool))
    P[k, a, np.where(tmdp.child[k, a] >= 0, tmdp.child[k, a], n)] = 1.0
    P[n, :, n] = 1.0
    ρ0 = np.zeros(n + 1)
    ρ0[tmdp.roots] = tmdp.rho
    φ = None
    if features is not None:
        φ = _check_features(tmdp, features)
        φ = np.concatenate([φ, np.zeros((1,) + φ.shape[1:])])
    return TabularForm(TabularMDP(P, R, ρ0, 1.0), φ, n)
