"""Hostile input for the LLM side: llm_loss, objectives, kl, training and groups' variance functions.

The same rule and the same tally as :mod:`test_hostile_inputs` (whose ``TALLY`` and ``refused_as``
this module shares): each bad input, drawn by hypothesis with exactly one thing wrong, must be
refused with the exception the package's rule gives it (a wrong type is a ``TypeError``, a wrong
value a ``ValueError``) and a message of some words. The last test checks that every input tried,
in both files, was refused, and that this file tried its share.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_hostile_inputs import BAD_REALS, DRAWN, ENUM, MANY, TALLY, TMDP, Θ_TOK, bad_array, good_mdp, refused_as

from pgnotes import groups, kl, llm_loss, objectives, training
from pgnotes import tokens as tk

TOY = tk.toy_mdp()
OTHER_Θ = np.zeros((TOY.n_prefixes, TOY.n_vocab))
OTHER = tk.completions(TOY, OTHER_Θ)  # a batch from another token MDP
BAD_MODELS = [(None, TypeError), (good_mdp(), TypeError), ("tmdp", TypeError)]
BAD_BATCHES = [(None, TypeError), ({"tokens": 1}, TypeError), (OTHER, ValueError)]
BAD_RNGS = [(None, TypeError), (0, TypeError), (np.random.RandomState(0), TypeError), (np.random.default_rng, TypeError)]
BAD_COUNTS = [(0, ValueError), (-1, ValueError), (10**9, ValueError), (2.0, TypeError), ("2", TypeError), (True, TypeError),
              (None, TypeError)]
BAD_CHOICES = [("typo", ValueError), ("", ValueError), (None, ValueError)]
N_LLM = {"tried": 0}
WIDE = settings(MANY, max_examples=1000)  # MANY, with room for the larger tables of (entry point, bad input) below


def hostile(error, f, key):
    N_LLM["tried"] += 1
    refused_as(error, f, key=("llm",) + key)


def not_real(value):
    """Reals that ``as_real`` refuses for every interval (the out-of-range ones depend on the argument)."""
    return not isinstance(value, float) or not np.isfinite(value)


# ---- θ-like arrays: every entry point that takes a policy, a reference or an old policy

ARRAY_ENTRIES = {
    "llm_loss.token_weights": lambda θ: llm_loss.token_weights(TMDP, θ, DRAWN),
    "llm_loss.policy_gradient_estimate": lambda θ: llm_loss.policy_gradient_estimate(TMDP, θ, DRAWN),
    "llm_loss.expected_estimate": lambda θ: llm_loss.expected_estimate(TMDP, θ),
    "llm_loss.expected_estimate θ_ref": lambda θ: llm_loss.expected_estimate(TMDP, Θ_TOK, beta=0.1, theta_ref=θ),
    "llm_loss.compare": lambda θ: llm_loss.compare(TMDP, θ, "zero_critic"),
    "llm_loss.whitened_expectation": lambda θ: llm_loss.whitened_expectation(TMDP, θ, 2),
    "llm_loss.prompt_blind_values": lambda θ: llm_loss.prompt_blind_values(TMDP, θ),
    "llm_loss.export_completions": lambda θ: llm_loss.export_completions(TMDP, θ),
    "llm_loss.export_completions θ_ref": lambda θ: llm_loss.export_completions(TMDP, Θ_TOK, beta=0.1, theta_ref=θ),
    "kl.kl_true_gradient": lambda θ: kl.kl_true_gradient(TMDP, θ, Θ_TOK),
    "kl.kl_true_gradient θ_ref": lambda θ: kl.kl_true_gradient(TMDP, Θ_TOK, θ),
    "kl.kl_gradient": lambda θ: kl.kl_gradient(TMDP, θ, Θ_TOK, estimator="k3", where="loss"),
    "kl.kl_gradient θ_ref": lambda θ: kl.kl_gradient(TMDP, Θ_TOK, θ),
    "kl.kl_gradient θ_old": lambda θ: kl.kl_gradient(TMDP, Θ_TOK, Θ_TOK, where="loss", importance="token", theta_old=θ),
    "kl.kl_gradient_matrix θ_old": lambda θ: kl.kl_gradient_matrix(TMDP, Θ_TOK, Θ_TOK, theta_old=θ),
    "training.exact_metrics": lambda θ: training.exact_metrics(TMDP, θ),
    "training.exact_metrics θ_ref": lambda θ: training.exact_metrics(TMDP, Θ_TOK, theta_ref=θ),
    "training.mismatch_expectation": lambda θ: training.mismatch_expectation(TMDP, θ, Θ_TOK, correction="token"),
    "training.mismatch_expectation θ_roll": lambda θ: training.mismatch_expectation(TMDP, Θ_TOK, θ),
    "training.train": lambda θ: training.train(TMDP, θ, algorithm="grpo", token_budget=8, group_size=2, step_size=0.1,
                                               rng=np.random.default_rng(0)),
    "objectives.dynamic_sampling_probability": lambda θ: objectives.dynamic_sampling_probability(TMDP, θ, group_size=2),
    "objectives.clip_fractions": lambda θ: objectives.clip_fractions(TMDP, θ, Θ_TOK),
    "objectives.clip_fractions θ_old": lambda θ: objectives.clip_fractions(TMDP, Θ_TOK, θ),
    "objectives.expected_surrogate": lambda θ: objectives.expected_surrogate(TMDP, θ, Θ_TOK, group_size=2),
    "objectives.expected_surrogate θ_old": lambda θ: objectives.expected_surrogate(TMDP, Θ_TOK, θ, group_size=2),
    "objectives.expected_surrogate_gradient": lambda θ: objectives.expected_surrogate_gradient(TMDP, θ, Θ_TOK, group_size=2),
    "objectives.sampled_surrogate_gradient": lambda θ: objectives.sampled_surrogate_gradient(
        TMDP, θ, Θ_TOK, group_size=2, n_groups=2, rng=np.random.default_rng(0)),
    "groups.group_estimator_variance": lambda θ: groups.group_estimator_variance(TMDP, θ, 2, groups.group_advantages),
}
# A complex θ is valid where complex-step checks perturb it (the objectives' surrogate); a complex θ_old,
# θ_ref or θ_roll never is, and neither is a complex θ where the function says it needs a real one.
COMPLEX_OK = {"objectives.expected_surrogate", "kl.kl_true_gradient"}


@WIDE
@given(st.sampled_from(sorted(ARRAY_ENTRIES)), st.data())
def test_llm_entry_points_refuse_bad_parameters(entry, data):
    bad, error, what = data.draw(bad_array(Θ_TOK.shape))
    if what == "complex" and entry in COMPLEX_OK:
        return
    if what == "complex":
        error = (TypeError, ValueError)  # refused as a type, or as "needs a real θ"
    hostile(error, lambda: ARRAY_ENTRIES[entry](bad), key=("θ", entry, what, str(bad.shape)))


# ---- models, batches and generators

MODEL_ENTRIES = {
    "llm_loss.token_weights": lambda m: llm_loss.token_weights(m, Θ_TOK, DRAWN),
    "llm_loss.expected_estimate": lambda m: llm_loss.expected_estimate(m, Θ_TOK),
    "llm_loss.whitened_expectation": lambda m: llm_loss.whitened_expectation(m, Θ_TOK, 2),
    "llm_loss.prompt_blind_values": lambda m: llm_loss.prompt_blind_values(m, Θ_TOK),
    "llm_loss.export_completions": lambda m: llm_loss.export_completions(m, Θ_TOK),
    "kl.kl_true_gradient": lambda m: kl.kl_true_gradient(m, Θ_TOK, Θ_TOK),
    "kl.kl_gradient": lambda m: kl.kl_gradient(m, Θ_TOK, Θ_TOK),
    "kl.kl_gradient_matrix": lambda m: kl.kl_gradient_matrix(m, Θ_TOK, Θ_TOK, theta_old=Θ_TOK),
    "training.exact_metrics": lambda m: training.exact_metrics(m, Θ_TOK),
    "training.mismatch_expectation": lambda m: training.mismatch_expectation(m, Θ_TOK, Θ_TOK),
    "training.train": lambda m: training.train(m, Θ_TOK, algorithm="grpo", token_budget=8, group_size=2, step_size=0.1,
                                               rng=np.random.default_rng(0)),
    "objectives.truncated": lambda m: objectives.truncated(m, DRAWN),
    "objectives.overlong_shaped_mdp": lambda m: objectives.overlong_shaped_mdp(m, cache=1),
    "objectives.dynamic_sampling_probability": lambda m: objectives.dynamic_sampling_probability(m, Θ_TOK, group_size=2),
    "objectives.clip_fractions": lambda m: objectives.clip_fractions(m, Θ_TOK, Θ_TOK),
    "objectives.expected_surrogate": lambda m: objectives.expected_surrogate(m, Θ_TOK, Θ_TOK, group_size=2),
    "objectives.sampled_surrogate_gradient": lambda m: objectives.sampled_surrogate_gradient(
        m, Θ_TOK, Θ_TOK, group_size=2, n_groups=2, rng=np.random.default_rng(0)),
    "groups.group_estimator_variance": lambda m: groups.group_estimator_variance(m, Θ_TOK, 2, groups.group_advantages),
}
BATCH_ENTRIES = {
    "llm_loss.token_weights": lambda b: llm_loss.token_weights(TMDP, Θ_TOK, b),
    "llm_loss.token_weights eos_masked": lambda b: llm_loss.token_weights(TMDP, Θ_TOK, b, mistake="eos_masked"),
    "llm_loss.token_weights reward_on_pad": lambda b: llm_loss.token_weights(TMDP, Θ_TOK, b, mistake="reward_on_pad"),
    "llm_loss.policy_gradient_estimate": lambda b: llm_loss.policy_gradient_estimate(TMDP, Θ_TOK, b),
    "objectives.truncated": lambda b: objectives.truncated(TMDP, b),
}
RNG_ENTRIES = {
    "training.train": lambda r: training.train(TMDP, Θ_TOK, algorithm="rloo", token_budget=8, group_size=2, step_size=0.1,
                                               rng=r),
    "objectives.sampled_surrogate_gradient": lambda r: objectives.sampled_surrogate_gradient(
        TMDP, Θ_TOK, Θ_TOK, group_size=2, n_groups=2, rng=r),
}


@MANY
@given(st.sampled_from(["model", "batch", "rng"]), st.data())
def test_llm_entry_points_refuse_bad_models_batches_and_generators(kind, data):
    entries, values = {"model": (MODEL_ENTRIES, BAD_MODELS), "batch": (BATCH_ENTRIES, BAD_BATCHES),
                       "rng": (RNG_ENTRIES, BAD_RNGS)}[kind]
    entry = data.draw(st.sampled_from(sorted(entries)))
    value, error = data.draw(st.sampled_from(values))
    hostile(error, lambda: entries[entry](value), key=(kind, entry, type(value).__name__))


# ---- sizes, coefficients, clip ranges and named choices

def _train(**kw):
    base = dict(algorithm="ppo", token_budget=8, group_size=2, step_size=0.1, rng=np.random.default_rng(0))
    return training.train(TMDP, Θ_TOK, **{**base, **kw})


def _surrogate(**kw):
    return objectives.expected_surrogate_gradient(TMDP, Θ_TOK, Θ_TOK, **{"group_size": 2, **kw})


# name -> (call of the bad value, extra bad values beyond the shared lists, which shared lists apply)
#   "count": BAD_COUNTS (0 and -1 and 10**9 out of range), "real": the non-real BAD_REALS, "choice": BAD_CHOICES
OPTIONS = {
    "token_weights mistake": (lambda v: llm_loss.token_weights(TMDP, Θ_TOK, DRAWN, mistake=v), [(3, ValueError)], "choice"),
    "token_weights aggregation": (lambda v: llm_loss.token_weights(TMDP, Θ_TOK, DRAWN, aggregation=v), [], "choice"),
    "token_weights lam": (lambda v: llm_loss.token_weights(TMDP, Θ_TOK, DRAWN, lam=v), [(-0.5, ValueError), (1.5, ValueError)], "real"),
    "token_weights beta": (lambda v: llm_loss.token_weights(TMDP, Θ_TOK, DRAWN, beta=v, theta_ref=Θ_TOK), [(-0.1, ValueError)], "real"),
    "token_weights kl_twice without β": (lambda v: llm_loss.token_weights(TMDP, Θ_TOK, DRAWN, mistake="kl_twice", beta=v),
                                         [(0.0, ValueError)], None),
    "token_weights batch_size": (lambda v: llm_loss.token_weights(TMDP, Θ_TOK, ENUM, aggregation="token_mean", batch_size=v),
                                 [(1025, ValueError)], "count"),
    "expected_estimate lam": (lambda v: llm_loss.expected_estimate(TMDP, Θ_TOK, lam=v), [(2.0, ValueError)], "real"),
    "expected_estimate mistake": (lambda v: llm_loss.expected_estimate(TMDP, Θ_TOK, mistake=v), [], "choice"),
    "compare mistake": (lambda v: llm_loss.compare(TMDP, Θ_TOK, v), [], "choice"),
    "whitened_expectation N": (lambda v: llm_loss.whitened_expectation(TMDP, Θ_TOK, v), [(9, ValueError)], "count"),
    "whitened_expectation lam": (lambda v: llm_loss.whitened_expectation(TMDP, Θ_TOK, 2, lam=v), [(-1.0, ValueError)], "real"),
    "prompt_blind_values beta": (lambda v: llm_loss.prompt_blind_values(TMDP, Θ_TOK, beta=v, theta_ref=Θ_TOK), [], "real"),
    "export_completions beta": (lambda v: llm_loss.export_completions(TMDP, Θ_TOK, beta=v, theta_ref=Θ_TOK), [], "real"),
    "setting name": (lambda v: llm_loss.setting(v), [("Toy", ValueError)], "choice"),
    "kl_estimate estimator": (lambda v: kl.kl_estimate(np.zeros(3), v), [("K1", ValueError)], "choice"),
    "kl_gradient estimator": (lambda v: kl.kl_gradient(TMDP, Θ_TOK, Θ_TOK, estimator=v), [], "choice"),
    "kl_gradient where": (lambda v: kl.kl_gradient(TMDP, Θ_TOK, Θ_TOK, where=v), [], "choice"),
    "kl_gradient importance": (lambda v: kl.kl_gradient(TMDP, Θ_TOK, Θ_TOK, where="loss", importance=v, theta_old=Θ_TOK),
                               [], "choice"),
    "kl_gradient reward off-policy": (lambda v: kl.kl_gradient(TMDP, Θ_TOK, Θ_TOK, where="reward", importance=v,
                                                               theta_old=Θ_TOK), [("none", ValueError), ("sequence", ValueError)], None),
    "kl_gradient no θ_ref": (lambda v: kl.kl_gradient(TMDP, Θ_TOK, v), [(None, ValueError)], None),
    "kl_gradient no θ_old": (lambda v: kl.kl_gradient(TMDP, Θ_TOK, Θ_TOK, where="loss", importance=v),
                             [("token", ValueError), ("none", ValueError), ("sequence", ValueError)], None),
    "kl_controller beta": (lambda v: training.kl_controller(v, 0.1, target=0.1, horizon=100.0, n_steps=1), [(-1.0, ValueError)], "real"),
    "kl_controller kl": (lambda v: training.kl_controller(0.1, v, target=0.1, horizon=100.0, n_steps=1), [], "real"),
    "kl_controller target": (lambda v: training.kl_controller(0.1, 0.1, target=v, horizon=100.0, n_steps=1), [(0.0, ValueError)], "real"),
    "kl_controller horizon": (lambda v: training.kl_controller(0.1, 0.1, target=0.1, horizon=v, n_steps=1), [(0.0, ValueError)], "real"),
    "kl_controller n_steps": (lambda v: training.kl_controller(0.1, 0.1, target=0.1, horizon=100.0, n_steps=v), [], "count"),
    "mismatch_expectation correction": (lambda v: training.mismatch_expectation(TMDP, Θ_TOK, Θ_TOK, correction=v), [], "choice"),
    "mismatch_expectation cap": (lambda v: training.mismatch_expectation(TMDP, Θ_TOK, Θ_TOK, correction="token", cap=v),
                                 [(0.5, ValueError), (0.0, ValueError)], "real"),
    "train algorithm": (lambda v: _train(algorithm=v), [("GRPO", ValueError)], "choice"),
    "train token_budget": (lambda v: _train(token_budget=v), [], "count"),
    "train group_size": (lambda v: _train(group_size=v), [(1, ValueError)], "count"),
    "train step_size": (lambda v: _train(step_size=v), [(0.0, ValueError), (-0.1, ValueError)], "real"),
    "train epochs": (lambda v: _train(epochs=v), [(101, ValueError)], "count"),
    "train lam": (lambda v: _train(lam=v), [(1.5, ValueError), (-0.1, ValueError)], "real"),
    "train critic_step": (lambda v: _train(critic_step=v), [(0.0, ValueError)], "real"),
    "train value_clip": (lambda v: _train(value_clip=v), [(0.0, ValueError)], "real"),
    "train cliprange": (lambda v: _train(cliprange=v), [(0.0, ValueError), (1.0, ValueError), ((0.2, 0.0), ValueError),
                                                        ((0.2, "0.3"), TypeError),
                                                        ([0.5], ValueError), ((1.5, 0.3), ValueError), ((0.1, 0.2, 0.3), ValueError)], "real"),
    "train beta": (lambda v: _train(beta=v, theta_ref=Θ_TOK), [(-0.1, ValueError)], "real"),
    "train β without θ_ref": (lambda v: _train(beta=v), [(0.1, ValueError)], None),
    "train kl_target without θ_ref": (lambda v: _train(kl_target=v), [(0.01, ValueError)], None),
    "train entropy_coef": (lambda v: _train(entropy_coef=v), [(-0.1, ValueError)], "real"),
    "train mismatch": (lambda v: _train(mismatch=v), [(-0.1, ValueError)], "real"),
    "train tis_cap": (lambda v: _train(tis_cap=v), [(0.5, ValueError)], "real"),
    "train θ_ref": (lambda v: _train(beta=0.1, theta_ref=v), [(np.zeros(3), ValueError), (np.full(Θ_TOK.shape, np.nan), ValueError),
                                                             (Θ_TOK.astype(str), TypeError)], None),
    "advantage_rule": (lambda v: objectives.advantage_rule(v), [("ppo", ValueError)], "choice"),
    "overlong_penalty max_len": (lambda v: objectives.overlong_penalty(np.arange(3), max_len=v, cache=1), [], "count"),
    "overlong_penalty cache": (lambda v: objectives.overlong_penalty(np.arange(3), max_len=4, cache=v), [(5, ValueError)], "count"),
    "overlong_penalty lengths": (lambda v: objectives.overlong_penalty(v, max_len=4, cache=1),
                                 [(np.array([5]), ValueError), (np.array([-1]), ValueError), (np.array([1.5]), ValueError),
                                  (np.array([np.nan]), ValueError), (np.array(["1"]), TypeError), (np.array([True]), TypeError),
                                  (np.array([1 + 0j]), TypeError), (None, TypeError)], None),
    "overlong_shaped_mdp cache": (lambda v: objectives.overlong_shaped_mdp(TMDP, cache=v), [(4, ValueError)], "count"),
    "dynamic_sampling_probability G": (lambda v: objectives.dynamic_sampling_probability(TMDP, Θ_TOK, group_size=v), [], "count"),
    "clip_fractions cliprange": (lambda v: objectives.clip_fractions(TMDP, Θ_TOK, Θ_TOK, cliprange=v),
                                 [(0.0, ValueError), (1.0, ValueError)], "real"),
    "surrogate group_size": (lambda v: _surrogate(group_size=v), [], "count"),
    "surrogate advantage": (lambda v: _surrogate(advantage=v), [("ppo", ValueError)], "choice"),
    "surrogate ratio": (lambda v: _surrogate(ratio=v), [("sequence", ValueError)], "choice"),
    "surrogate aggregation": (lambda v: _surrogate(aggregation=v), [("geometric", ValueError)], "choice"),
    "surrogate cliprange_low": (lambda v: _surrogate(cliprange_low=v), [(0.0, ValueError), (1.0, ValueError)], "real"),
    "surrogate cliprange_high": (lambda v: _surrogate(cliprange_high=v), [(0.0, ValueError), (-0.2, ValueError)], "real"),
    "surrogate high without low": (lambda v: _surrogate(cliprange_low=None, cliprange_high=v), [(0.3, ValueError)], None),
    "sampled n_groups": (lambda v: objectives.sampled_surrogate_gradient(TMDP, Θ_TOK, Θ_TOK, group_size=2, n_groups=v,
                                                                         rng=np.random.default_rng(0)), [], "count"),
    "sampled ratio": (lambda v: objectives.sampled_surrogate_gradient(TMDP, Θ_TOK, Θ_TOK, group_size=2, n_groups=1, ratio=v,
                                                                      rng=np.random.default_rng(0)), [], "choice"),
    "variance G": (lambda v: groups.group_estimator_variance(TMDP, Θ_TOK, v, groups.group_advantages), [], "count"),
}


NONE_OK = {"mismatch_expectation cap", "train value_clip", "train tis_cap", "surrogate cliprange_low",
           "surrogate cliprange_high", "token_weights mistake", "expected_estimate mistake",
           "token_weights batch_size"}  # None means "none" there


@WIDE
@given(st.sampled_from(sorted(OPTIONS)), st.data())
def test_llm_entry_points_refuse_bad_sizes_coefficients_and_choices(name, data):
    f, extra, shared = OPTIONS[name]
    pool = list(extra)
    if shared == "count":
        pool += [(v, e) for v, e in BAD_COUNTS if not (v is None and name in NONE_OK)]
    elif shared == "real":
        pool += [(v, e) for v, e in BAD_REALS if not_real(v) and not (v is None and name in NONE_OK)
                 and not (name == "train cliprange" and isinstance(v, list))]  # a list there is a pair (ε_low, ε_high)
    elif shared == "choice":
        pool += [(v, e) for v, e in BAD_CHOICES if not (v is None and name in NONE_OK)]
    value, error = data.draw(st.sampled_from(pool))
    hostile(error, lambda: f(value), key=("option", name, repr(value)[:40]))


# ---- tables and data: critics, log-ratios, exported weights, reward laws, directions

EXPORTED = llm_loss.export_completions(TMDP, Θ_TOK)
Q_LAW, VALUES = np.array([[0.3, 0.7]]), np.array([0.0, 1.0])


@MANY
@given(st.sampled_from(["token_weights critic", "kl_estimate log_ratio", "check_weights weights", "moments q",
                        "variance directions", "variance sequence_weight"]), st.data())
def test_llm_tables_of_the_wrong_kind_are_refused(what, data):
    shape = {"token_weights critic": (TMDP.n_prefixes,), "kl_estimate log_ratio": (2, 3),
             "check_weights weights": EXPORTED["mask"].shape, "moments q": Q_LAW.shape,
             "variance directions": (2,) + Θ_TOK.shape, "variance sequence_weight": (ENUM.n,)}[what]
    bad, error, kind = data.draw(bad_array(shape))
    if what == "kl_estimate log_ratio" and kind == "shape":
        return  # log-ratios of any shape are valid
    if what == "moments q" and kind == "shape" and bad.shape[-1] == 2 or what == "variance directions" and bad.shape[1:] == Θ_TOK.shape:
        return  # more rows of reward laws, more directions: valid
    if what == "moments q" and kind not in ("shape", "poison"):
        error = (TypeError, ValueError)  # zeros are no probability vector: refused either way
    calls = {
        "token_weights critic": lambda: llm_loss.token_weights(TMDP, Θ_TOK, DRAWN, critic=bad),
        "kl_estimate log_ratio": lambda: kl.kl_estimate(bad, data.draw(st.sampled_from(["k1", "k2", "k3"])),
                                                         derivative=data.draw(st.booleans())),
        "check_weights weights": lambda: llm_loss.check_weights(EXPORTED, bad),
        "moments q": lambda: groups.group_advantage_moments(bad, VALUES, 3, groups.group_advantages),
        "variance directions": lambda: groups.group_estimator_variance(TMDP, Θ_TOK, 2, groups.group_advantages, directions=bad),
        "variance sequence_weight": lambda: groups.group_estimator_variance(TMDP, Θ_TOK, 2, groups.group_advantages,
                                                                             sequence_weight=lambda c: bad),
    }
    hostile(error, calls[what], key=("table", what, kind, str(bad.shape)))


@MANY
@given(st.sampled_from(["q", "values", "G", "advantage_fn", "drop_equal_groups", "check_weights data"]), st.data())
def test_groups_variance_functions_refuse_bad_laws_and_callables(what, data):
    moments = lambda q=Q_LAW, v=VALUES, G=3, fn=groups.group_advantages: groups.group_advantage_moments(q, v, G, fn)  # noqa: E731
    if what == "q":
        value, error = data.draw(st.sampled_from([(np.array([[0.5, 0.6]]), ValueError), (np.array([0.5]), ValueError),
                                                  (np.array([[-0.5, 1.5]]), ValueError), (np.array([[np.nan, 1.0]]), ValueError)]))
        f = lambda: moments(q=value)  # noqa: E731
    elif what == "values":
        value, error = data.draw(st.sampled_from([(np.array([1.0, 1.0]), ValueError), (np.array([0.0, np.inf]), ValueError),
                                                  (np.zeros((2, 1)), ValueError), (np.array([0.0, 1.0, 2.0]), ValueError)]))
        f = lambda: moments(v=value)  # noqa: E731
    elif what == "G":
        value, error = data.draw(st.sampled_from(BAD_COUNTS))
        f = lambda: moments(G=value)  # noqa: E731
    elif what == "advantage_fn":
        value, error = data.draw(st.sampled_from([
            (lambda r: r[:, :1], ValueError), (lambda r: np.full(r.shape, np.nan), ValueError),
            (lambda r: r.astype(complex), TypeError), (lambda r: r * np.arange(r.shape[1]), ValueError),
            (None, TypeError), ("grpo", TypeError)]))
        f = lambda: moments(fn=value)  # noqa: E731
    elif what == "drop_equal_groups":
        value, error = data.draw(st.sampled_from([(None, TypeError), ("grpo", TypeError), (3, TypeError)]))
        f = lambda: groups.drop_equal_groups(value)  # noqa: E731
    else:
        value, error = data.draw(st.sampled_from([(None, TypeError), ("data", TypeError), ({}, ValueError), ({"mask": 1}, ValueError),
                                                  (llm_loss.export_completions(TOY, OTHER_Θ), ValueError)]))
        f = lambda: llm_loss.check_weights(value, np.zeros(EXPORTED["mask"].shape))  # noqa: E731
    hostile(error, f, key=("groups/laws", what, repr(value)[:30]))



def test_zz_tally_llm(capsys):
    # Runs last in this file, after test_hostile_inputs.py (pytest orders the files by name): every bad input
    # tried, in either file, was refused, and this file tried its share.
    assert N_LLM["tried"] >= 1500, N_LLM["tried"]
    assert TALLY["refused"] == TALLY["tried"]
    with capsys.disabled():
        print(f"\nhostile inputs (with the LLM side): {TALLY['tried']} tried ({len(TALLY['inputs'])} distinct), "
              f"{TALLY['refused']} refused with ValueError/TypeError; {N_LLM['tried']} of them on the LLM side")
