"""exact.action_values, exact.advantages and exact.on_policy_distribution against independent routes.

These were checked only through the notebooks (nbval). Here each is compared with a route that
shares no code with :mod:`pgnotes.exact`'s LU solve: the finite-horizon backward and forward
recursions of :mod:`pgnotes.finite` at a long horizon (the tail is below ``γ^T`` or the
probability of still running at ``T``), and Monte Carlo visit counts from the sampler.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import pgnotes as pg

from conftest import mdp_and_θ

T_LONG = 600  # the tail: 0.9^600 ≈ 1e-27 (γ ≤ 0.9), or the chance of still running at T (γ = 1)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mdp_and_θ(gammas=[0.0, 0.5, 0.9]))
def test_action_values_and_advantages_are_the_long_horizon_limit_of_the_backward_recursion(case):
    mdp, θ, φ = case
    if mdp.gamma == 1.0 and not _ends_quickly(mdp, θ, φ):
        return
    Q_T = pg.finite.action_values(mdp, θ, horizon=T_LONG, features=φ)[0]
    V_T = pg.finite.state_values(mdp, θ, horizon=T_LONG, features=φ)[0]
    live = ~mdp.terminal
    Q, A = pg.exact.action_values(mdp, θ, features=φ), pg.exact.advantages(mdp, θ, features=φ)
    scale = 1 + np.abs(Q_T).max()
    np.testing.assert_allclose(Q[live], Q_T[live], atol=1e-8 * scale)
    np.testing.assert_allclose(A[live], (Q_T - V_T[:, None])[live], atol=1e-8 * scale)
    # identity: the advantage has mean zero under π in every state
    π = pg.softmax_policy(mdp, θ, features=φ).probs
    np.testing.assert_allclose((π * A).sum(axis=1)[live], 0.0, atol=1e-10 * scale)


def _ends_quickly(mdp, θ, φ) -> bool:
    """Whether the chance of still running after T_LONG steps is negligible (episodic γ = 1)."""
    μ = pg.finite.state_distributions(mdp, θ, horizon=T_LONG, features=φ)[-1]
    return float(μ[~mdp.terminal].sum()) < 1e-12


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mdp_and_θ(gammas=[0.5, 0.9]))
def test_on_policy_distribution_is_normalised_long_horizon_visit_counts(case):
    mdp, θ, φ = case
    if mdp.gamma == 1.0 and not _ends_quickly(mdp, θ, φ):
        return
    η_T = pg.finite.visit_counts(mdp, θ, horizon=T_LONG, features=φ)
    μ = pg.exact.on_policy_distribution(mdp, θ, features=φ)
    assert μ.shape == (mdp.n_states,) and abs(μ.sum() - 1) < 1e-12
    assert np.all(μ[mdp.terminal] == 0)
    np.testing.assert_allclose(μ, η_T / η_T.sum(), atol=1e-9)


def test_on_policy_distribution_at_gamma_one_matches_sampled_visit_frequencies():
    """Sutton & Barto §9.2: on an episodic task, μ(s) is the fraction of time steps spent in s."""
    rng = np.random.default_rng(11)
    mdp = pg.envs.random_mdp(5, 2, 1.0, rng, n_terminal=1, p_end=0.3)
    θ = rng.standard_normal((5, 2))
    μ = pg.exact.on_policy_distribution(mdp, θ)
    b = pg.sample(mdp, θ, n=40_000, horizon=80, rng=rng)
    assert not b.mask[:, -1].any()  # every sampled episode has ended: nothing is cut off
    # per-episode visit counts c_i(s) and lengths L_i; μ̂ = Σ c_i / Σ L_i, a ratio estimator whose
    # standard error comes from the per-episode residuals c_i - μ̂ L_i (episodes are independent)
    c = np.stack([((b.states == s) & b.mask).sum(axis=1) for s in range(mdp.n_states)], axis=1)
    L = c.sum(axis=1)
    μ_hat = c.sum(axis=0) / L.sum()
    se = (c - μ_hat * L[:, None]).std(axis=0, ddof=1) / (np.sqrt(b.n) * L.mean())
    assert np.all(np.abs(μ_hat - μ) <= 5 * se + 1e-15), (μ_hat, μ, se)
    assert se.max() < 0.005  # the check has power: a 2 % error in any μ(s) would fail it
