"""Episodes and γ = 1: the short corridor with switched actions (book/05_episodic)."""

import numpy as np
import pytest

import pgnotes as pg

φ = np.tile(np.eye(2)[::-1], (4, 1, 1))  # φ(s, right) = e_0, φ(s, left) = e_1 in every state


def _θ(p):
    return np.array([np.log(p / (1 - p)), 0.0])  # π(right) = p


def test_short_corridor_structure():
    mdp = pg.envs.short_corridor()
    assert mdp.gamma == 1.0 and mdp.n_states == 4 and mdp.n_actions == 2
    assert mdp.terminal.tolist() == [False, False, False, True]
    assert np.all(mdp.R[:3] == -1.0)
    moves = {(s, a): int(np.argmax(mdp.P[s, a])) for s in range(3) for a in range(2)}
    assert moves == {(0, 0): 0, (0, 1): 1, (1, 0): 2, (1, 1): 0, (2, 0): 1, (2, 1): 3}


@pytest.mark.parametrize("p", [0.05, 0.3, 2 - np.sqrt(2), 0.8, 0.97])
def test_short_corridor_objective_is_sutton_bartos_closed_form(p):
    mdp = pg.envs.short_corridor()
    J = pg.exact.objective(mdp, _θ(p), features=φ)
    assert J == pytest.approx((2 * p - 4) / (p * (1 - p)), rel=1e-12)
    assert pg.reference.objective(mdp, _θ(p), features=φ) == pytest.approx(J, rel=1e-12)


def test_short_corridor_optimum_and_deterministic_policies():
    mdp = pg.envs.short_corridor()
    p_star = 2 - np.sqrt(2)
    g = pg.exact.policy_gradient(mdp, _θ(p_star), features=φ)
    assert np.abs(g).max() < 1e-12
    for θ in (np.array([800.0, 0.0]), np.array([0.0, 800.0])):  # p = 1 and p = 0 exactly
        with pytest.raises(ValueError, match="does not reach a terminal state"):
            pg.exact.objective(mdp, θ, features=φ)
