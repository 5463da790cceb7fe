"""pgnotes.verify: every verdict on independently written implementations, the errors, the command.

The implementations are in ``tests/test_verify_cases.py`` (numpy) and
``tests/test_verify_torch.py`` (PyTorch): correct ones in each aggregation, whitening and KL
style for PPO and GRPO, and one buggy one per mistake of the catalogue. Correct code must never
be reported wrong; every bug must be reported, by name.
"""

import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pgnotes as pg
from pgnotes import tokens as tk
from pgnotes import verify
from pgnotes.verify import reference as ref

import test_verify_cases as cases


@pytest.mark.parametrize("name", sorted(cases.CORRECT))
def test_correct_implementations_are_judged_correct(name):
    report = verify.check(cases.CORRECT[name])
    assert report.ok and not report.mistakes, str(report)
    assert all(r.residual <= r.tol and r.angle < 1e-4 for r in report.rows)


@pytest.mark.parametrize("name", sorted(cases.BUGGY))
def test_every_bug_is_reported_by_name(name):
    fn, mistake = cases.BUGGY[name]
    report = verify.check(fn)
    assert not report.ok, str(report)
    assert mistake in report.mistakes, str(report)


def test_swapped_clip_passes_at_theta_old_and_is_caught_away_from_it():
    report = verify.check(cases.clip_swapped)
    at_old = [r for r in report.rows if "θ=θ_old" in r.scenario]
    away = [r for r in report.rows if "away" in r.scenario]
    assert all(r.ok for r in at_old) and not any(r.ok for r in away)
    assert min(r.angle for r in away) > 10


def test_matches_are_separated_from_every_mistake_by_orders_of_magnitude():
    for fn in (cases.verl_gae_whitened, cases.plain_gae):
        for r in verify.check(fn).rows:
            assert r.margin > 1e4 * r.tol, r  # the nearest mistake is far above the tolerance


def test_reference_gae_agrees_with_pgnotes_ppo():
    # evidence: the trainer-style reverse loop vs pgnotes.ppo.gae_advantages on the TokenBatch
    for st in ("toy", "long_answer"):
        sc = verify.scenario(st, beta=0.05, lam=0.95)
        a, s = sc.arrays, sc.setting
        r = ref.token_rewards(a, 0.05)
        A = ref.gae(r, a["values"], a["response_mask"], 0.95)
        r_pg = pg.ppo.token_rewards(s.tmdp, sc.batch, beta=0.05, θ=s.θ, theta_ref=s.θ_ref, features=s.features)
        critic = tk.state_values(s.tmdp, s.θ, beta=0.05, theta_ref=s.θ_ref, features=s.features)
        assert np.abs(r - r_pg).max() < 1e-14
        assert np.abs(A - pg.ppo.gae_advantages(s.tmdp, sc.batch, r_pg, critic, 0.95)).max() < 1e-12


def test_reference_group_advantages_agree_with_pgnotes_groups():
    sc = verify.scenario("long_answer", "grpo")
    a = sc.arrays
    G = int((a["index"] == 0).sum())
    for ddof in (0, 1):
        mine = ref.group_centred(a) / ref.group_std(a, ddof)
        theirs = pg.groups.group_advantages(a["scores"].reshape(-1, G), divide_by_std=True, ddof=ddof, eps=0.0)
        assert np.abs(mine - theirs.ravel()).max() < 1e-12


def test_layout_matches_the_trainer_conventions():
    sc = verify.scenario("toy", away=True)
    a, m = sc.arrays, sc.mask
    N, T = m.shape
    assert set(a) == set(verify.VOCABULARY)
    assert np.all(a["responses"][~m] == sc.setting.tmdp.n_vocab)  # right padding with the pad id
    pad = sc.setting.tmdp.n_vocab
    for row, i in zip(a["prompts"], sc.batch.prompt_ids):  # left padding: the pad ids come first
        x = sc.setting.tmdp.prompts[i]
        assert tuple(row[len(row) - len(x):]) == x and np.all(row[: len(row) - len(x)] == pad)
    assert np.all(a["token_level_scores"].sum(1) == a["scores"])
    assert np.all(a["token_level_scores"][np.arange(N), m.sum(1) - 1] == a["scores"])
    logp = a["logits"] - np.log(np.exp(a["logits"]).sum(-1, keepdims=True))
    assert np.abs(np.take_along_axis(logp, np.where(m, a["responses"], 0)[..., None], -1)[..., 0] * m
                  - a["log_prob"]).max() < 1e-12
    ratio = np.exp(a["log_prob"] - a["old_log_prob"])[m]
    A = a["advantages"][m]
    assert np.any((A > 0) & (ratio > 1.2)) and np.any((A < 0) & (ratio < 0.8))  # clipped on both sides


def test_the_report_is_a_table():
    report = verify.check(cases.plain_gae)
    text = str(report)
    assert "VERDICT: correct" in text and text.count("\n") >= len(report.rows) + 3
    bad = str(verify.check(cases.zero_critic))
    assert "VERDICT: WRONG" in bad and "zero_critic:" in bad


def misspelt(response_mask, log_probs, old_log_prob):
    return 0.0


def test_a_misspelt_keyword_suggests_the_name():
    with pytest.raises(ValueError, match="did you mean 'log_prob'"):
        verify.check(misspelt)


@pytest.mark.parametrize("fn,error,match", [
    (lambda response_mask: response_mask[:, :2], ValueError, "shape"),
    (lambda response_mask: response_mask > 0, TypeError, "real numbers"),
    (lambda response_mask: response_mask * np.nan, ValueError, "NaN"),
    (lambda log_prob, old_log_prob: float(np.sum(old_log_prob)), ValueError, "does not depend on log_prob"),
    (lambda log_prob, response_mask: float(np.sum(log_prob * (1 - response_mask))), ValueError, "padding"),
    (lambda scores: 0.0, ValueError, "must take log_prob"),
    (lambda **kw: 0.0, TypeError, "kwargs"),
    (lambda log_prob, ref_log_prob: 0.0, ValueError, "kl_coef"),
    (lambda values, response_mask: values, ValueError, "lam"),
    (lambda log_prob, response_mask: float(np.sum(log_prob.astype(np.float32) * response_mask)),
     ValueError, "float64"),
])
def test_user_errors_name_the_fix(fn, error, match):
    with pytest.raises(error, match=match):
        verify.check(fn)


def test_the_command_runs_on_a_file_outside_the_repository(tmp_path):
    code = textwrap.dedent('''
        import numpy as np

        def good(token_level_scores, values, response_mask, old_log_prob, ref_log_prob, kl_coef, lam):
            r = (token_level_scores - kl_coef * (old_log_prob - ref_log_prob)) * response_mask
            N, T = r.shape
            A, last = np.zeros((N, T)), np.zeros(N)
            for t in reversed(range(T)):
                nxt = values[:, t + 1] if t < T - 1 else 0.0
                last = r[:, t] + nxt - values[:, t] + lam * last
                A[:, t] = last
            return A * response_mask

        def bad(token_level_scores, values, response_mask, old_log_prob, ref_log_prob, kl_coef, lam):
            return good(token_level_scores, values, response_mask, old_log_prob, ref_log_prob, kl_coef, 1.0)
        ''')
    (tmp_path / "mine.py").write_text(code)
    root = pathlib.Path(__file__).resolve().parents[1]
    assert root not in tmp_path.parents
    run = lambda target: subprocess.run([sys.executable, "-m", "pgnotes.verify", target], cwd=tmp_path,
                                        capture_output=True, text=True, timeout=120)
    ok = run("mine.py:good")
    assert ok.returncode == 0 and "VERDICT: correct" in ok.stdout, ok.stdout + ok.stderr
    assert "[1/24]" in ok.stderr  # progress
    bad = run("mine.py:bad")
    assert bad.returncode == 1 and "VERDICT: WRONG" in bad.stdout
    missing = run("mine.py:nope")
    assert missing.returncode == 1 and "defines no 'nope'" in missing.stderr
