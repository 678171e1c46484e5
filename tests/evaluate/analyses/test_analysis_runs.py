"""Results groups of the analyses: kept apart from encoding runs, validated, resolved inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from featstore import store as fs
from featstore.errors import GroupExistsError, InputError
from featstore.evaluate.analyses import runner as ar
from featstore.evaluate.runs.configs import StoreCatalog
from featstore.evaluate.runs.results import complete_runs

from .conftest import AUDITORY, LANGUAGE, ROI_NAMES


def _toy(kind: str) -> xr.Dataset:
    variables = {
        name: (dims, np.zeros([2] * len(dims), np.float32))
        for name, dims in fs._schema.ANALYSIS_VARS[kind].items()
    }
    return xr.Dataset(variables, attrs={"settings": {}, "features": {}, "fmri": {}, "request": {}})


def test_analysis_groups_are_not_encoding_runs_and_validate(analyses_store):
    for kind in ar.ANALYSES:
        run_id = ar.write_analysis(analyses_store, kind, _toy(kind), run_id=None, overwrite=False)
        assert run_id.startswith(f"{kind}-")
        assert fs.group_attrs(analyses_store, f"results/{run_id}")["analysis"] == kind
    assert complete_runs(analyses_store) == []
    assert sorted(r.split("-")[0] for r in ar.analysis_runs(analyses_store)) == sorted(ar.ANALYSES)
    assert len(ar.analysis_runs(analyses_store, "rsa")) == 1
    assert fs.validate(analyses_store) == []
    broken = _toy("lowlevel").drop_vars("q")
    ar.write_analysis(analyses_store, "lowlevel", broken, run_id="broken", overwrite=False)
    problems = [str(p) for p in fs.validate(analyses_store)]
    assert problems == ["results/broken: q: variable missing"]


def test_write_refuses_an_existing_id_unless_overwrite(analyses_store):
    ar.write_analysis(analyses_store, "rsa", _toy("rsa"), run_id="mine", overwrite=False)
    with pytest.raises(GroupExistsError, match="results/mine already exists"):
        ar.write_analysis(analyses_store, "rsa", _toy("rsa"), run_id="mine", overwrite=False)
    with pytest.raises(GroupExistsError, match="`overwrite`"):
        ar.check_run_id(analyses_store, "mine", overwrite=False)
    ar.write_analysis(
        analyses_store, "similarity", _toy("similarity"), run_id="mine", overwrite=True
    )
    assert ar.open_analysis(analyses_store, "mine").attrs["analysis"] == "similarity"
    with pytest.raises(InputError, match="no complete rsa analysis 'mine'"):
        ar.open_analysis(analyses_store, "mine", "rsa")


def test_feature_layers_resolve_with_or_without_window_and_layer(analyses_store):
    catalog = StoreCatalog(analyses_store)
    spectral = ar.resolve_feature_layer(catalog, "spectral")
    assert (spectral.key, spectral.window, spectral.layer) == ("spectral", "tr1", 0)
    wavlm = ar.resolve_feature_layer(catalog, "wavlm/tr2/layer1")
    assert (wavlm.key, wavlm.window, wavlm.layer) == ("microsoft--wavlm-base-plus", "tr2", 1)
    assert ar.resolve_feature_layer(catalog, "gpt2/3").layer == 3
    with pytest.raises(InputError, match=r"has 5 layers; say which one, e\.g\. gpt2/ctx20/4"):
        ar.resolve_feature_layer(catalog, "gpt2")
    with pytest.raises(InputError, match="no feature set for model 'bert'"):
        ar.resolve_feature_layer(catalog, "bert")


def test_roi_groups_resolve_on_the_data_or_are_named_errors(tmp_path):
    hemis = ["L"] * len(ROI_NAMES)
    groups = ar.select_roi_groups(ROI_NAMES, hemis)
    assert list(groups) == ["auditory", "late-language"]
    np.testing.assert_array_equal(groups["late-language"], np.arange(6, 6 + len(LANGUAGE)))
    assert list(ar.select_roi_groups(ROI_NAMES, hemis, ["auditory"])) == ["auditory"]
    with pytest.raises(InputError, match="'inferior-frontal': 44, 45, IFJa, IFSp match no ROI"):
        ar.select_roi_groups(ROI_NAMES, hemis, ["inferior-frontal"])
    with pytest.raises(InputError, match="ROI group 'visual' is not defined"):
        ar.select_roi_groups(ROI_NAMES, hemis, ["visual"])
    custom = tmp_path / "groups.json"
    custom.write_text(json.dumps({"visual": ["V1", "V2", "V3"]}))
    assert list(ar.select_roi_groups(ROI_NAMES, hemis, ["visual"], custom)) == ["visual"]
    assert ar.select_roi_groups(["x", "y"], ["", ""], required=False) == {}
    with pytest.raises(InputError, match="no ROI group matches"):
        ar.select_roi_groups(["x", "y"], ["", ""])
    assert ar.group_members(ROI_NAMES, hemis, {"a": np.array([0, 1])}) == {
        "a": [f"L_{AUDITORY[0]}", f"L_{AUDITORY[1]}"]
    }
    assert ar.split_names(["a,b", " c ", ""]) == ["a", "b", "c"]
