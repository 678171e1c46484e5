"""Volume maps: values of voxel targets on nilearn's bundled MNI152 template.

A voxel run's targets are flat C-order indices (``voxel`` coord) into the fMRI grid
(``grid_shape`` attr) with its ``affine`` (4 × 4, voxel → mm). :func:`volume_image` puts
the values back into that grid (voxels without a target are 0: transparent once
thresholded); :func:`plot_volume_map` draws it with nilearn's ``plot_stat_map`` (slices
over the template, resampled) or ``plot_glass_brain`` (maximum-intensity projections),
into a pyplot-free figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from featstore._docs import fill_doc
from featstore.errors import InputError
from featstore.plot._figure import new_figure
from featstore.plot.brain import ColorScale, MapStyle, PanelStyle, _masked, masked_rows

if TYPE_CHECKING:
    import nibabel as nib
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DISPLAYS = ("stat", "glass")


def volume_image(
    values: np.ndarray,
    *,
    voxel: np.ndarray,
    affine: Sequence[Sequence[float]],
    grid_shape: Sequence[int],
) -> nib.Nifti1Image:
    """A 3-D NIfTI of voxel-target values (0 where no target or NaN).

    Parameters
    ----------
    values, voxel : array-like, (n_target,)
        Values and flat C-order voxel indices of the targets.
    affine : 4 × 4 nested list
    grid_shape : 3 ints

    Returns
    -------
    nibabel.Nifti1Image
        The values in the fMRI grid, float32, with the run's affine.

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.plot.volume import volume_image
    >>> image = volume_image(np.array([0.3, 0.1]), voxel=np.array([0, 23]),
    ...                      affine=np.eye(4), grid_shape=(2, 3, 4))
    >>> data = image.get_fdata().round(3)
    >>> float(data[1, 2, 3]), float(data[0, 0, 0])
    (0.1, 0.3)
    """
    import nibabel as nib

    shape = tuple(int(x) for x in grid_shape)
    affine = np.asarray(affine, dtype=np.float64)
    if len(shape) != 3 or affine.shape != (4, 4):
        raise InputError(
            f"grid_shape {shape} and affine of shape {affine.shape}: expected 3 ints and 4 × 4"
        )
    values = np.asarray(values, dtype=np.float64)
    voxel = np.asarray(voxel, dtype=np.int64)
    if values.shape != voxel.shape:
        raise InputError(f"{values.size} values for {voxel.size} voxels")
    if voxel.size and (voxel.min() < 0 or voxel.max() >= int(np.prod(shape))):
        raise InputError(f"voxel {int(voxel.max())} is outside the grid {shape}")
    data = np.zeros(int(np.prod(shape)), dtype=np.float32)
    data[voxel] = np.nan_to_num(values, nan=0.0)
    return nib.Nifti1Image(data.reshape(shape), affine)


def _draw_volume(
    axes: Axes,
    image: nib.Nifti1Image,
    scale: ColorScale,
    *,
    display: str,
    title: str | None,
    threshold: float | None,
    colorbar_label: str,
) -> None:
    """Draw ``image`` into ``axes`` with nilearn: slices over the template or a glass brain."""
    from nilearn.datasets import load_mni152_template
    from nilearn.plotting import plot_glass_brain, plot_stat_map

    options = {
        "threshold": 1e-6 if threshold is None else threshold,
        "cmap": scale.cmap,
        "vmin": scale.vmin,
        "vmax": scale.vmax,
        "symmetric_cbar": scale.symmetric,
        "colorbar": True,
        "figure": axes.figure,
        "axes": axes,
        "annotate": True,
        "title": title,
    }
    if display == "glass":
        plot_glass_brain(image, display_mode="lzr", plot_abs=False, **options)
    else:
        options["bg_img"] = load_mni152_template(resolution=2)
        plot_stat_map(image, display_mode="z", cut_coords=7, draw_cross=False, **options)
    axes.set_label(f"{display} map ({colorbar_label})")


@fill_doc
def plot_volume_map(
    values: np.ndarray,
    *,
    voxel: np.ndarray,
    affine: Sequence[Sequence[float]],
    grid_shape: Sequence[int],
    display: str = "stat",
    title: str | None = None,
    mask: np.ndarray | None = None,
    threshold: float | None = None,
    **style: Any,
) -> Figure:
    """A voxel map over the MNI152 template (nilearn's bundled one, no download).

    Parameters
    ----------
    values : array-like, (n_target,)
        One value per voxel target; NaN (and ``mask``) unpainted.
    voxel, affine, grid_shape
        The run's ``voxel`` coord and ``affine``/``grid_shape`` attrs.
    display : {"stat", "glass"}
        ``stat``: axial slices (``plot_stat_map``); ``glass``: glass-brain projections.
    title : str, optional
    mask : bool array, (n_target,), optional
        True leaves a voxel unpainted (e.g. not significant).
    threshold : float, optional
        Values with a smaller magnitude are transparent (default: a tiny positive
        number, so that voxels without a target are).
    %(map_style)s

    Examples
    --------
    >>> fig = plot_volume_map(run.r.sel(config=c).mean("subject").values,
    ...     voxel=run.voxel.values, affine=run.attrs["affine"],
    ...     grid_shape=run.attrs["grid_shape"], output_file="map.png")  # doctest: +SKIP
    """
    if display not in DISPLAYS:
        raise InputError(f"display {display!r}: expected one of {', '.join(DISPLAYS)}")
    map_style = MapStyle(**style)
    shown = _masked(values, mask)
    image = volume_image(shown, voxel=voxel, affine=affine, grid_shape=grid_shape)
    axes = map_style.axes
    if axes is None:
        axes = new_figure(12.0, 3.2).add_axes((0.0, 0.0, 1.0, 1.0))
    _draw_volume(
        axes,
        image,
        map_style.scale(shown),
        display=display,
        title=title,
        threshold=threshold,
        colorbar_label=map_style.colorbar_label,
    )
    return map_style.save(axes.figure)


@fill_doc
def plot_volume_panels(
    values_list: Sequence[np.ndarray],
    *,
    voxel: np.ndarray,
    affine: Sequence[Sequence[float]],
    grid_shape: Sequence[int],
    masks: Sequence[np.ndarray | None] | None = None,
    **style: Any,
) -> Figure:
    """Several voxel maps (axial slices) as rows, on one color scale or each its own.

    Parameters
    ----------
    values_list : sequence of array-like, each (n_target,)
    voxel, affine, grid_shape
        See :func:`plot_volume_map`.
    masks : sequence of (bool array or None), optional
        Per row, True leaves a voxel unpainted.
    %(panel_style)s
        The rows make a figure of their own: ``axes`` is not taken.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_volume_panels([r_a, r_b], voxel=run.voxel.values,
    ...     affine=run.attrs["affine"], grid_shape=run.attrs["grid_shape"])  # doctest: +SKIP
    """
    n_rows = len(values_list)
    if n_rows == 0:
        raise InputError("plot_volume_panels needs at least one vector of voxel values")
    panel_style = PanelStyle(**style)
    if panel_style.axes is not None:
        raise InputError("plot_volume_panels makes a figure of its own rows: axes is not taken")
    shown = masked_rows(values_list, masks, panel_style.titles)
    shared = panel_style.scale(shown) if panel_style.shared_scale else None
    top = 0.5 if panel_style.suptitle else 0.0
    figure = new_figure(12.0, 3.0 * n_rows + top)
    row_height = 3.0 / (3.0 * n_rows + top)
    for row, values in enumerate(shown):
        axes = figure.add_axes(
            (0.0, 1.0 - top / (3.0 * n_rows + top) - (row + 1) * row_height, 1.0, row_height * 0.9)
        )
        _draw_volume(
            axes,
            volume_image(values, voxel=voxel, affine=affine, grid_shape=grid_shape),
            shared or panel_style.scale(values),
            display="stat",
            title=None if panel_style.titles is None else panel_style.titles[row],
            threshold=None,
            colorbar_label=panel_style.colorbar_label,
        )
    if panel_style.suptitle:
        figure.suptitle(panel_style.suptitle)
    return panel_style.save(figure)
