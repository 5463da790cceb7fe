r"""Exact quantities of a softmax policy on a tabular MDP, infinite horizon.

Everything is a finite sum or a linear solve; nothing is sampled.

========================  ==============================================================
``_evaluation``            ``V, Q, A, η, J, ∇J`` from one LU factorisation (derivation B)
``_termination``           at γ = 1, refuse policies that never end, structurally or numerically
``_trust``                 performance difference, surrogate, KL bound, Fisher matrix,
                           natural gradient, compatible critic (trust regions)
``_dynamics``              exact PG / NPG ascent, exact PPO-clip, KL-penalty and TRPO steps
``_average``               the average-reward objective and its gradient
========================  ==============================================================

The public names below are the module's API: ``pgnotes.exact.X`` for every X.
"""

from ._evaluation import (
    Evaluation,
    action_values,
    advantages,
    evaluate,
    k_step,
    objective,
    occupancy,
    on_policy_distribution,
    phi,
    policy_gradient,
    policy_matrix,
    policy_reward,
    score_function_moments,
    state_values,
    truncated_visit_counts,
    undiscounted_update,
    value_gradient,
    visit_counts,
)
from ._termination import MAX_EPISODE_LENGTH
from ._trust import (
    critic_gradient,
    fisher,
    kl_per_state,
    max_kl,
    mean_kl,
    mismatch_coefficient,
    natural_gradient,
    optimal_values,
    performance_difference,
    score_matrix,
    surrogate,
    trpo_lower_bound,
)
from ._dynamics import METHODS, Path, ascent, clip_objective, surrogate_ascent, trpo_step
from ._average import average_reward, average_reward_gradient, stationary_distribution

__all__ = [
    "Evaluation",
    "evaluate",
    "policy_matrix",
    "policy_reward",
    "state_values",
    "action_values",
    "advantages",
    "k_step",
    "visit_counts",
    "truncated_visit_counts",
    "occupancy",
    "on_policy_distribution",
    "objective",
    "phi",
    "policy_gradient",
    "value_gradient",
    "undiscounted_update",
    "score_function_moments",
    "MAX_EPISODE_LENGTH",
    # trust regions and the natural gradient
    "performance_difference",
    "surrogate",
    "kl_per_state",
    "max_kl",
    "mean_kl",
    "trpo_lower_bound",
    "mismatch_coefficient",
    "optimal_values",
    "score_matrix",
    "fisher",
    "natural_gradient",
    "critic_gradient",
    # exact dynamics
    "METHODS",
    "Path",
    "ascent",
    "clip_objective",
    "surrogate_ascent",
    "trpo_step",
    # average reward
    "stationary_distribution",
    "average_reward",
    "average_reward_gradient",
]
