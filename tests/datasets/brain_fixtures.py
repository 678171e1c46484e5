"""Tiny brain files written by nibabel: GIfTI series and labels, FreeSurfer annots,
CIFTI-2 fs_LR dense series, 4-D NIfTI with masks and label images.

Sizes are distinct per axis: 23 left and 19 right vertices, a 6×5×4 voxel grid.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

N_LEFT, N_RIGHT = 23, 19
# key → label name per hemisphere (key 0 is background)
LEFT_TABLE = {0: "???", 1: "L_A", 2: "L_B", 3: "L_C"}
RIGHT_TABLE = {0: "???", 1: "R_A", 2: "R_B"}
GRID = (6, 5, 4)


def vertex_labels(n_vertices: int, n_keys: int, seed: int) -> np.ndarray:
    """Labels 0..n_keys-1 with every key present, shuffled."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_vertices) % n_keys
    rng.shuffle(labels)
    return labels


LEFT_LABELS = vertex_labels(N_LEFT, len(LEFT_TABLE), 1)
RIGHT_LABELS = vertex_labels(N_RIGHT, len(RIGHT_TABLE), 2)


def write_func_gii(path: Path, series: np.ndarray, per_tr: bool = True) -> Path:
    """(tr, vertex) series as one data array per TR, or one (vertex, tr) array."""
    rows = list(series) if per_tr else [series.T]
    arrays = [
        nib.gifti.GiftiDataArray(
            np.ascontiguousarray(row, dtype=np.float32),
            intent="NIFTI_INTENT_TIME_SERIES",
            datatype="NIFTI_TYPE_FLOAT32",
        )
        for row in rows
    ]
    nib.save(nib.gifti.GiftiImage(darrays=arrays), path)
    return path


def write_label_gii(path: Path, labels: np.ndarray, table: dict[int, str]) -> Path:
    """A label GIfTI: one int32 array and its label table."""
    label_table = nib.gifti.GiftiLabelTable()
    for key, name in table.items():
        label = nib.gifti.GiftiLabel(key=key)
        label.label = name
        label_table.labels.append(label)
    array = nib.gifti.GiftiDataArray(
        labels.astype(np.int32), intent="NIFTI_INTENT_LABEL", datatype="NIFTI_TYPE_INT32"
    )
    nib.save(nib.gifti.GiftiImage(labeltable=label_table, darrays=[array]), path)
    return path


def write_annot(path: Path, labels: np.ndarray, table: dict[int, str]) -> Path:
    """A FreeSurfer .annot; background (key 0) becomes unlabelled (-1)."""
    names = [table[k] for k in sorted(table) if k > 0]
    ctab = np.zeros((len(names), 5), dtype=np.int32)
    ctab[:, :3] = np.arange(len(names))[:, None] * 40 + 10
    nib.freesurfer.write_annot(path, labels - 1, ctab, names, fill_ctab=True)
    return path


def write_cifti(
    path: Path,
    series: dict[str, np.ndarray],
    vertices: dict[str, np.ndarray],
    n_mesh: int,
    tr: float = 1.5,
) -> Path:
    """A CIFTI-2 dense series: the given vertices of each hemisphere's mesh."""
    models = nib.cifti2.BrainModelAxis.from_surface(vertices["L"], n_mesh, "CortexLeft")
    models += nib.cifti2.BrainModelAxis.from_surface(vertices["R"], n_mesh, "CortexRight")
    data = np.concatenate([series["L"], series["R"]], axis=1).astype(np.float32)
    time = nib.cifti2.SeriesAxis(start=0, step=tr, size=data.shape[0])
    nib.save(nib.Cifti2Image(data, header=(time, models)), path)
    return path


def write_nifti(path: Path, data: np.ndarray) -> Path:
    """A NIfTI on the 2 mm identity-ish grid every fixture shares."""
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    nib.save(nib.Nifti1Image(np.asarray(data), affine), path)
    return path


def reference_means(series: np.ndarray, labels: np.ndarray, keys) -> np.ndarray:
    """Parcel means the obvious way: one numpy mean per parcel over finite vertices."""
    finite = np.isfinite(series).all(axis=0)
    return np.stack([series[:, (labels == k) & finite].mean(axis=1) for k in keys], axis=1)
