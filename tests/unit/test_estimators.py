"""Estimators: exactly unbiased by enumeration, and within a confidence interval when sampled."""

import numpy as np
import pytest

import pgnotes as pg

from conftest import episodic_case


@pytest.fixture(scope="module")
def setting():
    mdp, θ, _ = episodic_case(21, 3, 0.8, 0.25)
    T = 5
    return dict(
        mdp=mdp, θ=θ, T=T,
        V=pg.finite.state_values(mdp, θ, horizon=T),
        Q=pg.finite.action_values(mdp, θ, horizon=T),
        g=pg.finite.policy_gradient(mdp, θ, horizon=T),
    )


def estimators(c):
    mdp, θ, V, Q = c["mdp"], c["θ"], c["V"], c["Q"]
    A = Q - V[:-1, :, None]
    rough = V + np.random.default_rng(0).standard_normal(V.shape)  # a wrong critic ...
    rough[-1] = 0.0  # ... that still knows V_T = 0: λ = 1 then never trusts it
    return {
        "R(τ) (eq. 2)": lambda b: pg.estimators.reinforce_total_return(mdp, θ, b),
        "G_t (boxed A)": lambda b: pg.estimators.reinforce(mdp, θ, b),
        "G_t - γ^t V": lambda b: pg.estimators.reinforce_baseline(mdp, θ, b, V),
        "G_t - γ^t b, wrong b": lambda b: pg.estimators.reinforce_baseline(mdp, θ, b, rough),
        "Q actor-critic": lambda b: pg.estimators.q_actor_critic(mdp, θ, b, Q),
        "A2C": lambda b: pg.estimators.advantage_actor_critic(mdp, θ, b, A),
        "TD error": lambda b: pg.estimators.td_actor_critic(mdp, θ, b, V),
        "GAE(0.5)": lambda b: pg.estimators.gae(mdp, θ, b, V, 0.5),
        "GAE(1), wrong V": lambda b: pg.estimators.gae(mdp, θ, b, rough, 1.0),
    }


def test_every_estimator_is_exactly_unbiased(setting):
    b = pg.enumerate_trajectories(setting["mdp"], setting["θ"], horizon=setting["T"])
    for name, f in estimators(setting).items():
        mean = pg.trajectories.expectation(b, f(b))
        assert np.allclose(mean, setting["g"], atol=1e-12), name


def test_dropping_gamma_t_is_biased_exactly(setting):
    b = pg.enumerate_trajectories(setting["mdp"], setting["θ"], horizon=setting["T"])
    mean = pg.trajectories.expectation(b, pg.estimators.reinforce_no_gamma_t(setting["mdp"], setting["θ"], b))
    assert pg.reference.relative_error(mean, setting["g"]) > 0.05


def test_monte_carlo_means_lie_in_their_confidence_intervals(setting):
    # 99.9% two-sided intervals (z = 3.29) per coordinate, Bonferroni over ≤ 6 coordinates
    # and 9 estimators is about z = 4.2; we use z = 4.5 at a fixed seed.
    Z = 4.5
    b = pg.sample(setting["mdp"], setting["θ"], n=200_000, horizon=setting["T"], rng=np.random.default_rng(1234))
    live = ~setting["mdp"].terminal  # the terminal state's parameters have zero gradient
    for name, f in estimators(setting).items():
        mean, se = pg.estimators.mean_and_stderr(f(b))
        z = np.abs(mean - setting["g"])[live] / se[live]
        assert z.max() < Z, (name, z.max())
    mean, se = pg.estimators.mean_and_stderr(pg.estimators.reinforce_no_gamma_t(setting["mdp"], setting["θ"], b))
    z = np.abs(mean - setting["g"])[live] / se[live]
    assert z.max() > 2 * Z, z.max()  # the "no γ^t" variant lies far outside


def test_returns_to_go_by_explicit_sums():
    rng = np.random.default_rng(0)
    mdp = pg.envs.random_mdp(3, 2, 0.7, rng)
    b = pg.sample(mdp, np.zeros((3, 2)), n=4, horizon=6, rng=rng)
    γ, r = 0.7, b.rewards
    G0 = np.array([[sum(γ**k * r[i, k] for k in range(t, 6)) for t in range(6)] for i in range(4)])
    Gt = np.array([[sum(γ ** (k - t) * r[i, k] for k in range(t, 6)) for t in range(6)] for i in range(4)])
    np.testing.assert_allclose(pg.estimators.returns_to_go(b), G0, atol=1e-14)
    np.testing.assert_allclose(pg.estimators.returns_to_go(b, from_time_zero=False), Gt, atol=1e-14)
    past = np.array([[sum(γ**k * r[i, k] for k in range(t)) for t in range(6)] for i in range(4)])
    np.testing.assert_allclose(pg.estimators.past_returns(b), past, atol=1e-14)


def test_gae_limits():
    rng = np.random.default_rng(8)
    mdp = pg.envs.random_mdp(4, 2, 0.9, rng, n_terminal=1)
    b = pg.sample(mdp, rng.standard_normal((4, 2)), n=50, horizon=8, rng=rng)
    V = rng.standard_normal(4)
    δ = pg.estimators.td_errors(mdp, b, V)
    np.testing.assert_allclose(pg.estimators.gae_advantages(mdp, b, V, 0.0), δ)
    # λ = 1: Σ_{k≥t} γ^{k-t} r_k - V(s_t) + γ^{T-t} V(s_T) (the bootstrapped tail), V(terminal) = 0.
    Vz = np.where(mdp.terminal, 0.0, V)
    tail = (0.9 ** (8 - np.arange(8)))[None] * Vz[b.next_states[:, -1]][:, None]
    expect = pg.estimators.returns_to_go(b, from_time_zero=False) - Vz[b.states] + tail
    np.testing.assert_allclose(pg.estimators.gae_advantages(mdp, b, V, 1.0)[b.mask], expect[b.mask], atol=1e-12)
    with pytest.raises(ValueError, match="λ"):
        pg.estimators.gae_advantages(mdp, b, V, 1.5)


def test_estimators_refuse_malformed_tables(setting):
    b = pg.sample(setting["mdp"], setting["θ"], n=3, horizon=setting["T"], rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="time-indexed Q"):
        pg.estimators.q_actor_critic(setting["mdp"], setting["θ"], b, setting["Q"][:2])
    with pytest.raises(ValueError, match="NaN"):
        pg.estimators.td_actor_critic(setting["mdp"], setting["θ"], b, np.full(3, np.nan))
    with pytest.raises(ValueError, match="weights must have shape"):
        pg.estimators.score_sum(setting["mdp"], setting["θ"], b, np.ones((2, 2)))
    with pytest.raises(TypeError, match="Batch"):
        pg.estimators.reinforce(setting["mdp"], setting["θ"], "batch")


def test_discount_cumsum_against_the_explicit_double_sum_and_per_step_discounts():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 6))
    for c in (0.0, 0.37, 1.0):
        explicit = np.array([[sum(c ** (k - t) * x[i, k] for k in range(t, 6)) for t in range(6)] for i in range(3)])
        np.testing.assert_allclose(pg.estimators.discount_cumsum(x, c), explicit, atol=1e-13)
    # a per-step c_t = 0 cuts the sum: two independent episodes written in one row
    cut = np.array([0.5, 0.5, 0.0, 0.5, 0.5, 0.5])
    y = pg.estimators.discount_cumsum(x, cut)
    np.testing.assert_allclose(y[:, :3], pg.estimators.discount_cumsum(x[:, :3], 0.5), atol=1e-14)
    np.testing.assert_allclose(y[:, 3:], pg.estimators.discount_cumsum(x[:, 3:], 0.5), atol=1e-14)
    with pytest.raises(TypeError):
        pg.estimators.discount_cumsum(x.astype(complex), 0.5)
    with pytest.raises(ValueError):
        pg.estimators.discount_cumsum(1.0, 0.5)


def test_mean_and_stderr_against_the_textbook_formulas():
    from scipy import stats

    X = np.random.default_rng(2).standard_normal((50, 3, 2))
    mean, se = pg.estimators.mean_and_stderr(X)
    np.testing.assert_allclose(mean, X.mean(axis=0), atol=1e-15)
    np.testing.assert_allclose(se, stats.sem(X, axis=0, ddof=1), rtol=1e-12)
    with pytest.raises(ValueError, match="two samples"):
        pg.estimators.mean_and_stderr(X[:1])
