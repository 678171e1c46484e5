"""Ridge regression with cross-validated alphas, one decomposition shared by every alpha.

All targets (every ROI of every subject) share the design matrix, so each CV fold
factorises it once (``X_fitᵀ X_fit = V diag(s²) Vᵀ``). The prediction of the held-out
rows for any alpha is then ``(X_val V) · diag(1 / (s² + alpha)) · (X_fit V)ᵀ · Y_fit``,
whose only cost per alpha is one matrix product with the targets, batched over columns.

Decompositions are computed in float64; the products with the targets run in the
requested dtype. In float32, the columns whose two best alphas score within
``TIE_TOLERANCE`` are scored again in float64, so the chosen alpha does not depend on
float32 rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featstore.evaluate.encoding.backend import NUMPY, Backend

#: Columns of the targets per matrix product (bounds memory: alphas x rows x batch).
TARGET_BATCH = 1024
#: CV scores (R²) closer than this to the best are re-scored in float64 in float32 mode.
TIE_TOLERANCE = 1e-5

Fold = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class RidgeFactor:
    """Ridge solutions of one design matrix for every alpha at once.

    For a design ``X`` (n x p) with ``XᵀX = V diag(s²) Vᵀ``, the weights for alpha are
    ``basis · diag(1 / (eigvals + alpha)) · right · Y``. The primal form (``basis = V``,
    ``right = (X V)ᵀ``) is used when p <= n, the dual one (``X Xᵀ = U diag(s²) Uᵀ``,
    ``basis = Xᵀ U``, ``right = Uᵀ``) otherwise: both are exact, the smaller is cheaper.

    Attributes
    ----------
    eigvals : array of shape (rank,)
        ``s²``, float64, negative rounding errors clipped to 0.
    basis : array of shape (n_features, rank)
    right : array of shape (rank, n_samples)
    backend : Backend
        Where the arrays live (numpy arrays or torch tensors of one device).
    """

    eigvals: Any
    basis: Any
    right: Any
    backend: Backend = field(default=NUMPY, compare=False)

    def inverse(self, alphas: np.ndarray) -> Any:
        """``1 / (eigvals + alpha)`` for each alpha: array of shape (n_alphas, rank)."""
        alphas = self.backend.asarray(alphas, "float64")
        return 1.0 / (self.eigvals[None, :] + alphas[:, None])


def factorize(X: Any, *, backend: Backend = NUMPY) -> RidgeFactor:
    """Eigendecomposition of the smaller Gram matrix of ``X`` (float64).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    backend : Backend
        Where to compute (``X`` is moved there if it is not).

    Returns
    -------
    RidgeFactor
    """
    X = backend.asarray(X, "float64")
    n_samples, n_features = X.shape
    if n_features <= n_samples:
        eigvals, eigvecs = backend.eigh(X.T @ X)
        return RidgeFactor(backend.clip_min(eigvals, 0.0), eigvecs, (X @ eigvecs).T, backend)
    eigvals, eigvecs = backend.eigh(X @ X.T)
    return RidgeFactor(backend.clip_min(eigvals, 0.0), X.T @ eigvecs, eigvecs.T, backend)


def ridge_weights(X: np.ndarray, Y: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    """Ridge weights without intercept, one alpha for all columns or one per column.

    Minimises ``||X w_j - y_j||² + alpha_j ||w_j||²`` for each column ``j`` of ``Y``
    (sklearn's ``Ridge(fit_intercept=False)``), in float64.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    Y : array of shape (n_samples, n_targets)
    alpha : float or array of shape (n_targets,)

    Returns
    -------
    array of shape (n_features, n_targets)
    """
    Y = np.asarray(Y, dtype=np.float64)
    factor = factorize(X)
    projected = factor.right @ Y
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (Y.shape[1],))
    weights = np.empty((factor.basis.shape[0], Y.shape[1]))
    for value in np.unique(alpha):
        columns = np.flatnonzero(alpha == value)
        weights[:, columns] = factor.basis @ (
            factor.inverse([value])[0][:, None] * projected[:, columns]
        )
    return weights


def _batches(n_columns: int, batch: int) -> list[slice]:
    return [slice(start, min(start + batch, n_columns)) for start in range(0, n_columns, batch)]


def _fold_r2(
    factor: RidgeFactor,
    X_val: Any,
    Y_fit: Any,
    Y_val: Any,
    alphas: np.ndarray,
    dtype: np.dtype,
    target_batch: int,
) -> Any:
    """Validation R² of every alpha and column for one fold: (n_alphas, n_targets)."""
    xp = factor.backend
    n_alphas, n_val = len(alphas), X_val.shape[0]
    # Stacking the alphas makes one tall product per target batch (BLAS-friendly).
    projected = xp.cast(X_val @ factor.basis, dtype)
    inverse = xp.cast(factor.inverse(alphas), dtype)
    left = (projected[None, :, :] * inverse[:, None, :]).reshape(n_alphas * n_val, -1)
    right = xp.cast(factor.right, dtype)
    scores = xp.empty((n_alphas, Y_fit.shape[1]), "float64")
    for columns in _batches(Y_fit.shape[1], target_batch):
        y_val = Y_val[:, columns]
        residual = (left @ (right @ Y_fit[:, columns])).reshape(n_alphas, n_val, -1)
        residual -= y_val
        sse = xp.sum(xp.square_(residual), axis=1, dtype="float64")
        y_val = xp.cast(y_val, "float64")
        centered = y_val - y_val.mean(0)
        sst = xp.sum(centered * centered, axis=0)
        # A constant validation block has no R²: 0 for every alpha (as himalaya's r2_score).
        with np.errstate(divide="ignore", invalid="ignore"):
            scores[:, columns] = xp.where(sst > 0, 1.0 - sse / sst, 0.0)
    return scores


def ridge_cv_scores(
    X: Any,
    Y: Any,
    alphas: Sequence[float],
    folds: Sequence[Fold],
    *,
    dtype: str = "float64",
    target_batch: int = TARGET_BATCH,
    factors: Sequence[RidgeFactor] | None = None,
    backend: Backend = NUMPY,
) -> np.ndarray:
    """Cross-validated R² of every alpha for every target column.

    Each fold fits ridge (no intercept: ``X`` and ``Y`` are centred beforehand) on its
    training rows and scores the validation rows with R² (the validation block's own
    mean, as sklearn's and himalaya's ``r2_score``); the score is the mean over folds.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    Y : array of shape (n_samples, n_targets)
    alphas : sequence of float
    folds : sequence of (train, validation) row-index arrays
    dtype : {"float64", "float32"}
        Precision of the products with the targets.
    target_batch : int
        Target columns per product.
    factors : sequence of RidgeFactor, optional
        ``factorize(X[train])`` of each fold, when already computed.
    backend : Backend
        Where to compute; ``X`` and ``Y`` are moved there once (pass them there already
        to share the move between calls).

    Returns
    -------
    float64 numpy array of shape (n_alphas, n_targets)
    """
    X = backend.asarray(X, "float64")
    dtype = np.dtype(dtype)
    Y = backend.asarray(Y, dtype)
    alphas = np.asarray(alphas, dtype=np.float64)
    total = backend.zeros((len(alphas), Y.shape[1]), "float64")
    for k, (train, val) in enumerate(folds):
        train, val = backend.index(train), backend.index(val)
        factor = factors[k] if factors is not None else factorize(X[train], backend=backend)
        total += _fold_r2(factor, X[val], Y[train], Y[val], alphas, dtype, target_batch)
    return backend.to_numpy(total / len(folds))


def best_alpha_index(scores: np.ndarray) -> np.ndarray:
    """Index of the best score of each column; ties go to the later (larger) alpha.

    Parameters
    ----------
    scores : array of shape (n_candidates, n_targets)
        Candidates sorted by increasing regularisation.
    """
    n_candidates = scores.shape[0]
    return n_candidates - 1 - np.argmax(scores[::-1], axis=0)


def _margin(best: np.ndarray, tolerance: float | None) -> np.ndarray:
    tolerance = TIE_TOLERANCE if tolerance is None else tolerance
    return tolerance * np.maximum(1.0, np.abs(best))


def near_ties(scores: np.ndarray, tolerance: float | None = None) -> np.ndarray:
    """Columns whose runner-up candidate scores within ``tolerance`` of the best.

    The tolerance (``TIE_TOLERANCE`` by default) is relative to ``max(1, |best|)``.
    Returns a boolean mask of shape (n_targets,).
    """
    if scores.shape[0] < 2:
        return np.zeros(scores.shape[1], dtype=bool)
    top_two = -np.partition(-scores, 1, axis=0)[:2]
    return (top_two[0] - top_two[1]) <= _margin(top_two[0], tolerance)


def contenders(scores: np.ndarray, tolerance: float | None = None) -> np.ndarray:
    """Candidates within ``tolerance`` of the best score of any column: (n_candidates,) bool."""
    best = scores.max(axis=0)
    return (scores >= best - _margin(best, tolerance)).any(axis=1)


def predict_with_alphas(
    factor: RidgeFactor,
    X_eval: Any,
    Y_fit: Any,
    alphas: np.ndarray,
    dtype: str | np.dtype,
    target_batch: int = TARGET_BATCH,
) -> np.ndarray:
    """Ridge predictions of ``X_eval`` with one alpha per target column.

    Parameters
    ----------
    factor : RidgeFactor
        ``factorize(X_fit)`` (its backend is where the products run).
    X_eval : array of shape (n_eval, n_features)
    Y_fit : array of shape (n_fit, n_targets)
    alphas : array of shape (n_targets,)
    dtype : str or dtype
        Precision of the products with the targets (and of the result).

    Returns
    -------
    numpy array of shape (n_eval, n_targets)
    """
    xp = factor.backend
    dtype = np.dtype(dtype)
    alphas = np.asarray(alphas, dtype=np.float64)
    left = xp.asarray(X_eval, "float64") @ factor.basis
    right = xp.cast(factor.right, dtype)
    Y_fit = xp.asarray(Y_fit, dtype)
    out = xp.empty((left.shape[0], Y_fit.shape[1]), dtype)
    for value in np.unique(alphas):
        columns = np.flatnonzero(alphas == value)
        scaled_left = xp.cast(left * factor.inverse([value])[0], dtype)
        for part in _batches(len(columns), target_batch):
            chosen = xp.index(columns[part])
            out[:, chosen] = scaled_left @ (right @ Y_fit[:, chosen])
    return xp.to_numpy(out)


@dataclass(frozen=True)
class RidgeCVResult:
    """Outcome of ``ridge_cv``.

    Attributes
    ----------
    alpha_index : int array of shape (n_targets,)
    alpha : float64 array of shape (n_targets,)
    cv_score : float64 array of shape (n_targets,)
        Mean validation R² of the chosen alpha.
    predictions : array of shape (n_test, n_targets) or None
        Predictions of ``X_test`` after refitting on all rows with each column's alpha.
    n_rescored : int
        Columns re-scored in float64 because of a near tie (float32 mode).
    scores : float64 array of shape (n_alphas, n_targets) or None
        Mean validation R² of every alpha (the near ties re-scored).
    """

    alpha_index: np.ndarray
    alpha: np.ndarray
    cv_score: np.ndarray
    predictions: np.ndarray | None
    n_rescored: int
    scores: np.ndarray | None = None


def ridge_cv(
    X: np.ndarray,
    Y: np.ndarray,
    alphas: Sequence[float],
    folds: Sequence[Fold],
    *,
    X_test: np.ndarray | None = None,
    dtype: str = "float64",
    target_batch: int = TARGET_BATCH,
    backend: Backend = NUMPY,
    factors: Sequence[RidgeFactor] | None = None,
    refit_factor: RidgeFactor | None = None,
) -> RidgeCVResult:
    """Choose alpha per target column by CV, refit on all rows, predict ``X_test``.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Centred training design (the whole train part).
    Y : array of shape (n_samples, n_targets)
        Centred targets: every ROI of every subject side by side.
    alphas : sequence of float, increasing
    folds : sequence of (train, validation) row-index arrays into ``X``
    X_test : array of shape (n_test, n_features), optional
    dtype : {"float64", "float32"}
        Precision of the products with the targets.
    backend : Backend
        Where to compute (see :mod:`featstore.evaluate.encoding.backend`); ``X`` and ``Y`` are
        moved there once. Scores and predictions come back as numpy arrays.
    factors, refit_factor : optional
        ``factorize(X[train])`` of each fold and ``factorize(X)``, when already computed:
        chunks of targets that share a design share its decompositions.

    Returns
    -------
    RidgeCVResult
    """
    X = backend.asarray(X, "float64")
    Y = backend.asarray(Y)  # its own dtype: near ties are re-scored from it in float64
    alphas = np.asarray(alphas, dtype=np.float64)
    if factors is None:
        factors = [factorize(X[backend.index(train)], backend=backend) for train, _ in folds]
    scores = ridge_cv_scores(
        X,
        Y,
        alphas,
        folds,
        dtype=dtype,
        target_batch=target_batch,
        factors=factors,
        backend=backend,
    )
    n_rescored = 0
    if np.dtype(dtype) != np.float64:
        tied = np.flatnonzero(near_ties(scores))
        if len(tied):
            # only the alphas that may win one of the tied columns need float64
            in_play = np.flatnonzero(contenders(scores[:, tied]))
            scores[np.ix_(in_play, tied)] = ridge_cv_scores(
                X,
                Y[:, backend.index(tied)],
                alphas[in_play],
                folds,
                dtype="float64",
                factors=factors,
                backend=backend,
            )
            n_rescored = len(tied)
    index = best_alpha_index(scores)
    predictions = None
    if X_test is not None:
        refit = refit_factor if refit_factor is not None else factorize(X, backend=backend)
        predictions = predict_with_alphas(refit, X_test, Y, alphas[index], dtype, target_batch)
    return RidgeCVResult(
        alpha_index=index,
        alpha=alphas[index],
        cv_score=scores[index, np.arange(scores.shape[1])],
        predictions=predictions,
        n_rescored=n_rescored,
        scores=scores,
    )
