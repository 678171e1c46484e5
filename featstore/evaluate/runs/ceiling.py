"""Noise ceiling: how much of an ROI's test-set response is shared across subjects.

Estimator: leave-one-subject-out inter-subject correlation (LOSO ISC). For subject s and
ROI v, the ceiling is the Pearson r between s's response on the test TRs and the mean
response of all other subjects on the same TRs. The stimulus is the same for everyone,
so the mean of the others is a model-free prediction of the stimulus-driven part of s's
response; an encoding model that only sees the stimulus can hardly do better.

Caveats (also in ``docs/report.md``):

* It is an estimate, not a bound. The mean of the others keeps some of their noise, so
  the ISC underestimates the stimulus-driven signal (more so with few subjects), and an
  encoding model fitted on s's own training data can exceed it — r / ceiling above 1
  happens and is no error.
* It needs at least 3 subjects (2 leave one "mean" of one subject).
* Where the ceiling is near 0 the ratio r / ceiling is unstable and meaningless;
  :func:`normalized_r` masks ROIs whose ceiling is below a threshold (default 0.1).
* It is computed on exactly the test TRs of the evaluation (same trim and split), so
  that r and ceiling describe the same data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from featstore.errors import InputError
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.encoding.split import chronological_split
from featstore.evaluate.metrics.noise_ceiling import (
    loso_isc,
)
from featstore.evaluate.runs.results import run_settings
from featstore.store import _schema as S
from featstore.store.groups import (
    StorePath,
    group_attrs,
    group_exists,
    open_group,
    store_n_tr,
    write_group,
)
from featstore.store.paths import result_group

NOISE_CEILING_GROUP = f"{S.FMRI}/{S.NOISE_CEILING_VAR}"
ESTIMATOR = "loso-isc"


def run_held_out_trs(run_attrs: Mapping[str, Any], n_tr: int) -> np.ndarray:
    """The test TRs of an evaluation run, from its attrs.

    ``test_range`` ``[start, stop, n]`` when the run recorded it, else the evaluator's
    split (:func:`featstore.evaluate.encoding.split.chronological_split`) of its ``settings``.
    """
    recorded = run_attrs.get("test_range")
    if recorded:
        return np.arange(int(recorded[0]), int(recorded[1]))
    if "settings" not in run_attrs:
        raise InputError("the run records neither its test TRs (test_range) nor its settings")
    return settings_held_out_trs(run_settings(run_attrs), n_tr)


def settings_held_out_trs(settings: EncodingSettings, n_tr: int) -> np.ndarray:
    """The test TRs the evaluator uses with ``settings`` on a run of ``n_tr`` TRs."""
    _, test = chronological_split(
        n_tr, trim=settings.resolved_trim, test_frac=settings.test_frac, gap=settings.resolved_gap
    )
    return test


def compute_noise_ceiling(
    store: StorePath,
    index: np.ndarray,
    *,
    source: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """The noise-ceiling dataset of a store's fMRI on the TRs ``index`` (not written).

    Returns
    -------
    xarray.Dataset
        ``ceiling(roi)`` (mean over subjects), ``per_subject(subject, roi)``, the ROI
        coordinates of ``fmri`` and attrs ``estimator``, ``test_start``, ``test_stop``,
        ``n_test``, ``n_subjects`` and ``source`` (the run or settings that set the TRs).
    """
    fmri = open_group(store, S.FMRI)
    bold = fmri[S.BOLD_VAR]
    index = np.asarray(index, dtype=np.int64)
    n_tr = bold.sizes[S.TR_DIM]
    if index.size == 0 or index.min() < 0 or index.max() >= n_tr:
        raise InputError(f"test TRs {index.min()}..{index.max()} outside the fMRI's {n_tr} TRs")
    values = np.asarray(bold.isel({S.TR_DIM: index}).values, dtype=np.float64)
    per_subject = loso_isc(values)
    valid = ~np.isnan(per_subject)
    count = valid.sum(axis=0)
    total = np.where(valid, per_subject, 0.0).sum(axis=0)
    ceiling = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    coords = {name: fmri[name].values for name in (S.SUBJECT_DIM, S.ROI_DIM)}
    for name in (S.ROI_NAME_COORD, S.HEMISPHERE_COORD):
        if name in fmri.coords:
            coords[name] = (S.ROI_DIM, fmri[name].values.astype(object))
    coords[S.SUBJECT_DIM] = coords[S.SUBJECT_DIM].astype(object)
    attrs = {
        "estimator": ESTIMATOR,
        "description": (
            "leave-one-subject-out inter-subject correlation: Pearson r between each "
            "subject and the mean of the other subjects on the test TRs; ceiling = mean "
            "over subjects"
        ),
        "test_start": int(index[0]),
        "test_stop": int(index[-1]) + 1,
        "n_test": int(index.size),
        "n_subjects": int(values.shape[0]),
        "source": dict(source or {}),
    }
    return xr.Dataset(
        {
            "ceiling": ((S.ROI_DIM,), ceiling.astype(np.float32)),
            "per_subject": ((S.SUBJECT_DIM, S.ROI_DIM), per_subject.astype(np.float32)),
        },
        coords=coords,
        attrs=attrs,
    )


def write_noise_ceiling(
    store: StorePath,
    *,
    run_id: str | None = None,
    settings: EncodingSettings | None = None,
) -> xr.Dataset:
    """Compute the noise ceiling and write it as ``fmri/noise_ceiling`` (replacing it).

    The test TRs are those of the run ``run_id`` when given, else those the evaluator
    uses with ``settings`` (default: its default settings: trim 4, last 20 %).
    """
    n_tr = store_n_tr(store)
    if run_id is not None:
        run_attrs = group_attrs(store, result_group(run_id))
        index = run_held_out_trs(run_attrs, n_tr)
        source = {"run": run_id, "settings": run_attrs.get("settings", {})}
    else:
        settings = settings or EncodingSettings()
        index = settings_held_out_trs(settings, n_tr)
        source = {"settings": settings.to_dict()}
    ds = compute_noise_ceiling(store, index, source=source)
    write_group(store, NOISE_CEILING_GROUP, ds, overwrite=True)
    return ds


def noise_ceiling_for(store: StorePath, index: np.ndarray) -> xr.Dataset | None:
    """The noise ceiling on the TRs ``index``: the stored one if it was computed on the
    same TRs, else computed now (not written); None with fewer than 3 subjects."""
    index = np.asarray(index)
    if group_exists(store, NOISE_CEILING_GROUP):
        stored = open_group(store, NOISE_CEILING_GROUP).load()
        same = (
            stored.attrs.get("test_start") == int(index[0])
            and stored.attrs.get("test_stop") == int(index[-1]) + 1
            and stored.attrs.get("n_test") == int(index.size)
        )
        if same:
            return stored
    if open_group(store, S.FMRI).sizes[S.SUBJECT_DIM] < 3:
        return None
    return compute_noise_ceiling(store, index)
