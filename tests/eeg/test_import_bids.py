"""``import-eeg --bids ROOT --task STORY``: a BIDS tree written by mne-bids itself."""

from __future__ import annotations

import mne
import numpy as np
import xarray as xr
from typer.testing import CliRunner

from featstore.cli.main import app
from tests.datasets.conftest import tree_hash
from tests.eeg.synthetic import ONSETS_S, SUBJECTS, write_raws


def write_bids(folder, seconds):
    """The synthetic recordings as BIDS (BrainVision), events.tsv holding the onset."""
    from mne_bids import BIDSPath, write_raw_bids

    root = folder / "bids"
    for path in write_raws(folder, seconds):
        raw = mne.io.read_raw_fif(path, verbose="error")
        subject = path.name.split("_")[0].removeprefix("sub-")
        target = BIDSPath(subject=subject, task="s1", datatype="eeg", root=root)
        write_raw_bids(raw, target, format="BrainVision", allow_preload=True, verbose=False)
    return root


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_bids_import_equals_importing_the_same_recordings_by_file(story):
    store, seconds, folder = story
    root = write_bids(folder, seconds)
    result = _invoke("dataset", "import-eeg", "-s", store, "--bids", root, "--task", "s1")
    assert result.exit_code == 0, result.output
    bids = xr.open_zarr(store, group="eeg", consolidated=False).load()
    assert list(bids.subject.values) == SUBJECTS
    # by file, MNE sees the BrainVision marker; through mne-bids, events.tsv's trial_type
    vhdr = [arg for p in sorted(root.rglob("*_eeg.vhdr")) for arg in ("--eeg", p)]
    marker = ("--onset-event", "Stimulus/S  1")
    by_file = _invoke("dataset", "import-eeg", "-s", store, "--overwrite", *vhdr, *marker)
    assert by_file.exit_code == 0, by_file.output
    files = xr.open_zarr(store, group="eeg", consolidated=False).load()
    np.testing.assert_array_equal(bids.data.values, files.data.values)
    for subject in SUBJECTS:
        assert f"{subject}" in result.output and f"{ONSETS_S[subject]:g}" in result.output


def test_no_recording_of_the_task_is_one_error_line_and_nothing_written(story):
    store, seconds, folder = story
    root = write_bids(folder, seconds)
    before = tree_hash(store)
    result = _invoke("dataset", "import-eeg", "-s", store, "--bids", root, "--task", "s2")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no EEG/MEG recording of task 's2'" in lines[0], lines
    assert _invoke("dataset", "import-eeg", "-s", store, "--task", "s1").exit_code == 2
    assert tree_hash(store) == before
