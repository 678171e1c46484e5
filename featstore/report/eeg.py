"""Report section of the EEG analyses: TRF topographies, layer × time maps, rank agreement.

:func:`featstore.report.html.build_report` calls :func:`add_eeg_sections` once. Each
complete ``results/<run_id>`` of ``evaluate trf`` gets a topography of the held-out r of
each layer (MNE's ``plot_topomap``; skipped, with a note, when the channels have no
montage) and a per-layer table; each of ``evaluate similarity-eeg`` gets one layer × time
heatmap per metric and the **metric-rank agreement** of its layers: per metric, each
layer's peak score over time (subject mean), then Kendall's W over the metrics and the
pairwise Spearman correlations of those peaks (:func:`~featstore.evaluate.metrics.agreement.rank_agreement`).
With several similarity-eeg runs sharing metrics, the same agreement ranks the runs'
models by their best score (over layers and time). Rendered from ``eeg.html``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from markupsafe import Markup

from featstore.errors import InputError
from featstore.evaluate.analyses.runner import analysis_runs, open_analysis
from featstore.evaluate.metrics.agreement import rank_agreement
from featstore.report.page import _p_format as _p
from featstore.report.page import _Page, _table
from featstore.store import _schema as S
from featstore.store.groups import StorePath


def _label(ds: xr.Dataset) -> str:
    """``key/window`` of the features a result was computed from."""
    features = ds.attrs.get("features") or {}
    return f"{features.get('key', '?')}/{features.get('window', '?')}"


def _agreement(scores: np.ndarray, names: Sequence[str], what: str) -> dict[str, Any] | None:
    """Kendall's W line and the pairwise Spearman table of a (metric, object) score table."""
    if scores.shape[0] < 2 or scores.shape[1] < 2 or not np.isfinite(scores).all():
        return None
    result = rank_agreement(scores)
    frame = pd.DataFrame(result.spearman, columns=list(names))
    frame.insert(0, "metric", list(names))
    return {
        "what": what,
        "kendall_w": f"{result.kendall_w:.3f}",
        "chi2": f"{result.chi2:.2f}",
        "p": _p(result.p_value),
        "n_objects": scores.shape[1],
        "table": _table(frame, digits=2),
    }


def _trf_context(page: _Page, run_id: str, ds: xr.Dataset) -> dict[str, Any]:
    from featstore.plot.eeg import plot_trf_topomap

    figures, note = [], None
    for layer in ds[S.LAYER_DIM].values:
        try:
            figure = plot_trf_topomap(ds, int(layer))
        except InputError as error:  # no montage: the table still reports r per layer
            note = str(error)
            break
        name = f"trf-{run_id}-layer{int(layer)}"
        figures.append(page.figure(figure, name, alt=f"TRF r topography {run_id} layer {layer}"))
    channels = [str(c) for c in ds[S.CHANNEL_DIM].values]
    rows = []
    for layer in ds[S.LAYER_DIM].values:
        r = ds["r"].sel({S.LAYER_DIM: layer}).mean(S.SUBJECT_DIM).values
        best = int(np.nanargmax(r))
        profile = ds["lag_profile"].sel({S.LAYER_DIM: layer}).mean(S.SUBJECT_DIM).values[:, best]
        rows.append(
            {
                "layer": int(layer),
                "mean r": float(np.nanmean(r)),
                "best channel": channels[best],
                "its r": float(r[best]),
                "its peak lag (ms)": float(ds[S.LAG_DIM].values[int(np.argmax(profile))]),
            }
        )
    return {
        "figures": figures,
        "note": note,
        "table": _table(pd.DataFrame(rows)),
        "stories": _story_table(ds),
    }


def _story_table(ds: xr.Dataset) -> Markup | None:
    """A run across stories (``r_story``): mean r of each layer on each test story."""
    if "r_story" not in ds:
        return None
    means = ds["r_story"].mean((S.SUBJECT_DIM, S.CHANNEL_DIM))  # NaN: subjects lacking it
    frame = pd.DataFrame(means.values, columns=[str(s) for s in ds["story"].values])
    frame.insert(0, "layer", [int(x) for x in ds[S.LAYER_DIM].values])
    return _table(frame)


def _similarity_context(page: _Page, run_id: str, ds: xr.Dataset) -> dict[str, Any]:
    from featstore.plot.eeg import plot_layer_time

    metrics = [str(m) for m in ds[S.METRIC_DIM].values]
    figures = [
        page.figure(
            plot_layer_time(ds, metric),
            f"eeg-{run_id}-{metric}",
            alt=f"{metric} layer by time {run_id}",
        )
        for metric in metrics
    ]
    peaks = ds["score_mean"].max(S.TIME_DIM).values  # (metric, layer)
    layers = [f"layer {int(x)}" for x in ds[S.LAYER_DIM].values]
    frame = pd.DataFrame(peaks, columns=layers)
    frame.insert(0, "metric", metrics)
    return {
        "figures": figures,
        "peaks": _table(frame),
        "agreement": _agreement(peaks, metrics, "layers"),
    }


def _models_agreement(results: dict[str, xr.Dataset]) -> dict[str, Any] | None:
    """Rank agreement of the runs' models across the metrics they share (best score each)."""
    if len(results) < 2:
        return None
    shared = sorted(
        set.intersection(*(set(map(str, r[S.METRIC_DIM].values)) for r in results.values()))
    )
    if len(shared) < 2:
        return None
    scores = np.array(
        [
            [float(r["score_mean"].sel({S.METRIC_DIM: metric}).max()) for r in results.values()]
            for metric in shared
        ]
    )
    context = _agreement(scores, shared, f"models ({', '.join(results)})")
    if context is not None:
        frame = pd.DataFrame(scores, columns=list(results))
        frame.insert(0, "metric", shared)
        context["scores"] = _table(frame)
    return context


def add_eeg_sections(page: _Page, store: StorePath, runs: Sequence[str] | None) -> None:
    """Add the EEG section when the store holds ``trf`` or ``similarity_time`` results
    (restricted to ``runs`` if given)."""
    trf_ids = [r for r in analysis_runs(store, "trf") if runs is None or r in runs]
    sim_ids = [r for r in analysis_runs(store, "similarity_time") if runs is None or r in runs]
    if not trf_ids and not sim_ids:
        return
    trf, similarity, loaded = [], [], {}
    for run_id in trf_ids:
        ds = open_analysis(store, run_id, "trf")
        context = {"run_id": run_id, "group": _label(ds), "provenance": dict(ds.attrs)}
        trf.append({**context, **_trf_context(page, run_id, ds)})
    for run_id in sim_ids:
        ds = loaded[run_id] = open_analysis(store, run_id, "similarity_time")
        context = {"run_id": run_id, "group": _label(ds), "provenance": dict(ds.attrs)}
        similarity.append({**context, **_similarity_context(page, run_id, ds)})
    models = _models_agreement({f"{_label(ds)} ({r})": ds for r, ds in loaded.items()})
    page.render("eeg.html", trf=trf, similarity=similarity, models=models)
