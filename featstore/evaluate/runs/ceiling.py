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
from featstore.evaluate.runs.targets import TARGET_ATTRS
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
#: Targets read at once: the ``bold`` chunk of vertex and voxel stores.
TARGET_CHUNK = 8192
_INDEX_COORDS = ("vertex", "voxel")


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
    n_subject, n_roi = bold.sizes[S.SUBJECT_DIM], bold.sizes[S.ROI_DIM]
    per_subject = np.full((n_subject, n_roi), np.nan)
    for start in range(0, n_roi, TARGET_CHUNK):
        # a chunk of targets at a time: a vertex store's test part is gigabytes
        part = slice(start, min(start + TARGET_CHUNK, n_roi))
        values = bold.isel({S.TR_DIM: index, S.ROI_DIM: part}).values
        per_subject[:, part] = loso_isc(np.asarray(values, dtype=np.float64))
    valid = ~np.isnan(per_subject)
    count = valid.sum(axis=0)
    total = np.where(valid, per_subject, 0.0).sum(axis=0)
    ceiling = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    coords = {name: fmri[name].values for name in (S.SUBJECT_DIM, S.ROI_DIM)}
    for name in (S.ROI_NAME_COORD, S.HEMISPHERE_COORD):
        if name in fmri.coords:
            coords[name] = (S.ROI_DIM, fmri[name].values.astype(object))
    for name in _INDEX_COORDS:
        if name in fmri.coords:
            coords[name] = (S.ROI_DIM, fmri[name].values)
    coords[S.SUBJECT_DIM] = coords[S.SUBJECT_DIM].astype(object)
    attrs = {k: fmri.attrs[k] for k in TARGET_ATTRS if k in fmri.attrs}
    attrs |= {
        "estimator": ESTIMATOR,
        "description": (
            "leave-one-subject-out inter-subject correlation: Pearson r between each "
            "subject and the mean of the other subjects on the test TRs; ceiling = mean "
            "over subjects"
        ),
        "test_start": int(index[0]),
        "test_stop": int(index[-1]) + 1,
        "n_test": int(index.size),
        "n_subjects": int(n_subject),
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


# --- stores of stories ---------------------------------------------------------------

#: The noise ceiling of a store of stories, at its root (beside ``stories/`` and
#: ``results/``): per story and pooled over stories.
COLLECTION_CEILING_GROUP = S.NOISE_CEILING_VAR


def story_held_out_trs(n_tr: int, trim: int) -> np.ndarray:
    """The TRs of a whole test story that the evaluator scores: all but ``trim`` at
    each end (the FIR delays are zero-padded at the story's start)."""
    if n_tr - 2 * trim <= 0:
        raise InputError(f"a story of {n_tr} TRs has no TR left after trim={trim} at each end")
    return np.arange(trim, n_tr - trim)


def _same_targets(reference: xr.Dataset, fmri: xr.Dataset, story: str, first: str) -> None:
    for name in (S.ROI_DIM, S.ROI_NAME_COORD, S.HEMISPHERE_COORD, "vertex", "voxel"):
        if name not in reference.coords and name not in fmri.coords:
            continue
        same = (
            name in reference.coords
            and name in fmri.coords
            and reference[name].shape == fmri[name].shape
            and np.array_equal(reference[name].values, fmri[name].values)
        )
        if not same:
            raise InputError(
                f"story {story!r} has other targets ({name}) than story {first!r}; the "
                "pooled noise ceiling needs the same targets in every story"
            )


def _accumulate_story(
    bold: xr.DataArray,
    index: np.ndarray,
    rows: list[int],
    weighted: np.ndarray,
    weights: np.ndarray,
) -> np.ndarray:
    """One story's LOSO ISC, :data:`TARGET_CHUNK` targets at a time: added to the pooled
    sums (``weighted``, ``weights``: subject rows ``rows``, weight = scored TRs); returns
    the story's ceiling (mean over its subjects) per target."""
    n_roi = bold.sizes[S.ROI_DIM]
    ceiling = np.full(n_roi, np.nan, dtype=np.float32)
    for start in range(0, n_roi, TARGET_CHUNK):
        part = slice(start, min(start + TARGET_CHUNK, n_roi))
        values = bold.isel({S.TR_DIM: index, S.ROI_DIM: part}).values
        isc = loso_isc(np.asarray(values, dtype=np.float64))
        finite = np.isfinite(isc)
        weighted[rows, part] += np.where(finite, isc, 0.0) * index.size
        weights[rows, part] += finite * index.size
        count = finite.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            ceiling[part] = np.where(
                count > 0, np.where(finite, isc, 0.0).sum(axis=0) / np.maximum(count, 1), np.nan
            )
    return ceiling


def compute_story_ceilings(
    store: StorePath,
    stories: list[str] | None = None,
    *,
    trim: int,
    source: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """The LOSO-ISC noise ceiling of each story of a store of stories, and pooled.

    Each story's ceiling is computed on its own subjects and its TRs after ``trim``
    (the TRs a test story is scored on), streaming :data:`TARGET_CHUNK` targets at a
    time. The pooled ceiling of a subject is the mean of its per-story ceilings
    weighted by the stories' scored TRs (over the stories it has); ``ceiling`` is the
    mean of that over subjects. Stories with fewer than 3 subjects have no ceiling
    (listed in the attr ``stories_skipped``).

    Returns
    -------
    xarray.Dataset
        ``ceiling(roi)``, ``per_subject(subject, roi)`` (pooled; NaN for a subject in no
        story with a ceiling), ``ceiling_story(story, roi)``, coords ``n_test(story)``
        and the target coords; attrs ``estimator``, ``pooling``, ``trim``, ``stories``,
        ``stories_skipped``, ``subjects`` ({story: [subjects]}), ``source`` and the
        fmri's target attrs.
    """
    from featstore.store.stories import list_stories, story_store

    stories = list(stories or list_stories(store))
    if not stories:
        raise InputError(f"{store} holds no story")
    fmris = {s: open_group(story_store(store, s), S.FMRI) for s in stories}
    first = fmris[stories[0]]
    for story in stories[1:]:
        _same_targets(first, fmris[story], story, stories[0])
    subjects = sorted({str(x) for f in fmris.values() for x in f[S.SUBJECT_DIM].values})
    row = {s: i for i, s in enumerate(subjects)}
    n_roi = first.sizes[S.ROI_DIM]
    weighted = np.zeros((len(subjects), n_roi))
    weights = np.zeros((len(subjects), n_roi))
    by_story = np.full((len(stories), n_roi), np.nan, dtype=np.float32)
    n_test, skipped = [], []
    for k, story in enumerate(stories):
        bold = fmris[story][S.BOLD_VAR]
        index = story_held_out_trs(bold.sizes[S.TR_DIM], trim)
        n_test.append(int(index.size))
        rows = [row[str(x)] for x in fmris[story][S.SUBJECT_DIM].values]
        if len(rows) < 3:
            skipped.append(story)
            continue
        by_story[k] = _accumulate_story(bold, index, rows, weighted, weights)
    if len(skipped) == len(stories):
        raise InputError(
            f"no story has the 3 subjects the noise ceiling needs ({', '.join(stories)})"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        per_subject = np.where(weights > 0, weighted / np.maximum(weights, 1), np.nan)
    has = np.isfinite(per_subject)
    count = has.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ceiling = np.where(count > 0, np.where(has, per_subject, 0.0).sum(axis=0) / count, np.nan)
    coords: dict[str, Any] = {
        S.SUBJECT_DIM: np.array(subjects, dtype=object),
        "story": np.array(stories, dtype=object),
        "n_test": ("story", np.array(n_test, dtype=np.int64)),
        S.ROI_DIM: first[S.ROI_DIM].values,
    }
    for name in (S.ROI_NAME_COORD, S.HEMISPHERE_COORD, "vertex", "voxel"):
        if name in first.coords:
            values = first[name].values
            coords[name] = (
                S.ROI_DIM,
                values.astype(object) if values.dtype.kind in "OUS" else values,
            )
    attrs = {k: first.attrs[k] for k in TARGET_ATTRS if k in first.attrs}
    attrs.update(
        {
            "estimator": ESTIMATOR,
            "pooling": "per subject, the mean of its stories' ceilings weighted by their "
            "scored TRs; ceiling = mean over subjects",
            "trim": int(trim),
            "stories": stories,
            "stories_skipped": skipped,
            "subjects": {s: [str(x) for x in fmris[s][S.SUBJECT_DIM].values] for s in stories},
            "n_subjects": len(subjects),
            "source": dict(source or {}),
        }
    )
    return xr.Dataset(
        {
            "ceiling": ((S.ROI_DIM,), ceiling.astype(np.float32)),
            "per_subject": ((S.SUBJECT_DIM, S.ROI_DIM), per_subject.astype(np.float32)),
            "ceiling_story": (("story", S.ROI_DIM), by_story),
        },
        coords=coords,
        attrs=attrs,
    )


def run_test_stories(run_attrs: Mapping[str, Any]) -> list[str]:
    """The stories a cross-story run scored: ``test_stories`` (every story of a
    ``--cv stories`` run)."""
    stories = run_attrs.get("test_stories") or run_attrs.get("stories") or []
    return [str(s) for s in stories]


def write_collection_ceiling(
    store: StorePath,
    *,
    stories: list[str] | None = None,
    run_id: str | None = None,
    settings: EncodingSettings | None = None,
) -> xr.Dataset:
    """Compute the per-story and pooled noise ceiling of a store of stories and write it
    as the group ``noise_ceiling`` at the store's root (replacing it).

    The stories and trim are those of the cross-story run ``run_id`` when given (its
    test stories), else ``stories`` (default: all) with the trim of ``settings``.
    """
    if run_id is not None:
        run_attrs = group_attrs(store, result_group(run_id))
        stories = run_test_stories(run_attrs) or stories
        trim = run_settings(run_attrs).resolved_trim
        source = {"run": run_id, "settings": run_attrs.get("settings", {})}
    else:
        settings = settings or EncodingSettings()
        trim = settings.resolved_trim
        source = {"settings": settings.to_dict()}
    ds = compute_story_ceilings(store, stories, trim=trim, source=source)
    write_group(store, COLLECTION_CEILING_GROUP, ds, overwrite=True)
    return ds


def collection_ceiling_for(store: StorePath, run_attrs: Mapping[str, Any]) -> xr.Dataset | None:
    """The pooled noise ceiling over a cross-story run's test stories: the stored one when
    it covers the same stories with the same trim, else computed now (not written); None
    when no test story has 3 subjects."""
    stories = run_test_stories(run_attrs)
    trim = run_settings(run_attrs).resolved_trim
    if group_exists(store, COLLECTION_CEILING_GROUP):
        stored = open_group(store, COLLECTION_CEILING_GROUP).load()
        if list(stored.attrs.get("stories", [])) == stories and stored.attrs.get("trim") == trim:
            return stored
    from featstore.store.stories import story_store

    sizes = [open_group(story_store(store, s), S.FMRI).sizes[S.SUBJECT_DIM] for s in stories]
    if not stories or max(sizes) < 3:
        return None
    return compute_story_ceilings(store, stories, trim=trim)


def ceiling_for_run(store: StorePath, run_attrs: Mapping[str, Any]) -> xr.Dataset | None:
    """The noise ceiling on a run's test TRs: pooled over the test stories of a run
    across stories (:func:`collection_ceiling_for`), else on the one story's test part
    (:func:`noise_ceiling_for`); None where there is none (fewer than 3 subjects, a
    store of several stories and a one-story run)."""
    from featstore.evaluate.runs.significance import is_cross_story
    from featstore.store.stories import story_store

    if is_cross_story(run_attrs):
        return collection_ceiling_for(store, run_attrs)
    try:
        story = story_store(store)
        return noise_ceiling_for(story, run_held_out_trs(run_attrs, store_n_tr(story)))
    except InputError:
        return None
