"""Stores of many stories (schema 2): creation, listing, story paths, upgrade of a v1 store."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import xarray as xr

import featstore.store as fs
from featstore.datasets import example_store
from featstore.errors import InputError, StoreError
from featstore.store import stories as st


def _tree_digest(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != "zarr.json"
    }


def test_collection_lists_stories_and_refuses_single_story_reads(tmp_path):
    store = st.create_collection(tmp_path / "n.zarr", dataset="n", tr_seconds=1.5)
    assert st.is_collection(store) and st.list_stories(store) == []
    shutil.copytree(example_store(), Path(st.story_path(store, "b")))
    shutil.copytree(example_store(), Path(st.story_path(store, "a")))
    assert st.list_stories(store) == ["a", "b"]
    with pytest.raises(StoreError, match=r"2 stories \(a, b\).*name one"):
        fs.store_n_tr(store)
    with pytest.raises(fs.groups.GroupNotFoundError, match=r"stories \(a, b\)"):
        fs.open_group(store, "fmri")
    with pytest.raises(InputError, match="no story 'c'; its stories: a, b"):
        st.story_store(store, "c")
    with pytest.raises(InputError, match=r"holds 2 stories"):
        st.story_store(store)
    one = st.story_store(store, "a")
    assert fs.store_n_tr(one) == 120
    # plain xarray reads a story's group from the collection's root
    ds = xr.open_zarr(store.location, group="stories/a/fmri", consolidated=False)
    assert ds.bold.dims == ("subject", "tr", "roi")


def test_ensure_collection_refuses_v1_store_and_other_tr(tmp_path):
    v1 = shutil.copytree(example_store(), tmp_path / "v1.zarr")
    with pytest.raises(InputError, match=r"one-story store.*featstore store upgrade"):
        st.ensure_collection(v1, dataset="x", tr_seconds=1.5)
    store = st.ensure_collection(tmp_path / "n.zarr", dataset="n", tr_seconds=1.5)
    with pytest.raises(InputError, match=r"TR 1\.5 s but this story's TR is 2\.0 s"):
        st.ensure_collection(store, dataset="n", tr_seconds=2.0)


def test_upgrade_moves_everything_and_resumes_an_interrupted_upgrade(tmp_path):
    v1 = Path(shutil.copytree(example_store(), tmp_path / "s.zarr"))
    before = _tree_digest(v1)
    store = st.upgrade_store(v1, story="tale")
    assert st.is_collection(store) and st.list_stories(store) == ["tale"]
    moved = Path(st.story_path(store, "tale"))
    assert _tree_digest(moved) == before  # every chunk and array byte-identical
    assert fs.root_attrs(str(moved))["story"] == "tale"
    with pytest.raises(InputError, match="already a store of stories"):
        st.upgrade_store(store)
    # an upgrade killed between its renames leaves `.s.zarr.upgrading`; a rerun finishes it
    v1b = Path(shutil.copytree(example_store(), tmp_path / "t.zarr"))
    pending = tmp_path / ".t.zarr.upgrading"
    st.upgrade_store(v1b, story="x")
    v1b.rename(pending)
    assert st.list_stories(st.upgrade_store(v1b)) == ["x"]


def test_v1_store_is_one_story(tmp_path):
    store = example_store()
    assert st.list_stories(store) == ["example"]
    assert st.story_store(store).location == str(store)
    with pytest.raises(InputError, match="holds one story, 'example'"):
        st.story_store(store, "other")
    with pytest.raises(InputError, match="invalid story name"):
        st.story_path(store, "../x")


def test_create_story_refuses_a_duplicate_name_and_a_one_story_store(tmp_path):
    store = st.create_collection(tmp_path / "n.zarr", dataset="n", tr_seconds=2.0)
    story = st.create_story(store, "pieman", n_tr=31)
    attrs = fs.root_attrs(story)
    assert (attrs["story"], attrs["n_tr"], attrs["tr_seconds"], attrs["featstore_schema"]) == (
        "pieman",
        31,
        2.0,
        1,
    )
    before = _tree_digest(Path(store))
    with pytest.raises(fs.groups.GroupExistsError, match="already has a story 'pieman'"):
        st.create_story(store, "pieman", n_tr=12)
    assert _tree_digest(Path(store)) == before and fs.store_n_tr(story) == 31
    assert fs.store_n_tr(st.create_story(store, "pieman", n_tr=12, overwrite=True)) == 12
    with pytest.raises(InputError, match="invalid story name"):
        st.create_story(store, "../x", n_tr=12)
    v1 = shutil.copytree(example_store(), tmp_path / "v1.zarr")
    with pytest.raises(InputError, match="one-story store"):
        st.create_story(v1, "tunnel", n_tr=12)
    assert fs.validate(store) == []
