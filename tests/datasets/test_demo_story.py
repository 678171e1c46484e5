"""The bundled demo story: files present, small, and timings consistent with the audio."""

from __future__ import annotations

import csv
import re

import numpy as np
import soundfile as sf

from featstore.datasets.demo import demo_story_paths


def _rows():
    _, align = demo_story_paths()
    with open(align, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, list(reader)


def test_files_exist_and_are_small():
    audio, align = demo_story_paths()
    readme = audio.parent / "README.md"
    assert audio.is_file() and align.is_file() and readme.is_file()
    assert audio.stat().st_size + align.stat().st_size + readme.stat().st_size <= 3 * 2**20


def test_audio_is_mono_16k_and_about_two_minutes():
    audio, _ = demo_story_paths()
    info = sf.info(audio)
    assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
    assert 90 <= info.duration <= 150


def test_alignment_is_gentle_format_with_consistent_words():
    header, rows = _rows()
    assert header == ["word", "word_lower", "onset", "offset"]
    assert 250 <= len(rows) <= 330
    for word, lower, _, _ in rows:
        assert lower == re.sub(r"^[^\w']+|[^\w']+$", "", word).lower()
        assert lower and " " not in word


def test_timings_are_increasing_and_inside_the_audio():
    audio, _ = demo_story_paths()
    _, rows = _rows()
    onset = np.array([float(r[2]) for r in rows])
    offset = np.array([float(r[3]) for r in rows])
    duration = offset - onset
    assert onset[0] >= 0
    assert np.all(np.diff(onset) > 0)
    assert np.all(offset[:-1] <= onset[1:])
    assert 0.03 < duration.min() and duration.max() < 1.5
    assert 0.2 < np.median(duration) < 0.5
    assert abs(offset[-1] - sf.info(audio).duration) < 0.05


def test_pauses_between_words_are_silent():
    audio_path, _ = demo_story_paths()
    audio, rate = sf.read(audio_path, dtype="float32")
    _, rows = _rows()
    onset = np.array([float(r[2]) for r in rows])
    offset = np.array([float(r[3]) for r in rows])

    def rms(start: float, stop: float) -> float:
        return float(np.sqrt(np.mean(audio[int(start * rate) : int(stop * rate)] ** 2)))

    gaps = [
        (a + 0.01, b - 0.01) for a, b in zip(offset[:-1], onset[1:], strict=True) if b - a > 0.1
    ]
    assert len(gaps) >= 20
    word_rms = np.median([rms(a, b) for a, b in zip(onset, offset, strict=True)])
    assert max(rms(a, b) for a, b in gaps) < 0.01 * word_rms
