"""``extract --words``: every layer of an audio model pooled over each word's own span."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr

from featstore import store as fs
from featstore.errors import InputError
from featstore.evaluate.eeg.inputs import word_features
from featstore.extract import audio_words
from featstore.extract.audio_llm import load_audio_llm
from featstore.extract.registry import resolve_model
from featstore.extract.run import extract
from featstore.extract.whisper import load_whisper_encoder
from featstore.store import _schema as S
from featstore.store.staging import BlockStage

from .conftest import SR, WORDS
from .test_audio_llm import tiny_qwen2_audio  # noqa: F401 (the fixture)

SHORT = 3  # this word lasts 30 ms: widened to 100 ms around its centre


def words_store(make_store, name: str):
    """The tiny audio store with word 3 shortened to 30 ms."""
    store = make_store(name=name)
    stimulus = zarr.open_group(str(store), path=S.STIMULUS, mode="r+")
    stimulus["offset"][SHORT] = stimulus["onset"][SHORT] + 0.03
    return store


def spans(store) -> list[tuple[int, int]]:
    """Each word's samples by the documented rule, computed here from first principles."""
    stimulus = fs.open_group(store, S.STIMULUS)
    out = []
    for onset, offset in zip(stimulus["onset"].values, stimulus["offset"].values, strict=True):
        start, stop = int(np.floor(onset * SR + 0.5)), int(np.floor(offset * SR + 0.5))
        if stop - start < 1600:
            start = (start + stop - 1600) // 2
            stop = start + 1600
        out.append((start, stop))
    return out


def test_wavlm_word_vectors_equal_the_model_on_each_words_span(tiny_models, make_store):
    from transformers import Wav2Vec2FeatureExtractor, WavLMModel

    store = words_store(make_store, "wavlm")
    path = tiny_models["wavlm"]
    [group] = extract(store, path, words=True, word_context=0, batch_size=3, threads=1)
    assert group == f"features/{resolve_model(path).key}.words/tr1"
    ds = fs.open_group(store, group)
    audio = fs.open_group(store, S.STIMULUS)[S.STIMULUS_AUDIO_VAR].values
    model = WavLMModel.from_pretrained(path).eval()
    extractor = Wav2Vec2FeatureExtractor.from_pretrained(path)
    for i, (start, stop) in enumerate(spans(store)):
        if not WORDS[i]:  # the missing word has no vector and read no audio
            assert not ds[S.WORD_HIDDEN_VAR][:, i].values.any()
            assert int(ds["word_samples"][i]) == 0
            continue
        inputs = extractor([audio[start:stop]], sampling_rate=SR, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(inputs["input_values"], output_hidden_states=True).hidden_states
        reference = np.stack([h[0].mean(dim=0).numpy() for h in hidden])
        np.testing.assert_allclose(
            ds[S.WORD_HIDDEN_VAR][:, i].values, reference, rtol=1e-4, atol=1e-5
        )
        assert int(ds["word_samples"][i]) == stop - start
    assert int(ds["word_samples"][SHORT]) == 1600


def test_tr_means_and_provenance(tiny_models, make_store):
    store = words_store(make_store, "means")
    path = tiny_models["hubert"]
    [group] = extract(store, path, words=True, threads=1)
    ds = fs.open_group(store, group)
    tr_index = fs.open_group(store, S.STIMULUS)["tr_index"].values
    used = np.array([bool(w) for w in WORDS])
    for tr in range(fs.store_n_tr(store)):
        members = np.flatnonzero((tr_index == tr) & used)
        expected = ds[S.WORD_HIDDEN_VAR].values[:, members].mean(axis=1) if len(members) else 0
        np.testing.assert_allclose(ds[S.HIDDEN_VAR].values[:, tr], expected, rtol=1e-5, atol=1e-6)
        assert bool(ds["has_words"][tr]) == bool(len(members))
    assert ds.attrs["word_rule"] == audio_words.WORD_RULE
    assert ds.attrs["settings"]["min_word_s"] == audio_words.MIN_WORD_SECONDS
    assert ds.attrs["modality"] == "audio" and ds.attrs["model_id"] == path
    assert ds.attrs["n_words_missing"] == 1
    # the EEG analyses read it like a text model's per-word states
    features = word_features(store, f"{resolve_model(path).key}.words")
    assert features.word_hidden.shape == (3, len(WORDS), 20)


@pytest.mark.parametrize("family", ["whisper", "audio_llm"])
def test_every_family_pools_through_its_own_window_encoder(
    family,
    tiny_models,
    tiny_qwen2_audio,  # noqa: F811
    make_store,
):
    path = tiny_qwen2_audio if family == "audio_llm" else tiny_models["whisper"]
    load = load_audio_llm if family == "audio_llm" else load_whisper_encoder
    store = words_store(make_store, family)
    [group] = extract(store, path, words=True, word_context=0, batch_size=4, threads=1)
    word_hidden = fs.open_group(store, group)[S.WORD_HIDDEN_VAR].values
    encoder = load(resolve_model(path), device="cpu")
    audio = fs.open_group(store, S.STIMULUS)[S.STIMULUS_AUDIO_VAR].values
    for i, (start, stop) in enumerate(spans(store)):
        if WORDS[i]:
            reference = encoder.encode(audio[None, start:stop])[:, 0]
            np.testing.assert_allclose(word_hidden[:, i], reference, rtol=1e-4, atol=1e-5)


def test_killed_run_resumes_to_the_same_result(tiny_models, make_store, monkeypatch):
    monkeypatch.setattr(audio_words, "BLOCK_WORDS", 4)
    store, fresh = words_store(make_store, "killed"), words_store(make_store, "fresh")
    path = tiny_models["wav2vec2"]
    write_block = BlockStage.write_block

    def fail_after_first(self, index, **values):
        write_block(self, index, **values)
        if index == 0:
            raise KeyboardInterrupt

    monkeypatch.setattr(BlockStage, "write_block", fail_after_first)
    with pytest.raises(KeyboardInterrupt):
        extract(store, path, words=True, threads=1)
    monkeypatch.setattr(BlockStage, "write_block", write_block)
    encoded = []
    original = audio_words._encode_words

    def counting(encoder, stream, starts, stops, *args):
        encoded.append(int((stops > starts).sum()))
        return original(encoder, stream, starts, stops, *args)

    monkeypatch.setattr(audio_words, "_encode_words", counting)
    [group] = extract(store, path, words=True, threads=1)
    assert sum(encoded) == sum(bool(w) for w in WORDS[4:])  # block 0 was not redone
    extract(fresh, path, words=True, threads=1)
    resumed, whole = fs.open_group(store, group), fs.open_group(fresh, group)
    assert resumed.attrs["resumed_blocks"] == 1
    np.testing.assert_array_equal(resumed[S.WORD_HIDDEN_VAR], whole[S.WORD_HIDDEN_VAR])


def test_bad_requests_are_refused_before_any_model_loads(tiny_models, make_store):
    store = make_store(name="bad")
    with pytest.raises(InputError, match="drop `tr_wins`"):
        extract(store, tiny_models["wavlm"], words=True, tr_wins=[2])
    with pytest.raises(InputError, match="word pooling takes"):
        extract(store, tiny_models["clap"], words=True)
    stimulus = zarr.open_group(str(store), path=S.STIMULUS, mode="r+")
    stimulus["offset"][2] = stimulus["onset"][2] - 0.1
    with pytest.raises(InputError, match="stimulus word 2"):
        extract(store, tiny_models["wavlm"], words=True)
    extract(store, tiny_models["wavlm"], tr_wins=[1])  # the store is still usable
    assert not fs.group_exists(store, audio_words.words_group(resolve_model(tiny_models["wavlm"])))
