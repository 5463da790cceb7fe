"""from_gymnasium reads the toy-text tables correctly: FrozenLake 8x8 against its own env.step."""

import warnings

import numpy as np
import pytest

import pgnotes as pg

gym = pytest.importorskip("gymnasium")


def make(name, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gym.make(name, **kw)


def test_frozenlake_table_is_read_exactly():
    env = make("FrozenLake-v1", map_name="8x8")
    mdp = pg.envs.from_gymnasium(env, 0.99)
    assert mdp.n_states == 64 and mdp.n_actions == 4
    desc = env.unwrapped.desc.ravel()
    np.testing.assert_array_equal(mdp.terminal, np.isin(desc, [b"H", b"G"]))
    for s in range(64):
        if mdp.terminal[s]:
            continue
        for a in range(4):
            p = np.zeros(64)
            for prob, s2, _, _ in env.unwrapped.P[s][a]:
                p[s2] += prob
            np.testing.assert_allclose(mdp.P[s, a], p, atol=1e-15)


def test_frozenlake_return_agrees_with_gymnasium_steps():
    # Exact finite-horizon J_T from the table, against episodes run with env.step itself.
    env = make("FrozenLake-v1", map_name="8x8")
    mdp = pg.envs.from_gymnasium(env, 1.0)
    θ = np.zeros((64, 4))
    for _ in range(300):  # exact gradient ascent, so that the goal is reached often
        θ += 30 * pg.exact.policy_gradient(mdp.with_gamma(0.99), θ)
    T, n = 100, 3000
    J_T = pg.finite.objective(mdp, θ, horizon=T)
    π = pg.softmax_policy(mdp, θ).probs
    rng = np.random.default_rng(0)
    returns = np.zeros(n)
    for i in range(n):
        s, _ = env.reset(seed=int(rng.integers(2**31)))
        for _ in range(T):
            s, r, terminated, truncated, _ = env.step(int(rng.choice(4, p=π[s])))
            returns[i] += r
            if terminated or truncated:
                break
    se = returns.std(ddof=1) / np.sqrt(n)
    assert J_T > 0.3
    assert abs(returns.mean() - J_T) < 4.5 * se


@pytest.mark.parametrize("name, S, terminal", [("CliffWalking-v1", 48, 1), ("Taxi-v4", 501, 1)])
def test_other_toy_text_environments(name, S, terminal):
    mdp = pg.envs.from_gymnasium(make(name), 0.9)
    assert mdp.n_states == S and int(mdp.terminal.sum()) == terminal
    assert np.isfinite(pg.exact.objective(mdp, np.zeros((S, mdp.n_actions))))


def test_non_toy_text_environment_is_refused():
    with pytest.raises(ValueError, match="transition table"):
        pg.envs.from_gymnasium(make("CartPole-v1"), 0.9)
