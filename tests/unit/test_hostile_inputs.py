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
    ("objective", lambda m, θ, φ: pg.exact.objective(m, θ, φ)),
    ("policy_gradient", lambda m, θ, φ: pg.exact.policy_gradient(m, θ, φ)),
    ("visit_counts", lambda m, θ, φ: pg.exact.visit_counts(m, θ, φ)),
    ("occupancy", lambda m, θ, φ: pg.exact.occupancy(m, θ, φ)),
    ("value_gradient", lambda m, θ, φ: pg.exact.value_gradient(m, θ, φ)),
    ("k_step", lambda m, θ, φ: pg.exact.k_step(m, θ, 2, φ)),
    ("finite.policy_gradient", lambda m, θ, φ: pg.finite.policy_gradient(m, θ, 3, φ)),
    ("finite.objective", lambda m, θ, φ: pg.finite.objective(m, θ, 3, φ)),
    ("enumerate", lambda m, θ, φ: pg.enumerate_trajectories(m, θ, 2, φ)),
    ("sample", lambda m, θ, φ: pg.sample(m, θ, n=4, horizon=3, rng=np.random.default_rng(0), features=φ)),
    ("softmax_policy", lambda m, θ, φ: pg.softmax_policy(m, θ, φ)),
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
        "T": lambda: pg.finite.policy_gradient(mdp, θ, value),
        "k": lambda: pg.exact.k_step(mdp, θ, value),
        "K": lambda: pg.exact.truncated_visit_counts(mdp, θ, value),
        "n": lambda: pg.sample(mdp, θ, n=value, horizon=3, rng=np.random.default_rng(0)),
        "horizon": lambda: pg.sample(mdp, θ, n=3, horizon=value, rng=np.random.default_rng(0)),
        "enum": lambda: pg.enumerate_trajectories(mdp, θ, value),
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
    V, Q = pg.finite.state_values(mdp, θ, 3), pg.finite.action_values(mdp, θ, 3)
    calls = {
        "V shape": lambda: pg.estimators.td_actor_critic(b, mdp, θ, np.zeros((2, 2, 2, 2))),
        "V poison": lambda: pg.estimators.gae(b, mdp, θ, np.full(3, np.nan), 0.5),
        "Q shape": lambda: pg.estimators.q_actor_critic(b, mdp, θ, np.zeros(3)),
        "Q time rows": lambda: pg.estimators.q_actor_critic(b, mdp, θ, Q[:1]),
        "λ range": lambda: pg.estimators.gae(b, mdp, θ, V, 1.5),
        "λ poison": lambda: pg.estimators.gae(b, mdp, θ, V, np.nan),
        "weights shape": lambda: pg.estimators.score_weighted(b, mdp, θ, np.ones((4, 4))),
    }
    refused(calls[what], key=("table", what))


def test_huge_inputs_are_refused_without_allocating():
    big = np.broadcast_to(np.full(1, 1 / 50_000), (50_000, 2, 50_000))  # a view: no memory
    refused(pg.TabularMDP, big, np.zeros((50_000, 2)), np.full(50_000, 1 / 50_000), 0.9, key=("huge", "P"))
    mdp = good_mdp()
    refused(pg.sample, mdp, np.zeros((3, 2)), n=10**6, horizon=10**4, rng=np.random.default_rng(0), key=("huge", "sample"))
    refused(pg.finite.objective, mdp, np.zeros((3, 2)), 10**8, key=("huge", "finite"))
    refused(pg.enumerate_trajectories, mdp, np.zeros((3, 2)), 40, key=("huge", "enumerate"))


def test_gamma_one_that_never_terminates_is_refused():
    P = np.zeros((3, 2, 3))
    P[0, :, 1] = P[1, :, 0] = 1.0  # 0 ↔ 1 forever
    P[2, :, 2] = 1.0
    mdp = pg.TabularMDP(P, np.ones((3, 2)) * [[1], [1], [0]], np.array([1.0, 0, 0]), 1.0)
    for f in (pg.exact.objective, pg.exact.policy_gradient, pg.exact.visit_counts):
        refused(f, mdp, np.zeros((3, 2)), key=("nonterminating", f.__name__))


def test_zz_tally(capsys):
    # Runs last in this file (pytest keeps file order): every bad input tried was refused.
    assert TALLY["tried"] >= 300, TALLY["tried"]
    assert TALLY["refused"] == TALLY["tried"]
    with capsys.disabled():
        print(f"\nhostile inputs: {TALLY['tried']} tried ({len(TALLY['inputs'])} distinct), "
              f"{TALLY['refused']} refused with ValueError/TypeError")
