"""``featstore dataset import-eeg``: MNE-written recordings into the ``eeg`` group."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from featstore.cli.main import app
from tests.datasets.conftest import tree_hash
from tests.eeg.synthetic import (
    CHANNELS,
    ONSETS_S,
    SFREQ,
    SUBJECTS,
    planted_response,
    story_words,
    write_raws,
)


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _one_line_error(result, *culprits):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for culprit in culprits:
        assert str(culprit) in lines[0], lines[0]


@pytest.mark.parametrize("fmt", ["fif", "brainvision", "edf"])
def test_import_eeg_opens_in_plain_xarray_on_the_story_clock(story, fmt):
    if fmt != "fif":
        pytest.importorskip({"brainvision": "pybv", "edf": "edfio"}[fmt])
    store, seconds, folder = story
    paths = write_raws(folder, seconds, fmt=fmt)
    # BrainVision markers come back as "<type>/<description>"
    event = "Comment/story_onset" if fmt == "brainvision" else "story_onset"
    pattern = str(folder / f"sub-*_eeg{paths[0].suffix}")
    # EDF and BrainVision carry no positions: the montage is named
    montage = [] if fmt == "fif" else ["--montage", "standard_1020"]
    result = _invoke(
        "dataset", "import-eeg", "-s", store, "--eeg", pattern, "--onset-event", event, *montage
    )
    assert result.exit_code == 0, result.output
    assert "2 subject(s) (sub-01, sub-02); 6 channels at 100 Hz" in result.stdout
    ds = xr.open_zarr(store, group="eeg", consolidated=False)
    assert ds.attrs["complete"] and ds.data.dims == ("subject", "time", "channel")
    assert ds.data.dtype == np.float32 and list(ds.subject.values) == SUBJECTS
    assert list(ds.channel.values) == CHANNELS and set(ds.ch_type.values) == {"eeg"}
    assert ds.attrs["onsets"] == pytest.approx(ONSETS_S) and ds.attrs["sfreq"] == SFREQ
    # 1 s before the onset (default --tmin) is kept; time 0 is the story onset
    assert ds.time.values[0] == pytest.approx(-1.0) and 0.0 in ds.time.values
    assert np.isfinite(ds.x.values).all()  # montage positions from standard_1020
    # the samples at time t are the recording's samples at onset + t
    _, onsets, _ = story_words()
    lead = ONSETS_S["sub-02"]
    expected = planted_response(
        round((lead + seconds + 1.0) * SFREQ), np.round((lead + onsets) * SFREQ).astype(int), 11
    )
    start = round((lead - 1.0) * SFREQ)
    got = ds.data.sel(subject="sub-02").values
    tolerance = 1e-12 if fmt == "fif" else 2e-8  # EDF/BrainVision store scaled integers
    np.testing.assert_allclose(got, expected[start : start + len(got)], atol=tolerance)
    assert len(paths) == 2


def test_filter_and_resample_are_mne_s_and_recorded(story):
    import mne

    store, seconds, folder = story
    paths = write_raws(folder, seconds)
    result = _invoke(
        "dataset",
        "import-eeg",
        "-s",
        store,
        "--eeg",
        paths[0],
        "--l-freq",
        1,
        "--h-freq",
        20,
        "--resample",
        50,
        "--tmin",
        0,
    )
    assert result.exit_code == 0, result.output
    ds = xr.open_zarr(store, group="eeg", consolidated=False)
    raw = mne.io.read_raw(paths[0], preload=True, verbose="error")
    raw.filter(1, 20, verbose="error").resample(50, verbose="error")
    onset = round(ONSETS_S["sub-01"] * 50)
    expected = raw.get_data()[:, onset : onset + ds.sizes["time"]].T
    np.testing.assert_allclose(ds.data.values[0], expected, rtol=1e-6, atol=1e-13)
    band = ds.attrs["filter"]
    assert (band["l_freq"], band["h_freq"], band["resample"]) == (1.0, 20.0, 50.0)
    assert band["sfreq_original"] == [100.0] and ds.attrs["sfreq"] == 50.0
    assert ds.time.values[0] == 0.0


def test_a_given_onset_replaces_the_event(story):
    store, seconds, folder = story
    paths = write_raws(folder, seconds)
    result = _invoke("dataset", "import-eeg", "-s", store, "--eeg", paths[1], "--onset", 3.5)
    assert result.exit_code == 0, result.output
    ds = xr.open_zarr(store, group="eeg", consolidated=False)
    assert ds.attrs["onset_rule"] == "offset 3.5 s"


def _bad_input(story, make_args):
    store, seconds, folder = story
    args = make_args(folder, seconds)
    before = tree_hash(store)
    result = _invoke("dataset", "import-eeg", "-s", store, *args)
    assert tree_hash(store) == before
    return result


def test_no_onset_event_is_one_error_line(story):
    result = _bad_input(
        story, lambda f, s: ["--eeg", write_raws(f, s)[0], "--onset-event", "Stimulus/S 99"]
    )
    _one_line_error(result, "no onset event 'Stimulus/S 99'", "'story_onset'", "sub-01")


def test_channel_count_changing_between_files_is_one_error_line(story):
    _, seconds, folder = story
    full = write_raws(folder, seconds)[0]
    sub = folder / "fewer"
    sub.mkdir()
    fewer = write_raws(sub, seconds, n_channels=5)[1]
    result = _bad_input(story, lambda f, s: ["--eeg", full, "--eeg", fewer])
    _one_line_error(result, "has 5 data channels", "has 6", "expected the same channels")


def test_words_past_the_recording_end_is_one_error_line(story):
    # recordings made for a story 10 s shorter than the alignment
    result = _bad_input(story, lambda f, s: ["--eeg", write_raws(f, s - 10.0)[0]])
    _one_line_error(result, "words past the recording's end", "sub-01")


def test_unreadable_file_and_missing_glob_are_one_error_line(story):
    result = _bad_input(story, lambda f, s: ["--eeg", f / "story_align.csv"])
    _one_line_error(result, "MNE cannot read it", "story_align.csv")
    result = _bad_input(story, lambda f, s: ["--eeg", f / "nothing-*.vhdr"])
    _one_line_error(result, "no such file")


def test_existing_eeg_group_needs_overwrite(eeg_store):
    before = tree_hash(eeg_store)
    result = _invoke("dataset", "import-eeg", "-s", eeg_store, "--eeg", "x.fif")
    _one_line_error(result, "already exists", "--overwrite")
    assert tree_hash(eeg_store) == before
