r"""Softmax policies ``π_θ(a|s)`` and their score ``∇_θ log π_θ(a|s)``.

Two parametrisations (book: Preface, *policies*):

* tabular softmax, ``θ`` of shape (S, A): :math:`π_θ(a|s) ∝ \exp θ_{s,a}`;
* log-linear softmax over features ``φ(s, a) ∈ R^d``, ``θ`` of shape (d,):
  :math:`π_θ(a|s) ∝ \exp θ^\top φ(s,a)`. States with equal features are indistinguishable.

Every routine of the book needs the score only through weighted sums
:math:`\sum_{s,a} W_{s,a} ∇_θ \log π_θ(a|s)`, so policies expose those contractions and never
materialise the (S, A, *θ.shape) score tensor unless asked (:meth:`SoftmaxPolicy.score`).

Complex ``θ`` is accepted so that complex-step derivatives (``pgnotes.reference``) work.
"""

from __future__ import annotations

import numpy as np

from ._validate import real_array
from .mdp import TabularMDP

__all__ = ["SoftmaxPolicy", "TabularSoftmax", "LogLinearSoftmax", "softmax_policy"]


def _as_parameter(θ, name: str = "θ") -> np.ndarray:
    return real_array(θ, name, allow_complex=True)


def _softmax(logits: np.ndarray) -> np.ndarray:
    # Shift by the real maximum: exact for real logits, and keeps complex steps analytic.
    z = logits - logits.real.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class SoftmaxPolicy:
    """Common interface; use :func:`softmax_policy` to build one.

    Attributes
    ----------
    θ : array
        The parameters.
    probs : array, shape (S, A)
        ``π_θ(a|s)``.
    """

    θ: np.ndarray
    probs: np.ndarray

    def score(self, s, a) -> np.ndarray:
        """``∇_θ log π_θ(a|s)`` for index arrays ``s``, ``a`` of one shape; result shape ``s.shape + θ.shape``."""
        raise NotImplementedError

    def score_table(self) -> np.ndarray:
        """``∇_θ log π_θ(a|s)`` for every state and action, shape ``(S, A) + θ.shape`` (materialised)."""
        S, A = self.probs.shape
        return self.score(np.repeat(np.arange(S)[:, None], A, axis=1), np.tile(np.arange(A), (S, 1)))

    def score_contract(self, W: np.ndarray, per_state: bool = False) -> np.ndarray:
        r"""``Σ_{s,a} W[s,a] ∇_θ log π_θ(a|s)``, shape ``θ.shape``.

        With ``per_state=True`` the sum over ``s`` is not taken: shape ``(S,) + θ.shape``.
        """
        raise NotImplementedError

    def score_sum(self, states, actions, weights) -> np.ndarray:
        r"""Per-row sums ``Σ_t w[i,t] ∇_θ log π_θ(a[i,t]|s[i,t])``, shape ``(n,) + θ.shape``.

        This is the shape of every per-trajectory gradient estimator (``pgnotes.estimators``).
        """
        raise NotImplementedError


class TabularSoftmax(SoftmaxPolicy):
    r"""Tabular softmax: ``θ`` of shape (S, A), :math:`∂_{θ_{s',b}} \log π(a|s) = 1[s=s'](1[a=b]-π(b|s))`."""

    def __init__(self, θ, n_states: int, n_actions: int):
        θ = _as_parameter(θ)
        if θ.shape != (n_states, n_actions):
            raise ValueError(
                f"a tabular softmax needs θ of shape (S, A) = {(n_states, n_actions)}, got {θ.shape}"
            )
        self.θ = θ
        self.probs = _softmax(θ)

    def score(self, s, a):
        s, a = np.asarray(s), np.asarray(a)
        S, A = self.probs.shape
        out = np.zeros(s.shape + (S, A), dtype=self.probs.dtype)
        flat = out.reshape(-1, S, A)
        i = np.arange(flat.shape[0])
        flat[i, s.ravel(), :] -= self.probs[s.ravel()]
        flat[i, s.ravel(), a.ravel()] += 1.0
        return out

    def score_contract(self, W, per_state=False):
        W = np.asarray(W)
        G = W - self.probs * W.sum(axis=1, keepdims=True)  # row s holds the only nonzero block
        if not per_state:
            return G
        S, A = self.probs.shape
        out = np.zeros((S, S, A), dtype=G.dtype)
        out[np.arange(S), np.arange(S)] = G
        return out

    def score_sum(self, states, actions, weights):
        states, actions = np.asarray(states), np.asarray(actions)
        weights = np.asarray(weights)
        n = states.shape[0]
        S, A = self.probs.shape
        if np.iscomplexobj(weights):
            raise ValueError("score_sum takes real weights")
        row = np.broadcast_to(np.arange(n)[:, None], states.shape)
        # bincount is a scatter-add: Σ_t w_t 1[s_t=s, a_t=a] and Σ_t w_t 1[s_t=s], per row.
        indicator = np.bincount(
            ((row * S + states) * A + actions).ravel(), weights.ravel(), minlength=n * S * A
        ).reshape(n, S, A)
        per_state = indicator.sum(axis=2)
        return indicator - per_state[:, :, None] * self.probs[None]


class LogLinearSoftmax(SoftmaxPolicy):
    r"""Log-linear softmax over features ``φ`` of shape (S, A, d), ``θ`` of shape (d,).

    :math:`∇_θ \log π(a|s) = φ(s,a) - \sum_b π(b|s) φ(s,b)`.
    """

    def __init__(self, θ, features, n_states: int, n_actions: int):
        φ = real_array(features, "features")
        if φ.ndim != 3 or φ.shape[:2] != (n_states, n_actions) or φ.shape[2] == 0:
            raise ValueError(
                f"features must have shape (S, A, d) = ({n_states}, {n_actions}, d), got {φ.shape}"
            )
        θ = _as_parameter(θ)
        if θ.shape != (φ.shape[2],):
            raise ValueError(f"a log-linear policy needs θ of shape (d,) = ({φ.shape[2]},), got {θ.shape}")
        self.θ, self.φ = θ, φ
        self.probs = _softmax(φ @ θ)
        self._φ_bar = np.einsum("sa,sad->sd", self.probs, φ)  # E_{b~π(·|s)} φ(s,b)

    def score(self, s, a):
        s, a = np.asarray(s), np.asarray(a)
        return self.φ[s, a] - self._φ_bar[s]

    def score_contract(self, W, per_state=False):
        W = np.asarray(W)
        per = np.einsum("sa,sad->sd", W, self.φ) - W.sum(axis=1)[:, None] * self._φ_bar
        return per if per_state else per.sum(axis=0)

    def score_sum(self, states, actions, weights):
        weights = np.asarray(weights)
        return np.einsum("nt,ntd->nd", weights, self.score(states, actions))


def softmax_policy(mdp: TabularMDP, θ, *, features=None) -> SoftmaxPolicy:
    """The softmax policy ``π_θ`` on ``mdp``: tabular if ``features`` is None, else log-linear.

    Book: Preface, *policies*.

    Raises
    ------
    ValueError
        If ``θ`` or ``features`` has the wrong shape, or holds NaN, inf or non-numbers.

    Examples
    --------
    >>> import numpy as np
    >>> from pgnotes import envs
    >>> mdp = envs.two_state_mdp(0.9)
    >>> softmax_policy(mdp, np.array([[0.0, np.log(3.0)], [0.0, 0.0]])).probs.round(2)
    array([[0.25, 0.75],
           [0.5 , 0.5 ]])
    """
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"mdp must be a pgnotes.TabularMDP, got {type(mdp).__name__}")
    if features is None:
        return TabularSoftmax(θ, mdp.n_states, mdp.n_actions)
    return LogLinearSoftmax(θ, features, mdp.n_states, mdp.n_actions)
