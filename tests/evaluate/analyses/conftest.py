"""A small store with planted acoustic and textual responses, for the analyses beyond encoding.

* ``spectral/tr1`` (8 dims) and ``wordrate/tr1`` (2 dims): weight-free controls, one layer;
* ``gpt2/ctx20`` (text, layers 0..4, 12 dims): layer 2 is the planted text latent, layers 1
  and 3 carry half of it, 0 and 4 are noise;
* ``wavlm/tr2`` (audio, layers 0..2, 24 dims): layer 1 is a full-rank linear mix of the
  spectral control and the text latent (a speech model that encodes both), layers 0 and 2
  carry noisier copies;
* ``fmri``: 6 subjects × 600 TRs × 14 ROIs (left hemisphere): the 6 auditory ROIs are
  driven by the spectral control, the 5 late-language ROIs by the text latent
  (:func:`featstore.datasets.simulate.simulate_bold`, the demo's simulator), V1–V3 are noise.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr

from featstore import store as fs
from featstore.datasets.simulate import PlantedSource, simulate_bold
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.roi_groups import BUILTIN_ROI_GROUPS

N_SUBJECTS, N_TR = 6, 600
AUDITORY = list(BUILTIN_ROI_GROUPS["auditory"])
LANGUAGE = list(BUILTIN_ROI_GROUPS["late-language"])
ROI_NAMES = AUDITORY + LANGUAGE + ["V1", "V2", "V3"]
TEXT_KEY, AUDIO_KEY = "gpt2", "microsoft--wavlm-base-plus"
PLANTED_TEXT_LAYER = 2


def _attrs(model_id: str, modality: str) -> dict:
    return {
        "model_id": model_id,
        "revision": "test",
        "modality": modality,
        "pooling": "mean",
        "stimulus_sha256": "a" * 64,
    }


def _smooth(rng: np.random.Generator, shape: tuple[int, int], rho: float = 0.5) -> np.ndarray:
    """AR(1) series: stimulus features are autocorrelated, as real ones are."""
    out = rng.standard_normal(shape)
    for t in range(1, shape[0]):
        out[t] = rho * out[t - 1] + np.sqrt(1 - rho**2) * out[t]
    return out


def build_store(path) -> None:
    """Write the analyses test store at ``path``."""
    rng = np.random.default_rng(11)
    fs.create_store(path, dataset="tiny-analyses", tr_seconds=1.5, n_tr=N_TR)
    spectral = _smooth(rng, (N_TR, 8))
    wordrate = _smooth(rng, (N_TR, 2))
    text = _smooth(rng, (N_TR, 12))
    text_layers = np.stack(
        [
            _smooth(rng, (N_TR, 12)),
            0.5 * text + _smooth(rng, (N_TR, 12)),
            text,
            0.5 * text + _smooth(rng, (N_TR, 12)),
            _smooth(rng, (N_TR, 12)),
        ]
    )
    mixed = np.concatenate([spectral, text], axis=1) @ rng.standard_normal((20, 24))
    audio_layers = np.stack(
        [mixed + 2.0 * _smooth(rng, (N_TR, 24)), mixed, mixed + _smooth(rng, (N_TR, 24))]
    )
    bold, subjects, _ = simulate_bold(
        [
            PlantedSource("spectral", spectral, AUDITORY, n_directions=4),
            PlantedSource("gpt2/ctx20/layer2", text, LANGUAGE, n_directions=4),
        ],
        ROI_NAMES,
        n_subjects=N_SUBJECTS,
        snr=1.5,
        seed=3,
    )
    fmri = xr.Dataset(
        {"bold": (("subject", "tr", "roi"), bold)},
        coords={
            "subject": np.asarray(subjects, dtype=object),
            "roi": np.arange(len(ROI_NAMES), dtype=np.int64),
            "roi_name": ("roi", np.asarray(ROI_NAMES, dtype=object)),
            "hemisphere": ("roi", np.asarray(["L"] * len(ROI_NAMES), dtype=object)),
        },
        attrs={"atlas": "HCP-MMP1.0", "source": "simulated", "n_subjects": N_SUBJECTS},
    )
    fs.write_group(path, "fmri", fmri, encoding={"bold": {"chunks": (1, N_TR, len(ROI_NAMES))}})
    for key, values in (("spectral", spectral), ("wordrate", wordrate)):
        fs.write_feature_set(
            path, key, "tr1", values[None].astype(np.float32), attrs=_attrs(key, "lowlevel")
        )
    fs.write_feature_set(
        path, TEXT_KEY, "ctx20", text_layers.astype(np.float32), attrs=_attrs("gpt2", "text")
    )
    fs.write_feature_set(
        path,
        AUDIO_KEY,
        "tr2",
        audio_layers.astype(np.float32),
        attrs=_attrs("microsoft/wavlm-base-plus", "audio"),
    )


@pytest.fixture(scope="session")
def _template_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("analyses-template") / "analyses.zarr"
    build_store(path)
    return path


@pytest.fixture
def analyses_store(_template_store, tmp_path):
    """A fresh copy of the analyses test store."""
    path = tmp_path / "analyses.zarr"
    shutil.copytree(_template_store, path)
    return path


@pytest.fixture
def settings():
    """Small, fast encoding settings."""
    return EncodingSettings(pca=0, alphas=(1.0, 10.0, 100.0, 1000.0), cv=3)
