"""The KL estimators and their placements (pgnotes.kl) against independent routes.

Routes: the closed forms of k1, k2, k3 and a complex step of each, the complex-step gradient of
the exact sequence KL, a per-prefix sum over the tree (not an enumeration of completions), and
Monte Carlo from ``sample_groups`` at fixed seeds along several directions.
Book: 14_kl_and_variance (klv-estimators, klv-matrix).
"""

import numpy as np
import pytest

import pgnotes as pg
from pgnotes import kl
from pgnotes import tokens as tk


def _case(seed=0, loglinear=False):
    tmdp = tk.toy_mdp("sum")
    rng = np.random.default_rng(seed)
    φ = tk.token_features(tmdp) if loglinear else None
    shape = (tmdp.n_prefixes, 4) if φ is None else (φ.shape[2],)
    θ_ref = 0.5 * rng.standard_normal(shape)
    θ = θ_ref + 0.5 * rng.standard_normal(shape)
    return tmdp, θ, θ_ref, θ + 0.3 * rng.standard_normal(shape), φ


def test_estimators_closed_forms_and_derivatives():
    ℓ = np.linspace(-3, 3, 13)
    assert np.allclose(kl.kl_estimate(ℓ, "k1"), ℓ)
    assert np.allclose(kl.kl_estimate(ℓ, "k2"), ℓ**2 / 2)
    assert np.allclose(kl.kl_estimate(ℓ, "k3"), np.exp(-ℓ) - 1 + ℓ) and kl.kl_estimate(ℓ, "k3").min() >= 0
    for e in kl.ESTIMATORS:
        cs = np.array([pg.reference.complex_step_gradient(
            lambda z: {"k1": z, "k2": z**2 / 2, "k3": np.exp(-z) - 1 + z}[e], np.array(v)) for v in ℓ])
        assert np.allclose(kl.kl_estimate(ℓ, e, derivative=True), cs, atol=1e-14)
    # under y ∼ π, k1 and k3 are unbiased for KL(π‖π_ref); k2 is not
    rng = np.random.default_rng(0)
    π, π_ref = rng.dirichlet(np.ones(5)), rng.dirichlet(np.ones(5))
    true = π @ np.log(π / π_ref)
    means = {e: π @ kl.kl_estimate(np.log(π / π_ref), e) for e in kl.ESTIMATORS}
    assert np.isclose(means["k1"], true) and np.isclose(means["k3"], true) and not np.isclose(means["k2"], true)


@pytest.mark.parametrize("loglinear", [False, True])
def test_true_gradient_against_complex_step(loglinear):
    tmdp, θ, θ_ref, _, φ = _case(1, loglinear)
    cs = pg.reference.complex_step_gradient(lambda z: tmdp.rho @ tk.sequence_kl(tmdp, z, θ_ref, features=φ), θ)
    assert pg.reference.relative_error(kl.kl_true_gradient(tmdp, θ, θ_ref, features=φ), cs) < 1e-12


@pytest.mark.parametrize("loglinear", [False, True])
def test_matrix_cells_against_the_tree(loglinear):
    """Loss cells as sums over prefixes μ(s) Σ_a π(a|s) w(s, a) ∇log π(a|s): a different route."""
    tmdp, θ, θ_ref, θ_old, φ = _case(2, loglinear)
    M = kl.kl_gradient_matrix(tmdp, θ, θ_ref, theta_old=θ_old, features=φ)
    ev, ev_old = tk.evaluate(tmdp, θ, features=φ), tk.evaluate(tmdp, θ_old, features=φ)
    ℓ = ev.log_π - tk.evaluate(tmdp, θ_ref, features=φ).log_π
    for e in kl.ESTIMATORS:
        dk, k = kl.kl_estimate(ℓ, e, derivative=True), kl.kl_estimate(ℓ, e)
        on = ev.policy.score_contract(ev.μ[:, None] * ev.π * dk)
        none = ev.policy.score_contract(ev_old.μ[:, None] * ev_old.π * dk)
        token = ev.policy.score_contract(ev_old.μ[:, None] * ev.π * (k + dk))
        for got, ref in [(M[e, "loss", "on"], on), (M[e, "loss", "none"], none), (M[e, "loss", "token"], token)]:
            assert np.allclose(got, ref, atol=1e-13)
    # identities: k1 in the reward on-policy is ∇KL; k1 in the loss on-policy is 0;
    # with the per-token ratio k1 and k3 in the loss agree (both differentiate Σ_a π_θ k = KL_s)
    assert pg.reference.relative_error(M["k1", "reward", "on"], M["true"]) < 1e-12
    assert np.abs(M["k1", "loss", "on"]).max() < 1e-13
    assert np.allclose(M["k1", "loss", "token"], M["k3", "loss", "token"], atol=1e-13)
    # the sequence-weighted loss, differentiated in full, is ∇ E_θ[Σ_t k_t]: ∇KL for k1 and k3
    for e in ("k1", "k3"):
        assert pg.reference.relative_error(M[e, "loss", "sequence"], M["true"]) < 1e-12
    # the others are biased on this case
    for key in [("k2", "reward", "on"), ("k3", "reward", "on"), ("k2", "loss", "on"), ("k3", "loss", "on")]:
        assert pg.reference.relative_error(M[key], M["true"]) > 0.05


def test_sequence_loss_is_the_gradient_of_the_estimate_by_complex_step():
    tmdp, θ, θ_ref, θ_old, _ = _case(6)
    c = tk.completions(tmdp)  # the tree only; probabilities come from log π below

    def value(z, e):  # E_{π_z}[Σ_t k_t(z)], analytic in z
        lp = tk.token_log_probs(tmdp, z, c)
        k = {"k1": lambda u: u, "k2": lambda u: u**2 / 2, "k3": lambda u: np.exp(-u) - 1 + u}[e]
        u = (lp - tk.token_log_probs(tmdp, θ_ref, c)) * c.mask
        return (tmdp.rho[c.prompt_ids] * np.exp(lp.sum(axis=1))) @ (k(u) * c.mask).sum(axis=1)

    for e in kl.ESTIMATORS:
        cs = pg.reference.complex_step_gradient(lambda z: value(z, e), θ)
        got = kl.kl_gradient(tmdp, θ, θ_ref, estimator=e, where="loss", importance="sequence", theta_old=θ_old)
        assert pg.reference.relative_error(got, cs) < 1e-10


def test_on_policy_at_theta_old_equals_theta():
    tmdp, θ, θ_ref, _, _ = _case(3)
    for e in kl.ESTIMATORS:
        assert np.allclose(kl.kl_gradient(tmdp, θ, θ_ref, estimator=e, where="reward", importance="token",
                                          theta_old=θ), kl.kl_gradient(tmdp, θ, θ_ref, estimator=e), atol=1e-14)
        assert np.allclose(kl.kl_gradient(tmdp, θ, θ_ref, estimator=e, where="loss", importance="none", theta_old=θ),
                           kl.kl_gradient(tmdp, θ, θ_ref, estimator=e, where="loss"), atol=1e-14)
    # at θ_old = θ the per-token-weighted k1 loss is the on-policy k2 loss: E[(ℓ + 1) ∇log π] = E[ℓ ∇log π]
    assert np.allclose(kl.kl_gradient(tmdp, θ, θ_ref, estimator="k1", where="loss", importance="token", theta_old=θ),
                       kl.kl_gradient(tmdp, θ, θ_ref, estimator="k2", where="loss"), atol=1e-13)


@pytest.mark.parametrize("e", kl.ESTIMATORS)
def test_reward_and_loss_against_monte_carlo(e):
    tmdp, θ, θ_ref, θ_old, φ = _case(4, loglinear=True)
    b = tk.sample_groups(tmdp, θ_old, group_size=1, rng=np.random.default_rng(11),
                         prompt_ids=np.repeat(np.arange(3), 30_000), features=φ)  # uniform ρ
    lp, lp_ref, lp_old = (tk.token_log_probs(tmdp, t, b, features=φ) for t in (θ, θ_ref, θ_old))
    ρ = np.exp(lp - lp_old) * b.mask
    k_old = kl.kl_estimate(lp_old - lp_ref, e) * b.mask
    w_reward = ρ * np.cumsum(k_old[:, ::-1], axis=1)[:, ::-1]
    w_loss = ρ * (kl.kl_estimate(lp - lp_ref, e) + kl.kl_estimate(lp - lp_ref, e, derivative=True))
    K = (kl.kl_estimate(lp - lp_ref, e) * b.mask).sum(axis=1, keepdims=True)
    W = np.exp((lp - lp_old).sum(axis=1, keepdims=True))
    w_seq = W * (K + kl.kl_estimate(lp - lp_ref, e, derivative=True))
    D = np.random.default_rng(5).standard_normal((4, θ.size))
    for where, imp, w in [("reward", "token", w_reward), ("loss", "token", w_loss), ("loss", "sequence", w_seq)]:
        exact = kl.kl_gradient(tmdp, θ, θ_ref, estimator=e, where=where, importance=imp, theta_old=θ_old,
                               features=φ)
        mean, se = pg.estimators.mean_and_stderr(tk.score_sum(tmdp, θ, b, w * b.mask, features=φ) @ D.T)
        assert np.abs((mean - D @ exact) / se).max() < 4.0


def test_bad_inputs():
    tmdp, θ, θ_ref, θ_old, _ = _case()
    with pytest.raises(ValueError, match="estimator"):
        kl.kl_estimate([0.1], "k4")
    with pytest.raises(ValueError, match="where"):
        kl.kl_gradient(tmdp, θ, θ_ref, where="critic")
    with pytest.raises(ValueError, match="importance"):
        kl.kl_gradient(tmdp, θ, θ_ref, importance="full")
    with pytest.raises(ValueError, match="theta_old"):
        kl.kl_gradient(tmdp, θ, θ_ref, importance="token")
    for imp in ("none", "sequence"):
        with pytest.raises(ValueError, match="importance='token'"):
            kl.kl_gradient(tmdp, θ, θ_ref, where="reward", importance=imp, theta_old=θ_old)
    with pytest.raises(ValueError, match="θ_ref"):
        kl.kl_gradient(tmdp, θ, None)
    with pytest.raises(TypeError):
        kl.kl_estimate("x", "k1")
