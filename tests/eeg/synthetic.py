"""A tiny naturalistic EEG study with a planted effect, written by MNE itself.

A story of ``N_WORDS`` words (sentences of 4–7 words ending in '.'), 2 subjects,
6 EEG channels at 100 Hz. Layer ``PLANTED_LAYER`` of a word-level feature set drives
``PLANTED_CHANNELS`` with a Hann bump from 300 to 500 ms after each word's onset; the
other layers are unrelated (layer 0) or the planted vectors buried in noise (layer 2),
and the other channels are noise only. Sizes differ per axis: 2 subjects, 6 channels,
3 layers, 5 dims, 61 words.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SFREQ = 100.0
CHANNELS = ["Fz", "Cz", "Pz", "Oz", "C3", "C4"]
PLANTED_CHANNELS = ["Cz", "Pz", "C3"]
NOISE_CHANNELS = ["Fz", "Oz", "C4"]
PLANTED_WINDOW_S = (0.3, 0.5)
PLANTED_LAYER = 1
N_LAYERS, N_DIM, N_WORDS = 3, 5, 61
TR = 2.0
SUBJECTS = ["sub-01", "sub-02"]
ONSETS_S = {"sub-01": 2.0, "sub-02": 3.5}
NOISE_V = 1e-6
SIGNAL_V = 3e-6


def story_words(seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Words (sentence ends carry a '.'), onsets and offsets in seconds."""
    rng = np.random.default_rng(seed)
    gaps = rng.uniform(0.55, 0.75, N_WORDS)
    onsets = 0.5 + np.concatenate([[0.0], np.cumsum(gaps[:-1])])
    offsets = onsets + 0.35
    words, in_sentence, length = [], 0, rng.integers(4, 8)
    for i in range(N_WORDS):
        in_sentence += 1
        end = in_sentence == length or i == N_WORDS - 1
        words.append(f"w{i}." if end else f"w{i}")
        if end:
            in_sentence, length = 0, rng.integers(4, 8)
    return words, onsets, offsets


def word_vectors(seed: int = 1) -> np.ndarray:
    """(layer, word, dim) vectors: layer 1 is planted, layer 2 = layer 1 + strong noise."""
    rng = np.random.default_rng(seed)
    planted = rng.standard_normal((N_WORDS, N_DIM))
    return np.stack(
        [
            rng.standard_normal((N_WORDS, N_DIM)),
            planted,
            0.3 * planted + rng.standard_normal((N_WORDS, N_DIM)),
        ]
    ).astype(np.float32)


def write_story(folder: Path, punctuation: bool = True) -> tuple[Path, Path, float]:
    """The alignment CSV and a 16 kHz noise WAV of the story; returns (align, audio, seconds)."""
    words, onsets, offsets = story_words()
    if not punctuation:
        words = [w.rstrip(".") for w in words]
    align = folder / "story_align.csv"
    rows = [
        f"{w},{w.lower()},{a:.3f},{b:.3f}" for w, a, b in zip(words, onsets, offsets, strict=True)
    ]
    align.write_text("word,word_lower,onset,offset\n" + "\n".join(rows) + "\n", encoding="utf-8")
    seconds = float(np.ceil(offsets[-1] + 1.0))
    audio = folder / "story.wav"
    noise = 0.01 * np.random.default_rng(2).standard_normal(int(seconds * 16_000))
    sf.write(audio, noise.astype(np.float32), 16_000)
    return align, audio, seconds


def planted_response(n_times: int, onset_samples: np.ndarray, seed: int) -> np.ndarray:
    """(n_times, channel) EEG in volts: the planted response plus white noise."""
    rng = np.random.default_rng(seed)
    data = NOISE_V * rng.standard_normal((n_times, len(CHANNELS)))
    start, stop = (round(t * SFREQ) for t in PLANTED_WINDOW_S)
    bump = np.hanning(stop - start + 2)[1:-1]
    mixing = np.random.default_rng(5).standard_normal((N_DIM, len(PLANTED_CHANNELS)))
    columns = [CHANNELS.index(name) for name in PLANTED_CHANNELS]
    amplitude = word_vectors()[PLANTED_LAYER] @ mixing / np.sqrt(N_DIM)
    for word, sample in enumerate(onset_samples):
        if sample + stop > n_times:  # a recording cut short (bad-input tests)
            break
        data[sample + start : sample + stop, columns] += SIGNAL_V * bump[:, None] * amplitude[word]
    return data


def write_raws(
    folder: Path, seconds: float, fmt: str = "fif", n_channels: int = 6, seed: int = 10
) -> list[Path]:
    """One recording per subject, written by MNE (fif, or brainvision/edf via export);
    ``seed`` draws the noise (another seed: another session of the same story)."""
    import mne

    _, onsets, _ = story_words()
    paths = []
    for k, subject in enumerate(SUBJECTS):
        lead = ONSETS_S[subject]
        n_times = round((lead + seconds + 1.0) * SFREQ)
        samples = np.round((lead + onsets) * SFREQ).astype(int)
        data = planted_response(n_times, samples, seed=seed + k)[:, :n_channels]
        info = mne.create_info(CHANNELS[:n_channels], SFREQ, "eeg")
        raw = mne.io.RawArray(data.T, info, verbose="error")
        raw.set_montage("standard_1020", verbose="error")
        raw.set_annotations(mne.Annotations([lead], [0.0], ["story_onset"]))
        if fmt == "fif":
            path = folder / f"{subject}_task-s1_eeg.fif"
            raw.save(path, verbose="error")
        else:
            path = folder / f"{subject}_task-s1_eeg.{'vhdr' if fmt == 'brainvision' else 'edf'}"
            mne.export.export_raw(path, raw, fmt=fmt, verbose="error")
        paths.append(path)
    return paths
