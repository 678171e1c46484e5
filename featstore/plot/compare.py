"""Comparison figures from evaluation results: models, windows, layers, ROIs, fusion.

Every function takes a results dataset (``results/<run_id>`` opened with xarray, or runs
combined with :func:`featstore.evaluate.runs.tables.combine_runs`), draws into ``axes`` or a new
pyplot-free figure, saves to ``output_file`` when given and returns the figure. The
whole-brain score of a config is the reference study's: the per-subject mean of r over
ROIs; error bars are its standard deviation across subjects.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from featstore._docs import fill_doc
from featstore.errors import InputError
from featstore.evaluate.runs import tables
from featstore.evaluate.runs.tables import KIND_ORDER
from featstore.plot._figure import (
    KIND_COLORS,
    figure_and_axes,
    finish,
    finish_axes,
    grouped_bar_positions,
    line_colors,
)
from featstore.store.paths import parse_window

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_NEUTRAL = "#999999"


def _short_config(row) -> str:
    """``tr6 · L9`` for a single config, ``ctx200+tr6 · 9×9`` for a fusion."""
    if row["kind"] == "fusion":
        return f"{row['window']}+{row['partner_window']} · {row['layer']}×{row['partner_layer']}"
    return f"{row['window']} · L{row['layer']}"


def _kind_legend(ax: Axes, kinds: Sequence[str]) -> None:
    from matplotlib.patches import Patch

    present = [k for k in KIND_ORDER if k in set(kinds)]
    ax.legend(
        handles=[Patch(color=KIND_COLORS[k], label=k) for k in present],
        frameon=False,
        fontsize=8,
        # outside the axes, right of the bars: inside, it covered the tallest bar's label
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
    )


@fill_doc
def plot_best_layers(
    results: xr.Dataset,
    *,
    title: str | None = "Best config per model",
    axes: Axes | None = None,
    output_file: str | os.PathLike | None = None,
) -> Figure:
    """Bars: the best config (window and layer) of each model, colored by kind.

    Bar height: mean over subjects of the whole-brain mean r; error bar: std across
    subjects. Models are grouped text → audio → multimodal → low-level → fusion.

    Parameters
    ----------
    %(results)s
    %(title_figure_out)s

    Examples
    --------
    %(example_run)s
    >>> from featstore.plot import plot_best_layers
    >>> figure = plot_best_layers(run.dataset, output_file=tempfile.mkdtemp() + "/best.png")
    """
    best = tables.best_configs(tables.config_table(results), by=("family",))
    if best.empty:
        raise InputError("no configs to plot")
    figure, ax = figure_and_axes(axes, max(5.0, 0.75 * len(best) + 1.5), 4.2)
    x = np.arange(len(best))
    colors = [KIND_COLORS.get(k, _NEUTRAL) for k in best["kind"]]
    ax.bar(
        x,
        best["mean"],
        yerr=best["std"].fillna(0),
        color=colors,
        capsize=3,
        error_kw={"elinewidth": 1},
    )
    for xi, (_, row) in zip(x, best.iterrows(), strict=True):
        ax.annotate(
            f"{row['mean']:.3f}",
            (xi, row["mean"]),
            textcoords="offset points",
            xytext=(0, 2),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    ax.set_xticks(
        x,
        [f"{row['family']}\n{_short_config(row)}" for _, row in best.iterrows()],
        rotation=30,
        ha="right",
        fontsize=8,
    )
    ax.set_ylabel("mean r over ROIs (± std across subjects)")
    ax.axhline(0, color="black", linewidth=0.6)
    _kind_legend(ax, best["kind"])
    return finish_axes(figure, ax, output_file, title=title, new=axes is None)


def _single_feature_configs(results: xr.Dataset):
    """The config table of ``results`` without its fusion configs."""
    table = tables.config_table(results)
    return table[table["kind"] != "fusion"]


def _window_size(window: str) -> int:
    return parse_window(window)[1]


@fill_doc
def plot_window_trends(
    results: xr.Dataset,
    *,
    window_kind: str | None = None,
    title: str | None = "Best layer per window",
    axes: Axes | None = None,
    output_file: str | os.PathLike | None = None,
) -> Figure:
    """Lines: for each model, the score of its best layer at each window size.

    Each point is labelled with its best layer (``L9``); score: the mean over subjects of
    the whole-brain mean r, error bars its std across subjects.

    Parameters
    ----------
    %(results)s
    window_kind : {"tr", "ctx"}, optional
        Audio windows (TRs) or text context (words); default ``"tr"`` when the results
        have audio windows, else ``"ctx"``. Fusion configs are left out.
    %(title_figure_out)s

    Examples
    --------
    %(example_run)s
    >>> from featstore.plot import plot_window_trends
    >>> figure = plot_window_trends(run.dataset, window_kind="ctx")
    """
    table = _single_feature_configs(results)
    kinds = {parse_window(w)[0] for w in table["window"]}
    if not kinds:
        raise InputError("no single-feature configs to plot")
    window_kind = window_kind or ("tr" if "tr" in kinds else "ctx")
    table = table[[parse_window(w)[0] == window_kind for w in table["window"]]]
    if table.empty:
        raise InputError(f"no configs with {window_kind} windows")
    best = tables.best_configs(table, by=("family", "window"))
    figure, ax = figure_and_axes(axes, 6.0, 4.0)
    sizes = sorted({_window_size(w) for w in best["window"]})
    position = {size: i for i, size in enumerate(sizes)}
    cycle = line_colors(len(best["family"].unique()))
    for color, (name, rows) in zip(cycle, best.groupby("family", sort=False), strict=False):
        rows = rows.assign(size=[_window_size(w) for w in rows["window"]]).sort_values("size")
        xs = [position[s] for s in rows["size"]]
        ax.errorbar(
            xs,
            rows["mean"],
            yerr=rows["std"].fillna(0),
            marker="o",
            capsize=3,
            color=color,
            label=f"{name} ({rows['kind'].iloc[0]})",
        )
        for xi, (_, row) in zip(xs, rows.iterrows(), strict=True):
            ax.annotate(
                f"L{row['layer']}",
                (xi, row["mean"]),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=7,
                color=color,
            )
    unit = "TRs of audio" if window_kind == "tr" else "words of context"
    ax.set_xticks(range(len(sizes)), [str(s) for s in sizes])
    ax.set_xlabel(f"window ({unit})")
    ax.set_ylabel("best-layer mean r (± std across subjects)")
    ax.legend(frameon=False, fontsize=8)
    return finish_axes(figure, ax, output_file, title=title, new=axes is None)


@fill_doc
def plot_layer_profiles(
    results: xr.Dataset,
    *,
    windows: Sequence[str] | None = None,
    title: str | None = "Layer profiles",
    axes: Axes | None = None,
    output_file: str | os.PathLike | None = None,
) -> Figure:
    """Lines: whole-brain mean r against relative depth (layer / number of blocks).

    One line per model and window (``windows`` restricts them); shading: ± standard
    error across subjects. Relative depth puts 6- and 12-layer models on one axis.

    Parameters
    ----------
    %(results)s
    windows : sequence of str, optional
        The windows drawn, e.g. ``["ctx8"]`` (default: all).
    %(title_figure_out)s

    Examples
    --------
    %(example_run)s
    >>> from featstore.plot import plot_layer_profiles
    >>> path = tempfile.mkdtemp() + "/profiles.svg"
    >>> _ = plot_layer_profiles(run.dataset, windows=["ctx8"], output_file=path)
    """
    table = _single_feature_configs(results)
    table = table[table["depth"].notna()]
    if windows is not None:
        table = table[table["window"].isin(list(windows))]
    if table.empty:
        raise InputError("no single-feature configs to plot")
    figure, ax = figure_and_axes(axes, 6.5, 4.2)
    groups = list(table.groupby(["family", "window"], sort=False))
    for color, ((name, window), rows) in zip(line_colors(len(groups)), groups, strict=False):
        rows = rows.sort_values("depth")
        sem = rows["std"].fillna(0) / np.sqrt(rows["n_subjects"].clip(lower=1))
        ax.plot(
            rows["depth"],
            rows["mean"],
            marker="o",
            markersize=3,
            color=color,
            label=f"{name} {window}",
        )
        ax.fill_between(
            rows["depth"],
            rows["mean"] - sem,
            rows["mean"] + sem,
            color=color,
            alpha=0.15,
            linewidth=0,
        )
    ax.set_xlabel("relative depth (layer / number of blocks)")
    ax.set_ylabel("mean r over ROIs (± s.e.m.)")
    ax.set_xlim(-0.02, 1.02)
    ax.legend(frameon=False, fontsize=7, ncol=2)
    return finish_axes(figure, ax, output_file, title=title, new=axes is None)


@fill_doc
def plot_roi_top(
    results: xr.Dataset,
    config: str,
    *,
    top: int = 20,
    ceiling: xr.Dataset | None = None,
    stats: xr.Dataset | None = None,
    title: str | None = None,
    axes: Axes | None = None,
    output_file: str | os.PathLike | None = None,
) -> Figure:
    """Horizontal bars: the ``top`` ROIs of one config by mean r, with HCP-MMP names.

    Error bars: std across subjects. With a noise ceiling, a black tick marks each
    ROI's ceiling; with permutation statistics, ROIs not significant at FDR q < 0.05
    are drawn hatched.

    Parameters
    ----------
    %(results)s
    config : str
        The config, e.g. ``toy-lm/ctx8/layer2``.
    top : int
        How many ROIs.
    ceiling : xarray.Dataset, optional
        The noise ceiling (variable ``ceiling`` over ``roi``).
    stats : xarray.Dataset, optional
        Permutation statistics of the run (``evaluate significance``).
    %(title_figure_out)s

    Examples
    --------
    %(example_run)s
    >>> from featstore.plot import plot_roi_top
    >>> figure = plot_roi_top(run.dataset, "toy-lm/ctx8/layer2", top=5)
    """
    frame = tables.ranked_roi_table(results, config, ceiling=ceiling, stats=stats).head(top)
    figure, ax = figure_and_axes(axes, 6.0, 0.28 * len(frame) + 1.3)
    y = np.arange(len(frame))[::-1]
    kind = str(tables.select_config(results, config)["kind"].values)
    color = KIND_COLORS.get(kind, _NEUTRAL)
    bars = ax.barh(
        y,
        frame["mean_r"],
        xerr=frame["std_r"].fillna(0),
        color=color,
        capsize=2,
        error_kw={"elinewidth": 0.8},
    )
    if "q" in frame:
        for bar, q in zip(bars, frame["q"], strict=True):
            if not q < 0.05:
                bar.set_hatch("///")
                bar.set_alpha(0.5)
    if "ceiling" in frame:
        ax.plot(
            frame["ceiling"],
            y,
            linestyle="none",
            marker="|",
            markersize=10,
            color="black",
            label="noise ceiling (LOSO ISC)",
        )
        ax.legend(frameon=False, fontsize=8, loc="lower right")
    ax.set_yticks(y, frame["label"], fontsize=8)
    ax.set_xlabel("mean r across subjects (± std)")
    ax.axvline(0, color="black", linewidth=0.6)
    title = title or f"Top {len(frame)} ROIs: {config}"
    return finish_axes(figure, ax, output_file, title=title, new=axes is None, fontsize=10)


@fill_doc
def plot_fusion_heatmap(
    results: xr.Dataset,
    *,
    pair: str | None = None,
    title: str | None = None,
    axes: Axes | None = None,
    output_file: str | os.PathLike | None = None,
) -> Figure:
    """Heatmap of a fusion's whole-brain mean r over its layer pairs (A layer × B layer).

    Each cell shows the mean over subjects of one layer pair's whole-brain mean r, its
    value written in it; a pair without a finite score is left blank.

    Parameters
    ----------
    %(results)s
    pair : str, optional
        ``"{A}/{winA}+{B}/{winB}"`` (``"/banded"`` appended for banded fusion);
        default: the first fusion pair in the results.
    %(title_figure_out)s

    Examples
    --------
    >>> import featstore as fs
    >>> from featstore.datasets import example_store
    >>> from featstore.plot import plot_fusion_heatmap
    >>> store = fs.open_store(example_store())
    >>> fusion = ("toy-lm:ctx8@1,2", "toy-speech:tr1@1,3")
    >>> run = store.grid(fusions=[fusion], progress=False)
    >>> plot_fusion_heatmap(run.dataset).axes[0].get_xlabel()
    '...'
    """
    pair, grid = tables.fusion_grid(results, pair)
    figure, ax = figure_and_axes(axes, 1.2 + 0.55 * grid.shape[1] + 1.2, 1.2 + 0.45 * grid.shape[0])
    image = ax.imshow(grid.values, cmap="viridis", aspect="auto", origin="lower")
    values = grid.values
    finite = values[np.isfinite(values)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if np.isfinite(values[i, j]):
                ax.text(
                    j,
                    i,
                    f"{values[i, j]:.3f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if values[i, j] > middle else "white",
                )
    name_a, name_b = pair.split("+", 1)
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [str(i) for i in grid.index])
    ax.set_xlabel(f"{name_b} layer")
    ax.set_ylabel(f"{name_a} layer")
    figure.colorbar(image, ax=ax, label="mean r over ROIs")
    ax.set_title(title or f"Fusion {pair}", fontsize=10)
    if axes is None:
        figure.tight_layout()
    return finish(figure, output_file)


@fill_doc
def plot_roi_groups(
    results: xr.Dataset,
    configs: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    *,
    normalized: bool = False,
    title: str | None = "ROI groups",
    axes: Axes | None = None,
    output_file: str | os.PathLike | None = None,
    **table: Any,
) -> Figure:
    """Grouped bars: for each ROI group, the mean r of each config over the group's ROIs.

    Error bars: std across subjects.

    Parameters
    ----------
    %(results)s
    configs : sequence of str
        The configs, one bar each per group.
    groups : mapping of str to sequence of str
        ROI groups: name → ROI names (``featstore.evaluate.roi_groups.BUILTIN_ROI_GROUPS``).
    normalized : bool
        Show r / noise ceiling instead of r (needs ``ceiling``).
    **table
        Passed on to :func:`featstore.evaluate.runs.tables.roi_group_table`, which
        computes the bars: ``ceiling`` (the noise ceiling, an xarray.Dataset with variable
        ``ceiling`` over ``roi``) and ``ceiling_threshold`` (ratios to a ceiling below it
        are NaN; default 0.1).
    %(title_figure_out)s

    Examples
    --------
    %(example_run)s
    >>> from featstore.plot import plot_roi_groups
    >>> configs = ["toy-lm/ctx8/layer1", "toy-lm/ctx8/layer3"]
    >>> groups = {"early visual": ["V1", "V2"], "broca": ["44", "45"]}
    >>> figure = plot_roi_groups(run.dataset, configs, groups)
    """
    if normalized and table.get("ceiling") is None:
        raise InputError("normalized ROI-group bars need a noise ceiling")
    frame = tables.roi_group_table(results, configs, groups, **table)
    value = "mean_normalized" if normalized else "mean"
    group_names = list(groups)
    figure, ax = figure_and_axes(axes, max(6.0, 1.1 * len(group_names) + 2.0), 4.2)
    width, positions = grouped_bar_positions(len(group_names), len(configs))
    colors = line_colors(len(configs))
    for i, (config, x) in enumerate(zip(configs, positions, strict=True)):
        rows = frame[frame["config"] == config].set_index("group").loc[group_names]
        ax.bar(
            x,
            rows[value],
            width=width,
            color=colors[i],
            label=config,
            yerr=None if normalized else rows["std"].fillna(0),
            capsize=2,
            error_kw={"elinewidth": 0.8},
        )
    ax.set_xticks(
        range(len(group_names)),
        [f"{g}\n({int(frame[frame['group'] == g]['n_rois'].iloc[0])} ROIs)" for g in group_names],
        fontsize=8,
    )
    ax.set_ylabel("mean r / noise ceiling" if normalized else "mean r over the group's ROIs")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.legend(frameon=False, fontsize=7)
    return finish_axes(figure, ax, output_file, title=title, new=axes is None)
