"""Volume fMRI through nibabel: a 4-D NIfTI and the brain mask its voxels are read in.

The mask is the user's (``--mask``: a 3-D image on the same grid) or, without one,
nilearn's :func:`~nilearn.masking.compute_epi_mask` of the subject's own run; which
one was used is returned so the fmri group's attrs can record it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np

from featstore.datasets._files import file_sha256, first_line
from featstore.datasets.surface import load_image
from featstore.errors import InputError

COMPUTED_MASK = "computed with nilearn.masking.compute_epi_mask"


def read_nifti_series(path: Path) -> nib.Nifti1Image:
    """A 4-D NIfTI (x, y, z, tr); :class:`InputError` if it is not one."""
    image = load_image(path)
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image) or len(image.shape) != 4:
        raise InputError(
            f"fmri {path}: expected a 4-D NIfTI (x, y, z, TR); got "
            f"{type(image).__name__} of shape {getattr(image, 'shape', '?')}"
        )
    return image


def check_same_grid(
    image: nib.Nifti1Image, other: nib.Nifti1Image, what: str, path: Path, fmri: Path
) -> None:
    """Refuse a 3-D ``other`` (mask, labels) whose grid differs from the fMRI's."""
    if tuple(other.shape) != tuple(image.shape[:3]):
        raise InputError(
            f"{what} {path}: shape {tuple(other.shape)} but fmri {fmri} has voxels "
            f"{tuple(image.shape[:3])}; resample it to the fMRI grid"
        )
    if not np.allclose(other.affine, image.affine, atol=1e-3):
        raise InputError(
            f"{what} {path}: its affine differs from fmri {fmri}'s; resample it to the fMRI grid"
        )


def brain_mask(image: nib.Nifti1Image, fmri: Path, mask: Path | None) -> tuple[np.ndarray, str]:
    """Boolean (x, y, z) mask of the voxels to read, and how it was obtained.

    Raises
    ------
    InputError
        A mask on another grid or with no voxel, or (without ``mask``) data from which
        nilearn cannot compute one (constant or empty runs).
    """
    if mask is not None:
        mask_image = load_image(mask, "mask")
        check_same_grid(image, mask_image, "mask", mask, fmri)
        voxels = np.asarray(mask_image.dataobj) > 0
        how = f"{mask} (sha256 {file_sha256(mask, 'mask')})"
    else:
        from nilearn.masking import compute_epi_mask

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # nilearn warns before it gives up
                voxels = np.asarray(compute_epi_mask(image).dataobj) > 0
        except Exception as exc:  # nilearn raises ValueError and others on odd data
            voxels, reason = None, first_line(exc)
        else:
            reason = "it finds no brain voxel"
        if voxels is None or not voxels.any():
            raise InputError(
                f"fmri {fmri}: no `mask` given and nilearn cannot compute one ({reason}); "
                "pass `mask`"
            )
        how = COMPUTED_MASK
    if not voxels.any():
        raise InputError(f"fmri {fmri}: the brain mask ({how}) holds no voxel")
    return voxels, how


def masked_series(image: nib.Nifti1Image, voxels: np.ndarray) -> np.ndarray:
    """The masked voxels' time series, float32 ``(tr, voxel)`` in C order of the grid."""
    data = np.asarray(image.dataobj, dtype=np.float32)
    return np.ascontiguousarray(data[voxels].T)
