"""Comparison figures: files written, expected panels and bars, caller's axes honored."""

from __future__ import annotations

import numpy as np
import pytest

from featstore.errors import InputError
from featstore.evaluate.roi_groups import BUILTIN_ROI_GROUPS
from featstore.plot import compare


def _bars(ax):
    from matplotlib.patches import Rectangle

    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_best_layers_one_bar_per_model_colored_by_kind(results, tmp_path):
    out = tmp_path / "best.png"
    figure = compare.plot_best_layers(results, output_file=out)
    (ax,) = figure.axes
    assert out.stat().st_size > 5_000
    assert len(_bars(ax)) == 5  # gpt2, roberta, wavlm, whisper-base, gpt2+wavlm
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0].startswith("gpt2\n") and labels[-1].startswith("gpt2+wavlm\n")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "text",
        "audio",
        "multimodal",
        "fusion",
    ]


def test_window_trends_and_layer_profiles(results, tmp_path):
    trends = compare.plot_window_trends(results, output_file=tmp_path / "w.png")
    (ax,) = trends.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "6"]
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {
        "wavlm (audio)",
        "whisper-base (multimodal)",
    }
    with pytest.raises(InputError, match="no configs with ctx windows"):
        compare.plot_window_trends(results.sel(config=["wavlm/tr6/layer9"]), window_kind="ctx")
    profiles = compare.plot_layer_profiles(results, output_file=tmp_path / "l.png")
    (ax,) = profiles.axes
    assert len(ax.get_lines()) == 5
    assert max(max(line.get_xdata()) for line in ax.get_lines()) == pytest.approx(1.0)


def test_roi_top_uses_region_names_and_ceiling_ticks(results, tmp_path):
    import numpy as np

    ceiling = results[["roi_name", "hemisphere"]].assign(ceiling=("roi", np.full(360, 0.3)))
    figure = compare.plot_roi_top(
        results, "wavlm/tr6/layer9", top=12, ceiling=ceiling, output_file=tmp_path / "top.pdf"
    )
    (ax,) = figure.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 12 and all(label[:2] in ("L_", "R_") for label in labels)
    assert len(_bars(ax)) == 12 and (tmp_path / "top.pdf").exists()
    assert ax.get_legend().get_texts()[0].get_text().startswith("noise ceiling")


def test_fusion_heatmap_and_roi_groups(results, tmp_path):
    heat = compare.plot_fusion_heatmap(results, output_file=tmp_path / "f.png")
    assert len(heat.axes) == 2  # heatmap and its colorbar
    assert heat.axes[0].get_ylabel() == "gpt2/ctx200 layer"
    configs = ["gpt2/ctx200/layer9", "wavlm/tr6/layer9", "whisper-base/tr6/layer4"]
    groups = compare.plot_roi_groups(
        results, configs, BUILTIN_ROI_GROUPS, output_file=tmp_path / "g.png"
    )
    (ax,) = groups.axes
    assert len(_bars(ax)) == len(configs) * len(BUILTIN_ROI_GROUPS)
    with pytest.raises(InputError, match="need a noise ceiling"):
        compare.plot_roi_groups(results, configs, BUILTIN_ROI_GROUPS, normalized=True)
    ceiling = results[["roi_name", "hemisphere"]].assign(ceiling=("roi", np.full(360, 0.05)))
    for threshold, drawn in ((0.1, False), (0.01, True)):  # the table's keywords pass on
        normalized = compare.plot_roi_groups(
            results,
            configs,
            BUILTIN_ROI_GROUPS,
            normalized=True,
            ceiling=ceiling,
            ceiling_threshold=threshold,
        )
        heights = [bar.get_height() for bar in _bars(normalized.axes[0])]
        assert np.isfinite(heights).all() == drawn
    with pytest.raises(InputError, match="no fusion"):
        compare.plot_fusion_heatmap(results.sel(config=configs))


def test_figures_draw_into_given_axes(results):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4))
    left, right = figure.subplots(1, 2)
    assert compare.plot_best_layers(results, axes=left) is figure
    assert compare.plot_layer_profiles(results, axes=right) is figure
    assert len(figure.axes) == 2 and len(_bars(left)) == 5
