import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from featstore import store as fs
from featstore.cli._encoding_options import encoding_settings, parse_alphas
from featstore.cli.evaluate_main import app
from featstore.errors import FeatstoreWarning, InputError
from featstore.evaluate.runs.results import complete_runs
from featstore.evaluate.runs.summary import summary_table
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
        _invoke("roi", "-s", grid_store, "--config", "wavlm/tr2/1"),
        "config 'wavlm/tr2/1' (wavlm/tr2/layer1) is in no complete run",
    )

    result = _invoke("runs", "-s", grid_store)
    assert result.exit_code == 0 and "cli" in result.stdout and "complete" in result.stdout


def test_a_constant_feature_layer_is_warned_about_and_excluded(grid_store, tmp_path):
    values = np.random.default_rng(3).standard_normal((3, N_TR, 5)).astype(np.float32)
    values[1] = 0.0  # an all-zero layer, as a 1-TR story gives
    attrs = {"model_id": "byo", "revision": "test", "modality": "audio", "pooling": "mean"}
    with pytest.warns(FeatstoreWarning, match="layer 1 \\(of 3\\) is constant"):  # at writing
        fs.write_feature_set(
            grid_store, "byo", "tr3", values, attrs={**attrs, "stimulus_sha256": "a" * 64}
        )
    result = _invoke(
        "grid", "-s", grid_store, "--model", "byo", "--fusion", "wavlm:tr3+byo:tr3",
        "--layers", "1,2", "--run", "flat", *FAST[:-1],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # the reason comes first among the run's warnings, naming the layer (and the fusion side)
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warned[0].startswith(
        "warning: features/byo/tr3 layer 1 (side b of the fusion) is constant"
    )
    assert warned[1].startswith("warning: features/byo/tr3 layer 1 is constant over the")
    assert warned[1].endswith("(byo/tr3/layer1)")
    ds = xr.open_zarr(str(grid_store), group="results/flat", consolidated=False)
    excluded = ["byo/tr3/layer1", "wavlm/tr3+byo/tr3/1x1", "wavlm/tr3+byo/tr3/2x1"]
    assert sorted(ds.attrs["excluded"]) == sorted(excluded)
    assert np.isnan(ds.r.sel(config=excluded).values).all()
    assert np.isnan(ds.alpha.sel(config="byo/tr3/layer1").values).all()  # not the grid's top
    assert np.isfinite(ds.r.sel(config="byo/tr3/layer2").values).all()

    for command in (
        ["summary", "-s", grid_store, "--csv", tmp_path / "s.csv"],
        ["summary", "-s", grid_store, "--all"],
    ):
        result = _invoke(*command)
        assert result.exit_code == 0, result.output
        assert "nan" not in result.stdout and "1x1" not in result.stdout
        assert result.stderr.count("excluded: results/flat/") == 3
    summary = pd.read_csv(tmp_path / "s.csv", keep_default_na=False).set_index("log")
    assert summary.loc["results/flat/byo/tr3/layer1", "excluded"].startswith(
        "features/byo/tr3 layer 1 is constant over the"
    )
    assert summary.loc["results/flat/byo/tr3/layer2", "excluded"] == ""
    assert summary.loc["results/flat/byo/tr3/layer2", "best"]
    assert not summary.loc["results/flat/byo/tr3/layer1", "best"]

    # the report lists them as excluded, without any numpy warning (warnings are errors)
    result = _invoke("report", "-s", grid_store, "--out", tmp_path / "report")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "Excluded: 3 config(s)" in page
    assert "<td>features/byo/tr3 layer 1 is constant over the" in page


def test_negative_delays_raise_the_gap_and_say_so(grid_store):
    fast = ["--pca", "6", "--alphas", "0.1,10,1000", "--cv", "3", "--quiet"]
    result = _invoke(
        "grid", "-s", grid_store, "--model", "wavlm:tr3", "--layers", "3",
        "--fir-window", "3", "--fir-offset", "-2", "--run", "ahead", *fast,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(
        "warning: delay -2 makes train row t hold the stimulus of TR t+2"
    )
    ds = xr.open_zarr(str(grid_store), group="results/ahead", consolidated=False)
    # the gap used is the one stored: the run reproduces from its settings
    assert ds.attrs["settings"]["gap"] == 2 and ds.attrs["settings"]["delays"] == [-2, -1, 0]
    train_stop, test_start = ds.attrs["train_range"][1], ds.attrs["test_range"][0]
    assert test_start - train_stop == 2
    assert ds.attrs["warnings"][0].startswith("delay -2 makes train row t")
    # the same grid with the gap given explicitly reuses every config, without the notice
    result = _invoke(
        "grid", "-s", grid_store, "--model", "wavlm:tr3", "--layers", "3",
        "--delays", "-2,-1,0", "--gap", "2", "--run", "explicit", *fast,
    )  # fmt: skip
    assert result.exit_code == 0 and "1 reused" in result.stdout and "delay -2" not in result.stderr


def test_a_set_fused_with_itself_says_which_pairs_it_evaluates(grid_store):
    result = _invoke(
        "grid", "-s", grid_store, "--fusion", "gpt2+gpt2", "--layers", "3,4", "--run", "self",
        *FAST[:-1],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "results/self: 1 configs" in result.stdout
    assert "warning: fusion of gpt2/ctx20 with itself: only its 1 pair(s)" in result.stderr
    ds = xr.open_zarr(str(grid_store), group="results/self", consolidated=False)
    assert list(ds.config.values) == ["gpt2/ctx20+gpt2/ctx20/3x4"]


def test_fusion_sides_select_their_own_layers(grid_store):
    # wavlm has layers 0..4, so one --layers 6 for both sides fails
    _assert_one_line_error(
        _invoke("grid", "-s", grid_store, "--fusion", "gpt2+wavlm:tr3", "--layers", "6", *FAST),
        "no layer 6",
    )
    result = _invoke(
        "grid", "-s", grid_store, "--fusion", "gpt2@6+wavlm:tr3@0,2", "--run", "sides", *FAST
    )
    assert result.exit_code == 0, result.output
    ds = xr.open_zarr(str(grid_store), group="results/sides", consolidated=False)
    assert list(ds.config.values) == ["gpt2/ctx20+wavlm/tr3/6x0", "gpt2/ctx20+wavlm/tr3/6x2"]
    assert ds.attrs["request"]["fusions"] == [[["gpt2", None, [6]], ["wavlm", ["tr3"], [0, 2]]]]
    _assert_one_line_error(
        _invoke("grid", "-s", grid_store, "--fusion", "gpt2@x+wavlm", *FAST),
        "'gpt2@x': the layers after @ 'x'",
    )


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
        (["--fusion", "gpt2+gpt2", "--layers", "4"], ["--fusion gpt2+gpt2 fuses gpt2/ctx20 with itself", "--layers 4,9"]),
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


def test_short_labels_and_the_default_run_in_every_command(grid_store, tmp_path):
    """One resolver and one rule: a typed label (short or not) is read from the newest
    complete run holding it, in `roi`, `plot` and `significance` alike (`stats`: in
    tests/plot/test_cli.py, whose store has the HCP-MMP ROIs of the built-in groups)."""
    for args in (["--model", "gpt2", "--layers", "3,4", "--run", "run1"],
                 ["--model", "wavlm:tr2,3", "--layers", "3", "--run", "run2"]):  # fmt: skip
        assert _invoke("grid", "-s", grid_store, *args, *FAST).exit_code == 0
    result = _invoke("roi", "-s", grid_store, "--top", "2")  # no config: the newest run
    assert result.exit_code == 0 and "wavlm/tr3/layer3" in result.stdout, result.output
    result = _invoke("roi", "-s", grid_store, "--config", "gpt2/4", "--top", "2")
    assert result.exit_code == 0 and "gpt2/ctx20/layer4" in result.stdout, result.output
    result = _invoke(
        "roi", "-s", grid_store, "--run", "run2", "--config", f"{AUDIO_KEY}/tr3/3", "--top", "2"
    )
    assert result.exit_code == 0 and "wavlm/tr3/layer3" in result.stdout, result.output
    result = _invoke("plot", "roi-top", "-s", grid_store, "--config", "gpt2/4", "--top", "3")
    assert result.exit_code == 0, result.output
    assert "gpt2/ctx20/layer4 (run1)" in " ".join(result.stdout.split())
    result = _invoke(
        "significance", "-s", grid_store, "-c", "gpt2/4", "--n-perm", "19", "--block", "2", "-q"
    )
    assert result.exit_code == 0, result.output
    stats = xr.open_zarr(str(grid_store), group="results/run1/stats", consolidated=False)
    assert list(stats.config.values) == ["gpt2/ctx20/layer4"]

    _assert_one_line_error(
        _invoke("roi", "-s", grid_store, "--config", "wavlm/3"),
        "'wavlm/3' is ambiguous: wavlm/tr2/layer3, wavlm/tr3/layer3",
    )
    _assert_one_line_error(
        _invoke("plot", "roi-top", "-s", grid_store, "--run", "run2", "--config", "gpt2/4"),
        "config 'gpt2/4' (gpt2/layer4) is not in results/run2",
    )
    _assert_one_line_error(
        _invoke("significance", "-s", grid_store, "-c", "gpt2/4", "-c", "wavlm/tr3/3"),
        "no complete run holds all of gpt2/ctx20/layer4 (run1), wavlm/tr3/layer3 (run2)",
    )


def test_an_identical_grid_reuses_its_run_instead_of_duplicating_summary_rows(grid_store):
    args = ["grid", "-s", grid_store, "--model", "wavlm:tr3", "--layers", "2,3", *FAST]
    first = _invoke(*args)
    assert first.exit_code == 0, first.output
    before = complete_runs(grid_store)
    run_id = re.search(r"results/(\S+): 2 configs", first.stdout).group(1)
    rows = len(summary_table(grid_store))
    again = _invoke(*args, "--layers", "3,2")  # the same configs, in another order
    assert again.exit_code == 0, again.output
    line = again.stderr.strip().splitlines()[0]  # then the run's own warnings, as the first time
    assert line.startswith(f"warning: results/{run_id} already holds this grid")
    assert "--run NAME" in line and f"results/{run_id}: 2 configs" in again.stdout
    assert complete_runs(grid_store) == before
    assert len(summary_table(grid_store)) == rows
    # another config set, or an explicit --run, still makes a new run
    assert _invoke(*args, "--layers", "3").exit_code == 0
    assert _invoke(*args, "--run", "copy").exit_code == 0
    assert len(summary_table(grid_store)) == rows + 3
