r"""The MDPs the book uses, and features for log-linear policies.

Book: Preface, *the MDPs used throughout*.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_count, as_real, check_rng
from .mdp import MAX_STATES, TabularMDP

__all__ = [
    "random_mdp",
    "two_state_mdp",
    "short_corridor",
    "gridworld",
    "GRID_ACTIONS",
    "from_gymnasium",
    "chain",
    "one_hot_features",
    "random_features",
]

#: Action order of :func:`gridworld`: (row step, column step).
GRID_ACTIONS = {"up": (-1, 0), "right": (0, 1), "down": (1, 0), "left": (0, -1)}


def random_mdp(
    n_states: int,
    n_actions: int,
    gamma: float,
    rng: np.random.Generator,
    *,
    n_terminal: int = 0,
    branching: int | None = None,
    p_end: float = 0.2,
) -> TabularMDP:
    r"""A random MDP drawn from ``rng``.

    Each ``P(·|s,a)`` is Dirichlet(1) on ``branching`` random successors (all states by
    default), rewards are standard normal and ``ρ0`` is Dirichlet(1) on the non-terminal
    states. With ``n_terminal > 0`` the last ``n_terminal`` states are terminal and every
    non-terminal ``(s, a)`` ends the episode with probability ``p_end``, so episodes end with
    probability 1 and ``γ = 1`` is allowed.

    Examples
    --------
    >>> import numpy as np
    >>> random_mdp(4, 2, 0.9, np.random.default_rng(0))
    TabularMDP(S=4, A=2, gamma=0.9, terminal states=0)
    """
    rng = check_rng(rng)
    S = as_count(n_states, "n_states", minimum=1, maximum=5000)
    A = as_count(n_actions, "n_actions", minimum=1, maximum=1000)
    n_terminal = as_count(n_terminal, "n_terminal", minimum=0, maximum=S - 1)
    live = S - n_terminal
    b = live if branching is None else as_count(branching, "branching", minimum=1, maximum=live)
    if n_terminal:
        p_end = as_real(p_end, "p_end", low=0.0, high=1.0, low_open=True)

    P = np.zeros((S, A, S))
    for s in range(live):
        for a in range(A):
            succ = rng.choice(live, size=b, replace=False)
            P[s, a, succ] = rng.dirichlet(np.ones(b))
    R = np.zeros((S, A))
    R[:live] = rng.standard_normal((live, A))
    rho0 = np.zeros(S)
    rho0[:live] = rng.dirichlet(np.ones(live))
    if n_terminal:
        P[:live] *= 1.0 - p_end
        P[:live, :, live:] += p_end / n_terminal
        P[live:, :, :] = 0.0
        P[np.arange(live, S), :, np.arange(live, S)] = 1.0
    return TabularMDP(P, R, rho0, gamma)


def two_state_mdp(gamma: float = 0.9) -> TabularMDP:
    r"""A fixed two-state, two-action MDP small enough for sympy (book: derivation B).

    Action 0 stays, action 1 moves to the other state with probability 0.8. Staying in
    state 1 pays 1, everything else pays 0 except moving out of state 0, which pays 0.2.
    """
    P = np.array(
        [
            [[1.0, 0.0], [0.2, 0.8]],
            [[0.0, 1.0], [0.8, 0.2]],
        ]
    )
    R = np.array([[0.0, 0.2], [1.0, 0.0]])
    return TabularMDP(P, R, np.array([0.7, 0.3]), gamma)


def short_corridor(gamma: float = 1.0) -> TabularMDP:
    r"""The short corridor with switched actions (Sutton & Barto 2018, Example 13.1).

    Three non-terminal states ``0, 1, 2`` in a row and the terminal state ``3``; action 0 is
    *left*, action 1 is *right*; every step pays ``-1``; episodes start in state 0. Left in
    state 0 stays put. In state 1 the actions are switched: right moves to 0, left to 2.
    Right in state 2 ends the episode. With features that are the same in every state
    (``φ(s, a) = e_a``) the policy is one probability ``p`` of *right*, and
    ``J(p) = (2p - 4) / (p(1-p))`` at ``γ = 1``, maximised at ``p* = 2 - √2``.
    Book: episodes and γ = 1, ``ep-corridor``.
    """
    P = np.zeros((4, 2, 4))
    P[0, 0, 0] = P[0, 1, 1] = 1.0  # state 0: left stays, right → 1
    P[1, 0, 2] = P[1, 1, 0] = 1.0  # state 1, switched: left → 2, right → 0
    P[2, 0, 1] = P[2, 1, 3] = 1.0  # state 2: left → 1, right → terminal
    P[3, :, 3] = 1.0
    R = np.zeros((4, 2))
    R[:3] = -1.0
    return TabularMDP(P, R, np.array([1.0, 0.0, 0.0, 0.0]), gamma)


def gridworld(
    rows: int = 4,
    cols: int = 5,
    *,
    gamma: float = 0.9,
    slip: float = 0.1,
    goal: tuple[int, int] | None = None,
    start: tuple[int, int] | None = None,
    goal_reward: float = 1.0,
    step_reward: float = 0.0,
    episodic: bool = True,
) -> TabularMDP:
    r"""A ``rows × cols`` gridworld; state ``r·cols + c`` is cell ``(r, c)``.

    Actions follow :data:`GRID_ACTIONS`. With probability ``slip`` the move goes to a
    uniformly random direction instead; a move off the grid stays put. Entering ``goal``
    (default: top-right) pays ``goal_reward``; every other step pays ``step_reward``. With
    ``episodic=True`` the goal is terminal; otherwise the agent is sent back to ``start``
    (default: bottom-left), so the chain never ends.

    Examples
    --------
    >>> mdp = gridworld(3, 4)  # the goal, top-right, is state 3
    >>> mdp, [int(s) for s in mdp.terminal.nonzero()[0]]
    (TabularMDP(S=12, A=4, gamma=0.9, terminal states=1), [3])
    """
    rows = as_count(rows, "rows", minimum=1, maximum=100)
    cols = as_count(cols, "cols", minimum=1, maximum=100)
    slip = as_real(slip, "slip", low=0.0, high=1.0)
    goal = (0, cols - 1) if goal is None else tuple(goal)
    start = (rows - 1, 0) if start is None else tuple(start)
    for name, cell in (("goal", goal), ("start", start)):
        if not (0 <= cell[0] < rows and 0 <= cell[1] < cols):
            raise ValueError(f"{name} {cell} lies outside the {rows}×{cols} grid")
    if goal == start:
        raise ValueError("goal and start must differ")
    S, A = rows * cols, len(GRID_ACTIONS)
    g, s0 = goal[0] * cols + goal[1], start[0] * cols + start[1]
    moves = list(GRID_ACTIONS.values())

    def step(s, m):
        r, c = divmod(s, cols)
        r2, c2 = r + m[0], c + m[1]
        return r2 * cols + c2 if (0 <= r2 < rows and 0 <= c2 < cols) else s

    P = np.zeros((S, A, S))
    for s in range(S):
        for a, m in enumerate(moves):
            P[s, a, step(s, m)] += 1.0 - slip
            for m2 in moves:
                P[s, a, step(s, m2)] += slip / A
    r_sas = np.full((S, A, S), step_reward)
    r_sas[:, :, g] = goal_reward
    if episodic:
        P[g] = 0.0
        P[g, :, g] = 1.0
        r_sas[g] = 0.0
    else:  # the goal sends the agent back to the start: a continuing task
        P[g] = 0.0
        P[g, :, s0] = 1.0
        r_sas[g] = step_reward
    rho0 = np.zeros(S)
    rho0[s0] = 1.0
    return TabularMDP(P, r_sas, rho0, gamma)


def from_gymnasium(env, gamma: float) -> TabularMDP:
    r"""Read the transition table ``env.P`` of a Gymnasium toy-text environment.

    Works for FrozenLake, CliffWalking and Taxi (``env.unwrapped.P[s][a]`` lists
    ``(prob, next_state, reward, terminated)``; the start law is ``initial_state_distrib``).
    Rewards are averaged over successors (:class:`~pgnotes.mdp.TabularMDP`).

    Termination: a state that is only ever entered through ``terminated=True`` transitions
    (and is not a start state) becomes terminal: absorbing, zero reward (FrozenLake's holes
    and goal, CliffWalking's goal). Any other ``terminated=True`` transition goes to one
    added terminal state with index ``S`` (Taxi's drop-off), so the MDP then has ``S + 1``
    states.
    """
    u = getattr(env, "unwrapped", env)
    table = getattr(u, "P", None)
    if not isinstance(table, dict):
        raise ValueError("env has no transition table P: only toy-text environments can be read")
    S, A = len(table), len(table[0])
    rho0 = np.asarray(getattr(u, "initial_state_distrib", getattr(u, "isd", None)), dtype=float)
    if rho0.shape != (S,):
        raise ValueError("env has no initial_state_distrib of one entry per state")

    entered, entered_live = np.zeros(S, dtype=bool), np.zeros(S, dtype=bool)
    for s in range(S):
        for a in range(A):
            for p, s2, _, done in table[s][a]:
                if p > 0:
                    entered[int(s2)] = True
                    entered_live[int(s2)] |= not done
    absorbing = entered & ~entered_live & (rho0 == 0)
    needs_sink = any(
        p > 0 and done and not absorbing[int(s2)]
        for s in range(S)
        for a in range(A)
        for p, s2, _, done in table[s][a]
    )
    n = S + int(needs_sink)
    P = np.zeros((n, A, n))
    R = np.zeros((n, A))  # expected reward Σ p·r; duplicate successors (FrozenLake) just add
    for s in range(S):
        if absorbing[s]:
            P[s, :, s] = 1.0
            continue
        for a in range(A):
            for p, s2, r, done in table[s][a]:
                s2 = int(s2)
                to = s2 if (not done or absorbing[s2]) else S
                P[s, a, to] += p
                R[s, a] += p * r
    if needs_sink:
        P[S, :, S] = 1.0
        rho0 = np.append(rho0, 0.0)
    return TabularMDP(P, R, rho0, gamma)


def chain(n: int, *, reward: float = 1.0, gamma: float = 1.0) -> TabularMDP:
    r"""A deterministic chain of ``n`` steps with a single reward at the end.

    States ``0, …, n-1`` are non-terminal and state ``n`` is terminal; there is one action,
    which moves ``s → s+1``. The episode starts in state 0, every step pays 0 except the last
    one (from ``n-1`` into the terminal state), which pays ``reward``. So the only trajectory
    has ``r_t = reward · 1[t = n-1]`` and ends after exactly ``n`` steps: a model of a
    completion of ``n`` tokens scored once at its end. Book: GAE(λ), the decay of a terminal
    reward (book/06_gae.ipynb).

    Examples
    --------
    >>> import numpy as np
    >>> from pgnotes import exact
    >>> mdp = chain(3, reward=2.0, gamma=0.5)  # paid 2 at t = 2: J = 0.5² · 2
    >>> exact.objective(mdp, np.zeros((4, 1)))
    0.5
    """
    n = as_count(n, "n", minimum=1, maximum=MAX_STATES - 1)
    reward = as_real(reward, "reward")
    S = n + 1
    P = np.zeros((S, 1, S))
    P[np.arange(n), 0, np.arange(1, S)] = 1.0
    P[n, 0, n] = 1.0
    R = np.zeros((S, 1))
    R[n - 1, 0] = reward
    rho0 = np.zeros(S)
    rho0[0] = 1.0
    return TabularMDP(P, R, rho0, gamma)


def one_hot_features(n_states: int, n_actions: int) -> np.ndarray:
    r"""``φ(s,a) = e_{(s,a)}`` of shape (S, A, S·A): the log-linear policy equal to the tabular one."""
    S = as_count(n_states, "n_states", minimum=1, maximum=5000)
    A = as_count(n_actions, "n_actions", minimum=1, maximum=1000)
    return np.eye(S * A).reshape(S, A, S * A)


def random_features(n_states: int, n_actions: int, d: int, rng: np.random.Generator) -> np.ndarray:
    r"""Standard normal features ``φ(s,a) ∈ R^d``, shape (S, A, d)."""
    rng = check_rng(rng)
    S = as_count(n_states, "n_states", minimum=1, maximum=5000)
    A = as_count(n_actions, "n_actions", minimum=1, maximum=1000)
    d = as_count(d, "d", minimum=1, maximum=10_000)
    return rng.standard_normal((S, A, d))
