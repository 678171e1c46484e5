"""Column-wise scores of predictions: Pearson r and R²."""

from __future__ import annotations

import numpy as np


def pearson_by_column(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of ``y_true`` with the same column of ``y_pred``.

    Computed in float64. A column with zero variance in either array gets NaN (no
    warning): a constant ROI has no defined correlation.

    Parameters
    ----------
    y_true, y_pred : arrays of shape (n_samples, n_columns)

    Returns
    -------
    float64 array of shape (n_columns,)
    """
    a = np.asarray(y_true, dtype=np.float64)
    b = np.asarray(y_pred, dtype=np.float64)
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    denominator = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    numerator = (a * b).sum(axis=0)
    r = np.full(a.shape[1], np.nan)
    ok = denominator > 0
    r[ok] = numerator[ok] / denominator[ok]
    return np.clip(r, -1.0, 1.0, where=ok, out=r)


def r2_by_column(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Coefficient of determination of each column (sklearn's ``r2_score``, raw values).

    ``1 - SSE / SST`` with the mean of ``y_true``; NaN for a constant column of ``y_true``.
    """
    a = np.asarray(y_true, dtype=np.float64)
    b = np.asarray(y_pred, dtype=np.float64)
    sse = ((a - b) ** 2).sum(axis=0)
    sst = ((a - a.mean(axis=0)) ** 2).sum(axis=0)
    r2 = np.full(a.shape[1], np.nan)
    ok = sst > 0
    r2[ok] = 1.0 - sse[ok] / sst[ok]
    return r2
