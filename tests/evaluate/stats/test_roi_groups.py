"""Built-in and user ROI groups resolved against a dataset's ROI names by name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from featstore.errors import InputError
from featstore.evaluate.roi_groups import (
    BUILTIN_ROI_GROUPS,
    load_roi_groups,
    roi_group_indices,
    roi_groups,
)

NAMES = ["A1", "PBelt", "44", "V1", "A1", "PBelt", "44", "V1"]
HEMIS = ["L", "L", "L", "L", "R", "R", "R", "R"]


def test_bare_names_select_both_hemispheres_and_prefixes_one():
    np.testing.assert_array_equal(roi_group_indices(NAMES, HEMIS, ["A1", "44"]), [0, 2, 4, 6])
    np.testing.assert_array_equal(roi_group_indices(NAMES, HEMIS, ["R_A1", "L_V1"]), [3, 4])


def test_unknown_names_are_all_named_in_the_error():
    with pytest.raises(InputError, match=r"'auditory': MBelt, L_RI match no ROI"):
        roi_group_indices(NAMES, HEMIS, ["A1", "MBelt", "L_RI"], group_name="auditory")


def test_builtin_groups_exist_in_the_hcp_mmp_atlas():
    from featstore.datasets.atlas import hcp_mmp_rois

    names, hemis = hcp_mmp_rois()
    for name, group in BUILTIN_ROI_GROUPS.items():
        indices = roi_group_indices(names, hemis, group, group_name=name)
        assert len(indices) == 2 * len(group)
    assert BUILTIN_ROI_GROUPS["auditory"] == ("A1", "PBelt", "MBelt", "LBelt", "RI", "A4")
    assert BUILTIN_ROI_GROUPS["middle-frontal"] == ("55b",)


def test_user_groups_from_json_and_toml_override_builtins(tmp_path):
    json_file = tmp_path / "groups.json"
    json_file.write_text(json.dumps({"auditory": ["L_A1"], "visual": ["V1"]}))
    groups = roi_groups(json_file)
    assert groups["auditory"] == ("L_A1",) and groups["visual"] == ("V1",)
    assert groups["late-language"] == BUILTIN_ROI_GROUPS["late-language"]
    toml_file = tmp_path / "groups.toml"
    toml_file.write_text('[groups]\nlanguage = ["44", "45"]\n')
    assert load_roi_groups(toml_file) == {"language": ("44", "45")}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"empty": []}))
    with pytest.raises(InputError, match="'empty' must be a non-empty list"):
        load_roi_groups(bad)
    with pytest.raises(InputError, match="does not exist"):
        load_roi_groups(tmp_path / "missing.json")
