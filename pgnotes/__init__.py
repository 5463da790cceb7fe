r"""pgnotes: the policy gradient theorem, executable.

The modules follow the book's table of contents:

========================  ====================================================
:mod:`pgnotes.mdp`         the MDP ``(S, A, P, R, ρ0, γ)`` and its validation
:mod:`pgnotes.envs`        the MDPs of the book, Gymnasium toy-text import
:mod:`pgnotes.policy`      softmax policies and their score ``∇ log π``
:mod:`pgnotes.exact`       infinite-horizon exact quantities (derivation B), and what the
                           trust-region chapters compute exactly: the performance
                           difference, the surrogate, KL bounds, the Fisher matrix, the
                           natural gradient, PG/NPG/PPO/TRPO dynamics, the average reward
:mod:`pgnotes.finite`      finite-horizon exact quantities (derivation A)
:mod:`pgnotes.trajectories` exact enumeration of trajectories, exact moments
:mod:`pgnotes.paths`       ``P(τ)`` as a product, k-step transitions summed over paths
:mod:`pgnotes.sampling`    vectorised Monte-Carlo sampling
:mod:`pgnotes.estimators`  per-trajectory gradient estimators
:mod:`pgnotes.reference`   independent routes: complex step, finite differences, sympy,
                           a dense solve of ``J``
:mod:`pgnotes.plots`       the book's figures
:mod:`pgnotes.tokens`      token-level MDPs of language models: ``tokens.mdp`` (the prefix
                           tree, features, policy), ``tokens.tasks`` (verifiers, examples),
                           ``tokens.exact`` (values, ``J``, ``∇J``, KL, the tabular bridge),
                           ``tokens.batches`` (enumeration, sampling, scores, batch helpers)
:mod:`pgnotes.groups`      group advantages (REINFORCE, RLOO, GRPO, DAPO's dynamic sampling),
                           their exact expectations and exact variances
:mod:`pgnotes.kl`          the KL estimators k1, k2, k3 and the exact expected gradient of
                           each placement (reward or loss, on- or off-policy)
:mod:`pgnotes.ppo`         token-level PPO: KL rewards, GAE, clipped surrogate, critic fitting
:mod:`pgnotes.llm_loss`    the lab's settings; a reference LLM policy-gradient loss, its
                           aggregation choices and its named mistakes
:mod:`pgnotes.objectives`  GRPO, DAPO and GSPO objectives at ``θ ≠ θ_old``: clipping
                           (clip-higher), token/sequence/geometric ratios, aggregations,
                           dynamic sampling, overlong filtering and shaping, exactly
:mod:`pgnotes.training`    exact training runs: PPO, GRPO, Dr. GRPO, RLOO, DAPO under one
                           token budget, exact ``J``, KL, entropy and length after each step
:mod:`pgnotes.verify`      checks a practitioner's own PPO/GRPO function
                           (``python -m pgnotes.verify file.py:function``)
========================  ====================================================

``pgnotes._validate`` holds every argument check: a wrong type raises ``TypeError``, a wrong
value ``ValueError``, and the message names the argument and the fix.

Conventions
-----------
The rule for every public function, with no exception.

1. **Argument order**: the model, then the policy parameters, then the data, then tables and
   numbers: ``f(mdp, θ, batch, *tables, *, options)``, e.g.
   ``estimators.gae(mdp, θ, batch, V, lam)``, ``ppo.clipped_surrogate(tmdp, θ, θ_old, batch, A)``.
   ``tmdp`` is the model on the token side; ``θ`` is positional wherever the result depends on
   the policy (``θ_old`` follows ``θ``); a function that does not depend on ``θ`` skips it
   (``estimators.td_errors(mdp, batch, V)``). ``features`` is always keyword-only
   (``*, features=None``), as are sizes and options (``horizon=``, ``n=``, ``rng=``,
   ``cliprange=``).
2. **One operation, one name**: the weighted score sum
   :math:`\sum_t w_t ∇_θ \log π_θ(a_t|s_t)` is ``score_sum`` on both sides (the policy
   method, ``estimators.score_sum`` and ``tokens.score_sum``).
3. **Names do not collide with the notation**: ``V``, ``Q``, ``A``, ``P``, ``R`` are the maths
   (values, transitions, rewards), never sizes: sizes are ``n_states``, ``n_actions``,
   ``n_vocab``, ``n_prompts``, ``n_prefixes``. A batch's probabilities are ``prob``.
4. **Keyword names are ASCII words**, as in the libraries practitioners use (``gamma``,
   ``rho0``, ``lam``, ``beta``, ``cliprange``, ``theta_ref``, ``group_size``); Greek letters
   are for positional parameters (``θ``, ``θ_old``, ``θ_ref``) and local variables, where they
   follow the book's notation. ``θ`` keeps its letter where it is an optional keyword
   (``ppo.token_rewards(tmdp, batch, beta=β, θ=θ, theta_ref=θ_ref)``).
5. **Modules say what they hold**: reference computations live in ``reference``, the
   language-model loss with its named mistakes in ``llm_loss``.
"""

from . import (envs, estimators, exact, finite, groups, kl, llm_loss, objectives, paths, plots, policy,
               ppo, reference, tokens, training, trajectories, verify)
from .mdp import TabularMDP
from .policy import softmax_policy
from .sampling import Batch, sample
from .trajectories import enumerate_trajectories

__all__ = [
    "TabularMDP",
    "Batch",
    "sample",
    "enumerate_trajectories",
    "softmax_policy",
    "envs",
    "estimators",
    "exact",
    "finite",
    "groups",
    "kl",
    "llm_loss",
    "objectives",
    "paths",
    "plots",
    "policy",
    "ppo",
    "reference",
    "tokens",
    "training",
    "trajectories",
    "verify",
]

__version__ = "0.1.0"
