"""The book's figures: small functions that draw on a given matplotlib ``Axes``.

Each returns the artist it made, so a notebook cell can end with ``plt.show()``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["grid_heatmap", "draw_grid", "draw_mdp", "confidence_band"]


def grid_heatmap(ax, values, rows: int, cols: int, *, label: str, fmt: str = "{:.2f}",
                 cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None):
    """Show per-state ``values`` of a ``rows × cols`` gridworld as a heat map with a colour bar.

    ``vmin`` and ``vmax`` fix the colour scale, so that two heat maps drawn with the same
    pair can be compared by colour; by default the scale spans ``values``.
    Book: derivation B, the occupancy ``d^γ`` on the gridworld (eq. ``b-dgamma``).

    Raises
    ------
    ValueError
        If ``values`` does not have one entry per cell, or ``vmin > vmax``.
    """
    values = np.asarray(values, dtype=float)
    if values.shape != (rows * cols,):
        raise ValueError(f"values must have shape ({rows * cols},), got {values.shape}")
    if vmin is not None and vmax is not None and vmin > vmax:
        raise ValueError(f"vmin ({vmin}) must not exceed vmax ({vmax}); swap them")
    grid = values.reshape(rows, cols)
    im = ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax)
    if fmt:
        lo = grid.min() if vmin is None else vmin
        hi = grid.max() if vmax is None else vmax
        mid = (lo + hi) / 2
        for r in range(rows):
            for c in range(cols):
                ax.text(c, r, fmt.format(grid[r, c]), ha="center", va="center", fontsize=8,
                        color="black" if grid[r, c] > mid else "white")
    ax.set_xticks(range(cols))
    ax.set_yticks(range(rows))
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    ax.figure.colorbar(im, ax=ax, label=label)
    return im


def draw_grid(ax, rows: int, cols: int, *, terminal=None, start=None, labels=None):
    """Draw the layout of a ``rows × cols`` grid MDP; state ``r·cols + c`` is the cell ``(r, c)``.

    Terminal states are filled orange, start states (``start``, e.g. ``ρ0 > 0``) green, the
    others white. ``labels`` (one string per state, e.g. ``"S"``, ``"H"``, ``"G"``) are written
    in the cells; by default each cell shows its state index.
    Book: Preface, the MDPs used throughout (the gridworld and FrozenLake).

    Returns
    -------
    The ``AxesImage``; its array holds 0 (ordinary), 1 (start) or 2 (terminal) per cell.
    """
    from matplotlib.colors import ListedColormap

    S = rows * cols
    terminal = np.zeros(S, dtype=bool) if terminal is None else np.asarray(terminal, dtype=bool)
    start = np.zeros(S, dtype=bool) if start is None else np.asarray(start, dtype=bool)
    labels = [str(s) for s in range(S)] if labels is None else [str(x) for x in labels]
    if terminal.shape != (S,) or start.shape != (S,) or len(labels) != S:
        raise ValueError(f"terminal, start and labels need one entry per state ({S})")
    kind = np.where(terminal, 2, np.where(start, 1, 0)).reshape(rows, cols)
    im = ax.imshow(kind, cmap=ListedColormap(["white", "tab:green", "tab:orange"]), vmin=0, vmax=2)
    for r in range(rows):
        for c in range(cols):
            ax.text(c, r, labels[r * cols + c], ha="center", va="center", fontsize=9)
    ax.set_xticks(np.arange(-0.5, cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, rows, 1), minor=True)
    ax.grid(which="minor", color="grey", lw=0.8)
    ax.tick_params(which="minor", length=0)
    ax.set_xticks(range(cols))
    ax.set_yticks(range(rows))
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    return im


def _arrow_width(p):
    return 0.5 + 2.5 * p


def draw_mdp(ax, mdp, *, threshold: float = 0.05, positions=None, key=None):
    """Draw the states of ``mdp`` on a circle, an arrow ``s → s'`` where ``max_a P(s'|s,a) > threshold``.

    Arrow width grows with that probability, ``0.5 + 2.5 p`` points; terminal states are
    drawn as squares. ``key``, a sequence of probabilities such as ``(0.25, 0.5, 1.0)``, adds
    a legend that shows the width of an arrow of each.
    Book: Preface, the MDPs used throughout.
    """
    S = mdp.n_states
    if positions is None:
        angle = 2 * np.pi * np.arange(S) / S
        positions = np.c_[np.cos(angle), np.sin(angle)]
    strength = mdp.P.max(axis=1)
    for s in range(S):
        for x in range(S):
            w = strength[s, x]
            if w <= threshold or s == x:
                continue
            ax.annotate("", xy=positions[x], xytext=positions[s],
                        arrowprops=dict(arrowstyle="-|>", lw=_arrow_width(w), alpha=0.6,
                                        shrinkA=12, shrinkB=12, connectionstyle="arc3,rad=0.15"))
    for s in range(S):
        marker = "s" if mdp.terminal[s] else "o"
        ax.plot(*positions[s], marker=marker, ms=22, color="tab:orange" if mdp.terminal[s] else "tab:blue")
        ax.text(*positions[s], str(s), ha="center", va="center", color="white", fontsize=10)
    if key is not None:
        key = [float(p) for p in key]
        if not key or any(not threshold < p <= 1 for p in key):
            raise ValueError(f"key must list probabilities in ({threshold}, 1], got {key}")
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color="black", alpha=0.6, lw=_arrow_width(p)) for p in key]
        ax.legend(handles, [rf"$\max_a P(s'|s,a) = {p:g}$" for p in key], fontsize=7,
                  loc="lower center", bbox_to_anchor=(0.5, -0.25), frameon=False)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def confidence_band(ax, n, mean, stderr, *, exact=None, z: float = 1.96, label: str = "Monte Carlo"):
    """Running Monte-Carlo mean with a ``±z`` standard-error band, and the exact value as a line.

    Book: derivation A, Monte Carlo converging to the exact gradient.
    """
    n, mean, stderr = (np.asarray(v, dtype=float) for v in (n, mean, stderr))
    line, = ax.plot(n, mean, label=label)
    ax.fill_between(n, mean - z * stderr, mean + z * stderr, alpha=0.25, color=line.get_color(),
                    label=f"±{z:g} standard errors")
    if exact is not None:
        ax.axhline(float(exact), color="black", ls="--", lw=1, label="exact")
    ax.set_xscale("log")
    return line
