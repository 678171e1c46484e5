"""EEG figures render headless from real results of the synthetic store."""

from __future__ import annotations

import pytest
import xarray as xr
from typer.testing import CliRunner

from featstore.cli.evaluate_main import app
from featstore.errors import InputError
from featstore.plot.eeg import plot_layer_time, plot_trf_topomap


def test_layer_time_heatmap_and_trf_topomap(eeg_store, tmp_path):
    runner = CliRunner()
    args = ["-s", str(eeg_store), "-m", "planted:ctx8@0,1"]
    assert runner.invoke(app, ["trf", *args, "--pca", "3", "--run", "t"]).exit_code == 0
    result = runner.invoke(
        app,
        [
            "similarity-eeg",
            *args,
            "--metrics",
            "cka-linear",
            "--n-perm",
            "5",
            "--run",
            "s",
            "--step",
            "100",
        ],
    )
    assert result.exit_code == 0, result.output
    sim = xr.open_zarr(eeg_store, group="results/s", consolidated=False).load()
    figure = plot_layer_time(sim, "cka-linear", output_file=tmp_path / "map.png")
    assert (tmp_path / "map.png").stat().st_size > 1000 and figure.axes
    trf = xr.open_zarr(eeg_store, group="results/t", consolidated=False).load()
    plot_trf_topomap(trf, 1, output_file=tmp_path / "topo.png")
    assert (tmp_path / "topo.png").stat().st_size > 1000
    with pytest.raises(InputError, match="not in this result"):
        plot_layer_time(sim, "rsa-pearson")
