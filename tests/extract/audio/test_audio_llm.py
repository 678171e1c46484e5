"""Audio LLM (Qwen2-Audio) on a tiny random model built offline: layers, pooling, store."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featstore import store as fs
from featstore.errors import InputError
from featstore.extract import window_run
from featstore.extract.audio_llm import load_audio_llm
from featstore.extract.registry import AUDIO_LLM, resolve_model
from featstore.extract.run import extract

from .conftest import SR, WORDS

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_bos|>", "<|AUDIO|>"]
SPECIAL += ["<|audio_eos|>"]
AUDIO_DIM, TEXT_DIM, TEXT_BLOCKS, MELS = 12, 20, 3, 16


@pytest.fixture(scope="session")
def tiny_qwen2_audio(tmp_path_factory) -> str:
    """A Qwen2-Audio with a 2-block audio tower and a 3-block Qwen2 LM, and its processor."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    vocab = {token: i for i, token in enumerate([*SPECIAL, *filter(None, WORDS), "[UNK]"])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL[1:],
    )
    config = Qwen2AudioConfig(
        audio_config={
            "d_model": AUDIO_DIM,
            "encoder_layers": 2,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 14,
            "num_mel_bins": MELS,
        },
        text_config={
            "model_type": "qwen2",
            "hidden_size": TEXT_DIM,
            "num_hidden_layers": TEXT_BLOCKS,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "intermediate_size": 22,
            "vocab_size": len(vocab),
        },
        audio_token_id=vocab["<|AUDIO|>"],
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "qwen2-audio"
    Qwen2AudioForConditionalGeneration(config).save_pretrained(path)
    processor = Qwen2AudioProcessor(WhisperFeatureExtractor(feature_size=MELS), tokenizer)
    processor.save_pretrained(path)
    return str(path)


def windows(n_windows: int, n_samples: int) -> np.ndarray:
    rng = np.random.default_rng(4)
    out = (0.2 * rng.standard_normal((n_windows, n_samples))).astype(np.float32)
    out[0, : n_samples // 3] = 0  # a window that starts before the story: real zeros
    return out


def test_registry_routes_qwen2_audio_to_the_audio_llm_extractor(tiny_qwen2_audio):
    spec = resolve_model(tiny_qwen2_audio)
    assert (spec.extractor, spec.modality, spec.family) == (AUDIO_LLM, "multimodal", "qwen2_audio")
    assert spec.n_layers == TEXT_BLOCKS + 1  # from text_config: the LM's layers are stored
    assert resolve_model("Qwen/Qwen2-Audio-7B-Instruct").extractor == AUDIO_LLM
    alias = resolve_model("qwen2-audio")
    assert (alias.model_id, alias.n_layers, alias.extractor) == (
        "Qwen/Qwen2-Audio-7B",
        33,
        AUDIO_LLM,
    )


def test_pooled_states_are_the_lm_states_at_the_audio_tokens(tiny_qwen2_audio):
    from transformers import Qwen2AudioForConditionalGeneration, WhisperFeatureExtractor

    encoder = load_audio_llm(resolve_model(tiny_qwen2_audio), device="cpu")
    batch = windows(3, 8000)
    pooled = encoder.encode(batch)
    assert pooled.shape == (TEXT_BLOCKS + 1, 3, TEXT_DIM)
    assert encoder.layer_names == ["embeddings", "block1", "block2", "block3"]
    # reference: the prompt written out by hand. 0.5 s = 50 mel frames → conv stride 2 →
    # 25 frames → average pooling 2 → 12 audio tokens between <|audio_bos|> and <|audio_eos|>
    n_tokens = ((50 - 1) // 2 + 1 - 2) // 2 + 1
    assert n_tokens == 12
    model = Qwen2AudioForConditionalGeneration.from_pretrained(tiny_qwen2_audio).eval()
    ids = [SPECIAL.index("<|audio_bos|>")] + [SPECIAL.index("<|AUDIO|>")] * n_tokens
    input_ids = torch.tensor([[*ids, SPECIAL.index("<|audio_eos|>")]] * 3)
    features = WhisperFeatureExtractor.from_pretrained(tiny_qwen2_audio)(
        list(batch), sampling_rate=SR, return_tensors="pt", return_attention_mask=True
    )
    assert int(features["attention_mask"][0].sum()) == 50
    with torch.inference_mode():
        states = model(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            input_features=features["input_features"],
            feature_attention_mask=features["attention_mask"],
            output_hidden_states=True,
        ).hidden_states
    reference = np.stack([h[:, 1:-1].mean(dim=1).numpy() for h in states])
    np.testing.assert_allclose(pooled, reference, rtol=1e-5, atol=1e-6)
    single = np.concatenate([encoder.encode(batch[i : i + 1]) for i in range(3)], axis=1)
    np.testing.assert_allclose(pooled, single, rtol=1e-5, atol=1e-5)
    assert np.ptp(pooled, axis=1).min() > 0  # windows differ in every layer


def test_extract_writes_every_lm_layer_per_tr_and_resumes(
    tiny_qwen2_audio, make_store, monkeypatch
):
    store, fresh = make_store(), make_store(name="fresh")
    calls = {"n": 0}
    original = window_run.BlockStage.write_block

    def fail_after_first_block(self, index, **values):
        original(self, index, **values)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(window_run.BlockStage, "write_block", fail_after_first_block)
    with pytest.raises(KeyboardInterrupt):
        extract(store, tiny_qwen2_audio, tr_wins=[2], batch_size=2, threads=1)
    assert not fs.group_exists(store, "features/qwen2-audio/tr2")
    monkeypatch.setattr(window_run.BlockStage, "write_block", original)
    encoded = []
    blocks = window_run.block_windows

    def counting(*args, **kwargs):
        for batch in blocks(*args, **kwargs):
            encoded.append(len(batch.trs))
            yield batch

    monkeypatch.setattr(window_run, "block_windows", counting)
    assert extract(store, tiny_qwen2_audio, tr_wins=[2], batch_size=2, threads=1) == [
        "features/qwen2-audio/tr2"
    ]
    assert sum(encoded) == 20 - 2 * window_run.BATCHES_PER_BLOCK  # the staged block skipped
    extract(fresh, tiny_qwen2_audio, tr_wins=[2], batch_size=5, threads=1)
    resumed = fs.open_feature_set(store, "qwen2-audio", "tr2")
    np.testing.assert_allclose(
        resumed["hidden"].values,
        fs.open_feature_set(fresh, "qwen2-audio", "tr2")["hidden"].values,
        rtol=1e-5,
        atol=1e-5,
    )
    assert resumed["hidden"].shape == (TEXT_BLOCKS + 1, 20, TEXT_DIM)
    attrs = resumed.attrs
    assert attrs["modality"] == "multimodal" and attrs["layer_names"][-1] == "block3"
    assert attrs["settings"]["prompt"] == "<|audio_bos|><|AUDIO|><|audio_eos|>"
    assert attrs["settings"]["layers_of"] == "language model"
    assert "audio-token positions" in attrs["pooling"]
    assert fs.validate(store) == []


def test_windows_beyond_the_audio_towers_30_s_are_refused(tiny_qwen2_audio, make_store):
    store = make_store(n_tr=61)
    with pytest.raises(InputError, match="takes at most 30 s"):
        extract(store, tiny_qwen2_audio, tr_wins=[61])
    assert not fs.group_exists(store, "features/qwen2-audio/tr61")
