"""Converting A into B: the conditional expectation E[X_t | s_t, a_t] over an enumeration."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import pgnotes as pg
from conftest import mdp_and_θ

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _horizon(mdp, T_max=4):
    return min(T_max, 1 + int(np.log(20_000) / np.log(1 + mdp.n_states * mdp.n_actions)))


def test_conditional_expectation_matches_a_direct_loop(small_episodic):
    mdp, θ = small_episodic
    b = pg.enumerate_trajectories(mdp, θ, horizon=3)
    X = pg.estimators.returns_to_go(b)
    E, prob = pg.trajectories.conditional_expectation(mdp, b, X)
    num, den = {}, {}
    for i in range(b.n):
        for t in range(b.horizon):
            if not b.mask[i, t]:
                continue
            k = (t, int(b.states[i, t]), int(b.actions[i, t]))
            num[k] = num.get(k, 0.0) + b.prob[i] * X[i, t]
            den[k] = den.get(k, 0.0) + b.prob[i]
    assert len(den) == int((prob > 0).sum())
    for k, d in den.items():
        assert prob[k] == pytest.approx(d, rel=1e-12)
        assert E[k] == pytest.approx(num[k] / d, rel=1e-12, abs=1e-14)
    assert np.isnan(E[prob == 0]).all()


@FAST
@given(mdp_and_θ(log_linear=False))
def test_expected_return_to_go_is_discounted_time_indexed_Q(case):
    # E[G_t | s_t, a_t] = γ^t Q_t(s_t, a_t), and Pr(s_t, a_t) = μ_t(s) π(a|s) on running steps.
    mdp, θ, _ = case
    T = _horizon(mdp)
    b = pg.enumerate_trajectories(mdp, θ, horizon=T)
    Q = pg.finite.action_values(mdp, θ, horizon=T)
    μ = pg.finite.state_distributions(mdp, θ, horizon=T)
    π = pg.softmax_policy(mdp, θ).probs
    E, prob = pg.trajectories.conditional_expectation(mdp, b, pg.estimators.returns_to_go(b))
    E_from_t, _ = pg.trajectories.conditional_expectation(mdp, b, pg.estimators.returns_to_go(b, from_time_zero=False))
    expected_prob = μ[:, :, None] * π[None] * (~mdp.terminal)[None, :, None]
    np.testing.assert_allclose(prob, expected_prob, atol=1e-12)
    seen = prob > 0
    disc = (mdp.gamma ** np.arange(T))[:, None, None] * np.ones_like(Q)
    scale = 1 + np.abs(Q).max()
    np.testing.assert_allclose(E[seen], (disc * Q)[seen], atol=1e-11 * scale)
    np.testing.assert_allclose(E_from_t[seen], Q[seen], atol=1e-11 * scale)


def test_conditional_expectation_rejects_bad_input(small_episodic):
    mdp, θ = small_episodic
    b = pg.enumerate_trajectories(mdp, θ, horizon=2)
    with pytest.raises(ValueError, match="shape"):
        pg.trajectories.conditional_expectation(mdp, b, np.zeros((b.n, 3)))
    s = pg.sample(mdp, θ, n=4, horizon=2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="enumerated"):
        pg.trajectories.conditional_expectation(mdp, s, np.zeros((4, 2)))
