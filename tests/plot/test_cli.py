"""The report, plot, stats, ceiling and significance commands of ``evaluate``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from featstore import store as fs
from featstore.cli.evaluate_main import app
from featstore.evaluate.runs import significance
from tests.evaluate.stats.test_significance import fake_predictor

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result


@pytest.fixture
def tested_store(results_store, monkeypatch):
    """The synthetic store with predictions faked (no features are stored in it)."""
    monkeypatch.setattr(significance, "store_predictor", lambda store, run_id: fake_predictor())
    return results_store


def test_significance_then_brain_map_masked_by_fdr(tested_store, tmp_path):
    csv = tmp_path / "p.csv"
    result = invoke(
        "significance",
        "--store",
        tested_store,
        "--run",
        "grid-test",
        "--config",
        "wavlm/tr6/layer9",
        "--n-perm",
        200,
        "--block",
        5,
        "--csv",
        csv,
    )
    assert result.exit_code == 0, result.output
    assert "wavlm/tr6/layer9" in result.output and "/360" in result.output
    assert len(pd.read_csv(csv)) == 360
    out = tmp_path / "brain.png"
    result = invoke(
        "plot",
        "brain",
        "--store",
        tested_store,
        "--run",
        "grid-test",
        "--config",
        "wavlm/tr6/layer9",
        "--out",
        out,
        "--mask-fdr",
        0.05,
    )
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 20_000


def test_roi_top_prints_names_and_writes_csv(results_store, tmp_path):
    csv = tmp_path / "top.csv"
    result = invoke(
        "plot",
        "roi-top",
        "--store",
        results_store,
        "--config",
        "whisper-base/tr6/layer2",
        "--top",
        7,
        "--csv",
        csv,
        "--out",
        tmp_path / "top.png",
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(csv)
    assert (
        len(table) == 7 and "ceiling" in table and table["label"].str[:2].isin(["L_", "R_"]).all()
    )
    assert table["label"].iloc[0] in result.output
    assert (tmp_path / "top.png").exists()


def test_stats_compare_prints_effect_sizes(results_store, tmp_path):
    csv = tmp_path / "cmp.csv"
    result = invoke(
        "stats",
        "--store",
        results_store,
        "--compare",
        "gpt2/ctx200+wavlm/tr6/9x9",
        "wavlm/tr6/layer9",
        "--csv",
        csv,
    )
    assert result.exit_code == 0, result.output
    assert "r_rb" in result.output and "late-language" in result.output
    table = pd.read_csv(csv)
    assert list(table["scope"][:2]) == ["all ROIs", "auditory"]
    assert table["rank_biserial"].iloc[0] == pytest.approx(1.0)  # fusion wins every subject


def test_stats_across_runs_with_other_settings_notes_it(results_store):
    from tests.plot.synthetic import SETTINGS, results_dataset

    other = results_dataset(seed=9).sel(config=["wavlm/tr1/layer9"])
    other = other.assign_coords(config=np.array(["wavlm/tr1/layer10"], dtype=object))
    other.attrs = {**other.attrs, "settings": {**SETTINGS, "pca": 0}}
    fs.write_group(results_store, "results/grid-pca0", other)
    result = invoke(
        "stats", "--store", results_store, "--compare", "wavlm/tr1/layer10", "wavlm/tr6/layer9"
    )
    assert result.exit_code == 0, result.output
    assert "grid-pca0 and grid-test were evaluated with different settings" in result.output
    assert "all ROIs" in result.output


def test_ceiling_writes_the_group(results_store):
    result = invoke("ceiling", "--store", results_store, "--run", "grid-test")
    assert result.exit_code == 0, result.output
    assert "fmri/noise_ceiling written: 4 subjects, test TRs 60..78" in result.output
    ceiling = fs.open_group(results_store, "fmri/noise_ceiling")
    assert np.isfinite(ceiling["ceiling"].values).all()


def test_report_command_and_one_line_errors(results_store, tmp_path):
    groups = tmp_path / "groups.json"
    groups.write_text('{"typo": ["A1", "PBlet"]}')
    result = invoke(
        "report", "--store", results_store, "--out", tmp_path / "r", "--no-brain", "--top", 5,
        "--groups", groups,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "index.html").exists()
    assert "warning: ROI group 'typo': PBlet match no ROI of the data" in result.output
    result = invoke("plot", "roi-top", "--store", results_store, "--config", "bert/ctx1/layer1")
    assert result.exit_code == 2
    assert "error: config 'bert/ctx1/layer1' is in no complete run" in result.output
    result = invoke(
        "plot",
        "brain",
        "--store",
        results_store,
        "--config",
        "wavlm/tr6/layer9",
        "--out",
        tmp_path / "x.png",
        "--mask-fdr",
        0.05,
    )
    assert result.exit_code == 2 and "run `evaluate significance` first" in result.output


def test_short_labels_in_stats_and_plots_use_the_newest_run_holding_them(results_store, tmp_path):
    """The synthetic store holds results but no features: labels resolve against runs."""
    from tests.plot.synthetic import results_dataset

    newer = results_dataset(seed=3).sel(config=["gpt2/ctx200/layer4", "wavlm/tr1/layer9"])
    newer.attrs = {**newer.attrs, "run_id": "grid-newer", "created": "2999-01-01T00:00:00+00:00"}
    fs.write_group(results_store, "results/grid-newer", newer)
    result = invoke("stats", "--store", results_store, "--compare", "gpt2+wavlm/9x9", "wavlm/tr6/9")
    assert result.exit_code == 0, result.output
    title = " ".join(result.stdout.split())
    assert "A = gpt2/ctx200+wavlm/tr6/9x9 (grid-test) vs B = wavlm/tr6/layer9 (grid-test)" in title
    # gpt2/4 is in both runs: the newer one, and the same for the plots
    result = invoke("stats", "--store", results_store, "--compare", "gpt2/4", "wavlm/tr1/9")
    assert result.exit_code == 0, result.output
    assert "gpt2/ctx200/layer4 (grid-newer) vs B = wavlm/tr1/layer9 (grid-newer)" in " ".join(
        result.stdout.split()
    )
    result = invoke("plot", "roi-top", "--store", results_store, "--config", "gpt2/4", "--top", 3)
    assert result.exit_code == 0, result.output
    assert "gpt2/ctx200/layer4 (grid-newer)" in " ".join(result.stdout.split())
    out = tmp_path / "brain.png"
    result = invoke("plot", "brain", "--store", results_store, "--config", "whisper-base/2",
                    "--out", out)  # fmt: skip
    assert result.exit_code == 0 and out.stat().st_size > 20_000, result.output


@pytest.mark.parametrize("runs", [[], ["--run", "no-such-run"]])
def test_report_with_nothing_to_report_creates_no_folder(empty_store, tmp_path, runs):
    out = tmp_path / "report"
    result = invoke("report", "--store", empty_store, "--out", out, *runs)
    assert result.exit_code == 2
    assert "error: no complete" in result.output
    assert not out.exists()
