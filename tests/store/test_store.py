import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
import zarr

from featstore import store as fs
from featstore.errors import (
    GroupExistsError,
    GroupLockedError,
    GroupNotFoundError,
    IncompleteGroupError,
    InputError,
    SchemaVersionError,
    StoreError,
)
from tests.conftest import N_TR


def _hidden(n_layer=3, dim=11, seed=0):
    return np.random.default_rng(seed).standard_normal((n_layer, N_TR, dim)).astype("float32")


def test_create_store_root_attrs(empty_store):
    attrs = fs.root_attrs(empty_store)
    assert attrs["featstore_schema"] == 1  # a one-story store; collections are 2
    assert attrs["n_tr"] == N_TR and attrs["tr_seconds"] == 1.5 and attrs["dataset"] == "tiny"
    assert "created" in attrs
    assert fs.validate(empty_store) == []


def test_create_store_refuses_existing(empty_store):
    with pytest.raises(GroupExistsError, match="`overwrite`"):
        fs.create_store(empty_store, dataset="x", tr_seconds=1.0, n_tr=5)
    fs.create_store(empty_store, dataset="x", tr_seconds=1.0, n_tr=5, overwrite=True)
    assert fs.root_attrs(empty_store)["n_tr"] == 5


def test_feature_round_trip_plain_xarray(empty_store, feature_attrs):
    hidden = _hidden()
    group = fs.write_feature_set(empty_store, "org--tiny-model", "tr6", hidden, attrs=feature_attrs)
    assert group == "features/org--tiny-model/tr6"
    ds = xr.open_zarr(str(empty_store), group=group, consolidated=False)
    assert ds.hidden.dims == ("layer", "tr", "dim")
    # lazily read, one chunk per layer
    assert ds.hidden.chunks == ((1, 1, 1), (N_TR,), (11,))
    np.testing.assert_array_equal(ds.hidden.values, hidden)
    assert ds.attrs["complete"] is True and ds.attrs["tr_win"] == 6
    assert ds.attrs["layers"] == [0, 1, 2]
    again = fs.open_feature_set(empty_store, "org--tiny-model", "tr6")
    xr.testing.assert_identical(ds, again)


def test_feature_layer_selection(empty_store, feature_attrs):
    hidden = _hidden(n_layer=4)
    fs.write_feature_set(empty_store, "k", "tr2", hidden, attrs=feature_attrs, layers=[0, 1, 2, 3])
    ds = fs.open_feature_set(empty_store, "k", "tr2", layers=[3, 1])
    np.testing.assert_array_equal(ds.hidden.values, hidden[[3, 1]])
    with pytest.raises(InputError, match="no layer \\[7\\]"):
        fs.open_feature_set(empty_store, "k", "tr2", layers=[7])


def test_feature_tr_mismatch_names_values(empty_store, feature_attrs):
    with pytest.raises(InputError, match="has 5 TRs but the store has n_tr=37"):
        fs.write_feature_set(
            empty_store, "k", "tr1", np.zeros((2, 5, 3), "f4"), attrs=feature_attrs
        )


def test_feature_missing_provenance(empty_store):
    with pytest.raises(InputError, match="lacks provenance attrs"):
        fs.write_feature_set(empty_store, "k", "tr1", _hidden(), attrs={"modality": "audio"})


def test_overwrite_needed(empty_store, feature_attrs):
    fs.write_feature_set(empty_store, "k", "tr1", _hidden(), attrs=feature_attrs)
    with pytest.raises(GroupExistsError, match="features/k/tr1"):
        fs.write_feature_set(empty_store, "k", "tr1", _hidden(seed=1), attrs=feature_attrs)
    fs.write_feature_set(
        empty_store, "k", "tr1", _hidden(seed=1), attrs=feature_attrs, overwrite=True
    )
    np.testing.assert_array_equal(
        fs.open_feature_set(empty_store, "k", "tr1").hidden, _hidden(seed=1)
    )


def test_incomplete_group_is_refused(empty_store, feature_attrs):
    group = fs.write_feature_set(empty_store, "k", "tr1", _hidden(), attrs=feature_attrs)
    fs.groups.mark_complete(empty_store, group, False)
    with pytest.raises(IncompleteGroupError, match="incomplete"):
        fs.open_feature_set(empty_store, "k", "tr1")
    problems = fs.validate(empty_store)
    assert [p.field for p in problems] == ["complete"]


def test_missing_group_lists_present(empty_store, feature_attrs):
    fs.write_feature_set(empty_store, "k", "tr1", _hidden(), attrs=feature_attrs)
    with pytest.raises(GroupNotFoundError, match="present: k/tr1"):
        fs.feature_set_attrs(empty_store, "gpt2", "ctx200")


def test_newer_schema_is_refused(empty_store):
    root = zarr.open_group(str(empty_store), mode="r+")
    root.attrs["featstore_schema"] = fs.SCHEMA_VERSION + 1
    with pytest.raises(SchemaVersionError, match="schema version 3"):
        fs.root_attrs(empty_store)


def test_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="no store at"):
        fs.root_attrs(tmp_path / "absent.zarr")
    zarr.open_group(str(tmp_path / "foreign.zarr"), mode="w")
    with pytest.raises(StoreError, match="not a featstore store"):
        fs.root_attrs(tmp_path / "foreign.zarr")
    (tmp_path / "garbage.zarr").mkdir()
    (tmp_path / "garbage.zarr" / "zarr.json").write_text("{not json")
    with pytest.raises(StoreError):
        fs.root_attrs(tmp_path / "garbage.zarr")


def test_validate_names_group_and_field(empty_store, feature_attrs):
    fs.write_feature_set(empty_store, "k", "tr1", _hidden(), attrs=feature_attrs)
    node = zarr.open_group(str(empty_store), path="features/k/tr1", mode="r+")
    del node.attrs["model_id"]
    node.attrs["tr_win"] = 3
    problems = {str(p) for p in fs.validate(empty_store)}
    assert "features/k/tr1: model_id: attr missing" in problems
    assert "features/k/tr1: tr_win: is 3, expected 1" in problems


def test_list_groups_and_feature_sets(empty_store, feature_attrs):
    fs.write_feature_set(empty_store, "b", "tr1", _hidden(), attrs=feature_attrs)
    fs.write_feature_set(empty_store, "a", "tr2", _hidden(n_layer=2), attrs=feature_attrs)
    infos = fs.list_feature_sets(empty_store)
    assert [(i.key, i.window, i.n_layers, i.n_tr, i.dim) for i in infos] == [
        ("a", "tr2", 2, N_TR, 11),
        ("b", "tr1", 3, N_TR, 11),
    ]
    assert [g.path for g in fs.list_groups(empty_store)] == ["features/a/tr2", "features/b/tr1"]


@pytest.mark.parametrize(
    ("model_id", "key"),
    [
        ("gpt2", "gpt2"),
        ("microsoft/wavlm-base-plus", "microsoft--wavlm-base-plus"),
        ("/data/models/my model/", "my-model"),
        ("./tiny", "tiny"),
    ],
)
def test_model_key(model_id, key):
    assert fs.model_key(model_id) == key


def test_window_names():
    assert fs.window_name(ctx=200) == "ctx200"
    assert fs.window_name(tr_win=6) == "tr6"
    assert fs.parse_window("tr6") == ("tr", 6)
    for bad in ("tr0", "ctx", "win6", "tr-1"):
        with pytest.raises(InputError, match="invalid window"):
            fs.parse_window(bad)


def test_stage_resume_and_settings_change(empty_store):
    arrays = {"hidden": fs.StagedArray(shape=(3, N_TR, 5), dtype="float32", block_axis=1)}
    data = _hidden(dim=5)
    stage = fs.BlockStage(empty_store, "features/k/tr1", arrays, block_size=10, settings={"a": 1})
    assert stage.n_blocks == 4 and stage.pending_blocks() == [0, 1, 2, 3]
    for index in (0, 2):
        stage.write_block(index, hidden=data[:, stage.block_slice(index)])
    # a new process with the same settings resumes
    again = fs.BlockStage(empty_store, "features/k/tr1", arrays, block_size=10, settings={"a": 1})
    assert again.resumed_blocks == 2 and again.pending_blocks() == [1, 3]
    for index in again.pending_blocks():
        again.write_block(index, hidden=data[:, again.block_slice(index)])
    staged = again.dask_arrays()["hidden"]
    assert staged.chunks[0] == (1, 1, 1)
    np.testing.assert_array_equal(staged.compute(), data)
    # other settings start over
    other = fs.BlockStage(empty_store, "features/k/tr1", arrays, block_size=10, settings={"a": 2})
    assert other.resumed_blocks == 0 and other.pending_blocks() == [0, 1, 2, 3]
    other.discard()
    assert "_work/features/k/tr1" not in zarr.open_group(str(empty_store), mode="r")


def test_stage_rejects_wrong_block_shape(empty_store):
    arrays = {"r": fs.StagedArray(shape=(4, 2, 3), dtype="float32")}
    stage = fs.BlockStage(empty_store, "results/x", arrays, block_size=1, settings={})
    with pytest.raises(InputError, match="expected \\(1, 2, 3\\)"):
        stage.write_block(0, r=np.zeros((1, 3, 2)))


def test_group_lock_excludes_other_process(empty_store):
    code = (
        "import sys, time; from featstore.store import group_lock\n"
        "with group_lock(sys.argv[1], 'features/k/tr1'):\n"
        "    print('locked', flush=True); time.sleep(30)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(empty_store)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(GroupLockedError, match="being written by pid"):
            with fs.group_lock(empty_store, "features/k/tr1"):
                pass
        with fs.group_lock(empty_store, "features/other/tr1"):
            pass
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    with fs.group_lock(empty_store, "features/k/tr1"):
        pass


_WRITER = """
import sys
import numpy as np
from featstore import store as fs
path, key, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(seed)
attrs = {"model_id": key, "revision": "r", "modality": "audio", "pooling": "mean",
         "stimulus_sha256": "0" * 64}
for window in ("tr1", "tr2", "tr3", "tr6"):
    hidden = rng.standard_normal((5, 37, 64)).astype("float32")
    fs.write_feature_set(path, key, window, hidden, attrs=attrs)
"""


def test_two_processes_write_different_models(empty_store):
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(empty_store), key, str(seed)])
        for seed, key in enumerate(("model-a", "model-b"))
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    infos = fs.list_feature_sets(empty_store)
    assert len(infos) == 8 and all(i.complete for i in infos)
    for seed, key in enumerate(("model-a", "model-b")):
        rng = np.random.default_rng(seed)
        for window in ("tr1", "tr2", "tr3", "tr6"):
            expected = rng.standard_normal((5, 37, 64)).astype("float32")
            got = fs.open_feature_set(empty_store, key, window).hidden.values
            np.testing.assert_array_equal(got, expected)
    assert fs.validate(empty_store) == []
    root_json = json.loads((empty_store / "zarr.json").read_text())
    assert root_json["attributes"]["featstore_schema"] == 1


def test_failed_write_leaves_nothing_when_other_chunks_land_late(empty_store, monkeypatch):
    """zarr writes the chunks of one assignment concurrently and raises on the first that
    fails without waiting for the others; those land after the failure surfaced and must
    not survive it."""
    import errno
    import threading
    import time

    import zarr.storage._local as zarr_local

    real_put = zarr_local._put
    landed = threading.Event()

    def put(path, value, exclusive=False):
        parts = str(path).split("/")
        chunk = parts[parts.index("c") + 1 :] if "c" in parts else None
        if chunk == ["0", "0", "0"]:  # the first layer's chunk fails at once
            raise OSError(errno.ENOSPC, "ENOSPC injected", str(path))
        if chunk:  # the other layers' chunks are still being written when that happens
            time.sleep(0.3)
            result = real_put(path, value, exclusive=exclusive)
            landed.set()
            return result
        return real_put(path, value, exclusive=exclusive)

    data = np.ones((4, 12, 6), dtype="float32")
    ds = xr.Dataset({"hidden": (("layer", "tr", "dim"), data)})
    monkeypatch.setattr(zarr_local, "_put", put)
    with pytest.raises(StoreError, match="disk full"):
        fs.write_group(
            empty_store, "features/late/ctx5", ds, encoding={"hidden": {"chunks": (1, 12, 6)}}
        )
    monkeypatch.undo()
    assert landed.is_set()  # the late chunks really were written
    assert not fs.group_exists(empty_store, "features/late/ctx5")
    assert not (empty_store / "features" / "late").exists()
