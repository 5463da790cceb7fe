"""The theorem-B gradient against independent routes, and the identities of derivation B."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import pgnotes as pg
from conftest import mdp_and_θ

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(mdp_and_θ())
def test_theorem_gradient_matches_complex_step(case):
    mdp, θ, φ = case
    g = pg.exact.policy_gradient(mdp, θ, features=φ)
    ref = pg.reference.complex_step_gradient(lambda t: pg.reference.objective(mdp, t, features=φ), θ)
    assert g.shape == θ.shape
    # Relative 1e-10, except where the gradient is a cancellation of much larger terms
    # η(s)π(a|s)Q(s,a) (a saturated softmax): there, a few ulps of those terms.
    ev = pg.exact.evaluate(mdp, θ, features=φ)
    terms = ev.η.sum() * np.abs(ev.Q).max() * (1 if φ is None else np.abs(φ).max())
    assert np.linalg.norm(g - ref) <= 1e-10 * np.linalg.norm(ref) + 1e-14 * terms


@FAST
@given(mdp_and_θ())
def test_objective_matches_independent_solve(case):
    mdp, θ, φ = case
    J = pg.exact.objective(mdp, θ, features=φ)
    assert isinstance(J, float)
    assert J == pytest.approx(float(pg.reference.objective(mdp, θ, features=φ)), rel=1e-12, abs=1e-12)


@FAST
@given(mdp_and_θ(episodic_gamma_one=False))
def test_central_differences_agree_to_their_own_accuracy(case):
    mdp, θ, φ = case
    g = pg.exact.policy_gradient(mdp, θ, features=φ)
    fd = pg.reference.central_difference_gradient(lambda t: pg.exact.objective(mdp, t, features=φ), θ, h=1e-5)
    assert np.allclose(g, fd, rtol=1e-5, atol=1e-7 / (1 - mdp.gamma))


def test_sympy_gradient_of_two_state_mdp():
    mdp = pg.envs.two_state_mdp(0.9)
    θ = np.array([[0.3, -0.2], [1.1, 0.4]])
    sym = pg.reference.symbolic_gradient(mdp, θ)
    assert pg.reference.relative_error(pg.exact.policy_gradient(mdp, θ), sym) < 1e-12


@FAST
@given(mdp_and_θ(gammas=[0.5, 0.9], episodic_gamma_one=False))
def test_visit_counts_sum_to_one_over_one_minus_gamma_without_termination(case):
    mdp, θ, φ = case
    η = pg.exact.visit_counts(mdp, θ, features=φ)
    assert np.all(η >= -1e-12)
    assert η.sum() == pytest.approx(1 / (1 - mdp.gamma), rel=1e-12)
    assert pg.exact.occupancy(mdp, θ, features=φ).sum() == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("gamma", [0.5, 0.9, 1.0])
@pytest.mark.parametrize("p_end", [0.1, 0.5])
def test_visit_counts_sum_to_expected_discounted_length_with_termination(gamma, p_end):
    # Each step ends the episode with probability p_end, whatever the policy, so
    # Pr(alive at t) = (1-p_end)^t and Σ η = Σ_t γ^t (1-p_end)^t = 1 / (1 - γ(1-p_end)).
    rng = np.random.default_rng(3)
    mdp = pg.envs.random_mdp(5, 3, gamma, rng, n_terminal=2, p_end=p_end)
    θ = rng.standard_normal((5, 3))
    total = pg.exact.visit_counts(mdp, θ).sum()
    assert total == pytest.approx(1 / (1 - gamma * (1 - p_end)), rel=1e-12)
    if gamma < 1:
        assert total < 1 / (1 - gamma)  # the source's Σ η = 1/(1-γ) fails here


@FAST
@given(mdp_and_θ())
def test_value_gradient_solves_recursion_4(case):
    mdp, θ, φ = case
    dV = pg.exact.value_gradient(mdp, θ, features=φ)
    Φ = pg.exact.phi(mdp, θ, features=φ)
    P_π = pg.exact.policy_matrix(mdp, θ, features=φ)
    rhs = Φ + mdp.gamma * np.tensordot(P_π, dV, axes=1)
    live = ~mdp.terminal
    assert np.allclose(dV[live], rhs[live], atol=1e-10 * (1 + np.abs(dV).max()))
    for s in range(mdp.n_states):  # and each ∇V(s) against complex step of V(s)
        cs = pg.reference.complex_step_gradient(lambda t: pg.exact.state_values(mdp, t, features=φ)[s], θ)
        assert np.allclose(dV[s], cs, atol=1e-10 * (1 + np.abs(cs).max()))


def test_gradient_is_sum_of_eta_times_phi(small_episodic):
    mdp, θ = small_episodic
    g = pg.exact.policy_gradient(mdp, θ)
    η, Φ = pg.exact.visit_counts(mdp, θ), pg.exact.phi(mdp, θ)
    np.testing.assert_allclose(g, np.tensordot(η, Φ, axes=1), atol=1e-14)


def test_k_step_is_matrix_power_and_stochastic(small_episodic):
    mdp, θ = small_episodic
    P_π = pg.exact.policy_matrix(mdp, θ)
    D = np.eye(mdp.n_states)
    for k in range(6):
        np.testing.assert_allclose(pg.exact.k_step(mdp, θ, k), D, atol=1e-15)
        np.testing.assert_allclose(D.sum(axis=1), 1.0, atol=1e-14)
        D = D @ P_π


def test_truncated_series_converges_geometrically_to_eta():
    rng = np.random.default_rng(5)
    mdp = pg.envs.random_mdp(5, 3, 0.8, rng)
    θ = rng.standard_normal((5, 3))
    η = pg.exact.visit_counts(mdp, θ)
    for K in (1, 5, 20, 60):
        gap = np.abs(pg.exact.truncated_visit_counts(mdp, θ, K) - η).sum()
        assert gap == pytest.approx(0.8**K / 0.2, rel=1e-9)  # the missing tail Σ_{k≥K} γ^k


@FAST
@given(mdp_and_θ(gammas=[0.9]))
def test_bellman_residuals_vanish(case):
    mdp, θ, φ = case
    ev = pg.exact.evaluate(mdp, θ, features=φ)
    np.testing.assert_allclose(ev.V, (ev.π * ev.Q).sum(axis=1), atol=1e-10 * (1 + np.abs(ev.V).max()))
    np.testing.assert_allclose((ev.π * ev.A).sum(axis=1), 0.0, atol=1e-10 * (1 + np.abs(ev.V).max()))


def test_one_hot_log_linear_equals_tabular():
    rng = np.random.default_rng(11)
    mdp = pg.envs.random_mdp(4, 3, 0.9, rng)
    θ = rng.standard_normal((4, 3))
    φ = pg.envs.one_hot_features(4, 3)
    np.testing.assert_allclose(pg.exact.policy_gradient(mdp, θ.ravel(), features=φ).reshape(4, 3),
                               pg.exact.policy_gradient(mdp, θ), atol=1e-14)


def test_aliased_states_share_parameters():
    # Two states with identical features get identical action probabilities.
    rng = np.random.default_rng(2)
    mdp = pg.envs.random_mdp(3, 2, 0.9, rng)
    φ = rng.standard_normal((3, 2, 2))
    φ[1] = φ[0]
    π = pg.softmax_policy(mdp, rng.standard_normal(2), features=φ).probs
    np.testing.assert_array_equal(π[0], π[1])
