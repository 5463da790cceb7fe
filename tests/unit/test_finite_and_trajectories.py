"""Finite-horizon exact quantities (derivation A) against enumeration and complex step."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import pgnotes as pg
from conftest import mdp_and_θ

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def small(case, T_max=4):
    mdp, θ, φ = case
    T = min(T_max, 1 + int(np.log(20_000) / np.log(1 + mdp.n_states * mdp.n_actions)))
    return mdp, θ, φ, T


@FAST
@given(mdp_and_θ())
def test_enumeration_is_a_distribution_and_gives_J_T(case):
    mdp, θ, φ, T = small(case)
    b = pg.enumerate_trajectories(mdp, θ, horizon=T, features=φ)
    assert b.prob.sum() == pytest.approx(1.0, abs=1e-12)
    J_T = pg.trajectories.expectation(b, pg.estimators.total_return(b))
    assert J_T == pytest.approx(pg.finite.objective(mdp, θ, horizon=T, features=φ), abs=1e-12 * (1 + abs(J_T)))


@FAST
@given(mdp_and_θ())
def test_finite_gradient_matches_enumeration_and_complex_step(case):
    mdp, θ, φ, T = small(case)
    g = pg.finite.policy_gradient(mdp, θ, horizon=T, features=φ)
    b = pg.enumerate_trajectories(mdp, θ, horizon=T, features=φ)
    by_enum = pg.trajectories.expectation(b, pg.estimators.reinforce(mdp, θ, b, features=φ))
    cs = pg.reference.complex_step_gradient(lambda t: pg.finite.objective(mdp, t, horizon=T, features=φ), θ)
    tol = 1e-11 * (1 + np.abs(cs).max())
    assert np.allclose(g, cs, atol=tol)
    assert np.allclose(by_enum, cs, atol=tol)


def test_finite_horizon_tends_to_infinite_horizon():
    rng = np.random.default_rng(4)
    mdp = pg.envs.random_mdp(4, 2, 0.7, rng)
    θ = rng.standard_normal((4, 2))
    g = pg.exact.policy_gradient(mdp, θ)
    gaps = [np.abs(pg.finite.policy_gradient(mdp, θ, horizon=T) - g).max() for T in (10, 20, 40)]
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 1e-4
    np.testing.assert_allclose(pg.finite.visit_counts(mdp, θ, horizon=30), pg.exact.truncated_visit_counts(mdp, θ, 30))


def test_log_probability_score_is_policy_score_only(small_episodic):
    # ∇ log P(τ) = Σ_t ∇ log π(a_t|s_t): ρ0 and P drop out (derivation A).
    mdp, θ = small_episodic
    b = pg.enumerate_trajectories(mdp, θ, horizon=3)
    for i in range(0, b.n, max(1, b.n // 25)):
        one = pg.Batch(*(x[i:i + 1] for x in (b.states, b.actions, b.rewards, b.next_states, b.mask)), b.gamma)
        full = pg.reference.complex_step_gradient(lambda t: pg.trajectories.log_probability(mdp, t, one)[0], θ)
        policy_only = pg.reference.complex_step_gradient(
            lambda t: pg.trajectories.log_probability(mdp, t, one, include_env=False)[0], θ)
        score = pg.estimators.score_sum(mdp, θ, one, np.ones((1, 3)))[0]
        np.testing.assert_allclose(full, score, atol=1e-13)
        np.testing.assert_allclose(policy_only, score, atol=1e-13)
    logp = pg.trajectories.log_probability(mdp, θ, b)
    np.testing.assert_allclose(np.exp(logp), b.prob, rtol=1e-12)


def test_exact_variance_matches_direct_formula(small_episodic):
    mdp, θ = small_episodic
    b = pg.enumerate_trajectories(mdp, θ, horizon=3)
    X = pg.estimators.reinforce(mdp, θ, b)
    m = pg.trajectories.expectation(b, X)
    direct = sum(p * np.sum((x - m) ** 2) for p, x in zip(b.prob, X))
    assert pg.trajectories.variance(b, X) == pytest.approx(direct, rel=1e-12)
    np.testing.assert_allclose(pg.trajectories.variance(b, X, total=False).sum(), direct, rtol=1e-12)
    with pytest.raises(ValueError, match="enumerated"):
        pg.trajectories.variance(pg.sample(mdp, θ, n=5, horizon=3, rng=np.random.default_rng(0)), X[:5])
