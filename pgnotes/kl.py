r"""The KL estimators k1, k2, k3 and where they are placed: exact expected gradients.

Language-model RL penalises :math:`\mathrm{KL}(π_θ(\cdot|x) \| π_{ref}(\cdot|x))` through a
per-token *estimator* of the log-ratio :math:`\ell_t = \log π_θ(y_t|s_t) - \log π_{ref}(y_t|s_t)`
(Schulman 2020): ``k1 = ℓ``, ``k2 = ℓ²/2``, ``k3 = e^{-ℓ} - 1 + ℓ``, *placed* either in the
reward (a constant for the optimiser, its effect through the score function) or in the loss
(differentiated through ``ℓ``), with samples from ``π_θ`` (on-policy) or from ``π_old``
(off-policy, with a per-token ratio, none, or the whole sequence's ratio). This module computes the exact expectation of each combination by enumerating
every completion, to compare it with :math:`∇_θ\,\mathrm{KL}`. Book: the KL estimators, ``klv-estimators``,
``klv-matrix``.
"""

from __future__ import annotations

import numpy as np

from ._validate import check_token_mdp, real_array
from .tokens import completions, policy_gradient, row_weights, score_sum, sequence_kl, token_log_probs

__all__ = ["ESTIMATORS", "PLACEMENTS", "kl_estimate", "kl_gradient", "kl_true_gradient", "kl_gradient_matrix"]

#: The per-token estimators of Schulman (2020), as named in verl (``kl``/``k1``, ``mse``/``k2``,
#: ``low_var_kl``/``k3``) and TRL (``kl_estimator="k1"`` or ``"k3"``).
ESTIMATORS = ("k1", "k2", "k3")

#: The placements of the KL matrix (``klv-matrix``): ``(where, importance)`` pairs.
#: ``where`` is ``"reward"`` (stop-gradient, through the score) or ``"loss"`` (differentiated);
#: ``importance`` is ``"on"`` (samples from π_θ), ``"token"`` (samples from π_old, the per-token
#: ratio π_θ/π_old as PPO applies it), ``"none"`` (samples from π_old, no ratio: GRPO's and
#: verl's ``use_kl_loss`` at θ ≠ θ_old) or ``"sequence"`` (samples from π_old, the whole
#: sequence's ratio, differentiated with the estimate: Tang & Munos' correct loss).
PLACEMENTS = (("reward", "on"), ("loss", "on"), ("reward", "token"), ("loss", "token"), ("loss", "none"),
              ("loss", "sequence"))


def _check_estimator(estimator) -> str:
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    return estimator


def kl_estimate(log_ratio, estimator: str = "k1", *, derivative: bool = False) -> np.ndarray:
    r"""A per-token KL estimator, or its derivative in :math:`\log π_θ`, at log-ratios ``ℓ``.

    .. math::

        k_1 = \ell,\qquad k_2 = \tfrac12 \ell^2,\qquad k_3 = e^{-\ell} - 1 + \ell,
        \qquad \ell = \log π_θ(y_t|s_t) - \log π_{ref}(y_t|s_t),

    and with ``derivative=True`` :math:`\partial k/\partial \log π_θ`: ``1``, ``ℓ``,
    ``1 - e^{-ℓ}``. Under :math:`y_t ∼ π_θ(\cdot|s_t)` k1 and k3 are unbiased for the per-state
    :math:`\mathrm{KL}(π_θ(\cdot|s_t) \| π_{ref}(\cdot|s_t))`, k3 is non-negative, and k2 is
    biased (its mean is :math:`\tfrac12 E[\ell^2]`). Book: the KL estimators, ``klv-estimators``.

    Examples
    --------
    >>> kl_estimate([0.0, np.log(2.0)], "k3").round(4)
    array([0.    , 0.1931])
    """
    ℓ = real_array(log_ratio, "log_ratio (log π_θ - log π_ref)")
    estimator = _check_estimator(estimator)
    if derivative:
        return {"k1": np.ones_like(ℓ), "k2": ℓ, "k3": -np.expm1(-ℓ)}[estimator]
    return {"k1": ℓ, "k2": 0.5 * ℓ**2, "k3": np.expm1(-ℓ) + ℓ}[estimator]


def kl_true_gradient(tmdp, θ, θ_ref, *, features=None) -> np.ndarray:
    r""":math:`∇_θ\, E_{x∼ρ} \mathrm{KL}(π_θ(\cdot|x) \| π_{ref}(\cdot|x))`, exactly.

    It is :math:`∇J_0 - ∇J_1` with :func:`~pgnotes.tokens.policy_gradient` at ``β = 0`` and
    ``β = 1`` (the KL reward is the only difference). Book: the KL estimators, ``klv-matrix``.
    """
    return (policy_gradient(tmdp, θ, features=features)
            - policy_gradient(tmdp, θ, beta=1.0, theta_ref=θ_ref, features=features))


def kl_gradient(tmdp, θ, θ_ref, *, estimator: str = "k1", where: str = "reward", importance: str = "on",
                theta_old=None, features=None) -> np.ndarray:
    r"""The exact expectation of the KL term's gradient for one estimator and one placement.

    Completions are drawn from :math:`π_s` (``π_θ`` when ``importance="on"``, ``π_old`` else),
    :math:`ρ_t = π_θ(y_t|s_t)/π_{old}(y_t|s_t)` is the per-token ratio (1 on-policy), and the
    returned vector estimates :math:`∇_θ\,\mathrm{KL}` (the penalty's own direction, so the
    policy moves along :math:`-β` times it):

    .. math::

        \text{reward: } E_{π_s}\Big[\sum_t ρ_t \Big(\sum_{t' \ge t} k(\ell^{s}_{t'})\Big)
        ∇\log π_θ(y_t|s_t)\Big], \qquad
        \text{loss: } E_{π_s}\Big[\sum_t ∇_θ\big(w_t\, k(\ell_t(θ))\big)\Big],

    with :math:`\ell^{s}` the log-ratio of the sampler (the reward is computed at rollout time and
    frozen), :math:`w_t = ρ_t` (``importance="token"``) or 1 (``"on"``, ``"none"``), so that
    :math:`∇(w_t k_t) = w_t\,(k_t\,[w = ρ] + k'_t)\,∇\log π_θ(y_t|s_t)`. With
    ``importance="sequence"`` the loss is :math:`W(y) \sum_t k(\ell_t(θ))` with the sequence ratio
    :math:`W(y) = π_θ(y|x)/π_{old}(y|x)`, differentiated in full: its gradient is
    :math:`W \sum_t (K + k'_t)\,∇\log π_θ(y_t|s_t)` with :math:`K = \sum_{t'} k_{t'}`, and its
    expectation is :math:`∇_θ E_{π_θ}[\sum_t k_t]`, which is :math:`∇\mathrm{KL}` for k1 and k3.
    Book: the KL estimators, ``klv-matrix``.

    Parameters
    ----------
    tmdp, θ, θ_ref, features : the token MDP, the policy, the reference (real arrays).
    estimator : ``"k1"``, ``"k2"`` or ``"k3"`` (:func:`kl_estimate`).
    where : ``"reward"`` or ``"loss"``.
    importance : ``"on"``, ``"token"``, ``"none"`` or ``"sequence"`` (the last two only with
        ``where="loss"``).
    theta_old : the sampler's parameters; required unless ``importance="on"``.

    Returns
    -------
    array of the shape of ``θ``, the exact expectation over prompts and completions.
    """
    tmdp = check_token_mdp(tmdp)
    estimator = _check_estimator(estimator)
    if where not in ("reward", "loss"):
        raise ValueError(f"where must be 'reward' or 'loss', got {where!r}")
    if importance not in ("on", "token", "none", "sequence"):
        raise ValueError(f"importance must be 'on', 'token', 'none' or 'sequence', got {importance!r}")
    if where == "reward" and importance in ("none", "sequence"):
        raise ValueError("a KL in the reward off-policy goes through PPO's ratio: use importance='token'")
    if θ_ref is None:
        raise ValueError("kl_gradient needs the reference parameters θ_ref")
    if importance == "on":
        θ_s = θ
    elif theta_old is None:
        raise ValueError(f"importance={importance!r} samples from π_old: pass theta_old=θ_old")
    else:
        θ_s = theta_old
    c = completions(tmdp, θ_s, features=features)
    p = row_weights(tmdp, c)
    lp = token_log_probs(tmdp, θ, c, features=features)
    lp_ref = token_log_probs(tmdp, θ_ref, c, features=features)
    lp_s = token_log_probs(tmdp, θ_s, c, features=features)
    ρ = np.where(c.mask, np.exp(lp - lp_s), 0.0) if importance != "on" else c.mask.astype(float)
    if where == "reward":
        k = np.where(c.mask, kl_estimate(lp_s - lp_ref, estimator), 0.0)
        w = ρ * np.cumsum(k[:, ::-1], axis=1)[:, ::-1]  # reward-to-go of the frozen KL reward
    else:
        ℓ = lp - lp_ref
        dk = kl_estimate(ℓ, estimator, derivative=True)
        if importance == "token":
            w = ρ * (dk + kl_estimate(ℓ, estimator))
        elif importance == "sequence":
            K = np.where(c.mask, kl_estimate(ℓ, estimator), 0.0).sum(axis=1, keepdims=True)
            W = np.exp((lp - lp_s).sum(axis=1, keepdims=True))
            w = W * (K + dk)
        else:
            w = dk
        w = np.where(c.mask, w, 0.0)
    return np.tensordot(p, score_sum(tmdp, θ, c, w, features=features), axes=1)


def kl_gradient_matrix(tmdp, θ, θ_ref, *, theta_old, features=None) -> dict:
    r"""Every cell of the KL matrix: ``{(estimator, where, importance): expected gradient}``.

    Rows :data:`ESTIMATORS`, columns :data:`PLACEMENTS`, each cell :func:`kl_gradient`; the key
    ``"true"`` holds :func:`kl_true_gradient` and ``"kl"`` the value
    :math:`E_x\,\mathrm{KL}(π_θ\|π_{ref})`. Book: the KL estimators, ``klv-matrix``.
    """
    out = {(e, w, i): kl_gradient(tmdp, θ, θ_ref, estimator=e, where=w, importance=i, theta_old=theta_old,
                                  features=features)
           for e in ESTIMATORS for (w, i) in PLACEMENTS}
    out["true"] = kl_true_gradient(tmdp, θ, θ_ref, features=features)
    out["kl"] = float(tmdp.rho @ sequence_kl(tmdp, θ, θ_ref, features=features))
    return out
