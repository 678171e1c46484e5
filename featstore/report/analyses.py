"""Report sections of the analyses beyond encoding: RSA, similarity metrics, low-level impact.

:func:`featstore.report.html.build_report` calls :func:`add_analysis_sections` once; each
complete ``results/<run_id>`` group written by ``evaluate rsa``, ``evaluate similarity``
or ``evaluate lowlevel`` gets its figure, a table and its settings and provenance,
rendered from the template of its kind with the page of :mod:`featstore.report.page`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from featstore.evaluate.analyses.runner import analysis_runs, open_analysis
from featstore.report.page import _p_format as _p
from featstore.report.page import _Page, _table
from featstore.store import _schema as S
from featstore.store.groups import StorePath


def add_analysis_sections(page: _Page, store: StorePath, runs: Sequence[str] | None) -> None:
    """Add one section per analysis kind present (restricted to ``runs`` if given),
    rendered from the template of that kind (``rsa.html``, ``similarity.html``,
    ``lowlevel.html``)."""
    parts = {"rsa": _rsa_part, "similarity": _similarity_part, "lowlevel": _lowlevel_part}
    for kind, part in parts.items():
        run_ids = [r for r in analysis_runs(store, kind) if runs is None or r in runs]
        if run_ids:
            contexts = [
                _context(page, run_id, open_analysis(store, run_id, kind), part)
                for run_id in run_ids
            ]
            page.render(f"{kind}.html", runs=contexts)


def _context(
    page: _Page, run_id: str, ds: xr.Dataset, part: Callable[[_Page, str, xr.Dataset], dict]
) -> dict[str, Any]:
    """What the template of one analysis run shows: its part, the settings and provenance."""
    shown = {k: ds.attrs.get(k) for k in ("settings", "request", "features", "fmri", "created")}
    return {
        "run_id": run_id,
        "group": ds.attrs["request"]["feature_group"],
        "provenance": shown,
        **part(page, run_id, ds),
    }


def _rsa_part(page: _Page, run_id: str, ds: xr.Dataset) -> dict[str, Any]:
    from featstore.plot.analyses import plot_rsa_curves

    request = ds.attrs["request"]
    figures = []
    for partial in (False, True) if "rho_partial" in ds else (False,):
        what = f"partial RSA given {request['partial']}" if partial else "RSA"
        figure = plot_rsa_curves(ds, partial=partial, title=f"{request['feature_group']}: {what}")
        name = f"rsa-{run_id}{'-partial' if partial else ''}"
        figures.append((what, page.figure(figure, name, alt=f"RSA layer curves {run_id}")))
    rows = []
    for name in ("rho", "rho_partial"):
        if name not in ds:
            continue
        suffix = name.removeprefix("rho")
        for roi_group in ds[S.ROI_GROUP_DIM].values:
            for layer in ds[S.LAYER_DIM].values:
                point = {S.ROI_GROUP_DIM: roi_group, S.LAYER_DIM: layer}
                rows.append(
                    {
                        "RSA": "partial" if suffix else "plain",
                        "ROI group": str(roi_group),
                        "layer": int(layer),
                        "mean": float(ds[f"{name}_mean"].sel(point)),
                        "p": _p(float(ds[f"p{suffix}"].sel(point))),
                        "p (layers FWE)": _p(float(ds[f"p{suffix}_fwe"].sel(point))),
                    }
                )
    return {
        "n_items": ds.attrs["n_items"],
        "settings": ds.attrs["settings"],
        "request": request,
        "figures": figures,
        "table": _table(pd.DataFrame(rows)),
    }


def _similarity_part(page: _Page, run_id: str, ds: xr.Dataset) -> dict[str, Any]:
    from featstore.plot.analyses import metric_agreement, plot_similarity

    rois = ds.attrs["roi_group"]
    figure = plot_similarity(ds, title=f"{ds.attrs['request']['feature_group']} ({rois} ROIs)")
    means = ds["score"].mean(S.SUBJECT_DIM).to_pandas().T
    means.insert(0, "layer", means.index.astype(int))
    agreement = None
    if ds.sizes[S.LAYER_DIM] >= 3 and ds.sizes[S.METRIC_DIM] > 1:
        frame = metric_agreement(ds).to_pandas()
        frame.insert(0, "metric", frame.index)
        agreement = _table(frame, digits=2)
    return {
        "rois": rois,
        "figure": page.figure(figure, f"similarity-{run_id}", alt=f"similarity metrics {run_id}"),
        "table": _table(means),
        "agreement": agreement,
    }


def _lowlevel_part(page: _Page, run_id: str, ds: xr.Dataset) -> dict[str, Any]:
    from featstore.plot.analyses import plot_lowlevel_drop

    controls = ", ".join(ds.attrs["controls"])
    title = f"{ds.attrs['request']['feature_group']}: removing {controls}"
    context = {
        "controls": controls,
        "regions": "ROI group" if "group_drop" in ds else "ROI",
        "figure": page.figure(
            plot_lowlevel_drop(ds, title=title),
            f"lowlevel-{run_id}",
            alt=f"low-level drop {run_id}",
        ),
        "table": None,
        "negative": False,
    }
    if "group_drop" not in ds:
        return context
    rows = []
    for layer in ds[S.LAYER_DIM].values:
        for roi_group in ds[S.ROI_GROUP_DIM].values:
            point = {S.LAYER_DIM: layer, S.ROI_GROUP_DIM: roi_group}
            rows.append(
                {
                    "layer": int(layer),
                    "ROI group": str(roi_group),
                    "r orig": float(ds["group_r_orig"].sel(point).mean()),
                    "r resid": float(ds["group_r_resid"].sel(point).mean()),
                    "drop %": float(ds["group_drop"].sel(point)),
                    "p": _p(float(ds["group_p"].sel(point))),
                    "variance explained by the controls (test)": float(
                        ds["explained_test"].sel({S.LAYER_DIM: layer})
                    ),
                }
            )
    context["table"] = _table(pd.DataFrame(rows))
    context["negative"] = bool(np.any(ds["r_resid"].mean(S.SUBJECT_DIM).values < -0.1))
    return context
