"""End to end on a real grid: evaluate grid → significance (predictions recomputed from the
store) → ceiling → report; the planted ROIs come out significant, the noise ROIs do not."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from featstore.cli.evaluate_main import app
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.roi_groups import BUILTIN_ROI_GROUPS, roi_group_indices
from featstore.evaluate.runs.grid import run_grid
from featstore.evaluate.runs.significance import load_stats
from featstore.report.html import build_report
from featstore.store import open_group
from tests.plot.synthetic import make_grid_store


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    store = make_grid_store(tmp_path_factory.mktemp("grid") / "sim.zarr")
    run_grid(
        store,
        models=[("wavlm", ["tr2"]), ("gpt2", None)],
        fusions=[(("gpt2", None), ("wavlm", ["tr2"]))],
        layers=[1, 2, 3],
        settings=EncodingSettings(pca=8, alphas=(1.0, 100.0, 10000.0), cv=3),
        run_id="sim",
    )
    return store


def _group_mask(results, group):
    mask = np.zeros(results.sizes["roi"], dtype=bool)
    names, hemis = results["roi_name"].values, results["hemisphere"].values
    mask[roi_group_indices(names, hemis, BUILTIN_ROI_GROUPS[group])] = True
    return mask


def test_significance_of_a_real_grid_finds_the_planted_rois(grid_run, tmp_path):
    configs = ["wavlm/tr2/layer2", "gpt2/ctx20/layer3", "gpt2/ctx20+wavlm/tr2/3x2"]
    args = [
        "significance",
        "--store",
        str(grid_run),
        "--run",
        "sim",
        "--block",
        "5",
        "--csv",
        str(tmp_path / "p.csv"),
    ]
    for config in configs:
        args += ["--config", config]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    stats = load_stats(grid_run, "sim")
    results = open_group(grid_run, "results/sim").load()
    for config in configs:  # the recomputed predictions give the run's r
        np.testing.assert_array_equal(
            stats["r"].sel(config=config), results["r"].sel(config=config)
        )
    auditory, frontal = _group_mask(results, "auditory"), _group_mask(results, "inferior-frontal")
    q_audio = stats["q"].sel(config="wavlm/tr2/layer2").values
    q_text = stats["q"].sel(config="gpt2/ctx20/layer3").values
    assert np.all(q_audio[auditory] < 0.05) and np.all(q_text[frontal] < 0.05)
    assert np.mean(q_audio[~auditory] < 0.05) < 0.02
    assert np.mean(q_text[~frontal] < 0.05) < 0.02


def test_ceiling_and_report_of_a_real_grid(grid_run, tmp_path):
    result = CliRunner().invoke(app, ["ceiling", "--store", str(grid_run), "--run", "sim"])
    assert result.exit_code == 0, result.output
    ceiling = open_group(grid_run, "fmri/noise_ceiling")["ceiling"].values
    results = open_group(grid_run, "results/sim")
    planted = _group_mask(results, "auditory") | _group_mask(results, "inferior-frontal")
    assert ceiling[planted].min() > np.nanmax(ceiling[~planted])
    page = build_report(grid_run, tmp_path / "report", brain_maps=False).read_text("utf-8")
    assert "wavlm/tr2/layer2" in page and "gpt2/ctx20+wavlm/tr2" in page
    assert ">Fusion<" in page and "r / ceiling" in page
