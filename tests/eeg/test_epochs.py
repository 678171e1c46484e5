"""Word-locked epochs against ``mne.Epochs`` (same events, baseline and rejection)."""

from __future__ import annotations

import numpy as np
import pytest

from featstore.errors import InputError
from featstore.evaluate.eeg.epochs import (
    DROP_REASONS,
    EpochSettings,
    epoch_array,
    parse_ms_range,
    word_epochs,
)


def test_epochs_equal_mne_epochs_with_baseline_and_rejection():
    import mne

    sfreq, n_times, n_channels = 128.0, 1900, 4
    rng = np.random.default_rng(0)
    data = 1e-6 * rng.standard_normal((n_times, n_channels))
    data[900:905, 2] += 40e-6  # an artefact in one channel
    onsets = np.array([0.05, 1.3, 2.02, 6.9, 7.3, 9.1, 14.7])  # first and last reach outside
    settings = EpochSettings(tmin=-0.1, tmax=0.45, baseline=(-0.1, 0.0), reject=20e-6)
    epochs, drop = epoch_array(data, first_time=0.0, sfreq=sfreq, onsets=onsets, settings=settings)

    info = mne.create_info(n_channels, sfreq, "eeg")
    raw = mne.io.RawArray(data.T, info, verbose="error")
    events = np.c_[np.round(onsets * sfreq).astype(int), np.zeros(7, int), np.ones(7, int)]
    reference = mne.Epochs(
        raw,
        events,
        tmin=-0.1,
        tmax=0.45,
        baseline=(-0.1, 0.0),
        reject={"eeg": 20e-6},
        preload=True,
        verbose="error",
    )
    kept = drop == 0
    assert kept.tolist() == [not log for log in reference.drop_log]
    assert [DROP_REASONS[d] for d in drop] == [
        "no data",
        "kept",
        "kept",
        "amplitude",
        "kept",
        "kept",
        "no data",
    ]
    np.testing.assert_allclose(
        epochs[kept], reference.get_data().transpose(0, 2, 1), rtol=1e-10, atol=1e-18
    )


def test_a_baseline_outside_the_epoch_and_bad_ranges_are_refused():
    settings = EpochSettings(tmin=0.1, tmax=0.5, baseline=(-0.2, 0.0), reject=None)
    with pytest.raises(InputError, match="holds no sample"):
        epoch_array(
            np.zeros((100, 2)), first_time=0, sfreq=100, onsets=np.ones(1), settings=settings
        )
    assert parse_ms_range("-100:800", "--epochs") == (-100.0, 800.0)
    for text in ("800:-100", "abc", "5"):
        with pytest.raises(InputError, match="--epochs"):
            parse_ms_range(text, "--epochs")


def test_word_epochs_of_a_store_record_the_threshold(eeg_store):
    settings = EpochSettings(tmin=-0.1, tmax=0.8, baseline=(-0.1, 0.0), reject=1.0)
    ds = word_epochs(eeg_store, settings)
    assert ds.epochs.dims == ("subject", "word", "lag", "channel")
    assert ds.epochs.shape == (2, 61, 91, 6) and ds.lag.values[0] == pytest.approx(-100.0)
    assert ds.attrs["reject_peak_to_peak"] == 1.0 and (ds.drop_reason.values == 0).all()
    tight = word_epochs(eeg_store, EpochSettings(-0.1, 0.8, (-0.1, 0.0), reject=1e-7))
    assert (tight.drop_reason.values == DROP_REASONS.index("amplitude")).all()
