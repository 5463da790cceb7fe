"""pgnotes.exact as a subpackage: public names, one η_T recursion, γ = 1 numerical termination."""

import warnings

import numpy as np
import pytest

import pgnotes as pg

PUBLIC = [
    "Evaluation", "evaluate", "policy_matrix", "state_values",
    "action_values", "advantages", "k_step", "visit_counts", "truncated_visit_counts",
    "occupancy", "on_policy_distribution", "objective", "phi", "policy_gradient",
    "value_gradient", "undiscounted_update", "score_function_moments",
]


def test_every_public_name_of_the_old_module_is_still_reachable():
    for name in PUBLIC:
        assert hasattr(pg.exact, name), name
        assert name in pg.exact.__all__, name
    for name in pg.exact.__all__:
        obj = getattr(pg.exact, name)
        assert getattr(obj, "__module__", "pgnotes.exact").startswith("pgnotes.exact"), name


def test_finite_visit_counts_is_the_truncated_series_and_matches_enumeration():
    rng = np.random.default_rng(3)
    mdp = pg.envs.random_mdp(3, 2, 0.8, rng, n_terminal=1, p_end=0.3)
    θ = rng.standard_normal((3, 2))
    T = 4
    η_T = pg.finite.visit_counts(mdp, θ, horizon=T)
    np.testing.assert_array_equal(η_T, pg.exact.truncated_visit_counts(mdp, θ, T))
    batch = pg.enumerate_trajectories(mdp, θ, horizon=T)  # independent route
    enum = np.zeros(mdp.n_states)
    for t in range(T):
        w = batch.prob * mdp.gamma**t * batch.mask[:, t]
        enum += np.bincount(batch.states[:, t], weights=w, minlength=mdp.n_states)
    np.testing.assert_allclose(η_T, enum, atol=1e-13)


def _two_state_chain():
    """State 0: action 0 stays (reward -1), action 1 ends the episode; state 1 is terminal."""
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = 1.0
    P[1, :, 1] = 1.0
    R = np.array([[-1.0, -1.0], [0.0, 0.0]])
    return pg.TabularMDP(P, R, np.array([1.0, 0.0]), 1.0)


@pytest.mark.parametrize("logit", [30.0, 40.0, 800.0])  # 800: π underflows to exactly 0
def test_gamma_one_with_numerically_zero_termination_raises(logit):
    mdp = _two_state_chain()
    θ = np.array([[logit, 0.0], [0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no LinAlgWarning / RuntimeWarning may escape
        with pytest.raises(ValueError, match="gamma = 1 but the policy"):
            pg.exact.objective(mdp, θ)
        with pytest.raises(ValueError, match="gamma = 1 but the policy"):
            pg.exact.visit_counts(mdp, θ)


def test_gamma_one_with_small_but_representable_termination_is_exact():
    mdp = _two_state_chain()
    θ = np.array([[20.0, 0.0], [0.0, 0.0]])
    J = pg.exact.objective(mdp, θ)
    np.testing.assert_allclose(J, -(1.0 + np.exp(20.0)), rtol=1e-6)  # -1/p_end, closed form
