"""Permutation tests, FDR and paired tests against slow loops, statsmodels and scipy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import rankdata, wilcoxon
from statsmodels.stats.multitest import multipletests

from featstore.errors import InputError
from featstore.evaluate.metrics.stats import (
    circular_shifts,
    fdr_bh,
    paired_wilcoxon,
    permutation_test,
    rank_biserial,
)

# Distinct sizes per axis: subjects, test TRs, ROIs.
N_SUBJECT, N_TIME, N_ROI = 3, 47, 5


def _smooth(rng, shape, width=4):
    """Autocorrelated series along axis 1 (moving average of white noise)."""
    noise = rng.normal(size=(shape[0], shape[1] + width - 1, shape[2]))
    kernel = np.ones(width) / width
    return np.apply_along_axis(lambda x: np.convolve(x, kernel, mode="valid"), 1, noise)


@pytest.fixture
def pair():
    rng = np.random.default_rng(11)
    observed = _smooth(rng, (N_SUBJECT, N_TIME, N_ROI))
    predictions = 0.4 * observed + _smooth(rng, (N_SUBJECT, N_TIME, N_ROI))
    predictions[:, :, 0] = _smooth(rng, (N_SUBJECT, N_TIME, 1))[:, :, 0]  # no signal
    return predictions, observed


def _corr(x, y):
    return np.corrcoef(x, y)[0, 1]


def _p_values_from_loop(predictions, observed, permuted_indices):
    """Slow reference: one np.corrcoef per draw, subject and ROI."""
    n_subject, _, n_roi = predictions.shape
    r = np.array(
        [
            [_corr(predictions[s, :, v], observed[s, :, v]) for v in range(n_roi)]
            for s in range(n_subject)
        ]
    )
    null = np.array(
        [
            [
                [_corr(predictions[s, idx, v], observed[s, :, v]) for v in range(n_roi)]
                for s in range(n_subject)
            ]
            for idx in permuted_indices
        ]
    )  # (draw, subject, roi)
    n = len(permuted_indices)
    p_subject = (1 + (null >= r - 1e-12).sum(axis=0)) / (1 + n)
    p_mean = (1 + (null.mean(axis=1) >= r.mean(axis=0) - 1e-12).sum(axis=0)) / (1 + n)
    return r, p_subject, p_mean


def test_block_permutation_equals_a_slow_loop_with_the_same_seed(pair):
    predictions, observed = pair
    block, n_perm, seed = 6, 150, 3
    result = permutation_test(predictions, observed, n_perm=n_perm, block=block, seed=seed)

    n_blocks = N_TIME // block
    keys = np.random.default_rng(seed).random((n_perm, n_blocks))
    indices = []
    for row in keys:
        order = np.argsort(row, kind="stable")
        pieces = [np.arange(b * block, (b + 1) * block) for b in order]
        indices.append(np.concatenate([*pieces, np.arange(n_blocks * block, N_TIME)]))
    r, p_subject, p_mean = _p_values_from_loop(predictions, observed, indices)

    np.testing.assert_allclose(result.r, r, atol=1e-12)
    np.testing.assert_allclose(result.r_mean, r.mean(axis=0), atol=1e-12)
    np.testing.assert_array_equal(result.p_subject, p_subject)
    np.testing.assert_array_equal(result.p_mean, p_mean)
    assert result.n_perm == n_perm and result.method == "block"


@pytest.mark.parametrize("n_perm", [20, 1000])
def test_circular_shift_test_equals_a_slow_loop(pair, n_perm):
    predictions, observed = pair
    block, seed = 5, 8
    result = permutation_test(
        predictions, observed, n_perm=n_perm, method="circular", block=block, seed=seed
    )
    shifts = circular_shifts(N_TIME, n_perm, block, seed)
    assert len(shifts) == min(n_perm, N_TIME - 2 * block + 1)
    assert shifts.min() >= block and shifts.max() <= N_TIME - block
    indices = [np.roll(np.arange(N_TIME), k) for k in shifts]
    r, p_subject, p_mean = _p_values_from_loop(predictions, observed, indices)
    np.testing.assert_allclose(result.r, r, atol=1e-12)
    np.testing.assert_array_equal(result.p_subject, p_subject)
    np.testing.assert_array_equal(result.p_mean, p_mean)
    assert result.n_perm == len(shifts)


def test_same_seed_same_p_values_and_planted_signal_is_significant(pair):
    predictions, observed = pair
    predictions = predictions + observed  # a stronger signal in the planted ROIs 1..4
    predictions[:, :, 0] -= observed[:, :, 0]
    first = permutation_test(predictions, observed, n_perm=1000, block=5, seed=1)
    again = permutation_test(predictions, observed, n_perm=1000, block=5, seed=1)
    np.testing.assert_array_equal(first.p_mean, again.p_mean)
    assert np.all(first.p_mean[1:] < 0.01)  # planted ROIs
    assert first.p_mean.min() >= 1 / 1001


def test_null_p_values_are_calibrated_for_autocorrelated_series():
    """Independent smooth series: about 5 % of ROIs below 0.05 (a TR-wise shuffle would
    give far more, the reason for blocks)."""
    rng = np.random.default_rng(5)
    shape = (1, 120, 400)
    result = permutation_test(
        _smooth(rng, shape, 6), _smooth(rng, shape, 6), n_perm=300, block=12, seed=0
    )
    assert 0.01 <= np.mean(result.p_subject < 0.05) <= 0.10


def test_constant_series_give_nan_and_bad_input_is_refused(pair):
    predictions, observed = pair
    predictions = predictions.copy()
    predictions[1, :, 2] = 3.0
    result = permutation_test(predictions, observed, n_perm=50, block=5)
    assert np.isnan(result.p_subject[1, 2]) and np.isnan(result.r[1, 2])
    assert np.isfinite(result.p_subject[0, 2])
    with pytest.raises(InputError, match="same"):
        permutation_test(predictions[:, :-1], observed, n_perm=10)
    with pytest.raises(InputError, match="two blocks"):
        permutation_test(predictions, observed, n_perm=10, block=30)
    with pytest.raises(InputError, match="only 24 orders for 1000 draws"):
        permutation_test(predictions, observed, n_perm=1000, block=10)
    with pytest.raises(InputError, match="method"):
        permutation_test(predictions, observed, method="shuffle")


def test_fdr_bh_matches_statsmodels_along_an_axis_with_nans():
    rng = np.random.default_rng(2)
    p = rng.uniform(size=(4, 31)) ** 3
    p[1, 5] = np.nan
    p[2, [0, 9]] = np.nan
    q = fdr_bh(p, axis=1)
    for row_p, row_q in zip(p, q, strict=True):
        keep = ~np.isnan(row_p)
        expected = multipletests(row_p[keep], method="fdr_bh")[1]
        np.testing.assert_allclose(row_q[keep], expected, atol=1e-12)
        assert np.all(np.isnan(row_q[~keep]))
    np.testing.assert_allclose(fdr_bh(p.T, axis=0), q.T)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        fdr_bh(np.array([0.1, 1.5]))


def _exact_two_sided_wilcoxon(d):
    """Brute force: all 2**n sign patterns of the ranks."""
    ranks = rankdata(np.abs(d))
    observed = min(ranks[d > 0].sum(), ranks[d < 0].sum())
    total = ranks.sum()
    extreme = 0
    for signs in itertools.product((0, 1), repeat=len(d)):
        positive = ranks[np.array(signs, dtype=bool)].sum()
        extreme += min(positive, total - positive) <= observed + 1e-12
    return extreme / 2 ** len(d)


def test_paired_wilcoxon_matches_scipy_and_brute_force():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(7, 6)) + np.linspace(0, 1.5, 6)
    b = rng.normal(size=(7, 6))
    result = paired_wilcoxon(a, b)
    for v in range(6):
        reference = wilcoxon(a[:, v], b[:, v])
        assert result.p_value[v] == pytest.approx(reference.pvalue, abs=1e-12)
        assert result.statistic[v] == pytest.approx(reference.statistic)
        assert result.p_value[v] == pytest.approx(_exact_two_sided_wilcoxon(a[:, v] - b[:, v]))
        d = a[:, v] - b[:, v]
        assert result.median_difference[v] == pytest.approx(np.median(d))
        ranks = rankdata(np.abs(d))
        t_plus, t_minus = ranks[d > 0].sum(), ranks[d < 0].sum()
        assert result.rank_biserial[v] == pytest.approx((t_plus - t_minus) / (t_plus + t_minus))
    one_sided = paired_wilcoxon(a[:, 5], b[:, 5], alternative="greater")
    assert one_sided.p_value == pytest.approx(
        wilcoxon(a[:, 5], b[:, 5], alternative="greater").pvalue
    )
    assert one_sided.n == 7 and isinstance(one_sided.p_value, float)


def test_rank_biserial_extremes_and_zero_differences():
    assert rank_biserial(np.array([0.3, 0.1, 0.2])) == pytest.approx(1.0)
    assert rank_biserial(np.array([-0.3, -0.1, -0.2])) == pytest.approx(-1.0)
    # zeros are dropped, ties get average ranks: ranks of |0.1, 0.1, 0.2| are 1.5, 1.5, 3
    assert rank_biserial(np.array([0.1, -0.1, 0.2, 0.0])) == pytest.approx((4.5 - 1.5) / 6)


def test_paired_wilcoxon_all_equal_gives_nan_without_warnings():
    a = np.arange(5.0)[:, None] * np.ones((1, 3))
    b = a.copy()
    b[:, 2] -= np.arange(1.0, 6.0)
    result = paired_wilcoxon(a, b)
    assert np.isnan(result.p_value[0]) and np.isnan(result.rank_biserial[1])
    assert result.rank_biserial[2] == pytest.approx(1.0)
    with pytest.raises(InputError, match="same shape"):
        paired_wilcoxon(a, b[:, :2])


def test_paired_wilcoxon_one_sided_per_column_leaves_out_missing_subjects():
    rng = np.random.default_rng(5)
    a = rng.random((8, 4))
    b = a - rng.random((8, 4)) * 0.1
    b[:, 2] = a[:, 2]  # no difference at all: no test
    a[0, 3] = np.nan  # a missing subject is left out of that column only
    result = paired_wilcoxon(a, b, alternative="greater")
    for column in (0, 1):
        expected = wilcoxon(a[:, column], b[:, column], alternative="greater")
        assert result.statistic[column] == expected.statistic
        assert result.p_value[column] == pytest.approx(expected.pvalue)
    assert np.isnan(result.statistic[2]) and np.isnan(result.p_value[2])
    expected = wilcoxon(a[1:, 3], b[1:, 3], alternative="greater")
    assert result.p_value[3] == pytest.approx(expected.pvalue) and result.n[3] == 7
    with pytest.raises(InputError, match="alternative"):
        paired_wilcoxon(a, b, alternative="bigger")
