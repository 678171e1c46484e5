"""Tiny encoding problems with distinct sizes per axis (T=37, D=11, V=5, S=3)."""

from __future__ import annotations

import numpy as np
import pytest

N_TR, N_DIM, N_ROI, N_SUBJECT = 37, 11, 5, 3


def naive_delays(features: np.ndarray, delays) -> np.ndarray:
    """FIR delays by an explicit loop over rows (reference for ``make_delays``)."""
    n_tr, n_dim = features.shape
    out = np.zeros((n_tr, n_dim * len(delays)))
    for t in range(n_tr):
        for k, delay in enumerate(delays):
            source = t - delay
            if 0 <= source < n_tr:
                out[t, k * n_dim : (k + 1) * n_dim] = features[source]
    return out


def gapped_kfold(n_samples: int, n_folds: int, gap: int):
    """sklearn's contiguous KFold with ``gap`` samples removed around each validation block."""
    from sklearn.model_selection import KFold

    folds = []
    for train, val in KFold(n_folds).split(np.zeros(n_samples)):
        keep = (train < val.min() - gap) | (train > val.max() + gap)
        folds.append((train[keep], val))
    return folds


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def problem(rng):
    """Two feature spaces and the BOLD of 3 subjects driven by delayed copies of both.

    Space A is low-rank (3 latent signals mixed into 11 dims), so a few principal
    components carry the signal; space B (7 dims) adds a weak signal.
    """
    latent = rng.standard_normal((N_TR, 3))
    feature_a = latent @ rng.standard_normal((3, N_DIM)) + 0.3 * rng.standard_normal((N_TR, N_DIM))
    feature_b = rng.standard_normal((N_TR, 7)) * 3.0 + 1.0
    weights_a = rng.standard_normal((3, N_ROI))
    weights_b = rng.standard_normal((7, N_ROI)) * 0.1
    bold = []
    for subject in range(N_SUBJECT):
        signal = np.roll(latent @ weights_a, 2, axis=0) + np.roll(feature_b @ weights_b, 1, axis=0)
        noise = rng.standard_normal((N_TR, N_ROI)) * (1.0 + 0.5 * subject)
        bold.append(signal + noise + 10.0 * subject)
    return feature_a, feature_b, np.stack(bold).astype(np.float32)
