"""Any transformers language model: Qwen2, Mistral, Gemma, Phi, T5's encoder, slow tokenizers,
unknown families, layers kept, precision of the weights, and offloading with Accelerate."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import xarray as xr

from featstore.errors import InputError, ModelError
from featstore.extract.registry import TEXT, resolve_model
from featstore.extract.text import extract_text
from featstore.extract.text_model import (
    LoadOptions,
    load_text_model,
    parse_max_memory,
    word_vectors,
)
from featstore.extract.text_tokens import tokenize_windows
from featstore.extract.text_windows import encode_windows, plan_windows

from .conftest import STORY
from .test_word_vectors import TOL, one_window, target_tokens

# words that split into several tokens in every tiny tokenizer
SPLIT_WORDS = ("snowy", "forest", "grandmother's", "travellers")


def _load(path, **options):
    return load_text_model(
        resolve_model(path), revision=None, device="cpu", options=LoadOptions(**options)
    )


@pytest.fixture(scope="module")
def loaded(tiny_lms):
    cache = {}

    def load(name):
        if name not in cache:
            cache[name] = _load(tiny_lms(name))
        return cache[name]

    return load


@pytest.mark.parametrize(
    ("name", "family", "model_class", "lead"),
    [
        ("tiny-qwen2", "qwen2", "Qwen2Model", " "),
        ("tiny-mistral", "mistral", "MistralModel", ""),
        ("tiny-gemma", "gemma", "GemmaModel", " "),
        ("tiny-phi", "phi", "PhiModel", " "),
        ("tiny-t5", "t5", "T5EncoderModel", ""),
        ("tiny-gpt-sw3", "gpt2", "GPT2Model", ""),
    ],
)
def test_each_family_loads_as_a_text_model(tiny_lms, loaded, name, family, model_class, lead):
    spec = resolve_model(tiny_lms(name))
    assert (spec.family, spec.extractor, spec.modality, spec.n_layers) == (family, TEXT, "text", 3)
    text_model = loaded(name)
    assert type(text_model.model).__name__ == model_class  # T5: the encoder alone
    assert (text_model.n_layers, text_model.dim, text_model.layers) == (3, 32, (0, 1, 2))
    assert text_model.lead == lead
    assert text_model.tokenizer.is_fast == (name != "tiny-gpt-sw3")


def _spelled(tokenizer, ids):
    return tokenizer.convert_tokens_to_string(tokenizer.convert_ids_to_tokens(ids)).replace(" ", "")


@pytest.mark.parametrize("name", ["tiny-qwen2", "tiny-gemma", "tiny-t5", "tiny-gpt-sw3"])
def test_target_tokens_spell_words_that_split(loaded, name):
    text_model = loaded(name)
    windows = plan_windows(range(len(STORY)), ctx=5, stride=3)
    encoded = encode_windows(
        text_model.tokenizer,
        STORY,
        windows,
        max_tokens=1000,
        pool="mean",
        pad_id=text_model.pad_id,
        lead=text_model.lead,
    )
    n_split = 0
    for b, window in enumerate(windows):
        ids = encoded.input_ids[b]
        for target, tokens in zip(window.targets, encoded.target_tokens[b], strict=True):
            assert _spelled(text_model.tokenizer, [ids[k] for k in tokens]) == STORY[target]
            n_split += STORY[target] in SPLIT_WORDS and len(tokens) > 1
    assert n_split >= 4


def test_bos_eos_and_chat_tokens_belong_to_no_word(loaded):
    words = ["the", "fox", "<|im_start|>", "walked", "<|im_end|>"]
    for name, special in [("tiny-mistral", 0), ("tiny-gemma", 0), ("tiny-t5", -1)]:
        tokenizer = loaded(name).tokenizer
        window = tokenize_windows(tokenizer, [words], lead=loaded(name).lead)[0]
        assert tokenizer.convert_ids_to_tokens(window.input_ids[special]) in (
            "<s>",
            "<bos>",
            "</s>",
        )
        owned = {k for tokens in window.word_tokens for k in tokens}
        assert owned == set(range(len(window.input_ids))) - {special % len(window.input_ids)}
    # a chat token spelled in the story is read as text, never as the control token
    qwen = loaded("tiny-qwen2").tokenizer
    window = tokenize_windows(qwen, [words], lead=" ")[0]
    chat_ids = set(qwen.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"]))
    assert not chat_ids & set(window.input_ids)
    assert _spelled(qwen, [window.input_ids[k] for k in window.word_tokens[2]]) == "<|im_start|>"
    assert [len(t) > 1 for t in window.word_tokens] == [False, True, True, True, True] or all(
        window.word_tokens
    )


@pytest.mark.parametrize("pool", ["last", "mean"])
def test_batched_equals_one_window_at_a_time(tiny_lm, pool):
    text_model = _load(tiny_lm)
    got = word_vectors(text_model, STORY, range(len(STORY)), ctx=6, pool=pool, batch_size=7)
    for target in range(len(STORY)):
        want = one_window(text_model, STORY, target, 6, pool)
        np.testing.assert_allclose(got.values[:, target], want, atol=TOL, rtol=0)


def test_slow_tokenizer_batched_equals_one_window(loaded):
    text_model = loaded("tiny-gpt-sw3")
    got = word_vectors(text_model, STORY, range(30), ctx=5, pool="mean", batch_size=4)
    for target in range(30):
        want = one_window(text_model, STORY, target, 5, "mean")
        np.testing.assert_allclose(got.values[:, target], want, atol=TOL, rtol=0)
    # the reference agrees with the prefix method on every word, multi-token ones included
    _, tokens = target_tokens(text_model.tokenizer, STORY[:12])
    assert len(tokens) > 1


def test_causal_lm_checkpoint_gives_its_base_model(tmp_path, tiny_lms):
    import torch
    from transformers import AutoModelForCausalLM

    source = tiny_lms("tiny-qwen2")
    torch.manual_seed(1)
    causal = AutoModelForCausalLM.from_pretrained(source)
    causal.save_pretrained(tmp_path / "causal")
    shutil.copy(f"{source}/tokenizer.json", tmp_path / "causal")
    shutil.copy(f"{source}/tokenizer_config.json", tmp_path / "causal")
    text_model = _load(str(tmp_path / "causal"))
    assert type(text_model.model).__name__ == "Qwen2Model"
    got = word_vectors(text_model, STORY, [10], ctx=4)
    ids, tokens = target_tokens(text_model.tokenizer, STORY[7:11], " ")
    with torch.inference_mode():
        states = causal.model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    want = torch.stack(states.hidden_states)[:, 0, tokens[-1]].numpy()
    np.testing.assert_allclose(got.values[:, 0], want, atol=TOL)


def test_unknown_family_works_with_a_notice(tmp_path, caplog):
    import torch
    from transformers import AutoModel, Qwen3Config

    from .tiny_lms import SIZES, _bpe_vocab_and_merges

    vocab, merges = _bpe_vocab_and_merges(["<|endoftext|>"])
    from transformers import Qwen2Tokenizer

    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=len(vocab), intermediate_size=48, head_dim=8, num_key_value_heads=2, **SIZES
    )
    AutoModel.from_config(config).save_pretrained(tmp_path / "q3")
    Qwen2Tokenizer(vocab=vocab, merges=merges).save_pretrained(tmp_path / "q3")
    with caplog.at_level(logging.WARNING, logger="featstore"):
        text_model = _load(str(tmp_path / "q3"))
    assert resolve_model(str(tmp_path / "q3")).family == "qwen3"
    notices = [r.getMessage() for r in caplog.records]
    assert len(notices) == 1 and "'qwen3' is not among the tested" in notices[0]
    assert "\n" not in notices[0] and text_model.n_layers == 3


def test_a_model_without_hidden_states_is_a_clear_error(tiny_lms, monkeypatch):
    import torch

    from featstore.extract import text_model as module

    class NoStates(torch.nn.Module):
        config = type("Config", (), {"max_position_embeddings": 64})()

        def forward(self, **kwargs):
            return {"last_hidden_state": torch.zeros(1, 1, 4)}

    monkeypatch.setattr(module, "load_base_model", lambda *args: NoStates())
    with pytest.raises(ModelError, match="returns no hidden states"):
        _load(tiny_lms("tiny-phi"))


def test_weights_in_the_precision_asked_not_the_checkpoints(tmp_path, tiny_lms):
    import torch
    from transformers import AutoModel

    AutoModel.from_pretrained(tiny_lms("tiny-mistral"), dtype=torch.bfloat16).save_pretrained(
        tmp_path / "bf16"
    )
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{tiny_lms('tiny-mistral')}/{name}", tmp_path / "bf16")
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["dtype"] == "bfloat16"
    assert _load(str(tmp_path / "bf16")).model.dtype == torch.float32
    half = _load(str(tmp_path / "bf16"), precision="bfloat16")
    assert half.model.dtype == torch.bfloat16
    full = _load(tiny_lms("tiny-mistral"))
    a = word_vectors(full, STORY, range(20), ctx=4).values
    b = word_vectors(half, STORY, range(20), ctx=4).values
    assert b.dtype == np.float32
    for layer in range(3):
        assert np.corrcoef(a[layer].ravel(), b[layer].ravel())[0, 1] > 0.99


def test_layers_store_only_the_ones_asked(story_store, tiny_lms):
    spec = resolve_model(tiny_lms("tiny-gemma"))
    extract_text(story_store, spec, ctx=4)
    group = "features/tiny-gemma/ctx4"
    every = xr.open_zarr(story_store, group=group, consolidated=False).load()
    extract_text(story_store, spec, ctx=4, layers=[0, 2], overwrite=True)
    some = xr.open_zarr(story_store, group=group, consolidated=False).load()
    assert some.attrs["layers"] == [0, 2] and some["layer"].values.tolist() == [0, 2]
    assert some.attrs["settings"]["layers"] == [0, 2]
    np.testing.assert_array_equal(some["hidden"].values, every["hidden"].sel(layer=[0, 2]).values)
    extract_text(story_store, spec, ctx=4, layers="auto", overwrite=True)
    assert xr.open_zarr(story_store, group=group, consolidated=False).attrs["layers"] == [1, 2]
    with pytest.raises(InputError, match=r"layers=5: .* has layers 0\.\.2"):
        extract_text(story_store, spec, ctx=4, layers=[5], overwrite=True)
    with pytest.raises(InputError, match="go with `device_map`"):
        extract_text(story_store, spec, ctx=4, offload_folder="x", overwrite=True)


def test_max_memory_is_parsed_and_checked():
    assert parse_max_memory("0=20GiB, cpu=30GiB") == {"0": "20GiB", "cpu": "30GiB"}
    assert parse_max_memory(None) is None
    with pytest.raises(InputError, match="max_memory='gpu=3'"):
        parse_max_memory("gpu=3")


def test_disk_offload_gives_the_in_memory_features(tmp_path, tiny_lms):
    pytest.importorskip("accelerate")
    path = tiny_lms("tiny-qwen2")
    offloaded = _load(
        path, device_map="auto", max_memory={"cpu": "20KB"}, offload_folder=str(tmp_path / "off")
    )
    placed = set(offloaded.model.hf_device_map.values())
    assert "disk" in placed, offloaded.model.hf_device_map
    in_memory = _load(path)
    a = word_vectors(in_memory, STORY, range(15), ctx=5, batch_size=4).values
    b = word_vectors(offloaded, STORY, range(15), ctx=5, batch_size=4).values
    np.testing.assert_allclose(b, a, atol=TOL)
