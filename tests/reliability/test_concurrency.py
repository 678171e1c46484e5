"""Several writers and readers on one store at once: no lost group, no corrupt metadata.

The processes start pre-imported (``tests/reliability/_cli_driver.py``) and are released
together, so their writes really overlap.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from featstore import store as fs
from tests.evaluate.grid.conftest import build_store as build_grid_store
from tests.extract.text.conftest import STORY, write_stimulus_store
from tests.reliability.conftest import REPORT
from tests.reliability.test_crash_resume import Driver, assert_same_group

pytestmark = pytest.mark.slow


def _together(commands: list[tuple[str, list]]) -> list[tuple[int, str]]:
    drivers = [Driver(program, argv) for program, argv in commands]
    for driver in drivers:
        driver.go()
    return [driver.finish() for driver in drivers]


def _extract(model: str, ctx: int, store: Path) -> list:
    return [
        "extract",
        "--model",
        model,
        "--ctx",
        str(ctx),
        "--threads",
        "1",
        "--quiet",
        "--store",
        store,
    ]


def test_three_models_extracted_at_once(tmp_path, tiny_gpt2, tiny_bert, tiny_roberta):
    words = STORY * 2
    shared = Path(write_stimulus_store(tmp_path / "shared.zarr", words))
    root_before = json.loads((shared / "zarr.json").read_text())
    models = {"tiny-gpt2": tiny_gpt2, "tiny-bert": tiny_bert, "tiny-roberta": tiny_roberta}
    results = _together([("featstore", _extract(path, 16, shared)) for path in models.values()])
    assert [code for code, _ in results] == [0, 0, 0], [err for _, err in results]
    assert fs.validate(shared) == []
    assert json.loads((shared / "zarr.json").read_text()) == root_before
    assert sorted(info.key for info in fs.list_feature_sets(shared)) == sorted(models)
    # each equals the same extraction done in a store of its own
    alone = {key: Path(write_stimulus_store(tmp_path / f"{key}.zarr", words)) for key in models}
    results = _together([("featstore", _extract(models[k], 16, alone[k])) for k in models])
    assert [code for code, _ in results] == [0, 0, 0], [err for _, err in results]
    for key in models:
        group = f"features/{key}/ctx16"
        assert_same_group(
            fs.open_group(shared, group).load(), fs.open_group(alone[key], group).load()
        )
    staged = [p for p in (shared / "_work").rglob("zarr.json") if '"array"' in p.read_text()]
    assert staged == []  # every stage was discarded (empty parent groups may stay)
    REPORT.append("concurrency: 3 text models extracted into one store at once, all intact")


def test_same_feature_set_twice_at_once(tmp_path, tiny_gpt2):
    store = Path(write_stimulus_store(tmp_path / "s.zarr", STORY * 3))
    results = _together([("featstore", _extract(tiny_gpt2, 12, store))] * 2)
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2).strip().splitlines()
    assert len(loser) == 1 and (
        "is being written by" in loser[0] or "already exists" in loser[0]
    ), loser
    assert fs.validate(store) == [] and fs.is_complete(store, "features/tiny-gpt2/ctx12")


def test_grid_reads_while_an_extraction_writes(tmp_path, tiny_gpt2):
    store, quiet = tmp_path / "busy.zarr", tmp_path / "quiet.zarr"
    build_grid_store(store)
    shutil.copytree(store, quiet)
    grid = ["grid", "--model", "gpt2", "--ctx", "20", "--model", "wavlm", "--tr-win", "2,3"]
    grid += ["--layers", "all", "--pca", "6", "--delays", "1,2,3", "--alphas", "0.1,10,1000"]
    grid += ["--cv", "3", "--run", "busy", "--quiet", "--store"]
    results = _together(
        [("featstore", _extract(tiny_gpt2, 10, store)), ("evaluate", [*grid, store])]
    )
    assert [code for code, _ in results] == [0, 0], [err for _, err in results]
    for command in (("featstore", _extract(tiny_gpt2, 10, quiet)), ("evaluate", [*grid, quiet])):
        assert _together([command])[0][0] == 0  # one after the other
    assert fs.validate(store) == []
    for group in ("results/busy", "features/tiny-gpt2/ctx10"):
        assert_same_group(fs.open_group(store, group).load(), fs.open_group(quiet, group).load())
    REPORT.append("concurrency: a grid ran while an extraction wrote the same store; both exact")
