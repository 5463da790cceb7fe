"""The example MDPs of pgnotes.envs against values worked out by hand."""

import numpy as np
import pytest

import pgnotes as pg


@pytest.mark.parametrize("rows, cols, gamma", [(3, 4, 0.9), (2, 2, 0.5), (4, 5, 0.95)])
def test_gridworld_without_slip_pays_gamma_to_the_manhattan_distance(rows, cols, gamma):
    """From the bottom-left start, going up to the top row, then right, reaches the top-right goal.

    A near-deterministic policy doing that (logits +40) takes ``d = rows + cols - 2`` steps and
    is paid once, on entering the goal: ``J = γ^(d-1)``, the optimal value, worked out by hand.
    """
    mdp = pg.envs.gridworld(rows, cols, gamma=gamma, slip=0.0)
    up, right = list(pg.envs.GRID_ACTIONS).index("up"), list(pg.envs.GRID_ACTIONS).index("right")
    θ = np.zeros((rows * cols, 4))
    θ[np.arange(rows * cols), np.where(np.arange(rows * cols) < cols, right, up)] = 40.0
    d = rows + cols - 2
    assert pg.exact.objective(mdp, θ) == pytest.approx(gamma ** (d - 1), rel=1e-12)
    assert mdp.terminal[cols - 1] and mdp.terminal.sum() == 1 and mdp.rho0[(rows - 1) * cols] == 1


def test_gridworld_slip_spreads_each_move_over_the_four_directions():
    mdp = pg.envs.gridworld(3, 3, gamma=0.9, slip=0.2, episodic=False)
    centre = 4  # cell (1, 1): every direction is a different neighbour
    up = list(pg.envs.GRID_ACTIONS).index("up")
    expected = np.zeros(9)
    expected[[1, 5, 7, 3]] = 0.05  # up, right, down, left by slipping
    expected[1] += 0.8
    np.testing.assert_allclose(mdp.P[centre, up], expected, atol=1e-15)


@pytest.mark.parametrize("n, gamma", [(1, 1.0), (5, 1.0), (7, 0.9)])
def test_chain_pays_its_reward_once_after_exactly_n_steps(n, gamma):
    mdp = pg.envs.chain(n, reward=2.0, gamma=gamma)
    θ = np.zeros((n + 1, 1))
    assert pg.exact.objective(mdp, θ) == pytest.approx(2.0 * gamma ** (n - 1), rel=1e-12)
    b = pg.sample(mdp, θ, n=3, horizon=n + 2, rng=np.random.default_rng(0))
    assert np.all(b.mask.sum(axis=1) == n) and np.all(b.rewards[:, n - 1] == 2.0)
    with pytest.raises(TypeError):
        pg.envs.chain(n, reward="2")
