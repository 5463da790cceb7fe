"""pgnotes.paths: path probabilities written out term by term."""

import numpy as np
import pytest

import pgnotes as pg
import pgnotes.paths as paths


@pytest.fixture
def small():
    rng = np.random.default_rng(42)
    mdp = pg.envs.random_mdp(4, 2, 0.9, rng, n_terminal=1)
    return mdp, rng.standard_normal((4, 2))


def test_trajectory_probability_matches_enumeration(small):
    mdp, θ = small
    b = pg.enumerate_trajectories(mdp, θ, horizon=3)
    p = paths.trajectory_probability(mdp, θ, b)
    assert np.allclose(p, b.prob, rtol=1e-12, atol=0)


def test_trajectory_probability_complex_step_is_P_times_score(small):
    mdp, θ = small
    b = pg.enumerate_trajectories(mdp, θ, horizon=3)
    dP = pg.reference.complex_step_jacobian(lambda t: paths.trajectory_probability(mdp, t, b), θ)
    score = pg.estimators.score_sum(mdp, θ, b, np.ones((b.n, 3)))
    assert np.allclose(dP, b.prob[:, None, None] * score, rtol=1e-10, atol=1e-15)


def test_trajectory_probability_log_linear():
    rng = np.random.default_rng(0)
    mdp = pg.envs.random_mdp(3, 2, 0.9, rng)
    φ = pg.envs.random_features(3, 2, 2, rng)
    θ = rng.standard_normal(2)
    b = pg.enumerate_trajectories(mdp, θ, horizon=3, features=φ)
    assert np.allclose(paths.trajectory_probability(mdp, θ, b, features=φ), b.prob, rtol=1e-12)


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4])
def test_k_step_by_paths_equals_matrix_power(k):
    rng = np.random.default_rng(2024)
    mdp = pg.envs.random_mdp(5, 3, 0.9, rng)
    θ = rng.standard_normal((5, 3))
    d = paths.k_step_by_paths(mdp, θ, k)
    assert np.allclose(d, pg.exact.k_step(mdp, θ, k), atol=1e-14, rtol=0)
    assert np.allclose(d.sum(axis=1), 1, atol=1e-14)


def test_k_step_by_paths_with_terminal_states(small):
    mdp, θ = small
    for k in range(4):
        d = paths.k_step_by_paths(mdp, θ, k)
        P_π = np.einsum("sa,sax->sx", pg.softmax_policy(mdp, θ).probs, mdp.P)
        assert np.allclose(d, np.linalg.matrix_power(P_π, k), atol=1e-14)


def test_bad_input_raises(small):
    mdp, θ = small
    with pytest.raises(ValueError, match="k must be"):
        paths.k_step_by_paths(mdp, θ, -1)
    with pytest.raises(TypeError, match="k must be an int"):
        paths.k_step_by_paths(mdp, θ, 1.5)
    with pytest.raises(ValueError, match="MAX_PATHS"):
        paths.k_step_by_paths(mdp, θ, 40)
    with pytest.raises(TypeError, match="mdp must be"):
        paths.k_step_by_paths("mdp", θ, 1)
    with pytest.raises(TypeError, match="batch must be"):
        paths.trajectory_probability(mdp, θ, "b")
    other = pg.envs.random_mdp(2, 2, 0.9, np.random.default_rng(1))
    b = pg.enumerate_trajectories(mdp, θ, horizon=2)
    with pytest.raises(ValueError, match="the MDP the batch was drawn from"):
        paths.trajectory_probability(other, np.zeros((2, 2)), b)
