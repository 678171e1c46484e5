"""Z-scoring and PCA fitted on the train rows only, applied to the whole run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from featstore.errors import InputError
from featstore.evaluate.encoding.backend import NUMPY, Backend


def constant_columns(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Columns whose standard deviation is zero up to the rounding of their mean.

    The mean of n copies of a value is not always that value in floating point, which
    leaves a standard deviation of a few ulps instead of 0 (sklearn guards the same way).
    """
    return std <= 1e-12 * abs(mean)


def constant_set_reason(
    spaces: Sequence[np.ndarray], names: Sequence[str], over: str
) -> str | None:
    """Why a model cannot be fitted: a feature space with zero variance in every column
    over the rows given (an all-zero layer), else None.

    ``spaces`` holds each space's rows the model would learn from, ``over`` says which
    rows those are (``"the 59 train TRs"``). Such a space gives the ridge nothing to learn
    from: alone, its predictions are constant and r is undefined; in a fusion, the model
    is the other space alone under a fusion label.
    """
    for k, rows in enumerate(spaces):
        rows = np.asarray(rows, dtype=np.float64)
        if constant_columns(rows.mean(axis=0), rows.std(axis=0)).all():
            side = f" (side {'ab'[k]} of the fusion)" if len(spaces) > 1 else ""
            return f"{names[k]}{side} is constant over {over} (zero variance in every dim)"
    return None


def fit_zscore(train_rows: Any, *, backend: Backend = NUMPY) -> tuple[Any, Any]:
    """Mean and scale of each column (``ddof=0``; constant columns get scale 1).

    Same as sklearn's ``StandardScaler``: a constant column becomes zeros, not NaN.
    Arrays of ``backend`` (numpy by default), float64.
    """
    mean, scale = backend.mean_std(backend.asarray(train_rows, "float64"))
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


def fit_pca(train_rows: Any, n_components: int, *, backend: Backend = NUMPY) -> tuple[Any, Any]:
    """Principal axes of the train rows (float64).

    Parameters
    ----------
    train_rows : array of shape (n_train, n_features)
    n_components : int
        At most ``min(n_train, n_features)`` (as sklearn's PCA).
    backend : Backend
        Where to compute; the results are arrays of that backend.

    Returns
    -------
    mean : array of shape (n_features,)
    components : array of shape (n_components, n_features)
        Orthonormal rows by decreasing variance; the sign makes each row's largest
        absolute loading positive (sklearn's convention).
    """
    train_rows = backend.asarray(train_rows, "float64")
    n_train, n_features = train_rows.shape
    if not 1 <= n_components <= min(n_train, n_features):
        raise InputError(
            f"pca={n_components} components: expected between 1 and "
            f"min(train TRs, feature dims) = min({n_train}, {n_features})"
        )
    mean = train_rows.mean(0)
    centered = train_rows - mean
    if n_train >= n_features:
        # The feature covariance is small (D x D): its eigenvectors are the axes.
        _, eigvecs = backend.eigh(centered.T @ centered)
        components = backend.flip_columns(eigvecs)[:, :n_components].T
    else:
        _, _, vt = backend.svd(centered)
        components = vt[:n_components]
    largest = abs(components).argmax(1)
    leading = components[backend.index(np.arange(n_components)), largest]
    signs = np.sign(leading) if backend.is_numpy else leading.sign()
    return mean, components * signs[:, None]


def apply_pca(values: Any, mean: Any, components: Any) -> Any:
    """Project rows of ``values`` on the axes of ``fit_pca``: ``(values - mean) @ components.T``.

    ``values`` is taken as an array of the backend of ``mean`` and ``components``.
    """
    if isinstance(mean, np.ndarray):
        values = np.asarray(values, dtype=np.float64)
    return (values - mean) @ components.T
