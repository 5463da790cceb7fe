r"""Token-level MDPs: generation by a language model as an MDP, solved exactly.

Book: language models I (``lm-mdp``). Generation is an MDP with

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

from .batches import (
    TokenBatch,
    at_tokens,
    completions,
    log_probability,
    row_weights,
    sample_groups,
    score_sum,
    subset,
    token_log_probs,
)
from .exact import (
    TabularForm,
    TokenEvaluation,
    action_values,
    advantages,
    evaluate,
    objective,
    policy_gradient,
    sequence_kl,
    state_values,
    to_tabular,
)
from .mdp import EOS, MAX_PREFIXES, MAX_TOKENS, TokenMDP, token_features, token_policy
from .tasks import long_answer_mdp, modular_sum_verifier, target_verifier, toy_mdp

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
    "token_policy",
    "long_answer_mdp",
    "row_weights",
    "subset",
    "at_tokens",
]
