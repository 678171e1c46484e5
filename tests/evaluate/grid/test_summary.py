import shutil

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from featstore.errors import InputError
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.runs.grid import run_grid
from featstore.evaluate.runs.results import open_run
from featstore.evaluate.runs.summary import (
    ROI_COLUMNS,
    SUMMARY_COLUMNS,
    nanmean,
    roi_table,
    summary_table,
    write_roi_csv,
    write_summary_csv,
)
from tests.evaluate.grid.conftest import N_ROI, N_SUBJECTS


@pytest.fixture(scope="module")
def run_store(_template_store, tmp_path_factory):
    """A store with one run, shared by the (read-only) tests of this module."""
    store = tmp_path_factory.mktemp("summary") / "grid.zarr"
    shutil.copytree(_template_store, store)
    run_grid(
        store,
        models=[("wavlm", ["tr3"]), ("gpt2", None)],
        fusions=[(("gpt2", None), ("wavlm", ["tr3"]))],
        layers=[3, 4],
        settings=EncodingSettings(pca=6, delays=(1, 2, 3), alphas=(0.1, 10.0, 1000.0), cv=3),
        run_id="one",
    )
    return store


def test_nanmean_matches_numpy_without_warnings():
    values = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]])
    np.testing.assert_array_equal(nanmean(values, axis=1), [2.0, np.nan])
    np.testing.assert_array_equal(nanmean(values, axis=0), [1.0, np.nan, 3.0])


def test_summary_statistics_follow_the_reference_study(run_store):
    table = summary_table(run_store)
    ds = xr.open_zarr(str(run_store), group="results/one", consolidated=False)
    assert len(table) == ds.sizes["config"] == 8
    for _, row in table.iterrows():
        per_subject = ds.r.sel(config=row["config"]).values.astype(np.float64).mean(axis=1)
        assert per_subject.shape == (N_SUBJECTS,)
        np.testing.assert_allclose(row["mean"], per_subject.mean(), rtol=1e-6)
        np.testing.assert_allclose(row["std"], per_subject.std(), rtol=1e-6)
        np.testing.assert_allclose(row["median"], np.median(per_subject), rtol=1e-6)
        np.testing.assert_allclose(row["min"], per_subject.min(), rtol=1e-6)
        np.testing.assert_allclose(row["max"], per_subject.max(), rtol=1e-6)
        assert row["log"] == f"results/one/{row['config']}"
    single = table[table["config"] == "wavlm/tr3/layer3"].iloc[0]
    assert (single["model"], single["window"], single["layer"], single["kind"]) == (
        "wavlm",
        "tr3",
        3,
        "audio",
    )
    fused = table[table["config"] == "gpt2/ctx20+wavlm/tr3/4x3"].iloc[0]
    assert (fused["model"], fused["window"], fused["layer"], fused["kind"]) == (
        "gpt2+wavlm",
        "ctx20+tr3",
        "4x3",
        "fusion",
    )
    # one best layer per model and window, the planted ones
    best = table[table["best"]].set_index("model")["config"].to_dict()
    assert best["wavlm"] == "wavlm/tr3/layer3" and best["gpt2"] == "gpt2/ctx20/layer4"
    assert table["best"].sum() == 3


def test_csv_columns(run_store, tmp_path):
    table = summary_table(run_store, ["one"])
    write_summary_csv(table, tmp_path / "out" / "summary.csv")
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert list(summary.columns[:7]) == ["log", "layer", "mean", "std", "median", "min", "max"]
    assert len(summary) == 8
    rois = roi_table(open_run(run_store, "one"))
    write_roi_csv(rois, tmp_path / "roi.csv")
    roi = pd.read_csv(tmp_path / "roi.csv", keep_default_na=False)
    assert list(roi.columns) == list(ROI_COLUMNS)
    assert len(roi) == 8 * N_ROI
    block = roi[roi["config"] == "wavlm/tr3/layer3"]
    assert list(block["roi"]) == list(range(N_ROI))
    assert list(block["roi_name"]) == ["A1", "PBelt", "LBelt", "44", "45", "V1", "V2"]
    assert list(block["hemisphere"]) == ["L"] * 4 + ["R"] * 3
    ds = xr.open_zarr(str(run_store), group="results/one", consolidated=False)
    np.testing.assert_allclose(
        block["r"], ds.r.sel(config="wavlm/tr3/layer3").mean("subject").values, rtol=1e-5
    )


def test_summary_of_missing_runs(run_store):
    with pytest.raises(InputError, match=r"no complete run 'nope' in .*; complete runs: one"):
        summary_table(run_store, ["nope"])
    assert summary_table(run_store, ["one"])["run"].unique().tolist() == ["one"]


def test_store_without_runs(grid_store):
    assert summary_table(grid_store).empty
    with pytest.raises(InputError, match="no complete evaluation run"):
        open_run(grid_store)


def test_runs_of_featstore_0_1_read_with_fusion_names(run_store, tmp_path):
    """0.1 stored a fusion's side A alone in ``model``; readers still show ``A+B``."""
    import zarr

    from featstore.evaluate.runs.tables import config_table, load_result_sets

    store = tmp_path / "old.zarr"
    shutil.copytree(run_store, store)
    model = zarr.open_array(str(store), path="results/one/model", mode="r+")
    partner = zarr.open_array(str(store), path="results/one/partner_model", mode="r")[:]
    old = np.asarray([str(m).split("+")[0] for m in model[:]], dtype=object)
    model[:] = old
    assert list(old[partner != ""]) == ["gpt2"] * 4
    fused = "gpt2/ctx20+wavlm/tr3/4x3"
    for ds in (open_run(store, "one"), load_result_sets(store)[0].results):
        assert str(ds.model.sel(config=fused).values) == "gpt2+wavlm"
        assert str(ds.model.sel(config="gpt2/ctx20/layer4").values) == "gpt2"
    table = summary_table(store)
    assert table.set_index("config").loc[fused, "model"] == "gpt2+wavlm"
    raw = xr.open_zarr(str(store), group="results/one", consolidated=False)
    frame = config_table(raw).set_index("config")
    assert frame.loc[fused, "model"] == frame.loc[fused, "family"] == "gpt2+wavlm"
