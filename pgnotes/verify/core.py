r"""``check``: run a user's PPO/GRPO function on batches and say whether it is right, and which variant.

One job: call the user's function with the keyword arguments it declares, turn its output
into per-token weights ``W = -∂ loss/∂ log π`` (or take its advantages), fit every
:class:`~pgnotes.verify.catalogue.Candidate` of the scenario on the same batch, and report
the matched legitimate variant or the nearest mistake, with the angle and relative error of
the batch update against the nearest legitimate one, and, for a PPO mistake, the exact
signature of its expected update (:mod:`~pgnotes.verify.expectation`, columns "E angle", "E rel"). Book: check your own PPO or GRPO code, ``verify-check``.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect

import numpy as np

from .. import tokens as tk
from . import catalogue, expectation
from .layout import VOCABULARY, Scenario, scenario

__all__ = ["Row", "Report", "check", "default_scenarios", "ADVANTAGE_TOL", "FD_STEP", "FD_FLOOR", "FD_MAX_ERROR"]

#: Relative residual at which float64 advantages count as equal (rounding of ~10² float64 operations is ~1e-14).
ADVANTAGE_TOL = 1e-8
#: The central-difference step on log π (or logits, vpreds); the error estimate compares it with 2h.
FD_STEP = 1e-5
#: The smallest tolerance of the loss route: 100 × the central-difference error, but at least this.
FD_FLOOR = 1e-6
#: The largest central-difference error estimate accepted; above it the loss is too coarse to judge.
FD_MAX_ERROR = 1e-4
#: Real entries differenced a second time (with 2h) for the error estimate, per scenario.
FD_CHECKED = 32


@dataclasses.dataclass(frozen=True)
class Row:
    """One scenario's verdict."""

    scenario: str
    ok: bool
    label: str
    mistake: str | None
    residual: float
    tol: float
    angle: float
    relative_error: float
    margin: float
    exact_angle: float = float("nan")
    exact_relative_error: float = float("nan")


@dataclasses.dataclass(frozen=True)
class Report:
    """The verdicts of :func:`check`: ``ok`` when every scenario matched a legitimate variant.

    Columns of ``str(report)``: the angle and relative error of the batch update against the
    nearest correct variant; the residual of the fit; "E angle" and "E rel", exact expected
    updates: for a PPO mistake, against the correct PPO update (every completion weighed by
    its probability); for a GRPO variant at ``θ = θ_old`` and ``β = 0``, against ``∇J``.
    """

    function: str
    form: str
    rows: tuple
    notes: tuple = ()

    @property
    def ok(self) -> bool:
        """True when every row matched a legitimate variant."""
        return all(r.ok for r in self.rows)

    @property
    def mistakes(self) -> list:
        """The distinct mistakes found, in order of first appearance."""
        return list(dict.fromkeys(r.mistake for r in self.rows if r.mistake))

    def __str__(self) -> str:
        head = (f"{'scenario':38s} {'verdict':7s} {'angle':>7s} {'rel.err':>8s} {'resid':>8s} {'E angle':>8s} "
                f"{'E rel':>6s}  matched variant / nearest mistake")
        lines = [f"pgnotes.verify: {self.function} ({self.form})", head, "-" * len(head)]
        for r in self.rows:
            what = r.label if r.ok else f"{r.mistake}: {r.label}"
            lines.append(f"{r.scenario:38s} {'ok' if r.ok else 'WRONG':7s} {r.angle:6.2f}° {r.relative_error:8.1e} "
                         f"{r.residual:8.1e} {_blank(r.exact_angle, '7.2f', '°')} {_blank(r.exact_relative_error, '6.2f')}  {what}")
        lines.append("")
        for m in self.mistakes:
            lines.append(f"  {m}: {catalogue.MISTAKES[m]}")
        lines.extend(f"  note: {n}" for n in self.notes)
        lines.append(f"VERDICT: {'correct' if self.ok else 'WRONG'} ({sum(r.ok for r in self.rows)}/{len(self.rows)} scenarios)")
        return "\n".join(lines)


def _blank(x, fmt, unit=""):
    width = int(fmt.split(".")[0]) + len(unit)
    return " " * width if np.isnan(x) else f"{x:{fmt}}{unit}"


def _declared(fn) -> tuple[set, bool]:
    """The vocabulary names ``fn`` takes, and whether it takes ``**kwargs``."""
    if not callable(fn):
        raise TypeError(f"fn must be a callable, got {type(fn).__name__}")
    sig = inspect.signature(fn)
    names, var = set(), False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var = True
        elif p.kind is p.VAR_POSITIONAL:
            continue
        elif p.kind is p.POSITIONAL_ONLY and p.default is p.empty:
            raise TypeError(f"parameter {p.name!r} is positional-only; make it a keyword parameter")
        elif p.name in VOCABULARY:
            names.add(p.name)
        elif p.default is p.empty:
            close = difflib.get_close_matches(p.name, list(VOCABULARY), n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}?" if close else f"the names are {', '.join(VOCABULARY)}"
            raise ValueError(f"{getattr(fn, '__name__', 'fn')} takes {p.name!r}, which pgnotes.verify does not "
                             f"provide; {hint} (or give it a default)")
    if var:
        raise TypeError(f"{getattr(fn, '__name__', 'fn')} takes **kwargs: name the arguments it uses, so that "
                        "pgnotes.verify knows what to pass (a wrapper keeps them with functools.wraps)")
    if not names:
        raise ValueError(f"{getattr(fn, '__name__', 'fn')} takes none of the arguments pgnotes.verify provides: "
                         f"{', '.join(VOCABULARY)}")
    return names, var


def _as_array(out, what: str) -> np.ndarray:
    if hasattr(out, "detach"):  # a torch tensor
        out = out.detach().cpu().numpy()
    x = np.asarray(out)
    if x.dtype == bool or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise TypeError(f"{what} must be real numbers (a float array, a float or a tensor), got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} contains NaN or inf")
    return x


def _call(fn, sc: Scenario, declared: set, override=None) -> np.ndarray:
    kw = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in sc.arrays.items() if k in declared}
    if override:
        kw.update(override)
    return _as_array(fn(**kw), f"the output on scenario {sc.name!r}")


def _form(out: np.ndarray, sc: Scenario, declared: set) -> str:
    N, T = sc.mask.shape
    if out.size == 1 and out.ndim <= 1:
        if "vpreds" in declared:
            return "value"
        if "log_prob" in declared:
            return "loss_given" if "advantages" in declared else "loss"
        if "logits" in declared:
            return "logits_given" if "advantages" in declared else "logits"
        raise ValueError("a scalar loss must take log_prob (or logits; vpreds for a value loss): "
                         "pgnotes.verify differentiates it with respect to that argument")
    if out.shape == (N, T):
        return "advantages"
    raise ValueError(f"the output must be advantages of shape (N, T) = {(N, T)} or a scalar loss, got shape {out.shape}")


def _gradient(fn, sc, declared, key, rng):
    """Central differences of the loss w.r.t. every entry of ``arrays[key]``; error estimate from 2h."""
    x0 = sc.arrays[key]
    f = lambda x: float(_call(fn, sc, declared, {key: x}).reshape(()))
    grad = np.zeros(x0.shape)
    for i in np.ndindex(x0.shape):
        xp, xm = x0.copy(), x0.copy()
        xp[i] += FD_STEP
        xm[i] -= FD_STEP
        grad[i] = (f(xp) - f(xm)) / (2 * FD_STEP)
    real = np.argwhere(np.broadcast_to(sc.mask.reshape(sc.mask.shape + (1,) * (x0.ndim - 2)), x0.shape))
    pick = real[rng.choice(len(real), size=min(FD_CHECKED, len(real)), replace=False)]
    d2 = []
    for i in map(tuple, pick):
        xp, xm = x0.copy(), x0.copy()
        xp[i] += 2 * FD_STEP
        xm[i] -= 2 * FD_STEP
        d2.append((f(xp) - f(xm)) / (4 * FD_STEP))
    d1 = grad[tuple(pick.T)]
    err = np.linalg.norm(d1 - np.array(d2)) / 3 / max(np.linalg.norm(d1), 1e-300)  # Richardson: error(h) ≈ (D_2h - D_h)/3
    return grad, float(err)


def _weights_from_logits(G, sc):
    """W_t from -∂loss/∂logits_t = W_t (e_{y_t} - π_t); the residual of that form, and of the shifted form."""
    logits = sc.arrays["logits"]
    π = np.exp(logits - logits.max(-1, keepdims=True))
    π /= π.sum(-1, keepdims=True)
    V = logits.shape[-1]
    y = np.where(sc.mask, sc.arrays["responses"], 0)
    D = (np.eye(V)[y] - π) * sc.mask[..., None]
    W = (G * D).sum(-1) / np.maximum((D * D).sum(-1), 1e-300)
    res = np.linalg.norm(G - W[..., None] * D) / max(np.linalg.norm(G), 1e-300)
    Ds = np.zeros_like(D)
    Ds[:, :-1] = (np.eye(V)[y[:, 1:]] - π[:, :-1]) * sc.mask[:, 1:, None]  # token t+1 scored by logits t
    Ws = (G * Ds).sum(-1) / np.maximum((Ds * Ds).sum(-1), 1e-300)
    res_s = np.linalg.norm(G - Ws[..., None] * Ds) / max(np.linalg.norm(G), 1e-300)
    return W, float(res), float(res_s)


def _fit(W, cand, sel):
    X = np.stack([b[sel] for b in cand.bases], axis=1)
    c, *_ = np.linalg.lstsq(X, W[sel], rcond=None)
    fitted = sum(ci * b for ci, b in zip(c, cand.bases))
    return c, float(np.linalg.norm(W[sel] - fitted[sel]) / max(np.linalg.norm(W[sel]), 1e-300)), fitted


def _update(sc, W):
    st = sc.setting
    return tk.score_sum(st.tmdp, sc.θ, sc.batch, np.where(sc.mask, W, 0.0), features=st.features).sum(axis=0)


def _judge(W, sc, form, declared, tol):
    sel = sc.mask
    cands = catalogue.candidates(sc, {"logits": "loss", "logits_given": "loss_given"}.get(form, form), declared, tol)
    fits = []
    for cand in cands:
        if not cand.bases or all(np.abs(b[sel]).max(initial=0) == 0 for b in cand.bases):
            continue
        c, res, fitted = _fit(W, cand, sel)
        legit, label, mistake = cand.read(c, tol)
        target = sum(cand.bases) if form == "advantages" else fitted
        fits.append((res, legit, label, mistake, fitted, len(cand.bases), cand.correct, target))
    exact = [f for f in fits if f[0] <= tol]
    legit_exact = [f for f in exact if f[1]]
    best_legit = min((f for f in fits if f[6]), key=lambda f: f[0], default=None)
    if legit_exact:
        hit = min(legit_exact, key=lambda f: (f[5], f[0]))
        ok, mistake, label = True, None, hit[2]
    elif exact:
        hit = min(exact, key=lambda f: (f[5], f[0]))
        ok, mistake, label = False, hit[3] or "not_in_catalogue", hit[2]
    else:
        hit = min(fits, key=lambda f: f[0])
        ok, mistake = False, hit[3] or "not_in_catalogue"
        label = hit[2] + (f" (nearest, residual {hit[0]:.1e})" if hit[1] else "")
    others = [f[0] for f in fits if not f[1] and f[0] > tol]
    margin = min(others, default=np.inf)
    target = hit[4] if ok or best_legit is None else best_legit[7]
    g_user, g_ref = _update(sc, W), _update(sc, target)
    ang = float(np.degrees(np.arccos(np.clip(g_user @ g_ref / max(np.linalg.norm(g_user) * np.linalg.norm(g_ref), 1e-300), -1, 1))))
    rel = float(np.linalg.norm(g_user - g_ref) / max(np.linalg.norm(g_ref), 1e-300))
    return Row(sc.name, ok, label, mistake, hit[0], tol, ang, rel, float(margin))


def default_scenarios(declared: set, kind: str | None = None) -> list:
    r"""The scenarios :func:`check` runs for a function taking ``declared``: both settings, ``θ = θ_old``,
    away (three ascent steps) and stale (a random step, dual-clip binds), ``λ ∈ {0.95, 1}`` (PPO with a critic), ``β ∈ {0, 0.05}`` (when ``kl_coef`` is taken).

    Book: check your own PPO or GRPO code, ``verify-check``.
    """
    if kind is None:
        kind = "grpo" if "index" in declared and not {"values", "vpreds"} & declared else "ppo"
    if "ref_log_prob" in declared and "kl_coef" not in declared:
        raise ValueError("the function takes ref_log_prob but not kl_coef: take the KL coefficient as the "
                         "keyword kl_coef, so that β = 0 and β > 0 can both be checked")
    if "values" in declared and "lam" not in declared and "vpreds" not in declared:
        raise ValueError("the function takes values (a GAE) but not lam: take the GAE parameter as the keyword "
                         "lam, so that λ = 0.95 and λ = 1 can both be checked")
    βs = (0.0, 0.05) if "kl_coef" in declared else (0.0,)
    λs = (0.95, 1.0) if kind == "ppo" and "lam" in declared else (0.95,)
    return [(s, kind, β, λ, away) for s in ("toy", "long_answer") for β in βs for λ in λs
            for away in (False, True, "stale")]


def check(fn, *, scenarios=None, kind: str | None = None, progress=None) -> Report:
    r"""Run ``fn`` on the scenarios and judge it: :class:`Report` with one :class:`Row` per scenario.

    ``fn`` takes keyword arguments from :data:`~pgnotes.verify.layout.VOCABULARY` and returns
    advantages (N, T) or a scalar loss (numpy, float or torch). A loss is differentiated by
    central differences with respect to ``log_prob`` (``logits`` if it takes no ``log_prob``;
    ``vpreds`` for a value loss). ``scenarios`` is a list of ``(setting, kind, β, λ, away)``
    (default :func:`default_scenarios`); ``progress`` a callable taking a line of text.
    Book: check your own PPO or GRPO code, ``verify-check``.

    Raises
    ------
    ValueError, TypeError
        For the user's mistakes that make a verdict impossible, with the fix in the message.
    """
    declared, _ = _declared(fn)
    specs = default_scenarios(declared, kind) if scenarios is None else list(scenarios)
    rows, form, notes = [], None, []
    if "kl_coef" not in declared:
        notes.append("no kl_coef argument: the KL penalty is not checked (β = 0 only)")
    rng = np.random.default_rng(0)
    for i, spec in enumerate(specs):
        sc = scenario(*spec[:2], beta=spec[2], lam=spec[3], away=spec[4])
        if progress:
            progress(f"[{i + 1}/{len(specs)}] {sc.name}")
        out = _call(fn, sc, declared)
        form = _form(out, sc, declared)
        if form == "advantages":
            tol = ADVANTAGE_TOL if out.dtype.itemsize >= 8 else 1e-4
            W = out.astype(float)
        else:
            key = {"value": "vpreds", "logits": "logits", "logits_given": "logits"}.get(form, "log_prob")
            G, err = _gradient(fn, sc, declared, key, rng)
            if err > FD_MAX_ERROR:
                raise ValueError(f"central differences of the loss with steps h and 2h disagree by {err:.1e} "
                                 f"(scenario {sc.name!r}): compute the loss in float64 (torch.float64, "
                                 "torch.from_numpy keeps it), without rounding or sampling inside")
            tol = max(FD_FLOOR, 100 * err)
            if form.startswith("logits"):
                W, res, res_s = _weights_from_logits(-G, sc)
                if res > tol and res_s < res:
                    rows.append(Row(sc.name, False, "the gradient reaches the logits of the previous position",
                                    "logits_shift", res, tol, float("nan"), float("nan"), res_s))
                    continue
            else:
                W = -G
            scale = np.abs(W).max()
            if scale < 1e-10:
                raise ValueError(f"the loss does not depend on {key} (scenario {sc.name!r}): compute it from {key}, "
                                 "and do not detach it")
            if np.abs(W[sc.mask]).max(initial=0) < 1e-9 * scale:
                raise ValueError("all the loss's weight is on padding positions: multiply by response_mask "
                                 "(1 on real tokens), not by its complement")
            pad = np.abs(W[~sc.mask]).max(initial=0)
            if pad > tol * scale:
                rows.append(Row(sc.name, False, f"padding carries weight up to {pad / scale:.1e} of the largest",
                                "forgotten_mask", pad / scale, tol, float("nan"), float("nan"), float("nan")))
                continue
        row = _judge(W, sc, form, declared, tol)
        if not row.ok and sc.kind == "ppo" and row.mistake in expectation.EXPECTED:
            sig = expectation.signature(row.mistake, spec[0], sc.β, sc.λ, sc.away)
            if sig is not None:
                row = dataclasses.replace(row, exact_angle=sig[0], exact_relative_error=sig[1])
        if row.ok and sc.kind == "grpo" and not sc.away and sc.β == 0:
            G = int((sc.arrays["index"] == 0).sum())
            sig = expectation.group_signature(spec[0], G, row.label)
            if sig is not None:
                row = dataclasses.replace(row, exact_angle=sig[0], exact_relative_error=sig[1])
        rows.append(row)
    return Report(getattr(fn, "__name__", "fn"), form or "?", tuple(rows), tuple(notes))
