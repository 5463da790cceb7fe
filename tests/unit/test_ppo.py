"""PPO at the token level (pgnotes.tokens): rewards, GAE, the clipped surrogate, the critic.

Routes: enumeration of completions, explicit loops over tokens, complex-step derivatives, and
the exact quantities of ``pgnotes.tokens.evaluate`` / ``policy_gradient``.
"""

import numpy as np
import pytest

import pgnotes as pg
from pgnotes import tokens as tk


def _setting(param, seed=3, scale=1.0, kind="sum"):
    tmdp = tk.toy_mdp(kind)
    rng = np.random.default_rng(seed)
    φ = tk.token_features(tmdp) if param == "loglinear" else None
    shape = (tmdp.n_prefixes, tmdp.n_vocab) if φ is None else (φ.shape[2],)
    θ_ref = scale * rng.standard_normal(shape)
    return tmdp, θ_ref + scale * rng.standard_normal(shape), θ_ref, φ


def test_token_rewards_place_r_on_the_last_real_token_and_sum_to_the_kl_shaped_return():
    tmdp, θ, θ_ref, φ = _setting("loglinear")
    β = 0.3
    c = tk.completions(tmdp, θ, features=φ)
    r = pg.ppo.token_rewards(tmdp, c)
    for i in range(c.n):
        n = c.lengths[i]
        assert r[i, n - 1] == c.rewards[i] and np.all(r[i, : n - 1] == 0) and np.all(r[i, n:] == 0)
    # truncated completions (no EOS) get r on their L-th token
    trunc = c.tokens[:, -1] != tmdp.pad
    assert trunc.any() and np.array_equal(r[trunc, -1], c.rewards[trunc])
    rβ = pg.ppo.token_rewards(tmdp, c, beta=β, θ=θ, theta_ref=θ_ref, features=φ)
    lr = tk.log_probability(tmdp, θ, c, features=φ) - tk.log_probability(tmdp, θ_ref, c, features=φ)
    assert np.allclose(rβ.sum(axis=1), c.rewards - β * lr, atol=1e-13)
    q = tk.row_weights(tmdp, c)
    assert abs(q @ rβ.sum(axis=1) - tk.objective(tmdp, θ, beta=β, theta_ref=θ_ref, features=φ)) < 1e-13
    with pytest.raises(ValueError, match="θ"):
        pg.ppo.token_rewards(tmdp, c, beta=β, theta_ref=θ_ref, features=φ)


@pytest.mark.parametrize("param", [None, "loglinear"])
@pytest.mark.parametrize("β", [0.0, 0.4])
def test_gae_with_the_exact_critic_is_unbiased_for_every_lambda(param, β):
    tmdp, θ, θ_ref, φ = _setting(param)
    ev = tk.evaluate(tmdp, θ, beta=β, theta_ref=θ_ref, features=φ)
    c = tk.completions(tmdp, θ, features=φ)
    r = pg.ppo.token_rewards(tmdp, c, beta=β, θ=θ, theta_ref=θ_ref, features=φ)
    for λ in (0.0, 0.3, 0.9, 1.0):
        Â = pg.ppo.gae_advantages(tmdp, c, r, ev.V, λ)
        E, prob = pg.ppo.conditional_expectation(tmdp, c, Â)
        assert np.allclose(prob, ev.μ[:, None] * ev.π, atol=1e-14)
        assert np.abs(E - ev.A)[prob > 0].max() < 1e-12
        # and the estimator's expectation is ∇J_β
        g = tk.score_sum(tmdp, θ, c, tk.row_weights(tmdp, c)[:, None] * Â, features=φ).sum(axis=0)
        assert pg.reference.relative_error(g, tk.policy_gradient(tmdp, θ, beta=β, theta_ref=θ_ref, features=φ)) < 1e-12


def test_gae_against_the_explicit_sum_and_the_two_limits():
    tmdp, θ, _, φ = _setting("loglinear")
    b = tk.sample_groups(tmdp, θ, group_size=50, rng=np.random.default_rng(0), features=φ)
    r = pg.ppo.token_rewards(tmdp, b)
    V = np.random.default_rng(1).standard_normal(tmdp.n_prefixes)
    λ = 0.7
    Â = pg.ppo.gae_advantages(tmdp, b, r, V, λ)
    for i in range(b.n):  # Â_t = Σ_l λ^l δ_{t+l}, δ_t = r_t + V(s_{t+1}) - V(s_t), V = 0 after the end
        n = b.lengths[i]
        v = [V[b.prefixes[i, t]] for t in range(n)] + [0.0]
        δ = [r[i, t] + v[t + 1] - v[t] for t in range(n)]
        ref = [sum(λ**l * δ[t + l] for l in range(n - t)) for t in range(n)]
        assert np.allclose(Â[i, :n], ref, atol=1e-13) and np.all(Â[i, n:] == 0)
    zero = np.zeros(tmdp.n_prefixes)
    # λ = 1, V = 0: every token of the completion gets r (REINFORCE)
    assert np.array_equal(pg.ppo.gae_advantages(tmdp, b, r, zero, 1.0), b.rewards[:, None] * b.mask)
    # λ < 1, V = 0: the terminal reward decays as λ^(n-1-t) toward the start
    k = np.where(b.mask, b.lengths[:, None] - 1 - np.arange(tmdp.max_len), 0)
    assert np.allclose(pg.ppo.gae_advantages(tmdp, b, r, zero, λ), np.where(b.mask, λ**k * b.rewards[:, None], 0.0))
    with pytest.raises(ValueError, match="λ"):
        pg.ppo.gae_advantages(tmdp, b, r, zero, 1.5)
    with pytest.raises(ValueError, match="values"):
        pg.ppo.gae_advantages(tmdp, b, r, np.zeros(3), 0.5)


@pytest.mark.parametrize("param", [None, "loglinear"])
def test_clipped_surrogate_gradient_at_theta_old_is_the_policy_gradient(param):
    tmdp, θ_old, _, φ = _setting(param, seed=7)
    c = tk.completions(tmdp, θ_old, features=φ)
    q = tk.row_weights(tmdp, c)  # the exact expectation under π_old
    Â = tk.at_tokens(tk.advantages(tmdp, θ_old, features=φ), c)
    g = tk.policy_gradient(tmdp, θ_old, features=φ)
    analytic = np.tensordot(q, pg.ppo.clipped_surrogate_gradient(tmdp, θ_old, θ_old, c, Â, cliprange=0.2, features=φ), axes=1)
    cs = pg.reference.complex_step_gradient(lambda z: q @ pg.ppo.clipped_surrogate(tmdp, z, θ_old, c, Â, cliprange=0.2, features=φ), θ_old)
    assert pg.reference.relative_error(analytic, g) < 1e-12
    assert pg.reference.relative_error(cs, g) < 1e-12
    assert abs(q @ pg.ppo.clipped_surrogate(tmdp, θ_old, θ_old, c, Â, cliprange=0.2, features=φ)) < 1e-14  # E[Σ_t A_t] = 0


@pytest.mark.parametrize("param", [None, "loglinear"])
def test_clipped_surrogate_gradient_away_from_theta_old_by_complex_step(param):
    tmdp, θ, θ_old, φ = _setting(param, seed=9, scale=0.6)
    b = tk.sample_groups(tmdp, θ_old, group_size=20, rng=np.random.default_rng(4), features=φ)
    Â = np.where(b.mask, np.random.default_rng(5).standard_normal(b.tokens.shape), 0.0)
    ε = 0.2
    frac = pg.ppo.clip_fraction(tmdp, θ, θ_old, b, cliprange=ε, features=φ)
    assert 0.1 < frac < 0.95  # some tokens clipped, some not
    G = pg.ppo.clipped_surrogate_gradient(tmdp, θ, θ_old, b, Â, cliprange=ε, features=φ)
    jac = pg.reference.complex_step_jacobian(lambda z: pg.ppo.clipped_surrogate(tmdp, z, θ_old, b, Â, cliprange=ε, features=φ), θ)
    assert np.abs(G - jac).max() < 1e-12
    # the value against min(ρA, clip(ρ)A) written out with real numbers
    ρ = np.exp(tk.token_log_probs(tmdp, θ, b, features=φ) - tk.token_log_probs(tmdp, θ_old, b, features=φ))
    ref = np.where(b.mask, np.minimum(ρ * Â, np.clip(ρ, 1 - ε, 1 + ε) * Â), 0.0).sum(axis=1)
    assert np.allclose(pg.ppo.clipped_surrogate(tmdp, θ, θ_old, b, Â, cliprange=ε, features=φ), ref, atol=1e-14)
    assert frac == float((np.abs(ρ - 1) > ε)[b.mask].mean())
    with pytest.raises(ValueError, match="ε"):
        pg.ppo.clipped_surrogate(tmdp, θ, θ_old, b, Â, cliprange=1.5, features=φ)


def test_fit_values_one_step_and_fixed_point():
    tmdp, θ, _, φ = _setting("loglinear")
    V0 = np.random.default_rng(2).standard_normal(tmdp.n_prefixes)
    α, G = 0.5, 30
    V1 = pg.ppo.fit_values(tmdp, θ, V0, steps=1, step_size=α, group_size=G, rng=np.random.default_rng(8), features=φ)
    b = tk.sample_groups(tmdp, θ, group_size=G, rng=np.random.default_rng(8), features=φ)  # the same draw
    V_ref = V0.copy()
    for i in range(b.n):
        for t in range(b.lengths[i]):
            k = b.prefixes[i, t]
            V_ref[k] += α / b.n * (b.rewards[i] - V0[k])  # γ = 1: the return-to-go is r
    assert np.allclose(V1, V_ref, atol=1e-13)
    H = pg.ppo.fit_values(tmdp, θ, V0, steps=3, step_size=α, group_size=G, rng=np.random.default_rng(8), features=φ, history=True)
    assert H.shape == (4, tmdp.n_prefixes) and np.array_equal(H[0], V0) and np.allclose(H[1], V1)
    # the exact V is the fixed point of the expected update: Σ_{visits} E[G - V(s)] = 0
    ev = tk.evaluate(tmdp, θ, features=φ)
    c = tk.completions(tmdp, θ, features=φ)
    ret = pg.ppo.gae_advantages(tmdp, c, pg.ppo.token_rewards(tmdp, c), np.zeros(tmdp.n_prefixes), 1.0)
    E, prob = pg.ppo.conditional_expectation(tmdp, c, ret - ev.V[np.where(c.mask, c.prefixes, 0)] * c.mask)
    assert np.abs((prob * E).sum(axis=1)).max() < 1e-14
    # many steps from 0 bring the roots (visited every time) to their values
    V = pg.ppo.fit_values(tmdp, θ, np.zeros(tmdp.n_prefixes), steps=300, step_size=0.3, group_size=100, rng=np.random.default_rng(3), features=φ)
    assert np.abs(V[tmdp.roots] - ev.V[tmdp.roots]).max() < 0.05


def test_long_answer_mdp():
    tmdp = tk.long_answer_mdp(12, (2, 5))
    assert tmdp.n_vocab == 2 and tmdp.max_len == 12 and tmdp.prompts == ((1,), (1, 1))
    assert tmdp.n_prefixes == 2 * 12
    c = tk.completions(tmdp)
    best = [c.lengths[(c.prompt_ids == i) & (c.rewards == 1.0)] for i in range(2)]
    assert [list(x) for x in best] == [[3], [6]]  # the answer and its EOS
    assert np.all(c.rewards[c.lengths == 12] > 0)  # truncated completions earn partial credit
    with pytest.raises(ValueError, match="targets"):
        tk.long_answer_mdp(8, (8,))
