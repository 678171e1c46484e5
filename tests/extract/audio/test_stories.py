"""Audio-window extraction over a store of stories: each story's windows from its own audio."""

from __future__ import annotations

import shutil

import numpy as np
import zarr

from featstore import store as fs
from featstore.extract import extract
from featstore.store import stories as st

from .conftest import TR, noise_audio, write_stimulus


def _two_stories(tmp_path):
    """Stories a (8.9 s of audio, 20 TRs) and b (6.1 s, 13 TRs), and a one-story copy of each."""
    collection = st.create_collection(tmp_path / "c.zarr", dataset="c", tr_seconds=TR)
    for name, seconds, n_tr, seed in (("a", 8.9, 20, 0), ("b", 6.1, 13, 1)):
        path = st.story_path(collection, name)
        write_stimulus(path, noise_audio(seconds, seed), stim_onset=0.75, tr=TR, n_tr=n_tr)
        zarr.open_group(path, mode="r+").attrs["story"] = name
        shutil.copytree(path, tmp_path / f"{name}.zarr")
    return collection


def test_spectral_windows_of_each_story_equal_one_story_extraction(tmp_path):
    collection = _two_stories(tmp_path)
    written = extract(collection, "spectral", tr_wins=[1, 3])
    assert written == [
        f"stories/{name}/features/spectral/{window}" for name in "ab" for window in ("tr1", "tr3")
    ]
    for name, n_tr in (("a", 20), ("b", 13)):
        single = tmp_path / f"{name}.zarr"
        extract(single, "spectral", tr_wins=[1, 3])
        for window in ("tr1", "tr3"):
            got = fs.open_group(collection, f"stories/{name}/features/spectral/{window}").hidden
            want = fs.open_group(single, f"features/spectral/{window}").hidden
            assert got.sizes["tr"] == n_tr
            np.testing.assert_array_equal(got.values, want.values)


def test_audio_model_loads_once_for_windows_and_once_for_words(tmp_path, tiny_models, monkeypatch):
    import transformers

    collection = _two_stories(tmp_path)
    loads, original = [], transformers.AutoModel.from_pretrained

    def counting(*args, **kwargs):
        loads.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", counting)
    windows = extract(collection, tiny_models["wavlm"], tr_wins=[2], batch_size=8)
    words = extract(collection, tiny_models["wavlm"], words=True)
    assert len(loads) == 2  # one per run, not per story
    assert [g.split("/")[1] for g in windows] == [g.split("/")[1] for g in words] == ["a", "b"]
    assert fs.open_group(collection, windows[1]).hidden.sizes["tr"] == 13
