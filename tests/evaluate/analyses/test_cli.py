"""evaluate rsa / similarity / lowlevel end to end, their errors, and their report sections."""

from __future__ import annotations

import re

import pytest
import xarray as xr
from typer.testing import CliRunner

from featstore import store as fs
from featstore.cli.evaluate_main import app
from featstore.cli.main import app as featstore_app
from featstore.evaluate.analyses.runner import analysis_runs
from featstore.evaluate.runs.grid import run_grid
from featstore.evaluate.runs.results import complete_runs

FAST = ["--pca", "0", "--alphas", "1,10,100,1000", "--cv", "3", "--quiet"]
SPLIT = ["--pca", "0", "--quiet"]


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _one_line_error(result, fragment):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert "Traceback" not in result.output


def test_three_analyses_then_a_report_with_their_sections(analyses_store, tmp_path):
    result = _invoke(
        "rsa", "-s", analyses_store, "--model", "gpt2", "--ctx", "20", "--layers", "all",
        "--roi-group", "late-language,auditory", "--partial", "spectral", "--n-perm", "49",
        "--run", "rsa-cli", *SPLIT,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "results/rsa-cli: 592 items" in result.stdout  # 600 TRs, 4 trimmed at each edge
    assert "partial RSA" in result.stdout
    row = next(line for line in result.stdout.splitlines() if re.match(r"\s+2\s", line))
    assert "(0.020)" in row  # the planted layer: the smallest p of 49 permutations

    figure = tmp_path / "similarity.png"
    result = _invoke(
        "similarity", "-s", analyses_store, "--model", "wavlm", "--tr-win", "2", "--metric",
        "cka,encoding", "--roi-group", "auditory", "--figure", figure, *FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert figure.stat().st_size > 10_000 and f"figure: {figure}" in result.stdout
    assert "best layer: cka" in result.stdout

    result = _invoke(
        "lowlevel", "-s", analyses_store, "--model", "wavlm", "--control", "spectral",
        "--control", "wordrate", "--layers", "1", "--run", "low", *FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "controls spectral/tr1/layer0, wordrate/tr1/layer0" in result.stdout
    assert re.search(r"1\s+auditory\s+\S+\s+\S+\s+\d{2,3}\.\d", result.stdout)
    ds = xr.open_zarr(str(analyses_store), group="results/low", consolidated=False)
    assert set(ds.attrs["features"]) == {
        "features/microsoft--wavlm-base-plus/tr2",
        "features/spectral/tr1",
        "features/wordrate/tr1",
    }
    assert len(analysis_runs(analyses_store)) == 3 and complete_runs(analyses_store) == []
    assert fs.validate(analyses_store) == []
    listing = CliRunner().invoke(featstore_app, ["ls", str(analyses_store)])
    assert listing.exit_code == 0, listing.output
    assert all(f"{kind} of" in listing.stdout for kind in ("rsa", "similarity", "lowlevel"))
    assert "r_orig:" in listing.stdout and "rho:" in listing.stdout

    # a store holding only analyses gets a report of them
    result = _invoke("report", "-s", analyses_store, "--out", tmp_path / "only", "--no-brain")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "only" / "index.html").read_text()
    for heading in (
        "Representational similarity analysis",
        "Similarity metrics, layer by layer",
        "Low-level feature impact",
    ):
        assert f"<h2>{heading}</h2>" in page
    assert page.count("<img ") == 4  # RSA, partial RSA, similarity, % drop
    assert "Settings and provenance of rsa-cli" in page
    assert len(list((tmp_path / "only" / "figures").glob("*.png"))) == 4


def test_report_with_an_encoding_run_and_an_analysis(analyses_store, settings, tmp_path):
    run_grid(analyses_store, models=[("gpt2", None)], layers=[2], settings=settings, run_id="g")
    result = _invoke(
        "lowlevel", "-s", analyses_store, "--model", "gpt2", "--control", "wordrate",
        "--layers", "2", *FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert complete_runs(analyses_store) == ["g"]
    summary = _invoke("summary", "-s", analyses_store)
    assert summary.exit_code == 0 and "lowlevel" not in summary.stdout
    out = tmp_path / "report"
    result = _invoke("report", "-s", analyses_store, "--out", out, "--no-brain", "--embed")
    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text()
    assert "<h2>Results</h2>" in page and "<h2>Low-level feature impact</h2>" in page
    assert "<h2>Representational similarity analysis</h2>" not in page


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["rsa", "--model", "gpt2", "--roi-group", "visual"], "ROI group 'visual' is not defined"),
        (["rsa", "--model", "gpt2", "--compare", "kendall", "--partial", "spectral"], "--partial"),
        (["rsa", "--model", "gpt2", "--layers", "9"], "no layer 9"),
        (["similarity", "--model", "gpt2", "--metric", "svd"], "--metric 'svd'"),
        (["similarity", "--model", "bert"], "no feature set for model 'bert'"),
        (["lowlevel", "--model", "wavlm", "--control", "gpt2"], "has 5 layers; say which one"),
        (["lowlevel", "--model", "wavlm", "--control", "spectral", "--delays", "1,x"], "--delays"),
    ],
)
def test_bad_options_exit_2_with_one_line(analyses_store, args, fragment):
    _one_line_error(_invoke(*args, "-s", analyses_store, "--quiet"), fragment)


def test_similarity_writes_a_figure_only_where_asked(analyses_store, tmp_path, monkeypatch):
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    result = _invoke(
        "similarity", "-s", analyses_store, "--model", "gpt2", "--metric", "cka", "--run", "nofig",
        "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert list(here.iterdir()) == [] and "figure:" not in result.stdout


def test_existing_run_is_refused_before_computing(analyses_store):
    first = _invoke("rsa", "-s", analyses_store, "--model", "gpt2", "--n-perm", "0", "--run", "x")
    assert first.exit_code == 0, first.output
    again = _invoke("rsa", "-s", analyses_store, "--model", "gpt2", "--n-perm", "0", "--run", "x")
    _one_line_error(again, "results/x already exists")
    replaced = _invoke(
        "similarity", "-s", analyses_store, "--model", "gpt2", "--metric", "cka", "--run", "x",
        "--overwrite", "--figure", analyses_store.parent / "x.png", "--quiet",
    )  # fmt: skip
    assert replaced.exit_code == 0, replaced.output
    assert analysis_runs(analyses_store, "similarity") == ["x"]
