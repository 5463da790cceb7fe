"""Group-relative estimators (pgnotes.tokens: group_advantages, group_advantage_given_reward,
group_estimator_expectation) against independent routes.

Routes: closed forms (mean baseline, leave-one-out), brute-force enumeration of every tuple of
rewards and of every tuple of *completions* of a group, the exact policy gradient, and Monte
Carlo from ``sample_groups`` with z-scores at fixed seeds. Book: 09_reinforce_grpo.
"""

import itertools

import numpy as np
import pytest

import pgnotes as pg
from pgnotes import tokens as tk

MEAN = lambda r: pg.groups.group_advantages(r)  # noqa: E731
LOO = lambda r: pg.groups.group_advantages(r, baseline="loo")  # noqa: E731
GRPO = lambda r: pg.groups.group_advantages(r, divide_by_std=True)  # noqa: E731
GRPO1 = lambda r: pg.groups.group_advantages(r, divide_by_std=True, ddof=1)  # noqa: E731
INV_LEN = lambda b: 1.0 / b.lengths  # noqa: E731


def _tiny(param, seed=0, partial=True):
    """Two prompts, V = 3, L = 3: 13 completions per prompt, rewards in {0, 0.5, 1} when partial."""
    tmdp = tk.TokenMDP(3, [(1,), (2, 1)], 3, tk.modular_sum_verifier(3, partial=partial), rho=[0.3, 0.7])
    rng = np.random.default_rng(seed)
    φ = tk.token_features(tmdp) if param == "loglinear" else None
    shape = (tmdp.n_prefixes, 3) if φ is None else (φ.shape[2],)
    return tmdp, rng.standard_normal(shape), φ


def test_group_advantages_closed_forms():
    rng = np.random.default_rng(0)
    r = rng.integers(0, 2, size=(50, 6)).astype(float)
    G = r.shape[1]
    A = pg.groups.group_advantages(r)
    assert np.allclose(A.sum(axis=1), 0.0)
    assert np.allclose(pg.groups.group_advantages(r, baseline="loo"), G / (G - 1) * A)  # RLOO = G/(G−1) × mean-baseline
    assert np.array_equal(pg.groups.group_advantages(r, baseline="none"), r)
    pop = pg.groups.group_advantages(r, divide_by_std=True, eps=0.0)
    bes = pg.groups.group_advantages(r, divide_by_std=True, ddof=1, eps=0.0)
    assert np.allclose(bes, np.sqrt((G - 1) / G) * pop)
    live = r.std(axis=1) > 0
    assert np.allclose(pop[live].std(axis=1), 1.0) and np.all(pop[~live] == 0)
    # constant groups carry no signal, with or without eps
    c = np.ones((3, 4))
    for eps in (0.0, 1e-4):
        assert np.all(pg.groups.group_advantages(c, divide_by_std=True, eps=eps) == 0)
    # G = 2, 0/1 rewards: GRPO with the population std is RLOO
    r2 = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    assert np.allclose(pg.groups.group_advantages(r2, divide_by_std=True, eps=0.0), pg.groups.group_advantages(r2, baseline="loo"))


@pytest.mark.parametrize("fn", [MEAN, LOO, GRPO, GRPO1, lambda r: np.sign(r - np.median(r, axis=1, keepdims=True))])
@pytest.mark.parametrize("G", [1, 2, 4])
def test_advantage_given_reward_against_all_reward_tuples(fn, G):
    if G == 1 and fn is not MEAN:
        return
    values = np.array([0.0, 0.5, 1.0])
    q = np.array([[0.2, 0.3, 0.5], [0.0, 0.9, 0.1], [1.0, 0.0, 0.0]])
    got = pg.groups.group_advantage_given_reward(q, values, G, fn)
    tuples = np.array(list(itertools.product(range(3), repeat=G)))  # every reward tuple, own reward first
    A1 = fn(values[tuples])[:, 0]
    for i in range(q.shape[0]):
        prob_others = np.prod(q[i][tuples[:, 1:]], axis=1)
        ref = np.array([np.sum(prob_others * A1 * (tuples[:, 0] == k)) for k in range(3)])
        assert np.allclose(got[i], ref, atol=1e-13)


def test_advantage_given_reward_closed_forms_for_mean_and_loo():
    values = np.array([-1.0, 0.0, 2.0])
    q = np.random.default_rng(1).dirichlet(np.ones(3), size=5)
    mean_r = q @ values
    for G in (2, 5, 17):
        m = pg.groups.group_advantage_given_reward(q, values, G, MEAN)
        assert np.allclose(m, (1 - 1 / G) * (values[None, :] - mean_r[:, None]))  # the shrinkage (G − 1)/G
        loo = pg.groups.group_advantage_given_reward(q, values, G, LOO)
        assert np.allclose(loo, values[None, :] - mean_r[:, None])


@pytest.mark.parametrize("param", [None, "loglinear"])
@pytest.mark.parametrize("G", [2, 3])
@pytest.mark.parametrize("fn,seq", [(MEAN, None), (GRPO, None), (GRPO1, INV_LEN), (LOO, INV_LEN)])
def test_expectation_against_every_tuple_of_completions(param, G, fn, seq):
    """E[(1/G) Σ_i A_i c(y_i) ∇log π(y_i|x)] summed over all G-tuples of completions, per prompt."""
    tmdp, θ, φ = _tiny(param)
    c = tk.completions(tmdp, θ, features=φ)
    S = tk.score_sum(tmdp, θ, c, features=φ).reshape(c.n, -1)  # ∇log π(y|x) per completion
    cw = np.ones(c.n) if seq is None else seq(c)
    got = pg.groups.group_estimator_expectation(tmdp, θ, G, fn, sequence_weight=seq, features=φ, per_prompt=True)
    for x in range(tmdp.n_prompts):
        rows = np.flatnonzero(c.prompt_ids == x)
        tup = np.array(list(itertools.product(rows, repeat=G)))  # every group of completions of x
        prob = np.prod(c.prob[tup], axis=1)
        A = fn(c.rewards[tup])  # (n_tuples, G)
        est = np.einsum("ng,ng,ngd->nd", A, cw[tup], S[tup]) / G
        ref = (prob[:, None] * est).sum(axis=0)
        assert np.allclose(got[x].ravel(), ref, atol=1e-13)
    total = pg.groups.group_estimator_expectation(tmdp, θ, G, fn, sequence_weight=seq, features=φ)
    assert np.allclose(total, np.tensordot(tmdp.rho, got, axes=1), atol=1e-14)


@pytest.mark.parametrize("param", [None, "loglinear"])
def test_reinforce_mean_and_loo_against_the_policy_gradient(param):
    tmdp = tk.toy_mdp("sum")
    rng = np.random.default_rng(3)
    φ = tk.token_features(tmdp) if param else None
    θ = rng.standard_normal((tmdp.n_prefixes, 4) if φ is None else φ.shape[2])
    g = tk.policy_gradient(tmdp, θ, features=φ)
    assert pg.reference.relative_error(pg.groups.group_estimator_expectation(tmdp, θ, 1, lambda r: r, features=φ), g) < 1e-12
    for G in (2, 7, 32):
        m = pg.groups.group_estimator_expectation(tmdp, θ, G, MEAN, features=φ)
        assert pg.reference.relative_error(m, (G - 1) / G * g) < 1e-12
        assert pg.reference.relative_error(pg.groups.group_estimator_expectation(tmdp, θ, G, LOO, features=φ), g) < 1e-12
    # 0/1 reward: GRPO reweights each prompt's ∇p(x) by w(p(x), G) = E[A | r = 1] − E[A | r = 0]
    ev = tk.evaluate(tmdp, θ, features=φ)
    grad_p = pg.groups.group_estimator_expectation(tmdp, θ, 1, lambda r: r, features=φ, per_prompt=True)
    q = np.stack([1 - ev.reward, ev.reward], axis=1)
    for G in (2, 8):
        cond = pg.groups.group_advantage_given_reward(q, [0.0, 1.0], G, GRPO)
        w = cond[:, 1] - cond[:, 0]
        ref = np.tensordot(tmdp.rho * w, grad_p, axes=1)
        assert pg.reference.relative_error(pg.groups.group_estimator_expectation(tmdp, θ, G, GRPO, features=φ), ref) < 1e-12


@pytest.mark.parametrize("fn,seq", [(MEAN, None), (GRPO, None), (GRPO1, INV_LEN)])
def test_expectation_against_monte_carlo(fn, seq):
    tmdp = tk.toy_mdp("sum")
    φ = tk.token_features(tmdp)
    θ = np.random.default_rng(5).standard_normal(φ.shape[2])
    G, M = 4, 40_000
    exact = pg.groups.group_estimator_expectation(tmdp, θ, G, fn, sequence_weight=seq, features=φ)
    b = tk.sample_groups(tmdp, θ, group_size=G, rng=np.random.default_rng(7), prompt_ids=np.repeat(np.arange(3), M), features=φ)
    A = fn(b.rewards.reshape(-1, G)).ravel()
    cw = np.ones(b.n) if seq is None else seq(b)
    S = tk.score_sum(tmdp, θ, b, (A * cw)[:, None] * b.mask, features=φ)
    per_group = S.reshape(-1, G, S.shape[-1]).mean(axis=1)  # one estimate per group; uniform ρ
    D = np.vstack([exact / np.linalg.norm(exact), np.random.default_rng(1).standard_normal((3, exact.size))])
    mean, se = pg.estimators.mean_and_stderr(per_group @ D.T)
    assert np.abs((mean - D @ exact) / se).max() < 4.0


def test_bad_inputs():
    v = [0.0, 1.0]
    with pytest.raises(ValueError, match="permutation-equivariant"):
        pg.groups.group_advantage_given_reward([0.5, 0.5], v, 3, lambda r: r - r[:, :1])
    with pytest.raises(ValueError, match="shape"):
        pg.groups.group_advantage_given_reward([0.5, 0.5], v, 3, lambda r: r[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        pg.groups.group_advantage_given_reward([0.5, 0.5], v, 3, lambda r: np.full(r.shape, np.nan))
    with pytest.raises(ValueError, match="probability"):
        pg.groups.group_advantage_given_reward([0.5, 0.6], v, 3, MEAN)
    with pytest.raises(ValueError, match="distinct"):
        pg.groups.group_advantage_given_reward([0.5, 0.5], [1.0, 1.0], 3, MEAN)
    with pytest.raises(ValueError, match="MAX_GROUP_CONFIGURATIONS"):
        pg.groups.group_advantage_given_reward(np.full(12, 1 / 12), np.arange(12.0), 64, MEAN)
    with pytest.raises(ValueError, match="G ≥ 2"):
        pg.groups.group_advantages(np.ones((3, 1)), baseline="loo")
    with pytest.raises(ValueError, match="baseline"):
        pg.groups.group_advantages(np.ones((3, 2)), baseline="median")
    with pytest.raises(ValueError, match="NaN"):
        pg.groups.group_advantages(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="ddof"):
        pg.groups.group_advantages(np.ones((3, 2)), ddof=2)
    tmdp = tk.toy_mdp()
    θ = np.zeros((tmdp.n_prefixes, 4))
    with pytest.raises(ValueError, match="sequence_weight"):
        pg.groups.group_estimator_expectation(tmdp, θ, 2, MEAN, sequence_weight=lambda b: np.ones(3))
    with pytest.raises(TypeError, match="TokenMDP"):
        pg.groups.group_estimator_expectation(pg.envs.two_state_mdp(0.9), θ, 2, MEAN)
