"""Helpers added for derivation B: exact moments of the single-sample score-function estimator."""

import numpy as np
import pytest

import pgnotes as pg


def _brute_force(mdp, θ, W, features=None):
    """Mean and total variance by listing every (s, a) pair with its probability and score."""
    d_γ = pg.exact.occupancy(mdp, θ, features=features)
    pol = pg.softmax_policy(mdp, θ, features=features)
    draws, probs = [], []
    for s in range(mdp.n_states):
        for a in range(mdp.n_actions):
            draws.append(W[s, a] * pol.score(np.array(s), np.array(a)).ravel())
            probs.append(d_γ[s] * pol.probs[s, a])
    X, p = np.array(draws), np.array(probs)
    m = p @ X
    v = float(p @ ((X - m) ** 2).sum(axis=1))
    return m, v


@pytest.mark.parametrize("log_linear", [False, True])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.9])
def test_score_function_moments_against_brute_force(log_linear, gamma):
    rng = np.random.default_rng(17)
    mdp = pg.envs.random_mdp(4, 3, gamma, rng)
    φ = pg.envs.random_features(4, 3, 5, rng) if log_linear else None
    θ = rng.standard_normal(5) if log_linear else rng.standard_normal((4, 3))
    ev = pg.exact.evaluate(mdp, θ, features=φ)
    for W in (ev.Q, ev.A, rng.standard_normal((4, 3))):
        m, v = pg.exact.score_function_moments(mdp, θ, W, features=φ)
        m_ref, v_ref = _brute_force(mdp, θ, W, φ)
        assert m.shape == θ.shape
        np.testing.assert_allclose(m.ravel(), m_ref, atol=1e-12)
        assert v == pytest.approx(v_ref, rel=1e-10, abs=1e-12)


def test_score_function_moments_mean_is_scaled_gradient_and_matches_monte_carlo():
    rng = np.random.default_rng(23)
    mdp = pg.envs.random_mdp(5, 3, 0.8, rng)
    θ = rng.standard_normal((5, 3))
    ev = pg.exact.evaluate(mdp, θ)
    m_Q, v_Q = pg.exact.score_function_moments(mdp, θ, ev.Q)
    m_A, v_A = pg.exact.score_function_moments(mdp, θ, ev.A)
    g = pg.exact.policy_gradient(mdp, θ)
    np.testing.assert_allclose(m_Q, (1 - mdp.gamma) * g, atol=1e-12)
    np.testing.assert_allclose(m_A, m_Q, atol=1e-12)
    # Monte Carlo: s ~ d^γ, a ~ π(·|s), one draw each.
    n = 200_000
    d_γ = pg.exact.occupancy(mdp, θ)
    s = rng.choice(mdp.n_states, size=n, p=d_γ)
    a = (rng.random(n)[:, None] > np.cumsum(ev.π[s], axis=1)).sum(axis=1)
    score = ev.policy.score(s, a).reshape(n, -1)
    for W, v in ((ev.Q, v_Q), (ev.A, v_A)):
        X = W[s, a][:, None] * score
        v_mc = X.var(axis=0, ddof=1).sum()
        assert v_mc == pytest.approx(v, rel=0.03)


def test_score_function_moments_refuses_episodic_and_bad_weights(small_episodic):
    mdp, θ = small_episodic
    with pytest.raises(ValueError, match="terminal"):
        pg.exact.score_function_moments(mdp, θ, np.zeros((4, 2)))
    rng = np.random.default_rng(1)
    cont = pg.envs.random_mdp(3, 2, 0.9, rng)
    θ = rng.standard_normal((3, 2))
    with pytest.raises(ValueError, match="shape"):
        pg.exact.score_function_moments(cont, θ, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        pg.exact.score_function_moments(cont, θ, np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="real"):
        pg.exact.score_function_moments(cont, θ + 0j, np.zeros((3, 2)))
