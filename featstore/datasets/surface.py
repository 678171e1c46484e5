"""Surface fMRI through nibabel: GIfTI ``.func.gii`` per hemisphere, CIFTI-2 ``.dtseries.nii``.

Both readers return time series as ``(tr, vertex)`` float32 over a hemisphere's whole
mesh, so a parcellation indexes vertices the same way whatever the file. GIfTI holds
either one data array per TR (Narratives, FreeSurfer) or one 2-D ``(vertex, tr)``
array (nibabel's ``agg_data`` convention). CIFTI-2 fs_LR 91k grayordinates keep only
the cortex: each hemisphere's brain model lists the mesh vertices it has, and the
vertices it leaves out (the medial wall) come back as NaN.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from featstore.datasets._files import existing_file, first_line
from featstore.errors import InputError

CORTEX = {"L": "CIFTI_STRUCTURE_CORTEX_LEFT", "R": "CIFTI_STRUCTURE_CORTEX_RIGHT"}


def load_image(path: Path, what: str = "fmri") -> object:
    """``nibabel.load`` with a one-line :class:`InputError` naming the file on failure."""
    existing_file(path, what)
    try:
        return nib.load(path)
    except Exception as exc:  # nibabel raises many types for a corrupt file
        raise InputError(f"{what} {path}: nibabel cannot read it ({first_line(exc)})") from None


def read_gifti_series(path: Path) -> np.ndarray:
    """One hemisphere's GIfTI time series as float32 ``(tr, vertex)``.

    Raises
    ------
    InputError
        Not a GIfTI, no data arrays, arrays of different lengths, more than 2-D.
    """
    image = load_image(path)
    if not isinstance(image, nib.gifti.GiftiImage):
        raise InputError(f"fmri {path}: not a GIfTI image ({type(image).__name__})")
    arrays = [np.asarray(array.data) for array in image.darrays]
    if not arrays:
        raise InputError(f"fmri {path}: the GIfTI holds no data arrays")
    if len(arrays) == 1 and arrays[0].ndim == 2:
        # a (tr, vertex) view, not a copy: a run of fsaverage6 is hundreds of MB
        return np.asarray(arrays[0], dtype=np.float32).T
    shapes = {array.shape for array in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 1:
        raise InputError(
            f"fmri {path}: GIfTI data arrays of shapes {sorted(shapes)}; expected one 1-D "
            "array per TR (all of one length) or a single (vertex, TR) array"
        )
    return np.stack(arrays).astype(np.float32, copy=False)


def read_cifti_cortex(path: Path) -> dict[str, np.ndarray]:
    """The two cortical hemispheres of a CIFTI-2 dense time series.

    Returns
    -------
    dict
        ``{'L': (tr, vertex), 'R': (tr, vertex)}`` float32 over each whole mesh
        (32,492 vertices for fs_LR 32k), NaN where the file has no grayordinate.

    Raises
    ------
    InputError
        Not a CIFTI-2 dense time series, or a hemisphere's cortex missing.
    """
    image = load_image(path)
    if not isinstance(image, nib.Cifti2Image):
        raise InputError(f"fmri {path}: not a CIFTI-2 image ({type(image).__name__})")
    models = image.header.get_axis(1)
    if not isinstance(models, nib.cifti2.BrainModelAxis):
        raise InputError(f"fmri {path}: its columns are not grayordinates (a dtseries expected)")
    data = np.asarray(image.dataobj, dtype=np.float32)
    hemispheres = {}
    for name, columns, model in models.iter_structures():
        for hemisphere, structure in CORTEX.items():
            if name == structure:
                full = np.full((data.shape[0], model.nvertices[name]), np.nan, dtype=np.float32)
                full[:, model.vertex] = data[:, columns]
                hemispheres[hemisphere] = full
    missing = [CORTEX[h] for h in CORTEX if h not in hemispheres]
    if missing:
        raise InputError(
            f"fmri {path}: no {missing[0]} brain model; cortex of both hemispheres needed"
        )
    return hemispheres
