"""Vertex maps (fsaverage5, fs_LR 32k, meshes from a folder) and volume maps (MNI152)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from matplotlib.image import imread

from featstore.errors import InputError
from featstore.plot import surface
from featstore.plot.surface import load_mesh, plot_vertex_map, vertex_maps
from featstore.plot.volume import plot_volume_map, volume_image
from tests.plot import vertex_synthetic as vs


def _colored_pixels(path) -> int:
    """Pixels clearly off the gray axis: painted data, not shading or background."""
    image = imread(path)[..., :3]
    return int((image.max(axis=2) - image.min(axis=2) > 0.15).sum())


def test_fsaverage5_map_paints_the_planted_parcel(tmp_path):
    hemis, vertex = vs.fsaverage5_targets()
    values = np.where(vs.parcel_of(vertex) == 1, 0.4, 0.0)
    out = tmp_path / "fs5.png"
    figure = plot_vertex_map(
        values, vertex=vertex, hemispheres=hemis, space="fsaverage5", title="fs5", output_file=out
    )
    assert [ax.get_label() for ax in figure.axes[:4]] == [
        "left lateral",
        "left medial",
        "right medial",
        "right lateral",
    ]
    assert out.stat().st_size > 20_000
    assert _colored_pixels(out) > 2_000


def test_fs_lr_map(tmp_path):
    vertex = np.arange(32_492)
    hemis = np.array(["L"] * vertex.size)
    out = tmp_path / "fslr.png"
    plot_vertex_map(
        np.linspace(-0.3, 0.3, vertex.size),
        vertex=vertex,
        hemispheres=hemis,
        space="fs_LR_32k",
        output_file=out,
    )
    assert _colored_pixels(out) > 2_000


def test_vertex_maps_place_values_by_vertex_and_leave_the_rest_nan():
    maps = vertex_maps(np.array([1.0, 2.0, 3.0]), np.array([4, 0, 4]), ["L", "R", "R"], 5)
    np.testing.assert_array_equal(maps["left"], [np.nan, np.nan, np.nan, np.nan, 1.0])
    np.testing.assert_array_equal(maps["right"], [2.0, np.nan, np.nan, np.nan, 3.0])
    with pytest.raises(InputError, match="vertex 7 of hemisphere L is outside the mesh of 5"):
        vertex_maps(np.array([1.0]), np.array([7]), ["L"], 5)


def test_mesh_from_a_freesurfer_folder(tmp_path):
    fs5 = load_mesh("fsaverage5")
    (tmp_path / "surf").mkdir()
    for short, hemi in (("lh", fs5.left), ("rh", fs5.right)):
        nib.freesurfer.write_geometry(
            tmp_path / "surf" / f"{short}.inflated", hemi.coords, hemi.faces
        )
        nib.freesurfer.write_morph_data(tmp_path / "surf" / f"{short}.sulc", hemi.sulc)
    mesh = load_mesh("fsaverage5", str(tmp_path))
    np.testing.assert_allclose(mesh.right.coords, fs5.right.coords, rtol=1e-6)
    with pytest.raises(
        InputError, match=r"fsaverage6 mesh in .* has 10242 vertices; fsaverage6 has 40962"
    ):
        load_mesh("fsaverage6", str(tmp_path))


def test_fsaverage6_without_a_mesh_says_what_to_pass(tmp_path, monkeypatch):
    monkeypatch.setenv("NILEARN_DATA", str(tmp_path))
    monkeypatch.setenv("NILEARN_SHARED_DATA", str(tmp_path))
    load_mesh.cache_clear()
    with pytest.raises(InputError, match=r"no fsaverage6 mesh here: pass mesh_dir=DIR"):
        surface.load_mesh("fsaverage6")
    with pytest.raises(InputError, match="space 'MNI305': no surface mesh"):
        surface.load_mesh("MNI305")


def test_volume_map_on_the_mni_template(tmp_path):
    shape = (20, 24, 20)
    affine = [[8.0, 0, 0, -78], [0, 8.0, 0, -112], [0, 0, 8.0, -70], [0, 0, 0, 1]]
    voxel = np.arange(0, 20 * 24 * 20, 7)
    ijk = np.stack(np.unravel_index(voxel, shape), axis=1)
    values = np.where(ijk[:, 0] < 10, 0.3, 0.0)  # the left half of the box
    image = volume_image(values, voxel=voxel, affine=affine, grid_shape=shape)
    assert image.shape == shape
    assert image.get_fdata()[tuple(ijk[1])] == pytest.approx(values[1])
    out = tmp_path / "vol.png"
    plot_volume_map(values, voxel=voxel, affine=affine, grid_shape=shape, output_file=out)
    assert _colored_pixels(out) > 1_000
    with pytest.raises(InputError, match="voxel 9600 is outside the grid"):
        volume_image([1.0], voxel=[9600], affine=affine, grid_shape=shape)


def test_vertex_and_volume_panels_refuse_a_title_or_mask_count_that_is_not_one_per_row():
    from featstore.plot.surface import plot_vertex_panels
    from featstore.plot.volume import plot_volume_panels

    rows = [np.zeros(3), np.ones(3)]
    with pytest.raises(InputError, match="3 titles for 2"):
        plot_vertex_panels(
            rows, vertex=np.arange(3), hemispheres=["L"] * 3, space="no-such", titles="abc"
        )
    with pytest.raises(InputError, match="1 masks for 2"):
        plot_volume_panels(
            rows, voxel=np.arange(3), affine=np.eye(4), grid_shape=(1, 2, 3), masks=[None]
        )


def test_volume_panels_share_one_scale_or_get_one_each(monkeypatch):
    from featstore.plot import volume

    scales = []
    monkeypatch.setattr(
        volume, "_draw_volume", lambda axes, image, scale, **_: scales.append(scale)
    )
    rows = [np.array([0.1, 0.2]), np.array([0.1, 0.4])]
    grid = {"voxel": np.arange(2), "affine": np.eye(4), "grid_shape": (1, 1, 2)}
    volume.plot_volume_panels(rows, **grid)
    volume.plot_volume_panels(rows, shared_scale=False, **grid)
    assert [scale.vmax for scale in scales] == pytest.approx([0.4, 0.4, 0.2, 0.4])
    with pytest.raises(InputError, match="axes is not taken"):
        volume.plot_volume_panels(rows, axes=object(), **grid)
