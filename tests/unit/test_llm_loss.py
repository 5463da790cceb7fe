"""The debugging lab (pgnotes.llm_loss): the correct loss is unbiased, every mistake has its signature.

Each mistake of ``pg.llm_loss.MISTAKES`` is tested twice: its expected estimate against an
independent closed form where one exists (the KL pull alone, the k3 gradient, σ_real/σ_pad,
1/E[n], E[N/(n + S)] by Monte Carlo), and its numeric signature (angle or relative error
against the correct estimate) above a threshold in the book's two settings.
"""

import numpy as np
import pytest

import pgnotes as pg
from pgnotes import llm_loss
from pgnotes import tokens as tk

β, λ = 0.05, 0.95  # the settings of the book's summary table


def toy(param="loglinear"):
    tmdp = tk.toy_mdp("sum")
    φ = tk.token_features(tmdp) if param == "loglinear" else None
    shape = (φ.shape[2],) if φ is not None else (tmdp.n_prefixes, tmdp.n_vocab)
    rng = np.random.default_rng(0)
    θ_ref = 0.5 * rng.standard_normal(shape)
    return tmdp, φ, θ_ref, θ_ref + 0.7 * rng.standard_normal(shape)


def long_answer():
    tmdp = tk.long_answer_mdp()
    φ = tk.token_features(tmdp)
    rng = np.random.default_rng(0)
    θ_ref = 0.3 * rng.standard_normal(φ.shape[2])
    θ_ref[tmdp.n_vocab**2 + tmdp.n_vocab * np.arange(tmdp.max_len)] -= 2.0  # the (position, EOS) features
    return tmdp, φ, θ_ref, θ_ref + 0.5 * rng.standard_normal(φ.shape[2])


SETTINGS = {"toy": toy, "long": long_answer}


@pytest.mark.parametrize("name,make", [("toy", toy), ("long_answer", long_answer)])
def test_the_package_settings_are_the_draws_of_the_chapters(name, make):
    st = llm_loss.setting(name)
    tmdp, φ, θ_ref, θ = make()
    assert np.array_equal(st.θ_ref, θ_ref) and np.array_equal(st.θ, θ) and np.array_equal(st.features, φ)
    assert st.tmdp.n_prefixes == tmdp.n_prefixes and (st.β, st.λ) == (β, λ)


@pytest.mark.parametrize("name", ["toy", "long_answer"])
def test_finite_batch_whitening_is_biased_and_the_bias_shrinks_with_n(name):
    st = llm_loss.setting(name)
    kw = dict(lam=st.λ, beta=st.β, theta_ref=st.θ_ref, features=st.features)
    g = tk.policy_gradient(st.tmdp, st.θ, beta=st.β, theta_ref=st.θ_ref, features=st.features)
    angles = [llm_loss.angle(llm_loss.whitened_expectation(st.tmdp, st.θ, N, **kw), g) for N in (1, 2)]
    assert angles[0] > angles[1] > 1.0  # biased at finite N, less so as N grows


def test_finite_batch_whitening_by_monte_carlo():
    # evidence: per-pair whitening of sampled pairs vs the exact sum over every ordered pair
    st = llm_loss.setting("long_answer")
    tmdp, φ, M = st.tmdp, st.features, 40_000
    b = tk.sample_groups(tmdp, st.θ, group_size=1, n_prompts=2 * M, rng=np.random.default_rng(7), features=φ)
    A = llm_loss.token_weights(tmdp, st.θ, b, lam=st.λ, beta=st.β, theta_ref=st.θ_ref, features=φ).reshape(M, 2, -1)
    m = b.mask.reshape(M, 2, -1)
    μ = A.sum(axis=(1, 2)) / m.sum(axis=(1, 2))
    sd = np.sqrt(np.where(m, (A - μ[:, None, None]) ** 2, 0).sum(axis=(1, 2)) / m.sum(axis=(1, 2)))
    w = np.where(m & (sd[:, None, None] > 1e-12), (A - μ[:, None, None]) / np.maximum(sd, 1e-12)[:, None, None], 0)
    X = tk.score_sum(tmdp, st.θ, b, w.reshape(2 * M, -1), features=φ).reshape(M, 2, -1).mean(axis=1)
    e = llm_loss.whitened_expectation(tmdp, st.θ, 2, lam=st.λ, beta=st.β, theta_ref=st.θ_ref, features=φ)
    D = np.vstack([e / np.linalg.norm(e), np.random.default_rng(3).standard_normal((3, e.size))])
    mean, se = pg.estimators.mean_and_stderr(X @ D.T)
    assert np.abs((mean - D @ e) / se).max() < 4.0


@pytest.mark.parametrize("name,param", [("toy", "loglinear"), ("toy", None), ("long", None)])
@pytest.mark.parametrize("b", [0.0, 0.1])
def test_the_correct_loss_is_unbiased_exactly_for_every_lambda(name, param, b):
    tmdp, φ, θ_ref, θ = toy(param) if name == "toy" else long_answer()
    g = tk.policy_gradient(tmdp, θ, beta=b, theta_ref=θ_ref, features=φ)
    for lam in (1.0, 0.95, 0.5, 0.0):
        e = llm_loss.expected_estimate(tmdp, θ, lam=lam, beta=b, theta_ref=θ_ref, features=φ)
        assert pg.reference.relative_error(e, g) < 1e-12


def test_the_correct_loss_is_unbiased_by_monte_carlo():
    tmdp, φ, θ_ref, θ = toy()
    b = tk.sample_groups(tmdp, θ, group_size=20_000, rng=np.random.default_rng(11), features=φ)
    X = llm_loss.policy_gradient_estimate(tmdp, θ, b, lam=λ, beta=β, theta_ref=θ_ref, features=φ)
    g = tk.policy_gradient(tmdp, θ, beta=β, theta_ref=θ_ref, features=φ)
    D = np.vstack([g / np.linalg.norm(g), np.random.default_rng(1).standard_normal((3, g.size))])
    mean, se = pg.estimators.mean_and_stderr(X @ D.T)
    assert np.abs((mean - D @ g) / se).max() < 4.0


def test_correct_whitening_only_rescales():
    tmdp, φ, θ_ref, θ = toy()
    c = tk.completions(tmdp, θ, features=φ)
    q = tmdp.rho[c.prompt_ids] * c.prob
    Â = pg.ppo.gae_advantages(tmdp, c, pg.ppo.token_rewards(tmdp, c, beta=β, θ=θ, theta_ref=θ_ref, features=φ), tk.state_values(tmdp, θ, beta=β, theta_ref=θ_ref, features=φ), λ)
    x, wt = Â[c.mask], np.broadcast_to(q[:, None], Â.shape)[c.mask]  # every real token, its probability
    σ = np.sqrt(np.cov(x, aweights=wt, bias=True))
    e = llm_loss.expected_estimate(tmdp, θ, lam=λ, beta=β, theta_ref=θ_ref, whiten=True, features=φ)
    assert pg.reference.relative_error(e, tk.policy_gradient(tmdp, θ, beta=β, theta_ref=θ_ref, features=φ) / σ) < 1e-12


@pytest.mark.parametrize("name", ["toy", "long"])
def test_reward_on_pad_leaves_only_the_kl_pull(name):
    tmdp, φ, θ_ref, θ = SETTINGS[name]()
    pull = tk.policy_gradient(tmdp, θ, beta=β, theta_ref=θ_ref, features=φ) - tk.policy_gradient(tmdp, θ, features=φ)
    for lam in (1.0, λ, 0.5):
        e = llm_loss.expected_estimate(tmdp, θ, mistake="reward_on_pad", lam=lam, beta=β, theta_ref=θ_ref, features=φ)
        assert pg.reference.relative_error(e, pull) < 1e-10  # = -β ∇KL: the verifier's reward is gone
    c = tk.completions(tmdp, θ, features=φ)
    w = llm_loss.token_weights(tmdp, θ, c, mistake="reward_on_pad", critic=np.zeros(tmdp.n_prefixes), features=φ)
    assert np.all(w == 0)  # without KL and critic nothing is left at all
    assert np.abs(llm_loss.expected_estimate(tmdp, θ, mistake="reward_on_pad", features=φ)).max() < 1e-14
    sig = llm_loss.compare(tmdp, θ, "reward_on_pad", lam=λ, beta=β, theta_ref=θ_ref, features=φ)
    assert sig["angle"] > 20 and sig["relative_error"] > 0.5


@pytest.mark.parametrize("name", ["toy", "long"])
def test_eos_masked_drops_the_stop_decision(name):
    tmdp, φ, θ_ref, θ = SETTINGS[name]()
    c = tk.completions(tmdp, θ, features=φ)
    w = llm_loss.token_weights(tmdp, θ, c, mistake="eos_masked", lam=λ, beta=β, theta_ref=θ_ref, features=φ)
    assert np.all(w[c.tokens == tk.EOS] == 0) and np.any(w[(c.tokens != tk.EOS) & c.mask] != 0)
    sig = llm_loss.compare(tmdp, θ, "eos_masked", lam=λ, beta=β, theta_ref=θ_ref, features=φ)
    assert sig["angle"] > 8 and sig["relative_error"] > 0.5


def test_kl_twice_adds_the_gradient_of_the_forward_per_prefix_kl():
    tmdp, φ, θ_ref, θ = toy()
    sig = llm_loss.compare(tmdp, θ, "kl_twice", lam=λ, beta=β, theta_ref=θ_ref, features=φ)
    ev, π_ref = tk.evaluate(tmdp, θ, features=φ), tk.evaluate(tmdp, θ_ref, features=φ).π

    def forward_kl(z):  # Σ_s μ(s) KL(π_ref(·|s) ‖ π_z(·|s)), μ frozen at θ: a forward KL
        return np.sum(ev.μ * np.sum(π_ref * (np.log(π_ref) - tk.evaluate(tmdp, z, features=φ).log_π), axis=1))

    extra = -β * pg.reference.complex_step_gradient(forward_kl, θ)
    assert pg.reference.relative_error(sig["expected"] - sig["correct"], extra) < 1e-10
    assert sig["angle"] > 10 and sig["relative_error"] > 0.3
    t_long, φ_long, ref_long, θ_long = long_answer()
    sig_long = llm_loss.compare(t_long, θ_long, "kl_twice", lam=λ, beta=β, theta_ref=ref_long, features=φ_long)
    assert sig_long["relative_error"] > 0.05
    with pytest.raises(ValueError, match="β > 0"):
        llm_loss.token_weights(tmdp, θ, tk.completions(tmdp, θ, features=φ), mistake="kl_twice", features=φ)


@pytest.mark.parametrize("name", ["toy", "long"])
def test_token_mean_scales_by_the_mean_length_and_is_biased_in_small_batches(name):
    tmdp, φ, θ_ref, θ = SETTINGS[name]()
    kw = dict(lam=λ, beta=β, theta_ref=θ_ref, features=φ)
    c = tk.completions(tmdp, θ, features=φ)
    En = float(tmdp.rho[c.prompt_ids] * c.prob @ c.lengths)
    correct = llm_loss.expected_estimate(tmdp, θ, **kw)
    tm = llm_loss.expected_estimate(tmdp, θ, aggregation="token_mean", **kw)
    assert llm_loss.angle(tm, correct) < 1e-5 and abs(np.linalg.norm(tm) / np.linalg.norm(correct) - 1 / En) < 1e-12
    seq = llm_loss.expected_estimate(tmdp, θ, aggregation="sequence_mean", **kw)
    one = llm_loss.expected_estimate(tmdp, θ, aggregation="token_mean", batch_size=1, **kw)
    assert np.abs(one - seq).max() < 1e-15  # a batch of one completion: the sequence mean
    const = llm_loss.expected_estimate(tmdp, θ, aggregation="constant", **kw)
    assert pg.reference.relative_error(const, correct / tmdp.max_len) < 1e-14  # Dr. GRPO: a constant
    angles = [llm_loss.angle(llm_loss.expected_estimate(tmdp, θ, aggregation="token_mean", batch_size=N, **kw), correct) for N in (1, 4, 16, 64)]
    assert angles[0] > 5 and all(a > b for a, b in zip(angles, angles[1:]))


def test_token_mean_finite_batch_by_monte_carlo():
    tmdp, φ, θ_ref, θ = toy()
    N, M = 8, 30_000
    b = tk.sample_groups(tmdp, θ, group_size=1, n_prompts=N * M, rng=np.random.default_rng(5), features=φ)
    w = llm_loss.token_weights(tmdp, θ, b, features=φ)  # sum aggregation, exact critic
    per_batch_tokens = b.lengths.reshape(M, N).sum(axis=1)
    w = w * (N / per_batch_tokens)[np.repeat(np.arange(M), N)][:, None]  # the token mean of each batch
    X = tk.score_sum(tmdp, θ, b, w, features=φ).reshape(M, N, -1).mean(axis=1)
    e = llm_loss.expected_estimate(tmdp, θ, aggregation="token_mean", batch_size=N, features=φ)
    D = np.vstack([e / np.linalg.norm(e), np.random.default_rng(2).standard_normal((3, e.size))])
    mean, se = pg.estimators.mean_and_stderr(X @ D.T)
    assert np.abs((mean - D @ e) / se).max() < 4.0


@pytest.mark.parametrize("name", ["toy", "long"])
def test_sequence_mean_changes_the_direction(name):
    tmdp, φ, θ_ref, θ = SETTINGS[name]()
    kw = dict(lam=λ, beta=β, theta_ref=θ_ref, features=φ)
    seq, correct = llm_loss.expected_estimate(tmdp, θ, aggregation="sequence_mean", **kw), llm_loss.expected_estimate(tmdp, θ, **kw)
    assert llm_loss.angle(seq, correct) > 10 and pg.reference.relative_error(seq, correct) > 0.5


@pytest.mark.parametrize("name,threshold", [("toy", 0.03), ("long", 0.3)])
def test_whitening_over_the_padded_batch_changes_the_scale(name, threshold):
    tmdp, φ, θ_ref, θ = SETTINGS[name]()
    kw = dict(lam=λ, beta=β, theta_ref=θ_ref, features=φ)
    c = tk.completions(tmdp, θ, features=φ)
    q = tmdp.rho[c.prompt_ids] * c.prob
    Â = pg.ppo.gae_advantages(tmdp, c, pg.ppo.token_rewards(tmdp, c, beta=β, θ=θ, theta_ref=θ_ref, features=φ), tk.state_values(tmdp, θ, beta=β, theta_ref=θ_ref, features=φ), λ)
    wt = np.broadcast_to(q[:, None], Â.shape)
    σ_real = np.sqrt(np.cov(Â[c.mask], aweights=wt[c.mask], bias=True))
    σ_pad = np.sqrt(np.cov(Â.ravel(), aweights=wt.ravel(), bias=True))  # PAD positions hold 0
    sig = llm_loss.compare(tmdp, θ, "whiten_padded", **kw)
    assert sig["angle"] < 1e-5  # the mean shift is a constant baseline: no bias under the sum
    assert abs(sig["norm_ratio"] - σ_real / σ_pad) < 1e-10
    assert sig["relative_error"] > threshold


@pytest.mark.parametrize("mistake,threshold", [("zero_critic", 15), ("prompt_blind_critic", 2)])
def test_wrong_critics_bias_gae_below_lambda_one(mistake, threshold):
    tmdp, φ, θ_ref, θ = long_answer()
    sig1 = llm_loss.compare(tmdp, θ, mistake, lam=1.0, beta=β, theta_ref=θ_ref, features=φ)
    assert sig1["relative_error"] < 1e-12  # at λ = 1 any critic is a baseline
    sig = llm_loss.compare(tmdp, θ, mistake, lam=λ, beta=β, theta_ref=θ_ref, features=φ)
    assert sig["angle"] > threshold
    t_toy, φ_toy, ref_toy, θ_toy = toy()
    toy_sig = llm_loss.compare(t_toy, θ_toy, mistake, lam=λ, beta=β, theta_ref=ref_toy, features=φ_toy)
    assert toy_sig["angle"] > 1  # smaller on completions of at most 4 tokens, but there


def test_prompt_blind_values_is_the_weighted_least_squares_fit():
    tmdp, φ, θ_ref, θ = toy()
    ev = tk.evaluate(tmdp, θ, features=φ)
    Vb = llm_loss.prompt_blind_values(tmdp, θ, features=φ)
    key = [(len(y), y[-1] if y else None) for _, y in tmdp.prefixes]
    for cls in set(key):
        idx = [k for k, kk in enumerate(key) if kk == cls]
        assert np.ptp(Vb[idx]) == 0  # one value per (position, last token) class
        assert abs(ev.μ[idx] @ (ev.V[idx] - Vb[idx])) < 1e-14  # the normal equation of the fit
    assert np.ptp(Vb[tmdp.roots]) == 0 and np.ptp(ev.V[tmdp.roots]) > 0.01  # blind to the prompt


def test_every_mistake_has_a_signature_in_the_book_settings():
    for name, make in SETTINGS.items():
        tmdp, φ, θ_ref, θ = make()
        for mistake in llm_loss.MISTAKES:
            sig = llm_loss.compare(tmdp, θ, mistake, lam=λ, beta=β, theta_ref=θ_ref, features=φ)
            assert sig["angle"] > 1.0 or sig["relative_error"] > 0.02, (name, mistake, sig["angle"])


def test_export_and_check_a_user_implementation():
    tmdp, φ, θ_ref, θ = toy()
    data = llm_loss.export_completions(tmdp, θ, beta=β, theta_ref=θ_ref, features=φ)
    N, L = data["mask"].shape
    assert data["scores"].shape == (N, L, θ.size) and abs(data["weight"].sum() - 1) < 1e-12
    # the exported scores are the per-token gradients of log π
    jac = pg.reference.complex_step_jacobian(lambda z: tk.token_log_probs(tmdp, z, tk.completions(tmdp, θ, features=φ), features=φ), θ)
    assert np.abs(jac - data["scores"]).max() < 1e-12
    ok = llm_loss.check_weights(data, data["advantages"])  # the exact advantages: the target itself
    assert ok["relative_error"] < 1e-12

    def user_gae(data, lam, bug):
        # a user's numpy GAE over the exported arrays, γ = 1, with the KL in the reward
        r = -β * (data["logp"] - data["logp_ref"]) * data["mask"]
        pos = data["lengths"] - (0 if bug else 1)  # the bug: the first PAD
        rows = pos < L
        r[np.flatnonzero(rows), pos[rows]] += data["rewards"][rows]
        r = r * data["mask"]
        v = data["values"]
        v_next = np.concatenate([v[:, 1:], np.zeros((N, 1))], axis=1)
        δ = (r + v_next - v) * data["mask"]
        A, run = np.zeros_like(δ), np.zeros(N)
        for t in reversed(range(L)):
            run = δ[:, t] + lam * run
            A[:, t] = run
        return A * data["mask"]

    good = llm_loss.check_weights(data, user_gae(data, λ, bug=False))
    bad = llm_loss.check_weights(data, user_gae(data, λ, bug=True))
    assert good["relative_error"] < 1e-12
    assert bad["angle"] > 20
    with pytest.raises(ValueError, match="shape"):
        llm_loss.check_weights(data, np.zeros((N, L + 1)))


def test_bad_inputs():
    tmdp, φ, θ_ref, θ = toy()
    c = tk.completions(tmdp, θ, features=φ)
    with pytest.raises(ValueError, match="unknown mistake"):
        llm_loss.token_weights(tmdp, θ, c, mistake="off_by_one", features=φ)
    with pytest.raises(ValueError, match="unknown mistake"):
        llm_loss.compare(tmdp, θ, None, features=φ)
    with pytest.raises(ValueError, match="batch_size"):
        llm_loss.token_weights(tmdp, θ, c, aggregation="token_mean", batch_size=0, features=φ)
    with pytest.raises(ValueError, match="unknown aggregation"):
        llm_loss.token_weights(tmdp, θ, c, aggregation="mean", features=φ)
    with pytest.raises(ValueError, match="unknown setting"):
        llm_loss.setting("big")
    assert np.isnan(llm_loss.angle(np.zeros(3), np.ones(3)))
    assert abs(llm_loss.angle([1, 0], [0, 2]) - 90) < 1e-12


def test_compare_measures_against_the_kl_regularised_gradient():
    st = llm_loss.setting("toy")
    kw = dict(lam=st.λ, beta=st.β, theta_ref=st.θ_ref, features=st.features)
    sig = llm_loss.compare(st.tmdp, st.θ, "kl_twice", **kw)
    g_β = tk.policy_gradient(st.tmdp, st.θ, beta=st.β, theta_ref=st.θ_ref, features=st.features)
    g_0 = tk.policy_gradient(st.tmdp, st.θ, features=st.features)
    assert np.array_equal(sig["exact"], g_β)
    assert llm_loss.angle(g_β, g_0) > 1.0  # the KL term moves ∇J_β: reading β as 0 would show
