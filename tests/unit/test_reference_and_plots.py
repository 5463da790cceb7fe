"""Helpers added for the preface and derivation A: complex_step_jacobian, draw_grid."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

import pgnotes as pg


def test_complex_step_jacobian_matches_rows_and_analytic_softmax():
    rng = np.random.default_rng(3)
    θ = rng.standard_normal((3, 2))

    def softmax_rows(t):
        e = np.exp(t - t.real.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    J = pg.reference.complex_step_jacobian(softmax_rows, θ)
    assert J.shape == (3, 2, 3, 2)
    π = softmax_rows(θ)
    # analytic: ∂π(a|s)/∂θ_{s',b} = 1[s=s'] π(a|s) (1[a=b] - π(b|s))
    ref = np.zeros((3, 2, 3, 2))
    for s in range(3):
        ref[s, :, s, :] = np.diag(π[s]) - np.outer(π[s], π[s])
    np.testing.assert_allclose(J, ref, atol=1e-15)
    # each row is complex_step_gradient of one output
    for s in range(3):
        for a in range(2):
            g = pg.reference.complex_step_gradient(lambda t: softmax_rows(t)[s, a], θ)
            np.testing.assert_array_equal(J[s, a], g)


def test_complex_step_jacobian_of_trajectory_probabilities():
    # Σ_τ R(τ) ∇P(τ) (row by row) equals the finite-horizon gradient ∇J_T.
    rng = np.random.default_rng(5)
    mdp = pg.envs.random_mdp(3, 2, 0.8, rng, n_terminal=1)
    θ = rng.standard_normal((3, 2))
    b = pg.enumerate_trajectories(mdp, θ, horizon=3)
    dP = pg.reference.complex_step_jacobian(lambda t: np.exp(pg.trajectories.log_probability(mdp, t, b)), θ)
    assert dP.shape == (b.n, 3, 2)
    g = np.tensordot(pg.estimators.total_return(b), dP, axes=1)
    np.testing.assert_allclose(g, pg.finite.policy_gradient(mdp, θ, horizon=3), atol=1e-13)
    with pytest.raises(ValueError):
        pg.reference.complex_step_jacobian(np.sin, θ, h=0.0)


def test_draw_grid_marks_start_and_terminal_cells():
    mdp = pg.envs.gridworld(3, 4, gamma=0.9)
    fig, ax = plt.subplots()
    im = pg.plots.draw_grid(ax, 3, 4, terminal=mdp.terminal, start=mdp.rho0 > 0)
    kind = np.asarray(im.get_array())
    assert kind[0, 3] == 2 and kind[2, 0] == 1 and (kind == 0).sum() == 10
    assert [t.get_text() for t in ax.texts][:2] == ["0", "1"]
    with pytest.raises(ValueError, match="one entry per state"):
        pg.plots.draw_grid(ax, 3, 4, terminal=mdp.terminal[:5])
    plt.close(fig)
