"""GAE(λ) chapter: exact bias/variance of the GAE estimator, and the chain MDP."""

import numpy as np
import pytest

import pgnotes as pg

from conftest import episodic_case


@pytest.fixture(scope="module")
def setting():
    mdp, θ, rng = episodic_case(5, 4, 0.9, 0.2)
    T = 4
    V = pg.finite.state_values(mdp, θ, horizon=T)
    ε = 0.5 * rng.standard_normal(V.shape)
    ε[-1] = 0.0
    return dict(mdp=mdp, θ=θ, T=T, V=V, noisy=V + ε)


def test_gae_bias_variance_against_monte_carlo(setting):
    mdp, θ, T = setting["mdp"], setting["θ"], setting["T"]
    lambdas = [0.0, 0.6, 1.0]
    g = pg.finite.policy_gradient(mdp, θ, horizon=T)
    b = pg.sample(mdp, θ, n=400_000, horizon=T, rng=np.random.default_rng(77))
    live = ~mdp.terminal  # the terminal state's parameters have zero gradient
    for V in (setting["V"], setting["noisy"], np.zeros_like(setting["V"])):
        bias, var = pg.estimators.gae_bias_variance(mdp, θ, V, lambdas, horizon=T)
        assert bias.shape == (3,) + θ.shape and var.shape == (3,)
        for i, λ in enumerate(lambdas):
            X = pg.estimators.gae(mdp, θ, b, V, λ)
            mean, se = pg.estimators.mean_and_stderr(X)
            z = np.abs(mean - g - bias[i])[live] / se[live]
            assert z.max() < 4.5, (λ, z.max())
            mc_var = float(X.var(axis=0, ddof=1).sum())
            assert abs(mc_var - var[i]) < 0.03 * var[i], (λ, mc_var, var[i])


def test_gae_bias_zero_for_exact_critic_and_at_lambda_one(setting):
    mdp, θ, T = setting["mdp"], setting["θ"], setting["T"]
    lambdas = np.linspace(0, 1, 6)
    bias, _ = pg.estimators.gae_bias_variance(mdp, θ, setting["V"], lambdas, horizon=T)
    assert np.abs(bias).max() < 1e-12
    bias, _ = pg.estimators.gae_bias_variance(mdp, θ, setting["noisy"], lambdas, horizon=T)
    assert np.abs(bias[-1]).max() < 1e-12 and np.linalg.norm(bias[0]) > 1e-3
    # A critic that bootstraps a tail V(s_T) that depends on s_T is biased even at λ = 1.
    tail = setting["noisy"].copy()
    tail[-1] = [1.0, -1.0, 2.0, 0.0]
    bias, _ = pg.estimators.gae_bias_variance(mdp, θ, tail, [1.0], horizon=T)
    assert np.linalg.norm(bias[0]) > 1e-3


def test_gae_bias_variance_refuses_bad_lambdas(setting):
    with pytest.raises(ValueError, match="λ"):
        pg.estimators.gae_bias_variance(setting["mdp"], setting["θ"], setting["V"], [0.5, 2.0], horizon=setting["T"])
    with pytest.raises(ValueError, match="lambdas"):
        pg.estimators.gae_bias_variance(setting["mdp"], setting["θ"], setting["V"], [[0.5]], horizon=setting["T"])


def test_chain_structure_and_return():
    mdp = pg.envs.chain(6, reward=2.5, gamma=1.0)
    assert (mdp.n_states, mdp.n_actions) == (7, 1)
    assert mdp.terminal.tolist() == [False] * 6 + [True]
    b = pg.sample(mdp, np.zeros((7, 1)), n=3, horizon=8, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(b.states[0], [0, 1, 2, 3, 4, 5, 6, 6])
    np.testing.assert_array_equal(b.rewards[0], [0, 0, 0, 0, 0, 2.5, 0, 0])
    np.testing.assert_array_equal(b.mask[0], [True] * 6 + [False] * 2)
    # The exact values: with γ = 1 every live state is worth the final reward.
    V = pg.finite.state_values(mdp, np.zeros((7, 1)), horizon=6)
    np.testing.assert_allclose(V[0, 0], 2.5)
    np.testing.assert_allclose(pg.exact.state_values(mdp, np.zeros((7, 1)))[:6], 2.5)
    with pytest.raises(ValueError):
        pg.envs.chain(0)


def test_chain_gae_advantage_decays_as_lambda_power():
    n, r, λ, γ = 50, 3.0, 0.9, 0.97
    mdp = pg.envs.chain(n, reward=r, gamma=γ)
    b = pg.sample(mdp, np.zeros((n + 1, 1)), n=1, horizon=n, rng=np.random.default_rng(0))
    Â = pg.estimators.gae_advantages(mdp, b, np.zeros(n + 1), λ)[0]
    k = n - 1 - np.arange(n)  # distance from the last step
    np.testing.assert_allclose(Â, (γ * λ) ** k * r, rtol=1e-12)
