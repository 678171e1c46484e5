"""Vertex- and voxel-wise fMRI targets: GIfTI, CIFTI-2 and NIfTI read without parcellating.

Reading is in two passes so that at most one subject is in memory at a time (a
subject of fsaverage6 × 1000 TRs is 330 MB of float32):

1. :func:`scan_targets` reads every subject once, checks it (vertex count of the
   space, hemispheres with equal TR counts, one grid for every NIfTI) and records which
   targets are usable: a vertex or voxel is kept only if it is finite and not constant
   in **every** subject (the medial wall, NaN vertices and voxels outside the brain
   drop out, the same set for all subjects);
2. :meth:`TargetSource.read_subject` reads a subject again and returns its kept
   targets; :func:`target_dataset` wraps those reads in a dask array chunked one
   subject × all TRs × up to 8192 targets, so writing it streams subject by subject.

Targets are the left hemisphere's kept vertices then the right's (ascending vertex
index), or the kept voxels in C order of the grid (``voxel`` is their flat index).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import nibabel as nib
import numpy as np
import xarray as xr

from featstore.datasets._files import file_sha256, first_line
from featstore.datasets.brain_files import hemisphere_pairs, subject_of
from featstore.datasets.fmri import MAX_ABS_BOLD
from featstore.datasets.surface import CORTEX, load_image, read_cifti_cortex, read_gifti_series
from featstore.datasets.volume import check_same_grid, read_nifti_series
from featstore.errors import InputError
from featstore.store import _schema as S

#: Vertices per hemisphere of each surface space.
SURFACE_SPACES = {"fsaverage5": 10_242, "fsaverage6": 40_962, "fsLR32k": 32_492}
VOLUME_SPACES = ("MNI152NLin2009cAsym", "MNI152NLin6Asym")
NATIVE = "native"
SPACES = (*SURFACE_SPACES, *VOLUME_SPACES, NATIVE)
#: Most targets per chunk of ``bold`` (one subject × all TRs × this many targets).
CHUNK_TARGETS = 8192
VERTEX_COORD, VOXEL_COORD = "vertex", "voxel"


def check_space(space: str, kind: str) -> str:
    """``space`` if it is known and fits files of ``kind`` (gifti, cifti, nifti)."""
    if space not in SPACES:
        raise InputError(f"space={space!r}: unknown space; expected one of {', '.join(SPACES)}")
    if kind == "nifti" and space in SURFACE_SPACES:
        raise InputError(f"space={space}: a surface space, but the fMRI files are NIfTI volumes")
    if kind != "nifti" and space in VOLUME_SPACES:
        raise InputError(f"space={space}: a volume space, but the fMRI files are {kind} surfaces")
    if kind == "cifti" and space not in ("fsLR32k", NATIVE):
        raise InputError(f"space={space}: CIFTI-2 dense series are fs_LR grayordinates (fsLR32k)")
    return space


def _usable(series: np.ndarray, file: Path, subject: str) -> np.ndarray:
    """Targets of one subject that are finite at every TR and not constant.

    Works from per-target maxima and minima, so no temporary as large as the series
    beyond one boolean array is made.
    """
    finite = np.isfinite(series).all(axis=0)
    with np.errstate(invalid="ignore"):
        high, low = series.max(axis=0), series.min(axis=0)
        varying = high - low > 0
    huge = finite & ((high > MAX_ABS_BOLD) | (low < -MAX_ABS_BOLD))
    if huge.any():
        target = int(np.flatnonzero(huge)[0])
        tr = int(np.flatnonzero(np.abs(series[:, target]) > MAX_ABS_BOLD)[0])
        raise InputError(
            f"fmri {file}: subject {subject!r} has {int(huge.sum())} target(s) with values "
            f"beyond ±{MAX_ABS_BOLD:g}; first at TR {tr}, target {target}; rescale the data"
        )
    return finite & varying


@dataclass(frozen=True)
class TargetSource:
    """The checked scans of one story's vertex- or voxel-wise fMRI, and the kept targets.

    ``scans`` lists ``(subject, files)``: a GIfTI's (left, right) pair, or one CIFTI or
    NIfTI file. ``keep`` maps a hemisphere (``'L'``, ``'R'``; ``''`` for voxels) to a
    boolean per mesh vertex (per grid voxel, flat C order) of the targets kept.
    """

    pattern: str
    kind: str
    space: str
    scans: list[tuple[str, tuple[Path, ...]]]
    lengths: dict[str, int]
    keep: dict[str, np.ndarray]
    n_as_read: int
    grid: tuple[int, ...] = ()
    affine: tuple[tuple[float, ...], ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def target_kind(self) -> str:
        """``'voxel'`` for NIfTI, ``'vertex'`` for surfaces."""
        return "voxel" if self.kind == "nifti" else "vertex"

    @property
    def subjects(self) -> list[str]:
        """Subjects in scan order."""
        return [subject for subject, _ in self.scans]

    @property
    def n_tr(self) -> int:
        """TRs of every subject (the shortest, when subjects were trimmed)."""
        return min(self.lengths.values())

    @property
    def n_targets(self) -> int:
        """Targets kept."""
        return int(sum(int(mask.sum()) for mask in self.keep.values()))

    @property
    def dropped(self) -> int:
        """Targets read but left out (medial wall, NaN, constant, outside the mask)."""
        return self.n_as_read - self.n_targets

    @property
    def trimmed(self) -> dict[str, int]:
        """Subjects that lost TRs to ``trim_to_shortest``: subject → TRs removed."""
        return {s: n - self.n_tr for s, n in self.lengths.items() if n > self.n_tr}

    def restricted(self, keep: dict[str, np.ndarray]) -> TargetSource:
        """The same scans with fewer targets (those kept across several stories)."""
        return dataclasses.replace(self, keep={h: self.keep[h] & keep[h] for h in self.keep})

    def describe(self) -> str:
        """One line for the ``source`` attr of the fmri group."""
        files = sum(len(f) for _, f in self.scans)
        return f"{self.kind} {self.pattern} ({files} files) as {self.target_kind}s in {self.space}"

    def target_coords(self) -> tuple[np.ndarray, np.ndarray]:
        """``(hemisphere, index)`` of every kept target, index being vertex or flat voxel."""
        hemispheres, indices = [], []
        for hemisphere, mask in self.keep.items():
            kept = np.flatnonzero(mask).astype(np.int64)
            indices.append(kept)
            hemispheres.append(np.full(kept.size, hemisphere, dtype=object))
        return np.concatenate(hemispheres), np.concatenate(indices)

    def read_subject(self, index: int) -> np.ndarray:
        """Subject ``index``'s kept targets, float32 ``(tr, target)``, read again from disk."""
        _, files = self.scans[index]
        series = _read_scan(self.kind, files)
        columns = [series[h][: self.n_tr, self.keep[h]] for h in self.keep]
        return np.ascontiguousarray(np.concatenate(columns, axis=1), dtype=np.float32)


def _read_scan(kind: str, files: tuple[Path, ...]) -> dict[str, np.ndarray]:
    """``{hemisphere: (tr, vertex)}`` of a scan, or ``{'': (tr, voxel)}`` over the grid."""
    if kind == "gifti":
        return {"L": read_gifti_series(files[0]), "R": read_gifti_series(files[1])}
    if kind == "cifti":
        return read_cifti_cortex(files[0])
    data = np.asarray(read_nifti_series(files[0]).dataobj, dtype=np.float32)
    return {"": data.reshape(-1, data.shape[3]).T}


def _scans(kind: str, files: list[Path]) -> list[tuple[str, tuple[Path, ...]]]:
    if kind == "gifti":
        scans = [(subject_of(left), (left, right)) for left, right in hemisphere_pairs(files)]
    else:
        scans = [(subject_of(file), (file,)) for file in files]
    seen: set[str] = set()
    for subject, paths in scans:
        if subject in seen:
            raise InputError(f"fmri {paths[0]}: subject {subject!r} appears more than once")
        seen.add(subject)
    return scans


def _check_surface(series: dict[str, np.ndarray], files: tuple[Path, ...], space: str, mesh):
    """Vertex count of each hemisphere against the space (or the first subject's)."""
    for hemisphere, values in series.items():
        file = files[0] if len(files) == 1 or hemisphere == "L" else files[1]
        expected = SURFACE_SPACES.get(space, mesh.get(hemisphere))
        if expected is not None and values.shape[1] != expected:
            raise InputError(
                f"fmri {file}: hemisphere {hemisphere} has {values.shape[1]} vertices but "
                f"space {space} has {expected} per hemisphere"
            )
        mesh.setdefault(hemisphere, values.shape[1])
    if len(files) == 2 and series["L"].shape[0] != series["R"].shape[0]:
        raise InputError(
            f"fmri {files[0]} has {series['L'].shape[0]} TRs but its right hemisphere "
            f"{files[1]} has {series['R'].shape[0]}"
        )


def _mask_from_files(masks: list[Path], image: nib.Nifti1Image, fmri: Path) -> tuple:
    voxels = np.ones(image.shape[:3], dtype=bool)
    for path in masks:
        mask_image = load_image(path, "mask")
        check_same_grid(image, mask_image, "mask", path, fmri)
        voxels &= np.asarray(mask_image.dataobj) > 0
    how = "; ".join(f"{p} (sha256 {file_sha256(p, 'mask')[:12]})" for p in masks)
    return voxels, how if len(masks) == 1 else f"intersection of {how}"


def _computed_mask(image: nib.Nifti1Image, fmri: Path, space: str) -> tuple:
    """nilearn's EPI mask of the first subject's run (the MNI brain mask if that fails)."""
    from nilearn.masking import compute_brain_mask, compute_epi_mask

    reason = "it finds no brain voxel"
    for name, compute in (("compute_epi_mask", compute_epi_mask), ("compute_brain_mask", None)):
        if compute is None:
            if space not in VOLUME_SPACES:
                break
            compute = compute_brain_mask
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # nilearn warns before it gives up
                voxels = np.asarray(compute(image).dataobj) > 0
        except Exception as exc:  # nilearn raises ValueError and others on odd data
            reason = first_line(exc)
            continue
        if voxels.any():
            return voxels, f"computed with nilearn.masking.{name} on {fmri}"
    raise InputError(
        f"fmri {fmri}: no `mask` given and nilearn cannot compute one ({reason}); pass `mask`"
    )


def scan_targets(
    files: list[Path],
    *,
    kind: str,
    space: str,
    pattern: str = "",
    mask: Path | list[Path] | None = None,
    trim_to_shortest: bool = False,
) -> TargetSource:
    """Read and check every subject's scan once; find the targets usable in all of them.

    Parameters
    ----------
    files
        GIfTI files (the other hemisphere is found by name), CIFTI-2 dense series or
        4-D NIfTI, one scan per subject (``sub-XX`` in the name).
    kind
        ``'gifti'``, ``'cifti'`` or ``'nifti'``.
    space
        One of :data:`SPACES`; surface spaces fix the vertex count per hemisphere.
    pattern
        The glob the files came from, for messages and the ``source`` attr.
    mask
        NIfTI only: a brain mask (or several, intersected) on the fMRI's grid; without
        it nilearn computes one from the first subject's run.
    trim_to_shortest
        Cut subjects of different lengths to the shortest.

    Returns
    -------
    TargetSource

    Raises
    ------
    InputError
        Naming the file: a vertex count other than the space's, hemispheres with
        different TR counts, NIfTI on different grids, no mask computable, subjects
        of different lengths (without ``trim_to_shortest``), no usable target.
    """
    check_space(space, kind)
    if mask is not None and kind != "nifti":
        raise InputError(f"mask={mask}: applies to NIfTI fMRI, not {kind}")
    scans = _scans(kind, files)
    keep: dict[str, np.ndarray] = {}
    lengths: dict[str, int] = {}
    mesh: dict[str, int] = {}
    attrs: dict[str, Any] = {}
    first_image = None
    n_as_read = 0
    for subject, paths in scans:
        if kind == "nifti":
            image = read_nifti_series(paths[0])
            if first_image is None:
                first_image = image
                masks = [mask] if isinstance(mask, Path | str) else list(mask or [])
                if masks:
                    voxels, attrs["mask_source"] = _mask_from_files(
                        [Path(m) for m in masks], image, paths[0]
                    )
                else:
                    voxels, attrs["mask_source"] = _computed_mask(image, paths[0], space)
                keep[""] = voxels.reshape(-1)
                n_as_read = int(voxels.sum())
            _check_grid(first_image, image, paths[0], scans[0][1][0])
            series = _read_scan(kind, paths)
        else:
            series = _read_scan(kind, paths)
            _check_surface(series, paths, space, mesh)
            if kind == "cifti":
                attrs["dropped_subcortical"] = _subcortical_count(paths[0])
        for hemisphere, values in series.items():
            usable = _usable(values, paths[0], subject)
            keep[hemisphere] = keep[hemisphere] & usable if hemisphere in keep else usable
        lengths[subject] = int(next(iter(series.values())).shape[0])
        del series
    _check_lengths(pattern or str(files[0]), lengths, trim_to_shortest)
    n_as_read = int(sum(mesh.values())) if mesh else n_as_read
    source = TargetSource(
        pattern or str(files[0]),
        kind,
        space,
        scans,
        lengths,
        keep,
        n_as_read,
        tuple(first_image.shape[:3]) if first_image is not None else (),
        tuple(tuple(float(v) for v in row) for row in first_image.affine)
        if first_image is not None
        else (),
        attrs,
    )
    if source.n_targets == 0:
        raise InputError(f"fmri {source.pattern}: no target is finite and varying in every subject")
    return source


def _check_grid(first: nib.Nifti1Image, image: nib.Nifti1Image, path: Path, first_path: Path):
    if image.shape[:3] != first.shape[:3] or not np.allclose(image.affine, first.affine, atol=1e-3):
        raise InputError(
            f"fmri {path}: grid {image.shape[:3]} (affine {image.affine.round(3).tolist()}) "
            f"differs from {first_path}'s {first.shape[:3]}; voxel targets need one grid"
        )


def _subcortical_count(path: Path) -> int:
    models = load_image(path).header.get_axis(1)
    return int(np.sum(~np.isin(models.name, list(CORTEX.values()))))


def _check_lengths(pattern: str, lengths: dict[str, int], trim_to_shortest: bool) -> None:
    longest = max(lengths, key=lengths.__getitem__)
    shortest = min(lengths, key=lengths.__getitem__)
    if lengths[longest] != lengths[shortest] and not trim_to_shortest:
        raise InputError(
            f"fmri {pattern}: subject {longest!r} has {lengths[longest]} TRs but subject "
            f"{shortest!r} has {lengths[shortest]}; pass `trim_to_shortest` to cut every "
            f"subject to {lengths[shortest]}"
        )


def target_dataset(source: TargetSource, extra_attrs: dict[str, Any] | None = None) -> xr.Dataset:
    """The fmri group of vertex or voxel targets, its ``bold`` a lazy dask array.

    Each subject's block is read from disk when the group is written, and chunked one
    subject × all TRs × up to :data:`CHUNK_TARGETS` targets.
    """
    n_tr, n_targets = source.n_tr, source.n_targets
    blocks = [
        da.from_delayed(
            dask.delayed(source.read_subject, pure=True)(i), (n_tr, n_targets), np.float32
        )
        for i in range(len(source.scans))
    ]
    bold = da.stack(blocks).rechunk((1, n_tr, min(CHUNK_TARGETS, n_targets)))
    hemispheres, indices = source.target_coords()
    index_coord = VOXEL_COORD if source.kind == "nifti" else VERTEX_COORD
    attrs: dict[str, Any] = {
        "atlas": "",
        "source": source.describe(),
        "n_subjects": len(source.scans),
        "target_kind": source.target_kind,
        "space": source.space,
        "dropped_targets": source.dropped,
        **source.attrs,
    }
    if source.kind == "nifti":
        attrs |= {"affine": [list(row) for row in source.affine], "grid_shape": list(source.grid)}
    if source.trimmed:
        attrs["lengths_as_read"] = dict(source.lengths)
    return xr.Dataset(
        {S.BOLD_VAR: (S.BOLD_DIMS, bold)},
        coords={
            S.SUBJECT_DIM: np.array(source.subjects, dtype=object),
            S.TR_DIM: np.arange(n_tr, dtype=np.int64),
            S.ROI_DIM: np.arange(n_targets, dtype=np.int64),
            S.ROI_NAME_COORD: ((S.ROI_DIM,), np.full(n_targets, "", dtype=object)),
            S.HEMISPHERE_COORD: ((S.ROI_DIM,), hemispheres),
            index_coord: ((S.ROI_DIM,), indices),
        },
        attrs=attrs | dict(extra_attrs or {}),
    )


def target_encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Zarr chunks of a vertex/voxel fmri group: 1 subject × all TRs × ≤ 8192 targets."""
    _, n_tr, n_targets = ds[S.BOLD_VAR].shape
    return {S.BOLD_VAR: {"chunks": (1, n_tr, min(CHUNK_TARGETS, n_targets))}}


def space_from_name(path: str | os.PathLike) -> str | None:
    """The BIDS ``space-<label>`` of a file name, or None."""
    for part in Path(path).name.split("_"):
        if part.startswith("space-"):
            return part[len("space-") :].split(".")[0]
    return None
