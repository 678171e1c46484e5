"""Temporal response functions: time-lagged ridge from stimulus features to every channel.

A TRF is the FIR encoding model of :mod:`~featstore.evaluate.encoding.pipeline` on the
EEG sample grid: the same delays (:func:`make_delays`, lags in samples, a positive lag
looks at the past stimulus), the same ridge (:func:`ridge_cv` with alpha per channel by
CV over contiguous blocks) and the same leakage rules (z-scoring fitted on the train
rows only, delays made before splitting, a gap of the longest lag around every held-out
block). With a fixed alpha and no scaling it is MNE's ``ReceptiveField`` with a
``Ridge(fit_intercept=False)`` estimator: same delays, zero-filled, same weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from featstore.errors import InputError
from featstore.evaluate.encoding.delays import make_delays
from featstore.evaluate.encoding.preprocess import fit_zscore
from featstore.evaluate.encoding.ridge import ridge_cv, ridge_weights
from featstore.evaluate.encoding.scoring import pearson_by_column
from featstore.evaluate.encoding.split import contiguous_folds


def impulse_series(
    vectors: np.ndarray, onsets: np.ndarray, *, first_time: float, sfreq: float, n_times: int
) -> np.ndarray:
    """Word vectors placed at the sample nearest each word onset, zeros elsewhere.

    Parameters
    ----------
    vectors : array of shape (n_words, n_features)
    onsets : array of shape (n_words,)
        Seconds on the clock of the series (NaN: the word is left out).
    first_time : float
        Time of sample 0 in seconds.
    sfreq : float
    n_times : int

    Returns
    -------
    float64 array of shape (n_times, n_features)
        Two words on one sample add up; words outside the series are left out.
    """
    out = np.zeros((n_times, np.shape(vectors)[1]))
    onsets = np.asarray(onsets, dtype=np.float64)
    timed = np.isfinite(onsets)
    samples = np.round((onsets[timed] - first_time) * sfreq).astype(np.int64)
    inside = (samples >= 0) & (samples < n_times)
    np.add.at(out, samples[inside], np.asarray(vectors, dtype=np.float64)[timed][inside])
    return out


def trf_weights(
    X: np.ndarray, Y: np.ndarray, lags: Sequence[int], alpha: float | np.ndarray
) -> np.ndarray:
    """Ridge TRF weights without intercept: array of shape (n_lags, n_features, n_targets)."""
    weights = ridge_weights(make_delays(X, lags), Y, alpha)
    return weights.reshape(len(lags), np.shape(X)[1], np.shape(Y)[1])


def lag_profile(weights: np.ndarray) -> np.ndarray:
    """Root mean square of the weights over features: (n_lags, n_targets).

    Sign-free, so it does not depend on the arbitrary sign of principal components.
    """
    return np.sqrt(np.mean(np.square(weights), axis=1))


@dataclass(frozen=True)
class TRFResult:
    """Outcome of :func:`fit_trf`, one value per target column (channel of a subject).

    Attributes
    ----------
    r : float64 array of shape (n_targets,)
        Pearson r of the predictions on the held-out rows.
    alpha : float64 array of shape (n_targets,)
    cv_score : float64 array of shape (n_targets,)
        Mean validation R² of the chosen alpha.
    weights : float64 array of shape (n_lags, n_features, n_targets)
        Refitted on all train rows with each column's alpha.
    """

    r: np.ndarray
    alpha: np.ndarray
    cv_score: np.ndarray
    weights: np.ndarray


def fit_trf(
    X: np.ndarray,
    Y: np.ndarray,
    lags: Sequence[int],
    alphas: Sequence[float],
    *,
    train_index: np.ndarray,
    test_index: np.ndarray,
    n_folds: int,
) -> TRFResult:
    """Fit a TRF on the train rows with alpha by contiguous CV; score the test rows.

    Parameters
    ----------
    X : array of shape (n_times, n_features)
        Stimulus features on the sample grid (impulses or continuous).
    Y : array of shape (n_times, n_targets)
        The recording (every channel of every subject side by side).
    lags : sequence of int
        Lags in samples (:func:`featstore.evaluate.eeg.epochs.lag_samples`).
    alphas : sequence of float, increasing
    train_index, test_index : int arrays
        Rows of each part (:func:`~featstore.evaluate.encoding.split.chronological_split`
        with a gap of the longest lag).
    n_folds : int
        Contiguous CV folds over the train rows; the longest lag is left out on both
        sides of each validation block.
    """
    lags = [int(lag) for lag in lags]
    if len(train_index) <= len(lags):
        raise InputError(
            f"{len(train_index)} train samples for {len(lags)} lags; expected more samples "
            "(a longer recording or fewer lags)"
        )
    mean, scale = fit_zscore(np.asarray(X)[train_index])
    y_mean, y_scale = fit_zscore(np.asarray(Y)[train_index])
    Xz = (np.asarray(X, dtype=np.float64) - mean) / scale
    Yz = (np.asarray(Y, dtype=np.float64) - y_mean) / y_scale
    delayed = make_delays(Xz, lags)
    gap = max(abs(lag) for lag in lags)
    folds = contiguous_folds(len(train_index), n_folds, gap=gap)
    result = ridge_cv(
        delayed[train_index], Yz[train_index], alphas, folds, X_test=delayed[test_index]
    )
    weights = ridge_weights(delayed[train_index], Yz[train_index], result.alpha)
    return TRFResult(
        r=pearson_by_column(Yz[test_index], result.predictions),
        alpha=result.alpha,
        cv_score=result.cv_score,
        weights=weights.reshape(len(lags), X.shape[1], Y.shape[1]),
    )
