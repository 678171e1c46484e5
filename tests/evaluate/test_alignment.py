"""Alignment metrics against brute-force references, scipy and closed forms (N=23, D=7, V=5)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.spatial import procrustes as scipy_procrustes
from scipy.spatial.distance import pdist
from scipy.stats import ortho_group, pearsonr, spearmanr
from sklearn.decomposition import PCA

from featstore.errors import InputError
from featstore.evaluate.metrics import alignment
from featstore.evaluate.metrics.similarity import fit_procrustes

N, D, V = 23, 7, 5


@pytest.fixture
def pair():
    """Model x (N, D) and brain y (N, V) sharing two latent dimensions, plus noise."""
    rng = np.random.default_rng(11)
    latent = rng.standard_normal((N, 2))
    x = latent @ rng.standard_normal((2, D)) + 0.6 * rng.standard_normal((N, D))
    y = latent @ rng.standard_normal((2, V)) + 0.6 * rng.standard_normal((N, V))
    return x, y


def centring(n):
    return np.eye(n) - np.ones((n, n)) / n


def kernel_cka(k, m):
    """Reference: HSIC with explicit centring matrices, normalised (Kornblith et al. 2019)."""
    h = centring(k.shape[0])
    return np.trace(k @ h @ m @ h) / np.sqrt(np.trace(k @ h @ k @ h) * np.trace(m @ h @ m @ h))


def rbf_kernel_loop(a, scale=1.0):
    """Reference RBF Gram matrix, element by element, σ = scale × median distance."""
    n = a.shape[0]
    distances = [np.linalg.norm(a[i] - a[j]) for i in range(n) for j in range(i + 1, n)]
    sigma = scale * np.median(distances)
    gram = np.empty((n, n))
    for i, j in itertools.product(range(n), range(n)):
        gram[i, j] = np.exp(-np.sum((a[i] - a[j]) ** 2) / (2 * sigma**2))
    return gram


def dcor_loop(a, b):
    """Reference distance correlation: double centring written out with loops."""
    n = a.shape[0]

    def centred(values):
        d = np.array([[np.linalg.norm(values[i] - values[j]) for j in range(n)] for i in range(n)])
        out = np.empty_like(d)
        for i, j in itertools.product(range(n), range(n)):
            out[i, j] = d[i, j] - d[i].mean() - d[:, j].mean() + d.mean()
        return out

    ca, cb = centred(a), centred(b)
    dcov = sum(ca[i, j] * cb[i, j] for i in range(n) for j in range(n)) / n**2
    dvar_a = sum(ca[i, j] ** 2 for i in range(n) for j in range(n)) / n**2
    dvar_b = sum(cb[i, j] ** 2 for i in range(n) for j in range(n)) / n**2
    return np.sqrt(dcov / np.sqrt(dvar_a * dvar_b))


def knn_sets(a, k):
    """Reference neighbour sets: every other item sorted by cosine similarity, one by one."""
    sets = []
    for i in range(a.shape[0]):
        cosines = [
            (-(a[i] @ a[j]) / (np.linalg.norm(a[i]) * np.linalg.norm(a[j])), j)
            for j in range(a.shape[0])
            if j != i
        ]
        sets.append({j for _, j in sorted(cosines)[:k]})
    return sets


def pwcca_reference(x, y, keep=0.99):
    """Morcos et al. (2018) step by step: PCA (sklearn), CCA by covariance whitening,
    canonical variates of x, QR, weights Σ_j |<h_i, x_j>|, weighted mean of the ρ_i."""
    cap = x.shape[0] // 3

    def reduce(a):
        pca = PCA().fit(a)
        k = int(np.searchsorted(np.cumsum(pca.explained_variance_ratio_), keep - 1e-12) + 1)
        return pca.transform(a)[:, : min(k, cap)]

    xr, yr = reduce(x), reduce(y)
    sxx, syy, sxy = xr.T @ xr, yr.T @ yr, xr.T @ yr

    def inv_sqrt(s):
        values, vectors = np.linalg.eigh(s)
        return vectors @ np.diag(values**-0.5) @ vectors.T

    u, rho, _ = np.linalg.svd(inv_sqrt(sxx) @ sxy @ inv_sqrt(syy))
    k = min(xr.shape[1], yr.shape[1])
    variates = xr @ inv_sqrt(sxx) @ u[:, :k]
    q, _ = np.linalg.qr(variates)
    alpha = np.abs(q.T @ (x - x.mean(axis=0))).sum(axis=1)
    return np.sum(alpha * rho[:k]) / alpha.sum(), rho[:k]


def test_registry_has_the_nine_metrics():
    assert list(alignment.ALIGNMENT_METRICS) == [
        "rsa-spearman",
        "rsa-pearson",
        "cka-linear",
        "cka-rbf",
        "svcca",
        "pwcca",
        "procrustes",
        "mutual-knn",
        "distance-correlation",
    ]


def test_rsa_matches_scipy_on_pdist(pair):
    x, y = pair
    dx, dy = pdist(x, "correlation"), pdist(y, "correlation")
    assert alignment.rsa_spearman(x, y) == pytest.approx(spearmanr(dx, dy).statistic, abs=1e-12)
    assert alignment.rsa_pearson(x, y) == pytest.approx(pearsonr(dx, dy).statistic, abs=1e-12)


def test_linear_cka_matches_kernel_hsic(pair):
    x, y = pair
    value = alignment.ALIGNMENT_METRICS["cka-linear"](x, y)
    assert value == pytest.approx(kernel_cka(x @ x.T, y @ y.T), rel=1e-12)


def test_rbf_cka_matches_kernel_hsic_and_tends_to_linear(pair):
    x, y = pair
    reference = kernel_cka(rbf_kernel_loop(x), rbf_kernel_loop(y))
    assert alignment.cka_rbf(x, y) == pytest.approx(reference, rel=1e-10)
    half = kernel_cka(rbf_kernel_loop(x, 0.5), rbf_kernel_loop(y, 0.5))
    assert alignment.cka_rbf(x, y, sigma_scale=0.5) == pytest.approx(half, rel=1e-10)
    # exp(-d²/2σ²) ≈ 1 - d²/2σ², whose centred Gram is the linear one (Kornblith et al.)
    wide = alignment.cka_rbf(x, y, sigma_scale=1e4)
    assert wide == pytest.approx(alignment.ALIGNMENT_METRICS["cka-linear"](x, y), rel=1e-6)


def test_svcca_is_the_mean_canonical_correlation_after_pca(pair):
    x, y = pair
    _, rho = pwcca_reference(x, y)
    assert alignment.svcca(x, y) == pytest.approx(rho.mean(), rel=1e-10)


def test_pwcca_matches_the_papers_algorithm_step_by_step(pair):
    x, y = pair
    reference, rho = pwcca_reference(x, y)
    value = alignment.pwcca(x, y)
    assert value == pytest.approx(reference, rel=1e-10)
    # the weights matter: PWCCA is not the plain mean
    assert abs(value - rho.mean()) > 1e-3


def test_procrustes_matches_scipy_disparity(pair):
    x, y = pair
    y_padded = np.pad(y, ((0, 0), (0, D - V)))
    # scipy standardises both sides and scales: disparity = 1 - (Σ singular values)²
    disparity = scipy_procrustes(x, y_padded)[2]
    assert alignment.procrustes(x, y) == pytest.approx(np.sqrt(1 - disparity), rel=1e-10)
    assert alignment.procrustes(x, y) == pytest.approx(fit_procrustes(x, y).score, rel=1e-10)
    # wider than the items: the item-space SVD still gives the rotation's score
    wide = np.random.default_rng(6).standard_normal((N, 40))
    assert alignment.procrustes(wide, y) == pytest.approx(fit_procrustes(wide, y).score)


def test_linear_cka_item_and_feature_space_forms_agree(pair):
    x, y = pair
    wide = np.hstack([x, np.random.default_rng(7).standard_normal((N, 30))])
    value = alignment.ALIGNMENT_METRICS["cka-linear"](wide, y)  # N < D + V: item space
    assert value == pytest.approx(kernel_cka(wide @ wide.T, y @ y.T), rel=1e-12)


@pytest.mark.parametrize("k", [1, 3, 6])
def test_mutual_knn_matches_brute_force_intersection(pair, k):
    x, y = pair
    sets_x, sets_y = knn_sets(x, k), knn_sets(y, k)
    reference = np.mean([len(a & b) / k for a, b in zip(sets_x, sets_y, strict=True)])
    assert alignment.mutual_knn(x, y, k=k) == pytest.approx(reference, abs=1e-12)


def test_mutual_knn_default_k_and_bounds(pair):
    x, y = pair
    assert alignment.default_k(N) == 10
    assert alignment.default_k(9) == 4
    assert alignment.mutual_knn(x, y) == alignment.mutual_knn(x, y, k=10)
    assert alignment.mutual_knn(x, 2.0 * x) == 1.0
    with pytest.raises(InputError, match=r"k=23, expected 1\.\.22"):
        alignment.mutual_knn(x, y, k=N)


def test_distance_correlation_matches_loops_and_closed_forms(pair):
    x, y = pair
    assert alignment.distance_correlation(x, y) == pytest.approx(dcor_loop(x, y), rel=1e-10)
    similar = 2.5 * x @ ortho_group.rvs(D, random_state=4) + 1.0
    assert alignment.distance_correlation(x, similar) == pytest.approx(1.0, rel=1e-12)


NAMES = list(alignment.ALIGNMENT_METRICS)
#: metrics invariant to an orthogonal transform, isotropic scaling and translation of a side
#: (RSA's correlation distance is not invariant to rotating the features)
#: (PWCCA's weights sum |projections| on x's units: only y may be rotated, see below)
INVARIANT = ["cka-linear", "cka-rbf", "svcca", "procrustes", "distance-correlation"]


@pytest.mark.parametrize("name", INVARIANT)
def test_invariant_to_rotation_scaling_and_translation(pair, name):
    x, y = pair
    metric = alignment.ALIGNMENT_METRICS[name]
    transformed = 4.0 * x @ ortho_group.rvs(D, random_state=2) + 3.0
    assert metric(transformed, y) == pytest.approx(metric(x, y), rel=1e-9)


def test_pwcca_invariances_follow_its_unit_weights(pair):
    x, y = pair
    value = alignment.pwcca(x, y)
    rotated_brain = 2.0 * y @ ortho_group.rvs(V, random_state=3) - 1.0
    assert alignment.pwcca(x, rotated_brain) == pytest.approx(value, rel=1e-9)
    signs = np.where(np.arange(D) % 2, -1.0, 1.0)
    permuted_units = 3.0 * x[:, ::-1] * signs + 2.0
    assert alignment.pwcca(permuted_units, y) == pytest.approx(value, rel=1e-9)
    rotated_model = x @ ortho_group.rvs(D, random_state=2)
    assert alignment.pwcca(rotated_model, y) != pytest.approx(value, rel=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_each_metric_is_one_for_identical_sides_and_lower_for_noise(pair, name):
    x, _ = pair
    metric = alignment.ALIGNMENT_METRICS[name]
    assert metric(x, x) == pytest.approx(1.0, abs=1e-9)
    noise = np.random.default_rng(5).standard_normal((N, V))
    assert metric(x, noise) < metric(x, x) - 0.2


@pytest.mark.parametrize("name", NAMES)
def test_each_metric_refuses_mismatched_items(pair, name):
    x, y = pair
    with pytest.raises(InputError, match="expected the same items"):
        alignment.ALIGNMENT_METRICS[name](x, y[:-1])


def test_score_layers_table_recovers_the_planted_layer(pair):
    x, _ = pair
    rng = np.random.default_rng(8)
    layers = [rng.standard_normal((N, 4)), x, rng.standard_normal((N, 9))]
    brain = x @ rng.standard_normal((D, V)) + 0.1 * rng.standard_normal((N, V))
    table = alignment.score_layers(layers, brain)
    assert table.metrics == tuple(NAMES)
    assert table.scores.shape == (3, len(NAMES))
    assert (table.scores.argmax(axis=0) == 1).all()
    assert table.as_dict()["cka-linear"][1] == alignment.ALIGNMENT_METRICS["cka-linear"](x, brain)


def test_score_layers_metric_selection_and_errors(pair):
    x, y = pair
    stacked = np.stack([x, 2 * x])
    table = alignment.score_layers(stacked, y, "svcca, cka-rbf")
    assert table.metrics == ("svcca", "cka-rbf")
    custom = alignment.score_layers(
        stacked, y, {"knn3": lambda a, b: alignment.mutual_knn(a, b, k=3)}
    )
    assert custom.scores[0, 0] == alignment.mutual_knn(x, y, k=3)
    with pytest.raises(InputError, match="metric 'cka': expected 'all' or any of rsa-spearman"):
        alignment.score_layers(stacked, y, ["cka"])
    with pytest.raises(InputError, match=r"layers has shape \(23, 7\)"):
        alignment.score_layers(x, y)
    with pytest.raises(InputError, match="no layer"):
        alignment.score_layers([], y)


def test_docs_example_runs_and_prints_what_it_says():
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "alignment-metrics.md").read_text()
    (block,) = re.findall(r"```python\n(.+?)```", doc, flags=re.S)
    namespace: dict = {}
    exec(block, namespace)
    assert namespace["table"].scores.shape == (6, 9)
    assert (namespace["table"].scores.argmax(axis=0) == 3).all()
    assert round(namespace["agreement"].kendall_w, 2) == 0.90
    assert namespace["agreement"].spearman.shape == (9, 9)
