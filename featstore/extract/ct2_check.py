"""Check a converted Whisper model end to end: transcribe the demo story, score the words.

A conversion that swapped q and k, misplaced a bias or mis-tied the output layer cannot
transcribe speech; one that is right transcribes the bundled story (synthetic speech,
exact words known) nearly word for word. The story is cut into chunks of at most 30 s
at pauses between words, so no word is split and each chunk's reference words are known.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featstore.errors import InputError

WHISPER_SECONDS = 30.0


@dataclass
class TranscriptionCheck:
    """Result of :func:`check_transcription`.

    Attributes
    ----------
    wer
        Word error rate of the transcript against the story's words (after Whisper's
        English text normalizer on both).
    n_words
        Reference words scored.
    seconds_of_audio
        Audio transcribed.
    reference, hypothesis
        The normalized texts compared.
    elapsed
        Wall time of feature extraction + generation, seconds.
    """

    wer: float
    n_words: int
    seconds_of_audio: float
    reference: str
    hypothesis: str
    elapsed: float


def word_error_rate(reference: list[str], hypothesis: list[str]) -> float:
    """(substitutions + deletions + insertions) / len(reference), by Levenshtein alignment."""
    if not reference:
        raise InputError("word_error_rate needs at least one reference word")
    previous = np.arange(len(hypothesis) + 1)
    for i, ref_word in enumerate(reference, start=1):
        current = np.empty_like(previous)
        current[0] = i
        for j, hyp_word in enumerate(hypothesis, start=1):
            current[j] = min(
                previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)
            )
        previous = current
    return float(previous[-1]) / len(reference)


def pause_chunks(
    onsets: np.ndarray, offsets: np.ndarray, max_seconds: float = WHISPER_SECONDS
) -> list[tuple[float, float, slice]]:
    """Cut a timed word sequence into chunks of at most ``max_seconds`` between words.

    Returns ``(start_s, stop_s, words)`` per chunk: a chunk starts at its first word's
    onset (the first chunk at 0) and ends at its last word's offset.
    """
    chunks: list[tuple[float, float, slice]] = []
    first, start = 0, 0.0
    for i in range(len(onsets)):
        if offsets[i] - start > max_seconds:
            if i == first:
                raise InputError(f"word {i} ends more than {max_seconds} s after its chunk start")
            chunks.append((start, float(offsets[i - 1]), slice(first, i)))
            first, start = i, float(onsets[i])
    chunks.append((start, float(offsets[-1]), slice(first, len(onsets))))
    return chunks


def check_transcription(
    model_dir: str | Path,
    *,
    max_seconds: float | None = None,
    language: str | None = "en",
) -> TranscriptionCheck:
    """Transcribe the bundled demo story with a Whisper model and score it.

    Parameters
    ----------
    model_dir
        A Hugging Face Whisper directory (e.g. the output of ``convert_ct2_whisper``).
    max_seconds
        Only the story's first ``max_seconds`` (cut at a pause; None: the whole story,
        307 s, about two minutes on a CPU for whisper-base).
    language
        Passed to ``generate`` for multilingual models; ignored for English-only ones.

    Returns
    -------
    TranscriptionCheck
    """
    import soundfile as sf
    import torch
    from transformers import (
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizer,
    )
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    from featstore.datasets.demo import demo_story_paths

    audio_path, align_path = demo_story_paths()
    with open(align_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    onsets = np.array([float(r["onset"]) for r in rows])
    offsets = np.array([float(r["offset"]) for r in rows])
    chunk_seconds = min(WHISPER_SECONDS, max_seconds or WHISPER_SECONDS)
    chunks = pause_chunks(onsets, offsets, chunk_seconds)
    if max_seconds is not None:
        chunks = [c for c in chunks if c[1] <= max_seconds] or chunks[:1]
    audio, rate = sf.read(audio_path, dtype="float32")
    model = WhisperForConditionalGeneration.from_pretrained(model_dir).eval()
    extractor = WhisperFeatureExtractor.from_pretrained(model_dir)
    tokenizer = WhisperTokenizer.from_pretrained(model_dir)
    started = time.perf_counter()
    # 0.1 s of margin on both sides: the synthesizer's onsets are exact, Whisper likes context
    pieces = [audio[max(0, int((a - 0.1) * rate)) : int((b + 0.1) * rate)] for a, b, _ in chunks]
    features = extractor(
        pieces, sampling_rate=rate, return_tensors="pt", return_attention_mask=True
    )
    options = {}
    if getattr(model.generation_config, "is_multilingual", False) and language:
        options = {"language": language, "task": "transcribe"}
    with torch.inference_mode():
        tokens = model.generate(
            features.input_features,
            attention_mask=features.attention_mask,
            do_sample=False,
            num_beams=1,
            **options,
        )
    text = " ".join(tokenizer.batch_decode(tokens, skip_special_tokens=True))
    elapsed = time.perf_counter() - started
    normalize = EnglishTextNormalizer({})
    reference = normalize(
        " ".join(r["word"] for r in rows[chunks[0][2].start : chunks[-1][2].stop])
    )
    hypothesis = normalize(text)
    return TranscriptionCheck(
        wer=word_error_rate(reference.split(), hypothesis.split()),
        n_words=len(reference.split()),
        seconds_of_audio=sum(b - a for a, b, _ in chunks),
        reference=reference,
        hypothesis=hypothesis,
        elapsed=elapsed,
    )
