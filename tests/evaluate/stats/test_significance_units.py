"""The permutation test scores the very predictions that gave the run's r, whatever the
BOLD's units: raw scanner values (mean ~1000, sd ~2) with alphas up to 1e8 used to leave a
float32 prediction in BOLD units with a handful of distinct values, and another r."""

from __future__ import annotations

import numpy as np
import pytest

from featstore.evaluate.encoding.pipeline import encode
from featstore.evaluate.encoding.scoring import pearson_by_column
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.runs.grid import run_grid
from featstore.evaluate.runs.significance import run_significance
from featstore.store import open_group, write_group
from tests.plot.synthetic import make_grid_store

WIDE_ALPHAS = (1.0, 1e2, 1e4, 1e6, 1e8)


@pytest.fixture(scope="module")
def scanner_units_store(tmp_path_factory):
    """The grid store with its BOLD moved to raw-scanner-like units (mean 1000, sd ~2)."""
    store = make_grid_store(tmp_path_factory.mktemp("scanner") / "sim.zarr")
    fmri = open_group(store, "fmri").load()
    bold = fmri["bold"].values.astype(np.float64)
    bold = (bold - bold.mean(axis=1, keepdims=True)) / bold.std(axis=1, keepdims=True)
    fmri["bold"] = (fmri["bold"].dims, (1000.0 + 2.0 * bold).astype(np.float32))
    write_group(store, "fmri", fmri, overwrite=True)
    run_grid(
        store,
        models=[("wavlm", ["tr2"]), ("gpt2", None)],
        fusions=[(("gpt2", None), ("wavlm", ["tr2"]))],
        layers=[1, 2],
        settings=EncodingSettings(pca=8, alphas=WIDE_ALPHAS, cv=3),
        run_id="raw",
    )
    return store


def test_significance_r_equals_the_runs_r_for_every_config(scanner_units_store):
    results = open_group(scanner_units_store, "results/raw").load()
    # the point of the data: many fits at alpha 1e8, where float32 BOLD units fail
    assert (results["alpha"] == WIDE_ALPHAS[-1]).mean() > 0.2
    stats = run_significance(scanner_units_store, "raw", n_perm=50, block=5)
    assert list(stats["config"].values) == list(results["config"].values)
    np.testing.assert_array_equal(stats["r"].values, results["r"].values)
    assert np.isfinite(stats["p_subject"].values).all()
    # the subject-mean statistic too (what p and q are about)
    np.testing.assert_allclose(
        stats["r_mean"].values, results["r"].values.mean(axis=1), rtol=0, atol=1e-6
    )


def test_encode_returns_the_arrays_r_came_from(scanner_units_store):
    bold = open_group(scanner_units_store, "fmri")["bold"].values
    features = open_group(scanner_units_store, "features/gpt2/ctx20")["hidden"].values[1]
    settings = EncodingSettings(pca=8, alphas=WIDE_ALPHAS, cv=3)
    result = encode([features], bold, settings, return_predictions=True)
    n_subjects, n_test, n_rois = bold.shape[0], len(result.test_index), bold.shape[2]
    assert result.predictions.shape == result.observed.shape == (n_subjects, n_test, n_rois)
    assert result.predictions.dtype == np.float32
    for subject in range(n_subjects):
        np.testing.assert_array_equal(
            pearson_by_column(result.observed[subject], result.predictions[subject]),
            result.r[subject],
        )
    # standardised test BOLD maps back to the store's values
    observed = (
        result.observed.astype(np.float64) * result.bold_scale[:, None] + result.bold_mean[:, None]
    )
    np.testing.assert_allclose(observed, bold[:, result.test_index], rtol=0, atol=1e-3)
    in_units = result.predictions_in_bold_units()
    assert in_units.dtype == np.float64
    np.testing.assert_allclose(
        np.stack(
            [pearson_by_column(bold[s, result.test_index], in_units[s]) for s in range(n_subjects)]
        ),
        result.r,
        atol=1e-5,
    )
