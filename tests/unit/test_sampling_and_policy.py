"""The sampler's law against exact state-action distributions; the policy score."""

import numpy as np
import pytest

import pgnotes as pg


def test_sampler_frequencies_match_exact_distributions():
    rng = np.random.default_rng(9)
    mdp = pg.envs.random_mdp(5, 3, 0.9, rng, n_terminal=1, branching=3)
    θ = rng.standard_normal((5, 3))
    T, n = 6, 200_000
    b = pg.sample(mdp, θ, n=n, horizon=T, rng=np.random.default_rng(10))
    μ = pg.finite.state_distributions(mdp, θ, horizon=T)
    π = pg.softmax_policy(mdp, θ).probs
    for t in range(T):
        live = b.mask[:, t]
        counts = np.zeros((5, 3))
        np.add.at(counts, (b.states[live, t], b.actions[live, t]), 1)
        p = μ[t][:, None] * π * (~mdp.terminal)[:, None]
        se = np.sqrt(p * (1 - p) / n)
        assert np.all(np.abs(counts / n - p) < 5 * se + 1e-12), t
        # next states follow P(·|s,a)
        assert np.all(b.next_states[:, t] == (b.states[:, t + 1] if t + 1 < T else b.next_states[:, t]))


def test_sampler_is_reproducible_and_terminal_steps_are_masked(small_episodic):
    mdp, θ = small_episodic
    b1 = pg.sample(mdp, θ, n=1000, horizon=12, rng=np.random.default_rng(5))
    b2 = pg.sample(mdp, θ, n=1000, horizon=12, rng=np.random.default_rng(5))
    for x, y in zip((b1.states, b1.actions, b1.rewards), (b2.states, b2.actions, b2.rewards)):
        np.testing.assert_array_equal(x, y)
    assert np.all(mdp.terminal[b1.states] == ~b1.mask)
    assert np.all(b1.rewards[~b1.mask] == 0)
    assert np.all(np.diff(b1.mask.astype(int), axis=1) <= 0)  # once ended, stays ended
    assert b1.mask[:, 0].all() and not b1.mask[:, -1].all()


def test_sampler_handles_deterministic_and_dense_rows():
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[1, 0, 0] = P[1, 1, 1] = 1.0
    mdp = pg.TabularMDP(P, np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([1.0, 0.0]), 0.9)
    θ = np.array([[-50.0, 50.0], [50.0, -50.0]])  # always switch
    b = pg.sample(mdp, θ, n=10, horizon=5, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(b.states[0], [0, 1, 0, 1, 0])
    assert np.all(b.rewards == 1.0)


def test_tabular_score_matches_complex_step():
    rng = np.random.default_rng(1)
    mdp = pg.envs.random_mdp(3, 4, 0.9, rng)
    θ = rng.standard_normal((3, 4))
    π_θ = pg.softmax_policy(mdp, θ)
    for s in range(3):
        for a in range(4):
            cs = pg.reference.complex_step_gradient(lambda t: np.log(pg.softmax_policy(mdp, t).probs[s, a]), θ)
            np.testing.assert_allclose(π_θ.score(s, a), cs, atol=1e-14)


def test_log_linear_score_matches_complex_step_and_score_sum_matches_loop():
    rng = np.random.default_rng(2)
    mdp = pg.envs.random_mdp(3, 2, 0.9, rng)
    φ = rng.standard_normal((3, 2, 4))
    w = rng.standard_normal(4)
    π_θ = pg.softmax_policy(mdp, w, features=φ)
    for s in range(3):
        for a in range(2):
            cs = pg.reference.complex_step_gradient(lambda t: np.log(pg.softmax_policy(mdp, t, features=φ).probs[s, a]), w)
            np.testing.assert_allclose(π_θ.score(s, a), cs, atol=1e-14)
    states, actions = rng.integers(0, 3, (5, 7)), rng.integers(0, 2, (5, 7))
    weights = rng.standard_normal((5, 7))
    for pol in (π_θ, pg.softmax_policy(mdp, rng.standard_normal((3, 2)))):
        loop = np.array([sum(weights[i, t] * pol.score(states[i, t], actions[i, t]) for t in range(7)) for i in range(5)])
        np.testing.assert_allclose(pol.score_sum(states, actions, weights), loop, atol=1e-13)


def test_sampler_draws_from_the_generator_it_is_given(small_episodic):
    # Different seeds, and successive calls on one generator, give different trajectories;
    # the state frequencies of two independent batches agree only statistically.
    mdp, θ = small_episodic
    rng = np.random.default_rng(123)
    b1 = pg.sample(mdp, θ, n=2000, horizon=8, rng=rng)
    b2 = pg.sample(mdp, θ, n=2000, horizon=8, rng=rng)
    b3 = pg.sample(mdp, θ, n=2000, horizon=8, rng=np.random.default_rng(124))
    assert not np.array_equal(b1.actions, b2.actions)
    assert not np.array_equal(b1.actions, b3.actions)
    # Within one batch, consecutive steps use fresh draws: actions at t and t+1 are not equal
    # more often than independence allows.
    π = pg.softmax_policy(mdp, θ).probs
    live = b1.mask[:, 1:] & b1.mask[:, :-1]
    same = (b1.actions[:, 1:] == b1.actions[:, :-1])[live].mean()
    assert same < np.max(np.sum(π**2, axis=1)) + 0.1


def test_final_state_at_the_horizon_has_the_law_of_s_T():
    """``next_states[:, -1]`` is ``s_T``, the state a critic bootstraps from: its law is ``μ_T``.

    Independent value: ``μ_T = ρ0 P_π^T`` by the forward recursion of pgnotes.finite (one step
    longer than the batch). Checked exactly over the enumeration and within 5 standard errors
    for the sampler, whose consecutive columns must also chain (``next_states[:, t] = states[:, t+1]``).
    """
    rng = np.random.default_rng(21)
    mdp = pg.envs.random_mdp(5, 3, 0.9, rng, n_terminal=1, p_end=0.1)
    θ = rng.standard_normal((5, 3))
    T = 4
    μ_T = pg.finite.state_distributions(mdp, θ, horizon=T + 1)[T]
    e = pg.enumerate_trajectories(mdp, θ, horizon=T)
    law = np.bincount(e.next_states[:, -1], weights=e.prob, minlength=mdp.n_states)
    np.testing.assert_allclose(law, μ_T, atol=1e-13)
    b = pg.sample(mdp, θ, n=200_000, horizon=T, rng=rng)
    np.testing.assert_array_equal(b.next_states[:, :-1], b.states[:, 1:])
    freq = np.bincount(b.next_states[:, -1], minlength=mdp.n_states) / b.n
    se = np.sqrt(μ_T * (1 - μ_T) / b.n)
    assert np.all(np.abs(freq - μ_T) <= 5 * se + 1e-12), (freq, μ_T)
    assert 0 < μ_T[mdp.terminal].sum() < 1  # both kinds of final state occur
    # a trajectory that has ended stays in its terminal state up to s_T
    ended = ~b.mask[:, -1]
    assert np.all(mdp.terminal[b.next_states[ended, -1]])
    assert np.all(b.next_states[ended, -1] == b.states[ended, -1])


@pytest.mark.parametrize("log_linear", [False, True])
def test_score_table_is_the_score_of_every_pair_and_contracts_like_score_contract(log_linear):
    rng = np.random.default_rng(4)
    mdp = pg.envs.random_mdp(4, 3, 0.9, rng)
    φ = pg.envs.random_features(4, 3, 5, rng) if log_linear else None
    θ = rng.standard_normal(5 if log_linear else (4, 3))
    pol = pg.softmax_policy(mdp, θ, features=φ)
    table = pol.score_table()
    assert table.shape == (4, 3) + θ.shape
    for s, a in [(0, 0), (3, 2), (2, 1)]:
        np.testing.assert_array_equal(table[s, a], pol.score(np.array(s), np.array(a)))
    W = rng.standard_normal((4, 3))  # materialised and contracted routes agree
    np.testing.assert_allclose(np.tensordot(W, table, axes=2), pol.score_contract(W), atol=1e-13)
