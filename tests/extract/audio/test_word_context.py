"""``extract --words --word-context S``: the word heard after its context, only its frames pooled."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featstore import store as fs
from featstore.errors import InputError
from featstore.extract.audio_llm import audio_token_count, load_audio_llm
from featstore.extract.audio_words import DEFAULT_WORD_CONTEXT_S, context_samples
from featstore.extract.registry import resolve_model
from featstore.extract.run import extract
from featstore.extract.whisper import load_whisper_encoder
from featstore.store import _schema as S

from .conftest import SR
from .test_audio_llm import tiny_qwen2_audio  # noqa: F401 (the fixture)
from .test_audio_words import spans, words_store

CONTEXT_S = 0.5
CHECKED = (0, 3, 8)  # context before the story start, the widened word, the last word


def ssl_frames(n_samples: int, kernels=(10, 8), strides=(5, 4)) -> int:
    """Output frames of the tiny speech models' CNN (conftest: kernels 10, 8; strides 5, 4)."""
    for kernel, stride in zip(kernels, strides, strict=True):
        n_samples = (n_samples - kernel) // stride + 1
    return n_samples


def padded(audio: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Story samples [start, stop), zeros before the story."""
    out = np.zeros(stop - start, np.float32)
    lo = max(start, 0)
    out[lo - start :] = audio[lo:stop]
    return out


def test_context_is_rounded_to_whole_frames():
    assert context_samples(2.0, SR, 320) == 32_000
    assert context_samples(0.05, SR, 640) == 640  # 1.25 tokens of 40 ms -> 1
    assert context_samples(0.03, SR, 640) == 640  # 0.75 -> 1
    assert context_samples(0, SR, None) == 0
    with pytest.raises(InputError, match="word_context=-1"):
        context_samples(-1, SR, 320)


def test_only_the_words_frames_are_pooled_after_the_context(tiny_models, make_store):
    from transformers import WavLMModel

    store = words_store(make_store, "context")
    path = tiny_models["wavlm"]
    [group] = extract(store, path, words=True, word_context=CONTEXT_S, batch_size=3, threads=1)
    ds = fs.open_group(store, group)
    assert ds.attrs["settings"]["word_context_s"] == CONTEXT_S
    audio = fs.open_group(store, S.STIMULUS)[S.STIMULUS_AUDIO_VAR].values
    model = WavLMModel.from_pretrained(path).eval()
    context = round(CONTEXT_S * SR)  # 8000 samples = 400 frames of 20 samples: whole frames
    assert context % 20 == 0
    for i in CHECKED:
        start, stop = spans(store)[i]
        window = padded(audio, start - context, stop)
        # by hand: the window has ssl_frames(context + span) frames; the word's are the
        # last ssl_frames(span) of them, starting at frame context / 20
        first, count = context // 20, ssl_frames(stop - start)
        assert ssl_frames(len(window)) == first + count
        with torch.inference_mode():  # wavlm-base-plus style: no normalisation
            hidden = model(torch.from_numpy(window)[None], output_hidden_states=True).hidden_states
        reference = np.stack([h[0, first : first + count].mean(dim=0).numpy() for h in hidden])
        np.testing.assert_allclose(
            ds[S.WORD_HIDDEN_VAR][:, i].values, reference, rtol=1e-4, atol=1e-5
        )
        with torch.inference_mode():  # the word alone: other vectors in every block
            alone = model(torch.from_numpy(window[context:])[None], output_hidden_states=True)
        alone_pooled = np.stack([h[0].mean(dim=0).numpy() for h in alone.hidden_states])
        assert np.abs(alone_pooled[1:] - reference[1:]).max(axis=-1).min() > 1e-4


def test_audio_llm_token_count_is_the_processors_and_context_adds_whole_tokens(
    tiny_qwen2_audio,  # noqa: F811
):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_qwen2_audio)
    for n in (1600, 1601, 3333, 8000, 8000 + 640 * 3):
        out = processor(
            text=["<|audio_bos|><|AUDIO|><|audio_eos|>"],
            audio=[np.zeros(n, np.float32)],
            sampling_rate=SR,
            return_tensors="pt",
        )
        assert int((out["input_ids"] == 4).sum()) == audio_token_count(n, 160)
    for span in (1600, 1601, 3333):
        for tokens in (1, 5):
            assert audio_token_count(tokens * 640 + span, 160) == tokens + audio_token_count(
                span, 160
            )


@pytest.mark.parametrize("family", ["whisper", "audio_llm"])
def test_whisper_and_audio_llm_pool_the_last_frames_of_the_window(
    family,
    tiny_models,
    tiny_qwen2_audio,  # noqa: F811
    make_store,
):
    path = tiny_qwen2_audio if family == "audio_llm" else tiny_models["whisper"]
    load = load_audio_llm if family == "audio_llm" else load_whisper_encoder
    store = words_store(make_store, family)
    [group] = extract(store, path, words=True, word_context=CONTEXT_S, batch_size=4, threads=1)
    word_hidden = fs.open_group(store, group)[S.WORD_HIDDEN_VAR].values
    encoder = load(resolve_model(path), device="cpu")
    context = context_samples(CONTEXT_S, SR, encoder.frame_samples)
    assert encoder.frame_samples == (640 if family == "audio_llm" else 320)
    audio = fs.open_group(store, S.STIMULUS)[S.STIMULUS_AUDIO_VAR].values
    for i in CHECKED:
        start, stop = spans(store)[i]
        window = padded(audio, start - context, stop)[None]
        reference = encoder.encode(window, pool_samples=stop - start)[:, 0]
        np.testing.assert_allclose(word_hidden[:, i], reference, rtol=1e-4, atol=1e-5)
        whole = encoder.encode(window)[:, 0]  # pooling the context too differs
        assert np.abs(whole - reference).max() > 1e-4


def test_word_context_options_are_checked(tiny_models, make_store):
    store = make_store(name="bad-context")
    with pytest.raises(InputError, match="`word_context` is the audio heard before each word"):
        extract(store, tiny_models["wavlm"], tr_wins=[1], word_context=1.0)
    with pytest.raises(InputError, match=r"word_context=-0\.5"):
        extract(store, tiny_models["wavlm"], words=True, word_context=-0.5)
    with pytest.raises(InputError, match="takes at most 30 s"):
        extract(store, tiny_models["whisper"], words=True, word_context=31.0)
    assert DEFAULT_WORD_CONTEXT_S == 2.0


def test_cli_word_context_reaches_the_extractor_and_errors_name_flags(tiny_models, make_store):
    from typer.testing import CliRunner

    from featstore.cli.main import app

    store = make_store(name="cli")
    base = ["extract", "--model", tiny_models["wav2vec2"], "--store", str(store), "--quiet"]
    result = CliRunner().invoke(app, [*base, "--words", "--word-context", "0.3"])
    assert result.exit_code == 0, result.output
    group = f"features/{resolve_model(tiny_models['wav2vec2']).key}.words/tr1"
    assert fs.open_group(store, group).attrs["settings"]["word_context_s"] == 0.3
    for extra, flag in (
        (["--tr-win", "1", "--word-context", "1"], "--word-context"),
        (["--tr-win", "1", "--transcript", "8"], "--transcript"),
    ):
        result = CliRunner().invoke(app, [*base, *extra])
        assert result.exit_code == 2 and flag in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1
