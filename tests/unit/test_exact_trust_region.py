"""Trust regions and the natural gradient, each against an independent route.

Routes: the objective difference from an independent linear solve (``reference.objective``),
complex-step derivatives of ``J`` and of ``log π``, closed forms of the tabular softmax,
``numpy.linalg.pinv``, value iteration, and limits in ``γ``.
"""

import numpy as np
import pytest

import pgnotes as pg

E = pg.exact
J_ref = pg.reference.objective


def _case(seed, S=4, A=3, gamma=0.9, d=None, n_terminal=0):
    rng = np.random.default_rng(seed)
    mdp = pg.envs.random_mdp(S, A, gamma, rng, n_terminal=n_terminal)
    φ = None if d is None else pg.envs.random_features(S, A, d, rng)
    shape = (S, A) if d is None else (d,)
    θ = rng.standard_normal(shape)
    return mdp, θ, θ + 0.7 * rng.standard_normal(shape), φ


CASES = [
    dict(seed=0),
    dict(seed=1, d=3),
    dict(seed=2, n_terminal=1),
    dict(seed=3, gamma=1.0, n_terminal=1),
    dict(seed=4, S=6, A=2, d=5, n_terminal=2),
]


@pytest.mark.parametrize("kw", CASES)
def test_performance_difference_is_the_objective_difference(kw):
    mdp, θ, θ2, φ = _case(**kw)
    pdl = E.performance_difference(mdp, θ, θ2, features=φ)
    ref = float(J_ref(mdp, θ2, features=φ) - J_ref(mdp, θ, features=φ))
    assert isinstance(pdl, float)
    assert pdl == pytest.approx(ref, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("kw", CASES)
def test_surrogate_is_zero_at_theta_and_has_gradient_grad_J(kw):
    mdp, θ, _, φ = _case(**kw)
    assert abs(E.surrogate(mdp, θ, θ, features=φ)) < 1e-12
    g = pg.reference.complex_step_gradient(lambda t: E.surrogate(mdp, θ, t, features=φ), θ)
    ref = pg.reference.complex_step_gradient(lambda t: J_ref(mdp, t, features=φ), θ)
    np.testing.assert_allclose(g, ref, rtol=1e-9, atol=1e-11)


def test_surrogate_error_is_second_order():
    mdp, θ, θ2, _ = _case(5)
    gaps = []
    for t in (1e-1, 1e-2):
        θt = θ + t * (θ2 - θ)
        gaps.append(abs(E.performance_difference(mdp, θ, θt) - E.surrogate(mdp, θ, θt)))
    assert 80 < gaps[0] / gaps[1] < 120  # O(t²): a factor 100 for a factor 10 in t


def test_kl_matches_a_direct_sum_and_trpo_bound_holds():
    mdp, θ, θ2, _ = _case(6)
    p, q = pg.softmax_policy(mdp, θ).probs, pg.softmax_policy(mdp, θ2).probs
    direct = np.array([sum(p[s, a] * np.log(p[s, a] / q[s, a]) for a in range(3)) for s in range(4)])
    np.testing.assert_allclose(E.kl_per_state(mdp, θ, θ2), direct, rtol=1e-12)
    assert E.max_kl(mdp, θ, θ2) == pytest.approx(direct.max())
    for t in np.linspace(0.05, 2.0, 12):
        θt = θ + t * (θ2 - θ)
        assert E.trpo_lower_bound(mdp, θ, θt) <= float(J_ref(mdp, θt) - J_ref(mdp, θ))


def test_mismatch_coefficient_bounds_the_suboptimality():
    mdp, θ, _, _ = _case(7)
    Q = np.zeros((4, 3))
    for _ in range(2000):  # value iteration written out: an independent route to π*
        Q = mdp.R + mdp.gamma * mdp.P @ Q.max(axis=1)
    np.testing.assert_allclose(E.optimal_values(mdp)[1], Q, atol=1e-10)
    θ_star = 60.0 * (Q == Q.max(axis=1, keepdims=True))
    J_star = float(mdp.rho0 @ Q.max(axis=1))
    assert E.objective(mdp, θ_star) == pytest.approx(J_star, rel=1e-10)
    ev = E.evaluate(mdp, θ)
    best_surrogate = float(ev.η @ ev.A.max(axis=1))
    C = E.mismatch_coefficient(mdp, θ, θ_star)
    assert 1.0 <= C < np.inf
    assert J_star - ev.J <= C * best_surrogate + 1e-12


def _score_by_complex_step(mdp, θ, φ):
    """ψ(s,a) = ∇ log π(a|s), one complex step per coordinate: independent of policy.score."""
    rows = []
    for s in range(mdp.n_states):
        for a in range(mdp.n_actions):
            f = lambda t, s=s, a=a: np.log(pg.softmax_policy(mdp, t, features=φ).probs[s, a])  # noqa: E731
            rows.append(pg.reference.complex_step_gradient(f, θ).ravel())
    return np.array(rows)


@pytest.mark.parametrize("kw", [c for c in CASES if c.get("gamma", 0.9) < 1])
def test_fisher_against_complex_step_scores(kw):
    mdp, θ, _, φ = _case(**kw)
    Ψ = _score_by_complex_step(mdp, θ, φ)
    d = (1 - mdp.gamma) * np.linalg.solve(
        (np.eye(mdp.n_states) - mdp.gamma * pg.exact.policy_matrix(mdp, θ, features=φ)).T, mdp.rho0)
    d[mdp.terminal] = 0.0
    p = (d[:, None] * pg.softmax_policy(mdp, θ, features=φ).probs).ravel()
    F = E.fisher(mdp, θ, features=φ)
    np.testing.assert_allclose(F, Ψ.T @ (p[:, None] * Ψ), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(F, F.T, atol=1e-15)


def test_fisher_tabular_closed_form_and_null_space():
    mdp, θ, _, _ = _case(8)
    F = E.fisher(mdp, θ)
    π, d = pg.softmax_policy(mdp, θ).probs, E.occupancy(mdp, θ)
    for s in range(4):
        block = F[3 * s:3 * s + 3, 3 * s:3 * s + 3]
        np.testing.assert_allclose(block, d[s] * (np.diag(π[s]) - np.outer(π[s], π[s])), atol=1e-14)
    assert np.linalg.matrix_rank(F) == 4 * (3 - 1)  # one null direction per state


@pytest.mark.parametrize("kw", [c for c in CASES if c.get("gamma", 0.9) < 1])
def test_natural_gradient_is_pinv_fisher_times_gradient(kw):
    mdp, θ, _, φ = _case(**kw)
    g = pg.reference.complex_step_gradient(lambda t: J_ref(mdp, t, features=φ), θ)
    ref = np.linalg.pinv(E.fisher(mdp, θ, features=φ), rcond=1e-12) @ g.ravel()
    np.testing.assert_allclose(E.natural_gradient(mdp, θ, features=φ).ravel(), ref, rtol=1e-7, atol=1e-9)


def test_tabular_natural_gradient_is_centred_advantage_over_one_minus_gamma():
    mdp, θ, _, _ = _case(9, n_terminal=1)
    A = E.advantages(mdp, θ)
    expected = (A - A.mean(axis=1, keepdims=True)) / (1 - mdp.gamma)
    expected[mdp.terminal] = 0.0
    np.testing.assert_allclose(E.natural_gradient(mdp, θ), expected, atol=1e-11)


def test_compatible_critic_gives_the_exact_gradient_and_others_do_not():
    mdp, θ, _, φ = _case(10, d=4)
    g = pg.reference.complex_step_gradient(lambda t: J_ref(mdp, t, features=φ), θ)
    χ = E.score_matrix(mdp, θ, features=φ).reshape(4, 3, -1)
    g_c, w = E.critic_gradient(mdp, θ, χ, features=φ)
    np.testing.assert_allclose(g_c, g, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w / (1 - mdp.gamma), E.natural_gradient(mdp, θ, features=φ), atol=1e-10)
    other = pg.envs.random_features(4, 3, 4, np.random.default_rng(0))
    g_o, _ = E.critic_gradient(mdp, θ, other, features=φ)
    assert np.linalg.norm(g_o - g) > 1e-2 * np.linalg.norm(g)


def test_npg_ascent_is_soft_policy_iteration():
    mdp = pg.envs.gridworld(2, 3, gamma=0.8)
    θ0 = np.random.default_rng(11).standard_normal((6, 4))
    α, path = 0.3, E.ascent(mdp, θ0, 0.3, n=3, method="npg")
    π = pg.softmax_policy(mdp, θ0).probs
    for k in range(3):
        A = E.advantages(mdp, path.θ[k])  # closed form: π ∝ π exp(α A / (1-γ))
        π = π * np.exp(α * A / (1 - mdp.gamma))
        π /= π.sum(axis=1, keepdims=True)
        live = ~mdp.terminal
        np.testing.assert_allclose(pg.softmax_policy(mdp, path.θ[k + 1]).probs[live], π[live], atol=1e-12)
    np.testing.assert_allclose(path.J, [J_ref(mdp, t) for t in path.θ], rtol=1e-12)


def test_pg_ascent_follows_complex_step_gradients():
    mdp, θ, _, φ = _case(12, d=3)
    path = E.ascent(mdp, θ, 0.5, n=4, method="pg", features=φ)
    t = θ.copy()
    for _ in range(4):
        t = t + 0.5 * pg.reference.complex_step_gradient(lambda x: J_ref(mdp, x, features=φ), t)
    np.testing.assert_allclose(path.θ[-1], t, rtol=1e-10)
    assert path.mean_kl.shape == (4,) and np.all(path.max_kl >= path.mean_kl - 1e-15)


def test_clip_objective_gradient_matches_central_differences_and_grad_J_at_old():
    mdp, θ, θ2, _ = _case(13)
    v0, g0 = E.clip_objective(mdp, θ, θ, 0.2)
    assert abs(v0) < 1e-12
    np.testing.assert_allclose(g0, pg.exact.policy_gradient(mdp, θ), atol=1e-12)
    θm = θ + 0.3 * (θ2 - θ)  # a generic point: some pairs clipped, none on a kink
    f = lambda t: E.clip_objective(mdp, t, θ, 0.2)[0]  # noqa: E731
    np.testing.assert_allclose(E.clip_objective(mdp, θm, θ, 0.2)[1],
                               pg.reference.central_difference_gradient(f, θm), atol=1e-6)


def test_trpo_step_respects_its_kl_and_improves():
    mdp = pg.envs.gridworld(2, 3, gamma=0.9)
    θ = np.zeros((6, 4))
    for δ in (1e-4, 1e-2):
        new = E.trpo_step(mdp, θ, δ)
        kl = E.mean_kl(mdp, θ, new)
        assert kl <= δ and E.surrogate(mdp, θ, new) > 0
    # Undo the backtracking halvings: the full natural step has exact mean KL ≈ δ (the
    # quadratic model ½ Δᵀ F_μ Δ = δ is exact to leading order).
    step = E.trpo_step(mdp, θ, 1e-6) - θ
    kls = [E.mean_kl(mdp, θ, θ + 2**k * step) / 1e-6 for k in range(4)]
    assert min(abs(x - 1) for x in kls) < 0.01


def test_average_reward_against_discounted_limit_and_complex_step():
    mdp = pg.envs.random_mdp(4, 2, 0.9, np.random.default_rng(14))
    θ = np.random.default_rng(15).standard_normal((4, 2))
    μ = E.stationary_distribution(mdp, θ)
    np.testing.assert_allclose(μ, np.linalg.matrix_power(E.policy_matrix(mdp, θ), 400)[0], atol=1e-12)
    r = E.average_reward(mdp, θ)
    g = E.average_reward_gradient(mdp, θ)
    np.testing.assert_allclose(g, pg.reference.complex_step_gradient(lambda t: E.average_reward(mdp, t), θ), atol=1e-12)
    # (1-γ) J_γ → r and the Q_γ-weighted update → ∇r, with errors O(1-γ)
    errs = []
    for γ in (0.99, 0.999):
        assert (1 - γ) * E.objective(mdp.with_gamma(γ), θ) == pytest.approx(r, abs=30 * (1 - γ))
        errs.append(np.abs(E.average_reward_gradient(mdp, θ, critic_gamma=γ) - g).max())
    assert 5 < errs[0] / errs[1] < 20


def test_bad_inputs_name_the_fix():
    mdp = pg.envs.short_corridor()  # γ = 1
    θ = np.zeros((4, 2))
    for f in (E.fisher, E.natural_gradient):
        with pytest.raises(ValueError, match="gamma < 1"):
            f(mdp, θ)
    with pytest.raises(ValueError, match="continuing MDP"):
        E.average_reward(mdp, θ)
    with pytest.raises(ValueError, match="method must be one of"):
        E.ascent(mdp, θ, 0.1, n=2, method="adam")
    with pytest.raises(ValueError, match="step must be a positive"):
        E.ascent(mdp, θ, -0.1, n=2)
    with pytest.raises(TypeError, match="mdp must be"):
        E.fisher("grid", θ)
    with pytest.raises(ValueError, match="critic_features must have shape"):
        E.critic_gradient(mdp.with_gamma(0.9), θ, np.zeros((4, 2)))


def test_trpo_works_at_episodic_gamma_one_and_keeps_its_kl():
    corridor = pg.envs.short_corridor()  # γ = 1: the Fisher matrix under μ = η / Σ η
    φ = np.tile(np.eye(2)[::-1], (4, 1, 1))
    path = E.ascent(corridor, np.array([np.log(0.05 / 0.95), 0.0]), 0.05, n=10, method="trpo", features=φ)
    assert np.all(path.mean_kl <= 0.05) and path.J[-1] > path.J[0]
    np.testing.assert_allclose(path.J, [J_ref(corridor, t, features=φ) for t in path.θ], rtol=1e-10)


def test_kl_penalty_and_clip_epochs_follow_central_differences():
    mdp, θ, _, _ = _case(16)
    β, lr = 0.7, 0.5
    for kw, objective in (
        (dict(kl_coef=β), lambda t: E.surrogate(mdp, θ, t) - β * E.mean_kl(mdp, θ, t)),
        (dict(cliprange=0.05), lambda t: E.clip_objective(mdp, t, θ, 0.05)[0]),
    ):
        θ1 = E.surrogate_ascent(mdp, θ, lr=lr, epochs=1, **kw)  # ∇ at θ_old is ∇J
        np.testing.assert_allclose((θ1 - θ) / lr, E.policy_gradient(mdp, θ), atol=1e-12)
        θ2 = E.surrogate_ascent(mdp, θ, lr=lr, epochs=2, **kw)
        g = pg.reference.central_difference_gradient(objective, θ1)
        np.testing.assert_allclose((θ2 - θ1) / lr, g, atol=1e-6)
