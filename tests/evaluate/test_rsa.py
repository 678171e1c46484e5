"""RSA numerics against scipy, rsatoolbox and brute-force references (T=37, D=11, V=5)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import kendalltau, pearsonr, rankdata, spearmanr

from featstore.errors import InputError
from featstore.evaluate.metrics import rsa, rsa_layers

T, D, V = 37, 11, 5


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def brute_tau_a(x, y):
    """Reference: the O(n²) definition, sum of sign products over all pairs i < j."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    signs = np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])
    n = x.size
    return np.triu(signs, k=1).sum() / (n * (n - 1) / 2)


@pytest.mark.parametrize("distance", rsa.DISTANCES)
def test_rdm_matches_pdist_across_blocks(rng, distance):
    x = rng.standard_normal((T, D)) * rng.uniform(0.5, 3.0, D) + rng.standard_normal(D)
    expected = pdist(x, metric=distance)
    # block_bytes small enough for 3-row blocks: block edges are exercised
    got = rsa.rdm(x, distance, block_bytes=3 * 8 * T, dtype=np.float64)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    got32 = rsa.rdm(x, distance)
    assert got32.dtype == np.float32 and got32.shape == (rsa.n_pairs(T),)
    np.testing.assert_allclose(got32, expected, rtol=1e-5, atol=1e-6)


def test_rdm_matches_rsatoolbox(rng):
    rsatoolbox = pytest.importorskip("rsatoolbox", reason="rsatoolbox is a test-only reference")
    x = rng.standard_normal((T, V))
    data = rsatoolbox.data.Dataset(x)
    corr = rsatoolbox.rdm.calc_rdm(data, method="correlation").dissimilarities[0]
    np.testing.assert_allclose(rsa.rdm(x, "correlation", dtype=np.float64), corr, rtol=1e-10)
    # rsatoolbox's euclidean is the squared distance divided by the number of channels
    eucl = rsatoolbox.rdm.calc_rdm(data, method="euclidean").dissimilarities[0]
    np.testing.assert_allclose(rsa.rdm(x, "euclidean", dtype=np.float64) ** 2 / V, eucl)


def test_rdm_refuses_items_without_variance(rng):
    x = rng.standard_normal((T, D))
    x[12] = 3.0
    with pytest.raises(InputError, match=r"item 12 .* zero variance"):
        rsa.rdm(x, "correlation")
    np.testing.assert_allclose(rsa.rdm(x, "euclidean", dtype=np.float64), pdist(x))
    with pytest.raises(InputError, match="distance 'manhattan'"):
        rsa.rdm(x, "manhattan")


def test_segment_average_matches_loop(rng):
    values = rng.standard_normal((V, T, D))
    ids = rng.integers(-1, 9, T)
    got, segments = rsa.segment_average(values, ids, axis=1)
    expected_segments = np.unique(ids[ids >= 0])
    np.testing.assert_array_equal(segments, expected_segments)
    assert got.shape == (V, expected_segments.size, D)
    for k, seg in enumerate(expected_segments):
        np.testing.assert_allclose(got[:, k], values[:, ids == seg].mean(axis=1))
    with pytest.raises(InputError, match="one id per entry"):
        rsa.segment_average(values, ids[:-1], axis=1)


def test_condensed_layout_and_permutation(rng):
    square = squareform(rng.random(rsa.n_pairs(T)))
    condensed = squareform(square)
    assert rsa.n_items_of(condensed) == T
    with pytest.raises(InputError, match="not n"):
        rsa.n_items_of(condensed[:-1])
    perm = rng.permutation(T)
    expected = squareform(square[perm][:, perm])
    np.testing.assert_array_equal(rsa_layers.permute_rdm(condensed, perm), expected)
    stacked = np.stack([condensed, 2 * condensed])
    np.testing.assert_array_equal(rsa_layers.permute_rdm(stacked, perm)[1], 2 * expected)


@pytest.mark.parametrize("levels", [1, 2, 4, 1000])
@pytest.mark.parametrize("n", [2, 3, 61, 300])
def test_tau_a_matches_brute_force_with_and_without_ties(rng, levels, n):
    x = rng.integers(0, levels, n).astype(float)
    y = x + rng.integers(0, levels, n)
    assert rsa.kendall_tau_a(x, y) == pytest.approx(brute_tau_a(x, y), abs=1e-14)
    assert rsa.kendall_tau_a(x, np.zeros(n)) == 0.0  # a constant side: no ordered pair


def test_tau_a_equals_scipy_tau_b_without_ties(rng):
    x = rng.standard_normal(2003)
    y = x + 2 * rng.standard_normal(2003)
    assert rsa.kendall_tau_a(x, y) == pytest.approx(kendalltau(x, y).statistic, abs=1e-12)


def test_tau_a_matches_rsatoolbox_with_ties(rng):
    rsatoolbox = pytest.importorskip("rsatoolbox", reason="rsatoolbox is a test-only reference")
    a = rng.integers(0, 5, rsa.n_pairs(T)).astype(float)
    b = a + rng.integers(0, 3, a.size)
    expected = rsatoolbox.rdm.compare(
        rsatoolbox.rdm.RDMs(a[None]), rsatoolbox.rdm.RDMs(b[None]), method="tau-a"
    )[0, 0]
    assert rsa.compare_rdms(a, b, "kendall") == pytest.approx(expected, abs=1e-12)


def test_compare_matches_scipy_and_rsatoolbox(rng):
    a = rsa.rdm(rng.standard_normal((T, D)))
    b = a + rng.random(a.size).astype(np.float32)
    assert rsa.compare_rdms(a, b, "spearman") == pytest.approx(spearmanr(a, b).statistic)
    assert rsa.compare_rdms(a, b, "pearson") == pytest.approx(pearsonr(a, b).statistic)
    rsatoolbox = pytest.importorskip("rsatoolbox", reason="rsatoolbox is a test-only reference")
    expected = rsatoolbox.rdm.compare(
        rsatoolbox.rdm.RDMs(a[None].astype(float)),
        rsatoolbox.rdm.RDMs(b[None].astype(float)),
        method="spearman",
    )[0, 0]
    assert rsa.compare_rdms(a, b, "spearman") == pytest.approx(expected, abs=1e-6)
    with pytest.raises(InputError, match="expected one of"):
        rsa.compare_rdms(a, b, "cosine")


def residual_partial(a, b, controls, ranked):
    """Reference: correlate the residuals of least-squares fits on [1, controls]."""
    prep = rankdata if ranked else np.asarray
    design = np.column_stack([np.ones(a.size)] + [prep(c) for c in controls])

    def residual(v):
        v = prep(v).astype(float)
        return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]

    return pearsonr(residual(a), residual(b)).statistic


@pytest.mark.parametrize("method", ["spearman", "pearson"])
@pytest.mark.parametrize("n_controls", [1, 2])
def test_partial_matches_residual_regression(rng, method, n_controls):
    z = [rng.random(rsa.n_pairs(T)) for _ in range(n_controls)]
    a = z[0] + rng.random(z[0].size)
    b = z[0] ** 2 + 0.5 * a + rng.random(z[0].size)
    got = rsa.partial_compare(a, b, z, method)
    assert got == pytest.approx(residual_partial(a, b, z, method == "spearman"), abs=1e-10)
    with pytest.raises(InputError, match="partial RSA"):
        rsa.partial_compare(a, b, z, "kendall")


def test_permutation_indices_are_seeded_block_permutations():
    perms = rsa_layers.permutation_indices(T, 6, block=5, seed=3)
    assert perms.shape == (6, T)
    for perm in perms:
        np.testing.assert_array_equal(np.sort(perm), np.arange(T))
        # inside a block consecutive items stay consecutive
        starts = np.flatnonzero(np.diff(perm) != 1) + 1
        assert all(perm[s] % 5 == 0 for s in starts)
    np.testing.assert_array_equal(perms, rsa_layers.permutation_indices(T, 6, block=5, seed=3))
    assert not np.array_equal(perms, rsa_layers.permutation_indices(T, 6, block=5, seed=4))
    with pytest.raises(InputError, match="single block"):
        rsa_layers.permutation_indices(T, 2, block=T)


@pytest.fixture
def layered(rng):
    """3 model layers and V=5 subjects sharing a planted signal; 1 control RDM."""
    shared = rng.standard_normal((T, D))
    control = rsa.rdm(rng.standard_normal((T, D)))
    layers = [rsa.rdm(shared * w + rng.standard_normal((T, D))) for w in (0.0, 0.5, 2.0)]
    subjects = [rsa.rdm(shared + rng.standard_normal((T, D))) for _ in range(V)]
    return np.stack(layers), np.stack(subjects), control[None]


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_rsa_layers_matches_pairwise_comparisons(layered, method):
    layers, subjects, control = layered
    std = lambda m: np.stack([rsa.standardize_rdm(v, method) for v in m])  # noqa: E731
    result = rsa_layers.rsa_layers(std(layers), std(subjects), method=method)
    expected = [[rsa.compare_rdms(m, s, method) for s in subjects] for m in layers]
    np.testing.assert_allclose(result.rho, expected, atol=1e-6)
    np.testing.assert_allclose(result.mean, np.mean(expected, axis=1), atol=1e-6)
    assert np.isnan(result.p_value).all() and result.null.shape == (0, 3)
    partial = rsa_layers.rsa_layers(
        std(layers), std(subjects), method=method, control_rdms=std(control)
    )
    expected = [[rsa.partial_compare(m, s, control, method) for s in subjects] for m in layers]
    np.testing.assert_allclose(partial.rho, expected, atol=1e-6)


@pytest.mark.parametrize(("n_layers", "n_subjects"), [(2, 2), (1, 2)])
def test_rsa_layers_kendall(layered, n_layers, n_subjects):
    # (1, 2): fewer model RDMs than subjects, so the model side is permuted instead
    layers, subjects = layered[0][-n_layers:], layered[1][:n_subjects]
    result = rsa_layers.rsa_layers(layers, subjects, method="kendall", n_perm=2, seed=1)
    expected = [[brute_tau_a(m, s) for s in subjects] for m in layers]
    np.testing.assert_allclose(result.rho, expected, atol=1e-12)
    perm = rsa_layers.permutation_indices(T, 2, seed=1)[1]
    null = [
        np.mean([brute_tau_a(m, rsa_layers.permute_rdm(s, perm)) for s in subjects]) for m in layers
    ]
    np.testing.assert_allclose(result.null[1], null, atol=1e-12)


def kennedy_null(layer, subjects, control, perm):
    """Reference: permute each subject's brain rank residual given the control, correlate
    with the layer's rank residual, average over subjects."""
    design = np.column_stack([np.ones(control.size), rankdata(control)])

    def residual(v):
        v = rankdata(v)
        return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]

    model = residual(layer)
    return np.mean(
        [pearsonr(model, rsa_layers.permute_rdm(residual(s), perm)).statistic for s in subjects]
    )


@pytest.mark.parametrize("partial", [False, True])
def test_rsa_layers_permutation_null(layered, partial):
    layers, subjects, control = layered
    std = lambda m: np.stack([rsa.standardize_rdm(v) for v in m])  # noqa: E731
    controls = std(control) if partial else None
    n_perm = 19
    result = rsa_layers.rsa_layers(
        std(layers), std(subjects), control_rdms=controls, n_perm=n_perm, block=3, seed=11
    )
    # rebuild the null from the same permutations, one subject at a time
    for k, perm in enumerate(rsa_layers.permutation_indices(T, n_perm, block=3, seed=11)):
        for layer in range(3):
            if partial:
                expected = kennedy_null(layers[layer], subjects, control[0], perm)
            else:
                expected = np.mean(
                    [
                        rsa.compare_rdms(layers[layer], rsa_layers.permute_rdm(s, perm))
                        for s in subjects
                    ]
                )
            assert result.null[k, layer] == pytest.approx(expected, abs=1e-5)
    # the planted layer beats every permutation; the empty layer does not
    assert result.p_value[2] == pytest.approx(1 / (n_perm + 1))
    assert result.p_fwe[2] == pytest.approx(1 / (n_perm + 1))
    assert result.p_value[0] > 0.05
    assert np.all(result.p_fwe >= result.p_value)


def test_lag_mask_keeps_pairs_at_least_min_lag_apart():
    i, j = np.triu_indices(T, 1)  # pdist order
    np.testing.assert_array_equal(rsa_layers.lag_mask(T, 4), (j - i) >= 4)
    assert rsa_layers.lag_mask(T, 1).all()


@pytest.mark.parametrize("partial", [False, True])
def test_rsa_layers_min_lag_compares_kept_pairs_and_permutes_the_full_brain(layered, partial):
    layers, subjects, control = layered
    mask = rsa_layers.lag_mask(T, 4)
    std = lambda m: np.stack([rsa.standardize_rdm(v, "pearson") for v in m])  # noqa: E731
    controls = std(control) if partial else None
    n_perm = 7
    result = rsa_layers.rsa_layers(
        std(layers),
        std(subjects),
        method="pearson",
        control_rdms=controls,
        n_perm=n_perm,
        block=3,
        seed=2,
        min_lag=4,
    )
    if partial:
        expected = [
            [rsa.partial_compare(m[mask], s[mask], control[:, mask], "pearson") for s in subjects]
            for m in layers
        ]
    else:
        expected = [[pearsonr(m[mask], s[mask]).statistic for s in subjects] for m in layers]
    np.testing.assert_allclose(result.rho, expected, atol=1e-6)

    def unit(v):
        v = v - v.mean()
        return v / np.linalg.norm(v)

    def brain_side(s):
        """A subject's brain vector over all pairs: its residual given the control when
        partial (the quantity the permutations move), standardized."""
        s = unit(s)
        if partial:
            c = unit(control[0])
            s = s - (s @ c) * c
            s = s / np.linalg.norm(s)
        return s

    def model_side(m):
        m = unit(m[mask])
        if partial:
            c = unit(control[0][mask])
            m = m - (m @ c) * c
            m = m / np.linalg.norm(m)
        return m

    # the statistic: kept-pair model vector times the subjects' mean brain vector, whose
    # items are permuted before the pairs are dropped
    mean_brain = np.mean([brain_side(s) for s in subjects], axis=0)
    for layer in range(3):
        assert result.statistic[layer] == pytest.approx(
            model_side(layers[layer]) @ mean_brain[mask], abs=1e-5
        )
    for k, perm in enumerate(rsa_layers.permutation_indices(T, n_perm, block=3, seed=2)):
        permuted = rsa_layers.permute_rdm(mean_brain, perm)[mask]
        for layer in range(3):
            assert result.null[k, layer] == pytest.approx(
                model_side(layers[layer]) @ permuted, abs=1e-5
            )
    assert result.p_value[2] == pytest.approx(1 / (n_perm + 1))


def test_rsa_layers_min_lag_kendall(layered):
    layers, subjects, _ = layered
    mask = rsa_layers.lag_mask(T, 6)
    result = rsa_layers.rsa_layers(layers[1:], subjects[:2], method="kendall", n_perm=2, min_lag=6)
    expected = [[brute_tau_a(m[mask], s[mask]) for s in subjects[:2]] for m in layers[1:]]
    np.testing.assert_allclose(result.rho, expected, atol=1e-12)
    perm = rsa_layers.permutation_indices(T, 2)[1]
    null = [
        np.mean([brute_tau_a(m[mask], rsa_layers.permute_rdm(s, perm)[mask]) for s in subjects[:2]])
        for m in layers[1:]
    ]
    np.testing.assert_allclose(result.null[1], null, atol=1e-12)
    with pytest.raises(InputError, match="leaves"):
        rsa_layers.rsa_layers(layers, subjects, min_lag=T)
