"""EEG figures: layer × time maps of alignment metrics, and TRF topographies (MNE).

Both take a results group as loaded by ``featstore.store.open_group`` (or plain xarray)
and follow the ``plot_*`` contract of :mod:`featstore.plot._figure`: optional ``axes`` /
``output_file``, headless, the figure returned.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from featstore.errors import InputError
from featstore.plot._figure import figure_and_axes, finish

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def plot_layer_time(
    result: xr.Dataset,
    metric: str,
    *,
    q_level: float = 0.05,
    axes: Axes | None = None,
    output_file: str | os.PathLike | None = None,
) -> Figure:
    """Heatmap of one metric's subject-mean score, layer × time (``evaluate similarity-eeg``).

    Cells with FDR q below ``q_level`` are outlined by a contour.
    """
    metrics = [str(m) for m in result["metric"].values]
    if metric not in metrics:
        raise InputError(f"metric {metric!r} not in this result; present: {', '.join(metrics)}")
    index = metrics.index(metric)
    score = np.asarray(result["score_mean"].values[index])
    times = np.asarray(result["time"].values, dtype=float)
    layers = [int(x) for x in result["layer"].values]
    figure, ax = figure_and_axes(axes, 6.0, 3.2)
    image = ax.imshow(
        score,
        aspect="auto",
        origin="lower",
        cmap="viridis",
        extent=(times[0], times[-1], -0.5, len(layers) - 0.5),
    )
    significant = np.asarray(result["q"].values[index]) < q_level
    if significant.any() and len(times) > 1:
        ax.contour(
            times, np.arange(len(layers)), significant.astype(float), levels=[0.5], colors="w"
        )
    ax.set_yticks(np.arange(len(layers)), [str(x) for x in layers])
    ax.set_xlabel("time after word onset (ms, window centre)")
    ax.set_ylabel("layer")
    ax.set_title(f"{metric} (white: FDR q < {q_level:g})")
    figure.colorbar(image, ax=ax, label=metric)
    return finish(figure, output_file)


def _info(result: xr.Dataset):
    """An MNE Info with the channels and montage positions stored with the result."""
    import mne

    names = [str(c) for c in result["channel"].values]
    types = [str(t) for t in result["ch_type"].values]
    info = mne.create_info(names, 100.0, types)
    pos = np.c_[result["x"].values, result["y"].values, result["z"].values]
    if not np.isfinite(pos).all():
        raise InputError(
            "the channels have no montage positions; import the EEG with `montage` (e.g. "
            "standard_1020) to draw topographies"
        )
    montage = mne.channels.make_dig_montage(dict(zip(names, pos, strict=True)), coord_frame="head")
    info.set_montage(montage)
    return info


def plot_trf_topomap(
    result: xr.Dataset,
    layer: int,
    *,
    axes: Axes | None = None,
    output_file: str | os.PathLike | None = None,
) -> Figure:
    """Topography of the subject-mean TRF r of one layer (``evaluate trf``), MNE's plot_topomap."""
    from mne.viz import plot_topomap

    layers = [int(x) for x in result["layer"].values]
    if layer not in layers:
        raise InputError(f"layer {layer} not in this result; present: {layers}")
    r = result["r"].sel(layer=layer).mean("subject").values
    figure, ax = figure_and_axes(axes, 3.6, 3.2)
    limit = float(np.nanmax(np.abs(r))) or 1.0
    image, _ = plot_topomap(
        r, _info(result), axes=ax, show=False, cmap="RdBu_r", vlim=(-limit, limit), names=None
    )
    figure.colorbar(image, ax=ax, label="TRF r", shrink=0.7)
    ax.set_title(f"layer {layer}: TRF r (held-out)")
    return finish(figure, output_file)
