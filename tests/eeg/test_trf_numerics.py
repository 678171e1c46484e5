"""TRF numerics: MNE's ReceptiveField as the reference, leakage rules, a planted lag."""

from __future__ import annotations

import numpy as np
import pytest

from featstore.evaluate.eeg.epochs import lag_samples
from featstore.evaluate.encoding.split import chronological_split
from featstore.evaluate.encoding.trf import fit_trf, impulse_series, lag_profile, trf_weights

SFREQ = 64.0


@pytest.mark.parametrize(("tmin", "tmax"), [(-0.1, 0.3), (0.05, 0.25)])
def test_trf_weights_equal_mne_receptive_field_with_a_ridge(tmin, tmax):
    from mne.decoding import ReceptiveField
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((301, 3)), rng.standard_normal((301, 5))
    lags = lag_samples(tmin, tmax, SFREQ)
    ours = trf_weights(X, Y, lags, alpha=7.0)  # (lag, feature, channel)
    rf = ReceptiveField(
        tmin, tmax, SFREQ, estimator=Ridge(alpha=7.0, fit_intercept=False), fit_intercept=False
    ).fit(X, Y)
    np.testing.assert_allclose(ours, rf.coef_.transpose(2, 1, 0), rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(lags, rf.delays_)


def test_impulses_sit_on_the_nearest_sample_and_add_up():
    vectors = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    onsets = np.array([0.105, 0.115, np.nan, 9.0])  # 6.72 and 7.36 samples: both 7
    out = impulse_series(vectors, onsets, first_time=0.0, sfreq=SFREQ, n_times=11)
    expected = np.zeros((11, 2))
    expected[7] = [4.0, 6.0]
    np.testing.assert_array_equal(out, expected)


def _planted(n_times=3000, seed=1):
    rng = np.random.default_rng(seed)
    X = np.zeros((n_times, 2))
    X[rng.choice(n_times - 40, 200, replace=False)] = rng.standard_normal((200, 2))
    Y = 0.5 * rng.standard_normal((n_times, 4))
    lag = round(0.4 * SFREQ)  # planted at 400 ms on channels 0 and 1
    Y[lag:, :2] += X[:-lag] @ np.array([[1.0, 0.5], [-0.5, 1.0]])
    return X, Y


def test_fit_trf_recovers_a_planted_lag_and_leaves_noise_channels_at_chance():
    X, Y = _planted()
    lags = lag_samples(-0.1, 0.6, SFREQ)
    train, test = chronological_split(len(X), trim=0, test_frac=0.2, gap=int(np.abs(lags).max()))
    result = fit_trf(
        X, Y, lags, [1e-1, 1e1, 1e3, 1e5], train_index=train, test_index=test, n_folds=4
    )
    profile = lag_profile(result.weights)
    peak_ms = lags[profile.argmax(axis=0)] / SFREQ * 1e3
    assert np.all(np.abs(peak_ms[:2] - 400) <= 1e3 / SFREQ)
    assert np.all(result.r[:2] > 0.25) and np.all(np.abs(result.r[2:]) < 0.1)
    assert np.all(result.alpha[2:] >= result.alpha[:2])  # noise: the strongest shrinkage


def test_fit_trf_learns_nothing_from_the_test_rows():
    X, Y = _planted()
    lags = lag_samples(0.0, 0.5, SFREQ)
    train, test = chronological_split(len(X), trim=0, test_frac=0.2, gap=len(lags))
    first = fit_trf(X, Y, lags, [1.0, 100.0], train_index=train, test_index=test, n_folds=3)
    X2, Y2 = X.copy(), Y.copy()
    X2[test] *= 50.0
    Y2[test] += 3.0  # neither the scaling nor the weights may see these
    second = fit_trf(X2, Y2, lags, [1.0, 100.0], train_index=train, test_index=test, n_folds=3)
    np.testing.assert_array_equal(first.alpha, second.alpha)
    np.testing.assert_allclose(first.weights, second.weights, rtol=1e-12)
