"""The dropped discount: the exact expectation of the "no γ^t" update (book/04_dropped_discount)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pgnotes as pg

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _forward_dag(S, A, gamma, rng):
    """A random episodic MDP whose transitions only move forward: every episode has ended
    after at most S - 1 steps, so enumerating S - 1 steps lists whole episodes."""
    P = np.zeros((S, A, S))
    for s in range(S - 1):
        for a in range(A):
            P[s, a, s + 1:] = rng.dirichlet(np.ones(S - 1 - s))
    P[S - 1, :, S - 1] = 1.0
    R = np.zeros((S, A))
    R[: S - 1] = rng.standard_normal((S - 1, A))
    rho0 = np.zeros(S)
    rho0[: S - 1] = rng.dirichlet(np.ones(S - 1))
    return pg.TabularMDP(P, R, rho0, gamma)


@FAST
@given(
    seed=st.integers(0, 2**32 - 1),
    S=st.integers(2, 5),
    A=st.integers(1, 3),
    gamma=st.sampled_from([0.0, 0.3, 0.9, 1.0]),
    log_linear=st.booleans(),
)
def test_matches_exact_enumeration_of_whole_episodes(seed, S, A, gamma, log_linear):
    # E[Σ_t (Σ_{k≥t} γ^{k-t} r_k) ∇log π(a_t|s_t)] over every episode, with its probability.
    rng = np.random.default_rng(seed)
    mdp = _forward_dag(S, A, gamma, rng)
    if log_linear:
        φ = pg.envs.random_features(S, A, 3, rng)
        θ = rng.standard_normal(3)
    else:
        φ, θ = None, rng.standard_normal((S, A))
    b = pg.enumerate_trajectories(mdp, θ, horizon=S - 1, features=φ)
    assert mdp.terminal[b.next_states[:, -1]].all()  # every episode has ended
    enum = pg.trajectories.expectation(b, pg.estimators.reinforce_no_gamma_t(mdp, θ, b, features=φ))
    u = pg.exact.undiscounted_update(mdp, θ, features=φ)
    np.testing.assert_allclose(u, enum, atol=1e-12 * (1 + np.abs(enum).max()))


def test_matches_monte_carlo_on_a_cyclic_episodic_mdp():
    rng = np.random.default_rng(11)
    mdp = pg.envs.random_mdp(4, 2, 0.8, rng, n_terminal=1, p_end=0.3)
    θ = rng.standard_normal((4, 2))
    b = pg.sample(mdp, θ, n=100_000, horizon=70, rng=rng)
    assert not b.mask[:, -1].any()  # 0.7^70: no episode is cut
    mean, se = pg.estimators.mean_and_stderr(pg.estimators.reinforce_no_gamma_t(mdp, θ, b))
    u = pg.exact.undiscounted_update(mdp, θ)
    live = se > 0
    assert np.all(np.abs(mean - u)[live] < 5 * se[live])
    # ... and the true gradient is rejected by the same test
    g = pg.exact.policy_gradient(mdp, θ)
    assert np.any(np.abs(mean - g)[live] > 5 * se[live])


@FAST
@given(seed=st.integers(0, 2**32 - 1), S=st.integers(2, 6), A=st.integers(1, 3))
def test_tabular_update_is_the_gradient_rescaled_per_state(seed, S, A):
    # u_s = (η_1(s) / η_γ(s)) ∇_{θ_s} J: the same direction in every state.
    rng = np.random.default_rng(seed)
    mdp = pg.envs.random_mdp(S, A, 0.7, rng, n_terminal=1)
    θ = rng.standard_normal((S, A))
    u = pg.exact.undiscounted_update(mdp, θ)
    g = pg.exact.policy_gradient(mdp, θ)
    η_γ = pg.exact.visit_counts(mdp, θ)
    η_1 = pg.exact.visit_counts(mdp.with_gamma(1.0), θ)
    ratio = np.where(η_γ > 0, η_1 / np.where(η_γ > 0, η_γ, 1.0), 0.0)
    np.testing.assert_allclose(u, ratio[:, None] * g, atol=1e-12 * (1 + np.abs(u).max()))
    assert np.sum(u * g) >= 0


@FAST
@given(seed=st.integers(0, 2**32 - 1), log_linear=st.booleans())
def test_gamma_one_gives_the_true_gradient(seed, log_linear):
    rng = np.random.default_rng(seed)
    mdp = pg.envs.random_mdp(5, 3, 1.0, rng, n_terminal=1)
    φ = pg.envs.random_features(5, 3, 4, rng) if log_linear else None
    θ = rng.standard_normal(4) if log_linear else rng.standard_normal((5, 3))
    g = pg.exact.policy_gradient(mdp, θ, features=φ)
    np.testing.assert_allclose(pg.exact.undiscounted_update(mdp, θ, features=φ), g, atol=1e-13)


def test_complex_step_jacobian_agrees_with_central_differences():
    rng = np.random.default_rng(4)
    mdp = pg.envs.random_mdp(5, 3, 0.8, rng, n_terminal=1)
    φ = pg.envs.random_features(5, 3, 3, rng)
    θ = rng.standard_normal(3)
    f = lambda z: pg.exact.undiscounted_update(mdp, z, features=φ)  # noqa: E731
    J_cs = pg.reference.complex_step_jacobian(f, θ)
    J_fd = np.stack([pg.reference.central_difference_gradient(lambda z: f(z)[i], θ) for i in range(3)])
    np.testing.assert_allclose(J_cs, J_fd, atol=1e-7)
    assert np.abs(J_cs - J_cs.T).max() > 1e-4  # not symmetric: not a gradient field
    H = pg.reference.complex_step_jacobian(lambda z: pg.exact.policy_gradient(mdp, z, features=φ), θ)
    assert np.abs(H - H.T).max() < 1e-12 * (1 + np.abs(H).max())


def test_rejects_continuing_mdps_and_policies_that_never_end():
    rng = np.random.default_rng(0)
    continuing = pg.envs.random_mdp(3, 2, 0.9, rng)
    with pytest.raises(ValueError, match="no terminal state"):
        pg.exact.undiscounted_update(continuing, np.zeros((3, 2)))
    corridor = pg.envs.short_corridor(0.9)
    φ = np.tile(np.eye(2)[::-1], (4, 1, 1))  # φ(s, right) = e_0, φ(s, left) = e_1
    with pytest.raises(ValueError, match=r"2 state\(s\) \(0, 1\) never reach a terminal state"):
        pg.exact.undiscounted_update(corridor, np.array([1000.0, 0.0]), features=φ)  # always right
    with pytest.raises(ValueError, match="never reach a terminal state"):
        pg.exact.undiscounted_update(corridor.with_gamma(1.0), np.array([0.0, 1000.0]), features=φ)
    assert np.all(np.isfinite(pg.exact.undiscounted_update(corridor, np.zeros(2), features=φ)))
