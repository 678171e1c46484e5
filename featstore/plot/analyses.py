"""Figures of the analyses beyond encoding, each drawn from its ``results/<run_id>`` group.

* :func:`plot_rsa_curves` — layer-wise RSA per ROI group (``evaluate rsa``);
* :func:`plot_similarity` — every metric's layer profile and how the metrics agree
  (``evaluate similarity``);
* :func:`plot_lowlevel_drop` — % drop of alignment per ROI group after removing the
  low-level controls (``evaluate lowlevel``).

Headless like every featstore figure: they return the figure and save it when given
``output_file``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from featstore._docs import fill_doc
from featstore.errors import InputError
from featstore.evaluate.roi_groups import roi_labels
from featstore.plot._figure import (
    figure_and_axes,
    finish,
    finish_axes,
    grouped_bar_positions,
    line_colors,
    new_figure,
    style_axes,
)
from featstore.store import _schema as S

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Significance level of the markers (uncorrected permutation / Wilcoxon p).
MARK_P = 0.05


def _sem(values: xr.DataArray) -> np.ndarray:
    n = values.count(S.SUBJECT_DIM)
    return (values.std(S.SUBJECT_DIM, ddof=1) / np.sqrt(n)).fillna(0).values


@fill_doc
def plot_rsa_curves(
    ds: xr.Dataset,
    *,
    partial: bool = False,
    title: str | None = None,
    axes: Axes | None = None,
    output_file: str | os.PathLike | None = None,
) -> Figure:
    """Lines: mean RSA value across subjects against layer, one line per ROI group.

    Shading: ± s.e.m. across subjects; filled markers: permutation p < 0.05 (open: not).

    Parameters
    ----------
    ds : xarray.Dataset
        An RSA run, ``results/<run_id>`` (:func:`featstore.evaluate.analyses.run_rsa`).
    partial : bool
        Draw the partial RSA of a run made with ``partial`` (a layer partialled out).
    %(title_figure_out)s

    Examples
    --------
    %(example_analysis_store)s
    >>> run_id = analyses.run_rsa(store, "toy-lm:ctx8", n_perm=0, roi_groups=["auditory"])
    >>> ds = open_group(store, f"results/{run_id}")
    >>> figure = plot.plot_rsa_curves(ds, output_file=tempfile.mkdtemp() + "/rsa.png")
    """
    name = "rho_partial" if partial else "rho"
    if name not in ds:
        raise InputError(f"this RSA run has no {name!r} (run the RSA with `partial`)")
    p_name = "p_partial" if partial else "p"
    settings = ds.attrs.get("settings", {})
    figure, ax = figure_and_axes(axes, 6.0, 3.8)
    layers = ds[S.LAYER_DIM].values
    groups = [str(g) for g in ds[S.ROI_GROUP_DIM].values]
    for color, group in zip(line_colors(len(groups)), groups, strict=False):
        rho = ds[name].sel({S.ROI_GROUP_DIM: group})
        mean = rho.mean(S.SUBJECT_DIM).values
        sem = _sem(rho)
        ax.plot(layers, mean, color=color, label=group, linewidth=1.4)
        ax.fill_between(layers, mean - sem, mean + sem, color=color, alpha=0.15, linewidth=0)
        significant = ds[p_name].sel({S.ROI_GROUP_DIM: group}).values < MARK_P
        ax.scatter(layers[significant], mean[significant], color=color, s=22, zorder=3)
        ax.scatter(
            layers[~significant],
            mean[~significant],
            facecolor="white",
            edgecolor=color,
            s=22,
            zorder=3,
        )
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("layer")
    compare = settings.get("compare", "spearman")
    ax.set_ylabel(f"{'partial ' if partial else ''}RSA ({compare}, ± s.e.m.)")
    ax.set_xticks(layers)
    ax.legend(frameon=False, fontsize=7)
    return finish_axes(figure, ax, output_file, title=title, new=axes is None, fontsize=10)


@fill_doc
def metric_agreement(ds: xr.Dataset) -> xr.DataArray:
    """Spearman correlation across layers of the metrics' subject-mean layer profiles.

    Parameters
    ----------
    ds : xarray.Dataset
        A similarity run (:func:`featstore.evaluate.analyses.run_similarity`) of 3 or more
        layers.

    Returns
    -------
    xarray.DataArray
        ``(metric_a, metric_b)``, 1 on the diagonal.

    Examples
    --------
    %(example_analysis_store)s
    >>> run_id = analyses.run_similarity(store, "toy-lm:ctx8", metrics=["cka", "rsa"])
    >>> plot.metric_agreement(open_group(store, f"results/{run_id}")).dims
    ('metric_a', 'metric_b')
    """
    from scipy.stats import spearmanr

    means = ds["score"].mean(S.SUBJECT_DIM).values  # (metric, layer)
    metrics = [str(m) for m in ds[S.METRIC_DIM].values]
    if means.shape[1] < 3:
        raise InputError(f"{means.shape[1]} layers: metric agreement needs at least 3")
    if len(metrics) == 1:
        rho = np.ones((1, 1))
    else:  # scipy gives the matrix for 3 or more variables, the one coefficient for 2
        statistic = spearmanr(means, axis=1).statistic
        rho = statistic if len(metrics) > 2 else np.array([[1.0, statistic], [statistic, 1.0]])
    return xr.DataArray(
        rho, dims=("metric_a", "metric_b"), coords={"metric_a": metrics, "metric_b": metrics}
    )


@fill_doc
def plot_similarity(
    ds: xr.Dataset,
    *,
    title: str | None = None,
    output_file: str | os.PathLike | None = None,
) -> Figure:
    """Left: each metric's layer profile, min–max scaled so all share one axis (best layer
    = 1); right: Spearman correlation of the profiles between metrics (≥ 3 layers).

    Parameters
    ----------
    ds : xarray.Dataset
        A similarity run (:func:`featstore.evaluate.analyses.run_similarity`).
    %(title)s
    output_file : str or os.PathLike, optional
        Save the figure there, in the format of its suffix.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    %(example_analysis_store)s
    >>> run_id = analyses.run_similarity(store, "toy-lm:ctx8", metrics=["cka", "rsa"])
    >>> ds = open_group(store, f"results/{run_id}")
    >>> figure = plot.plot_similarity(ds, output_file=tempfile.mkdtemp() + "/similarity.png")
    """
    means = ds["score"].mean(S.SUBJECT_DIM)
    metrics = [str(m) for m in ds[S.METRIC_DIM].values]
    layers = ds[S.LAYER_DIM].values
    agree = layers.size >= 3 and len(metrics) > 1
    figure = new_figure(10.0 if agree else 6.0, 3.8)
    ax = figure.add_subplot(1, 2 if agree else 1, 1)
    for color, metric in zip(line_colors(len(metrics)), metrics, strict=False):
        values = means.sel({S.METRIC_DIM: metric}).values
        span = np.nanmax(values) - np.nanmin(values)
        scaled = (values - np.nanmin(values)) / span if span > 0 else np.zeros_like(values)
        ax.plot(layers, scaled, marker="o", markersize=3, color=color, label=metric)
    ax.set_xlabel("layer")
    ax.set_ylabel("subject-mean score, min–max scaled")
    ax.set_xticks(layers)
    ax.legend(frameon=False, fontsize=7)
    style_axes(ax, "Layer profiles", fontsize=10)
    if agree:
        matrix = metric_agreement(ds).values
        ax2 = figure.add_subplot(1, 2, 2)
        image = ax2.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r")
        ax2.set_xticks(range(len(metrics)), metrics, rotation=45, ha="right", fontsize=8)
        ax2.set_yticks(range(len(metrics)), metrics, fontsize=8)
        for i in range(len(metrics)):
            for j in range(len(metrics)):
                ax2.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7)
        figure.colorbar(image, ax=ax2, shrink=0.8, label="Spearman across layers")
        ax2.set_title("Metric agreement", fontsize=10)
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    return finish(figure, output_file)


@fill_doc
def plot_lowlevel_drop(
    ds: xr.Dataset,
    *,
    title: str | None = None,
    axes: Axes | None = None,
    output_file: str | os.PathLike | None = None,
) -> Figure:
    """Grouped bars: %% drop of the subject-mean r per ROI group, one bar per layer.

    Without ROI groups (a custom atlas), the bars are the 12 ROIs best predicted by the
    original features. Stars: one-sided Wilcoxon p < 0.05 across subjects.

    Parameters
    ----------
    ds : xarray.Dataset
        A low-level run (:func:`featstore.evaluate.analyses.run_lowlevel`).
    %(title_figure_out)s

    Examples
    --------
    %(example_analysis_store)s
    >>> run_id = analyses.run_lowlevel(store, "toy-speech:tr1", ["toy-lm/ctx8/1"])
    >>> ds = open_group(store, f"results/{run_id}")
    >>> figure = plot.plot_lowlevel_drop(ds, output_file=tempfile.mkdtemp() + "/drop.png")
    """
    if "group_drop" in ds:
        drop, p = ds["group_drop"], ds["group_p"]
        names = [str(g) for g in ds[S.ROI_GROUP_DIM].values]
        region_dim = S.ROI_GROUP_DIM
    else:
        best = ds["r_orig"].mean(S.SUBJECT_DIM).max(S.LAYER_DIM)
        order = np.argsort(-np.nan_to_num(best.values, nan=-np.inf))[:12]
        drop, p = ds["drop"].isel({S.ROI_DIM: order}), ds["p"].isel({S.ROI_DIM: order})
        names = roi_labels(ds[S.ROI_NAME_COORD].values[order], ds[S.HEMISPHERE_COORD].values[order])
        region_dim = S.ROI_DIM
    layers = ds[S.LAYER_DIM].values
    figure, ax = figure_and_axes(axes, max(6.0, 0.9 * len(names) + 2.0), 3.8)
    width, positions = grouped_bar_positions(len(names), len(layers))
    for color, layer, x in zip(line_colors(len(layers)), layers, positions, strict=False):
        values = drop.sel({S.LAYER_DIM: layer}).values
        ax.bar(x, np.nan_to_num(values), width=width, color=color, label=f"layer {layer}")
        marked = p.sel({S.LAYER_DIM: layer}).values < MARK_P
        for xi, value in zip(x[marked], np.nan_to_num(values[marked]), strict=True):
            ax.text(xi, value, "*", ha="center", va="bottom" if value >= 0 else "top")
    ax.set_xticks(
        range(len(names)), names, fontsize=8, rotation=30 if region_dim == S.ROI_DIM else 0
    )
    ax.axhline(0, color="black", linewidth=0.6)
    ax.axhline(100, color="gray", linewidth=0.6, linestyle=":")
    ax.set_ylabel("% drop of the subject-mean r")
    ax.legend(frameon=False, fontsize=7, ncol=min(len(layers), 5))
    return finish_axes(figure, ax, output_file, title=title, new=axes is None, fontsize=10)
