"""``featstore ls``, ``info`` and ``rm`` through the real CLI app."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from featstore import store as fs
from featstore.cli._common import console
from featstore.cli.main import app

MINILM_KEY = "sentence-transformers--all-MiniLM-L6-v2"


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def alias_store(empty_store, feature_attrs):
    """A store with a feature set extracted under the alias ``minilm`` and an imported one."""
    hidden = np.random.default_rng(0).standard_normal((3, 37, 5)).astype("f4")
    attrs = {**feature_attrs, "modality": "text", "model_alias": "minilm"}
    fs.write_feature_set(empty_store, MINILM_KEY, "ctx32", hidden, attrs=attrs)
    fs.write_feature_set(empty_store, "mine", "tr2", hidden[:2], attrs=feature_attrs)
    return empty_store


def test_readers_take_the_alias_of_a_feature_key(alias_store):
    assert fs.resolve_feature_key(alias_store, "minilm") == MINILM_KEY
    assert fs.resolve_feature_key(alias_store, "mine") == "mine"
    by_alias = fs.open_feature_set(alias_store, "minilm", "ctx32", layers=[2])
    by_key = xr.open_zarr(
        str(alias_store), group=f"features/{MINILM_KEY}/ctx32", consolidated=False
    )
    np.testing.assert_array_equal(by_alias.hidden.values[0], by_key.hidden.values[2])
    assert fs.feature_set_attrs(alias_store, "minilm", "ctx32")["model_alias"] == "minilm"
    info = _invoke("info", alias_store, "features/minilm/ctx32")
    assert info.exit_code == 0, info.output
    assert "hidden" in info.stdout and '"model_alias": "minilm"' in info.stdout


def test_ls_shows_key_and_alias(alias_store, monkeypatch):
    monkeypatch.setattr(console, "width", 200)  # no folded cells
    result = _invoke("ls", alias_store)
    assert result.exit_code == 0, result.output
    assert "(alias minilm)" in result.stdout
    assert f"features/{MINILM_KEY}/ctx32" in result.stdout and "features/mine/tr2" in result.stdout
    assert result.stdout.count("(alias") == 1  # an imported set has no alias


def _stage(store, group, done_blocks=1):
    """An interrupted write: ``done_blocks`` of the 4 blocks of ``group`` staged."""
    stage = fs.BlockStage(
        store, group, {"hidden": fs.StagedArray((2, 37, 5), "float32", 1)}, block_size=10,
        settings={"what": group},
    )  # fmt: skip
    for index in range(done_blocks):
        stage.write_block(index, hidden=np.ones((2, len(range(37)[stage.block_slice(index)]), 5)))
    return stage


def test_ls_shows_interrupted_staged_writes(alias_store, monkeypatch):
    monkeypatch.setattr(console, "width", 200)
    _stage(alias_store, "features/half/tr2", done_blocks=3)
    _stage(alias_store, "results/grid-x", done_blocks=1)
    result = _invoke("ls", alias_store)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "features/half/tr2" in line)
    assert "staged: 3/4 blocks" in row and "rerun the same command to resume" in row
    assert "staged: 1/4 blocks" in next(
        line for line in result.stdout.splitlines() if "results/grid-x" in line
    )


def test_rm_features_and_runs(alias_store):
    _stage(alias_store, "features/mine/tr3")  # an interrupted extraction of another window
    ds = xr.Dataset({"r": (("config", "subject", "roi"), np.zeros((2, 3, 4), "f4"))})
    fs.write_group(alias_store, "results/grid-1", ds)
    fs.write_group(alias_store, "results/grid-1/stats", ds)
    before = {p: p.stat().st_mtime_ns for p in alias_store.rglob("*")}

    # no terminal and no --yes: nothing is deleted
    refused = _invoke("rm", "features", "-s", alias_store, "mine")
    assert refused.exit_code == 2 and "pass --yes" in refused.stderr
    assert "features/mine/tr2" in refused.stderr and "features/mine/tr3" in refused.stderr
    assert {p: p.stat().st_mtime_ns for p in alias_store.rglob("*")} == before

    one = _invoke("rm", "features", "-s", alias_store, "minilm/ctx32", "--yes")  # by alias
    assert one.exit_code == 0, one.output
    assert f"deleted features/{MINILM_KEY}/ctx32" in one.stdout
    assert not fs.group_exists(alias_store, f"features/{MINILM_KEY}")
    every = _invoke("rm", "features", "-s", alias_store, "mine", "--yes")
    assert every.exit_code == 0, every.output
    assert "features/mine/tr2" in every.stdout and "features/mine/tr3" in every.stdout
    assert fs.list_feature_sets(alias_store) == [] and fs.list_staged(alias_store) == []

    run = _invoke("rm", "run", "-s", alias_store, "grid-1", "--yes")
    assert run.exit_code == 0 and "deleted results/grid-1" in run.stdout, run.output
    assert not fs.group_exists(alias_store, "results/grid-1")
    assert fs.validate(alias_store) == []
    for args, fragment in [
        (("features", "nothing"), "no feature set nothing"),
        (("features", "mine/tr9"), "no feature set mine/tr9"),
        (("run", "grid-1"), "no run 'grid-1'"),
    ]:
        result = _invoke("rm", args[0], "-s", alias_store, args[1], "--yes")
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("error: ") and fragment in line


def test_rm_is_refused_while_a_writer_holds_the_group(alias_store):
    before = {p: p.stat().st_mtime_ns for p in alias_store.rglob("*") if p.is_file()}
    with fs.group_lock(alias_store, "features/mine/tr2"):
        result = _invoke("rm", "features", "-s", alias_store, "mine/tr2", "--yes")
    assert result.exit_code == 2 and "is being written by" in result.stderr, result.output
    assert fs.is_complete(alias_store, "features/mine/tr2")
    after = {p: p.stat().st_mtime_ns for p in alias_store.rglob("*") if p.is_file()}
    assert {p: t for p, t in after.items() if "locks" not in str(p)} == {
        p: t for p, t in before.items() if "locks" not in str(p)
    }
