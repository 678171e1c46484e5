"""``evaluate ceiling``, ``significance``, ``plot roi-top`` and ``plot brain`` on a store of
stories with vertex targets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from featstore import store as fs
from featstore.cli.evaluate_main import app
from featstore.evaluate.runs.ceiling import COLLECTION_CEILING_GROUP
from featstore.store.stories import story_store
from tests.plot import vertex_synthetic as vs

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def collection(tmp_path):
    return vs.make_collection(tmp_path / "narr.zarr")


def test_ceiling_of_every_story_then_of_one(collection):
    result = invoke("ceiling", "--store", collection, "--trim", 2)
    assert result.exit_code == 0, result.output
    assert "noise_ceiling written: 3 stories, 4 subjects" in result.output
    pooled = fs.open_group(collection, COLLECTION_CEILING_GROUP)
    assert pooled.attrs["stories"] == ["pieman", "train1", "tunnel"]
    assert pooled.attrs["trim"] == 2
    result = invoke("ceiling", "--store", collection, "--story", "tunnel")
    assert result.exit_code == 0, result.output
    assert "stories/tunnel/fmri/noise_ceiling written: 3 subjects" in result.output
    assert fs.group_exists(story_store(collection, "tunnel"), "fmri/noise_ceiling")
    result = invoke("ceiling", "--store", collection, "--story", "lucy")
    assert result.exit_code == 2
    assert "no story 'lucy'" in result.output


def test_significance_and_roi_top_of_a_cross_story_run(collection, tmp_path):
    result = invoke("significance", "--store", collection, "--run", "cross-test")
    assert result.exit_code == 0, result.output
    assert "wilcoxon-subjects" in result.output
    csv = tmp_path / "top.csv"
    result = invoke(
        "plot", "roi-top", "--store", collection, "--config", "wavlm/tr1/layer1", "--csv", csv
    )
    assert result.exit_code == 0, result.output
    assert "L_auditory" in result.output
    table = pd.read_csv(csv)
    assert set(table["label"].head(2)) == {"L_auditory", "R_auditory"}
    assert {"r_pieman", "r_tunnel", "ceiling"} <= set(table.columns)
    assert np.isfinite(table["ceiling"]).all()


def test_brain_map_without_a_mesh_says_to_pass_one(collection, tmp_path, monkeypatch):
    monkeypatch.setenv("NILEARN_DATA", str(tmp_path))
    monkeypatch.setenv("NILEARN_SHARED_DATA", str(tmp_path))
    group = fs.result_group("cross-test")
    run = fs.open_group(collection, group).load()
    fs.write_group(collection, group, run.assign_attrs(space="fsaverage6"), overwrite=True)
    out = tmp_path / "map.png"
    result = invoke(
        "plot", "brain", "--store", collection, "--config", "wavlm/tr1/layer1", "--out", out
    )
    assert result.exit_code == 2
    assert "error: no fsaverage6 mesh here: pass --mesh DIR" in result.output
    assert not out.exists()


def test_stats_on_targets_without_hcp_names_keeps_to_usable_groups(collection):
    result = invoke(
        "stats", "--store", collection, "--compare", "wavlm/tr1/layer1", "gpt2/ctx8/layer1"
    )
    assert result.exit_code == 0, result.output
    assert "all ROIs" in result.output
    assert "+1.00" in result.output  # A above B in every subject


def test_stats_with_a_groups_file_on_targets_without_hcp_names(collection, tmp_path):
    groups = tmp_path / "groups.json"
    groups.write_text('{"hearing": ["auditory"], "left-language": ["L_language"]}')
    compare = ("--compare", "wavlm/tr1/layer1", "gpt2/ctx8/layer1")
    result = invoke("stats", "--store", collection, *compare, "--groups", groups)
    assert result.exit_code == 0, result.output
    assert "hearing" in result.output and "left-language" in result.output
    assert "auditory" not in result.output.replace("hearing", "")  # no built-in group
    groups.write_text('{"hearing": ["auditory", "A1"]}')
    result = invoke("stats", "--store", collection, *compare, "--groups", groups)
    assert result.exit_code == 2
    assert "ROI group 'hearing': A1 match no ROI of the data" in result.output
