"""pgnotes.plots: each function draws what it says, read back from the artists it returns."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

import pgnotes as pg  # noqa: E402


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_grid_heatmap_shows_the_values_row_by_row_with_a_labelled_colour_bar(ax):
    values = np.arange(6, dtype=float) / 10
    im = pg.plots.grid_heatmap(ax, values, 2, 3, label="d^γ(s)")
    np.testing.assert_array_equal(np.asarray(im.get_array()), values.reshape(2, 3))
    assert [t.get_text() for t in ax.texts] == [f"{v:.2f}" for v in values]
    assert ax.get_xlabel() == "column" and ax.get_ylabel() == "row"
    colorbar_axes = [a for a in ax.figure.axes if a is not ax]
    assert len(colorbar_axes) == 1 and colorbar_axes[0].get_ylabel() == "d^γ(s)"
    with pytest.raises(ValueError, match="values must have shape"):
        pg.plots.grid_heatmap(ax, values[:5], 2, 3, label="x")


def test_draw_mdp_draws_one_arrow_per_likely_transition_and_squares_for_terminal_states(ax):
    mdp = pg.envs.random_mdp(4, 2, 0.9, np.random.default_rng(3), n_terminal=1)
    pg.plots.draw_mdp(ax, mdp, threshold=0.05)
    strength = mdp.P.max(axis=1)
    expected = int(((strength > 0.05) & ~np.eye(4, dtype=bool)).sum())
    arrows = [t for t in ax.texts if t.get_text() == "" and hasattr(t, "arrow_patch")]
    assert len(arrows) == expected
    markers = [line.get_marker() for line in ax.lines]
    assert markers == ["s" if t else "o" for t in mdp.terminal]
    assert [t.get_text() for t in ax.texts if t.get_text()] == ["0", "1", "2", "3"]


def test_confidence_band_draws_the_mean_a_band_of_z_standard_errors_and_the_exact_line(ax):
    n = np.array([10, 100, 1000])
    mean, se = np.array([1.0, 1.2, 1.1]), np.array([0.3, 0.1, 0.03])
    line = pg.plots.confidence_band(ax, n, mean, se, exact=1.1, z=2.0, label="REINFORCE")
    np.testing.assert_array_equal(line.get_ydata(), mean)
    band = ax.collections[0]
    ys = band.get_paths()[0].vertices[:, 1]
    assert np.isclose(ys.min(), (mean - 2 * se).min()) and np.isclose(ys.max(), (mean + 2 * se).max())
    assert to_rgba(band.get_facecolor()[0], 1.0) == to_rgba(line.get_color(), 1.0)
    exact = [l for l in ax.lines if l is not line]
    assert len(exact) == 1 and np.all(np.asarray(exact[0].get_ydata()) == 1.1)
    labels = ax.get_legend_handles_labels()[1]
    assert sorted(labels) == sorted(["REINFORCE", "±2 standard errors", "exact"])
    assert ax.get_xscale() == "log"


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
