"""Significance stored beside a run; paired comparisons of configs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from featstore import store as fs
from featstore.errors import InputError
from featstore.evaluate.metrics.stats import fdr_bh, paired_wilcoxon, permutation_test
from featstore.evaluate.roi_groups import BUILTIN_ROI_GROUPS, roi_group_indices
from featstore.evaluate.runs.significance import (
    compare_configs,
    export_stats_csv,
    load_stats,
    run_significance,
    significance_mask,
    stats_group,
)
from tests.plot.synthetic import N_SUBJECTS, planted_roi_mask

N_TEST = 31


def fake_predictor(seed: int = 0):
    """Predictions that carry signal in the planted ROIs only (and differ per config)."""
    planted = planted_roi_mask()

    def predict(config: str):
        rng = np.random.default_rng([seed, len(config)])
        observed = rng.normal(size=(N_SUBJECTS, N_TEST, planted.size))
        noise = rng.normal(size=observed.shape)
        predictions = np.where(planted, observed + 0.5 * noise, noise)
        return predictions, observed

    return predict


def test_run_significance_stores_what_permutation_test_gives(results_store):
    predict = fake_predictor()
    config = "wavlm/tr6/layer9"
    written = run_significance(
        results_store, "grid-test", [config], n_perm=200, block=5, seed=2, predict=predict
    )
    stored = fs.open_group(results_store, stats_group("grid-test")).load()
    expected = permutation_test(*predict(config), n_perm=200, block=5, seed=2)
    tested = stored.sel(config=config)
    np.testing.assert_allclose(tested["p"].values, expected.p_mean)
    np.testing.assert_allclose(tested["q"].values, fdr_bh(expected.p_mean))
    np.testing.assert_allclose(tested["p_subject"].values, expected.p_subject)
    np.testing.assert_allclose(tested["r_mean"].values, expected.r_mean, atol=1e-6)
    assert int(tested["n_perm"]) == 200 and str(tested["perm_method"].values) == "block"
    assert list(stored["roi_name"].values[:3]) == list(written["roi_name"].values[:3])
    planted = planted_roi_mask()
    assert np.all(tested["q"].values[planted] < 0.05)
    assert np.mean(tested["q"].values[~planted] < 0.05) < 0.02
    # the run itself is untouched and still valid
    assert fs.open_group(results_store, "results/grid-test")["r"].shape[0] == 29
    assert fs.validate(results_store) == []


def test_later_calls_add_and_replace_configs(results_store):
    predict = fake_predictor()
    run_significance(
        results_store, "grid-test", ["gpt2/ctx200/layer4"], n_perm=50, block=5, predict=predict
    )
    run_significance(
        results_store,
        "grid-test",
        ["wavlm/tr6/layer9"],
        n_perm=80,
        method="circular",
        block=4,
        predict=predict,
    )
    stats = load_stats(results_store, "grid-test")
    assert list(stats["config"].values) == ["gpt2/ctx200/layer4", "wavlm/tr6/layer9"]
    assert [int(n) for n in stats["n_perm"].values] == [50, 24]  # 31 - 2*4 + 1 shifts
    run_significance(
        results_store, "grid-test", ["gpt2/ctx200/layer4"], n_perm=70, block=5, predict=predict
    )
    stats = load_stats(results_store, "grid-test")
    assert [int(n) for n in stats["n_perm"].values] == [70, 24]
    assert load_stats(results_store, "no-such-run") is None


def test_csv_export_and_masks(results_store, tmp_path):
    stats = run_significance(
        results_store,
        "grid-test",
        ["wavlm/tr6/layer9"],
        n_perm=100,
        block=5,
        predict=fake_predictor(),
    )
    path = export_stats_csv(stats, tmp_path / "out" / "p.csv")
    table = pd.read_csv(path)
    assert list(table.columns[:4]) == ["run", "config", "roi", "label"]
    assert len(table) == 360 and table["label"].iloc[0] == "L_V1"
    np.testing.assert_array_equal(table["significant"], table["q"] < 0.05)
    mask = significance_mask(stats, "wavlm/tr6/layer9", alpha=0.05)
    np.testing.assert_array_equal(mask, ~(stats["q"].values[0] < 0.05))
    with pytest.raises(InputError, match="evaluate significance"):
        significance_mask(stats, "gpt2/ctx200/layer4", alpha=0.05)
    with pytest.raises(InputError, match="not in run"):
        run_significance(results_store, "grid-test", ["nope/tr1/layer1"], predict=fake_predictor())


def test_compare_configs_matches_paired_wilcoxon(results_store):
    results = fs.open_group(results_store, "results/grid-test").load()
    a, b = "gpt2/ctx200+wavlm/tr6/9x9", "wavlm/tr6/layer9"
    table = compare_configs(results, a, b, groups=BUILTIN_ROI_GROUPS, per_roi=True)
    r_a = results["r"].sel(config=a).values.astype(float)
    r_b = results["r"].sel(config=b).values.astype(float)
    whole = paired_wilcoxon(r_a.mean(axis=1), r_b.mean(axis=1))
    first = table.iloc[0]
    assert first["scope"] == "all ROIs" and first["n_rois"] == 360
    assert first["p"] == pytest.approx(whole.p_value)
    assert first["rank_biserial"] == pytest.approx(whole.rank_biserial)
    assert first["median_difference"] == pytest.approx(whole.median_difference)
    names, hemis = results["roi_name"].values, results["hemisphere"].values
    index = roi_group_indices(names, hemis, BUILTIN_ROI_GROUPS["auditory"])
    auditory = table[table["scope"] == "auditory"].iloc[0]
    expected = paired_wilcoxon(r_a[:, index].mean(axis=1), r_b[:, index].mean(axis=1))
    assert auditory["p"] == pytest.approx(expected.p_value)
    assert auditory["mean_a"] == pytest.approx(expected.mean_a)
    rois = table[table["n_rois"] == 1]
    assert len(rois) == 360 and rois["scope"].iloc[0] == "L_V1"
    per_roi = paired_wilcoxon(r_a, r_b)
    np.testing.assert_allclose(rois["p"], per_roi.p_value)
    np.testing.assert_allclose(rois["q"], fdr_bh(per_roi.p_value))
    with pytest.raises(InputError, match="not in the results"):
        compare_configs(results, a, "missing/tr1/layer1")
