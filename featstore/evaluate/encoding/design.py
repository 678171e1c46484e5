"""The design matrix of an encoding model: z-score, PCA and FIR delays, fitted on train rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featstore.evaluate.encoding.backend import NUMPY, Backend
from featstore.evaluate.encoding.delays import make_delays
from featstore.evaluate.encoding.preprocess import apply_pca, fit_pca, fit_zscore


@dataclass(frozen=True)
class FeatureTransform:
    """Z-scoring of each feature space and the joint PCA, fitted on train rows only.

    Attributes
    ----------
    means, scales : list of float64 arrays, one per space
        Train mean and scale of each column (scale 1 for constant columns).
    pca_mean : float64 array of shape (n_features,) or None
    components : float64 array of shape (n_components, n_features) or None
        ``None``: no PCA (``n_components`` 0, or at least the joint width).
    backend : Backend
        Where the statistics live and the transform runs (numpy by default).
    """

    means: list[Any]
    scales: list[Any]
    pca_mean: Any | None
    components: Any | None
    backend: Backend = field(default=NUMPY, compare=False)

    @classmethod
    def fit(
        cls, train_rows: Sequence[Any], n_components: int, *, backend: Backend = NUMPY
    ) -> FeatureTransform:
        """Fit on the train rows of each space (arrays of shape (n_train, n_features_k))."""
        train_rows = [backend.asarray(rows, "float64") for rows in train_rows]
        stats = [fit_zscore(rows, backend=backend) for rows in train_rows]
        means, scales = [m for m, _ in stats], [s for _, s in stats]
        zscored = backend.concat(
            [(rows - m) / s for rows, m, s in zip(train_rows, means, scales, strict=True)],
            axis=1,
        )
        if 0 < n_components < zscored.shape[1]:
            pca = fit_pca(zscored, n_components, backend=backend)
            return cls(means, scales, *pca, backend=backend)
        return cls(means, scales, None, None, backend=backend)

    @property
    def n_outputs(self) -> int:
        """Columns of :meth:`transform`'s output."""
        if self.components is not None:
            return self.components.shape[0]
        return sum(len(mean) for mean in self.means)

    def transform(self, features: Sequence[Any]) -> Any:
        """Z-scored, concatenated (and projected) rows: float64 (n_rows, n_outputs)."""
        xp = self.backend
        zscored = xp.concat(
            [
                (xp.asarray(x, "float64") - m) / s
                for x, m, s in zip(features, self.means, self.scales, strict=True)
            ],
            axis=1,
        )
        if self.components is None:
            return zscored
        return apply_pca(zscored, self.pca_mean, self.components)


def design_matrix(
    features: Sequence[np.ndarray],
    train_index: np.ndarray,
    n_components: int,
    delays: Sequence[int],
    *,
    backend: Backend = NUMPY,
) -> Any:
    """Delayed (joint) principal components of one or more feature spaces, whole run.

    Each space is z-scored with the statistics of its train rows, the spaces are
    concatenated, PCA is fitted on the train rows (``n_components`` in total; ``0`` keeps
    the z-scored features, and so does a number of components at least as large as the
    features are wide: keeping every axis is a rotation, to which ridge is invariant, so a
    32-band spectrogram runs under the default ``--pca 250``) and applied to every row, then the FIR delays are built on the
    whole timeline, so that no test row's stimulus enters a train row for positive
    delays, and the first test rows see the real stimulus history instead of zeros.

    Parameters
    ----------
    features : sequence of arrays of shape (n_tr, n_features_k)
    train_index : int array
        Rows used to fit the z-scoring and the PCA.
    n_components : int
    delays : sequence of int
    backend : Backend
        Where to compute: the features are moved there once and the design stays there.

    Returns
    -------
    float64 array of shape (n_tr, n_kept * len(delays)), of ``backend``
    """
    features = [backend.asarray(x) for x in features]
    rows = backend.index(np.asarray(train_index))
    transform = FeatureTransform.fit([x[rows] for x in features], n_components, backend=backend)
    return make_delays(transform.transform(features), delays, backend=backend)


def split_components(n_components: int, n_spaces: int) -> list[int]:
    """PCA components per space for banded ridge: ``n_components`` split as evenly as possible.

    Splitting keeps the banded model as large as the concatenated one (``--pca 250``: 125 +
    125), so the two fusion methods are compared at equal size; pass twice the number to
    give each space ``n`` components.
    """
    if n_components == 0:
        return [0] * n_spaces
    return [len(part) for part in np.array_split(np.arange(n_components), n_spaces)]
