"""pgnotes.training: exact metrics against an enumeration, one update against ∇J, the loop's accounting."""

import numpy as np
import pytest

from pgnotes import llm_loss, training as tr, tokens as tk
from pgnotes.estimators import mean_and_stderr


@pytest.fixture(scope="module")
def toy():
    return llm_loss.setting("toy")


@pytest.mark.parametrize("name", ["toy", "long_answer"])
def test_exact_metrics_match_an_enumeration(name):
    s = llm_loss.setting(name)
    m = tr.exact_metrics(s.tmdp, s.θ, theta_ref=s.θ_ref, features=s.features)
    c = tk.completions(s.tmdp, s.θ, features=s.features)
    q = tk.row_weights(s.tmdp, c)
    logp = tk.log_probability(s.tmdp, s.θ, c, features=s.features)
    logp_ref = tk.log_probability(s.tmdp, s.θ_ref, c, features=s.features)
    assert m["J"] == pytest.approx(q @ c.rewards, abs=1e-12)
    assert m["length"] == pytest.approx(q @ c.lengths, abs=1e-12)
    assert m["entropy"] == pytest.approx(-q @ logp, abs=1e-12)
    assert m["kl"] == pytest.approx(q @ (logp - logp_ref), abs=1e-12)
    assert tr.exact_metrics(s.tmdp, s.θ, features=s.features)["kl"] == 0.0


def test_rloo_update_is_unbiased_for_the_exact_gradient(toy):
    """Monte Carlo over seeds of one RLOO step (α = 1) vs the exact ∇J, along 4 directions."""
    g = tk.policy_gradient(toy.tmdp, toy.θ, features=toy.features)
    steps = np.array([tr.train(toy.tmdp, toy.θ, algorithm="rloo", token_budget=1, group_size=4,
                               step_size=1.0, rng=np.random.default_rng(seed),
                               features=toy.features).θ - toy.θ for seed in range(1500)])
    D = np.vstack([g / np.linalg.norm(g), np.random.default_rng(7).standard_normal((3, g.size))])
    mean, se = mean_and_stderr(steps @ D.T)
    assert np.abs((mean - D @ g) / se).max() < 4.5


def test_grpo_update_is_not_the_gradient(toy):
    """Dividing by |y| and by the std changes the expected step: far from ∇J on the toy."""
    g = tk.policy_gradient(toy.tmdp, toy.θ, features=toy.features)
    steps = np.array([tr.train(toy.tmdp, toy.θ, algorithm="grpo", token_budget=1, group_size=4,
                               step_size=1.0, rng=np.random.default_rng(seed),
                               features=toy.features).θ - toy.θ for seed in range(600)])
    mean, se = mean_and_stderr(steps)
    assert np.abs((mean - g)[se > 0] / se[se > 0]).max() > 6


def test_budget_and_record(toy):
    run = tr.train(toy.tmdp, toy.θ_ref, algorithm="ppo", token_budget=500, group_size=4,
                   step_size=0.5, rng=np.random.default_rng(0), beta=0.05, theta_ref=toy.θ_ref,
                   features=toy.features, epochs=2, value_clip=0.2, entropy_coef=0.01)
    assert run.tokens[0] == 0 and np.all(np.diff(run.tokens) > 0)
    assert run.tokens[-2] < 500 <= run.tokens[-1]
    assert run.kl[0] == pytest.approx(0.0, abs=1e-12)
    assert len({len(run.J), len(run.kl), len(run.entropy), len(run.length), len(run.beta)}) == 1
    again = tr.train(toy.tmdp, toy.θ_ref, algorithm="ppo", token_budget=500, group_size=4,
                     step_size=0.5, rng=np.random.default_rng(0), beta=0.05, theta_ref=toy.θ_ref,
                     features=toy.features, epochs=2, value_clip=0.2, entropy_coef=0.01)
    assert np.array_equal(run.J, again.J)  # seeded


def test_kl_controller_by_hand():
    assert tr.kl_controller(0.1, 0.12, target=0.1, horizon=100, n_steps=10) == pytest.approx(0.102)
    assert tr.kl_controller(0.1, 5.0, target=0.1, horizon=100, n_steps=10) == pytest.approx(0.102)
    assert tr.kl_controller(0.1, 0.0, target=0.1, horizon=100, n_steps=10) == pytest.approx(0.098)


def test_adaptive_beta_moves_toward_the_target(toy):
    kw = dict(algorithm="ppo", token_budget=3000, group_size=4, step_size=1.0,
              theta_ref=toy.θ_ref, features=toy.features, beta=0.05, kl_horizon=200.0)
    low = tr.train(toy.tmdp, toy.θ_ref, rng=np.random.default_rng(1), kl_target=0.01, **kw)
    high = tr.train(toy.tmdp, toy.θ_ref, rng=np.random.default_rng(1), kl_target=100.0, **kw)
    assert low.beta[-1] > 0.05 > high.beta[-1]


def test_entropy_bonus_keeps_entropy(toy):
    kw = dict(algorithm="grpo", token_budget=4000, group_size=8, step_size=1.0,
              features=toy.features)
    plain = tr.train(toy.tmdp, toy.θ_ref, rng=np.random.default_rng(2), **kw)
    bonus = tr.train(toy.tmdp, toy.θ_ref, rng=np.random.default_rng(2), entropy_coef=0.5, **kw)
    assert bonus.entropy[-1] > plain.entropy[-1]


@pytest.mark.parametrize("bad, error", [
    (dict(algorithm="ppo2"), ValueError),
    (dict(token_budget=0), ValueError),
    (dict(step_size=0.0), ValueError),
    (dict(beta=0.1), ValueError),
    (dict(kl_target=0.1), ValueError),
    (dict(tis_cap=0.5), ValueError),
    (dict(value_clip=-1.0), ValueError),
    (dict(rng=0), TypeError),
])
def test_bad_input(toy, bad, error):
    kw = dict(algorithm="rloo", token_budget=10, group_size=2, step_size=1.0,
              rng=np.random.default_rng(0), features=toy.features)
    with pytest.raises(error):
        tr.train(toy.tmdp, toy.θ, **{**kw, **bad})


@pytest.mark.parametrize("name", ["toy", "long_answer"])
def test_mismatch_expectation(name):
    """No mismatch: every correction gives ∇J; with one, only the sequence ratio does."""
    s = llm_loss.setting(name)
    g = tk.policy_gradient(s.tmdp, s.θ, features=s.features)
    for k in ("none", "token", "sequence"):
        e = tr.mismatch_expectation(s.tmdp, s.θ, s.θ, correction=k, cap=2.0, features=s.features)
        assert np.abs(e - g).max() < 1e-12
    roll = s.θ + 0.2 * np.random.default_rng(0).standard_normal(s.θ.shape)
    err = {k: np.linalg.norm(tr.mismatch_expectation(s.tmdp, s.θ, roll, correction=k,
                                                      features=s.features) - g)
           for k in ("none", "token", "sequence")}
    assert err["sequence"] < 1e-12 < err["token"] < err["none"]
    with pytest.raises(ValueError):
        tr.mismatch_expectation(s.tmdp, s.θ, roll, correction="tis", features=s.features)
    with pytest.raises(ValueError):
        tr.mismatch_expectation(s.tmdp, s.θ, roll, correction="token", cap=0.5, features=s.features)
