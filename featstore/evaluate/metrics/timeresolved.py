"""Time-resolved alignment: a metric in sliding windows over epochs, with permutation nulls.

The brain side of a window is each item's epoch samples in the window, all channels,
flattened. With groups (sentences) the metric is computed within each group of at least
``min_items`` items and averaged over groups. The null permutes the model's rows (the
same permutations at every time point, so clusters over time can be tested): within
groups when there are groups, else in blocks of consecutive items.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from featstore.errors import InputError


def window_starts(n_lags: int, window: int, step: int) -> np.ndarray:
    """First lag index of each window of ``window`` samples every ``step`` samples."""
    if window < 1 or step < 1 or window > n_lags:
        raise InputError(
            f"windows of {window} samples every {step} samples in epochs of {n_lags} samples; "
            "expected 1 <= window <= epoch length and step >= 1"
        )
    return np.arange(0, n_lags - window + 1, step, dtype=np.int64)


def within_group_permutations(groups: np.ndarray, n_perm: int, seed: int = 0) -> np.ndarray:
    """Permutations of item indices that shuffle items only within their group: (n_perm, n)."""
    rng = np.random.default_rng(seed)
    groups = np.asarray(groups)
    out = np.tile(np.arange(len(groups)), (n_perm, 1))
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    for k in range(n_perm):
        for index in members:
            out[k, index] = rng.permutation(index)
    return out


def _groups_of(groups: np.ndarray | None, n_items: int, min_items: int) -> list[np.ndarray]:
    if groups is None:
        return [np.arange(n_items)]
    kept = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    kept = [index for index in kept if len(index) >= min_items]
    if not kept:
        raise InputError(
            f"no sentence has {min_items} or more usable words; lower --min-items or use "
            "--within all"
        )
    return kept


def sliding_scores(
    metric: Callable[[np.ndarray, np.ndarray], float],
    model: np.ndarray,
    epochs: np.ndarray,
    starts: np.ndarray,
    window: int,
    *,
    groups: np.ndarray | None = None,
    permutations: np.ndarray | None = None,
    min_items: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """The metric at every window, and under every permutation of the model's rows.

    Parameters
    ----------
    metric : callable (model (n, d1), brain (n, d2)) -> float
    model : array of shape (n_items, n_features)
    epochs : array of shape (n_items, n_lags, n_channels)
    starts : int array
        First lag of each window (:func:`window_starts`).
    window : int
        Samples per window.
    groups : int array of shape (n_items,), optional
        Group (sentence) of each item: the metric is averaged over groups.
    permutations : int array of shape (n_perm, n_items), optional
    min_items : int
        Smallest group that is scored.

    Returns
    -------
    observed : float64 array of shape (n_windows,)
    null : float64 array of shape (n_perm, n_windows)
    """
    model = np.asarray(model, dtype=np.float64)
    parts = _groups_of(groups, len(model), min_items)
    orders = [np.arange(len(model)), *list(permutations if permutations is not None else [])]
    scores = np.empty((len(orders), len(starts)))
    for w, start in enumerate(starts):
        brain = np.asarray(epochs[:, start : start + window], dtype=np.float64)
        brain = brain.reshape(len(brain), -1)
        for k, order in enumerate(orders):
            shuffled = model[order]
            scores[k, w] = np.mean([metric(shuffled[index], brain[index]) for index in parts])
    return scores[0], scores[1:]


def permutation_p(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """One-sided p of each column: ``(1 + #(null >= observed)) / (1 + n_perm)``."""
    return (1.0 + (null >= observed).sum(axis=0)) / (1.0 + len(null))


def _clusters(mask: np.ndarray) -> list[slice]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [slice(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def cluster_p(observed: np.ndarray, null: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """Cluster-mass p-values over time (Maris & Oostenveld 2007), one per time point.

    Time points whose permutation p is below ``threshold`` form clusters of consecutive
    points; a cluster's mass is the sum of its z-scores against the null. Each cluster
    gets the share of permutations whose largest cluster mass reaches its own; time
    points outside every cluster get p = 1.
    """
    mean, std = null.mean(axis=0), null.std(axis=0)
    std = np.where(std > 0, std, 1.0)

    def masses(row: np.ndarray, p: np.ndarray) -> list[tuple[slice, float]]:
        z = (row - mean) / std
        return [(c, float(z[c].sum())) for c in _clusters(p < threshold)]

    rank = (null[None, :, :] >= null[:, None, :]).sum(axis=1)
    null_p = (1.0 + rank) / (1.0 + len(null))
    largest = np.array(
        [
            max((m for _, m in masses(row, p)), default=0.0)
            for row, p in zip(null, null_p, strict=True)
        ]
    )
    out = np.ones(len(observed))
    for cluster, mass in masses(observed, permutation_p(observed, null)):
        out[cluster] = (1.0 + (largest >= mass).sum()) / (1.0 + len(null))
    return out
