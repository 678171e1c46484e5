"""Read story audio as mono float32 at 16 kHz (the rate of every speech model used).

Files are read with soundfile (libsndfile: WAV, FLAC, Ogg Opus/Vorbis and the other
formats it knows)
in blocks, channels averaged, and resampled with soxr's high-quality streaming
resampler, so a long story never needs its original-rate samples in memory at once.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from featstore.datasets._files import existing_file, file_sha256
from featstore.errors import InputError
from featstore.store._schema import AUDIO_SAMPLE_RATE

_BLOCK_FRAMES = 1 << 20


def _open(path: os.PathLike) -> sf.SoundFile:
    try:
        return sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = re.sub(r"^Error opening .*?: ", "", reason)  # the path is named already
        raise InputError(
            f"audio {path}: cannot read it as WAV/FLAC/Ogg ({reason}); is it a corrupt or "
            "unsupported audio file?"
        ) from None


def audio_file_info(path: str | os.PathLike) -> dict[str, Any]:
    """Sample rate, channel count, frame count and format of an audio file (header only)."""
    file = existing_file(path, "audio")
    with _open(file) as sound:
        return {
            "sample_rate": int(sound.samplerate),
            "channels": int(sound.channels),
            "frames": int(sound.frames),
            "format": f"{sound.format}/{sound.subtype}",
        }


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """Read an audio file as mono float32 samples at 16 kHz.

    Parameters
    ----------
    path
        WAV, FLAC or Ogg (Opus, Vorbis) file: any sample rate, channel count and sample
        format that libsndfile reads. Ogg Opus decodes at the rate its header states
        (8, 12, 16, 24 or 48 kHz) with the encoder's pre-skip removed.

    Returns
    -------
    samples : numpy.ndarray
        float32, shape (n_samples,), 16 000 samples per second; channels averaged.
    sha256 : str
        Hex sha256 of the file's bytes.

    Raises
    ------
    InputError
        Naming the file: missing, unreadable, corrupt, zero-length, or holding NaN/inf
        samples.

    Examples
    --------
    >>> from featstore.datasets import read_audio
    >>> from featstore.datasets.demo import demo_story_paths
    >>> samples, sha256 = read_audio(demo_story_paths()[0])
    >>> samples.dtype, round(len(samples) / 16000)
    (dtype('float32'), 308)
    """
    file = existing_file(path, "audio")
    sha256 = file_sha256(file, "audio")
    blocks: list[np.ndarray] = []
    with _open(file) as sound:
        rate = int(sound.samplerate)
        stream = (
            None
            if rate == AUDIO_SAMPLE_RATE
            else soxr.ResampleStream(rate, AUDIO_SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        )
        n_read = 0
        while True:
            try:
                block = sound.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise InputError(f"audio {file}: corrupt after {n_read} frames ({exc})") from None
            if len(block) == 0:
                break
            mono = block.mean(axis=1, dtype=np.float32)
            if not np.isfinite(mono).all():
                first = n_read + int(np.flatnonzero(~np.isfinite(mono))[0])
                raise InputError(
                    f"audio {file}: sample {first} (at {first / rate:.3f} s) is NaN or infinite"
                )
            n_read += len(block)
            blocks.append(mono if stream is None else stream.resample_chunk(mono))
    if n_read == 0:
        raise InputError(f"audio {file}: has no samples (zero-length or truncated file)")
    if stream is not None:
        blocks.append(stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
    return np.concatenate(blocks).astype(np.float32, copy=False), sha256
