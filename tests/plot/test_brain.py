"""Brain maps: color scales, panels, masks, caller's axes, files; headless and pyplot-free."""

from __future__ import annotations

import numpy as np
import pytest

from featstore.datasets.atlas import hcp_mmp_rois
from featstore.errors import InputError
from featstore.plot.brain import color_scale, plot_brain, plot_brain_panels

VIEW_LABELS = ["left lateral", "left medial", "right medial", "right lateral"]


def _view_axes(figure):
    return [ax for ax in figure.axes if ax.name == "3d"]


def _colorbars(figure):
    return [ax for ax in figure.axes if ax.get_label() == "colorbar"]


def test_color_scale_follows_the_data_unless_given():
    assert color_scale(np.array([-0.2, 0.1, np.nan])) == color_scale(np.array([0.2, -0.1]))
    mixed = color_scale(np.array([-0.2, 0.1, np.nan]))
    assert (mixed.cmap, mixed.vmin, mixed.vmax, mixed.symmetric) == ("RdBu_r", -0.2, 0.2, True)
    positive = color_scale(np.array([0.05, 0.3]))
    assert (positive.cmap, positive.vmin, positive.vmax) == ("YlOrRd", 0.0, 0.3)
    negative = color_scale(np.array([-0.05, -0.3]))
    assert (negative.cmap, negative.vmin, negative.vmax) == ("Blues_r", -0.3, 0.0)
    shared = color_scale([np.array([0.1, 0.2]), np.array([0.5])])
    assert shared.vmax == 0.5
    forced = color_scale(np.array([0.1, 0.4]), symmetric=True, cmap="coolwarm")
    assert (forced.cmap, forced.vmin, forced.vmax) == ("coolwarm", -0.4, 0.4)
    given = color_scale(np.array([0.1, 0.4]), vmin=-1, vmax=2)
    assert given.symmetric and (given.vmin, given.vmax) == (-2, 2)
    empty = color_scale(np.array([np.nan]))
    assert (empty.vmin, empty.vmax) == (0.0, 1.0)
    with pytest.raises(InputError, match="below vmax"):
        color_scale(np.array([0.1]), vmin=0.5, vmax=0.2)


def test_plot_brain_writes_four_views_title_and_colorbar(tmp_path):
    values = np.random.default_rng(0).normal(size=360)
    out = tmp_path / "maps" / "brain.png"
    figure = plot_brain(values, title="random map", output_file=out)
    assert out.stat().st_size > 20_000
    assert [ax.get_label() for ax in _view_axes(figure)] == VIEW_LABELS
    (colorbar,) = _colorbars(figure)
    low, high = colorbar.get_ylim()
    assert low == pytest.approx(-high) and high == pytest.approx(np.abs(values).max())
    assert "random map" in [t.get_text() for t in figure.texts]


def test_mask_leaves_rois_unpainted_and_out_of_the_color_scale():
    names, _ = hcp_mmp_rois()
    values = np.full(360, 10.0)
    keep = names.index("A1")
    values[keep] = 0.5
    mask = np.ones(360, dtype=bool)
    mask[keep] = False
    figure = plot_brain(values, mask=mask)
    (colorbar,) = _colorbars(figure)
    assert colorbar.get_ylim() == pytest.approx((0.0, 0.5))
    with pytest.raises(InputError, match="mask has shape"):
        plot_brain(values, mask=mask[:10])


def test_panels_share_one_scale_or_get_one_each():
    rng = np.random.default_rng(1)
    rows = [rng.uniform(0, 0.1, 360), rng.uniform(0, 0.3, 360)]
    shared = plot_brain_panels(rows, titles=["a", "b"], shared_scale=True)
    assert len(_view_axes(shared)) == 8 and len(_colorbars(shared)) == 1
    assert _colorbars(shared)[0].get_ylim()[1] == pytest.approx(rows[1].max())
    separate = plot_brain_panels(rows, titles=["a", "b"], shared_scale=False)
    limits = sorted(ax.get_ylim()[1] for ax in _colorbars(separate))
    assert limits == pytest.approx(sorted(r.max() for r in rows))
    with pytest.raises(InputError, match="2 titles for 1"):
        plot_brain_panels(rows[:1], titles=["a", "b"])


def test_draws_inside_the_callers_axes():
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 6))
    top, bottom = figure.subplots(2, 1)
    bottom.plot([0, 1], [0, 1])
    returned = plot_brain(np.linspace(-1, 1, 360), axes=top)
    assert returned is figure
    assert top not in figure.axes and bottom in figure.axes
    assert len(_view_axes(figure)) == 4
    assert min(ax.get_position().y0 for ax in _view_axes(figure)) >= 0.45


def test_single_map_passes_its_style_keywords_on():
    figure = plot_brain(
        np.linspace(0.1, 0.4, 360), cmap="viridis", vmin=0.0, vmax=2.0, colorbar_label="r / nc"
    )
    (colorbar,) = _colorbars(figure)
    assert colorbar.get_ylim() == pytest.approx((0.0, 2.0))
    assert colorbar.get_ylabel() == "r / nc"
    with pytest.raises(TypeError, match="colour"):
        plot_brain(np.zeros(360), colour="red")
