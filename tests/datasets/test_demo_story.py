"""The bundled demo story: files present, small, and timings consistent with the audio."""

from __future__ import annotations

import csv
import re

import numpy as np
import soundfile as sf
from scipy.signal import butter, sosfiltfilt

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
    # the whole bundled directory counts against the package's 3 MB budget
    assert sum(p.stat().st_size for p in audio.parent.iterdir()) <= 3 * 2**20


def test_audio_is_mono_16k_opus_and_about_five_minutes():
    audio, _ = demo_story_paths()
    info = sf.info(audio)
    assert (info.samplerate, info.channels) == (16000, 1)
    assert (info.format, info.subtype) == ("OGG", "OPUS")
    # ~200 TRs of 1.5 s
    assert 290 <= info.duration <= 310


def test_alignment_is_gentle_format_with_consistent_words():
    header, rows = _rows()
    assert header == ["word", "word_lower", "onset", "offset"]
    assert 700 <= len(rows) <= 900
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
    raw, rate = sf.read(audio_path, dtype="float64")
    # The synthesizer's pauses are digital silence, but the Opus encoder high-passes its
    # input at 3 Hz (libopus dc_reject): after a word with a DC offset the decoded audio
    # decays through the pause (time constant 53 ms, at most -30 dB). In the audible band
    # (above 20 Hz) the pauses stay silent.
    audible = sosfiltfilt(butter(2, 20, "highpass", fs=rate, output="sos"), raw)
    _, rows = _rows()
    onset = np.array([float(r[2]) for r in rows])
    offset = np.array([float(r[3]) for r in rows])

    def rms(audio: np.ndarray, start: float, stop: float) -> float:
        return float(np.sqrt(np.mean(audio[int(start * rate) : int(stop * rate)] ** 2)))

    gaps = [
        (a + 0.01, b - 0.01) for a, b in zip(offset[:-1], onset[1:], strict=True) if b - a > 0.1
    ]
    assert len(gaps) >= 100
    for audio, tolerance in ((audible, 0.01), (raw, 0.05)):
        word_rms = np.median([rms(audio, a, b) for a, b in zip(onset, offset, strict=True)])
        assert max(rms(audio, a, b) for a, b in gaps) < tolerance * word_rms
