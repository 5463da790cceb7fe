"""Hostile input: malformed MDPs, policies, features, horizons, tables and generators.

Hypothesis draws bad inputs for every public entry point. Each must be refused with a
``ValueError`` or ``TypeError`` whose message is a sentence, never return numbers, hang, or
allocate without bound. The tally (inputs tried, refused cleanly) is printed by the last
test and checked there: every input tried must have been refused.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pgnotes as pg

TALLY = {"tried": 0, "refused": 0, "inputs": set()}
MANY = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def refused(f, *args, key, **kwargs):
    """Call ``f``; it must raise ValueError/TypeError with a message of some words."""
    TALLY["tried"] += 1
    TALLY["inputs"].add(key)
    try:
        out = f(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        assert len(msg.split()) >= 3, f"unhelpful message {msg!r}"
        TALLY["refused"] += 1
        return
    raise AssertionError(f"{getattr(f, '__name__', f)} returned {type(out).__name__} for a bad input")


def good_mdp(S=3, A=2, gamma=0.9):
    rng = np.random.default_rng(0)
    return pg.envs.random_mdp(S, A, gamma, rng)


POISON = st.sampled_from([np.nan, np.inf, -np.inf])


@st.composite
def bad_mdp_args(draw):
    """(P, R, rho0, gamma) with exactly one thing wrong, and a description of it."""
    S, A = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    P = rng.dirichlet(np.ones(S), size=(S, A))
    R = rng.standard_normal((S, A))
    rho0 = rng.dirichlet(np.ones(S))
    gamma = 0.9
    what = draw(st.sampled_from([
        "P shape", "P negative", "P unnormalised", "P poison", "P dtype",
        "R shape", "R poison", "R dtype", "rho0 shape", "rho0 negative", "rho0 unnormalised",
        "rho0 poison", "gamma range", "gamma poison", "gamma type",
    ]))
    i = tuple(draw(st.integers(0, n - 1)) for n in (S, A, S))
    if what == "P shape":
        P = draw(st.sampled_from([P[..., :-1] if S > 1 else P[:, :, :0], P[0], P[None], P.transpose(1, 0, 2) if S != A else P[:, :, None]]))
    elif what == "P negative":
        P = P.copy()
        P[i] = -draw(st.floats(1e-6, 10))
    elif what == "P unnormalised":
        P = P * draw(st.floats(1.01, 5))
    elif what == "P poison":
        P = P.copy()
        P[i] = draw(POISON)
    elif what == "P dtype":
        P = draw(st.sampled_from([P.astype(complex), P.astype(str), P > 0.5, P.astype(object)]))
    elif what == "R shape":
        R = draw(st.sampled_from([R[:, :0], R[None, None], R.ravel(), np.zeros((S + 1, A))]))
    elif what == "R poison":
        R = R.copy()
        R[i[:2]] = draw(POISON)
    elif what == "R dtype":
        R = R.astype(str)
    elif what == "rho0 shape":
        rho0 = np.append(rho0, 0.0)
    elif what == "rho0 negative":
        rho0 = rho0.copy()
        rho0[0] -= 2.0
        rho0[-1] += 2.0 if S > 1 else 0.0
    elif what == "rho0 unnormalised":
        rho0 = rho0 * draw(st.floats(0.1, 0.99))
    elif what == "rho0 poison":
        rho0 = rho0.copy()
        rho0[0] = draw(POISON)
    elif what == "gamma range":
        gamma = draw(st.one_of(st.floats(-1e6, -1e-9), st.floats(1 + 1e-9, 1e6)))
    elif what == "gamma poison":
        gamma = draw(POISON)
    elif what == "gamma type":
        gamma = draw(st.sampled_from(["0.9", None, [0.9], True, 0.9j]))
    return (P, R, rho0, gamma), (what, S, A, i)


@MANY
@given(bad_mdp_args())
def test_malformed_mdps_are_refused(case):
    args, key = case
    refused(pg.TabularMDP, *args, key=("mdp",) + key)


@st.composite
def bad_θ(draw):
    S, A = 3, 2
    what = draw(st.sampled_from(["shape", "poison", "dtype", "ndim", "features shape", "features poison", "θ for features"]))
    θ, φ = np.zeros((S, A)), None
    if what == "shape":
        θ = np.zeros(draw(st.sampled_from([(S, A + 1), (S + 1, A), (S * A,), (A, S)])))
    elif what == "poison":
        θ = θ.copy()
        θ[draw(st.integers(0, S - 1)), draw(st.integers(0, A - 1))] = draw(POISON)
    elif what == "dtype":
        θ = draw(st.sampled_from([θ.astype(str), θ > 0, θ.astype(object), "θ", None]))
    elif what == "ndim":
        θ = np.zeros((S, A, 1))
    elif what == "features shape":
        d = draw(st.integers(1, 4))
        φ = np.zeros(draw(st.sampled_from([(S, A), (S + 1, A, d), (S, A + 1, d), (S, A, 0)])))
        θ = np.zeros(max(d, 1))
    elif what == "features poison":
        φ = np.zeros((S, A, 2))
        φ[0, 0, draw(st.integers(0, 1))] = draw(POISON)
        θ = np.zeros(2)
    elif what == "θ for features":
        φ = np.zeros((S, A, 2))
        θ = np.zeros(draw(st.sampled_from([(3,), (2, 1), (S, A)])))
    return θ, φ, what


ENTRY_POINTS = [
    ("objective", lambda m, θ, φ: pg.exact.objective(m, θ, features=φ)),
    ("policy_gradient", lambda m, θ, φ: pg.exact.policy_gradient(m, θ, features=φ)),
    ("visit_counts", lambda m, θ, φ: pg.exact.visit_counts(m, θ, features=φ)),
    ("occupancy", lambda m, θ, φ: pg.exact.occupancy(m, θ, features=φ)),
    ("value_gradient", lambda m, θ, φ: pg.exact.value_gradient(m, θ, features=φ)),
    ("k_step", lambda m, θ, φ: pg.exact.k_step(m, θ, 2, features=φ)),
    ("finite.policy_gradient", lambda m, θ, φ: pg.finite.policy_gradient(m, θ, horizon=3, features=φ)),
    ("finite.objective", lambda m, θ, φ: pg.finite.objective(m, θ, horizon=3, features=φ)),
    ("enumerate", lambda m, θ, φ: pg.enumerate_trajectories(m, θ, horizon=2, features=φ)),
    ("sample", lambda m, θ, φ: pg.sample(m, θ, n=4, horizon=3, rng=np.random.default_rng(0), features=φ)),
    ("softmax_policy", lambda m, θ, φ: pg.softmax_policy(m, θ, features=φ)),
]


@MANY
@given(bad_θ(), st.sampled_from(ENTRY_POINTS))
def test_malformed_policies_are_refused_everywhere(case, entry):
    θ, φ, what = case
    name, f = entry
    refused(f, good_mdp(), θ, φ, key=("policy", name, what, str(np.shape(θ)), str(np.shape(φ))))


BAD_COUNTS = [0, -1, 2.5, "3", None, True, 10**12, np.nan]


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.sampled_from(BAD_COUNTS), st.sampled_from(["T", "k", "K", "n", "horizon", "enum"]))
def test_bad_horizons_and_sizes_are_refused(value, where):
    mdp, θ = good_mdp(), np.zeros((3, 2))
    if where == "k" and value == 0:
        return  # k = 0 is valid: d(s→x;0) is the identity
    if where == "K" and value == 0:
        return  # K = 0 is valid: the empty series
    calls = {
        "T": lambda: pg.finite.policy_gradient(mdp, θ, horizon=value),
        "k": lambda: pg.exact.k_step(mdp, θ, value),
        "K": lambda: pg.exact.truncated_visit_counts(mdp, θ, value),
        "n": lambda: pg.sample(mdp, θ, n=value, horizon=3, rng=np.random.default_rng(0)),
        "horizon": lambda: pg.sample(mdp, θ, n=3, horizon=value, rng=np.random.default_rng(0)),
        "enum": lambda: pg.enumerate_trajectories(mdp, θ, horizon=value),
    }
    refused(calls[where], key=("count", where, repr(value)))


@pytest.mark.parametrize("rng", [None, 0, 42, "seed", np.random.RandomState(0), np.random.default_rng])
def test_bad_generators_are_refused(rng):
    refused(pg.sample, good_mdp(), np.zeros((3, 2)), n=3, horizon=3, rng=rng, key=("rng", repr(type(rng))))


@MANY
@given(st.sampled_from(["V shape", "V poison", "Q shape", "Q time rows", "λ range", "λ poison", "weights shape"]))
def test_bad_tables_are_refused_by_estimators(what):
    mdp, θ = good_mdp(), np.zeros((3, 2))
    b = pg.sample(mdp, θ, n=4, horizon=3, rng=np.random.default_rng(0))
    V, Q = pg.finite.state_values(mdp, θ, horizon=3), pg.finite.action_values(mdp, θ, horizon=3)
    calls = {
        "V shape": lambda: pg.estimators.td_actor_critic(mdp, θ, b, np.zeros((2, 2, 2, 2))),
        "V poison": lambda: pg.estimators.gae(mdp, θ, b, np.full(3, np.nan), 0.5),
        "Q shape": lambda: pg.estimators.q_actor_critic(mdp, θ, b, np.zeros(3)),
        "Q time rows": lambda: pg.estimators.q_actor_critic(mdp, θ, b, Q[:1]),
        "λ range": lambda: pg.estimators.gae(mdp, θ, b, V, 1.5),
        "λ poison": lambda: pg.estimators.gae(mdp, θ, b, V, np.nan),
        "weights shape": lambda: pg.estimators.score_sum(mdp, θ, b, np.ones((4, 4))),
    }
    refused(calls[what], key=("table", what))


def test_huge_inputs_are_refused_without_allocating():
    big = np.broadcast_to(np.full(1, 1 / 50_000), (50_000, 2, 50_000))  # a view: no memory
    refused(pg.TabularMDP, big, np.zeros((50_000, 2)), np.full(50_000, 1 / 50_000), 0.9, key=("huge", "P"))
    mdp = good_mdp()
    refused(pg.sample, mdp, np.zeros((3, 2)), n=10**6, horizon=10**4, rng=np.random.default_rng(0), key=("huge", "sample"))
    refused(pg.finite.objective, mdp, np.zeros((3, 2)), horizon=10**8, key=("huge", "finite"))
    refused(pg.enumerate_trajectories, mdp, np.zeros((3, 2)), horizon=40, key=("huge", "enumerate"))


def test_gamma_one_that_never_terminates_is_refused():
    P = np.zeros((3, 2, 3))
    P[0, :, 1] = P[1, :, 0] = 1.0  # 0 ↔ 1 forever
    P[2, :, 2] = 1.0
    mdp = pg.TabularMDP(P, np.ones((3, 2)) * [[1], [1], [0]], np.array([1.0, 0, 0]), 1.0)
    for f in (pg.exact.objective, pg.exact.policy_gradient, pg.exact.visit_counts):
        refused(f, mdp, np.zeros((3, 2)), key=("nonterminating", f.__name__))


# ---- the token side, groups and ppo: each bad input is a wrong type (TypeError) or value (ValueError)

from pgnotes import tokens as tk  # noqa: E402

TMDP = tk.TokenMDP(3, [(1,), (2,)], 3, tk.modular_sum_verifier(3))
Θ_TOK = np.zeros((TMDP.n_prefixes, 3))
ENUM = tk.completions(TMDP, Θ_TOK)
DRAWN = tk.sample_groups(TMDP, Θ_TOK, group_size=2, rng=np.random.default_rng(0))


def refused_as(error, f, *args, key, **kwargs):
    """As :func:`refused`, and the exception must be ``error``: a wrong type is a TypeError, a wrong value a ValueError."""
    TALLY["tried"] += 1
    TALLY["inputs"].add(key)
    try:
        out = f(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        assert isinstance(exc, error), f"{key}: {type(exc).__name__} ({exc}) where a {error.__name__} belongs"
        assert len(str(exc).split()) >= 3, f"unhelpful message {str(exc)!r}"
        TALLY["refused"] += 1
        return
    raise AssertionError(f"{key}: returned {type(out).__name__} for a bad input")


@st.composite
def bad_array(draw, shape):
    """A replacement for a real array of ``shape`` with one thing wrong, and the error it deserves."""
    good = np.zeros(shape)
    what = draw(st.sampled_from(["shape", "poison", "str", "bool", "complex", "object"]))
    if what == "shape":
        return np.zeros(draw(st.sampled_from([shape[:-1] + (shape[-1] + 1,), (shape[0] + 1,) + shape[1:], shape + (1,)]))), ValueError, what
    if what == "poison":
        a = good.copy()
        a.flat[draw(st.integers(0, a.size - 1))] = draw(POISON)
        return a, ValueError, what
    dtype = {"str": str, "bool": bool, "complex": complex, "object": object}[what]
    return good.astype(dtype), TypeError, what


BAD_REALS = [("0.5", TypeError), (None, TypeError), (True, TypeError), (0.5j, TypeError), ([0.5], TypeError),
             (np.nan, ValueError), (np.inf, ValueError), (-1.0, ValueError), (2.0, ValueError)]


@MANY
@given(st.sampled_from(["θ", "features", "θ_ref"]), st.data())
def test_token_parameters_of_the_wrong_kind_are_refused(which, data):
    φ_good = tk.token_features(TMDP)
    shapes = {"θ": Θ_TOK.shape, "features": φ_good.shape, "θ_ref": Θ_TOK.shape}
    bad, error, what = data.draw(bad_array(shapes[which]))
    if which == "θ" and what == "complex":
        return  # complex θ is valid: complex-step checks
    kw = {"θ": dict(θ=bad), "features": dict(θ=np.zeros(φ_good.shape[2]), features=bad),
          "θ_ref": dict(θ=Θ_TOK, beta=0.1, theta_ref=bad)}[which]
    entry = data.draw(st.sampled_from(["objective", "evaluate", "policy_gradient", "completions", "sample_groups"]))
    θ = kw.pop("θ")
    calls = {
        "objective": lambda: tk.objective(TMDP, θ, **kw),
        "evaluate": lambda: tk.evaluate(TMDP, θ, **kw),
        "policy_gradient": lambda: tk.policy_gradient(TMDP, θ, **kw),
        "completions": lambda: tk.completions(TMDP, θ, features=kw.get("features")) if "theta_ref" not in kw else tk.sequence_kl(TMDP, θ, kw["theta_ref"]),
        "sample_groups": lambda: tk.sample_groups(TMDP, θ, group_size=2, rng=np.random.default_rng(0), features=kw.get("features"))
        if "theta_ref" not in kw else tk.to_tabular(TMDP, beta=0.1, θ=θ, theta_ref=kw["theta_ref"]),
    }
    refused_as(error, calls[entry], key=("tokens", which, what, entry))


@MANY
@given(st.sampled_from(["n_vocab", "max_len", "prompts", "reward", "rho", "G", "n_prompts", "prompt_ids", "β", "kinds"]), st.data())
def test_token_mdps_and_samplers_refuse_bad_sizes_and_choices(what, data):
    ok = dict(n_vocab=3, prompts=[(1,), (2,)], max_len=3, reward=tk.modular_sum_verifier(3))
    options = {
        "n_vocab": [(1, ValueError), (300, ValueError), ("3", TypeError), (3.0, TypeError), (True, TypeError)],
        "max_len": [(0, ValueError), (65, ValueError), ("3", TypeError), (None, TypeError)],
        "prompts": [([], ValueError), ("12", TypeError), (5, TypeError), ([(1, 0)], ValueError), ([(1,), (1,)], ValueError),
                    ([(1.0,)], TypeError), ([(7,)], ValueError), ([()], ValueError)],
        "reward": [(3.0, TypeError), (None, TypeError), (lambda x, y: "1", TypeError), (lambda x, y: np.nan, ValueError),
                   (lambda x, y: [1.0, 2.0], ValueError), ({((9,), (0,)): 1.0}, ValueError)],
        "rho": [([0.5], ValueError), ([0.7, 0.7], ValueError), (["a", "b"], TypeError), ([np.nan, 1.0], ValueError),
                ([-0.5, 1.5], ValueError), ([0.5 + 0j, 0.5], TypeError)],
        "G": [(0, ValueError), (2.0, TypeError), ("2", TypeError)],
        "n_prompts": [(0, ValueError), (1.5, TypeError)],
        "prompt_ids": [([2], ValueError), ([-1], ValueError), ([], ValueError), ([[0]], ValueError)],
        "β": [(-0.1, ValueError), (np.nan, ValueError), ("0.1", TypeError), (None, TypeError)],
        "kinds": [("bigram", TypeError), ([], TypeError), (["trigram"], ValueError)],
    }
    value, error = data.draw(st.sampled_from(options[what]))
    rng = np.random.default_rng(0)
    if what in ok or what == "rho":
        f = lambda: tk.TokenMDP(**{**ok, what: value})  # noqa: E731
    elif what == "β":
        f = lambda: tk.objective(TMDP, Θ_TOK, beta=value, theta_ref=Θ_TOK)  # noqa: E731
    elif what == "kinds":
        f = lambda: tk.token_features(TMDP, value)  # noqa: E731
    else:
        kw = {"G": dict(group_size=value), "n_prompts": dict(group_size=2, n_prompts=value), "prompt_ids": dict(group_size=2, prompt_ids=value)}[what]
        f = lambda: tk.sample_groups(TMDP, Θ_TOK, rng=rng, **kw)  # noqa: E731
    refused_as(error, f, key=("token sizes", what, repr(value)))


@MANY
@given(st.sampled_from(["score_sum weights", "at_tokens table", "ppo rewards", "ppo values", "ppo advantages",
                        "ppo X", "fit_values values"]), st.data())
def test_token_tables_of_the_wrong_kind_are_refused(what, data):
    shape = {"score_sum weights": DRAWN.tokens.shape, "at_tokens table": (TMDP.n_prefixes, 3),
             "ppo rewards": DRAWN.tokens.shape, "ppo values": (TMDP.n_prefixes,), "ppo advantages": DRAWN.tokens.shape,
             "ppo X": ENUM.tokens.shape, "fit_values values": (TMDP.n_prefixes,)}[what]
    bad, error, kind = data.draw(bad_array(shape))
    if what == "at_tokens table" and bad.ndim == 2:
        return  # a lookup table may hold anything, and a larger one is fine: only a wrong ndim is wrong
    zeros_V, zeros_r = np.zeros(TMDP.n_prefixes), np.zeros(DRAWN.tokens.shape)
    calls = {
        "score_sum weights": lambda: tk.score_sum(TMDP, Θ_TOK, DRAWN, bad),
        "at_tokens table": lambda: tk.at_tokens(bad, DRAWN),
        "ppo rewards": lambda: pg.ppo.gae_advantages(TMDP, DRAWN, bad, zeros_V, 0.5),
        "ppo values": lambda: pg.ppo.gae_advantages(TMDP, DRAWN, zeros_r, bad, 0.5),
        "ppo advantages": lambda: pg.ppo.clipped_surrogate(TMDP, Θ_TOK, Θ_TOK, DRAWN, bad),
        "ppo X": lambda: pg.ppo.conditional_expectation(TMDP, ENUM, bad),
        "fit_values values": lambda: pg.ppo.fit_values(TMDP, Θ_TOK, bad, steps=1, step_size=0.1, group_size=2,
                                                      rng=np.random.default_rng(0)),
    }
    refused_as(error, calls[what], key=("token tables", what, kind, str(np.shape(bad))))


@MANY
@given(st.sampled_from(["λ", "ε", "clip_fraction ε", "step_size", "steps", "β", "rng", "batch", "tmdp", "sampled batch"]),
       st.data())
def test_ppo_refuses_bad_coefficients_batches_and_generators(what, data):
    zeros_V, zeros_r = np.zeros(TMDP.n_prefixes), np.zeros(DRAWN.tokens.shape)
    fit = lambda **kw: pg.ppo.fit_values(TMDP, Θ_TOK, zeros_V, **{**dict(steps=1, step_size=0.1, group_size=2,  # noqa: E731
                                                                       rng=np.random.default_rng(0)), **kw})
    if what in ("λ", "ε", "clip_fraction ε", "step_size", "β"):
        value, error = data.draw(st.sampled_from(BAD_REALS + ([(0.0, ValueError)] if what != "λ" and what != "β" else [])))
        f = {"λ": lambda: pg.ppo.gae_advantages(TMDP, DRAWN, zeros_r, zeros_V, value),
             "ε": lambda: pg.ppo.clipped_surrogate(TMDP, Θ_TOK, Θ_TOK, DRAWN, zeros_r, cliprange=value),
             "clip_fraction ε": lambda: pg.ppo.clip_fraction(TMDP, Θ_TOK, Θ_TOK, DRAWN, cliprange=value),
             "step_size": lambda: fit(step_size=value),
             "β": lambda: pg.ppo.token_rewards(TMDP, DRAWN, beta=value, θ=Θ_TOK, theta_ref=Θ_TOK)}[what]
        if what == "step_size" and value == 2.0 or what == "β" and value == 2.0:
            return  # valid values
    elif what == "steps":
        value, error = data.draw(st.sampled_from([(-1, ValueError), (1.5, TypeError), ("2", TypeError)]))
        f = lambda: fit(steps=value)  # noqa: E731
    elif what == "rng":
        value, error = data.draw(st.sampled_from([(None, TypeError), (0, TypeError), (np.random.RandomState(0), TypeError)]))
        f = lambda: fit(rng=value)  # noqa: E731
    elif what == "batch":
        value, error = data.draw(st.sampled_from([(None, TypeError), ({"tokens": 1}, TypeError),
                                                  (tk.completions(tk.toy_mdp()), ValueError)]))
        f = lambda: pg.ppo.token_rewards(TMDP, value)  # noqa: E731
    elif what == "tmdp":
        value, error = data.draw(st.sampled_from([(None, TypeError), (good_mdp(), TypeError)]))
        f = lambda: pg.ppo.gae_advantages(value, DRAWN, zeros_r, zeros_V, 0.5)  # noqa: E731
    else:
        value, error = DRAWN, ValueError
        f = lambda: pg.ppo.conditional_expectation(TMDP, DRAWN, zeros_r)  # noqa: E731
    refused_as(error, f, key=("ppo", what, repr(value)[:40]))


@MANY
@given(st.sampled_from(["rewards", "baseline", "ddof", "eps", "q", "values", "G", "advantage_fn", "sequence_weight"]),
       st.data())
def test_groups_refuse_bad_rewards_options_and_callables(what, data):
    from pgnotes import groups

    q, v = np.array([[0.3, 0.7]]), np.array([0.0, 1.0])
    if what == "rewards":
        bad, error, kind = data.draw(bad_array((2, 4)))
        if kind == "shape":
            return  # any (..., G) shape is a valid group layout
        f = lambda: groups.group_advantages(bad)  # noqa: E731
    elif what == "baseline":
        value, error = data.draw(st.sampled_from([("median", ValueError), (None, ValueError), (0, ValueError)]))
        f = lambda: groups.group_advantages(np.zeros((2, 4)), baseline=value)  # noqa: E731
    elif what == "ddof":
        value, error = data.draw(st.sampled_from([(2, ValueError), (-1, ValueError), (True, TypeError), (1.0, TypeError)]))
        f = lambda: groups.group_advantages(np.zeros((2, 4)), divide_by_std=True, ddof=value)  # noqa: E731
    elif what == "eps":
        value, error = data.draw(st.sampled_from([(-1e-3, ValueError), (np.nan, ValueError), ("1e-4", TypeError)]))
        f = lambda: groups.group_advantages(np.zeros((2, 4)), eps=value)  # noqa: E731
    elif what == "q":
        value, error = data.draw(st.sampled_from([(np.array([[0.5, 0.6]]), ValueError), (np.array([0.5]), ValueError),
                                                  (np.array([[-0.5, 1.5]]), ValueError), (np.array([[np.nan, 1.0]]), ValueError)]))
        f = lambda: groups.group_advantage_given_reward(value, v, 4, groups.group_advantages)  # noqa: E731
    elif what == "values":
        value, error = data.draw(st.sampled_from([(np.array([1.0, 1.0]), ValueError), (np.array([0.0, np.inf]), ValueError),
                                                  (np.zeros((2, 1)), ValueError)]))
        f = lambda: groups.group_advantage_given_reward(q, value, 4, groups.group_advantages)  # noqa: E731
    elif what == "G":
        value, error = data.draw(st.sampled_from([(0, ValueError), (2.0, TypeError), ("4", TypeError), (10**6, ValueError)]))
        f = lambda: groups.group_advantage_given_reward(q, v, value, groups.group_advantages)  # noqa: E731
    elif what == "advantage_fn":
        value, error = data.draw(st.sampled_from([
            (lambda r: r[:, :1], ValueError), (lambda r: np.full(r.shape, np.nan), ValueError),
            (lambda r: r.astype(complex), TypeError), (lambda r: r * np.arange(r.shape[1]), ValueError)]))
        f = lambda: groups.group_advantage_given_reward(q, v, 4, value)  # noqa: E731
    else:
        value, error = data.draw(st.sampled_from([(lambda c: np.ones(2), ValueError), (lambda c: np.full(c.n, np.inf), ValueError),
                                                  (lambda c: np.full(c.n, "x"), TypeError)]))
        f = lambda: groups.group_estimator_expectation(TMDP, Θ_TOK, 2, groups.group_advantages, sequence_weight=value)  # noqa: E731
    refused_as(error, f, key=("groups", what, kind if what == "rewards" else repr(value)[:30]))


@pytest.mark.parametrize("f, error", [
    (lambda: tk.subset(ENUM, [0.5]), TypeError),
    (lambda: tk.subset(ENUM, [ENUM.n]), ValueError),
    (lambda: tk.subset(ENUM, np.ones(3, dtype=bool)), ValueError),
    (lambda: tk.subset(None, [0]), TypeError),
    (lambda: tk.row_weights(TMDP, DRAWN), ValueError),
    (lambda: tk.row_weights(TMDP, "batch"), TypeError),
    (lambda: tk.at_tokens(np.zeros(3), DRAWN), ValueError),
    (lambda: tk.at_tokens(np.zeros((TMDP.n_prefixes, 3)), None), TypeError),
    (lambda: tk.to_tabular(TMDP, beta=0.5, theta_ref=Θ_TOK), ValueError),
    (lambda: tk.objective(good_mdp(), Θ_TOK), TypeError),
    (lambda: tk.modular_sum_verifier(1), ValueError),
    (lambda: tk.modular_sum_verifier(4, length_penalty="0.1"), TypeError),
    (lambda: tk.target_verifier([((1,), (2,))]), TypeError),
    (lambda: tk.target_verifier({(1,): (0,)}), ValueError),
    (lambda: tk.long_answer_mdp(8, targets=(9,)), ValueError),
    (lambda: tk.long_answer_mdp("8"), TypeError),
    (lambda: tk.toy_mdp("product"), ValueError),
    (lambda: TMDP.prefix_index(0, (0,)), ValueError),
])
def test_token_helpers_refuse_bad_arguments(f, error):
    refused_as(error, f, key=("token helpers", f.__code__.co_firstlineno))


def test_zz_tally(capsys):
    # Runs last in this file (pytest keeps file order): every bad input tried was refused.
    assert TALLY["tried"] >= 800, TALLY["tried"]
    assert TALLY["refused"] == TALLY["tried"]
    with capsys.disabled():
        print(f"\nhostile inputs: {TALLY['tried']} tried ({len(TALLY['inputs'])} distinct), "
              f"{TALLY['refused']} refused with ValueError/TypeError")
