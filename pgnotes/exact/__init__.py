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

from . import _average, _dynamics, _evaluation, _trust

#: Every public name of the submodules, in the order of the table above.
__all__ = [*_evaluation.__all__, "MAX_EPISODE_LENGTH", *_trust.__all__, *_dynamics.__all__, *_average.__all__]
