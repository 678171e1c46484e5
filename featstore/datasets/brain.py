"""GIfTI / CIFTI / NIfTI fMRI of several subjects, averaged into parcels on reading.

``read_brain_fmri('sub-*_hemi-L.func.gii', parcellate='hcp-mmp')`` finds every
subject's files (the subject is the ``sub-XX`` of the name; the right hemisphere of a
GIfTI is found by name, see :mod:`featstore.datasets.brain_files`), reads them with
nibabel (:mod:`~featstore.datasets.surface`, :mod:`~featstore.datasets.volume`),
averages vertices or voxels into the atlas's parcels
(:mod:`~featstore.datasets.parcellate`) and stacks subjects as every other fMRI
reader does (:func:`featstore.datasets.fmri.stack_subjects`). The result is today's
``(subject, tr, roi)`` fmri group, with parcel names as ``roi_name`` and
``hemisphere``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from featstore.datasets.brain_files import expand, hemisphere_pairs, subject_of
from featstore.datasets.fmri import stack_subjects
from featstore.datasets.parcellate import Atlas, load_atlas, parcel_means
from featstore.datasets.surface import read_cifti_cortex, read_gifti_series
from featstore.datasets.volume import brain_mask, check_same_grid, masked_series, read_nifti_series
from featstore.errors import InputError

FORMATS = {".func.gii": "gifti", ".dtseries.nii": "cifti", ".nii.gz": "nifti", ".nii": "nifti"}


def brain_format(path: str | os.PathLike) -> str | None:
    """``'gifti'``, ``'cifti'``, ``'nifti'`` by the name's ending, or None (npz, npy…)."""
    name = Path(path).name.lower()
    return next((kind for suffix, kind in FORMATS.items() if name.endswith(suffix)), None)


def brain_files(pattern: str | os.PathLike) -> tuple[list[Path], str]:
    """The files a path or glob names and their one kind (gifti, cifti or nifti)."""
    files = expand(pattern)
    kinds = {brain_format(file) for file in files}
    if len(kinds) != 1 or None in kinds:
        raise InputError(
            f"fmri {os.fspath(pattern)}: matches files of kinds {sorted(map(str, kinds))}; "
            "expected only .func.gii, only .dtseries.nii or only .nii/.nii.gz"
        )
    return files, kinds.pop()


@dataclass(frozen=True)
class BrainSource:
    """What was read and how it was parcellated; the fmri group's ``source`` and attrs."""

    pattern: str
    kind: str
    files: list[str]
    roi_names: list[str]
    hemispheres: list[str]
    atlas: str
    lengths: dict[str, int] = field(default_factory=dict)
    n_tr: int = 0
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def trimmed(self) -> dict[str, int]:
        """Subjects that lost TRs to ``trim_to_shortest``: subject → TRs removed."""
        return {s: n - self.n_tr for s, n in self.lengths.items() if n > self.n_tr}

    def describe(self) -> str:
        """One line for the ``source`` attr of the fmri group."""
        return f"{self.kind} {self.pattern} ({len(self.files)} files) parcellated by {self.atlas}"


def _parcels_of(atlas: Atlas, hemisphere: str) -> list[tuple[str, int, str]]:
    return [p for p in atlas.parcels if p[0] == hemisphere or atlas.is_volume]


def _parcellate(
    file: Path, hemispheres: dict[str, np.ndarray], labels: dict[str, np.ndarray], atlas: Atlas
) -> tuple[np.ndarray, int]:
    """(tr, parcel) means of one subject, and the count of labelled vertices left out."""
    columns, masked = [], 0
    for hemisphere, series in hemispheres.items():
        if series.shape[1] != labels[hemisphere].shape[0]:
            raise InputError(
                f"fmri {file}: hemisphere {hemisphere} has {series.shape[1]} vertices but atlas "
                f"{atlas.name} labels {labels[hemisphere].shape[0]}; are they on the same mesh?"
            )
        parcels = _parcels_of(atlas, hemisphere)
        keys = [key for _, key, _ in parcels]
        means, counts = parcel_means(series, labels[hemisphere], keys)
        empty = [name for (_, _, name), n in zip(parcels, counts, strict=True) if n == 0]
        if empty:
            raise InputError(
                f"fmri {file}: parcel {empty[0]!r} of atlas {atlas.name} has no finite "
                f"vertex or voxel ({len(empty)} such parcels)"
            )
        masked += int(np.isin(labels[hemisphere], keys).sum() - counts.sum())
        columns.append(means)
    return np.concatenate(columns, axis=1), masked


def _subject_series(kind: str, files: list[Path], atlas: Atlas, mask: Path | None, how: dict):
    """(subject, file, {hemisphere: (tr, vertex)}, {hemisphere: labels}) of each scan."""
    if kind == "gifti":
        for left, right in hemisphere_pairs(files):
            series = {"L": read_gifti_series(left), "R": read_gifti_series(right)}
            if series["L"].shape[0] != series["R"].shape[0]:
                raise InputError(
                    f"fmri {left} has {series['L'].shape[0]} TRs but its right hemisphere "
                    f"{right} has {series['R'].shape[0]}"
                )
            yield subject_of(left), left, series, atlas.labels
    elif kind == "cifti":
        for file in files:
            yield subject_of(file), file, read_cifti_cortex(file), atlas.labels
    else:
        for file in files:
            image = read_nifti_series(file)
            check_same_grid(image, atlas.image, "atlas", Path(atlas.image.get_filename()), file)
            voxels, how[subject_of(file)] = brain_mask(image, file, mask)
            # each subject's voxels are its own mask's, so are their labels
            yield (
                subject_of(file),
                file,
                {"": masked_series(image, voxels)},
                {"": atlas.labels[""][voxels]},
            )


def read_brain_fmri(
    pattern: str | os.PathLike,
    *,
    parcellate: str | None,
    mask: str | os.PathLike | None = None,
    trim_to_shortest: bool = False,
) -> tuple[np.ndarray, list[str], BrainSource]:
    """Read GIfTI, CIFTI-2 or 4-D NIfTI fMRI of every subject a glob names, as parcels.

    Parameters
    ----------
    pattern
        A file or glob: ``'sub-*_hemi-L.func.gii'`` (right hemispheres found by name),
        ``'sub-*.dtseries.nii'`` or ``'sub-*_bold.nii.gz'``. Subjects from ``sub-XX``.
    parcellate
        The atlas (:func:`featstore.datasets.parcellate.load_atlas`); required, as the
        schema-v1 fmri group holds parcels.
    mask
        NIfTI only: brain mask on the fMRI's grid; without it nilearn computes one per
        subject (recorded in ``source.attrs['mask']``).
    trim_to_shortest
        Cut subjects of different lengths to the shortest.

    Returns
    -------
    bold : numpy.ndarray
        float32 (subject, tr, parcel).
    subjects : list of str
    source : BrainSource

    Raises
    ------
    InputError
        One line naming the file, subject or parcel: no file matched, a mixed or
        unknown format, no ``parcellate``, ``mask`` with surface data, an atlas of the
        wrong kind or vertex count, hemispheres with different TR counts, a parcel
        with no finite vertex, a subject twice, no mask computable.

    Examples
    --------
    Two subjects' 4-D NIfTI, averaged into the two parcels of a label image:

    >>> import tempfile
    >>> from pathlib import Path
    >>> import nibabel as nib
    >>> import numpy as np
    >>> from featstore.datasets import read_brain_fmri
    >>> folder = Path(tempfile.mkdtemp())
    >>> labels = np.zeros((4, 3, 2), dtype=np.int16)
    >>> labels[:2], labels[2:] = 1, 2
    >>> nib.save(nib.Nifti1Image(labels, np.eye(4)), folder / "atlas.nii.gz")
    >>> nib.save(nib.Nifti1Image(np.ones((4, 3, 2), np.uint8), np.eye(4)), folder / "mask.nii.gz")
    >>> rng = np.random.default_rng(0)
    >>> for subject in ("01", "02"):
    ...     series = rng.normal(size=(4, 3, 2, 9)).astype(np.float32)
    ...     nib.save(nib.Nifti1Image(series, np.eye(4)), folder / f"sub-{subject}_bold.nii.gz")
    >>> bold, subjects, source = read_brain_fmri(
    ...     folder / "sub-*_bold.nii.gz",
    ...     parcellate=str(folder / "atlas.nii.gz"),
    ...     mask=folder / "mask.nii.gz",
    ... )
    >>> bold.shape, subjects
    ((2, 9, 2), ['sub-01', 'sub-02'])
    """
    files, kind = brain_files(pattern)
    if parcellate is None:
        raise InputError(
            f"fmri {os.fspath(pattern)}: {kind} data read as parcels needs `parcellate` "
            "(an atlas); read vertices or voxels with featstore.datasets.targets.scan_targets"
        )
    if mask is not None and kind != "nifti":
        raise InputError(f"mask={os.fspath(mask)} applies to NIfTI fMRI, not {kind}")
    atlas = load_atlas(parcellate)
    if atlas.is_volume != (kind == "nifti"):
        needed = "a NIfTI label image" if kind == "nifti" else "a surface atlas"
        raise InputError(f"parcellate={parcellate}: {kind} fMRI needs {needed}")
    items, read, masked, how = [], [], {}, {}
    mask_path = Path(mask) if mask is not None else None
    for subject, file, series, labels in _subject_series(kind, files, atlas, mask_path, how):
        if subject in masked:
            raise InputError(f"fmri {file}: subject {subject!r} appears more than once")
        means, masked[subject] = _parcellate(file, series, labels, atlas)
        items.append((subject, means))
        read.append(str(file))
    bold, subjects, lengths = stack_subjects(Path(os.fspath(pattern)), items, trim_to_shortest)
    attrs: dict[str, Any] = {"masked_vertices": masked}
    if how:
        attrs["mask"] = how
    source = BrainSource(
        os.fspath(pattern),
        kind,
        read,
        [name for _, _, name in atlas.parcels],
        [h for h, _, _ in atlas.parcels],
        atlas.name,
        lengths,
        int(bold.shape[1]),
        attrs,
    )
    return bold, subjects, source
