"""The report of vertex, voxel and cross-story runs: map kind, per-story table, parcels."""

from __future__ import annotations

import numpy as np
import xarray as xr

from featstore.report.html import build_report
from featstore.report.maps import map_kind, parcel_view
from tests.plot import vertex_synthetic as vs
from tests.plot.synthetic import results_dataset


def test_map_kind_follows_target_kind_and_space(tmp_path, monkeypatch):
    monkeypatch.setenv("NILEARN_DATA", str(tmp_path))  # no fsaverage6 in nilearn's cache
    monkeypatch.setenv("NILEARN_SHARED_DATA", str(tmp_path))
    assert "HCP-MMP1.0" in map_kind(results_dataset()).views
    hemis, vertex = vs.fsaverage5_targets()
    vertex_run = vs.vertex_results(hemis, vertex)
    assert "fsaverage5 inflated surface" in map_kind(vertex_run).views
    assert "fsLR32k" in map_kind(vertex_run.assign_attrs(space="fs_LR_32k")).views
    assert map_kind(vertex_run.assign_attrs(space="fsaverage6")) is None  # no mesh here
    voxels = xr.Dataset(
        coords={"roi": np.arange(3), "voxel": ("roi", [0, 5, 9])},
        attrs={"target_kind": "voxel", "affine": np.eye(4).tolist(), "grid_shape": [2, 3, 4]},
    )
    assert "MNI152" in map_kind(voxels).views
    assert map_kind(voxels.assign_attrs(affine=None)) is None
    custom = results_dataset().assign_coords(roi_name=("roi", [f"p{i}" for i in range(360)]))
    assert map_kind(custom) is None


def test_parcel_view_only_for_named_vertex_targets():
    hemis, vertex = vs.fsaverage5_targets()
    assert parcel_view(vs.vertex_results(hemis, vertex)) is None
    assert parcel_view(results_dataset()) is None
    view = parcel_view(vs.vertex_results(hemis, vertex, names=True))
    assert view.results.sizes["roi"] == 10


def test_report_of_a_cross_story_vertex_run(tmp_path):
    store = vs.make_collection(tmp_path / "narr.zarr")
    index = build_report(store, tmp_path / "report", brain_maps=False)
    html = index.read_text()
    assert "Test stories" in html
    assert "(3)" in html  # tunnel: the subject lacking it is left out
    assert "averaged into the parcels of the targets&#39; roi_name" in html
    assert "L_auditory" in html
    assert "r / ceiling" in html  # the pooled ceiling of the test stories
