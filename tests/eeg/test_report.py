"""The HTML report's EEG section: TRF topographies, layer × time maps, rank agreement."""

from __future__ import annotations

import re

import numpy as np
import xarray as xr
import zarr
from scipy.stats import rankdata
from typer.testing import CliRunner

from featstore.cli.evaluate_main import app
from featstore.report.html import build_report

METRICS = "cka-linear,rsa-pearson"


def run(store, *args):
    result = CliRunner().invoke(app, [*args, "-s", str(store), "--n-perm", "5", "--step", "100"])
    assert result.exit_code == 0, result.output


def kendalls_w(table: np.ndarray) -> float:
    """Closed form without ties: W = 12 S / (m² (n³ − n))."""
    m, n = table.shape
    totals = np.apply_along_axis(rankdata, 1, table).sum(axis=0)
    return 12 * ((totals - totals.mean()) ** 2).sum() / (m**2 * (n**3 - n))


def test_report_shows_topomaps_heatmaps_and_the_rank_agreement(eeg_store, tmp_path):
    model = ["-m", "planted:ctx8@0,1,2"]
    trf = CliRunner().invoke(app, ["trf", "-s", str(eeg_store), *model, "--pca", "3", "--run", "t"])
    assert trf.exit_code == 0, trf.output
    run(eeg_store, "similarity-eeg", *model, "--metrics", METRICS, "--run", "s1")
    run(eeg_store, "similarity-eeg", "-m", "planted:ctx8@1,2", "--metrics", METRICS, "--run", "s2")
    # text from a store reaches the page escaped
    zarr.open_group(str(eeg_store), path="results/s2", mode="r+").attrs["note"] = "<b>x</b>"

    page = build_report(eeg_store, tmp_path / "out", embed=True).read_text(encoding="utf-8")

    assert "EEG: temporal response functions" in page
    assert len(re.findall(r'alt="TRF r topography t layer \d"', page)) == 3
    for metric in METRICS.split(","):
        assert f'alt="{metric} layer by time s1"' in page
        assert f'alt="{metric} layer by time s2"' in page
    s1 = xr.open_zarr(eeg_store, group="results/s1", consolidated=False).load()
    peaks = s1["score_mean"].max("time").values
    assert f"Kendall's W = {kendalls_w(peaks):.3f}" in page
    assert "Do the metrics rank the models alike?" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
