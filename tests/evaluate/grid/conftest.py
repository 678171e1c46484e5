"""A small store for grid tests: stimulus, fmri (3 subjects × 80 TRs × 7 ROIs) and three
feature sets with planted signals.

* ``gpt2/ctx20`` (text, layers 0..6, 9 dims): layer 4 drives ROIs 3 and 4;
* ``wavlm/tr2`` and ``wavlm/tr3`` (audio, layers 0..4, 11 dims): layer 3 of tr3 drives
  ROIs 0, 1 and 2 (tr2 carries a weaker copy);
* ROIs 5 and 6 are noise.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr

from featstore import store as fs
from featstore.evaluate.encoding.settings import EncodingSettings

N_SUBJECTS, N_TR, N_ROI = 3, 80, 7
TEXT_KEY, AUDIO_KEY = "gpt2", "microsoft--wavlm-base-plus"
TEXT_LAYERS, AUDIO_LAYERS = 7, 5
TEXT_DIM, AUDIO_DIM = 9, 11
LAG = 2


def _feature_attrs(model_id: str, modality: str) -> dict:
    return {
        "model_id": model_id,
        "revision": "test",
        "modality": modality,
        "pooling": "mean",
        "stimulus_sha256": "a" * 64,
    }


def _lagged(x: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    out[LAG:] = x[:-LAG]
    return out


def build_store(path) -> None:
    """Write the grid test store at ``path``."""
    rng = np.random.default_rng(7)
    fs.create_store(path, dataset="tiny-grid", tr_seconds=1.5, n_tr=N_TR)
    n_words = 50
    stimulus = xr.Dataset(
        {
            "word": ("word", np.asarray([f"w{i}" for i in range(n_words)], dtype=object)),
            "word_lower": ("word", np.asarray([f"w{i}" for i in range(n_words)], dtype=object)),
            "onset": ("word", np.linspace(0, 110, n_words)),
            "offset": ("word", np.linspace(1, 111, n_words)),
            "tr_index": ("word", (np.linspace(0, 110, n_words) // 1.5).astype(np.int64)),
            "audio": ("sample", np.zeros(1600, dtype=np.float32)),
        },
        attrs={
            "audio_sha256": "b" * 64,
            "sample_rate": 16000,
            "align_sha256": "c" * 64,
            "tr_assign": "ceil",
            "stimulus_sha256": "a" * 64,
        },
    )
    fs.write_group(path, "stimulus", stimulus)

    text = rng.standard_normal((TEXT_LAYERS, N_TR, TEXT_DIM)).astype(np.float32)
    audio3 = rng.standard_normal((AUDIO_LAYERS, N_TR, AUDIO_DIM)).astype(np.float32)
    audio2 = (0.5 * audio3 + rng.standard_normal(audio3.shape)).astype(np.float32)
    bold = rng.standard_normal((N_SUBJECTS, N_TR, N_ROI)).astype(np.float32)
    w_audio = rng.standard_normal((AUDIO_DIM, 3))
    w_text = rng.standard_normal((TEXT_DIM, 2))
    for s in range(N_SUBJECTS):
        bold[s, :, 0:3] += 0.6 * (_lagged(audio3[3]) @ w_audio).astype(np.float32)
        bold[s, :, 3:5] += 0.6 * (_lagged(text[4]) @ w_text).astype(np.float32)
    fmri = xr.Dataset(
        {"bold": (("subject", "tr", "roi"), bold)},
        coords={
            "subject": np.asarray([f"sub-{i:02d}" for i in range(1, N_SUBJECTS + 1)], dtype=object),
            "roi": np.arange(N_ROI, dtype=np.int64),
            "roi_name": (
                "roi",
                np.asarray(["A1", "PBelt", "LBelt", "44", "45", "V1", "V2"], dtype=object),
            ),
            "hemisphere": ("roi", np.asarray(["L"] * 4 + ["R"] * 3, dtype=object)),
        },
        attrs={"atlas": "custom", "source": "synthetic", "n_subjects": N_SUBJECTS},
    )
    fs.write_group(path, "fmri", fmri, encoding={"bold": {"chunks": (1, N_TR, N_ROI)}})
    fs.write_feature_set(path, TEXT_KEY, "ctx20", text, attrs=_feature_attrs("gpt2", "text"))
    for window, values in (("tr2", audio2), ("tr3", audio3)):
        fs.write_feature_set(
            path,
            AUDIO_KEY,
            window,
            values,
            attrs=_feature_attrs("microsoft/wavlm-base-plus", "audio"),
        )


@pytest.fixture(scope="session")
def _template_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("grid-template") / "grid.zarr"
    build_store(path)
    return path


@pytest.fixture
def grid_store(_template_store, tmp_path):
    """A fresh copy of the grid test store."""
    path = tmp_path / "grid.zarr"
    shutil.copytree(_template_store, path)
    return path


@pytest.fixture
def settings():
    """Small, fast encoding settings that fit 80 TRs."""
    return EncodingSettings(pca=6, delays=(1, 2, 3), alphas=(0.1, 10.0, 1000.0), cv=3)
