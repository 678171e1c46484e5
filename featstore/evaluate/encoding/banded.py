"""Banded ridge: one alpha per feature space, chosen by CV over the grid of alpha tuples.

Penalising space ``k`` with ``alpha_k`` is ordinary ridge with penalty ``alpha_0`` on
features where space ``k`` is scaled by ``sqrt(alpha_0 / alpha_k)``. Tuples that share
the ratios ``alpha_k / alpha_0`` share that scaled design, hence one decomposition per
fold (``ridge.factorize``): on a log-spaced grid of n alphas, two spaces need 2n-1
decompositions per fold for the n² pairs. The search is exhaustive and deterministic.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from featstore.evaluate.encoding.backend import NUMPY, Backend
from featstore.evaluate.encoding.ridge import (
    TARGET_BATCH,
    Fold,
    best_alpha_index,
    contenders,
    factorize,
    near_ties,
    predict_with_alphas,
    ridge_cv_scores,
)


@dataclass(frozen=True)
class _RatioGroup:
    """Alpha tuples sharing the same ratios to the first space's alpha."""

    scale: np.ndarray  # multiplier of each feature column
    first_alphas: np.ndarray  # alpha_0 of each tuple of the group
    positions: np.ndarray  # positions of the tuples in the full grid


def alpha_grid(alphas: Sequence[float], n_spaces: int) -> np.ndarray:
    """Every tuple of alphas, one per space: array of shape (n_alphas ** n_spaces, n_spaces).

    Rows are in lexicographic order of the (increasing) alphas, so the last row is the
    most regularised.
    """
    alphas = np.asarray(sorted(alphas), dtype=np.float64)
    return np.array(list(itertools.product(alphas, repeat=n_spaces)), dtype=np.float64)


def _ratio_groups(grid: np.ndarray, widths: Sequence[int]) -> list[_RatioGroup]:
    ratios = grid[:, 1:] / grid[:, :1]
    # Ratios equal up to rounding (a log grid gives a/b = c/d) share one decomposition.
    keys = [tuple(np.round(np.log(row), 9)) for row in ratios]
    groups: dict[tuple, list[int]] = {}
    for position, key in enumerate(keys):
        groups.setdefault(key, []).append(position)
    out = []
    for positions in groups.values():
        ratio = ratios[positions[0]]
        per_space = np.concatenate([[1.0], 1.0 / np.sqrt(ratio)])
        scale = np.repeat(per_space, widths)
        out.append(_RatioGroup(scale, grid[positions, 0], np.asarray(positions)))
    return out


def banded_ridge_cv_scores(
    Xs: Sequence[np.ndarray],
    Y: np.ndarray,
    alphas: Sequence[float],
    folds: Sequence[Fold],
    *,
    dtype: str = "float64",
    target_batch: int = TARGET_BATCH,
    backend: Backend = NUMPY,
) -> np.ndarray:
    """Cross-validated R² of every alpha tuple (``alpha_grid`` order) for every column.

    Parameters
    ----------
    Xs : sequence of arrays of shape (n_samples, n_features_k)
        One centred design per feature space.
    Y : array of shape (n_samples, n_targets)
    alphas : sequence of float
        Grid searched for each space.
    folds : sequence of (train, validation) row-index arrays
    backend : Backend
        Where to compute; the designs and ``Y`` are moved there once.

    Returns
    -------
    float64 array of shape (n_alphas ** n_spaces, n_targets)
    """
    X = backend.concat([backend.asarray(x, "float64") for x in Xs], axis=1)
    Y = backend.asarray(Y, dtype)
    grid = alpha_grid(alphas, len(Xs))
    scores = np.empty((len(grid), Y.shape[1]))
    for group in _ratio_groups(grid, [x.shape[1] for x in Xs]):
        scores[group.positions] = ridge_cv_scores(
            X * backend.asarray(group.scale, "float64"),
            Y,
            group.first_alphas,
            folds,
            dtype=dtype,
            target_batch=target_batch,
            backend=backend,
        )
    return scores


@dataclass(frozen=True)
class BandedCVResult:
    """Outcome of ``banded_ridge_cv``.

    Attributes
    ----------
    band_alphas : float64 array of shape (n_targets, n_spaces)
    cv_score : float64 array of shape (n_targets,)
    predictions : array of shape (n_test, n_targets) or None
    n_rescored : int
        Columns re-scored in float64 because of a near tie (float32 mode).
    """

    band_alphas: np.ndarray
    cv_score: np.ndarray
    predictions: np.ndarray | None
    n_rescored: int


def banded_ridge_cv(
    Xs: Sequence[np.ndarray],
    Y: np.ndarray,
    alphas: Sequence[float],
    folds: Sequence[Fold],
    *,
    X_tests: Sequence[np.ndarray] | None = None,
    dtype: str = "float64",
    target_batch: int = TARGET_BATCH,
    backend: Backend = NUMPY,
) -> BandedCVResult:
    """Choose one alpha per space and target column by CV, refit, predict the test rows.

    Parameters
    ----------
    Xs : sequence of arrays of shape (n_samples, n_features_k)
        Centred train designs, one per feature space.
    Y : array of shape (n_samples, n_targets)
    alphas : sequence of float
        Grid searched for each space (all tuples are tried).
    folds : sequence of (train, validation) row-index arrays
    X_tests : sequence of arrays of shape (n_test, n_features_k), optional
    dtype : {"float64", "float32"}
    backend : Backend
        Where to compute; the designs and ``Y`` are moved there once.

    Returns
    -------
    BandedCVResult
    """
    widths = [x.shape[1] for x in Xs]
    X = backend.concat([backend.asarray(x, "float64") for x in Xs], axis=1)
    Y = backend.asarray(Y)  # its own dtype: near ties are re-scored from it in float64

    def scaled(design: Any, group: _RatioGroup) -> Any:
        return design * backend.asarray(group.scale, "float64")

    grid = alpha_grid(alphas, len(Xs))
    groups = _ratio_groups(grid, widths)
    scores = banded_ridge_cv_scores(
        Xs, Y, alphas, folds, dtype=dtype, target_batch=target_batch, backend=backend
    )
    n_rescored = 0
    if np.dtype(dtype) != np.float64:
        tied = np.flatnonzero(near_ties(scores))
        if len(tied):
            # Only the ratio groups holding a contender of a tied column are re-scored: the
            # others score below the best by more than the float32 error.
            in_play = contenders(scores[:, tied])
            Y_tied = Y[:, backend.index(tied)]
            for group in groups:
                if in_play[group.positions].any():
                    scores[np.ix_(group.positions, tied)] = ridge_cv_scores(
                        scaled(X, group),
                        Y_tied,
                        group.first_alphas,
                        folds,
                        dtype="float64",
                        backend=backend,
                    )
            n_rescored = len(tied)
    index = best_alpha_index(scores)
    predictions = None
    if X_tests is not None:
        X_test = backend.concat([backend.asarray(x, "float64") for x in X_tests], axis=1)
        predictions = np.empty((X_test.shape[0], Y.shape[1]), dtype=np.dtype(dtype))
        group_of = np.empty(len(grid), dtype=np.int64)
        for g, group in enumerate(groups):
            group_of[group.positions] = g
        for g in np.unique(group_of[index]):
            group = groups[g]
            columns = np.flatnonzero(group_of[index] == g)
            predictions[:, columns] = predict_with_alphas(
                factorize(scaled(X, group), backend=backend),
                scaled(X_test, group),
                Y[:, backend.index(columns)],
                grid[index[columns], 0],
                dtype,
                target_batch,
            )
    return BandedCVResult(
        band_alphas=grid[index],
        cv_score=scores[index, np.arange(scores.shape[1])],
        predictions=predictions,
        n_rescored=n_rescored,
    )
