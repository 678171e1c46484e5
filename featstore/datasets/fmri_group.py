"""The ``fmri`` group: ``bold(subject, tr, roi)`` float32 with ROI names and hemispheres."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from featstore._docs import fill_doc
from featstore.datasets._files import plain_value
from featstore.datasets.atlas import CUSTOM_ATLAS, default_rois
from featstore.errors import GroupExistsError, InputError
from featstore.store import _schema as S
from featstore.store.groups import (
    StorePath,
    group_exists,
    open_group,
    store_n_tr,
    write_group,
)
from featstore.store.staging import group_lock

HEMISPHERES = ("L", "R", "")


def _check_bold(bold: np.ndarray, subjects: Sequence[str]) -> np.ndarray:
    array = np.asarray(bold)
    if array.ndim != 3:
        raise InputError(f"bold must be (subject, tr, roi), got an array of shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InputError(f"bold has dtype {array.dtype}; expected real numbers")
    if 0 in array.shape:
        raise InputError(f"bold has shape {array.shape}; it is empty")
    if len(subjects) != array.shape[0]:
        raise InputError(f"{len(subjects)} subject names for {array.shape[0]} subjects in bold")
    names = [str(s) for s in subjects]
    duplicated = sorted({s for s in names if names.count(s) > 1})
    if duplicated:
        raise InputError(f"subject {duplicated[0]!r} appears more than once")
    with np.errstate(over="ignore"):  # overflow to inf is reported just below
        bold32 = array.astype(np.float32, copy=False)
    bad = ~np.isfinite(bold32)
    if bad.any():
        s, t, r = (int(i[0]) for i in np.nonzero(bad))
        raise InputError(
            f"bold of subject {names[s]!r} has {int(bad[s].sum())} NaN/inf value(s) (after "
            f"conversion to float32); first at TR {t}, ROI {r} (value {plain_value(array[s, t, r])})"
        )
    return bold32


def _resolve_rois(
    n_roi: int,
    roi_names: Sequence[str] | None,
    hemispheres: Sequence[str] | None,
    atlas: str | None,
) -> tuple[list[str], list[str], str]:
    if roi_names is None:
        names, default_hemispheres, default_atlas = default_rois(n_roi)
        hemispheres = default_hemispheres if hemispheres is None else hemispheres
        atlas = default_atlas if atlas is None else atlas
    else:
        names = [str(n) for n in roi_names]
        if len(names) != n_roi:
            raise InputError(f"{len(names)} ROI names for {n_roi} ROIs in bold")
        hemispheres = [""] * n_roi if hemispheres is None else hemispheres
        atlas = CUSTOM_ATLAS if atlas is None else atlas
    hemispheres = [str(h) for h in hemispheres]
    if len(hemispheres) != n_roi:
        raise InputError(f"{len(hemispheres)} hemispheres for {n_roi} ROIs in bold")
    odd = sorted(set(hemispheres) - set(HEMISPHERES))
    if odd:
        raise InputError(f"hemisphere {odd[0]!r}: expected 'L', 'R' or '' (unknown)")
    return names, hemispheres, atlas


def fmri_dataset(
    bold: np.ndarray,
    subjects: Sequence[str],
    *,
    roi_names: Sequence[str] | None = None,
    hemispheres: Sequence[str] | None = None,
    atlas: str | None = None,
    source: str = "",
    extra_attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Build (and check) the ``fmri`` group of the schema; see :func:`write_fmri`."""
    bold32 = _check_bold(bold, subjects)
    names, hemis, atlas = _resolve_rois(bold32.shape[2], roi_names, hemispheres, atlas)
    return xr.Dataset(
        {S.BOLD_VAR: (S.BOLD_DIMS, bold32)},
        coords={
            S.SUBJECT_DIM: np.array([str(s) for s in subjects], dtype=object),
            S.TR_DIM: np.arange(bold32.shape[1], dtype=np.int64),
            S.ROI_DIM: np.arange(bold32.shape[2], dtype=np.int64),
            S.ROI_NAME_COORD: ((S.ROI_DIM,), np.array(names, dtype=object)),
            S.HEMISPHERE_COORD: ((S.ROI_DIM,), np.array(hemis, dtype=object)),
        },
        attrs={
            "atlas": atlas,
            "source": str(source),
            "n_subjects": int(bold32.shape[0]),
            **dict(extra_attrs or {}),
        },
    )


def fmri_encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Zarr chunks of the fmri group: one subject per chunk."""
    _, n_tr, n_roi = ds[S.BOLD_VAR].shape
    return {S.BOLD_VAR: {"chunks": (1, n_tr, n_roi)}}


def write_fmri(
    store: StorePath,
    bold: np.ndarray,
    subjects: Sequence[str],
    *,
    overwrite: bool = False,
    **labels: Any,
) -> str:
    """Add (or with ``overwrite``, replace) the ``fmri`` group of an existing store.

    The keywords ``roi_names``, ``hemispheres``, ``atlas`` and ``source`` (``labels``)
    go with ``bold`` and ``subjects`` to :func:`fmri_dataset`, which builds the group.

    Parameters
    ----------
    store
        A featstore store; its ``n_tr`` must equal the TR count of ``bold``.
    bold
        Array (subject, tr, roi) of real numbers, stored as float32.
    subjects
        One unique name per subject.
    roi_names, hemispheres
        Bare ROI names and ``'L'``/``'R'``/``''``. Without names, 360 ROIs get the
        HCP-MMP1.0 names (left hemisphere first) and other counts ``roi0``, ``roi1``…
    atlas
        Atlas name for the attrs; defaults to ``'HCP-MMP1.0'`` for the default 360
        names and ``'custom'`` otherwise.
    source
        Where the data came from (free text, stored in attrs).
    overwrite
        Replace an existing fmri group.

    Returns
    -------
    str
        The group path, ``'fmri'``.

    Raises
    ------
    InputError
        Wrong shape, non-finite values, duplicated subjects, ROI name count, or a TR
        count other than the store's ``n_tr``; nothing is written then.
    GroupExistsError
        The store has an fmri group and ``overwrite`` is false.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> import numpy as np
    >>> from featstore.datasets import write_fmri
    >>> store = example_store(fmri=False)  # 120 TRs
    >>> bold = np.random.default_rng(0).standard_normal((2, 120, 360))  # (subject, tr, roi)
    >>> write_fmri(store, bold, ["sub-01", "sub-02"])  # HCP-MMP1.0 ROI names for 360 ROIs
    'fmri'
    """
    ds = fmri_dataset(bold, subjects, **labels)
    n_tr = store_n_tr(store)
    if ds.sizes[S.TR_DIM] != n_tr:
        raise InputError(
            f"bold has {ds.sizes[S.TR_DIM]} TRs but the store {os.fspath(store)} has n_tr={n_tr}"
        )
    if group_exists(store, S.FMRI) and not overwrite:
        raise GroupExistsError(
            f"{os.fspath(store)} already has an fmri group; pass `overwrite` to replace it"
        )
    with group_lock(store, S.FMRI):
        write_group(store, S.FMRI, ds, overwrite=overwrite, encoding=fmri_encoding(ds))
    return S.FMRI


@fill_doc
def open_fmri(store: StorePath) -> xr.Dataset:
    """Open a store's ``fmri`` group lazily (dask-backed, one subject per chunk).

    %(open_group)s
        ``bold`` (subject, tr, roi), coords ``roi_name``, ``hemisphere``.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.datasets import open_fmri
    >>> open_fmri(example_store()).roi_name.values[:2].tolist()
    ['V1', 'MST']
    """
    return open_group(store, S.FMRI)
