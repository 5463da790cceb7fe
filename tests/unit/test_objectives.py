"""pgnotes.objectives against a brute-force enumeration of every group of G = 2 completions,
complex steps, sampled groups, and the closed forms of the book (GRPO, DAPO and GSPO)."""

import itertools

import numpy as np
import pytest

import pgnotes as pg
from pgnotes import objectives as ob
from pgnotes import tokens as tk

TMDP = tk.toy_mdp("sum")
PHI = tk.token_features(TMDP)
_rng = np.random.default_rng(5)
THETA_OLD = 0.5 * _rng.standard_normal(PHI.shape[2])
THETA = THETA_OLD + 0.4 * _rng.standard_normal(PHI.shape[2])


def brute_force(θ, θ_old, advantage, ratio, aggregation, lo, hi, dynamic, overlong):
    """Σ over every ordered pair of completions of a prompt, written without the conditioning."""
    c = tk.completions(TMDP, θ_old, features=PHI)
    lw = (tk.token_log_probs(TMDP, θ, c, features=PHI)
          - tk.token_log_probs(TMDP, θ_old, c, features=PHI))
    n = c.lengths
    if ratio == "token":
        w = np.exp(lw)
    else:
        tot = lw.sum(1) / (n if ratio == "geometric" else 1)
        w = np.repeat(np.exp(tot)[:, None], lw.shape[1], axis=1)
    trunc = (n == TMDP.max_len) & (c.tokens[np.arange(c.n), n - 1] != 0)
    keep = ~trunc if overlong else np.ones(c.n, bool)
    adv = ob.advantage_rule(advantage)
    total = 0.0
    for x in range(TMDP.n_prompts):
        rows = np.flatnonzero(c.prompt_ids == x)
        p_mix = 1 - sum(c.prob[rows][c.rewards[rows] == v].sum() ** 2
                        for v in np.unique(c.rewards[rows]))
        for i, j in itertools.product(rows, rows):
            r = np.array([c.rewards[i], c.rewards[j]])
            if dynamic and r[0] == r[1]:
                continue
            A = adv(r[None])[0]
            kept_tokens = n[i] * keep[i] + n[j] * keep[j]
            value = 0.0
            for k, a_k in zip((i, j), A):
                if not keep[k]:
                    continue
                a = {"sequence": 1 / (2 * n[k]), "constant": 1 / (2 * TMDP.max_len),
                     "token": 1 / kept_tokens}[aggregation]
                ww = w[k, :n[k]]
                clipped = ww if lo is None else np.clip(ww, 1 - lo, 1 + hi)
                value += a * np.minimum(ww * a_k, clipped * a_k).sum()
            total += TMDP.rho[x] * c.prob[i] * c.prob[j] * value / (p_mix if dynamic else 1)
    return total


CASES = [
    ("grpo", "token", "sequence", 0.2, 0.2, False, False),
    ("dr_grpo", "token", "constant", 0.2, 0.28, False, False),
    ("grpo", "token", "token", 0.2, 0.28, True, True),
    ("rloo", "geometric", "sequence", 0.1, 0.1, False, True),
    ("dr_grpo", "product", "token", None, None, True, False),
]


@pytest.mark.parametrize("case", CASES)
def test_expected_surrogate_matches_brute_force_pairs(case):
    advantage, ratio, agg, lo, hi, dyn, over = case
    exact = ob.expected_surrogate(TMDP, THETA, THETA_OLD, group_size=2, advantage=advantage,
                                  ratio=ratio, aggregation=agg, cliprange_low=lo, cliprange_high=hi,
                                  dynamic_sampling=dyn, overlong_filter=over, features=PHI)
    brute = brute_force(THETA, THETA_OLD, advantage, ratio, agg, lo, hi, dyn, over)
    assert abs(exact - brute) < 1e-12 * (1 + abs(brute))
    assert abs(brute) > 1e-4  # the comparison is not between two zeros


@pytest.mark.parametrize("case", CASES)
def test_gradient_matches_complex_step(case):
    advantage, ratio, agg, lo, hi, dyn, over = case
    kw = dict(group_size=3, advantage=advantage, ratio=ratio, aggregation=agg, cliprange_low=lo,
              cliprange_high=hi, dynamic_sampling=dyn, overlong_filter=over, features=PHI)
    g = ob.expected_surrogate_gradient(TMDP, THETA, THETA_OLD, **kw)
    rng = np.random.default_rng(0)
    for _ in range(3):
        u = rng.standard_normal(THETA.size)
        cs = ob.expected_surrogate(TMDP, THETA + 1e-20j * u, THETA_OLD, **kw).imag / 1e-20
        assert abs(g @ u - cs) < 1e-10 * (1 + abs(cs))


def test_at_theta_old_it_is_the_group_estimator():
    g = ob.expected_surrogate_gradient(TMDP, THETA_OLD, THETA_OLD, group_size=4, features=PHI)
    ref = pg.groups.group_estimator_expectation(TMDP, THETA_OLD, 4, ob.advantage_rule("grpo"),
                                                sequence_weight=lambda c: 1 / c.lengths, features=PHI)
    assert np.abs(g - ref).max() < 1e-13 and np.abs(ref).max() > 1e-3


def test_full_product_ratio_with_rloo_is_the_true_gradient():
    g = ob.expected_surrogate_gradient(TMDP, THETA, THETA_OLD, group_size=4, advantage="rloo",
                                       ratio="product", aggregation="sequence",
                                       cliprange_low=None, features=PHI)
    true = tk.policy_gradient(TMDP, THETA, features=PHI)
    assert np.abs(g - true).max() < 1e-13


def test_dynamic_sampling_divides_by_the_probability_of_a_mixed_group():
    kw = dict(group_size=4, advantage="dr_grpo", features=PHI)
    base = ob.expected_surrogate_gradient(TMDP, THETA_OLD, THETA_OLD, **kw)
    p = tk.evaluate(TMDP, THETA_OLD, features=PHI).reward  # success rate per prompt
    mixed = ob.dynamic_sampling_probability(TMDP, THETA_OLD, group_size=4, features=PHI)
    assert np.allclose(mixed, 1 - p**4 - (1 - p) ** 4, atol=1e-14)
    dyn = ob.expected_surrogate_gradient(TMDP, THETA_OLD, THETA_OLD, dynamic_sampling=True, **kw)
    per = [pg.groups.group_estimator_expectation(
        TMDP, THETA_OLD, 4, ob.advantage_rule("dr_grpo"), sequence_weight=lambda c: 1 / c.lengths,
        features=PHI, per_prompt=True)[x] / mixed[x] for x in range(TMDP.n_prompts)]
    assert np.abs(dyn - TMDP.rho @ np.array(per)).max() < 1e-13
    assert np.linalg.norm(dyn - base) > 0.1 * np.linalg.norm(base)


def test_sampled_groups_agree_with_the_exact_expectation():
    kw = dict(group_size=3, aggregation="token", cliprange_low=0.2, cliprange_high=0.28,
              dynamic_sampling=True, overlong_filter=True, features=PHI)
    exact = ob.expected_surrogate_gradient(TMDP, THETA, THETA_OLD, **kw)
    est = ob.sampled_surrogate_gradient(TMDP, THETA, THETA_OLD, n_groups=20_000,
                                        rng=np.random.default_rng(3), **kw)
    assert np.linalg.norm(est - exact) < 0.1 * np.linalg.norm(exact)


def test_overlong_penalty_and_shaped_task():
    assert np.allclose(ob.overlong_penalty([2, 3, 4, 6], max_len=6, cache=2), [0, 0, 0, -1])
    assert np.allclose(ob.overlong_penalty([5], max_len=6, cache=2), [-0.5])
    la = tk.long_answer_mdp(max_len=6, targets=(2, 4))
    shaped = ob.overlong_shaped_mdp(la, cache=2)
    c, s = tk.completions(la), tk.completions(shaped)
    assert np.allclose(s.rewards - c.rewards, ob.overlong_penalty(c.lengths, max_len=6, cache=2))
    assert ob.truncated(la, c).sum() == 2  # one all-content completion per prompt


@pytest.mark.parametrize("kw, err", [
    (dict(ratio="seq"), ValueError), (dict(aggregation="mean"), ValueError),
    (dict(advantage="ppo"), ValueError), (dict(cliprange_low=1.5), ValueError),
    (dict(cliprange_low=None, cliprange_high=0.3), ValueError), (dict(group_size=0), ValueError),
])
def test_bad_options_raise(kw, err):
    args = dict(group_size=2, features=PHI) | kw
    with pytest.raises(err):
        ob.expected_surrogate(TMDP, THETA, THETA_OLD, **args)


@pytest.mark.parametrize("ratio", ["geometric", "product"])
def test_sampled_sequence_ratios_agree_with_the_exact_expectation(ratio):
    kw = dict(group_size=2, advantage="rloo", ratio=ratio, cliprange_low=0.2, features=PHI)
    exact = ob.expected_surrogate_gradient(TMDP, THETA, THETA_OLD, **kw)
    est = ob.sampled_surrogate_gradient(TMDP, THETA, THETA_OLD, n_groups=20_000,
                                        rng=np.random.default_rng(4), **kw)
    assert np.linalg.norm(est - exact) < 0.1 * np.linalg.norm(exact)


def test_truncated_rejects_a_foreign_batch():
    with pytest.raises((TypeError, ValueError)):
        ob.truncated(TMDP, tk.completions(tk.long_answer_mdp(max_len=6, targets=(2,))))


def test_clip_fractions_against_a_loop():
    fr = ob.clip_fractions(TMDP, THETA, THETA_OLD, cliprange=0.2, features=PHI)
    c = tk.completions(TMDP, THETA_OLD, features=PHI)
    new = tk.completions(TMDP, THETA, features=PHI)  # enumerated in the same row order
    log_ratio = (tk.token_log_probs(TMDP, THETA, c, features=PHI)
                 - tk.token_log_probs(TMDP, THETA_OLD, c, features=PHI))
    tokens = n_tok = seq = geo = 0.0
    for i in range(c.n):
        q = TMDP.rho[c.prompt_ids[i]] * c.prob[i]
        s = new.prob[i] / c.prob[i]  # the sequence ratio from the tree's probabilities
        tokens += q * np.sum(np.abs(np.exp(log_ratio[i, :c.lengths[i]]) - 1) > 0.2)
        n_tok += q * c.lengths[i]
        seq += q * (abs(s - 1) > 0.2)
        geo += q * (abs(s ** (1 / c.lengths[i]) - 1) > 0.2)
    assert fr == pytest.approx({"token": tokens / n_tok, "geometric": geo, "product": seq})
    assert 0 < fr["token"] < 1


def test_gradient_refuses_a_complex_theta_and_clip_fractions_a_bad_cliprange():
    with pytest.raises(ValueError, match="real θ"):
        ob.expected_surrogate_gradient(TMDP, THETA + 1e-20j, THETA_OLD, group_size=2,
                                       features=PHI)
    with pytest.raises(ValueError, match="cliprange"):
        ob.clip_fractions(TMDP, THETA, THETA_OLD, cliprange=0.0, features=PHI)


def test_advantage_rule_names_and_callables():
    r = np.array([[1.0, 0.0, 0.0, 1.0]])
    assert np.allclose(ob.advantage_rule("dr_grpo")(r), [[0.5, -0.5, -0.5, 0.5]])
    assert np.allclose(ob.advantage_rule("rloo")(r), [[2 / 3, -2 / 3, -2 / 3, 2 / 3]])
    f = lambda r: r  # noqa: E731
    assert ob.advantage_rule(f) is f
