"""The Python API: Store opened once and passed down, Run over a results group, the same
results as the library functions the command line calls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import featstore as fs
from featstore.errors import StoreError
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.runs.grid import run_grid
from featstore.evaluate.runs.summary import summary_table
from featstore.store import root as store_root
from tests.plot.synthetic import AUDIO_KEY, make_grid_store

SETTINGS = EncodingSettings(pca=8, alphas=(1.0, 100.0, 10000.0), cv=3)


@pytest.fixture(scope="module")
def grid_store(tmp_path_factory):
    return make_grid_store(tmp_path_factory.mktemp("api") / "sim.zarr")


def test_open_store_checks_the_store_once_and_hands_the_root_down(grid_store, monkeypatch):
    opened = []
    check = store_root._open_checked_root
    monkeypatch.setattr(
        store_root, "_open_checked_root", lambda *a: opened.append(a[1]) or check(*a)
    )
    store = fs.open_store(grid_store)
    assert opened == ["r"]
    store.fmri.bold.sum().compute()
    store.features("gpt2", "ctx20", layers=[1])
    store.features(AUDIO_KEY, "tr2")
    assert store.attrs["n_tr"] == store.fmri.sizes["tr"]
    assert opened == ["r"]  # every read above reused the store's root
    assert fs.open_store(str(grid_store)) == store and str(store) == str(grid_store)


def test_grid_run_and_summary_equal_the_library_calls(grid_store):
    store = fs.open_store(grid_store)
    run = store.grid(
        models=["wavlm:tr2@1,2", ("gpt2", None, [3])],
        fusions=["gpt2@3+wavlm:tr2@2"],
        settings=SETTINGS,
        run_id="api",
    )
    assert isinstance(run, fs.Run) and run.run_id == "api"
    assert run.configs == [
        "wavlm/tr2/layer1",
        "wavlm/tr2/layer2",
        "gpt2/ctx20/layer3",
        "gpt2/ctx20+wavlm/tr2/3x2",
    ]
    assert run.r.dims == ("config", "subject", "roi")
    assert run.settings == SETTINGS
    reference = run_grid(
        grid_store,
        models=[("wavlm", ["tr2"], [1, 2]), ("gpt2", None, [3])],
        fusions=[(("gpt2", None, [3]), ("wavlm", ["tr2"], [2]))],
        settings=SETTINGS,
        run_id="library",
    )
    np.testing.assert_array_equal(run.r.values, store.run(reference).r.values)
    pd.testing.assert_frame_equal(run.summary(), summary_table(grid_store, ["api"]))
    assert set(store.runs()) >= {"api", "library"}
    table = run.roi_table(["wavlm/tr2/layer2"])
    assert {"roi_name", "r"} <= set(table.columns) and len(table) == 360


def test_run_significance_and_report(grid_store, tmp_path):
    store = fs.open_store(grid_store)
    run = store.grid(models=["wavlm:tr2@2"], settings=SETTINGS, run_id="small")
    stats = run.significance(n_perm=19, block=5)
    np.testing.assert_array_equal(stats["r"].values, run.r.values)
    page = store.report(tmp_path / "report", runs=["small"], brain_maps=False)
    assert page.name == "index.html" and "wavlm/tr2/layer2" in page.read_text("utf-8")


def test_create_store_and_errors(tmp_path):
    store = fs.create_store(tmp_path / "new.zarr", dataset="mine", tr_seconds=2.0, n_tr=11)
    assert isinstance(store, fs.Store) and store.attrs["tr_seconds"] == 2.0
    assert store.validate() == [] and [info.path for info in store.ls()] == []
    with pytest.raises(StoreError, match="no store at"):
        fs.open_store(tmp_path / "absent.zarr")
    with pytest.raises(AttributeError, match="no attribute 'Stores'"):
        fs.Stores  # noqa: B018


def test_store_of_stories_hands_out_one_store_per_story(tmp_path):
    import shutil

    import zarr

    from featstore.datasets import example_store
    from featstore.errors import InputError
    from featstore.store.stories import story_path

    store = fs.create_collection(tmp_path / "narr.zarr", dataset="narr", tr_seconds=1.5)
    example = example_store(tmp_path / "example.zarr")
    for name in ("tunnel", "pieman"):
        shutil.copytree(example, story_path(store, name))
        zarr.open_group(story_path(store, name), mode="r+").attrs["story"] = name
    reopened = fs.open_store(store.location)
    assert reopened.is_collection and reopened.stories == ["pieman", "tunnel"]
    pieman = reopened.story("pieman")
    assert not pieman.is_collection and pieman.stories == ["pieman"]
    assert pieman.features("toy-lm", "ctx8").hidden.shape == (3, 120, 8)
    assert next(g.path for g in pieman.ls()) == "fmri" and pieman.validate() == []
    assert pieman.story() is pieman and reopened.validate() == []
    with pytest.raises(InputError, match="no story 'lucy'; its stories: pieman, tunnel"):
        reopened.story("lucy")
    with pytest.raises(StoreError, match="name one"):
        reopened.fmri  # noqa: B018 - the property raises
