import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import xarray as xr

from featstore import store as fs
from featstore.datasets import (
    import_dataset,
    open_fmri,
    open_stimulus,
    read_alignment,
    read_audio,
    stimulus_sha256,
    write_fmri,
)
from featstore.datasets import importer as importer_module
from featstore.datasets.fmri_group import fmri_dataset
from featstore.datasets.stimulus_group import stimulus_dataset
from featstore.errors import GroupExistsError, InputError, StoreError
from tests.datasets.conftest import (
    ALIGN_ROWS,
    N_ROI,
    N_TR,
    SUBJECTS,
    TR,
    bold_arrays,
    csv_text,
    tree_hash,
)

WRITE_ATTRS = ("complete", "created", "featstore_version")


def _import(inputs, store, **kwargs):
    args = {"align": inputs["align"], "audio": inputs["audio"], "fmri": inputs["fmri"], "tr": TR}
    return import_dataset(store, **{**args, **kwargs})


def _without_write_attrs(ds):
    ds = ds.copy()
    ds.attrs = {k: v for k, v in ds.attrs.items() if k not in WRITE_ATTRS}
    return ds


def _siblings(store):
    return sorted(p.name for p in store.parent.iterdir() if p.name.startswith("."))


def test_import_writes_the_schema(inputs):
    store = inputs["dir"] / "story.zarr"
    report = _import(inputs, store)
    assert fs.validate(store) == []
    root = fs.root_attrs(store)
    assert (root["dataset"], root["n_tr"], root["tr_seconds"]) == ("story", N_TR, TR)
    stimulus = open_stimulus(store)
    onsets = [float(r[2]) if r[2] else 1.5 for r in ALIGN_ROWS]  # "a" is filled from "time"
    np.testing.assert_array_equal(stimulus.onset.values, onsets)
    np.testing.assert_array_equal(stimulus.tr_index.values, np.ceil(np.array(onsets) / TR))
    assert stimulus.tr_index.dtype == np.int64
    assert stimulus.word.values.tolist()[5:8] == ["lived", "", "old"]
    assert stimulus.time_filled.values.tolist().count(True) == 1
    assert stimulus.word_missing.values[6] and stimulus.word_missing.values.sum() == 1
    assert stimulus.audio.dtype == np.float32 and stimulus.audio.size == 160_000
    attrs = stimulus.attrs
    audio_sha = hashlib.sha256(inputs["audio"].read_bytes()).hexdigest()
    align_sha = hashlib.sha256(inputs["align"].read_bytes()).hexdigest()
    assert (attrs["audio_sha256"], attrs["align_sha256"]) == (audio_sha, align_sha)
    assert attrs["stimulus_sha256"] == stimulus_sha256(
        audio_sha, align_sha, tr=TR, stim_onset=0.0, tr_assign="ceil"
    )
    assert attrs["sample_rate"] == 16_000 and attrs["duration_s"] == 10.0
    assert (attrs["n_time_filled"], attrs["n_word_missing"], attrs["tr_assign"]) == (1, 1, "ceil")
    assert attrs["sources"]["audio_file"]["sample_rate"] == 22_050
    fmri = open_fmri(store)
    assert fmri.bold.dims == ("subject", "tr", "roi") and fmri.bold.dtype == np.float32
    assert fmri.bold.chunks == ((1, 1, 1), (N_TR,), (N_ROI,))
    assert fmri.subject.values.tolist() == SUBJECTS
    assert fmri.roi_name.values.tolist() == [f"roi{i}" for i in range(N_ROI)]
    assert fmri.attrs["atlas"] == "custom" and fmri.attrs["n_subjects"] == 3
    assert report.tr_mismatch == 0 and report.n_tr == N_TR and report.subjects == SUBJECTS
    assert (report.n_words, report.n_time_filled, report.n_word_missing) == (11, 1, 1)
    assert _siblings(store) == []


def test_ogg_opus_story_imports_and_its_sha256_is_recorded(inputs):
    rng = np.random.default_rng(11)
    audio = inputs["dir"] / "story.ogg"
    noise = 0.1 * rng.standard_normal((480_000, 2))  # 10 s at 48 kHz, stereo
    sf.write(audio, noise, 48_000, format="OGG", subtype="OPUS")
    store = inputs["dir"] / "opus.zarr"
    _import(inputs, store, audio=audio)
    stimulus = open_stimulus(store)
    assert stimulus.audio.size == 160_000 and stimulus.attrs["duration_s"] == 10.0
    assert stimulus.attrs["audio_sha256"] == hashlib.sha256(audio.read_bytes()).hexdigest()
    file_info = stimulus.attrs["sources"]["audio_file"]
    assert file_info == {
        "sample_rate": 48_000,
        "channels": 2,
        "frames": 480_000,
        "format": "OGG/OPUS",
    }


def test_round_trip_identical(inputs):
    store = inputs["dir"] / "story.zarr"
    _import(inputs, store)
    samples, audio_sha = read_audio(inputs["audio"])
    expected = stimulus_dataset(
        read_alignment(inputs["align"]),
        samples,
        audio_sha256=audio_sha,
        tr=TR,
        stim_onset=0.0,
        tr_assign="ceil",
        sources=open_stimulus(store).attrs["sources"],
    )
    xr.testing.assert_identical(_without_write_attrs(open_stimulus(store).load()), expected)
    arrays = bold_arrays()
    bold = open_fmri(store).load()
    expected_fmri = fmri_dataset(
        np.stack([arrays[s] for s in SUBJECTS]), SUBJECTS, source=bold.attrs["source"]
    )
    np.testing.assert_array_equal(bold["time"].values, np.arange(bold.sizes["tr"]) * TR)
    xr.testing.assert_identical(_without_write_attrs(bold.drop_vars("time")), expected_fmri)


def test_floor_rule_and_stim_onset(inputs):
    store = inputs["dir"] / "floor.zarr"
    report = _import(inputs, store, fmri=None, tr_assign="floor", stim_onset=2.0)
    stimulus = open_stimulus(store)
    expected = np.floor((stimulus.onset.values + 2.0) / TR)
    np.testing.assert_array_equal(stimulus.tr_index.values, expected)
    assert report.n_tr == 8 == fs.root_attrs(store)["n_tr"]  # ceil((2 + 10) / 1.5)
    assert report.tr_mismatch is None and stimulus.attrs["stim_onset"] == 2.0
    other = inputs["dir"] / "ceil.zarr"
    _import(inputs, other, fmri=None)
    assert stimulus.attrs["stimulus_sha256"] != open_stimulus(other).attrs["stimulus_sha256"]


@pytest.mark.parametrize(("n_tr", "ok"), [(9, True), (5, True), (10, False), (4, False)])
def test_fmri_tr_count_checked_against_audio(inputs, n_tr, ok):
    np.savez(inputs["fmri"], **bold_arrays(n_tr=n_tr))
    store = inputs["dir"] / "s.zarr"
    if ok:
        report = _import(inputs, store)
        assert report.tr_mismatch == n_tr - 7 and report.n_tr == n_tr
        stimulus = open_stimulus(store)
        assert report.n_words_after_scan == int((stimulus.tr_index.values >= n_tr).sum())
        assert any("difference" in line for line in report.lines())
    else:
        with pytest.raises(InputError, match=f"has {n_tr} TRs but audio .* spans 7 TRs of 1.5 s"):
            _import(inputs, store)
        assert not store.exists() and _siblings(store) == []
        report = _import(inputs, store, tr_tolerance=3)
        assert abs(report.tr_mismatch) == 3


def test_existing_store_needs_overwrite_and_stays_intact(inputs):
    store = inputs["dir"] / "s.zarr"
    _import(inputs, store)
    before = tree_hash(store)
    with pytest.raises(GroupExistsError, match="already exists; pass `overwrite`"):
        _import(inputs, store, fmri=None)
    assert tree_hash(store) == before
    # a failing import with --overwrite leaves the old store as it was
    arrays = bold_arrays()
    arrays["sub-02"][3, 1] = np.nan
    np.savez(inputs["dir"] / "nan.npz", **arrays)
    with pytest.raises(InputError, match="subject 'sub-02'"):
        _import(inputs, store, fmri=inputs["dir"] / "nan.npz", overwrite=True)
    assert tree_hash(store) == before and _siblings(store) == []
    report = _import(inputs, store, fmri=None, stim_onset=3.0, overwrite=True)
    assert fs.root_attrs(store)["n_tr"] == report.n_tr == 9
    assert not fs.group_exists(store, "fmri") and _siblings(store) == []


def test_failure_while_writing_leaves_nothing(inputs, monkeypatch):
    store = inputs["dir"] / "s.zarr"
    _import(inputs, store, fmri=None)
    before = tree_hash(store)
    real_write_group = importer_module.write_group

    def failing_write_group(target, group, *args, **kwargs):
        real_write_group(target, group, *args, **kwargs)
        if group == "fmri":
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(importer_module, "write_group", failing_write_group)
    with pytest.raises(StoreError, match=r"disk full while writing the new store in .*s\.zarr"):
        _import(inputs, store, overwrite=True)
    assert tree_hash(store) == before and _siblings(store) == []
    fresh = inputs["dir"] / "fresh.zarr"
    with pytest.raises(StoreError, match=r"disk full .*fresh\.zarr"):
        _import(inputs, fresh)
    assert not fresh.exists() and _siblings(fresh) == []


def test_overwrite_refuses_foreign_directories(inputs):
    foreign = inputs["dir"] / "mydata"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(InputError, match="is not a featstore store; refusing to replace it"):
        _import(inputs, foreign, overwrite=True)
    assert (foreign / "precious.txt").read_text() == "keep me"
    empty = inputs["dir"] / "empty.zarr"
    empty.mkdir()
    _import(inputs, empty, overwrite=True)
    assert fs.validate(empty) == []


def test_roi_names_hcp_and_trim(inputs):
    names = inputs["dir"] / "rois.txt"
    names.write_text("L_V1\nR_V1\nL_A1_ROI\nR_A1_ROI\nother\n", encoding="utf-8")
    store = inputs["dir"] / "named.zarr"
    _import(inputs, store, roi_names=names)
    fmri = open_fmri(store)
    assert fmri.roi_name.values.tolist() == ["V1", "V1", "A1", "A1", "other"]
    assert fmri.hemisphere.values.tolist() == ["L", "R", "L", "R", ""]
    with pytest.raises(InputError, match="`roi_names` names the ROIs of `fmri`"):
        _import(inputs, inputs["dir"] / "x.zarr", fmri=None, roi_names=names)
    arrays = bold_arrays(n_roi=360)
    arrays["sub-03"] = arrays["sub-03"][:6]
    np.savez(inputs["fmri"], **arrays)
    with pytest.raises(InputError, match="`trim_to_shortest`"):
        _import(inputs, inputs["dir"] / "hcp.zarr")
    report = _import(inputs, inputs["dir"] / "hcp.zarr", trim_to_shortest=True)
    assert report.trimmed == {"sub-01": 1, "sub-02": 1} and report.n_tr == 6
    fmri = open_fmri(inputs["dir"] / "hcp.zarr")
    assert fmri.attrs["atlas"] == "HCP-MMP1.0" and fmri.attrs["lengths_as_read"]["sub-03"] == 6
    assert fmri.roi_name.values[180] == "V1" and fmri.hemisphere.values[180] == "R"


def test_words_after_the_audio_and_bad_options(inputs):
    late = inputs["dir"] / "late.csv"
    late.write_text(csv_text([*ALIGN_ROWS, ("late", "late", "12.0", "12.5")]), encoding="utf-8")
    with pytest.raises(
        InputError, match=r"line 13: word starts at 12 s but audio .* lasts 10.000 s"
    ):
        _import(inputs, inputs["dir"] / "s.zarr", align=late)
    with pytest.raises(InputError, match="local stores only"):
        _import(inputs, "s3://bucket/s.zarr")
    with pytest.raises(InputError, match="tr_tolerance="):
        _import(inputs, inputs["dir"] / "s.zarr", tr_tolerance=-1)
    assert not (inputs["dir"] / "s.zarr").exists()


def test_write_fmri_adds_and_replaces(inputs):
    store = inputs["dir"] / "s.zarr"
    _import(inputs, store, fmri=None)
    rng = np.random.default_rng(5)
    bold = rng.standard_normal((2, N_TR, 4))
    assert write_fmri(store, bold, ["a", "b"], source="simulated") == "fmri"
    np.testing.assert_array_equal(open_fmri(store).bold.values, bold.astype(np.float32))
    before = tree_hash(store)
    with pytest.raises(GroupExistsError, match="already has an fmri group"):
        write_fmri(store, bold, ["a", "b"])
    with pytest.raises(InputError, match=r"bold has 6 TRs but the store .* has n_tr=7"):
        write_fmri(store, bold[:, :6], ["a", "b"], overwrite=True)
    with pytest.raises(InputError, match="subject 'a' appears more than once"):
        write_fmri(store, bold, ["a", "a"], overwrite=True)
    with pytest.raises(InputError, match="3 ROI names for 4 ROIs"):
        write_fmri(store, bold, ["a", "b"], roi_names=["x", "y", "z"], overwrite=True)
    with pytest.raises(InputError, match="hemisphere 'left'"):
        write_fmri(
            store,
            bold,
            ["a", "b"],
            roi_names=list("wxyz"),
            hemispheres=["left"] * 4,
            overwrite=True,
        )
    bad = bold.copy()
    bad[1, 2, 3] = np.inf
    with pytest.raises(
        InputError, match=r"subject 'b' has 1 NaN/inf .* TR 2, ROI 3 \(value inf\)$"
    ):
        write_fmri(store, bad, ["a", "b"], overwrite=True)
    assert tree_hash(store) == before
    write_fmri(store, bold[:1], ["only"], roi_names=list("wxyz"), atlas="mine", overwrite=True)
    fmri = open_fmri(store)
    assert fmri.subject.values.tolist() == ["only"] and fmri.attrs["atlas"] == "mine"
    assert fmri.roi_name.values.tolist() == list("wxyz") and fs.validate(store) == []


def test_staging_of_a_killed_import_is_removed(inputs):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    store = inputs["dir"] / "s.zarr"
    stale = inputs["dir"] / f".s.zarr.importing-{dead.stdout.strip()}-abcd1234"
    stale.mkdir()
    (stale / "zarr.json").write_text("{}")
    running = inputs["dir"] / f".s.zarr.importing-{os.getpid()}-abcd1234"
    running.mkdir()
    _import(inputs, store)
    assert not stale.exists() and running.exists()
