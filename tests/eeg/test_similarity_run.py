"""``evaluate similarity-eeg`` on the synthetic store: the planted window and layer stand out."""

from __future__ import annotations

import numpy as np
import xarray as xr
from typer.testing import CliRunner

from featstore import store as fs
from featstore.cli.evaluate_main import app
from featstore.datasets.eeg import import_eeg
from tests.datasets.conftest import tree_hash
from tests.eeg.conftest import _story_store
from tests.eeg.synthetic import PLANTED_LAYER, write_raws


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_time_resolved_alignment_peaks_in_the_planted_window_at_the_planted_layer(eeg_store):
    result = _invoke(
        "similarity-eeg",
        "-s",
        eeg_store,
        "--model",
        "planted:ctx8",
        "--epochs",
        "-100:700",
        "--window",
        50,
        "--step",
        50,
        "--within",
        "sentence",
        "--metrics",
        "rsa-spearman,cka-linear",
        "--n-perm",
        19,
        "--cluster",
        "--run",
        "sim1",
    )
    assert result.exit_code == 0, result.output
    assert "rsa-spearman" in result.stdout and "results/sim1" in result.stdout
    ds = xr.open_zarr(eeg_store, group="results/sim1", consolidated=False).load()
    assert ds.score.dims == ("metric", "layer", "time", "subject")
    for metric in ("rsa-spearman", "cka-linear"):
        mean = ds.score_mean.sel(metric=metric)
        layer, time = np.unravel_index(int(np.argmax(mean.values)), mean.shape)
        assert int(ds.layer[layer]) == PLANTED_LAYER, (metric, mean.values)
        assert 300 <= float(ds.time[time]) <= 500, (metric, float(ds.time[time]))
        planted = ds.p.sel(metric=metric, layer=PLANTED_LAYER)
        assert float(planted.sel(time=400, method="nearest")) == 1 / 20  # beats every permutation
        assert (ds.q.sel(metric=metric, layer=0) > 0.05).all()  # the unrelated layer: chance
        baseline = ds.p_cluster.sel(metric=metric, layer=PLANTED_LAYER, time=slice(None, 100))
        assert (baseline == 1).all()
    assert fs.validate(eeg_store) == []


def test_bad_similarity_inputs_are_one_error_line(eeg_store, tmp_path):
    before = tree_hash(eeg_store)
    result = _invoke("similarity-eeg", "-s", eeg_store, "-m", "planted", "--step", 4)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "below the window step" in line, line
    result = _invoke("similarity-eeg", "-s", eeg_store, "-m", "planted", "--metrics", "nope")
    assert result.exit_code == 2 and "metric 'nope'" in result.stderr
    assert tree_hash(eeg_store) == before


def test_within_sentence_needs_punctuation(tmp_path):
    store, seconds = _story_store(tmp_path, punctuation=False)
    import_eeg(store, [str(p) for p in write_raws(tmp_path, seconds)])
    before = tree_hash(store)
    result = _invoke("similarity-eeg", "-s", store, "-m", "planted", "--within", "sentence")
    assert result.exit_code == 2 and "no punctuation" in result.stderr, result.output
    assert tree_hash(store) == before
