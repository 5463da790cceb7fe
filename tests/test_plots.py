"""pgnotes.plots: the shared colour scale of grid_heatmap and the arrow key of draw_mdp."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import pgnotes as pg  # noqa: E402


def test_grid_heatmap_shares_a_scale():
    fig, (a0, a1) = plt.subplots(1, 2)
    im0 = pg.plots.grid_heatmap(a0, np.linspace(0, 0.2, 6), 2, 3, label="x", vmin=0, vmax=0.5)
    im1 = pg.plots.grid_heatmap(a1, np.linspace(0, 0.5, 6), 2, 3, label="x", vmin=0, vmax=0.5)
    assert im0.get_clim() == im1.get_clim() == (0, 0.5)
    im2 = pg.plots.grid_heatmap(a1, np.linspace(1, 2, 6), 2, 3, label="x")
    assert im2.get_clim() == (1, 2)
    with pytest.raises(ValueError, match="swap"):
        pg.plots.grid_heatmap(a1, np.zeros(6), 2, 3, label="x", vmin=1, vmax=0)
    plt.close(fig)


def test_draw_mdp_key():
    mdp = pg.envs.two_state_mdp(0.9)
    fig, ax = plt.subplots()
    pg.plots.draw_mdp(ax, mdp, key=(0.25, 1.0))
    leg = ax.get_legend()
    assert [t.get_text() for t in leg.get_texts()] == [
        r"$\max_a P(s'|s,a) = 0.25$", r"$\max_a P(s'|s,a) = 1$"]
    assert [h.get_linewidth() for h in leg.legend_handles] == [0.5 + 2.5 * 0.25, 3.0]
    with pytest.raises(ValueError, match="key must list"):
        pg.plots.draw_mdp(ax, mdp, key=(0.01,))
    plt.close(fig)
