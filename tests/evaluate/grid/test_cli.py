import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from featstore import store as fs
from featstore.cli._encoding_options import encoding_settings, parse_alphas
from featstore.cli.evaluate_main import app
from featstore.errors import InputError
from tests.evaluate.grid.conftest import AUDIO_KEY, N_ROI, N_TR, build_store

FAST = ["--pca", "6", "--delays", "1,2,3", "--alphas", "0.1,10,1000", "--cv", "3", "--quiet"]


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_grid_summary_roi_runs(grid_store, tmp_path):
    result = _invoke(
        "grid", "-s", grid_store, "--model", "gpt2", "--model", "wavlm:tr3",
        "--fusion", "gpt2+wavlm", "--tr-win", "3", "--layers", "3,4", "--run", "cli", *FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "results/cli: 8 configs (8 computed, 0 resumed, 0 reused" in result.stdout
    ds = xr.open_zarr(str(grid_store), group="results/cli", consolidated=False)
    assert ds.attrs["settings"]["delays"] == [1, 2, 3] and ds.attrs["settings"]["pca"] == 6

    result = _invoke(
        "summary", "-s", grid_store, "--csv", tmp_path / "summary.csv",
        "--roi-csv", tmp_path / "roi.csv",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wavlm" in result.stdout and "gpt2+wavlm" in result.stdout
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary.columns[:10]) == [
        "log", "layer", "mean", "std", "median", "min", "max", "model", "window", "kind",
    ]  # fmt: skip
    assert len(summary) == 8 and len(pd.read_csv(tmp_path / "roi.csv")) == 8 * N_ROI

    result = _invoke("roi", "-s", grid_store, "--run", "cli", "--top", "3")
    assert result.exit_code == 0, result.output
    assert "wavlm/tr3/layer3" in result.stdout  # the best config by default
    result = _invoke("roi", "-s", grid_store, "--config", "gpt2/4", "--csv", tmp_path / "one.csv")
    assert result.exit_code == 0, result.output
    one = pd.read_csv(tmp_path / "one.csv")
    assert set(one["config"]) == {"gpt2/ctx20/layer4"} and len(one) == N_ROI
    _assert_one_line_error(
        _invoke("roi", "-s", grid_store, "--config", "wavlm/tr2/1"), "wavlm/tr2/layer1", "not in"
    )

    result = _invoke("runs", "-s", grid_store)
    assert result.exit_code == 0 and "cli" in result.stdout and "complete" in result.stdout


def test_option_parsing():
    assert parse_alphas("1,10") == (1.0, 10.0)
    np.testing.assert_allclose(parse_alphas("logspace:-2:8:21"), np.logspace(-2, 8, 21))
    with pytest.raises(InputError, match="--alphas"):
        parse_alphas("logspace:1")
    none = dict.fromkeys(
        ("pca", "delays", "trim", "test_frac", "gap", "alphas", "alpha", "cv", "dtype")
    )
    settings = encoding_settings(method="banded", fir_window=3, fir_offset=2, **none)
    assert settings.delays == (2, 3, 4) and settings.method == "banded"
    with pytest.raises(InputError, match="not both"):
        encoding_settings(
            method="concat", fir_window=3, fir_offset=None, **{**none, "delays": "1,2"}
        )


def _rewrite_fmri(store, change):
    ds = xr.open_zarr(str(store), group="fmri", consolidated=False).load()
    ds = change(ds)
    fs.write_group(
        store, "fmri", ds, overwrite=True, encoding={"bold": {"chunks": (1, ds.sizes["tr"], N_ROI)}}
    )


def _nan_bold(ds):
    ds["bold"][1, 10, 3] = np.nan
    return ds


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--model", "wavlm", "--tr-win", "6"], ["no feature set wavlm/tr6", "present: gpt2 (ctx20)"]),
        (["--model", "hubert"], ["no feature set for model 'hubert'", "wavlm (tr2, tr3)"]),
        (["--model", "wavlm", "--layers", "2,9"], [f"features/{AUDIO_KEY}/tr2 has layers 0..4", "no layer 9"]),
        (["--model", "gpt2", "--pca", "6", "--test-frac", "0.03"], ["test part"]),
        (["--model", "gpt2", "--method", "sum"], ["--method 'sum'"]),
        (["--model", "gpt2", "--workers", "2", "--scheduler", "tcp://x:1"], ["not both"]),
        (["--model", "wavlm", "--tr-win", "0"], ["--tr-win '0'", "positive whole number of TRs", "e.g. 1,2,3,6"]),
        (["--model", "gpt2", "--ctx", "20,0"], ["--ctx '20,0'", "positive whole number of words", "e.g. 200"]),
    ],
)  # fmt: skip
def test_bad_options_exit_2_with_one_line(grid_store, args, fragments):
    _assert_one_line_error(_invoke("grid", "-s", grid_store, *args, "--quiet"), *fragments)


def test_nan_bold_names_subject_and_roi(grid_store):
    _rewrite_fmri(grid_store, _nan_bold)
    _assert_one_line_error(
        _invoke("grid", "-s", grid_store, "--model", "gpt2", *FAST), "sub-02", "3 (44)", "NaN"
    )


def test_tr_count_mismatch(grid_store):
    _rewrite_fmri(grid_store, lambda ds: ds.isel(tr=slice(0, N_TR - 2)))
    _assert_one_line_error(
        _invoke("grid", "-s", grid_store, "--model", "gpt2", *FAST),
        f"fmri bold has {N_TR - 2} TRs but features/gpt2/ctx20 has {N_TR}",
    )


def test_nan_features_name_group_and_layer(tmp_path):
    store = tmp_path / "nan.zarr"
    build_store(store)
    hidden = xr.open_zarr(str(store), group="features/gpt2/ctx20", consolidated=False).hidden.values
    hidden[2, 40:43] = np.nan
    attrs = fs.feature_set_attrs(store, "gpt2", "ctx20")
    fs.write_feature_set(store, "gpt2", "ctx20", hidden, attrs=attrs, overwrite=True)
    _assert_one_line_error(
        _invoke("grid", "-s", store, "--model", "gpt2", "--layers", "1,2", *FAST),
        "features/gpt2/ctx20 layer 2 has NaN/inf at 3 TR(s) (first: TR 40)",
    )
