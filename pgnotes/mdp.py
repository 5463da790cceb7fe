"""The finite Markov decision process ``(S, A, P, R, ρ0, γ)``.

Book: Preface and notation (``book/00_preface.ipynb``), the MDP every chapter uses.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_real, real_array

__all__ = ["TabularMDP", "MAX_STATES", "MAX_ENTRIES"]

#: Largest state space accepted: the exact routines factorise a dense S × S matrix, which
#: past this size would take minutes and gigabytes rather than fail cleanly.
MAX_STATES = 10_000
#: Largest number of entries S·A·S of the dense transition tensor (1.6 GB of float64).
MAX_ENTRIES = 200_000_000

_ATOL = 1e-9  # tolerance on "sums to one": probabilities typed as decimals drift by ~1e-16


def _check_distribution(p: np.ndarray, name: str, axis: int = -1) -> None:
    if np.any(p < 0):
        idx = tuple(int(i) for i in np.argwhere(p < 0)[0])
        raise ValueError(f"{name} has a negative probability {p[idx]:.3g} at index {idx}")
    sums = p.sum(axis=axis)
    bad = np.abs(sums - 1.0) > _ATOL
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(np.atleast_1d(bad))[0])
        total = np.atleast_1d(sums)[idx]
        where = f" at index {idx}" if p.ndim > 1 else ""
        raise ValueError(f"{name} does not sum to 1{where}: the sum is {total:.12g}")


class TabularMDP:
    r"""A finite MDP with transition tensor ``P``, expected reward ``R``, start ``ρ0``, discount ``γ``.

    Parameters
    ----------
    P : array, shape (S, A, S)
        ``P[s, a, s'] = P(s'|s, a)``; every ``P[s, a]`` is a probability vector.
    R : array, shape (S, A) or (S, A, S)
        Reward. A reward ``r(s, a, s')`` is reduced to its expectation
        :math:`R(s,a)=\sum_{s'}P(s'|s,a)\,r(s,a,s')`, which leaves ``J`` and ``∇J`` unchanged.
        Samplers and enumeration then give the deterministic reward ``R[s, a]``.
    rho0 : array, shape (S,)
        Initial state distribution ``ρ0``.
    gamma : float in [0, 1]
        Discount ``γ``. ``γ = 1`` needs episodes that end (see *Terminal states*).

    Notes
    -----
    **Terminal states.** A state that every action maps back to itself with probability 1 and
    reward 0 is terminal: the episode has ended there. Visit counts ``η`` do not count time
    spent in terminal states, so ``Σ_s η(s)`` is the expected discounted episode length; it
    equals ``1/(1-γ)`` only when episodes never end (book: derivation B, ``Σ η``).

    With ``γ = 1`` every non-terminal state must reach a terminal state with probability 1;
    otherwise values are infinite and the exact routines raise ``ValueError``.

    Raises
    ------
    ValueError
        On wrong shapes, NaN or inf, negative or non-normalised probabilities, ``γ`` outside
        [0, 1], ``ρ0`` not a distribution, or ``γ = 1`` with no terminal state at all.

    Examples
    --------
    >>> import numpy as np
    >>> from pgnotes import TabularMDP
    >>> P = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.0, 1.0], [0.5, 0.5]]])
    >>> mdp = TabularMDP(P, R=[[1.0, 0.0], [0.0, 2.0]], rho0=[1.0, 0.0], gamma=0.9)
    >>> mdp
    TabularMDP(S=2, A=2, gamma=0.9, terminal states=0)
    >>> TabularMDP(P, R=[[1.0, 0.0], [0.0, 2.0]], rho0=[1.0, 0.0], gamma="0.9")
    Traceback (most recent call last):
        ...
    TypeError: gamma must be a real number, got '0.9'
    """

    def __init__(self, P, R, rho0, gamma: float):
        shape = np.shape(P) if isinstance(P, np.ndarray) else None
        if shape is not None and len(shape) == 3 and (
            shape[0] > MAX_STATES or shape[0] * shape[1] * shape[2] > MAX_ENTRIES
        ):  # refuse before any copy is made
            raise ValueError(
                f"P of shape {shape} is too large: at most MAX_STATES = {MAX_STATES} states "
                f"and MAX_ENTRIES = {MAX_ENTRIES} entries S·A·S"
            )
        P = real_array(P, "P")
        if P.ndim != 3 or P.shape[0] != P.shape[2] or P.shape[0] == 0 or P.shape[1] == 0:
            raise ValueError(f"P must have shape (S, A, S) with S, A >= 1, got {P.shape}")
        S, A, _ = P.shape
        if S > MAX_STATES or P.size > MAX_ENTRIES:
            raise ValueError(
                f"P of shape {P.shape} is too large: at most MAX_STATES = {MAX_STATES} states "
                f"and MAX_ENTRIES = {MAX_ENTRIES} entries S·A·S"
            )
        _check_distribution(P, "P[s, a, :]")

        R = real_array(R, "R")
        if R.shape == (S, A, S):
            R = np.einsum("ijk,ijk->ij", P, R)
        elif R.shape != (S, A):
            raise ValueError(f"R must have shape (S, A) = {(S, A)} or (S, A, S), got {R.shape}")

        rho0 = real_array(rho0, "rho0")
        if rho0.shape != (S,):
            raise ValueError(f"rho0 must have shape (S,) = ({S},), got {rho0.shape}")
        _check_distribution(rho0, "rho0")

        gamma = as_real(gamma, "gamma", low=0.0, high=1.0)

        diag = P[np.arange(S), :, np.arange(S)]  # (S, A): P(s|s, a)
        terminal = np.all(diag == 1.0, axis=1) & np.all(R == 0.0, axis=1)
        if gamma == 1.0 and not terminal.any():
            raise ValueError(
                "gamma = 1 needs an episodic MDP, but no state is terminal "
                "(absorbing under every action with zero reward)"
            )

        self.P, self.R, self.rho0, self.gamma = P, R, rho0, gamma
        self.terminal = terminal
        for a in (self.P, self.R, self.rho0, self.terminal):
            a.setflags(write=False)  # the validation above must stay true

    @property
    def n_states(self) -> int:
        """Number of states ``S``."""
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        """Number of actions ``A``."""
        return self.P.shape[1]

    @property
    def episodic(self) -> bool:
        """Whether the MDP has a terminal state."""
        return bool(self.terminal.any())

    def with_gamma(self, gamma: float) -> "TabularMDP":
        """The same MDP with another discount."""
        return TabularMDP(self.P, self.R, self.rho0, gamma)

    def __repr__(self) -> str:
        return (
            f"TabularMDP(S={self.n_states}, A={self.n_actions}, gamma={self.gamma}, "
            f"terminal states={int(self.terminal.sum())})"
        )
