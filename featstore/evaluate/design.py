"""The design matrix of an encoding model: z-score, PCA and FIR delays, fitted on train rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from featstore.evaluate.delays import make_delays
from featstore.evaluate.preprocess import apply_pca, fit_pca, zscore_train


def design_matrix(
    features: Sequence[np.ndarray],
    train_index: np.ndarray,
    n_components: int,
    delays: Sequence[int],
) -> np.ndarray:
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

    Returns
    -------
    float64 array of shape (n_tr, n_kept * len(delays))
    """
    zscored = np.concatenate([zscore_train(x, train_index) for x in features], axis=1)
    if 0 < n_components < zscored.shape[1]:
        mean, components = fit_pca(zscored[train_index], n_components)
        zscored = apply_pca(zscored, mean, components)
    return make_delays(zscored, delays)


def split_components(n_components: int, n_spaces: int) -> list[int]:
    """PCA components per space for banded ridge: ``n_components`` split as evenly as possible.

    Splitting keeps the banded model as large as the concatenated one (``--pca 250``: 125 +
    125), so the two fusion methods are compared at equal size; pass twice the number to
    give each space ``n`` components.
    """
    if n_components == 0:
        return [0] * n_spaces
    return [len(part) for part in np.array_split(np.arange(n_components), n_spaces)]
