"""Token-level MDPs (pgnotes.tokens): every exact quantity against an independent route.

Routes: enumeration of completions, the tabular MDP of ``to_tabular`` through ``pg.exact`` and
``pg.finite``, complex-step derivatives, and Monte Carlo with z-scores at fixed seeds.
"""

import numpy as np
import pytest

import pgnotes as pg
from pgnotes import tokens as tk

CASES = [("sum", False, None), ("target", True, None), ("sum", True, "loglinear"), ("target", False, "loglinear")]


def _setting(kind, partial, param, seed=3, scale=1.0):
    tmdp = tk.toy_mdp(kind, partial=partial)
    rng = np.random.default_rng(seed)
    φ = tk.token_features(tmdp) if param == "loglinear" else None
    shape = (tmdp.n_prefixes, tmdp.n_vocab) if φ is None else (φ.shape[2],)
    return tmdp, scale * rng.standard_normal(shape), scale * rng.standard_normal(shape), φ


def test_sizes_order_and_prefix_index():
    for V, L, prompts in [(4, 4, [(1,), (2,), (3, 1)]), (3, 1, [(2, 2)]), (2, 5, [(1,), (1, 1)])]:
        tmdp = tk.TokenMDP(V, prompts, L, lambda x, y: float(len(y)))
        P = len(prompts)
        assert tmdp.n_prefixes == P * sum((V - 1) ** k for k in range(L))
        assert int(tmdp.ends.sum()) == P * sum((V - 1) ** k for k in range(L + 1))
        assert all(tmdp.prefixes[r] == (i, ()) for i, r in enumerate(tmdp.roots))
        for k, (i, y) in enumerate(tmdp.prefixes):
            assert tmdp.prefix_index(i, y) == k and len(y) == tmdp.depth[k] and EOS_free(y)
        c = tk.completions(tmdp)
        assert np.array_equal(c.rewards, c.lengths.astype(float))  # the verifier saw len(y)
        # a completion ends at its first EOS, or at length L
        for row, n in zip(c.tokens, c.lengths):
            assert (row[n - 1] == tk.EOS or n == L) and tk.EOS not in row[: n - 1]
            assert np.all(row[n:] == tmdp.pad)


def EOS_free(y):
    return tk.EOS not in y


@pytest.mark.parametrize("kind,partial,param", CASES)
def test_completion_probabilities_and_objective_three_routes(kind, partial, param):
    tmdp, θ, _, φ = _setting(kind, partial, param)
    c = tk.completions(tmdp, θ, features=φ)
    assert np.allclose(np.bincount(c.prompt_ids, c.prob), 1.0, atol=1e-13)
    # p on the tree against the sum of per-token log-probabilities
    assert np.allclose(np.exp(tk.log_probability(tmdp, θ, c, features=φ)), c.prob, rtol=1e-12, atol=0)
    J_enum = float(tk.row_weights(tmdp, c) @ c.rewards)
    tab = tk.to_tabular(tmdp, features=φ)
    assert tab.mdp.gamma == 1.0 and tab.mdp.terminal[tab.done] and tab.mdp.terminal.sum() == 1
    θ_tab = tab.parameters(θ)
    J = tk.objective(tmdp, θ, features=φ)
    assert abs(J - J_enum) < 1e-13
    assert abs(J - pg.exact.objective(tab.mdp, θ_tab, features=tab.features)) < 1e-13
    assert abs(J - pg.finite.objective(tab.mdp, θ_tab, horizon=tmdp.max_len, features=tab.features)) < 1e-13
    ev = tk.evaluate(tmdp, θ, features=φ)
    assert np.allclose(ev.V[tmdp.roots], ev.reward, atol=1e-14) and ev.kl is None


@pytest.mark.parametrize("kind,partial,param", CASES)
def test_policy_gradient_against_tabular_complex_step_and_enumeration(kind, partial, param):
    tmdp, θ, _, φ = _setting(kind, partial, param)
    g = tk.policy_gradient(tmdp, θ, features=φ)
    tab = tk.to_tabular(tmdp, features=φ)
    g_tab = pg.exact.policy_gradient(tab.mdp, tab.parameters(θ), features=tab.features)
    g_tab = g_tab if φ is not None else tab.restrict(g_tab)
    assert pg.reference.relative_error(g, g_tab) < 1e-12
    g_cs = pg.reference.complex_step_gradient(lambda z: tk.objective(tmdp, z, features=φ), θ)
    assert pg.reference.relative_error(g, g_cs) < 1e-12
    # the score-function identity, summed exactly over every completion
    c = tk.completions(tmdp, θ, features=φ)
    w = (tk.row_weights(tmdp, c) * c.rewards)[:, None] * c.mask
    assert pg.reference.relative_error(tk.score_sum(tmdp, θ, c, w, features=φ).sum(axis=0), g) < 1e-12


@pytest.mark.parametrize("β", [0.0, 0.3])
@pytest.mark.parametrize("param", [None, "loglinear"])
def test_values_against_pg_exact(β, param):
    tmdp, θ, θ_ref, φ = _setting("sum", True, param, seed=11)
    ev = tk.evaluate(tmdp, θ, beta=β, theta_ref=θ_ref, features=φ)
    tab = tk.to_tabular(tmdp, features=φ, beta=β, θ=θ, theta_ref=θ_ref)
    ref = pg.exact.evaluate(tab.mdp, tab.parameters(θ), features=tab.features)
    assert np.abs(ev.Q - tab.restrict(ref.Q)).max() < 1e-13
    assert np.abs(ev.V - tab.restrict(ref.V)).max() < 1e-13
    assert np.abs(ev.A - tab.restrict(ref.A)).max() < 1e-13
    assert np.abs(ev.μ - tab.restrict(ref.η)).max() < 1e-13  # γ = 1: visit probabilities
    assert np.allclose(tk.state_values(tmdp, θ, beta=β, theta_ref=θ_ref, features=φ), ev.V)
    assert np.allclose(tk.action_values(tmdp, θ, beta=β, theta_ref=θ_ref, features=φ), ev.Q)
    assert np.allclose(tk.advantages(tmdp, θ, beta=β, theta_ref=θ_ref, features=φ), ev.A)
    assert np.allclose((ev.π * ev.A).sum(axis=1), 0.0, atol=1e-14)


@pytest.mark.parametrize("param", [None, "loglinear"])
def test_kl_regularised_value_and_gradient(param):
    tmdp, θ, θ_ref, φ = _setting("target", True, param, seed=5)
    β = 0.7
    c = tk.completions(tmdp, θ, features=φ)
    c_ref = tk.completions(tmdp, θ_ref, features=φ)
    # sequence KL by enumeration: Σ_y p log(p / p_ref), per prompt
    kl_enum = np.bincount(c.prompt_ids, c.prob * np.log(c.prob / c_ref.prob))
    kl = tk.sequence_kl(tmdp, θ, θ_ref, features=φ)
    assert np.abs(kl - kl_enum).max() < 1e-12 and np.all(kl > 0)
    assert np.abs(tk.sequence_kl(tmdp, θ, θ, features=φ)).max() < 1e-14
    # the per-token form: Σ_t log π_θ/π_ref summed along each completion
    ratio = tk.token_log_probs(tmdp, θ, c, features=φ) - tk.token_log_probs(tmdp, θ_ref, c, features=φ)
    R_β = c.rewards - β * ratio.sum(axis=1)
    J_enum = float(tk.row_weights(tmdp, c) @ R_β)
    ev = tk.evaluate(tmdp, θ, beta=β, theta_ref=θ_ref, features=φ)
    assert abs(ev.J - J_enum) < 1e-13
    assert abs(ev.J - float(tmdp.rho @ (ev.reward - β * ev.kl))) < 1e-13
    assert np.allclose(ev.V[tmdp.roots], ev.reward - β * ev.kl, atol=1e-13)
    # exact gradient of J_β: complex step (the KL term differentiated too)
    f = lambda z: tk.objective(tmdp, z, beta=β, theta_ref=θ_ref, features=φ)  # noqa: E731
    g = tk.policy_gradient(tmdp, θ, beta=β, theta_ref=θ_ref, features=φ)
    assert pg.reference.relative_error(g, pg.reference.complex_step_gradient(f, θ)) < 1e-12
    # ... equals the policy gradient of the tabular MDP with the KL reward frozen at θ
    tab = tk.to_tabular(tmdp, features=φ, beta=β, θ=θ, theta_ref=θ_ref)
    assert abs(pg.exact.objective(tab.mdp, tab.parameters(θ), features=tab.features) - ev.J) < 1e-13
    g_tab = pg.exact.policy_gradient(tab.mdp, tab.parameters(θ), features=tab.features)
    assert pg.reference.relative_error(g, g_tab if φ is not None else tab.restrict(g_tab)) < 1e-12
    # ... and the frozen-reward score-function sum over every completion
    w = (tk.row_weights(tmdp, c) * R_β)[:, None] * c.mask
    assert pg.reference.relative_error(tk.score_sum(tmdp, θ, c, w, features=φ).sum(axis=0), g) < 1e-12
    # the KL part alone is not stationary: its gradient is not zero
    g0 = tk.policy_gradient(tmdp, θ, features=φ)
    assert np.linalg.norm(g - g0) > 1e-3


@pytest.mark.parametrize("param", [None, "loglinear"])
def test_sequence_score_is_the_gradient_of_log_probability(param):
    tmdp, θ, _, φ = _setting("sum", False, param, seed=2)
    b = tk.sample_groups(tmdp, θ, group_size=4, rng=np.random.default_rng(1), features=φ)
    S = tk.score_sum(tmdp, θ, b, features=φ)
    assert S.shape == (b.n,) + θ.shape
    jac = pg.reference.complex_step_jacobian(lambda z: tk.log_probability(tmdp, z, b, features=φ), θ)
    assert np.abs(S - jac).max() < 1e-12
    # weights outside the mask are ignored
    w = np.where(b.mask, 2.0, 99.0)
    assert np.allclose(tk.score_sum(tmdp, θ, b, w, features=φ), 2.0 * S)


def test_sampler_frequencies_match_exact_probabilities():
    tmdp, θ, _, _ = _setting("sum", False, None, seed=8, scale=1.5)
    G = 20_000
    b = tk.sample_groups(tmdp, θ, group_size=G, rng=np.random.default_rng(2024))
    c = tk.completions(tmdp, θ)
    base = tmdp.n_vocab + 1  # tokens and PAD are digits 0..V
    key = lambda ids, tok: ids * base**tmdp.max_len + tok @ base ** np.arange(tmdp.max_len)  # noqa: E731
    k_enum, k_samp = key(c.prompt_ids, c.tokens), key(b.prompt_ids, b.tokens)
    order = np.argsort(k_enum)
    pos = np.searchsorted(k_enum[order], k_samp)
    assert np.array_equal(k_enum[order][pos], k_samp)  # every sample is a listed completion
    counts = np.bincount(order[pos], minlength=c.n)
    assert np.array_equal(np.bincount(c.prompt_ids, counts), [G] * tmdp.n_prompts)
    # z-scores where the normal approximation holds; the rare completions pooled per prompt
    big = G * c.prob >= 20
    z = (counts - G * c.prob)[big] / np.sqrt(G * c.prob * (1 - c.prob))[big]
    assert big.sum() > 100 and np.abs(z).max() < 5.0, np.abs(z).max()
    rare_n = np.bincount(c.prompt_ids[~big], counts[~big], minlength=3)
    rare_e = np.bincount(c.prompt_ids[~big], G * c.prob[~big], minlength=3)
    assert np.all(rare_e >= 20) and np.abs((rare_n - rare_e) / np.sqrt(rare_e)).max() < 5.0
    # rewards, prefixes and lengths are those of the listed completion
    assert np.array_equal(b.rewards, c.rewards[order[pos]])
    assert np.array_equal(b.prefixes, c.prefixes[order[pos]])
    assert np.array_equal(b.lengths, c.lengths[order[pos]])
    # REINFORCE from the groups (equal groups, uniform ρ): its mean is ∇J. Per coordinate the
    # samples are heavy-tailed (rare tokens), so test projections on ∇J and random directions.
    g = tk.policy_gradient(tmdp, θ).ravel()
    D = np.vstack([g / np.linalg.norm(g), np.random.default_rng(1).standard_normal((3, g.size))])
    X = tk.score_sum(tmdp, θ, b, b.rewards[:, None] * b.mask).reshape(b.n, -1) @ D.T
    mean, se = pg.estimators.mean_and_stderr(X)
    assert np.abs((mean - D @ g) / se).max() < 4.0


def test_sampler_layout_mask_pad_and_determinism():
    tmdp, θ, _, φ = _setting("target", False, "loglinear", seed=4)
    kw = dict(group_size=7, prompt_ids=[2, 0, 2], features=φ)
    b = tk.sample_groups(tmdp, θ, rng=np.random.default_rng(9), **kw)
    b2 = tk.sample_groups(tmdp, θ, rng=np.random.default_rng(9), **kw)
    for f in ("prompt_ids", "tokens", "mask", "prefixes", "lengths", "rewards"):
        assert np.array_equal(getattr(b, f), getattr(b2, f))
    assert b.prob is None and b.n == 21
    assert np.array_equal(b.prompt_ids, np.repeat([2, 0, 2], 7))
    L, pad, n = tmdp.max_len, tmdp.pad, tmdp.n_prefixes
    assert pad == tmdp.n_vocab != tk.EOS
    assert np.array_equal(b.lengths, b.mask.sum(axis=1))
    assert np.all(b.mask[:, 0]) and np.all(b.mask[:, :-1] >= b.mask[:, 1:])  # a prefix of True
    assert np.all((b.tokens == pad) == ~b.mask) and np.all((b.prefixes == n) == ~b.mask)
    last = b.tokens[np.arange(b.n), b.lengths - 1]
    assert np.all((last == tk.EOS) | (b.lengths == L))
    assert np.all((b.tokens[:, :-1] != tk.EOS) | ~b.mask[:, 1:])  # nothing after an EOS
    assert np.array_equal(b.prefixes[:, 0], tmdp.roots[b.prompt_ids])
    for i in range(b.n):  # rewards are the verifier's, called directly
        x, y = tmdp.prompts[b.prompt_ids[i]], tuple(int(t) for t in b.tokens[i, : b.lengths[i]])
        assert b.rewards[i] == tk.target_verifier({(1,): (2,), (2,): (3, 1), (3, 1): (1, 1, 2)}, partial=False)(x, y)
        assert all(b.prefixes[i, t] == tmdp.prefix_index(b.prompt_ids[i], y[:t]) for t in range(len(y)))
    # prompts drawn from ρ
    rho = np.array([0.5, 0.0, 0.5])
    t2 = tk.TokenMDP(4, tmdp.prompts, 4, tk.modular_sum_verifier(4), rho=rho)
    d = tk.sample_groups(t2, np.zeros((t2.n_prefixes, 4)), group_size=2, n_prompts=500, rng=np.random.default_rng(0))
    assert d.n == 1000 and not np.any(d.prompt_ids == 1)
    assert np.all(d.prompt_ids[::2] == d.prompt_ids[1::2])
    e = tk.sample_groups(t2, np.zeros((t2.n_prefixes, 4)), group_size=1, rng=np.random.default_rng(0))
    assert np.array_equal(e.prompt_ids, [0, 1, 2])  # by default every prompt once


def test_verifiers_and_table_rewards():
    v = tk.modular_sum_verifier(4)
    assert v((1,), (3, 0)) == 1.0 and v((1,), (3,)) == 0.0 and v((1,), (2, 0)) == 0.0
    assert v((3, 1), (0,)) == 1.0
    vp = tk.modular_sum_verifier(4, partial=True, length_penalty=0.1)
    assert np.isclose(vp((1,), (3, 0)), 0.8) and np.isclose(vp((1,), (2, 0)), 0.5 - 0.2)
    t = tk.target_verifier({(1,): (2, 3)}, partial=True)
    assert t((1,), (2, 3, 0)) == 1.0 and np.isclose(t((1,), (2, 0)), 1 / 3) and np.isclose(t((1,), (2, 3, 1, 0)), 0.5)
    # the optimal completion depends on the prompt, and length matters
    tmdp = tk.toy_mdp("sum")
    c = tk.completions(tmdp)
    shortest = [c.lengths[(c.prompt_ids == i) & (c.rewards == 1)].min() for i in range(3)]
    assert shortest == [2, 2, 1]
    # a table gives the same MDP as the callable
    rows = zip(c.prompt_ids, c.tokens, c.lengths, c.rewards)
    table = {(tmdp.prompts[i], tuple(int(a) for a in row[:n])): r for i, row, n, r in rows if r}
    t2 = tk.TokenMDP(4, tmdp.prompts, 4, table)
    assert np.array_equal(t2.reward_table, tmdp.reward_table)


def test_bad_inputs_raise_clear_errors():
    ok = dict(n_vocab=4, prompts=[(1,), (2,)], max_len=3, reward=tk.modular_sum_verifier(4))
    bad = [
        (dict(prompts=[(1, 0)]), ValueError, "EOS"),
        (dict(prompts=[(1, 4)]), ValueError, "outside the vocabulary"),
        (dict(prompts=[(1, 2.0)]), TypeError, "integers"),
        (dict(prompts=[()]), ValueError, "empty"),
        (dict(prompts=[(1,), (1,)]), ValueError, "distinct"),
        (dict(prompts=[]), ValueError, "empty"),
        (dict(prompts="12"), TypeError, "sequence"),
        (dict(max_len=0), ValueError, "max_len"),
        (dict(max_len="3"), TypeError, "max_len"),
        (dict(n_vocab=1), ValueError, "n_vocab"),
        (dict(reward=lambda x, y: np.nan), ValueError, "NaN"),
        (dict(reward=lambda x, y: "yes"), TypeError, "real numbers"),
        (dict(reward=lambda x, y: 1j), TypeError, "real numbers"),
        (dict(reward={((1,), (2,)): 1.0}), ValueError, "not a \\(prompt, completion\\) pair"),
        (dict(reward=3.0), TypeError, "callable"),
        (dict(rho=[0.7, 0.7]), ValueError, "probability vector"),
        (dict(rho=["a", "b"]), TypeError, "rho"),
        (dict(n_vocab=8, max_len=8), ValueError, "MAX_PREFIXES"),
    ]
    for change, error, match in bad:
        with pytest.raises(error, match=match):
            tk.TokenMDP(**{**ok, **change})
    tmdp = tk.TokenMDP(**ok)
    θ = np.zeros((tmdp.n_prefixes, 4))
    with pytest.raises(ValueError, match="n_prefixes, V"):
        tk.objective(tmdp, np.zeros((tmdp.n_prefixes + 1, 4)))
    with pytest.raises(ValueError, match="θ_ref"):
        tk.objective(tmdp, θ, beta=0.1, theta_ref=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="θ_ref"):
        tk.objective(tmdp, θ, beta=0.1)
    with pytest.raises(ValueError, match="β"):
        tk.objective(tmdp, θ, beta=-1.0, theta_ref=θ)
    with pytest.raises(ValueError, match="NaN"):
        tk.objective(tmdp, np.full_like(θ, np.nan))
    with pytest.raises(ValueError, match="features"):
        tk.objective(tmdp, np.zeros(3), features=np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match="d,"):
        tk.objective(tmdp, np.zeros(2), features=tk.token_features(tmdp))
    with pytest.raises(ValueError, match="feature kind"):
        tk.token_features(tmdp, ["bigram", "trigram"])
    for rng in (np.random.RandomState(0), 0, None):
        with pytest.raises(TypeError, match="Generator"):
            tk.sample_groups(tmdp, θ, group_size=2, rng=rng)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="G"):
        tk.sample_groups(tmdp, θ, group_size=0, rng=rng)
    with pytest.raises(ValueError, match="prompt_ids"):
        tk.sample_groups(tmdp, θ, group_size=2, rng=rng, prompt_ids=[0, 2])
    with pytest.raises(ValueError, match="not both"):
        tk.sample_groups(tmdp, θ, group_size=2, rng=rng, prompt_ids=[0], n_prompts=3)
    with pytest.raises(ValueError, match="real θ"):
        tk.sample_groups(tmdp, θ + 1e-20j, group_size=2, rng=rng)
    with pytest.raises(ValueError, match="frozen"):
        tk.to_tabular(tmdp, beta=0.5, theta_ref=θ)
    b = tk.sample_groups(tmdp, θ, group_size=2, rng=rng)
    with pytest.raises(ValueError, match="weights must have shape"):
        tk.score_sum(tmdp, θ, b, np.ones((b.n, 2)))
    with pytest.raises(ValueError, match="NaN"):
        tk.score_sum(tmdp, θ, b, np.full(b.tokens.shape, np.inf))
    with pytest.raises(ValueError, match="this TokenMDP"):
        tk.log_probability(tk.toy_mdp(), np.zeros((120, 4)), b)
    with pytest.raises(TypeError, match="TokenMDP"):
        tk.objective(pg.envs.two_state_mdp(0.9), θ)
    with pytest.raises(ValueError, match="non-terminal prefix"):
        tmdp.prefix_index(0, (0,))


def test_batch_helpers_row_weights_subset_at_tokens():
    tmdp = tk.toy_mdp("sum")
    φ = tk.token_features(tmdp)
    θ = 0.3 * np.random.default_rng(5).standard_normal(φ.shape[2])
    c = tk.completions(tmdp, θ, features=φ)
    q = tk.row_weights(tmdp, c)
    # independent route: J is the tree's exact value, not a sum over these rows
    assert abs(q.sum() - 1) < 1e-12 and abs(q @ c.rewards - tk.objective(tmdp, θ, features=φ)) < 1e-12
    rows = np.flatnonzero(c.lengths == 2)
    sub = tk.subset(c, rows)
    assert sub.n == rows.size and np.array_equal(sub.prob, c.prob[rows]) and np.array_equal(sub.tokens, c.tokens[rows])
    assert tk.subset(c, c.lengths == 2).n == rows.size
    A = tk.advantages(tmdp, θ, features=φ)
    At = tk.at_tokens(A, c)
    i, t = rows[0], 1
    assert At[i, t] == A[c.prefixes[i, t], c.tokens[i, t]] and np.all(At[~c.mask] == 0)
    s = tk.sample_groups(tmdp, θ, group_size=2, rng=np.random.default_rng(0), features=φ)
    with pytest.raises(ValueError, match="completions"):
        tk.row_weights(tmdp, s)
    with pytest.raises(TypeError):
        tk.subset(c, [0.5])
    with pytest.raises(ValueError):
        tk.subset(c, [c.n])


def test_angle_is_accurate_for_tiny_and_straight_angles():
    from pgnotes.reference import angle
    u = np.array([1.0, 0.0])
    assert abs(angle(u, np.array([1.0, 1e-9])) - np.degrees(1e-9)) < 1e-15
    assert abs(angle(u, -u) - 180.0) < 1e-12 and abs(angle(u, [0.0, 2.0]) - 90.0) < 1e-12
    assert np.isnan(angle(u, [0.0, 0.0]))
