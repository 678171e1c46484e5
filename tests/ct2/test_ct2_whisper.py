"""CTranslate2 Whisper → Hugging Face: weights, config, tokenizer and outputs of a tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from featstore.errors import InputError, ModelError
from featstore.extract import ct2_whisper
from featstore.extract.ct2_tokenizer import restore_missing_merges
from featstore.extract.ct2_whisper import CONVERSION_FILE, convert_ct2_whisper, demo_whisper_dir
from tests.ct2._ct2_format import to_ct2_whisper, write_ct2
from tests.ct2.conftest import N_TIMESTAMPS, random_features


def _load(directory):
    from safetensors.numpy import load_file
    from transformers import WhisperForConditionalGeneration

    return load_file(
        directory / "model.safetensors"
    ), WhisperForConditionalGeneration.from_pretrained(directory).eval()


def test_float32_conversion_is_exact(tiny_whisper, make_ct2_dir, tmp_path):
    from transformers import WhisperForConditionalGeneration

    hf_dir, config, state, _ = tiny_whisper
    out = convert_ct2_whisper(make_ct2_dir("float32"), tmp_path / "out")
    weights, model = _load(out)
    # every weight of the original, bit for bit; the tied output layer is not stored
    assert set(weights) == set(state) - {"proj_out.weight"}
    for name, value in weights.items():
        np.testing.assert_array_equal(value, state[name], err_msg=name)
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
    assert (out / "model.safetensors").stat().st_mode == (out / "config.json").stat().st_mode
    original = WhisperForConditionalGeneration.from_pretrained(hf_dir).eval()
    features = torch.from_numpy(random_features(config))
    decoder_ids = torch.tensor([[config.decoder_start_token_id, 5, 260, 7]] * 2)
    with torch.no_grad():
        want = original(features, decoder_input_ids=decoder_ids).logits
        got = model(features, decoder_input_ids=decoder_ids).logits
    torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize(("quantization", "rel_tol"), [("float16", 2**-11), ("int8", 1 / 254)])
def test_stored_precision_round_trips_within_its_step(
    tiny_whisper, make_ct2_dir, tmp_path, quantization, rel_tol
):
    _, _, state, _ = tiny_whisper
    out = convert_ct2_whisper(make_ct2_dir(quantization), tmp_path / "out")
    weights, _ = _load(out)
    for name, value in weights.items():
        reference = state[name]
        assert value.dtype == np.float32
        if (
            quantization == "int8"
            and name.endswith("weight")
            and "norm" not in name
            and "positions" not in name
        ):
            # per output row: error at most half a step of max|row| / 127
            rows = reference.reshape(reference.shape[0], -1)
            bound = np.abs(rows).max(axis=1, keepdims=True) * rel_tol * 1.0001
            assert np.all(np.abs(value.reshape(rows.shape) - rows) <= bound), name
        elif quantization == "float16":
            np.testing.assert_array_equal(value, reference.astype(np.float16).astype(np.float32))
        else:  # int8 mode leaves norms, biases and position encodings in float
            np.testing.assert_array_equal(value, reference)


def test_config_generation_and_preprocessor_derived_from_shapes(
    tiny_whisper, make_ct2_dir, tmp_path
):
    from transformers import GenerationConfig, WhisperConfig, WhisperFeatureExtractor

    _, config, _, vocabulary = tiny_whisper
    out = convert_ct2_whisper(make_ct2_dir(), tmp_path / "out", dtype="float16")
    got = WhisperConfig.from_pretrained(out)
    for key in (
        "vocab_size",
        "d_model",
        "encoder_layers",
        "decoder_layers",
        "encoder_attention_heads",
        "decoder_attention_heads",
        "encoder_ffn_dim",
        "decoder_ffn_dim",
        "num_mel_bins",
        "max_source_positions",
        "max_target_positions",
        "decoder_start_token_id",
        "eos_token_id",
    ):
        assert getattr(got, key) == getattr(config, key), key
    assert got.tie_word_embeddings
    generation = GenerationConfig.from_pretrained(out)
    assert generation.suppress_tokens == [3, 5]
    assert generation.begin_suppress_tokens == [vocabulary.index("<|endoftext|>")]
    assert generation.alignment_heads == [[1, 0], [2, 2]]
    assert generation.no_timestamps_token_id == vocabulary.index("<|notimestamps|>")
    assert generation.is_multilingual is False  # fewer than 51865 tokens: English-only
    assert WhisperFeatureExtractor.from_pretrained(out).feature_size == config.num_mel_bins
    record = json.loads((out / CONVERSION_FILE).read_text())
    assert record["dtype"] == "float16" and len(record["source_sha256"]) == 64
    weights, _ = _load(out)
    assert {v.dtype for v in weights.values()} == {np.dtype(np.float16)}


def test_tokenizer_gets_the_timestamp_tokens(tiny_whisper, make_ct2_dir, tmp_path):
    from transformers import WhisperTokenizer

    _, config, _, vocabulary = tiny_whisper
    out = convert_ct2_whisper(make_ct2_dir(), tmp_path / "out")
    tokenizer = WhisperTokenizer.from_pretrained(out)
    assert len(tokenizer) == config.vocab_size == len(vocabulary)
    assert (
        tokenizer.convert_ids_to_tokens(len(vocabulary) - 1)
        == f"<|{(N_TIMESTAMPS - 1) * 0.02:.2f}|>"
    )
    ids = tokenizer(" the an", add_special_tokens=False).input_ids
    assert tokenizer.convert_ids_to_tokens(ids) == ["Ġthe", "Ġan"]
    assert tokenizer.decode(ids) == " the an"


def test_restore_missing_merges_puts_them_back_at_their_rank(tiny_whisper, make_ct2_dir):
    from tokenizers import Tokenizer

    path = make_ct2_dir() / "tokenizer.json"
    complete = json.loads(path.read_text())
    broken = json.loads(path.read_text())
    del broken["model"]["merges"][0]  # ("Ġ", "t"), as in one shipped whisper-base file
    text = " the tin an at"
    before = Tokenizer.from_str(json.dumps(broken)).encode(text).tokens
    assert "Ġthe" not in before
    assert restore_missing_merges(broken) == [("Ġ", "t")]
    assert broken["model"]["merges"] == complete["model"]["merges"]
    assert (
        Tokenizer.from_str(json.dumps(broken)).encode(text).tokens
        == Tokenizer.from_str(json.dumps(complete)).encode(text).tokens
    )
    assert restore_missing_merges(complete) == []


def test_untied_projection_is_written(tiny_whisper, tmp_path, make_ct2_dir):
    _, config, state, _ = tiny_whisper
    directory = make_ct2_dir()
    variables = to_ct2_whisper(state, config)
    projection = variables["decoder/embeddings/weight"] * 2
    write_ct2(directory / "model.bin", {**variables, "decoder/projection/weight": projection})
    out = convert_ct2_whisper(directory, tmp_path / "out")
    weights, model = _load(out)
    np.testing.assert_array_equal(weights["proj_out.weight"], projection)
    assert not model.config.tie_word_embeddings
    np.testing.assert_array_equal(model.proj_out.weight.detach().numpy(), projection)


def test_model_bin_split_in_parts_with_files_beside_the_first(tiny_whisper, make_ct2_dir, tmp_path):
    directory = make_ct2_dir()
    raw = (directory / "model.bin").read_bytes()
    (directory / "model.bin").unlink()
    other = tmp_path / "elsewhere"
    other.mkdir()
    (directory / "model.bin.part1").write_bytes(raw[:1000])
    (other / "model.bin.part2").write_bytes(raw[1000:])
    out = convert_ct2_whisper(
        [directory / "model.bin.part1", other / "model.bin.part2"], tmp_path / "o"
    )
    weights, _ = _load(out)
    np.testing.assert_array_equal(
        weights["model.decoder.embed_tokens.weight"],
        tiny_whisper[2]["model.decoder.embed_tokens.weight"],
    )


def test_refusals(tiny_whisper, make_ct2_dir, tmp_path):
    _, config, state, _ = tiny_whisper
    directory = make_ct2_dir()
    out = convert_ct2_whisper(directory, tmp_path / "out")
    with pytest.raises(InputError, match="not empty; pass `overwrite`"):
        convert_ct2_whisper(directory, out)
    convert_ct2_whisper(directory, out, overwrite=True)

    variables = to_ct2_whisper(state, config)
    write_ct2(directory / "model.bin", variables, spec="TransformerSpec")
    with pytest.raises(ModelError, match="holds a TransformerSpec; expected a WhisperSpec"):
        convert_ct2_whisper(directory, tmp_path / "a")
    write_ct2(
        directory / "model.bin", {**variables, "decoder/extra/weight": np.ones(3, np.float32)}
    )
    with pytest.raises(ModelError, match="unused tensors in the model: decoder/extra/weight"):
        convert_ct2_whisper(directory, tmp_path / "b")
    write_ct2(directory / "model.bin", {**variables, "decoder/activation": np.int8(0)})
    with pytest.raises(ModelError, match="decoder/activation is 0; a Whisper model has 3"):
        convert_ct2_whisper(directory, tmp_path / "c")
    del variables["decoder/layer_2/ffn/linear_1/bias"]
    write_ct2(directory / "model.bin", variables)
    with pytest.raises(ModelError, match="no tensor decoder/layer_2/ffn/linear_1/bias"):
        convert_ct2_whisper(directory, tmp_path / "d")
    write_ct2(directory / "model.bin", to_ct2_whisper(state, config))
    (directory / "tokenizer.json").unlink()
    with pytest.raises(ModelError, match=r"has no tokenizer\.json"):
        convert_ct2_whisper(directory, tmp_path / "e")
    assert not any((tmp_path / n).exists() for n in "abcde")


def test_demo_whisper_dir_converts_once(tiny_whisper, make_ct2_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(ct2_whisper, "demo_whisper_parts", lambda: None)
    assert demo_whisper_dir(tmp_path / "cache") is None

    directory = make_ct2_dir()
    monkeypatch.setattr(ct2_whisper, "demo_whisper_parts", lambda: [directory / "model.bin"])
    first = demo_whisper_dir(tmp_path / "cache")
    assert (first / "model.safetensors").is_file() and (first / CONVERSION_FILE).is_file()
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert demo_whisper_dir(tmp_path / "cache") == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    # a different source gets its own directory
    write_ct2(directory / "model.bin", to_ct2_whisper(tiny_whisper[2], tiny_whisper[1], "float16"))
    second = demo_whisper_dir(tmp_path / "cache")
    assert second != first and second.parent == first.parent
