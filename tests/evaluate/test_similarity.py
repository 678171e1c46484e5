"""Similarity metrics against direct formulas, sklearn and scipy (T=37, D=11, V=5)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes
from scipy.stats import ortho_group

from featstore.errors import InputError
from featstore.evaluate.metrics import rsa, similarity

T, D, V = 37, 11, 5


@pytest.fixture
def rng():
    return np.random.default_rng(3)


@pytest.fixture
def pair(rng):
    """Model features x (T, D) and a brain-like y (T, V) sharing two latent dimensions."""
    latent = rng.standard_normal((T, 2))
    x = latent @ rng.standard_normal((2, D)) + 0.5 * rng.standard_normal((T, D))
    y = latent @ rng.standard_normal((2, V)) + 0.5 * rng.standard_normal((T, V))
    return x, y


def hsic_cka(x, y):
    """Reference: HSIC of linear kernels with the centring matrix H (Gretton et al.)."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n

    def hsic(k, m):
        return np.trace(k @ h @ m @ h) / (n - 1) ** 2

    k, m = x @ x.T, y @ y.T
    return hsic(k, m) / np.sqrt(hsic(k, k) * hsic(m, m))


def test_linear_cka_matches_hsic_formula_and_invariances(pair, rng):
    x, y = pair
    value = similarity.linear_cka(x, y)
    assert value == pytest.approx(hsic_cka(x, y), rel=1e-12)
    rotated = 3.0 * x @ ortho_group.rvs(D, random_state=1) + 5.0
    assert similarity.linear_cka(rotated, y) == pytest.approx(value, rel=1e-10)
    assert similarity.linear_cka(x, x) == pytest.approx(1.0)
    with pytest.raises(InputError, match="expected the same items"):
        similarity.linear_cka(x, y[:-1])


def eig_canonical_correlations(x, y):
    """Reference: square roots of the eigenvalues of Sxx⁻¹ Sxy Syy⁻¹ Syx."""
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    sxx, syy, sxy = x.T @ x, y.T @ y, x.T @ y
    m = np.linalg.solve(sxx, sxy) @ np.linalg.solve(syy, sxy.T)
    values = np.sort(np.linalg.eigvals(m).real)[::-1][: min(x.shape[1], y.shape[1])]
    return np.sqrt(np.clip(values, 0, 1))


def test_cca_matches_eigen_closed_form(pair):
    x, y = pair
    fit = similarity.fit_cca(x, y)
    np.testing.assert_allclose(fit.correlations, eig_canonical_correlations(x, y), atol=1e-10)
    # on the fitting data the pairs reproduce the correlations, with unit variance and
    # uncorrelated components on each side
    np.testing.assert_allclose(similarity.cca_correlations(fit, x, y), fit.correlations)
    scores = (x - fit.x_mean) @ fit.x_weights
    np.testing.assert_allclose(np.cov(scores, rowvar=False), np.eye(V), atol=1e-10)
    assert similarity.fit_cca(x, y, n_components=2).x_weights.shape == (D, 2)
    with pytest.raises(InputError, match="n_components=6"):
        similarity.fit_cca(x, y, n_components=6)


def test_cca_first_pair_matches_sklearn(pair):
    from sklearn.cross_decomposition import CCA

    x, y = pair
    model = CCA(n_components=1, max_iter=20000, tol=1e-14).fit(x, y)
    xs, ys = model.transform(x, y)
    expected = abs(np.corrcoef(xs[:, 0], ys[:, 0])[0, 1])
    assert similarity.fit_cca(x, y).correlations[0] == pytest.approx(expected, abs=1e-6)


def test_svcca_is_pca_then_cca(pair):
    from sklearn.decomposition import PCA

    x, y = pair
    fit = similarity.fit_svcca(x, y, keep_variance=0.9, max_components=4)
    px = PCA(n_components=0.9 - 1e-12, svd_solver="full").fit(x)
    py = PCA(n_components=0.9 - 1e-12, svd_solver="full").fit(y)
    xr = px.transform(x)[:, :4]
    yr = py.transform(y)[:, :4]
    np.testing.assert_allclose(fit.correlations, eig_canonical_correlations(xr, yr), atol=1e-10)
    x_test, y_test = x[::2] + 1.0, y[::2]
    np.testing.assert_allclose(
        similarity.cca_correlations(fit, x_test, y_test),
        similarity.cca_correlations(
            similarity.fit_cca(xr, yr), px.transform(x_test)[:, :4], py.transform(y_test)[:, :4]
        ),
        atol=1e-10,
    )


@pytest.mark.parametrize("shapes", [(D, V), (V, D), (D, D)])
def test_procrustes_matches_scipy(rng, shapes):
    x = rng.standard_normal((T, shapes[0]))
    y = rng.standard_normal((T, shapes[1]))
    fit = similarity.fit_procrustes(x, y)
    width = max(shapes)
    xc = np.pad(x - x.mean(0), ((0, 0), (0, width - shapes[0])))
    yc = np.pad(y - y.mean(0), ((0, 0), (0, width - shapes[1])))
    rotation, scale = orthogonal_procrustes(xc / np.linalg.norm(xc), yc / np.linalg.norm(yc))
    np.testing.assert_allclose(fit.rotation, rotation, atol=1e-10)
    assert fit.score == pytest.approx(scale)
    assert similarity.procrustes_score(fit, x, y) == pytest.approx(scale)
    assert similarity.procrustes_distance(x, y) == pytest.approx(np.arccos(scale))


def test_procrustes_rotation_is_orthogonal_and_beats_random_rotations(rng):
    """Independent of scipy: R is orthogonal and no other rotation fits x R to y better."""
    x, y = rng.standard_normal((T, D)), rng.standard_normal((T, D))
    fit = similarity.fit_procrustes(x, y)
    np.testing.assert_allclose(fit.rotation.T @ fit.rotation, np.eye(D), atol=1e-12)
    xc, yc = x - x.mean(0), y - y.mean(0)
    best = np.linalg.norm(xc @ fit.rotation - yc)
    others = ortho_group.rvs(D, size=200, random_state=3)
    assert best <= min(np.linalg.norm(xc @ q - yc) for q in others)


def test_procrustes_recovers_a_rotation(rng):
    x = rng.standard_normal((T, D))
    y = 2.0 * x @ ortho_group.rvs(D, random_state=2) + 1.0
    fit = similarity.fit_procrustes(x[:25], y[:25])
    assert similarity.procrustes_score(fit, x[25:], y[25:]) == pytest.approx(1.0)
    assert similarity.procrustes_distance(x, y) == pytest.approx(0.0, abs=1e-6)


def test_similarity_scores_follow_the_split(pair):
    x, y = pair
    train, test = np.arange(25), np.arange(25, T)
    scores = similarity.similarity_scores(x, y, train, test, cca_components=2)
    assert list(scores) == list(similarity.METRICS)
    assert scores["cka"] == pytest.approx(similarity.linear_cka(x[test], y[test]))
    assert scores["rsa"] == pytest.approx(
        rsa.compare_rdms(rsa.rdm(x[test]), rsa.rdm(y[test])), abs=1e-6
    )
    fit = similarity.fit_svcca(x[train], y[train])
    assert scores["cca"] == pytest.approx(
        np.mean(similarity.cca_correlations(fit, x[test], y[test])[:2])
    )
    proc = similarity.fit_procrustes(x[train], y[train])
    assert scores["procrustes"] == pytest.approx(
        similarity.procrustes_score(proc, x[test], y[test])
    )
    # the shared latent makes every metric clearly positive on held-out TRs
    assert min(scores.values()) > 0.2
    with pytest.raises(InputError, match="metric 'svd'"):
        similarity.similarity_scores(x, y, train, test, ["svd"])
