"""The multi-story chain end to end, as the README shows it, on a tiny Narratives-style tree.

BIDS import (3 stories, 3 subjects, one story missing for one subject, fsaverage5 GIfTI or
MNI NIfTI) → extraction over every story with one command → evaluation across stories
(held-out stories, and each story predicted once) → summary, ROI table and HTML report.
The planted vertices (voxels) follow each story's word rate 2 TRs late, so word rate must
find exactly them.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from featstore.cli.evaluate_main import app as evaluate_app
from featstore.cli.main import app
from featstore.evaluate.runs.results import list_runs
from tests.fixtures.narratives import make_narratives_tree


def _ok(application, *args):
    result = CliRunner().invoke(application, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make_narratives_tree(tmp_path_factory.mktemp("narratives"))


def _import_and_extract(made, store, space):
    _ok(app, "dataset", "import", "--bids", made["root"], "--pipeline", made["pipeline"],
        "--space", space, "--tasks", "pieman,tunnel,lucy", "--tr", made["tr"], "--store", store)  # fmt: skip
    extracted = _ok(app, "extract", "--model", "wordrate", "--store", store)
    for story in ("lucy", "pieman", "tunnel"):
        assert f"stories/{story}/features/wordrate/tr1" in extracted.output


def _run(store, run_id):
    return xr.open_zarr(str(store), group=f"results/{run_id}", consolidated=False)


def test_vertex_chain_recovers_the_planted_vertices(made, tmp_path):
    store = tmp_path / "narr.zarr"
    _import_and_extract(made, store, made["space"])
    grid = _ok(evaluate_app, "grid", "--store", store, "--model", "wordrate", "--cv", "stories",
               "--run", "cv")  # fmt: skip
    assert "sub-003" in grid.output  # left out of 'tunnel', which it did not hear, and said so
    run = _run(store, "cv")
    assert run.attrs["split"] == "cv-stories"
    assert run.attrs["subjects_left_out"] == {"lucy": [], "pieman": [], "tunnel": ["sub-003"]}
    mean_r = run["r"].isel(config=0).mean("subject").values
    top = np.argsort(-mean_r)[:5]
    found = {(str(run["hemisphere"].values[i]), int(run["vertex"].values[i])) for i in top}
    planted = {(side, v) for side, vertices in made["planted_vertices"].items() for v in vertices}
    assert found == planted
    others = np.delete(mean_r, top)
    assert mean_r[top].min() > 0.8 > 0.4 > np.nanmax(others)
    per_story = run["r_story"].isel(config=0)
    assert np.isnan(per_story.sel(story="tunnel", subject="sub-003")).all()
    assert (per_story.sel(story="lucy", subject="sub-003").values[top] > 0.6).all()
    # the vertex axis never holds the medial wall or the vertices unusable in any subject
    for side, dropped in made["dropped_vertices"].items():
        kept = set(run["vertex"].values[run["hemisphere"].values == side].tolist())
        assert not kept & dropped

    held_out = _ok(evaluate_app, "grid", "--store", store, "--model", "wordrate",
                   "--test-stories", "lucy", "--run", "lucy")  # fmt: skip
    assert "lucy" in held_out.output
    run = _run(store, "lucy")
    assert list(run["story"].values) == ["lucy"] and run.attrs["test_stories"] == ["lucy"]
    mean_r = run["r"].isel(config=0).mean("subject").values
    assert set(np.argsort(-mean_r)[:5]) == set(top)
    assert sorted(info.run_id for info in list_runs(str(store)) if info.complete) == ["cv", "lucy"]

    summary = _ok(evaluate_app, "summary", "--store", store, "--run", "cv")
    assert "wordrate" in summary.output
    out = tmp_path / "report"
    _ok(evaluate_app, "report", "--store", store, "--out", out)
    page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", (out / "index.html").read_text()))
    assert "3 stories" in page and "vertices" in page and "split=cv-stories" in page
    assert any(p.name.endswith("brain-best.png") for p in (out / "figures").iterdir())


def test_voxel_chain_recovers_the_planted_voxels(made, tmp_path):
    store = tmp_path / "vol.zarr"
    _import_and_extract(made, store, made["volume_space"])
    _ok(evaluate_app, "grid", "--store", store, "--model", "wordrate", "--cv", "stories",
        "--run", "cv")  # fmt: skip
    run = _run(store, "cv")
    assert run.attrs["target_kind"] == "voxel"
    mean_r = run["r"].isel(config=0).mean("subject").values
    top = np.argsort(-mean_r)[: len(made["planted_voxels"])]
    assert set(run["voxel"].values[top].tolist()) == set(made["planted_voxels"])
