"""Z-scoring and PCA fitted on the train rows only, applied to the whole run."""

from __future__ import annotations

import numpy as np

from featstore.errors import InputError


def constant_columns(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Columns whose standard deviation is zero up to the rounding of their mean.

    The mean of n copies of a value is not always that value in floating point, which
    leaves a standard deviation of a few ulps instead of 0 (sklearn guards the same way).
    """
    return std <= 1e-12 * np.abs(mean)


def fit_zscore(train_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale of each column (``ddof=0``; constant columns get scale 1).

    Same as sklearn's ``StandardScaler``: a constant column becomes zeros, not NaN.
    """
    train_rows = np.asarray(train_rows, dtype=np.float64)
    mean = train_rows.mean(axis=0)
    scale = train_rows.std(axis=0)
    scale[constant_columns(mean, scale)] = 1.0
    return mean, scale


def zscore_train(values: np.ndarray, train_index: np.ndarray) -> np.ndarray:
    """Z-score every row of ``values`` with the statistics of its train rows only.

    Parameters
    ----------
    values : array of shape (n_tr, n_columns)
    train_index : int array
        Rows whose mean and standard deviation are used (no test row ever is).

    Returns
    -------
    float64 array of shape (n_tr, n_columns)
    """
    mean, scale = fit_zscore(np.asarray(values)[train_index])
    return (np.asarray(values, dtype=np.float64) - mean) / scale


def fit_pca(train_rows: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Principal axes of the train rows (float64).

    Parameters
    ----------
    train_rows : array of shape (n_train, n_features)
    n_components : int
        At most ``min(n_train, n_features)`` (as sklearn's PCA).

    Returns
    -------
    mean : array of shape (n_features,)
    components : array of shape (n_components, n_features)
        Orthonormal rows by decreasing variance; the sign makes each row's largest
        absolute loading positive (sklearn's convention).
    """
    train_rows = np.asarray(train_rows, dtype=np.float64)
    n_train, n_features = train_rows.shape
    if not 1 <= n_components <= min(n_train, n_features):
        raise InputError(
            f"--pca {n_components} components: expected between 1 and "
            f"min(train TRs, feature dims) = min({n_train}, {n_features})"
        )
    mean = train_rows.mean(axis=0)
    centered = train_rows - mean
    if n_train >= n_features:
        # The feature covariance is small (D x D): its eigenvectors are the axes.
        _, eigvecs = np.linalg.eigh(centered.T @ centered)
        components = eigvecs[:, ::-1][:, :n_components].T
    else:
        _, _, vt = np.linalg.svd(centered, full_matrices=False)
        components = vt[:n_components]
    largest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(n_components), largest])
    return mean, components * signs[:, None]


def apply_pca(values: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Project rows of ``values`` on the axes of ``fit_pca``: ``(values - mean) @ components.T``."""
    return (np.asarray(values, dtype=np.float64) - mean) @ components.T
