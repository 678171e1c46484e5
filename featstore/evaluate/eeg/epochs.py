"""Word-locked epochs of continuous EEG: baseline-corrected, rejected by peak-to-peak amplitude.

The conventions are MNE's (``mne.Epochs``): an event sits on the sample nearest the
word onset, an epoch spans the samples ``round(tmin * sfreq) … round(tmax * sfreq)``
around it, the baseline is the mean over the epoch samples whose time lies in
``[bmin, bmax]``, and an epoch is dropped when any channel's peak-to-peak amplitude
over the epoch exceeds ``reject``. Epochs that reach outside the recording are dropped too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from featstore.errors import InputError
from featstore.store import _schema as S
from featstore.store.groups import StorePath, open_group

#: Why an epoch was dropped (``drop_reason`` variable): kept, outside the recording, too large.
DROP_REASONS = ("kept", "no data", "amplitude", "no onset")


def parse_ms_range(text: str, option: str) -> tuple[float, float]:
    """``"-100:800"`` → (-100.0, 800.0) milliseconds, start below stop."""
    start, sep, stop = str(text).partition(":")
    try:
        pair = (float(start), float(stop)) if sep else None
    except ValueError:
        pair = None
    if pair is None or not pair[0] < pair[1]:
        raise InputError(
            f"{option} {text!r}: expected START:STOP in ms with START < STOP, e.g. -100:800"
        )
    return pair


def lag_samples(tmin_s: float, tmax_s: float, sfreq: float) -> np.ndarray:
    """Sample offsets of an epoch or of TRF lags, as MNE rounds them (int64)."""
    return np.arange(round(tmin_s * sfreq), round(tmax_s * sfreq) + 1, dtype=np.int64)


@dataclass(frozen=True)
class EpochSettings:
    """Epoch window and cleaning, in seconds and volts (as MNE's ``Epochs``)."""

    tmin: float
    tmax: float
    baseline: tuple[float, float] | None
    reject: float | None

    def attrs(self) -> dict:
        """Settings as written in result attrs (the rejection threshold included)."""
        return {
            "epoch_tmin_s": self.tmin,
            "epoch_tmax_s": self.tmax,
            "baseline_s": list(self.baseline) if self.baseline else None,
            "reject_peak_to_peak": self.reject,
        }


def epoch_array(
    data: np.ndarray,
    *,
    first_time: float,
    sfreq: float,
    onsets: np.ndarray,
    settings: EpochSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """Epochs of one recording around each onset.

    Parameters
    ----------
    data : array of shape (n_times, n_channels)
    first_time : float
        Time of ``data[0]`` in seconds (on the clock of ``onsets``).
    sfreq : float
    onsets : array of shape (n_words,)
        Seconds; NaN for a word without timing.
    settings : EpochSettings

    Returns
    -------
    epochs : float64 array of shape (n_words, n_lags, n_channels)
        Baseline-corrected; zeros for dropped epochs.
    drop : int8 array of shape (n_words,)
        Index into :data:`DROP_REASONS` (0 = kept).
    """
    data = np.asarray(data, dtype=np.float64)
    lags = lag_samples(settings.tmin, settings.tmax, sfreq)
    epochs = np.zeros((len(onsets), len(lags), data.shape[1]))
    drop = np.zeros(len(onsets), dtype=np.int8)
    times = lags / sfreq
    if settings.baseline is not None:
        bmin, bmax = settings.baseline
        in_baseline = (times >= bmin) & (times <= bmax)
        if not in_baseline.any():
            raise InputError(
                f"--baseline {bmin * 1e3:g}:{bmax * 1e3:g} ms holds no sample of the epoch "
                f"{settings.tmin * 1e3:g}:{settings.tmax * 1e3:g} ms"
            )
    for word, onset in enumerate(np.asarray(onsets, dtype=np.float64)):
        if not np.isfinite(onset):
            drop[word] = DROP_REASONS.index("no onset")
            continue
        rows = round((onset - first_time) * sfreq) + lags
        if rows[0] < 0 or rows[-1] >= len(data):
            drop[word] = DROP_REASONS.index("no data")
            continue
        epoch = data[rows]
        if settings.baseline is not None:
            epoch = epoch - epoch[in_baseline].mean(axis=0)
        if settings.reject is not None and np.any(np.ptp(epoch, axis=0) > settings.reject):
            drop[word] = DROP_REASONS.index("amplitude")
            continue
        epochs[word] = epoch
    return epochs, drop


def word_epochs(store: StorePath, settings: EpochSettings) -> xr.Dataset:
    """Epochs of every word for every subject of the store's ``eeg`` group.

    Returns
    -------
    xarray.Dataset
        ``epochs (subject, word, lag, channel)`` float32 with ``lag`` in ms, and ``drop_reason
        (subject, word)`` (see :data:`DROP_REASONS`); the settings in attrs.
    """
    eeg = open_group(store, S.EEG)
    onsets = open_group(store, S.STIMULUS)["onset"].values
    sfreq = float(eeg.attrs["sfreq"])
    first_time = float(eeg[S.TIME_DIM].values[0])
    parts, drops = [], []
    for subject in eeg[S.SUBJECT_DIM].values:
        data = eeg[S.EEG_DATA_VAR].sel({S.SUBJECT_DIM: subject}).values
        epochs, drop = epoch_array(
            data, first_time=first_time, sfreq=sfreq, onsets=onsets, settings=settings
        )
        parts.append(epochs.astype(np.float32))
        drops.append(drop)
    lags_ms = lag_samples(settings.tmin, settings.tmax, sfreq) / sfreq * 1e3
    return xr.Dataset(
        {
            "epochs": ((S.SUBJECT_DIM, S.WORD_DIM, S.LAG_DIM, S.CHANNEL_DIM), np.stack(parts)),
            "drop_reason": ((S.SUBJECT_DIM, S.WORD_DIM), np.stack(drops)),
        },
        coords={
            S.SUBJECT_DIM: eeg[S.SUBJECT_DIM].values,
            S.LAG_DIM: lags_ms,
            S.CHANNEL_DIM: eeg[S.CHANNEL_DIM].values,
        },
        attrs={**settings.attrs(), "sfreq": sfreq, "drop_reasons": list(DROP_REASONS)},
    )
