"""Stores for the EEG tests: the synthetic story, its word features and (optionally) its EEG."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from featstore import store as fs
from featstore.datasets.eeg import import_eeg
from featstore.datasets.importer import import_dataset
from tests.eeg.synthetic import N_DIM, N_LAYERS, TR, word_vectors, write_raws, write_story

FEATURE_ATTRS = {
    "model_id": "synthetic/planted",
    "revision": "none",
    "modality": "text",
    "pooling": "last-token",
    "stimulus_sha256": "0" * 64,
}


def write_planted_features(store) -> None:
    """``features/planted/ctx8``: random TR-rate states and the planted per-word vectors."""
    n_tr = fs.store_n_tr(store)
    hidden = np.random.default_rng(4).standard_normal((N_LAYERS, n_tr, N_DIM)).astype("f4")
    fs.write_feature_set(
        store, "planted", "ctx8", hidden, attrs=FEATURE_ATTRS, word_hidden=word_vectors()
    )


def _story_store(folder, punctuation=True):
    align, audio, seconds = write_story(folder, punctuation=punctuation)
    store = folder / "eeg.zarr"
    import_dataset(store, align=align, audio=audio, tr=TR)
    write_planted_features(store)
    return store, seconds


@pytest.fixture
def story(tmp_path):
    """(store with stimulus + features/planted/ctx8, story seconds, folder)."""
    store, seconds = _story_store(tmp_path)
    return store, seconds, tmp_path


@pytest.fixture(scope="session")
def _eeg_store_once(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eeg")
    store, seconds = _story_store(folder)
    import_eeg(store, [str(p) for p in write_raws(folder, seconds)])
    return store


@pytest.fixture
def eeg_store(_eeg_store_once, tmp_path):
    """A private copy of the synthetic store with its EEG imported (FIF)."""
    target = tmp_path / "imported" / "eeg.zarr"
    shutil.copytree(_eeg_store_once, target)
    return target
