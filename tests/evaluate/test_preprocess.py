import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from featstore.errors import InputError
from featstore.evaluate.encoding.preprocess import apply_pca, fit_pca, zscore_train
from tests.evaluate.conftest import N_DIM, N_TR


def test_zscore_uses_train_statistics_only(rng):
    values = rng.standard_normal((N_TR, N_DIM)) * 4.0 + 2.0
    values[:, 3] = 0.1  # constant column (its float mean is not exactly 0.1): zeros, not NaN
    train = np.arange(5, 30)
    expected = StandardScaler().fit(values[train]).transform(values)
    np.testing.assert_allclose(zscore_train(values, train), expected, atol=1e-12)
    assert np.abs(zscore_train(values, train)[:, 3]).max() < 1e-15  # not +-1 from rounding


@pytest.mark.parametrize(("n_train", "n_components"), [(30, 6), (8, 5)])  # D=11: both branches
def test_pca_matches_sklearn_up_to_sign(rng, n_train, n_components):
    values = rng.standard_normal((N_TR, N_DIM)) @ rng.standard_normal((N_DIM, N_DIM))
    train = values[:n_train]
    mean, components = fit_pca(train, n_components)
    reference = PCA(n_components, svd_solver="full").fit(train)
    signs = np.sign((components * reference.components_).sum(axis=1))
    assert np.all(np.abs(signs) == 1)
    np.testing.assert_allclose(components, reference.components_ * signs[:, None], atol=1e-9)
    np.testing.assert_allclose(
        apply_pca(values, mean, components), reference.transform(values) * signs, atol=1e-9
    )
    np.testing.assert_allclose(components @ components.T, np.eye(n_components), atol=1e-12)


def test_pca_too_many_components_names_the_values(rng):
    with pytest.raises(InputError, match=r"pca=12 components.*min\(20, 11\)"):
        fit_pca(rng.standard_normal((20, N_DIM)), 12)
