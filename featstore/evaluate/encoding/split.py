"""Chronological train/test split and contiguous cross-validation folds, with gaps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from featstore.errors import InputError


def chronological_split(
    n_tr: int, *, trim: int, test_frac: float, gap: int
) -> tuple[np.ndarray, np.ndarray]:
    """TR indices of the train part (first) and the test part (last).

    ``trim`` TRs are dropped at each edge, the last ``ceil(test_frac * n)`` of the ``n``
    remaining TRs are the test part (sklearn's ``train_test_split`` rounding), and ``gap``
    TRs before the test part are dropped from the train part.

    Parameters
    ----------
    n_tr : int
        TRs in the run.
    trim, gap : int
        TRs dropped at each edge, and between train and test.
    test_frac : float
        Fraction of the trimmed TRs held out for testing.

    Returns
    -------
    train_index, test_index : int64 arrays
        Indices into the run's TR axis.
    """
    n_kept = n_tr - 2 * trim
    if n_kept <= 0:
        raise InputError(f"trim={trim} drops all {n_tr} TRs (twice {trim} edge TRs)")
    # round() first: 0.2 * 1000 is 200.00000000000003 in floating point
    n_test = math.ceil(round(test_frac * n_kept, 9))
    n_train = n_kept - n_test - gap
    if n_train <= 0:
        raise InputError(
            f"no train TRs left: {n_kept} TRs after trimming {trim} at each edge, "
            f"{n_test} for testing (test_frac={test_frac}) and gap={gap}"
        )
    kept = np.arange(trim, n_tr - trim, dtype=np.int64)
    return kept[:n_train], kept[n_kept - n_test :]


def contiguous_folds(
    n_samples: int, n_folds: int, gap: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Contiguous K-fold splits of ``n_samples`` consecutive TRs, with ``gap`` TRs dropped.

    Validation blocks are consecutive and cover every sample once (the first
    ``n_samples % n_folds`` blocks are one longer, as sklearn's ``KFold``). The ``gap``
    samples on each side of a validation block are left out of that fold's training set.

    Parameters
    ----------
    n_samples : int
        Samples of the train part.
    n_folds : int
        Number of folds.
    gap : int
        Samples dropped on both sides of each validation block.

    Returns
    -------
    list of (train, validation) int64 position arrays, in time order
    """
    if n_folds < 2:
        raise InputError(f"cv={n_folds}: expected at least 2 folds")
    smallest = n_samples // n_folds
    if smallest < 2:
        raise InputError(
            f"cv={n_folds} folds of {n_samples} train TRs leave validation blocks of "
            f"{smallest} TRs; expected at least 2 TRs per block"
        )
    positions = np.arange(n_samples, dtype=np.int64)
    folds = []
    for block in np.array_split(positions, n_folds):
        start, stop = int(block[0]), int(block[-1]) + 1
        train = np.concatenate([positions[: max(start - gap, 0)], positions[stop + gap :]])
        if len(train) < 2:
            raise InputError(
                f"cv={n_folds} with gap={gap} leaves {len(train)} training TRs in a fold "
                f"of {n_samples} train TRs; expected at least 2"
            )
        folds.append((train, block))
    return folds


def story_folds(
    lengths: Sequence[int], n_folds: int, gap: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """CV folds over the stacked rows of training stories of ``lengths`` rows each.

    Two or more stories: leave one story out (no gap is needed when the delays are made
    on each story's own timeline, so no row reads another story). One story: ``n_folds``
    contiguous folds with ``gap`` rows dropped around each block
    (:func:`contiguous_folds`).

    Returns
    -------
    list of (train, validation) int64 position arrays into the stacked rows
    """
    if len(lengths) == 1:
        return contiguous_folds(int(lengths[0]), n_folds, gap)
    bounds = np.cumsum([0, *lengths])
    positions = np.arange(bounds[-1], dtype=np.int64)
    return [
        (np.concatenate([positions[:start], positions[stop:]]), positions[start:stop])
        for start, stop in pairwise(bounds)
    ]
