"""``evaluate trf`` on the synthetic store: the planted lag, layer and channels come back."""

from __future__ import annotations

import numpy as np
import xarray as xr
from typer.testing import CliRunner

from featstore import store as fs
from featstore.cli.evaluate_main import app
from tests.datasets.conftest import tree_hash
from tests.eeg.synthetic import NOISE_CHANNELS, PLANTED_CHANNELS, PLANTED_LAYER


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_trf_recovers_the_planted_lag_layer_and_channels(eeg_store):
    result = _invoke(
        "trf",
        "-s",
        eeg_store,
        "--model",
        "planted:ctx8",
        "--lags",
        "-100:600",
        "--pca",
        4,
        "--alphas",
        "1e-1:1e5:7",
        "--cv",
        4,
        "--run",
        "trf1",
    )
    assert result.exit_code == 0, result.output
    assert "results/trf1" in result.stdout and "peak lag" in result.stdout
    ds = xr.open_zarr(eeg_store, group="results/trf1", consolidated=False).load()
    assert ds.attrs["analysis"] == "trf" and ds.r.dims == ("layer", "subject", "channel")
    r = ds.r.mean("subject")
    planted = r.sel(layer=PLANTED_LAYER, channel=PLANTED_CHANNELS)
    assert (planted > 0.3).all(), r.values
    assert (abs(r.sel(channel=NOISE_CHANNELS)) < 0.1).all(), r.values
    assert (r.sel(layer=0, channel=PLANTED_CHANNELS) < 0.1).all()  # the unrelated layer
    profile = ds.lag_profile.sel(layer=PLANTED_LAYER, channel=PLANTED_CHANNELS).mean("subject")
    peak = profile.idxmax("lag").values
    assert np.all((peak >= 300) & (peak <= 500)), peak
    assert fs.validate(eeg_store) == []


def test_trf_without_word_states_or_eeg_is_one_error_line(eeg_store, story):
    before = tree_hash(eeg_store)
    result = _invoke("trf", "-s", eeg_store, "--model", "planted:ctx8", "--lags", "600:-100")
    assert result.exit_code == 2 and "--lags '600:-100'" in result.stderr
    assert tree_hash(eeg_store) == before
    store_without_eeg = story[0]
    result = _invoke("trf", "-s", store_without_eeg, "--model", "planted")
    assert result.exit_code == 2 and "has no eeg group" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
