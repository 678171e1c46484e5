"""Report sections of the analyses beyond encoding: RSA, similarity metrics, low-level impact.

:func:`featstore.report.html.build_report` calls :func:`add_analysis_sections` once; each
complete ``results/<run_id>`` group written by ``evaluate rsa``, ``evaluate similarity``
or ``evaluate lowlevel`` gets its figure, a table and its settings and provenance. It
shares the page and the table helpers of :mod:`featstore.report.html`, which imports this
module lazily.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from featstore.evaluate.analyses.runner import analysis_runs, open_analysis
from featstore.evaluate.runs.results import complete_runs
from featstore.evaluate.runs.tables import ResultSet, load_result_sets
from featstore.report.page import _esc, _Page, _table
from featstore.report.page import _p_format as _p
from featstore.store import _schema as S
from featstore.store.groups import StorePath

_HEADINGS = {
    "rsa": "Representational similarity analysis",
    "similarity": "Similarity metrics, layer by layer",
    "lowlevel": "Low-level feature impact",
}


def encoding_result_sets(store: StorePath, runs: Sequence[str] | None) -> list[ResultSet]:
    """The result sets of the encoding runs among ``runs`` (default: all of them).

    None when only analysis groups are asked for, or the store holds nothing else: such a
    store still gets a report, of its analyses.
    """
    analyses = [r for r in analysis_runs(store) if runs is None or r in runs]
    encoding = None if runs is None else [r for r in runs if r not in analyses]
    if analyses and not (complete_runs(store) if encoding is None else encoding):
        return []
    return load_result_sets(store, encoding)


def add_analysis_sections(page: _Page, store: StorePath, runs: Sequence[str] | None) -> None:
    """Add one section per analysis kind present (restricted to ``runs`` if given)."""
    for kind, heading in _HEADINGS.items():
        run_ids = [r for r in analysis_runs(store, kind) if runs is None or r in runs]
        if not run_ids:
            continue
        page.add(f"<h2>{heading}</h2>")
        for run_id in run_ids:
            ds = open_analysis(store, run_id, kind)
            {"rsa": _rsa_part, "similarity": _similarity_part, "lowlevel": _lowlevel_part}[kind](
                page, run_id, ds
            )
            _provenance(page, run_id, ds)


def _provenance(page: _Page, run_id: str, ds: xr.Dataset) -> None:
    shown = {k: ds.attrs.get(k) for k in ("settings", "request", "features", "fmri", "created")}
    page.add(
        f"<details><summary>Settings and provenance of {_esc(run_id)}</summary><pre>"
        f"{_esc(json.dumps(shown, indent=2, default=str, sort_keys=True))}</pre></details>"
    )


def _rsa_part(page: _Page, run_id: str, ds: xr.Dataset) -> None:
    from featstore.plot.analyses import plot_rsa_curves

    settings, request = ds.attrs["settings"], ds.attrs["request"]
    group = request["feature_group"]
    page.add(f"<h3>{_esc(group)} ({_esc(run_id)})</h3>")
    page.add(
        f'<p class="meta">{ds.attrs["n_items"]} items ({_esc(settings["subset"])} TRs'
        + (f", segments of {settings['segment']} TRs" if settings["segment"] > 1 else "")
        + f") · {_esc(settings['distance'])} distance · {_esc(settings['compare'])} · "
        f"{settings['n_perm']} permutations of {settings['block']}-item blocks · pairs "
        f"fewer than {settings['min_lag']} items apart left out"
        + (f" · partial: {_esc(request['partial'])}" if request.get("partial") else "")
        + "</p>"
    )
    for partial in (False, True) if "rho_partial" in ds else (False,):
        what = f"partial RSA given {request['partial']}" if partial else "RSA"
        page.figure(
            plot_rsa_curves(ds, partial=partial, title=f"{group}: {what}"),
            f"rsa-{run_id}{'-partial' if partial else ''}",
            f"{_esc(what)} of each layer with each ROI group's BOLD patterns: mean across "
            "subjects, shading ± s.e.m.; filled markers: one-sided permutation p &lt; 0.05 "
            "(uncorrected; the table also gives p corrected for the layers).",
            alt=f"RSA layer curves {run_id}",
        )
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
    page.add(_table(pd.DataFrame(rows)))


def _similarity_part(page: _Page, run_id: str, ds: xr.Dataset) -> None:
    from featstore.plot.analyses import metric_agreement, plot_similarity

    group = ds.attrs["request"]["feature_group"]
    rois = ds.attrs["roi_group"]
    page.add(f"<h3>{_esc(group)} vs {_esc(rois)} ROIs ({_esc(run_id)})</h3>")
    page.figure(
        plot_similarity(ds, title=f"{group} ({rois} ROIs)"),
        f"similarity-{run_id}",
        "Left: each metric's layer profile (mean over subjects), min–max scaled. Right: "
        "Spearman correlation of the profiles between metrics. CKA and RSA on the test TRs; "
        "SVCCA and Procrustes fitted on train, scored on test; encoding: the ridge model's "
        "test r averaged over the ROIs.",
        alt=f"similarity metrics {run_id}",
    )
    means = ds["score"].mean(S.SUBJECT_DIM).to_pandas().T
    means.insert(0, "layer", means.index.astype(int))
    page.add(_table(means))
    if ds.sizes[S.LAYER_DIM] >= 3 and ds.sizes[S.METRIC_DIM] > 1:
        agreement = metric_agreement(ds).to_pandas()
        agreement.insert(0, "metric", agreement.index)
        page.add('<p class="note">Metric agreement (Spearman across layers):</p>')
        page.add(_table(agreement, digits=2))


def _lowlevel_part(page: _Page, run_id: str, ds: xr.Dataset) -> None:
    from featstore.plot.analyses import plot_lowlevel_drop

    group = ds.attrs["request"]["feature_group"]
    controls = ", ".join(ds.attrs["controls"])
    page.add(f"<h3>{_esc(group)} without {_esc(controls)} ({_esc(run_id)})</h3>")
    regions = "ROI group" if "group_drop" in ds else "ROI"
    page.figure(
        plot_lowlevel_drop(ds, title=f"{group}: removing {controls}"),
        f"lowlevel-{run_id}",
        f"% drop of the subject-mean test r per {regions} after regressing the controls out "
        "of each layer (map learnt on the train TRs): 100·(r_orig − r_resid)/r_orig, NaN "
        "(no bar) where r_orig ≤ 0; * one-sided Wilcoxon p &lt; 0.05 across subjects.",
        alt=f"low-level drop {run_id}",
    )
    if "group_drop" not in ds:
        return
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
    page.add(_table(pd.DataFrame(rows)))
    if np.any(ds["r_resid"].mean(S.SUBJECT_DIM).values < -0.1):
        page.add(
            '<p class="note">Some residual r are clearly negative: with few train TRs the '
            "map also removes chance correlations between the controls and the rest of the "
            "features, which then act against the controls on the test TRs (see "
            "docs/analyses.md).</p>"
        )
