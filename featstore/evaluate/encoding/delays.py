"""FIR delays: delayed copies of the features side by side, zero-filled, never wrapped."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from featstore.evaluate.encoding.backend import NUMPY, Backend


def make_delays(
    features: Any,
    delays: Sequence[int],
    segment_starts: Sequence[int] | None = None,
    *,
    backend: Backend = NUMPY,
) -> Any:
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
    segment_starts : sequence of int, optional
        First rows of consecutive segments (stories, runs) stacked in ``features``: the
        delays restart at each one, as if each segment were its own run, so no row sees
        the stimulus of another segment.
    backend : Backend
        Array library of ``features`` (numpy by default) and of the result.

    Returns
    -------
    array of shape (n_tr, n_features * len(delays))
        Blocks in the order of ``delays`` (``[x(t-1) | x(t-2) | …]``).
    """
    features = backend.asarray(features)
    if segment_starts is not None:
        bounds = [*sorted({0, *(int(start) for start in segment_starts)}), len(features)]
        return backend.concat(
            [make_delays(features[a:b], delays, backend=backend) for a, b in pairwise(bounds)],
            axis=0,
        )
    n_tr, n_features = features.shape
    out = backend.zeros_like_rows(features, (n_tr, n_features * len(delays)))
    for k, delay in enumerate(delays):
        block = out[:, k * n_features : (k + 1) * n_features]
        if abs(delay) >= n_tr:
            continue
        if delay >= 0:
            block[delay:] = features[: n_tr - delay]
        else:
            block[:delay] = features[-delay:]
    return out
