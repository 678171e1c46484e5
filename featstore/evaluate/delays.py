"""FIR delays: delayed copies of the features side by side, zero-filled, never wrapped."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def make_delays(features: np.ndarray, delays: Sequence[int]) -> np.ndarray:
    """Concatenate delayed copies of ``features`` along the feature axis.

    Parameters
    ----------
    features : array of shape (n_tr, n_features)
        Features on the fMRI TR grid, the whole run (delay BEFORE splitting, so that the
        first test TRs see the stimulus of the last train TRs instead of zeros).
    delays : sequence of int
        Delays in TRs. Row ``t`` of block ``k`` holds ``features[t - delays[k]]``; a
        positive delay looks at the past stimulus. Rows whose source falls outside the run
        are zeros: a delayed copy never wraps around.

    Returns
    -------
    array of shape (n_tr, n_features * len(delays))
        Blocks in the order of ``delays`` (``[x(t-1) | x(t-2) | …]``).
    """
    features = np.asarray(features)
    n_tr, n_features = features.shape
    out = np.zeros((n_tr, n_features * len(delays)), dtype=features.dtype)
    for k, delay in enumerate(delays):
        block = out[:, k * n_features : (k + 1) * n_features]
        if abs(delay) >= n_tr:
            continue
        if delay >= 0:
            block[delay:] = features[: n_tr - delay]
        else:
            block[:delay] = features[-delay:]
    return out
