"""The noise ceiling estimator: leave-one-subject-out inter-subject correlation (LOSO ISC).

See :mod:`featstore.evaluate.runs.ceiling` for what it means, its caveats, and how it is
computed on a run's test TRs and stored.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from featstore.errors import InputError
from featstore.evaluate.encoding.scoring import pearson_by_column

DEFAULT_CEILING_THRESHOLD = 0.1


def loso_isc(bold: np.ndarray) -> np.ndarray:
    """Leave-one-subject-out inter-subject correlation per subject and ROI.

    Parameters
    ----------
    bold : ndarray, shape (n_subject, n_time, n_roi)
        Responses on the test TRs.

    Returns
    -------
    ndarray, shape (n_subject, n_roi)
        r between each subject and the mean of the others (NaN for constant series).

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.evaluate.metrics import loso_isc
    >>> rng = np.random.default_rng(0)
    >>> bold = rng.standard_normal((1, 50, 4)) + rng.standard_normal((3, 50, 4))  # shared + own
    >>> loso_isc(bold).shape  # (subject, roi)
    (3, 4)
    """
    bold = np.asarray(bold, dtype=np.float64)
    if bold.ndim != 3:
        raise InputError(f"bold must be (subject, time, roi), got shape {bold.shape}")
    n_subject = bold.shape[0]
    if n_subject < 3:
        raise InputError(
            f"the leave-one-subject-out noise ceiling needs at least 3 subjects, got {n_subject}"
        )
    others = (bold.sum(axis=0, keepdims=True) - bold) / (n_subject - 1)
    n_time, n_roi = bold.shape[1], bold.shape[2]
    # (subject, time, roi) → (time, subject·roi): one column per subject and ROI
    columns = pearson_by_column(
        bold.transpose(1, 0, 2).reshape(n_time, -1), others.transpose(1, 0, 2).reshape(n_time, -1)
    )
    return columns.reshape(n_subject, n_roi)


def normalized_r(
    r: Any,
    ceiling: Any,
    *,
    threshold: float = DEFAULT_CEILING_THRESHOLD,
) -> Any:
    """``r / ceiling``, NaN where the ceiling is below ``threshold`` (unstable ratio).

    Broadcasts like numpy / xarray (e.g. r (config, subject, roi) over ceiling (roi)).

    Parameters
    ----------
    r, ceiling : array-like or xarray.DataArray
        Encoding r and the noise ceiling, broadcastable.
    threshold : float
        Smallest ceiling a ratio is computed for.

    Returns
    -------
    array-like or xarray.DataArray

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.evaluate.metrics import normalized_r
    >>> normalized_r(np.array([0.2, 0.1]), np.array([0.4, 0.05]))
    array([0.5, nan])
    """
    valid = ceiling >= threshold
    # xarray objects keep their coordinates (.where); arrays go through numpy
    if hasattr(ceiling, "where"):
        return r / ceiling.where(valid)
    return r / np.where(valid, ceiling, np.nan)
