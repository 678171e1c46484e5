"""Tiny hand-made dataset files: an alignment CSV, a stereo 22.05 kHz WAV, fMRI as npz.

Sizes are distinct per axis: 3 subjects, 7 TRs, 5 ROIs, 11 words; TR = 1.5 s and the
story lasts 10 s, so the audio spans ceil(10 / 1.5) = 7 TRs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

TR = 1.5
DURATION_S = 10.0
AUDIO_RATE = 22_050
N_SUBJECTS, N_TR, N_ROI = 3, 7, 5
SUBJECTS = ["sub-01", "sub-02", "sub-03"]

# word, word_lower, onset, offset; line 4 is untimed and line 8 has no word.
ALIGN_ROWS = [
    ("Once", "once", "0.0", "0.4"),
    ("upon", "upon", "0.4", "0.7"),
    ("a", "a", "", ""),
    ("time", "time", "1.5", "1.9"),
    ("there", "there", "1.6", "2.0"),
    ("lived", "lived", "3.0", "3.4"),
    ("", "", "4.2", "4.5"),
    ("old", "old", "5.0", "5.3"),
    ("king", "king", "6.1", "6.6"),
    ("who", "who", "8.9", "9.2"),
    ("said", "said", "9.3", "9.6"),
]
HEADER = "word,word_lower,onset,offset"


def csv_text(rows, header: bool = True) -> str:
    """CSV text of ``rows`` (tuples of cells), with the Gentle header or without."""
    lines = [HEADER] if header else []
    lines += [",".join(row) for row in rows]
    return "\n".join(lines) + "\n"


def write_wav(path: Path, seconds: float = DURATION_S, rate: int = AUDIO_RATE, channels: int = 2):
    """A deterministic noise WAV (float32 samples)."""
    rng = np.random.default_rng(7)
    samples = (0.1 * rng.standard_normal((round(seconds * rate), channels))).astype("f4")
    sf.write(path, samples, rate, subtype="FLOAT")
    return path


def bold_arrays(n_tr: int = N_TR, n_roi: int = N_ROI) -> dict[str, np.ndarray]:
    """One (TR, ROI) float64 array per subject."""
    rng = np.random.default_rng(3)
    return {s: rng.standard_normal((n_tr, n_roi)) for s in SUBJECTS}


def tree_hash(path: Path) -> dict[str, str]:
    """sha256 of every file under ``path`` (relative names), to prove nothing changed."""
    if not path.exists():
        return {}
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def inputs(tmp_path):
    """Paths of a consistent tiny dataset: align, audio, fmri (npz)."""
    align = tmp_path / "story_align.csv"
    align.write_text(csv_text(ALIGN_ROWS), encoding="utf-8")
    audio = write_wav(tmp_path / "story.wav")
    fmri = tmp_path / "bold.npz"
    np.savez(fmri, **bold_arrays())
    return {"align": align, "audio": audio, "fmri": fmri, "dir": tmp_path}
