"""Summaries of evaluation runs: per-config scores, best layers, ROI tables and CSVs.

Scores follow the reference study: a subject's score is its mean r over ROIs; a
config's ``mean`` and ``std`` are taken across subjects (``std`` with ddof = 0, as
``numpy.std``), and ``median``, ``min``, ``max`` of the same per-subject scores.
ROIs whose r is NaN (constant bold) are left out of the means. A config with no finite
r at all (a constant feature layer, see :func:`excluded_configs`) is *excluded*: its row
keeps NaN statistics and the reason, and it is never a best layer.

CSV formats (compatible with the reference study's files):

* ``summary.csv``: ``log, layer, mean, std, median, min, max, model, window, kind,
  method, best, excluded`` — one row per config; ``log`` is ``results/<run>/<config
  label>``; ``excluded`` is empty, or why the config has no result.
* ``roi.csv``: ``log, config, roi, roi_name, hemisphere, r`` — one row per config and
  ROI; ``r`` is the mean across subjects.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from featstore._docs import fill_doc
from featstore.evaluate.runs.results import (
    EXCLUDED_ATTR,
    complete_runs,
    fusion_model_names,
    open_run,
)
from featstore.outputs import writing_file
from featstore.store import _schema as S
from featstore.store.groups import StorePath

SUMMARY_COLUMNS = (
    "log",
    "layer",
    "mean",
    "std",
    "median",
    "min",
    "max",
    "model",
    "window",
    "kind",
    "method",
    "best",
    "excluded",
)
ROI_COLUMNS = ("log", "config", "roi", "roi_name", "hemisphere", "r")
#: r per test story of a run across stories: (config, story, subject, roi).
STORY_VAR = "r_story"
STORY_DIM = "story"


def nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean over ``axis`` ignoring NaN; NaN (without a warning) where all are NaN."""
    finite = np.isfinite(values)
    count = finite.sum(axis=axis)
    total = np.where(finite, values, 0.0).sum(axis=axis, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def subject_scores(ds: xr.Dataset, variable: str = "r") -> np.ndarray:
    """Per-subject mean r over ROIs, shape (config, subject) (or (config, story,
    subject) for ``r_story``).

    One config is read at a time, so a run of 80k vertex targets is never in memory
    whole (float64) at once.
    """
    r = ds[variable]
    if not r.sizes[S.CONFIG_DIM]:
        return np.zeros((0, *r.shape[1:-1]))
    return np.stack(
        [
            nanmean(np.asarray(r.isel({S.CONFIG_DIM: i}).values, dtype=np.float64), axis=-1)
            for i in range(r.sizes[S.CONFIG_DIM])
        ]
    )


def story_summary(ds: xr.Dataset) -> pd.DataFrame:
    """Per config and test story of a run across stories: the across-subject statistics
    of each subject's mean ``r_story`` over targets (subjects lacking the story left out).

    Columns: ``config``, ``story``, ``n_subjects``, ``mean``, ``std``, ``median``,
    ``min``, ``max``. Empty for a run without ``r_story`` (one story).

    Parameters
    ----------
    ds : xarray.Dataset
        A results dataset (``results/<run_id>``).

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from featstore.evaluate.runs.summary import story_summary
    >>> r = np.array([[[[0.1, 0.3], [0.2, 0.2]], [[0.4, 0.4], [np.nan, np.nan]]]])
    >>> ds = xr.Dataset({"r_story": (("config", "story", "subject", "roi"), r)},
    ...                 coords={"config": ["m/tr1/layer1"], "story": ["a", "b"]})
    >>> story_summary(ds).round(3)[["story", "n_subjects", "mean"]].to_dict("list")
    {'story': ['a', 'b'], 'n_subjects': [2, 1], 'mean': [0.2, 0.4]}
    """
    columns = ["config", "story", "n_subjects", "mean", "std", "median", "min", "max"]
    if STORY_VAR not in ds.data_vars:
        return pd.DataFrame(columns=columns)
    scores = subject_scores(ds, STORY_VAR)
    rows = []
    for i, config in enumerate(str(c) for c in ds[S.CONFIG_DIM].values):
        for k, story in enumerate(str(s) for s in ds[STORY_DIM].values):
            values = scores[i, k][np.isfinite(scores[i, k])]
            rows.append({"config": config, "story": story, "n_subjects": int(values.size)})
            rows[-1].update(_stats(values))
    return pd.DataFrame(rows, columns=columns)


#: The reason shown for a config without any finite r whose run does not say why.
NO_FINITE_R = "r is NaN for every subject and ROI"


def excluded_configs(ds: xr.Dataset, reasons: dict[str, str] | None = None) -> dict[str, str]:
    """The configs of a results dataset without any finite r, each with the reason.

    ``reasons`` (label → reason) defaults to the run's ``excluded`` attr (a constant
    feature layer, written by the grid); a config it does not name gets
    :data:`NO_FINITE_R`.
    """
    reasons = dict(ds.attrs.get(EXCLUDED_ATTR) or {}) if reasons is None else reasons
    usable = np.isfinite(subject_scores(ds)).any(axis=1)
    labels = [str(x) for x in ds[S.CONFIG_DIM].values]
    return {
        label: reasons.get(label, NO_FINITE_R)
        for label, ok in zip(labels, usable, strict=True)
        if not ok
    }


def _coord(ds: xr.Dataset, name: str, default) -> list:
    if name in ds.coords:
        return list(ds[name].values)
    return [default] * ds.sizes[S.CONFIG_DIM]


def run_summary(ds: xr.Dataset) -> pd.DataFrame:
    """One row per config of a results dataset with its across-subject statistics."""
    ds = fusion_model_names(ds)
    run_id = str(ds.attrs.get("run_id", ""))
    scores = subject_scores(ds)
    labels = [str(x) for x in ds[S.CONFIG_DIM].values]
    partner = [str(x) for x in _coord(ds, "partner_model", "")]
    model = [str(x) for x in _coord(ds, "model", "")]
    window = [str(x) for x in _coord(ds, "window", "")]
    partner_window = [str(x) for x in _coord(ds, "partner_window", "")]
    layer = [int(x) for x in _coord(ds, "layer", -1)]
    partner_layer = [int(x) for x in _coord(ds, "partner_layer", -1)]
    kind = [str(x) for x in _coord(ds, "kind", "")]
    method = [str(x) for x in _coord(ds, "method", "single")]
    n_layers = [int(x) for x in _coord(ds, "n_layers", -1)]
    excluded = excluded_configs(ds)
    finite = np.isfinite(scores)
    rows = []
    for i, label in enumerate(labels):
        per_subject = scores[i][finite[i]]
        fused = bool(partner[i])
        rows.append(
            {
                "run": run_id,
                "config": label,
                "log": f"{S.RESULTS}/{run_id}/{label}",
                "model": model[i],
                "window": f"{window[i]}+{partner_window[i]}" if fused else window[i],
                "layer": f"{layer[i]}x{partner_layer[i]}" if fused else layer[i],
                "kind": kind[i],
                "method": method[i],
                "n_layers": n_layers[i],
                "n_subjects": int(per_subject.size),
                **_stats(per_subject),
                "excluded": excluded.get(label, ""),
            }
        )
    return pd.DataFrame(rows)


def _stats(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return dict.fromkeys(("mean", "std", "median", "min", "max"), float("nan"))
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "median": float(np.median(values)),
        "min": float(np.min(values)),
        "max": float(np.max(values)),
    }


@fill_doc
def summary_table(store: StorePath, run_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Every config of the given complete runs (all complete runs when ``None``).

    Columns: ``run``, ``config``, ``log``, ``model``, ``window``, ``layer``, ``kind``,
    ``method``, ``n_layers``, ``n_subjects``, ``mean``, ``std``, ``median``, ``min``,
    ``max``, ``excluded`` (empty, or why the config has no result) and ``best`` (the
    best layer, by mean, of each run × model × window × method; never an excluded
    config).

    Parameters
    ----------
    %(store)s
    run_ids : sequence of str, optional
        The runs (default: every complete run).

    Returns
    -------
    pandas.DataFrame
        One row per config: ``mean``, ``std``, ``median``, ``min``, ``max`` of r ….

    Examples
    --------
    %(example_store)s
    >>> from featstore.evaluate.runs import summary_table
    >>> run = store.grid(models=["toy-speech:tr1@1,2"], progress=False)
    >>> summary_table(store).config.tolist()
    ['toy-speech/tr1/layer1', 'toy-speech/tr1/layer2']
    """
    runs = list(run_ids) if run_ids else complete_runs(store)
    frames = [run_summary(open_run(store, run_id)) for run_id in runs]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=["run", "config", *SUMMARY_COLUMNS])
    table = pd.concat(frames, ignore_index=True)
    keys = ["run", "model", "window", "method"]
    usable = table[table["excluded"] == ""]
    best_index = usable["mean"].groupby([usable[k] for k in keys], sort=False).idxmax()
    table["best"] = table.index.isin(best_index.to_numpy())
    return table


def best_layers(table: pd.DataFrame) -> pd.DataFrame:
    """The best-layer rows of a summary table, best first."""
    return table[table["best"]].sort_values("mean", ascending=False, na_position="last")


def write_summary_csv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``summary.csv`` (reference-study columns first, see the module docstring)."""
    _write_csv(table.loc[:, list(SUMMARY_COLUMNS)], path)


#: Coordinates on the target axis that say where a vertex or voxel target is.
TARGET_INDEX_COORDS = ("vertex", "voxel")


def roi_table(ds: xr.Dataset, configs: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean r across subjects per config and ROI of a results dataset.

    Columns: ``log``, ``config``, ``roi``, ``roi_name``, ``hemisphere``, ``r``, and for
    vertex or voxel targets ``vertex`` or ``voxel`` (the index on the mesh or in the grid).
    """
    run_id = str(ds.attrs.get("run_id", ""))
    if configs is not None:
        ds = ds.sel({S.CONFIG_DIM: list(configs)})
    mean_r = nanmean(np.asarray(ds["r"].values, dtype=np.float64), axis=1)
    labels = [str(x) for x in ds[S.CONFIG_DIM].values]
    rois = np.asarray(ds[S.ROI_DIM].values, dtype=np.int64)
    n_roi = rois.size
    names = (
        [str(x) for x in ds[S.ROI_NAME_COORD].values]
        if S.ROI_NAME_COORD in ds.coords
        else [""] * n_roi
    )
    hemis = (
        [str(x) for x in ds[S.HEMISPHERE_COORD].values]
        if S.HEMISPHERE_COORD in ds.coords
        else [""] * n_roi
    )
    table = pd.DataFrame(
        {
            "log": np.repeat([f"{S.RESULTS}/{run_id}/{label}" for label in labels], n_roi),
            "config": np.repeat(labels, n_roi),
            "roi": np.tile(rois, len(labels)),
            "roi_name": np.tile(names, len(labels)),
            "hemisphere": np.tile(hemis, len(labels)),
            "r": mean_r.reshape(-1),
        }
    )
    for coord in TARGET_INDEX_COORDS:
        if coord in ds.coords:
            index = np.asarray(ds[coord].values, dtype=np.int64)
            table.insert(3, coord, np.tile(index, len(labels)))
    return table


def write_roi_csv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``roi.csv`` (see the module docstring; plus ``vertex`` or ``voxel`` for vertex
    or voxel targets)."""
    extra = [c for c in TARGET_INDEX_COORDS if c in table.columns]
    _write_csv(table.loc[:, list(ROI_COLUMNS) + extra], path)


def _write_csv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    with writing_file(path, "CSV file") as file:
        table.to_csv(file, index=False, float_format="%.6g")
