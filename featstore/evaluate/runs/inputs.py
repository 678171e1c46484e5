"""Reading and checking what an evaluation consumes: the fMRI and one feature layer at a time.

Bad input becomes a one-line :class:`~featstore.errors.InputError` naming the group,
subject, ROI or layer at fault. The bold array is read once per process and kept
(:func:`load_bold`), so a worker evaluating many configs reads it once.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from featstore.errors import InputError
from featstore.evaluate.runs.configs import FeatureLayer
from featstore.store import _schema as S
from featstore.store.groups import (
    StorePath,
    group_attrs,
    open_group,
)
from featstore.store.io_errors import reading_data

# provenance attrs of a feature set that identify its values (a re-extraction changes
# ``created``; other settings change the rest)
PROVENANCE_KEYS = (
    "model_id",
    "revision",
    "modality",
    "pooling",
    "stimulus_sha256",
    "ctx_words",
    "tr_win",
    "settings",
    "created",
)
_MAX_NAMED = 8


def store_location(store: StorePath) -> str:
    """The store as workers should see it: an absolute path for local stores."""
    text = os.fspath(store)
    if "://" in text:
        return text
    return str(Path(text).resolve())


def feature_provenance(attrs: dict[str, Any]) -> dict[str, Any]:
    """The provenance attrs of a feature set that determine its values."""
    return {key: attrs.get(key) for key in PROVENANCE_KEYS}


@dataclass(frozen=True)
class FmriInfo:
    """What an evaluation needs to know about the fmri group, read once up front."""

    fingerprint: str
    n_subjects: int
    n_tr: int
    n_roi: int
    coords: dict[str, Any] = field(repr=False)


def check_bold_finite(bold_subject: np.ndarray, subject: str, roi_names: np.ndarray) -> None:
    """Raise naming the subject and ROIs where ``bold_subject`` (T, V) has NaN or inf."""
    bad = ~np.isfinite(bold_subject).all(axis=0)
    if bad.any():
        idx = np.flatnonzero(bad)
        named = ", ".join(f"{int(i)} ({roi_names[int(i)]})" for i in idx[:_MAX_NAMED])
        more = f" and {len(idx) - _MAX_NAMED} more" if len(idx) > _MAX_NAMED else ""
        raise InputError(
            f"fmri bold of subject {subject!r} has NaN/inf in {len(idx)} ROI(s): {named}{more}; "
            "fix or drop them before evaluating"
        )


def inspect_fmri(store: StorePath) -> FmriInfo:
    """Read the bold once, subject by subject: check it is finite and fingerprint it.

    The fingerprint (sha256 of the values and coordinates) says whether two runs saw
    the same fMRI; it is part of every config's hash.
    """
    ds = open_group(store, S.FMRI)
    bold = ds[S.BOLD_VAR]
    if bold.dims != S.BOLD_DIMS:
        raise InputError(f"fmri bold has dims {bold.dims}, expected {S.BOLD_DIMS}")
    subjects = [str(s) for s in ds[S.SUBJECT_DIM].values]
    roi_names = _roi_name_values(ds)
    digest = hashlib.sha256()
    digest.update(repr((bold.shape, str(bold.dtype), subjects, roi_names.tolist())).encode())
    for index, subject in enumerate(subjects):
        with reading_data(store, S.FMRI):
            values = np.ascontiguousarray(read_array(bold[index]))
        check_bold_finite(values, subject, roi_names)
        digest.update(values.tobytes())
    coords = {
        S.SUBJECT_DIM: np.asarray(subjects, dtype=object),
        S.ROI_DIM: np.asarray(ds[S.ROI_DIM].values, dtype=np.int64),
        S.ROI_NAME_COORD: (S.ROI_DIM, roi_names),
        S.HEMISPHERE_COORD: (S.ROI_DIM, _coord_or(ds, S.HEMISPHERE_COORD, "")),
    }
    n_subjects, n_tr, n_roi = (int(n) for n in bold.shape)
    return FmriInfo(digest.hexdigest(), n_subjects, n_tr, n_roi, coords)


def _coord_or(ds, name: str, default: str) -> np.ndarray:
    if name in ds.coords or name in ds:
        return np.asarray([str(x) for x in read_array(ds[name])], dtype=object)
    return np.asarray([default] * ds.sizes[S.ROI_DIM], dtype=object)


def _roi_name_values(ds) -> np.ndarray:
    names = _coord_or(ds, S.ROI_NAME_COORD, "")
    rois = ds[S.ROI_DIM].values
    return np.asarray([n or str(int(r)) for n, r in zip(names, rois, strict=True)], dtype=object)


_bold_lock = threading.Lock()
_bold_cache: dict[tuple[str, str], tuple[np.ndarray, list[str], list[str]]] = {}


def _bold_token(store: StorePath) -> str:
    attrs = group_attrs(store, S.FMRI)
    return f"{attrs.get('created')}|{attrs.get('source')}"


def load_bold(store: StorePath) -> np.ndarray:
    """The whole bold (subject, tr, roi) of a store, read once per process and kept.

    Only the most recent store's bold is kept, so a long-lived worker holds one copy. The
    array is read-only: every caller shares it, so a caller that wrote into it would
    change what the next config is evaluated against.
    """
    return _load_fmri(store)[0]


def fmri_names(store: StorePath) -> tuple[list[str], list[str]]:
    """The subject names and ROI names (index as text where unnamed) of a store's bold,
    read with it (see :func:`load_bold`)."""
    _, subjects, roi_names = _load_fmri(store)
    return subjects, roi_names


def _load_fmri(store: StorePath) -> tuple[np.ndarray, list[str], list[str]]:
    location = store_location(store)
    cache_key = (location, _bold_token(location))
    with _bold_lock:
        if cache_key not in _bold_cache:
            ds = open_group(location, S.FMRI)
            with reading_data(location, S.FMRI):
                bold = np.ascontiguousarray(read_array(ds[S.BOLD_VAR]))
            roi_names = _roi_name_values(ds)
            subjects = [str(s) for s in ds[S.SUBJECT_DIM].values]
            for index, subject in enumerate(subjects):
                check_bold_finite(bold[index], subject, roi_names)
            bold.flags.writeable = False
            _bold_cache.clear()
            _bold_cache[cache_key] = (bold, subjects, [str(n) for n in roi_names])
        return _bold_cache[cache_key]


def read_layer(store: StorePath, part: FeatureLayer, n_tr: int) -> np.ndarray:
    """One layer of one feature set as a (tr, dim) array: one chunk read.

    Raises :class:`InputError` when its TR count differs from the fMRI's ``n_tr`` or it
    holds NaN/inf (naming the group, layer and first bad TR).
    """
    from featstore.store.features import open_feature_set

    ds = open_feature_set(store_location(store), part.key, part.window, layers=[part.layer])
    hidden = ds[S.HIDDEN_VAR]
    if hidden.shape[1] != n_tr:
        raise InputError(tr_mismatch_message(n_tr, part.group, hidden.shape[1]))
    # float16 storage is for disk space; the numerics start from float32
    with reading_data(store, part.group):  # a corrupt chunk fails its checksum here
        values = read_array(hidden[0]).astype(np.float32, copy=False)
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise InputError(
            f"{part.group} layer {part.layer} has NaN/inf at {len(bad)} TR(s) (first: TR "
            f"{int(bad[0])}); re-extract it or drop the layer"
        )
    return values


def read_array(array) -> np.ndarray:
    """The values of a (dask-backed) DataArray, read in this thread.

    A scheduler passed to ``compute`` applies to this call only: inside a task on a
    distributed worker the default would submit the read back to the cluster (which
    can deadlock it), and changing the global dask config is not thread-safe.
    """
    data = array.data
    if hasattr(data, "compute"):
        data = data.compute(scheduler="synchronous")
    return np.asarray(data)


def tr_mismatch_message(n_tr: int, group: str, n_feature: int) -> str:
    """The message for features and bold of different lengths."""
    return (
        f"fmri bold has {n_tr} TRs but {group} has {n_feature}; expected equal TR counts "
        "(edges are trimmed after alignment, not before)"
    )
