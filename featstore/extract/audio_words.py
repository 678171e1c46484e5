"""Audio models per word: every layer pooled over each word's span, heard after its context.

The word rule (``WORD_RULE``, stored with the features): word ``i`` is the story audio
``[onset_i, offset_i)`` of the stimulus group (story time, seconds), its ends rounded
to the nearest sample; a span shorter than ``MIN_WORD_SECONDS`` is widened around its
centre to that length (a speech CNN needs 400 samples for one frame), and samples
outside the story are zeros. The model is run on a window made of the
``word_context`` seconds of audio **before** the span (default
``DEFAULT_WORD_CONTEXT_S``; zeros before the story), then the span, and each layer is
averaged over **the frames of the span only**. The context is rounded to a whole
number of the model's output frames (``WindowEncoder.frame_samples``: 320 samples =
20 ms for speech SSL and Whisper, 640 = 40 ms of audio tokens for Qwen2-Audio), so the
span's frames are exactly the last ``frames(span)`` frames of the window, the frames
the span alone would give, each covering the same samples of the word (the context
changes them only through attention): ``audio``: frames from the CNN's input lengths;
``whisper``: ``ceil(n / 320)`` encoder frames, never the 30-s padding; ``audio_llm``:
the language model's audio-token positions. With ``word_context=0`` the model hears the
span alone, and a word's vector is exactly what ``featstore extract --tr-win`` stores
for a window equal to the word's span. One implementation for every family, through
its :class:`~featstore.extract.window_run.WindowEncoder`; an audio LLM loaded with
``transcript=N`` also reads the words heard by the window's end (the word itself
included).

Stored as ``features/<key>.words/tr1`` (the word rate has no audio window, as ``tr1``,
like the ``wordrate`` feature): ``word_hidden (layer, word, dim)`` in the layout text
models use (so ``evaluate trf`` and ``evaluate similarity-eeg`` read it), ``hidden
(layer, tr, dim)`` the mean of each TR's words, ``has_words (tr)`` and
``word_samples (word)`` (samples of the word's span; 0 for a missing or blank word,
which gets no vector and is left out of the TR mean). ``settings.word_context_s`` is
the context actually used. Words are staged in blocks of ``BLOCK_WORDS`` (a killed run
resumes); words of equal span length share a batch.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from importlib import import_module

import numpy as np

from featstore.errors import InputError, ModelError
from featstore.extract.audio_windows import AudioStream, exact_seconds, round_half_up
from featstore.extract.common import (
    DEFAULT_RUN,
    RunOptions,
    load_once,
    progress_label,
    stimulus_identity,
    torch_threads,
)
from featstore.extract.registry import AUDIO, AUDIO_LLM, WHISPER, ModelSpec
from featstore.extract.resample import tr_membership, words_to_trs
from featstore.extract.text import read_stimulus_words
from featstore.extract.transcript import Transcript
from featstore.extract.window_run import (
    WindowEncoder,
    check_writable,
    encoder_attrs,
    encoder_settings,
    open_audio_inputs,
    stimulus_sample_rate,
)
from featstore.progress import progress_bar
from featstore.store import _schema as S
from featstore.store.features import write_feature_set
from featstore.store.groups import StorePath, open_group, store_n_tr
from featstore.store.paths import feature_group, window_name
from featstore.store.staging import BlockStage, StagedArray, group_lock

#: Suffix of the feature key of word-pooled audio features (``wavlm`` → ``<key>.words``).
WORDS_SUFFIX = ".words"
#: Shortest span a model is run on (s); shorter words are widened around their centre.
MIN_WORD_SECONDS = 0.1
#: Seconds of audio heard before each word by default (a few words of context).
DEFAULT_WORD_CONTEXT_S = 2.0
#: Words per resumable block.
BLOCK_WORDS = 64
WORD_RULE = (
    "word i: story samples [round(onset*sr), round(offset*sr)) of the stimulus group, "
    f"widened around its centre to {MIN_WORD_SECONDS:g} s when shorter, zero-padded outside "
    "the story; the model runs on settings.word_context_s of audio before that span (whole "
    "output frames) then the span, pooled over the frames of the span only"
)
WORD_SAMPLES_VAR = "word_samples"

# extractor → the family's WindowEncoder loader; every family pools the same way here
_LOADERS = {
    AUDIO: "featstore.extract.audio:load_audio_encoder",
    WHISPER: "featstore.extract.whisper:load_whisper_encoder",
    AUDIO_LLM: "featstore.extract.audio_llm:load_audio_llm",
}


def word_spans(
    onset: np.ndarray, offset: np.ndarray, keep: np.ndarray, sample_rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, stops)`` story samples of each word by ``WORD_RULE`` (0, 0 where not kept).

    Raises :class:`InputError` for a kept word without finite times or ending before it starts.
    """
    starts = np.zeros(len(onset), np.int64)
    stops = np.zeros(len(onset), np.int64)
    shortest = round_half_up(exact_seconds(MIN_WORD_SECONDS) * sample_rate)
    for i in np.flatnonzero(keep):
        if not (np.isfinite(onset[i]) and np.isfinite(offset[i]) and offset[i] >= onset[i]):
            raise InputError(
                f"stimulus word {i}: onset {onset[i]!r} s, offset {offset[i]!r} s; expected "
                "finite times with offset >= onset to pool audio over the word"
            )
        start = round_half_up(exact_seconds(onset[i]) * sample_rate)
        stop = round_half_up(exact_seconds(offset[i]) * sample_rate)
        if stop - start < shortest:
            start = (start + stop - shortest) // 2
            stop = start + shortest
        starts[i], stops[i] = start, stop
    return starts, stops


def check_word_context(word_context: float) -> float:
    """``word_context`` as given, if it is a number of seconds >= 0."""
    try:
        valid = bool(np.isfinite(word_context) and word_context >= 0)
    except TypeError:
        valid = False
    if not valid:
        raise InputError(f"word_context={word_context!r}: expected seconds >= 0, e.g. 2")
    return float(word_context)


def context_samples(word_context: float, sample_rate: int, frame_samples: int | None) -> int:
    """Samples of context before each word: ``word_context`` s in whole output frames.

    Examples
    --------
    >>> context_samples(2.0, 16_000, 320)  # 100 frames of 20 ms
    32000
    >>> context_samples(0.05, 16_000, 640)  # 1.25 audio tokens of 40 ms -> 1
    640
    """
    if check_word_context(word_context) == 0:
        return 0
    if frame_samples is None:
        raise InputError(f"word_context={word_context!r}: this model cannot pool a word's frames")
    frames = round_half_up(exact_seconds(word_context) * sample_rate / frame_samples)
    return frames * frame_samples


def _encode_words(
    encoder: WindowEncoder,
    stream: AudioStream,
    starts: np.ndarray,
    stops: np.ndarray,
    batch_size: int,
    name: str,
    context: int = 0,
    transcript: Transcript | None = None,
) -> np.ndarray:
    """``(layer, word, dim)`` vectors of the words with a span; batches of equal span length.

    Each window is ``context`` samples before the span then the span; with context only
    the span's frames are pooled.
    """
    out = np.zeros((len(encoder.layer_names), len(starts), encoder.dim), np.float32)
    lengths = stops - starts
    for length in np.unique(lengths[lengths > 0]):
        same = np.flatnonzero(lengths == length)
        for first in range(0, len(same), batch_size):
            batch = same[first : first + batch_size]
            audio = np.stack([stream.span(int(starts[i]) - context, int(stops[i])) for i in batch])
            options: dict = {"pool_samples": int(length)} if context else {}
            if transcript is not None:
                options["transcripts"] = transcript.before_each(
                    stops[batch], encoder.transcript_words
                )
            pooled = encoder.encode(audio, **options)
            expected = (len(encoder.layer_names), len(batch), encoder.dim)
            if pooled.shape != expected:
                raise ModelError(
                    f"{name} returned features of shape {pooled.shape}, expected {expected}"
                )
            out[:, batch] = pooled
    return out


def words_group(spec: ModelSpec) -> str:
    """``features/<key>.words/tr1``: where the word-pooled features of ``spec`` go."""
    return feature_group(spec.key + WORDS_SUFFIX, window_name(tr_win=1))


def extract_audio_words(
    store: StorePath,
    spec: ModelSpec,
    *,
    run: RunOptions = DEFAULT_RUN,
    pad_to_30s: bool | None = None,
    word_context: float = DEFAULT_WORD_CONTEXT_S,
    transcript: int | None = None,
) -> list[str]:
    """Pool every layer of an audio model (speech SSL, Whisper, audio LLM) over each word.

    The model hears ``word_context`` seconds before each word (0: the word alone);
    ``transcript=N`` (audio LLMs) adds the last ``N`` words heard. Writes
    ``features/<key>.words/tr1`` (see the module docstring) and returns it. ``run``
    says how the model runs (batch of words, device, dtype, precision, ...).
    Example: ``extract_audio_words("s.zarr", resolve_model("wavlm"))``.
    """
    batch_size, dtype, precision = run.batch_size, run.dtype, run.precision
    if spec.extractor not in _LOADERS:
        raise InputError(
            f"`words`: {spec.name} is a {spec.extractor} model; word pooling takes the audio "
            f"families {', '.join(sorted(_LOADERS))} (text models store word_hidden already)"
        )
    stimulus = stimulus_identity(store)
    check_word_context(word_context)
    words, starts, stops, sample_rate = _word_spans_of(store)
    group = words_group(spec)
    check_writable(store, [group], run.overwrite)
    load = _loader(spec, pad_to_30s=pad_to_30s, transcript=transcript)
    with torch_threads(run.threads), group_lock(store, group):
        check_writable(store, [group], run.overwrite)  # another run may have finished it
        encoder = load_once(
            load, spec, device=run.device, revision=run.revision, precision=precision
        )
        context = context_samples(word_context, sample_rate, encoder.frame_samples)
        _check_window_length(encoder, spec, int((stops - starts).max(initial=0)) + context)
        settings = {
            **encoder_settings(spec, encoder),
            "sample_rate": sample_rate,
            "min_word_s": MIN_WORD_SECONDS,
            "word_context_s": context / sample_rate,
            "word_context_samples": context,
            "stimulus_sha256": stimulus["stimulus_sha256"],
            "dtype": dtype,
            "precision": precision,
            "batch_size": batch_size,
        }
        shape = (len(encoder.layer_names), len(starts), encoder.dim)
        stage = BlockStage(
            store,
            group,
            {S.WORD_HIDDEN_VAR: StagedArray(shape, dtype, block_axis=1)},
            block_size=BLOCK_WORDS,
            settings=settings,
        )
        stream, transcript_words = open_audio_inputs(store, encoder, sample_rate)
        pending = stage.pending_blocks()
        total = sum(int(words.is_input[stage.block_slice(i)].sum()) for i in pending)
        label = progress_label(store, f"{spec.name} words")
        with progress_bar(label, total, enabled=run.progress, unit="words") as advance:
            for index in pending:
                span = stage.block_slice(index)
                block = _encode_words(
                    encoder,
                    stream,
                    starts[span],
                    stops[span],
                    batch_size,
                    spec.name,
                    context,
                    transcript_words,
                )
                stage.write_block(index, **{S.WORD_HIDDEN_VAR: block})
                advance(int(words.is_input[span].sum()))
        attrs = _word_attrs(spec, encoder, settings, stimulus)
        _finalize(store, spec, stage, words, stops - starts, attrs)
    return [group]


def _word_attrs(spec: ModelSpec, encoder: WindowEncoder, settings: dict, stimulus: dict) -> dict:
    """Provenance attrs of ``features/<key>.words/tr1``."""
    attrs = encoder_attrs(
        dataclasses.replace(spec, key=spec.key + WORDS_SUFFIX),
        encoder,
        f"per word: {encoder.pooling}; per TR: mean of the TR's words",
        settings,
        stimulus,
    )
    attrs["word_rule"] = WORD_RULE
    return attrs


def _word_spans_of(store: StorePath):
    """The stimulus words, each word's span ``(starts, stops)`` and the audio's sample rate."""
    sample_rate = stimulus_sample_rate(store)
    words = read_stimulus_words(store)
    times = open_group(store, S.STIMULUS)[["onset", "offset"]].compute()
    starts, stops = word_spans(
        times["onset"].values, times["offset"].values, words.is_input, sample_rate
    )
    return words, starts, stops, sample_rate


def _loader(spec: ModelSpec, **options) -> Callable[..., WindowEncoder]:
    """The family's WindowEncoder loader with the options given (None: the loader's default)."""
    module_name, function_name = _LOADERS[spec.extractor].split(":")
    load = getattr(import_module(module_name), function_name)
    given = {name: value for name, value in options.items() if value is not None}
    return functools.partial(load, **given) if given else load


def _check_window_length(encoder: WindowEncoder, spec: ModelSpec, longest: int) -> None:
    """Refuse context + span longer than the model takes (Whisper, audio LLMs: 30 s)."""
    rate = S.AUDIO_SAMPLE_RATE
    if encoder.max_window_s is not None and longest > encoder.max_window_s * rate:
        raise InputError(
            f"word_context: the longest word with its context is {longest / rate:g} s of audio "
            f"but {spec.name} takes at most {encoder.max_window_s:g} s; use a shorter context"
        )


def _finalize(store, spec, stage, words, word_samples, attrs) -> None:
    """Write word_hidden, its TR means and the word spans; discard the stage."""
    n_tr = store_n_tr(store)
    used = word_samples > 0
    counted, has_words = tr_membership(words.tr_index, n_tr, used)
    word_hidden = stage.dask_arrays()[S.WORD_HIDDEN_VAR].rechunk((1, -1, -1))
    n_layers, _, dim = word_hidden.shape
    dtype = word_hidden.dtype

    def layer_to_trs(layer):
        values, _ = words_to_trs(layer[0], words.tr_index, n_tr, used=used)
        return values.astype(dtype)[None]

    hidden = word_hidden.map_blocks(
        layer_to_trs, chunks=((1,) * n_layers, (n_tr,), (dim,)), dtype=dtype
    )
    counts = {
        "n_words": len(words.words),
        "n_words_used": int(counted.sum()),
        "n_words_missing": int((~used).sum()),
        "n_trs_without_words": int((~has_words).sum()),
        "resumed_blocks": stage.resumed_blocks,
    }
    write_feature_set(
        store,
        spec.key + WORDS_SUFFIX,
        window_name(tr_win=1),
        hidden,
        attrs={**attrs, **counts},
        word_hidden=word_hidden,
        has_words=has_words,
        extra_vars={WORD_SAMPLES_VAR: ((S.WORD_DIM,), word_samples.astype(np.int64))},
        overwrite=True,  # the lock is held and a complete group was refused above
    )
    stage.discard()
