"""``EncodingModel``: the evaluator's encoding model as a scikit-learn estimator.

Standardise → PCA → FIR delays → ridge with a cross-validated alpha per target, fitted on
the rows given to ``fit`` only, with the same functions the grid uses
(:class:`~featstore.evaluate.encoding.design.FeatureTransform`,
:func:`~featstore.evaluate.encoding.delays.make_delays`, :func:`~featstore.evaluate.encoding.ridge.ridge_cv`).
Rows are time points in order: ``groups`` (story or run labels) restarts the delays at each
group and makes the CV folds whole groups.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from featstore.errors import InputError
from featstore.evaluate.encoding.delays import make_delays
from featstore.evaluate.encoding.design import FeatureTransform
from featstore.evaluate.encoding.preprocess import fit_zscore
from featstore.evaluate.encoding.ridge import ridge_cv, ridge_weights
from featstore.evaluate.encoding.settings import DEFAULT_ALPHAS, EncodingSettings
from featstore.evaluate.encoding.split import contiguous_folds

__all__ = ["EncodingModel"]


def segment_starts(groups: np.ndarray | None, n_samples: int) -> np.ndarray:
    """First row of every run of equal consecutive labels in ``groups`` (always includes 0).

    A label may come back later (two runs of one story): each run is its own segment, so
    delays never bridge a gap in time.
    """
    if groups is None:
        return np.zeros(1, dtype=np.int64)
    groups = np.asarray(groups)
    if groups.shape != (n_samples,):
        raise InputError(
            f"groups has shape {groups.shape}; expected one label per row ({n_samples},)"
        )
    changes = np.flatnonzero(groups[1:] != groups[:-1]) + 1
    return np.concatenate([[0], changes]).astype(np.int64)


def group_folds(
    groups: np.ndarray | None, n_samples: int, n_folds: int, gap: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """CV folds: leave one group out when there are 2 or more groups, else contiguous blocks.

    Leave-one-group-out needs no gap: delays restart at every group, so no validation row
    sees a training row's stimulus.
    """
    labels = None if groups is None else np.unique(np.asarray(groups))
    if labels is None or len(labels) < 2:
        return contiguous_folds(n_samples, n_folds, gap)
    rows = np.arange(n_samples)
    return [(rows[groups != label], rows[groups == label]) for label in labels]


class EncodingModel(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """PCA + FIR ridge encoding model with a cross-validated alpha per target.

    ``fit`` z-scores the features with the statistics of its rows, fits PCA on them,
    builds the FIR delays (zero-filled at the start of every group), z-scores the targets
    and chooses each target's alpha by cross-validation (mean validation R²) before
    refitting on every row. ``predict`` applies the fitted transform to new rows (their own
    timeline: delays restart at their first row and at every change of ``groups``). Same
    numerics as ``evaluate grid`` (:func:`featstore.evaluate.encoding.pipeline.encode`).

    Parameters
    ----------
    pca : int, default 250
        Principal components fitted on the training rows; 0, or at least the number of
        features, keeps the z-scored features (ridge is invariant to the rotation).
    delays : tuple of int, default (1, 2, 3, 4)
        FIR delays in rows (TRs): row t is predicted from the features of rows t - d.
    alphas : tuple of float, default 21 values from 1e-2 to 1e8
        Ridge grid searched per target.
    cv : int, default 5
        Contiguous folds of the training rows when ``groups`` has fewer than 2 labels.
    gap : int, default 0
        Rows dropped on both sides of each contiguous validation block (at least
        ``-min(delays)`` for negative delays).
    dtype : {"float32", "float64"}, default "float32"
        Precision of the products with the targets in the alpha search.

    Attributes
    ----------
    coef_ : ndarray of shape (n_targets, n_delays, n_features_in_)
        FIR weights in the units of X and y: ``predict(X)[t] = intercept_ +
        sum_k X[t - delays[k]] @ coef_[:, k].T`` wherever the delayed rows exist. (Shape
        (n_delays, n_features_in_) when ``y`` was 1-D.)
    intercept_ : ndarray of shape (n_targets,) or float
    alpha_ : ndarray of shape (n_targets,) or float
        The chosen alpha of each target.
    cv_scores_ : ndarray of shape (n_alphas, n_targets)
        Mean validation R² of every alpha (rows in the order of ``alphas``).
    best_cv_score_ : ndarray of shape (n_targets,)
        ``cv_scores_`` at the chosen alpha.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.evaluate.encoding.estimator import EncodingModel
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 8))
    >>> Y = np.roll(X[:, :3], 2, axis=0) + 0.1 * rng.standard_normal((200, 3))
    >>> model = EncodingModel(pca=0, delays=(1, 2, 3), alphas=(0.1, 10.0, 1000.0)).fit(X, Y)
    >>> model.coef_.shape
    (3, 3, 8)
    >>> round(model.score(X, Y), 2)
    0.97
    """

    def __init__(
        self,
        pca: int = 250,
        delays: Sequence[int] = (1, 2, 3, 4),
        alphas: Sequence[float] = DEFAULT_ALPHAS,
        cv: int = 5,
        gap: int = 0,
        dtype: str = "float32",
    ):
        self.pca = pca
        self.delays = delays
        self.alphas = alphas
        self.cv = cv
        self.gap = gap
        self.dtype = dtype

    def _settings(self) -> EncodingSettings:
        # One validation of the parameters, shared with the grid.
        return EncodingSettings(
            pca=self.pca,
            delays=tuple(self.delays),
            alphas=tuple(self.alphas),
            cv=self.cv,
            gap=self.gap,
            dtype=self.dtype,
        )

    def fit(self, X, y, groups=None) -> EncodingModel:
        """Fit on the rows of X (time points in order) and y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        groups : array-like of shape (n_samples,), optional
            Story or run label of each row: delays restart at every change of label, and
            with 2 or more labels the CV folds leave one label out.

        Returns
        -------
        self
        """
        settings = self._settings()
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        if X.shape[0] < 2:
            raise InputError(f"n_samples = {X.shape[0]}: expected at least 2 rows to fit")
        self._y_1d = y.ndim == 1
        Y = y.reshape(len(y), -1)
        starts = segment_starts(groups, X.shape[0])
        self.transform_ = FeatureTransform.fit([X], settings.pca)
        design = make_delays(self.transform_.transform([X]), settings.delays, starts)
        self.y_mean_, self.y_scale_ = fit_zscore(Y)
        Y_z = (Y - self.y_mean_) / self.y_scale_
        folds = group_folds(
            None if groups is None else np.asarray(groups), len(X), settings.cv, settings.gap
        )
        result = ridge_cv(design, Y_z, settings.alphas, folds, dtype=settings.dtype)
        self.weights_ = ridge_weights(design, Y_z, result.alpha)
        self.cv_scores_ = result.scores
        self.best_cv_score_ = result.cv_score
        alpha = result.alpha
        self.alpha_ = float(alpha[0]) if self._y_1d else alpha
        self._set_coef(settings.delays)
        return self

    def _set_coef(self, delays: tuple[int, ...]) -> None:
        """FIR weights and intercept in the units of X and y (the transform is affine)."""
        transform = self.transform_
        n_delays, n_targets = len(delays), self.weights_.shape[1]
        per_delay = self.weights_.reshape(n_delays, transform.n_outputs, n_targets)
        if transform.components is not None:
            # y_z = sum_k ((z(x_k) - pca_mean) @ C.T) @ W_k: back through C, then z
            offset = -np.einsum("f,of,kot->t", transform.pca_mean, transform.components, per_delay)
            per_delay = np.einsum("of,kot->kft", transform.components, per_delay)
        else:
            offset = np.zeros(n_targets)
        per_delay = per_delay / transform.scales[0][None, :, None]
        offset = offset - np.einsum("f,kft->t", transform.means[0], per_delay)
        coef = np.transpose(per_delay * self.y_scale_, (2, 0, 1))  # (target, delay, feature)
        intercept = self.y_mean_ + offset * self.y_scale_
        self.coef_ = coef[0] if self._y_1d else coef
        self.intercept_ = float(intercept[0]) if self._y_1d else intercept

    def predict(self, X, groups=None) -> np.ndarray:
        """Predicted targets of the rows of X (their own timeline; see ``fit``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        groups : array-like of shape (n_samples,), optional
            Delays restart at every change of label.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        check_is_fitted(self, "weights_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        starts = segment_starts(groups, X.shape[0])
        design = make_delays(self.transform_.transform([X]), tuple(self.delays), starts)
        prediction = (design @ self.weights_) * self.y_scale_ + self.y_mean_
        return prediction[:, 0] if self._y_1d else prediction
