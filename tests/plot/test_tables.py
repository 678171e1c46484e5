"""Result tables against plain numpy on the synthetic results."""

from __future__ import annotations

import numpy as np
import pytest

from featstore import store as fs
from featstore.errors import InputError
from featstore.evaluate.roi_groups import BUILTIN_ROI_GROUPS, roi_group_indices
from featstore.evaluate.runs import tables
from tests.plot.synthetic import SETTINGS, results_dataset


def test_config_table_is_the_per_subject_mean_over_rois(results):
    table = tables.config_table(results)
    scores = results["r"].values.astype(float).mean(axis=2)  # (config, subject)
    np.testing.assert_allclose(table["mean"], scores.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(table["std"], scores.std(axis=1), rtol=1e-5)
    np.testing.assert_allclose(table["median"], np.median(scores, axis=1), rtol=1e-6)
    np.testing.assert_allclose(table["max"], scores.max(axis=1), rtol=1e-6)
    row = table.set_index("config").loc["whisper-base/tr6/layer4"]
    assert row["depth"] == pytest.approx(4 / 6) and row["family"] == "whisper-base"
    assert table.set_index("config").loc["gpt2/ctx200+wavlm/tr6/9x9", "family"] == "gpt2+wavlm"


def test_best_configs_pick_the_highest_mean_per_group(results):
    table = tables.config_table(results)
    best = tables.best_configs(table, by=("family", "window"))
    assert len(best) == 6  # gpt2, roberta, wavlm tr1, wavlm tr6, whisper, fusion
    for _, row in best.iterrows():
        same = table[(table["family"] == row["family"]) & (table["window"] == row["window"])]
        assert row["mean"] == same["mean"].max()
    assert list(best["kind"]) == sorted(
        best["kind"], key=["text", "audio", "multimodal", "lowlevel", "fusion"].index
    )


def test_ranked_roi_table_names_sorting_and_ceiling(results):
    ceiling = results[["roi_name", "hemisphere"]].assign(
        ceiling=("roi", np.linspace(0.05, 0.6, 360))
    )
    frame = tables.ranked_roi_table(results, "wavlm/tr6/layer9", ceiling=ceiling)
    assert frame["mean_r"].is_monotonic_decreasing
    top = frame.iloc[0]
    assert top["label"] == f"{top['hemisphere']}_{top['roi_name']}"
    r = results["r"].sel(config="wavlm/tr6/layer9").values[:, int(top["roi"])]
    assert top["mean_r"] == pytest.approx(r.mean(), rel=1e-5)
    low = frame[frame["ceiling"] < 0.1]
    assert low["normalized_r"].isna().all() and frame["normalized_r"].notna().any()
    with pytest.raises(InputError, match="configs of 'wavlm'"):
        tables.ranked_roi_table(results, "wavlm/tr6/layer7")


def test_roi_group_table_and_fusion_grid(results):
    configs = ["gpt2/ctx200/layer9", "wavlm/tr6/layer9"]
    frame = tables.roi_group_table(results, configs, BUILTIN_ROI_GROUPS)
    index = roi_group_indices(
        results["roi_name"].values,
        results["hemisphere"].values,
        BUILTIN_ROI_GROUPS["late-language"],
    )
    row = frame[(frame["group"] == "late-language") & (frame["config"] == configs[1])].iloc[0]
    scores = results["r"].sel(config=configs[1]).values[:, index].mean(axis=1)
    assert row["mean"] == pytest.approx(scores.mean(), rel=1e-5) and row["n_rois"] == 10
    ceiling = results[["roi_name", "hemisphere"]].assign(ceiling=("roi", np.full(360, 0.05)))
    below = tables.roi_group_table(results, configs, BUILTIN_ROI_GROUPS, ceiling=ceiling)
    assert below["mean_normalized"].isna().all()  # every ROI under the ceiling threshold
    pair, grid = tables.fusion_grid(results)
    assert pair == "gpt2/ctx200+wavlm/tr6"
    assert list(grid.index) == [4, 9] and list(grid.columns) == [6, 9]
    table = tables.config_table(results).set_index("config")
    assert grid.loc[9, 6] == pytest.approx(table.loc["gpt2/ctx200+wavlm/tr6/9x6", "mean"])
    with pytest.raises(InputError, match="pairs: gpt2/ctx200"):
        tables.fusion_grid(results, "bert/ctx200+hubert/tr6")


def test_runs_with_the_same_settings_are_combined_newest_first(results_store):
    newer = results_dataset(seed=5).isel(config=slice(0, 3))
    newer.attrs = {**newer.attrs, "created": "2999-01-01T00:00:00+00:00"}
    fs.write_group(results_store, "results/grid-later", newer[["r", "alpha"]])
    other = results_dataset(seed=6).isel(config=slice(0, 2))
    other.attrs = {**other.attrs, "settings": {**SETTINGS, "pca": 0}, "created": "2998"}
    fs.write_group(results_store, "results/grid-other", other)
    sets = tables.load_result_sets(results_store)
    assert [s.runs for s in sets] == [["grid-test", "grid-later"], ["grid-other"]]
    combined = sets[0].results
    assert combined.sizes["config"] == 29
    first = str(newer["config"].values[0])
    assert str(combined["run"].sel(config=first).values) == "grid-later"
    np.testing.assert_allclose(combined["r"].sel(config=first), newer["r"].sel(config=first))
    fusion = "gpt2/ctx200+wavlm/tr6/9x9"
    assert np.isfinite(combined["shared"].sel(config=fusion)).all()
    assert np.isnan(combined["shared"].sel(config=first)).all()  # filled for the newer run
    with pytest.raises(InputError, match="no complete run 'nope'"):
        tables.load_result_sets(results_store, ["nope"])
