"""Fixtures for audio extraction: tiny random models saved offline and small stores.

Every model is built from a small config with its own sizes (so a transposed axis
fails loudly), saved with ``save_pretrained`` together with a feature extractor
constructed offline, and loaded back through the real ``from_pretrained`` path.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from featstore import store as fs
from featstore.store import _schema as S

SR = 16_000
TR = 0.5
N_TR = 20
WORDS = ["the", "little", "make", "strengths", "", "beautiful", "21", "eye", "apple"]


def write_stimulus(path: Path, audio: np.ndarray, *, stim_onset: float, tr: float, n_tr: int):
    """A store with root attrs and a ``stimulus`` group as ``featstore dataset import`` writes it."""
    fs.create_store(path, dataset="tiny-audio", tr_seconds=tr, n_tr=n_tr)
    onsets = np.linspace(0.1, len(audio) / SR - 0.3, len(WORDS))
    tr_index = np.ceil((onsets + stim_onset) / tr).astype(np.int64)
    tr_index[-1] = n_tr + 3  # a word after the last TR is ignored by wordrate
    ds = xr.Dataset(
        {
            "word": ((S.WORD_DIM,), np.array(WORDS, dtype=object)),
            "word_lower": ((S.WORD_DIM,), np.array([w.lower() for w in WORDS], dtype=object)),
            "onset": ((S.WORD_DIM,), onsets),
            "offset": ((S.WORD_DIM,), onsets + 0.2),
            "tr_index": ((S.WORD_DIM,), tr_index),
            "time_filled": ((S.WORD_DIM,), np.zeros(len(WORDS), bool)),
            "word_missing": ((S.WORD_DIM,), np.array([w == "" for w in WORDS])),
            S.STIMULUS_AUDIO_VAR: ((S.SAMPLE_DIM,), audio.astype(np.float32)),
        },
        attrs={
            "audio_sha256": hashlib.sha256(audio.tobytes()).hexdigest(),
            "sample_rate": SR,
            "align_sha256": "a" * 64,
            "tr_assign": "ceil",
            "stimulus_sha256": hashlib.sha256(audio.tobytes() + b"words").hexdigest(),
            "stim_onset": float(stim_onset),
            "duration_s": len(audio) / SR,
            "n_time_filled": 0,
            "n_word_missing": 1,
            "sources": {"audio": "synthetic"},
        },
    )
    # small audio chunks so window reads cross chunk boundaries
    fs.write_group(path, S.STIMULUS, ds, encoding={S.STIMULUS_AUDIO_VAR: {"chunks": (3001,)}})
    return path


def noise_audio(seconds: float, seed: int = 0) -> np.ndarray:
    """Band-limited noise with a slow envelope, so windows differ from each other."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SR)
    envelope = 0.5 + 0.4 * np.sin(np.arange(n) / SR * 2 * np.pi * 0.7)
    return (0.3 * envelope * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture
def make_store(tmp_path):
    """``make_store(audio=None, stim_onset=0.75, tr=TR, n_tr=N_TR, name="audio")`` → store path."""

    def make(audio=None, *, stim_onset=0.75, tr=TR, n_tr=N_TR, name="audio"):
        audio = noise_audio(8.9) if audio is None else audio
        return write_stimulus(
            tmp_path / f"{name}.zarr", audio, stim_onset=stim_onset, tr=tr, n_tr=n_tr
        )

    return make


def _save(model, extractor, path: Path) -> str:
    model.save_pretrained(path)
    extractor.save_pretrained(path)
    return str(path)


def _speech_config(config_class, hidden: int, layers: int, **kwargs):
    return config_class(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden + 6,
        conv_dim=(6, 10),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        **kwargs,
    )


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, str]:
    """Directories of tiny random wav2vec2, wavlm, hubert, whisper and clap models."""
    import torch
    from transformers import (
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        HubertConfig,
        HubertModel,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
        WavLMConfig,
        WavLMModel,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperModel,
    )

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("models")
    dirs = {}
    # wav2vec2-base style: no attention mask from the extractor, normalised input
    dirs["wav2vec2"] = _save(
        Wav2Vec2Model(_speech_config(Wav2Vec2Config, 12, 2)).eval(),
        Wav2Vec2FeatureExtractor(return_attention_mask=False, do_normalize=True),
        root / "wav2vec2",
    )
    # wavlm-base-plus style: attention mask, no normalisation
    dirs["wavlm"] = _save(
        WavLMModel(_speech_config(WavLMConfig, 16, 3, num_buckets=16, max_bucket_distance=40)),
        Wav2Vec2FeatureExtractor(return_attention_mask=True, do_normalize=False),
        root / "wavlm",
    )
    dirs["hubert"] = _save(
        HubertModel(_speech_config(HubertConfig, 20, 2)),
        Wav2Vec2FeatureExtractor(return_attention_mask=False, do_normalize=True),
        root / "hubert",
    )
    whisper = WhisperConfig(
        d_model=24,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=28,
        decoder_ffn_dim=28,
        num_mel_bins=16,
        vocab_size=40,
        max_target_positions=8,
        pad_token_id=1,
        bos_token_id=2,
        eos_token_id=3,
        decoder_start_token_id=2,
    )
    dirs["whisper"] = _save(
        WhisperModel(whisper), WhisperFeatureExtractor(feature_size=16), root / "whisper"
    )
    clap_text = {
        "vocab_size": 50,
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 20,
        "max_position_embeddings": 40,
        "projection_dim": 14,
    }
    clap_audio = {
        "window_size": 8,
        "spec_size": 256,
        "hidden_size": 16,
        "patch_embeds_hidden_size": 8,
        "depths": [1, 1],
        "num_attention_heads": [2, 2],
        "num_mel_bins": 64,
        "patch_stride": [4, 4],
        "projection_dim": 14,
    }
    # the extractor keeps its default truncation="fusion": extraction must override it
    for name, fusion in (("clap", False), ("clap-fused", True)):
        config = ClapConfig(
            text_config=clap_text,
            audio_config={**clap_audio, "enable_fusion": fusion},
            projection_dim=14,
        )
        dirs[name] = _save(ClapModel(config), ClapFeatureExtractor(), root / name)
    return dirs
