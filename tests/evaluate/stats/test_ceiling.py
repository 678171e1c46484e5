"""Noise ceiling: leave-one-subject-out ISC against a loop; storage; split."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from featstore import store as fs
from featstore.errors import InputError
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.encoding.split import chronological_split
from featstore.evaluate.metrics.noise_ceiling import loso_isc, normalized_r
from featstore.evaluate.runs.ceiling import (
    NOISE_CEILING_GROUP,
    noise_ceiling_for,
    run_held_out_trs,
    settings_held_out_trs,
    write_noise_ceiling,
)
from featstore.evaluate.runs.results import run_settings
from tests.plot.synthetic import N_TR, SETTINGS, planted_roi_mask


def test_loso_isc_matches_a_loop():
    rng = np.random.default_rng(0)
    bold = rng.normal(size=(4, 23, 6)) + rng.normal(size=(1, 23, 6))
    expected = np.empty((4, 6))
    for s in range(4):
        others = np.delete(bold, s, axis=0).mean(axis=0)
        for v in range(6):
            expected[s, v] = np.corrcoef(bold[s, :, v], others[:, v])[0, 1]
    np.testing.assert_allclose(loso_isc(bold), expected, atol=1e-12)
    with pytest.raises(InputError, match="at least 3 subjects"):
        loso_isc(bold[:2])


def test_normalized_r_masks_low_ceilings():
    r = np.array([[0.1, 0.2, 0.05], [0.3, 0.0, 0.1]])
    ceiling = np.array([0.5, 0.05, 0.2])
    out = normalized_r(r, ceiling, threshold=0.1)
    np.testing.assert_allclose(out[:, [0, 2]], r[:, [0, 2]] / ceiling[[0, 2]])
    assert np.all(np.isnan(out[:, 1]))
    as_xr = normalized_r(xr.DataArray(r, dims=("s", "roi")), xr.DataArray(ceiling, dims="roi"))
    np.testing.assert_allclose(as_xr.values, out)


def test_test_trs_are_the_evaluators():
    # 83 TRs, trim 4 (largest delay): 75 kept (4..78), 25 % → ceil(18.75) = 19: 60..78
    from_settings = run_held_out_trs({"settings": SETTINGS}, N_TR)
    np.testing.assert_array_equal(from_settings, np.arange(60, 79))
    from_range = run_held_out_trs({"test_range": [50, 79, 29]}, N_TR)
    np.testing.assert_array_equal(from_range, np.arange(50, 79))
    settings = EncodingSettings(test_frac=0.2, trim=2)
    np.testing.assert_array_equal(
        settings_held_out_trs(settings, 37),
        chronological_split(37, trim=2, test_frac=0.2, gap=0)[1],
    )
    with pytest.raises(InputError, match="neither"):
        run_held_out_trs({}, N_TR)
    # a grid run's settings attr also records the grid's own options
    grid_attrs = {"settings": {**SETTINGS, "partition": True}}
    np.testing.assert_array_equal(run_held_out_trs(grid_attrs, N_TR), np.arange(60, 79))
    assert run_settings(grid_attrs) == EncodingSettings.from_dict(SETTINGS)


def test_write_noise_ceiling_stores_a_group_that_matches_the_estimator(results_store):
    ds = write_noise_ceiling(results_store, run_id="grid-test")
    stored = fs.open_group(results_store, NOISE_CEILING_GROUP).load()
    bold = fs.open_group(results_store, "fmri")["bold"].values[:, 60:79]
    expected = loso_isc(bold)
    np.testing.assert_allclose(stored["per_subject"].values, expected, atol=1e-6)
    np.testing.assert_allclose(stored["ceiling"].values, expected.mean(axis=0), atol=1e-6)
    assert stored.attrs["estimator"] == "loso-isc"
    assert (stored.attrs["test_start"], stored.attrs["test_stop"]) == (60, 79)
    assert list(stored["roi_name"].values[:2]) == list(ds["roi_name"].values[:2])
    # the planted (shared) ROIs have a clearly higher ceiling than the others
    planted = planted_roi_mask()
    assert (
        stored["ceiling"].values[planted].mean() > 0.4 > stored["ceiling"].values[~planted].mean()
    )
    # writing a subgroup keeps fmri readable and the store valid
    assert fs.open_group(results_store, "fmri")["bold"].shape == (4, N_TR, 360)
    assert fs.validate(results_store) == []


def test_noise_ceiling_for_reuses_the_stored_group_only_for_the_same_trs(results_store):
    write_noise_ceiling(results_store, settings=EncodingSettings(test_frac=0.25))
    same = noise_ceiling_for(results_store, np.arange(60, 79))
    assert same.attrs["source"]["settings"]["test_frac"] == 0.25
    other = noise_ceiling_for(results_store, np.arange(40, 79))
    assert other.attrs["n_test"] == 39 and other.attrs["source"] == {}
