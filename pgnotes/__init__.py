"""pgnotes: the policy gradient theorem, executable.

The modules follow the book's table of contents:

========================  ====================================================
:mod:`pgnotes.mdp`         the MDP ``(S, A, P, R, ρ0, γ)`` and its validation
:mod:`pgnotes.envs`        the MDPs of the book, Gymnasium toy-text import
:mod:`pgnotes.policy`      softmax policies and their score ``∇ log π``
:mod:`pgnotes.exact`       infinite-horizon exact quantities (derivation B)
:mod:`pgnotes.finite`      finite-horizon exact quantities (derivation A)
:mod:`pgnotes.trajectories` exact enumeration of trajectories, exact moments
:mod:`pgnotes.sampling`    vectorised Monte-Carlo sampling
:mod:`pgnotes.estimators`  per-trajectory gradient estimators
:mod:`pgnotes.check`       independent routes: complex step, finite differences, sympy
:mod:`pgnotes.plots`       the book's figures
:mod:`pgnotes.tokens`      token-level MDPs of language models, exact and sampled
:mod:`pgnotes.groups`      group advantages (REINFORCE, RLOO, GRPO) and their exact expectations
:mod:`pgnotes.ppo`         token-level PPO: KL rewards, GAE, clipped surrogate, critic fitting
:mod:`pgnotes.lab`         a reference LLM policy-gradient loss with switchable mistakes
========================  ====================================================
"""

from . import check, envs, estimators, exact, finite, groups, lab, plots, policy, ppo, tokens, trajectories
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
    "check",
    "envs",
    "estimators",
    "exact",
    "finite",
    "groups",
    "lab",
    "plots",
    "policy",
    "ppo",
    "tokens",
    "trajectories",
]

__version__ = "0.1.0"
