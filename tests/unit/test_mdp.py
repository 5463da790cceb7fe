"""Every malformed input raises ValueError (or TypeError) with a message naming the problem."""

import numpy as np
import pytest

import pgnotes as pg


def good():
    P = np.full((2, 2, 2), 0.5)
    R = np.zeros((2, 2))
    rho0 = np.array([0.5, 0.5])
    return P, R, rho0


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda P, R, r: (P[:, :, :1], R, r), "P must have shape"),
        (lambda P, R, r: (P[0], R, r), "P must have shape"),
        (lambda P, R, r: (np.zeros((0, 2, 0)), R, r), "P must have shape"),
        (lambda P, R, r: (P * 2, R, r), "does not sum to 1"),
        (lambda P, R, r: (np.where(np.arange(2) == 0, -0.5, 1.5) * np.ones((2, 2, 2)), R, r), "negative probability"),
        (lambda P, R, r: (np.full((2, 2, 2), np.nan), R, r), "NaN or inf"),
        (lambda P, R, r: (P, np.zeros((3, 2)), r), "R must have shape"),
        (lambda P, R, r: (P, np.array([[np.inf, 0], [0, 0]]), r), "R contains NaN or inf"),
        (lambda P, R, r: (P, R, np.array([0.5, 0.6])), "rho0 does not sum to 1"),
        (lambda P, R, r: (P, R, np.array([1.5, -0.5])), "rho0 has a negative probability"),
        (lambda P, R, r: (P, R, np.array([1.0])), "rho0 must have shape"),
        (lambda P, R, r: (P, R, np.array([np.nan, 1.0])), "rho0 contains NaN"),
    ],
)
def test_malformed_mdp_is_refused(change, message):
    P, R, rho0 = change(*good())
    with pytest.raises(ValueError, match=message):
        pg.TabularMDP(P, R, rho0, 0.9)


@pytest.mark.parametrize(
    "change",
    [
        lambda P, R, r: (P.astype(complex), R, r),
        lambda P, R, r: ([[["a", "b"]]], R, r),
        lambda P, R, r: (P > 0, R, r),
        lambda P, R, r: (P, R.astype(object), r),
    ],
)
def test_arrays_of_the_wrong_type_are_a_type_error(change):
    P, R, rho0 = change(*good())
    with pytest.raises(TypeError, match="must be an array of real numbers"):
        pg.TabularMDP(P, R, rho0, 0.9)


@pytest.mark.parametrize("gamma", [-0.1, 1.5, float("nan"), float("inf")])
def test_gamma_outside_unit_interval_is_refused(gamma):
    with pytest.raises(ValueError, match="gamma"):
        pg.TabularMDP(*good(), gamma)


@pytest.mark.parametrize("gamma", ["0.9", None, True, 0.9j])
def test_gamma_that_is_not_a_number_is_a_type_error(gamma):
    with pytest.raises(TypeError, match="gamma must be a real number"):
        pg.TabularMDP(*good(), gamma)


def test_gamma_one_without_terminal_state_is_refused():
    with pytest.raises(ValueError, match="no state is terminal"):
        pg.TabularMDP(*good(), 1.0)


def test_gamma_one_with_a_non_terminating_state_is_refused():
    # State 2 is terminal; state 0 ↔ 1 loop forever and never reach it.
    P = np.zeros((3, 1, 3))
    P[0, 0, 1] = P[1, 0, 0] = P[2, 0, 2] = 1.0
    mdp = pg.TabularMDP(P, np.zeros((3, 1)), np.array([1.0, 0, 0]), 1.0)
    with pytest.raises(ValueError, match="does not reach a terminal state"):
        pg.exact.objective(mdp, np.zeros((3, 1)))
    with pytest.raises(ValueError, match="does not reach a terminal state"):
        pg.exact.policy_gradient(mdp, np.zeros((3, 1)))


def test_occupancy_at_gamma_one_is_refused(small_episodic):
    mdp, θ = small_episodic
    with pytest.raises(ValueError, match="gamma = 1"):
        pg.exact.occupancy(mdp.with_gamma(1.0), θ)


def test_validated_arrays_are_kept_and_read_only():
    P, R, rho0 = good()
    mdp = pg.TabularMDP(P, np.ones((2, 2, 2)), rho0, 0.5)
    assert mdp.R.shape == (2, 2) and np.allclose(mdp.R, 1.0)  # (S, A, S) reduced to E[r]
    np.testing.assert_array_equal(mdp.P, P)
    with pytest.raises(ValueError):
        mdp.P[0, 0, 0] = 3.0


@pytest.mark.parametrize(
    "θ, message",
    [
        (np.zeros((2, 3)), "shape"),
        (np.zeros(4), "shape"),
        (np.array([[np.nan, 0], [0, 0]]), "NaN or inf"),
    ],
)
def test_malformed_tabular_θ_is_refused(θ, message):
    mdp = pg.TabularMDP(*good(), 0.9)
    with pytest.raises(ValueError, match=message):
        pg.exact.policy_gradient(mdp, θ)


def test_tabular_θ_of_strings_is_a_type_error():
    mdp = pg.TabularMDP(*good(), 0.9)
    with pytest.raises(TypeError, match="θ must be an array of real numbers"):
        pg.exact.policy_gradient(mdp, np.array([["a", "b"], ["c", "d"]]))


@pytest.mark.parametrize(
    "φ, θ, message",
    [
        (np.zeros((2, 2)), np.zeros(2), "features must have shape"),
        (np.zeros((3, 2, 2)), np.zeros(2), "features must have shape"),
        (np.zeros((2, 2, 2)), np.zeros(3), "needs θ of shape"),
        (np.full((2, 2, 2), np.inf), np.zeros(2), "features contains NaN"),
    ],
)
def test_malformed_features_are_refused(φ, θ, message):
    mdp = pg.TabularMDP(*good(), 0.9)
    for f in (pg.exact.objective, pg.exact.policy_gradient, pg.exact.visit_counts, pg.exact.occupancy):
        with pytest.raises(ValueError, match=message):
            f(mdp, θ, features=φ)


def test_complex_features_are_a_type_error():
    mdp = pg.TabularMDP(*good(), 0.9)
    for f in (pg.exact.objective, pg.exact.policy_gradient, pg.exact.visit_counts, pg.exact.occupancy):
        with pytest.raises(TypeError, match="features must be an array of real numbers"):
            f(mdp, np.zeros(2), features=np.zeros((2, 2, 2), dtype=complex))


def test_non_mdp_is_a_type_error():
    with pytest.raises(TypeError, match="TabularMDP"):
        pg.exact.objective({"P": 1}, np.zeros((2, 2)))


@pytest.mark.parametrize("kw, message", [
    (dict(n=0, horizon=3), "n must lie"),
    (dict(n=5, horizon=0), "horizon must lie"),
    (dict(n=10**6, horizon=10**3), "exceeds MAX_STEPS"),
])
def test_sampler_refuses_bad_sizes(kw, message):
    mdp = pg.TabularMDP(*good(), 0.9)
    with pytest.raises(ValueError, match=message):
        pg.sample(mdp, np.zeros((2, 2)), rng=np.random.default_rng(0), **kw)


@pytest.mark.parametrize("kw", [dict(n=2.5, horizon=3), dict(n="3", horizon=3), dict(n=3, horizon=True)])
def test_sampler_sizes_that_are_not_integers_are_a_type_error(kw):
    mdp = pg.TabularMDP(*good(), 0.9)
    with pytest.raises(TypeError, match="must be an integer"):
        pg.sample(mdp, np.zeros((2, 2)), rng=np.random.default_rng(0), **kw)


@pytest.mark.parametrize("rng", [None, 0, np.random.RandomState(0)])
def test_sampler_needs_a_generator(rng):
    mdp = pg.TabularMDP(*good(), 0.9)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        pg.sample(mdp, np.zeros((2, 2)), n=3, horizon=3, rng=rng)


def test_enumeration_refuses_too_many_trajectories():
    rng = np.random.default_rng(0)
    mdp = pg.envs.random_mdp(6, 4, 0.9, rng)
    with pytest.raises(ValueError, match="MAX_TRAJECTORIES"):
        pg.enumerate_trajectories(mdp, np.zeros((6, 4)), horizon=8)


def test_finite_horizon_refuses_bad_horizons():
    mdp = pg.TabularMDP(*good(), 0.9)
    for T in (0, -1, 10**9):
        with pytest.raises(ValueError, match="horizon"):
            pg.finite.policy_gradient(mdp, np.zeros((2, 2)), horizon=T)
    for T in (1.5, "3"):
        with pytest.raises(TypeError, match="horizon"):
            pg.finite.policy_gradient(mdp, np.zeros((2, 2)), horizon=T)
