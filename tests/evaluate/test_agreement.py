"""Kendall's W and metric rank correlations against closed forms and scipy (M=4, N=9)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import friedmanchisquare, kendalltau, spearmanr

from featstore.errors import InputError
from featstore.evaluate.metrics.agreement import kendalls_w, rank_agreement

M, N = 4, 9


@pytest.fixture
def table():
    """Four metrics scoring nine layers: a shared trend plus metric-specific noise, one tie."""
    rng = np.random.default_rng(2)
    scores = np.linspace(0, 1, N)[None] + 0.4 * rng.standard_normal((M, N))
    scores[2, 3] = scores[2, 5]
    return scores


def test_w_closed_form_examples():
    # identical rankings: W = 1; opposite rankings of two raters: rank sums all equal, W = 0
    assert kendalls_w(np.array([[1, 2, 3, 4], [10, 20, 30, 40]])) == pytest.approx(1.0)
    assert kendalls_w(np.array([[1, 2, 3, 4], [4, 3, 2, 1]])) == pytest.approx(0.0)
    # ranks [1,3,2], [1,3,2], [1,2,3]: rank sums 3, 8, 7, S = 14, W = 12·14 / (9·24)
    table = np.array([[0.1, 0.4, 0.3], [0.2, 0.9, 0.5], [0.5, 0.6, 0.7]])
    assert kendalls_w(table) == pytest.approx(168 / 216)


def test_w_tie_correction_by_hand():
    # rater 2 ties objects 1 and 2: ranks [1,2,3,4], [1.5,1.5,3,4]; rank sums 2.5,3.5,6,8
    # S = 2.5² + 1.5² + 1² + 3² = 18.5; T = 2³ - 2 = 6; W = 12·18.5 / (4·60 - 2·6)
    table = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 6.0, 7.0]])
    assert kendalls_w(table) == pytest.approx(222 / 228)


def test_w_matches_friedman_chi_square(table):
    # Friedman: objects (layers) are the treatments, metrics the blocks; ties corrected
    result = rank_agreement(table)
    friedman = friedmanchisquare(*table.T)
    assert result.chi2 == pytest.approx(friedman.statistic, rel=1e-12)
    assert result.kendall_w == pytest.approx(friedman.statistic / (M * (N - 1)), rel=1e-12)
    assert result.p_value == pytest.approx(friedman.pvalue, rel=1e-10)


def test_pairwise_rank_correlations_match_scipy(table):
    result = rank_agreement(table)
    assert result.spearman.shape == result.kendall.shape == (M, M)
    for i in range(M):
        for j in range(M):
            assert result.spearman[i, j] == pytest.approx(
                spearmanr(table[i], table[j]).statistic, abs=1e-12
            )
            assert result.kendall[i, j] == pytest.approx(
                kendalltau(table[i], table[j]).statistic, abs=1e-12
            )


def test_a_metric_that_ties_everything_has_no_correlation(table):
    table = table.copy()
    table[1] = 0.5
    result = rank_agreement(table)
    assert np.isnan(result.spearman[1]).all() and np.isnan(result.kendall[:, 1]).all()
    assert np.isfinite(result.spearman[0, 2]) and np.isfinite(result.kendall_w)


def test_bad_tables_are_refused():
    with pytest.raises(InputError, match=r"scores has shape \(1, 3\)"):
        rank_agreement(np.ones((1, 3)))
    with pytest.raises(InputError, match="expected \\(metric, model-or-layer\\)"):
        rank_agreement(np.ones(3))
    with pytest.raises(InputError, match=r"scores\[1, 2\] is not finite"):
        rank_agreement(np.array([[1.0, 2.0, 3.0], [1.0, 2.0, np.nan]]))
