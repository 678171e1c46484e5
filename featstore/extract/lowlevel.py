"""Weight-free low-level features, stored like any model (modality ``lowlevel``, layer 0).

* ``spectral``: log mel energies of each window — 25 ms Hann frames every 10 ms
  (frames entirely inside the window, no centring), power spectrum, a 40-band
  triangular mel filterbank on the HTK mel scale from 20 Hz to 8 kHz (built here,
  unnormalised: each triangle peaks at 1), ``log(energy + 1e-10)``, averaged over
  the window's frames. Dim 40.
* ``envelope``: RMS of the window's samples and its log, ``log(rms + 1e-8)``. Dim 2.
* ``wordrate``: per TR, the number of words (``tr_index == t``, non-empty text) and a
  syllable-ish count (vowel groups per word, a silent final ``e`` dropped, at least 1
  per word with letters). No audio window: stored as ``tr1``. Dim 2.

``spectral`` and ``envelope`` take ``--tr-win`` and run through the same windowed,
resumable loop as the neural models (no device, no weights).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from featstore import __version__
from featstore.errors import InputError, ModelError
from featstore.extract.common import (
    DEFAULT_RUN,
    RunOptions,
    check_dtype,
    provenance_attrs,
    stimulus_identity,
)
from featstore.extract.registry import ModelSpec
from featstore.extract.window_run import (
    WindowEncoder,
    check_writable,
    plan_windows,
    run_windows,
)
from featstore.store import _schema as S
from featstore.store.features import write_feature_set
from featstore.store.groups import StorePath, group_exists, open_group, store_n_tr
from featstore.store.paths import feature_group, window_name
from featstore.store.staging import group_lock

REVISION = f"featstore-{__version__}"
N_MELS, N_FFT, HOP, F_MIN, F_MAX = 40, 400, 160, 20.0, 8000.0
LOG_FLOOR = {"spectral": 1e-10, "envelope": 1e-8}
_VOWEL_GROUP = re.compile(r"[aeiouy]+")


def mel_filterbank(
    n_mels: int, n_fft: int, sample_rate: int, f_min: float, f_max: float
) -> np.ndarray:
    """Triangular mel filters, ``(n_mels, n_fft // 2 + 1)``, each peaking at 1 on its centre.

    Centres are equally spaced on the HTK mel scale between ``f_min`` and ``f_max``
    (``n_mels + 2`` edges); weights are evaluated at each FFT bin's frequency
    (transformers' ``mel_filter_bank``, unnormalised, triangles in Hz).
    """
    from transformers.audio_utils import mel_filter_bank

    filters = mel_filter_bank(
        n_fft // 2 + 1, n_mels, f_min, f_max, sample_rate, norm=None, mel_scale="htk"
    )
    return np.ascontiguousarray(filters.T)


def mel_centres_hz(n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """Centre frequencies of :func:`mel_filterbank`'s filters, in Hz."""
    from transformers.audio_utils import hertz_to_mel, mel_to_hertz

    edges = np.linspace(hertz_to_mel(f_min, "htk"), hertz_to_mel(f_max, "htk"), n_mels + 2)
    return mel_to_hertz(edges, "htk")[1:-1]


def log_mel_energies(windows: np.ndarray, filterbank: np.ndarray) -> np.ndarray:
    """Mean over frames of the log mel energies of each row of ``(batch, samples)``."""
    from scipy.fft import rfft
    from scipy.signal import get_window

    if windows.shape[1] < N_FFT:
        raise InputError(f"windows of {windows.shape[1]} samples are shorter than one frame")
    frames = np.lib.stride_tricks.sliding_window_view(windows, N_FFT, axis=1)[:, ::HOP]
    taper = get_window("hann", N_FFT).astype(np.float32)
    power = np.abs(rfft(frames * taper, axis=-1)) ** 2
    energies = power.astype(np.float64) @ filterbank.T
    return np.log(energies + LOG_FLOOR["spectral"]).mean(axis=1)


def rms_envelope(windows: np.ndarray) -> np.ndarray:
    """``(batch, 2)``: RMS of each window and ``log(rms + 1e-8)``."""
    rms = np.sqrt(np.mean(np.square(windows, dtype=np.float64), axis=1))
    return np.stack([rms, np.log(rms + LOG_FLOOR["envelope"])], axis=1)


def syllable_count(word: str) -> int:
    """Vowel groups in ``word`` (``y`` counts), a silent final ``e`` dropped; 0 if no letters."""
    letters = re.sub(r"[^a-z]", "", word.lower())
    if not letters:
        return 0
    count = len(_VOWEL_GROUP.findall(letters))
    if letters.endswith("e") and not letters.endswith(("le", "ee")) and count > 1:
        count -= 1
    return max(count, 1)


def word_rate(words: Sequence[str], tr_index: np.ndarray, n_tr: int) -> tuple[np.ndarray, int]:
    """``(n_tr, 2)`` words and syllables per TR, and the number of words outside the TRs."""
    rates = np.zeros((n_tr, 2), dtype=np.float64)
    ignored = 0
    for word, tr in zip(words, np.asarray(tr_index), strict=True):
        if not word:
            continue
        if not 0 <= tr < n_tr:
            ignored += 1
            continue
        rates[tr] += (1, syllable_count(word))
    return rates, ignored


def _window_encoder(family: str, sample_rate: int) -> WindowEncoder:
    if family == "spectral":
        filterbank = mel_filterbank(N_MELS, N_FFT, sample_rate, F_MIN, F_MAX)
        centres = mel_centres_hz(N_MELS, F_MIN, F_MAX)
        return WindowEncoder(
            encode=lambda w: log_mel_energies(w, filterbank)[None].astype(np.float32),
            layer_names=["log_mel"],
            dim=N_MELS,
            pooling="mean over 25 ms frames (hop 10 ms) of log mel energies",
            settings={
                "n_mels": N_MELS,
                "n_fft": N_FFT,
                "hop": HOP,
                "f_min": F_MIN,
                "f_max": F_MAX,
                "mel_scale": "htk",
                "frame_window": "hann",
                "log_floor": LOG_FLOOR["spectral"],
                "mel_centres_hz": centres.round(3).tolist(),
            },
            revision=REVISION,
        )
    if family != "envelope":
        raise ModelError(
            f"unknown low-level feature {family!r}; expected spectral, envelope or wordrate"
        )
    return WindowEncoder(
        encode=lambda w: rms_envelope(w)[None].astype(np.float32),
        layer_names=["rms"],
        dim=2,
        pooling="RMS over the window's samples",
        settings={"columns": ["rms", "log_rms"], "log_floor": LOG_FLOOR["envelope"]},
        revision=REVISION,
    )


def _extract_wordrate(
    store: StorePath, spec: ModelSpec, *, dtype: str, overwrite: bool
) -> list[str]:
    check_dtype(dtype)
    stimulus = stimulus_identity(store)
    n_tr = store_n_tr(store)
    group = feature_group(spec.key, window_name(tr_win=1))
    with group_lock(store, group):
        check_writable(store, [group], overwrite)
        ds = open_group(store, S.STIMULUS)
        words = [str(w) for w in ds["word"].values]
        rates, ignored = word_rate(words, ds["tr_index"].values, n_tr)
        settings = {
            "columns": ["words", "syllables"],
            "syllables": "vowel groups (aeiouy) per word, silent final e dropped, >= 1",
            "tr_assign": stimulus["tr_assign"],
            "n_words_outside_trs": ignored,
            "dtype": dtype,
        }
        attrs = provenance_attrs(
            spec,
            revision=REVISION,
            pooling="sum over the words of each TR (tr_index)",
            settings=settings,
            stimulus=stimulus,
        )
        attrs["layer_names"] = ["wordrate"]
        return [
            write_feature_set(
                store,
                spec.key,
                window_name(tr_win=1),
                rates[None].astype(dtype),
                attrs=attrs,
                overwrite=overwrite or group_exists(store, group),
            )
        ]


def extract_lowlevel(
    store: StorePath,
    spec: ModelSpec,
    *,
    tr_wins: Sequence[int] = (),
    run: RunOptions = DEFAULT_RUN,
) -> list[str]:
    """Compute a low-level feature (``spectral``, ``envelope`` or ``wordrate``).

    Of ``run``, the device, revision, precision and threads have no effect (numpy, no
    weights). ``wordrate`` takes no window (stored as ``tr1``).
    Example: ``extract_lowlevel("s.zarr", resolve_model("spectral"), tr_wins=[1, 3])``.
    """
    if spec.family == "wordrate":
        if list(tr_wins) not in ([], [1]):
            raise InputError("wordrate counts words per TR and takes no `tr_wins` (stored as tr1)")
        return _extract_wordrate(store, spec, dtype=run.dtype, overwrite=run.overwrite)
    plan = plan_windows(store, spec, tr_wins, dtype=run.dtype, overwrite=run.overwrite)
    encoder = _window_encoder(spec.family, plan.grid.sample_rate)
    return run_windows(plan, encoder, batch_size=run.batch_size, progress=run.progress)
