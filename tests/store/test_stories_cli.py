"""``featstore ls / info / validate / store upgrade`` on stores of stories."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from featstore import store as fs
from featstore.cli._common import console
from featstore.cli.main import app
from featstore.datasets import example_store
from featstore.store import stories as st


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return example_store(tmp_path_factory.mktemp("ex") / "example.zarr")


@pytest.fixture
def collection(tmp_path, example):
    """Stories a (complete) and b (toy-speech/tr1 missing, toy-lm/ctx8 incomplete)."""
    store = st.create_collection(tmp_path / "c.zarr", dataset="c", tr_seconds=1.5)
    for name in ("a", "b"):
        shutil.copytree(example, st.story_path(store, name))
        zarr.open_group(st.story_path(store, name), mode="r+").attrs["story"] = name
    b = st.story_store(store, "b")
    fs.delete_group(b, "features/toy-speech/tr1")
    fs.update_group_attrs(b, "features/toy-lm/ctx8", {"complete": False})
    return store


def test_ls_shows_stories_and_feature_sets_by_story(collection, monkeypatch):
    monkeypatch.setattr(console, "width", 200)
    result = _invoke("ls", collection)
    assert result.exit_code == 0, result.output
    rows = {
        cells[0]: cells[1:]
        for line in result.stdout.splitlines()
        if line.startswith("│") and (cells := [c.strip() for c in line.strip("│").split("│")])
    }
    assert rows["a"] == ["120", "2", "360 parcel", "3/3"]
    assert rows["b"] == ["120", "2", "360 parcel", "1/2"]
    assert rows["toy-lm/ctx8"] == ["complete", "incomplete"]
    assert rows["toy-speech/tr1"] == ["complete", "missing"]
    one = _invoke("ls", collection, "--story", "a")
    assert one.exit_code == 0 and "story=a" in one.stdout and "features/toy-lm/ctx8" in one.stdout
    bad = _invoke("ls", collection, "--story", "zz")
    assert bad.exit_code == 2 and "no story 'zz'; its stories: a, b" in bad.output


def test_info_and_validate_take_a_story(collection):
    info = _invoke("info", collection, "fmri", "--story", "a")
    assert info.exit_code == 0 and "bold" in info.stdout
    ambiguous = _invoke("info", collection, "fmri")
    assert ambiguous.exit_code == 2 and "holds 2 stories" in ambiguous.output
    assert "--story" in ambiguous.output
    assert _invoke("validate", collection, "--story", "a").exit_code == 0
    result = _invoke("validate", collection)
    assert result.exit_code == 2
    assert "stories/b/features/toy-lm/ctx8: complete: group is incomplete" in result.output
    assert "1 schema problem(s)" in result.output


def test_validate_checks_story_attrs_and_root_results(collection, example):
    fs.update_group_attrs(
        st.story_store(collection, "b"), "features/toy-lm/ctx8", {"complete": True}
    )
    assert fs.validate(collection) == []
    zarr.open_group(st.story_path(collection, "b"), mode="r+").attrs["story"] = "other"
    zarr.open_group(st.story_path(collection, "a"), mode="r+").attrs["tr_seconds"] = 2.0
    fs.write_group(collection, "results/run1", fs.open_group(example, "fmri").isel(tr=0))
    found = {f"{p.group}|{p.field}" for p in fs.validate(collection)}
    assert found == {
        "stories/b|story",
        "stories/a|tr_seconds",
        "results/run1|r",
        "results/run1|alpha",
        "results/run1|settings",
    }


def _digest(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != "zarr.json"
    }


def test_store_upgrade_keeps_every_chunk_features_and_runs(tmp_path, example):
    v1 = Path(shutil.copytree(example, tmp_path / "s.zarr"))
    r = fs.open_group(v1, "fmri").bold.isel(tr=0).expand_dims(config=["c1"]).compute()
    run = r.to_dataset(name="r").assign(alpha=r * 0 + 10.0)
    fs.write_group(v1, "results/run1", run.assign_attrs(settings={"pca": 2}))
    before = _digest(v1)
    result = _invoke("store", "upgrade", v1, "--story", "tale")
    assert result.exit_code == 0, result.output
    assert "stories/tale" in result.stdout
    after = _digest(v1)
    assert after == {f"stories/tale/{name}": digest for name, digest in before.items()}
    assert st.list_stories(v1) == ["tale"] and fs.validate(v1) == []
    tale = st.story_store(v1, "tale")
    np.testing.assert_array_equal(fs.open_group(tale, "results/run1").r.values, run.r.values)
    again = _invoke("store", "upgrade", v1)
    assert again.exit_code == 2 and "already a store of stories" in again.output


def test_features_import_into_one_story(tmp_path):
    from tests.extract.text.conftest import STORY, write_stimulus_store

    collection = st.create_collection(tmp_path / "c.zarr", dataset="c", tr_seconds=1.5)
    for name, n_tr in (("a", 23), ("b", 19)):
        write_stimulus_store(st.story_path(collection, name), STORY, n_tr=n_tr)
    np.save(tmp_path / "f.npy", np.random.default_rng(0).standard_normal((19, 4)))
    args = ["features", "import", "-s", collection, "--name", "my", "--window", "tr1"]
    args += ["--modality", "audio", tmp_path / "f.npy"]
    result = _invoke(*args, "--story", "b")
    assert result.exit_code == 0, result.output
    assert "wrote stories/b/features/my/tr1" in result.stdout
    assert fs.is_complete(st.story_store(collection, "b"), "features/my/tr1")
    assert not fs.group_exists(st.story_store(collection, "a"), "features/my/tr1")
    unnamed = _invoke(*args)
    assert unnamed.exit_code == 2 and "name one (--story)" in unnamed.output
    wrong_length = _invoke(*args, "--story", "a")  # story a has 23 TRs
    assert wrong_length.exit_code == 2 and "23" in wrong_length.output


def test_rm_features_from_every_story_or_the_ones_named(collection):
    missing = _invoke("rm", "features", "-s", collection, "toy-speech/tr1", "--story", "b", "-y")
    assert missing.exit_code == 2 and "no feature set toy-speech/tr1" in missing.output
    every = _invoke("rm", "features", "-s", collection, "toy-speech", "-y")
    assert every.exit_code == 0, every.output
    assert every.stdout.split() == ["deleted", "stories/a/features/toy-speech/tr1"]
    one = _invoke("rm", "features", "-s", collection, "toy-lm/ctx8", "--story", "b", "-y")
    assert one.stdout.split() == ["deleted", "stories/b/features/toy-lm/ctx8"]
    assert fs.is_complete(st.story_store(collection, "a"), "features/toy-lm/ctx8")
