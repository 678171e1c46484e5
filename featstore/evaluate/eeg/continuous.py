"""Continuous (non-impulse) predictors of ``evaluate trf`` on the EEG sample grid.

Two kinds, both on the story clock of the ``eeg`` group (0 = story onset = sample 0 of
the stored 16 kHz audio):

* ``envelope``: the broadband acoustic envelope at the EEG rate, computed from the
  stored audio as mTRF-Toolbox's ``mTRFenvelope`` does (RMS of the audio in a window
  centred on each output sample): EEG sample ``i`` at story time ``t_i`` gets the RMS
  of the audio samples ``[round((t_i - 1/(2 sfreq)) sr), round((t_i + 1/(2 sfreq)) sr))``
  (zeros outside the story), so consecutive EEG samples tile the audio. One column.
* a feature set ``KEY[:WINDOW][@LAYERS]``: each layer's ``hidden (tr, dim)``, with TR
  ``t`` placed at the centre of its scan interval, story time ``(t + 1/2) TR -
  stim_onset``, linearly interpolated onto the EEG sample times (``numpy.interp``;
  held at the first / last TR's value outside them). A TR-rate series carries nothing
  faster than the TR: the envelope is the predictor for the fast acoustics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from featstore.errors import InputError
from featstore.evaluate.eeg.inputs import resolve_feature_set
from featstore.extract.audio_windows import AudioStream
from featstore.store import _schema as S
from featstore.store.groups import StorePath, group_attrs, open_root, store_tr_seconds

#: ``--continuous`` name of the acoustic envelope.
ENVELOPE = "envelope"
ENVELOPE_RULE = (
    "RMS of the stored audio in a window of 1/sfreq centred on each EEG sample: samples "
    "[round((t - 1/(2 sfreq)) sr), round((t + 1/(2 sfreq)) sr)), zeros outside the story"
)
INTERPOLATION_RULE = (
    "TR t at story time (t + 1/2) TR - stim_onset, linearly interpolated onto the EEG "
    "samples (numpy.interp; first/last value held outside)"
)
#: EEG samples whose envelope is computed from one read of the audio.
_BLOCK_SAMPLES = 4096


def acoustic_envelope(audio, times: np.ndarray, sfreq: float, sample_rate: int) -> np.ndarray:
    """RMS envelope of ``audio`` at each of ``times`` (see the module docstring).

    Parameters
    ----------
    audio : array-like of shape (n_audio,)
        Sliced like a numpy array (a Zarr array is read block by block).
    times : array of shape (n_times,)
        Story seconds of the EEG samples, increasing.
    sfreq : float
        EEG sampling rate (Hz): each window is ``1 / sfreq`` long.
    sample_rate : int
        Audio sampling rate (Hz).

    Returns
    -------
    float64 array of shape (n_times,)

    Examples
    --------
    >>> audio = np.r_[np.zeros(4), np.full(4, 2.0)]  # 1 s at 8 Hz: silence, then 2.0
    >>> acoustic_envelope(audio, np.array([0.25, 0.5, 0.75]), sfreq=2.0, sample_rate=8)
    array([0.        , 1.41421356, 2.        ])
    """
    times = np.asarray(times, dtype=np.float64)
    half = 0.5 / sfreq
    starts = np.floor((times - half) * sample_rate + 0.5).astype(np.int64)
    stops = np.floor((times + half) * sample_rate + 0.5).astype(np.int64)
    stream = AudioStream(audio)
    out = np.zeros(len(times))
    for first in range(0, len(times), _BLOCK_SAMPLES):
        block = slice(first, first + _BLOCK_SAMPLES)
        lo, hi = int(starts[block][0]), int(stops[block][-1])
        samples = stream.span(lo, hi).astype(np.float64)
        energy = np.concatenate([[0.0], np.cumsum(samples * samples)])
        sums = energy[stops[block] - lo] - energy[starts[block] - lo]
        out[block] = np.sqrt(np.maximum(sums, 0.0) / np.maximum(stops[block] - starts[block], 1))
    return out


def interpolate_trs(values: np.ndarray, tr_times: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Each column of ``values (tr, dim)`` linearly interpolated at ``times`` (n_times, dim).

    Examples
    --------
    >>> interpolate_trs(np.array([[0.0], [2.0]]), np.array([1.0, 3.0]), np.array([0.0, 2.0, 4.0]))
    array([[0.],
           [1.],
           [2.]])
    """
    values = np.asarray(values, dtype=np.float64)
    return np.stack([np.interp(times, tr_times, column) for column in values.T], axis=1)


@dataclass(frozen=True)
class Predictor:
    """One predictor of a TRF: per layer, rows at ``row_times``, then onto the EEG samples.

    ``rows(layer)`` gives a layer's ``(n_rows, n_features)`` values at ``row_times``
    (story seconds: the TR centres of a feature set, the EEG samples for the envelope,
    the word onsets for word impulses); ``on_samples(values)`` puts rows (or a linear
    projection of them, such as their principal components: interpolation commutes with
    it) on the EEG samples. ``reducible`` says whether PCA applies (a feature set, word
    vectors) or not (the one-column envelope).
    """

    key: str
    layers: list[int]
    rows: Callable[[int], np.ndarray]
    row_times: np.ndarray
    on_samples: Callable[[np.ndarray], np.ndarray]
    reducible: bool
    provenance: dict

    def describe(self) -> dict:
        """Provenance written with the result."""
        return {"key": self.key, "layers": self.layers, **self.provenance}

    def series(self, layer: int) -> np.ndarray:
        """A layer's ``(n_times, n_features)`` series on the EEG samples."""
        return self.on_samples(self.rows(layer))


def continuous_features(store: StorePath, name: str, eeg: xr.Dataset) -> Predictor:
    """The predictor ``name`` (``envelope`` or ``KEY[:WINDOW][@LAYERS]``) on the EEG samples."""
    times = eeg[S.TIME_DIM].values.astype(np.float64)
    sfreq = float(eeg.attrs["sfreq"])
    if name == ENVELOPE:
        sample_rate = int(group_attrs(store, S.STIMULUS).get("sample_rate", S.AUDIO_SAMPLE_RATE))
        audio = open_root(store)[f"{S.STIMULUS}/{S.STIMULUS_AUDIO_VAR}"]
        envelope = acoustic_envelope(audio, times, sfreq, sample_rate)
        if not envelope.any():
            raise InputError(f"{store}: the stimulus audio is silent over the EEG recording")
        return Predictor(
            ENVELOPE,
            [0],
            rows=lambda layer: envelope[:, None],
            row_times=times,
            on_samples=lambda values: values,
            reducible=False,
            provenance={
                "window": f"{sfreq:g}Hz",
                "rule": ENVELOPE_RULE,
                "sample_rate": sample_rate,
            },
        )
    resolved = resolve_feature_set(store, name, option="continuous")
    hidden = resolved.dataset[S.HIDDEN_VAR]
    stim_onset = float(group_attrs(store, S.STIMULUS).get("stim_onset", 0.0))
    tr_times = (np.arange(hidden.sizes[S.TR_DIM]) + 0.5) * store_tr_seconds(store) - stim_onset
    return Predictor(
        resolved.key,
        resolved.layers,
        rows=lambda layer: hidden.sel({S.LAYER_DIM: layer}).values.astype(np.float64),
        row_times=tr_times,
        on_samples=lambda values: interpolate_trs(values, tr_times, times),
        reducible=True,
        provenance={
            "window": resolved.window,
            "model_id": resolved.dataset.attrs.get("model_id"),
            "rule": INTERPOLATION_RULE,
        },
    )
