"""The torch backend (CPU here, CUDA where there is one) against the numpy reference."""

from pathlib import Path

import numpy as np
import pytest
import torch

from featstore.errors import InputError
from featstore.evaluate import EncodingSettings, encode
from featstore.evaluate.encoding.backend import NUMPY, get_backend
from featstore.evaluate.encoding.banded import banded_ridge_cv
from featstore.evaluate.encoding.design import design_matrix
from featstore.evaluate.encoding.ridge import ridge_cv
from tests.evaluate.conftest import N_ROI, gapped_kfold

ROOT = Path(__file__).resolve().parents[2]
ALPHAS = np.logspace(-2, 4, 7)
N_SAMPLES, N_TARGETS = 29, N_ROI * 3

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here"),
    ),
]


def _data(rng, n_features):
    X = rng.standard_normal((N_SAMPLES + 6, n_features))
    Y = X @ rng.standard_normal((n_features, N_TARGETS)) + 3 * rng.standard_normal(
        (N_SAMPLES + 6, N_TARGETS)
    )
    X -= X[:N_SAMPLES].mean(0)
    Y -= Y[:N_SAMPLES].mean(0)
    return X[:N_SAMPLES], Y[:N_SAMPLES], X[N_SAMPLES:]


def test_backend_names_and_devices_are_checked():
    assert get_backend("numpy") is NUMPY
    with pytest.raises(InputError, match="backend='jax'"):
        get_backend("jax")
    with pytest.raises(InputError, match="numpy runs on the CPU only"):
        get_backend("numpy", "cuda")
    with pytest.raises(InputError, match="device='tpu'"):
        get_backend("torch", "tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA device"):
            get_backend("torch", "cuda")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n_features", [11, 40])  # primal (p < n) and dual (p > n)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_ridge_cv_matches_numpy(rng, device, n_features, dtype):
    X, Y, X_test = _data(rng, n_features)
    folds = gapped_kfold(N_SAMPLES, 5, gap=1)
    expected = ridge_cv(X, Y, ALPHAS, folds, X_test=X_test, dtype=dtype, target_batch=4)
    got = ridge_cv(
        X, Y, ALPHAS, folds, X_test=X_test, dtype=dtype, target_batch=4,
        backend=get_backend("torch", device),
    )  # fmt: skip
    np.testing.assert_array_equal(got.alpha, expected.alpha)
    np.testing.assert_allclose(
        got.scores, expected.scores, atol=1e-5 if dtype == "float32" else 1e-10
    )
    np.testing.assert_allclose(got.predictions, expected.predictions, atol=1e-4, rtol=1e-5)
    assert isinstance(got.predictions, np.ndarray) and got.predictions.dtype == np.dtype(dtype)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_banded_ridge_matches_numpy(rng, device):
    X, Y, X_test = _data(rng, 14)
    folds = gapped_kfold(N_SAMPLES, 4, gap=0)
    Xs, X_tests = [X[:, :9], X[:, 9:]], [X_test[:, :9], X_test[:, 9:]]
    expected = banded_ridge_cv(Xs, Y, ALPHAS[:4], folds, X_tests=X_tests, dtype="float32")
    got = banded_ridge_cv(
        Xs, Y, ALPHAS[:4], folds, X_tests=X_tests, dtype="float32",
        backend=get_backend("torch", device),
    )  # fmt: skip
    np.testing.assert_array_equal(got.band_alphas, expected.band_alphas)
    np.testing.assert_allclose(got.predictions, expected.predictions, atol=1e-4)


@pytest.mark.parametrize("n_components", [0, 6, 15])  # none, covariance eigh, thin SVD (n < D)
def test_torch_design_matrix_matches_numpy(rng, n_components):
    features = rng.standard_normal((25, 40 if n_components == 15 else 9)) * rng.uniform(1, 5, 1)
    train = np.arange(3, 20)
    expected = design_matrix([features], train, n_components, (1, 3))
    got = design_matrix([features], train, n_components, (1, 3), backend=get_backend("torch"))
    np.testing.assert_allclose(got.cpu().numpy(), expected, atol=1e-10)


SETTINGS = {
    "single": ([0], EncodingSettings(pca=8)),
    "concat fusion": ([0, 1], EncodingSettings(pca=8)),
    "banded fusion": ([0, 1], EncodingSettings(pca=8, method="banded", alphas=(1, 100, 1e4))),
    "fixed alpha, no PCA": ([0], EncodingSettings(pca=0, alpha=30.0)),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", sorted(SETTINGS))
def test_encode_with_torch_agrees_with_numpy(rng, device, case):
    n_tr = 90
    latent = rng.standard_normal((n_tr, 4))
    spaces = [
        (latent @ rng.standard_normal((4, d)) + rng.standard_normal((n_tr, d))).astype(np.float32)
        for d in (13, 7)
    ]
    signal = np.roll(latent @ rng.standard_normal((4, N_ROI)), 2, axis=0)
    bold = (signal + rng.standard_normal((3, n_tr, N_ROI))).astype(np.float32)
    chosen, settings = SETTINGS[case]
    features = [spaces[k] for k in chosen]
    partition = len(features) == 2
    expected = encode(features, bold, settings, partition=partition)
    got = encode(features, bold, settings, partition=partition, backend="torch", device=device)
    np.testing.assert_allclose(got.r, expected.r, atol=1e-4)
    np.testing.assert_array_equal(got.alpha, expected.alpha)
    if partition:
        for key, values in expected.partition.items():
            np.testing.assert_allclose(got.partition[key], values, atol=1e-4)
