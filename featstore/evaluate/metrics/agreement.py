"""Do similarity metrics rank models (or layers) alike? Kendall's W and rank correlations.

A score table has one row per metric (the "raters") and one column per model or layer
(the "objects"). Each metric's scores are ranked (average ranks for ties; the direction
does not matter to W or to the correlations as long as every metric means "higher =
more similar"). Kendall's coefficient of concordance W is 1 when every metric ranks
the objects the same way and 0 when the rank sums are all equal; the pairwise Spearman
and Kendall (tau-b) correlations say which metrics agree with which.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2 as chi2_distribution
from scipy.stats import kendalltau, rankdata

from featstore.errors import InputError


def _check_table(scores: np.ndarray) -> np.ndarray:
    table = np.asarray(scores, dtype=np.float64)
    if table.ndim != 2:
        raise InputError(f"scores has shape {table.shape}; expected (metric, model-or-layer)")
    if table.shape[0] < 2 or table.shape[1] < 2:
        raise InputError(
            f"scores has shape {table.shape}; rank agreement needs at least 2 metrics and "
            "2 models or layers"
        )
    if not np.isfinite(table).all():
        row, column = np.argwhere(~np.isfinite(table))[0]
        raise InputError(f"scores[{row}, {column}] is not finite; expected a score everywhere")
    return table


def _tie_term(ranks: np.ndarray) -> float:
    """``Σ (t³ - t)`` over the groups of ``t`` tied values of one rater."""
    _, counts = np.unique(ranks, return_counts=True)
    return float(np.sum(counts.astype(np.float64) ** 3 - counts))


def kendalls_w(scores: np.ndarray) -> float:
    """Kendall's W of ``m`` raters (rows) over ``n`` objects (columns), tie-corrected.

    ``W = 12 S / (m² (n³ - n) - m Σ_j T_j)`` with ``S`` the sum of squared deviations of the
    objects' rank sums from their mean and ``T_j = Σ (t³ - t)`` over rater ``j``'s ties.
    Friedman's chi² is ``m (n - 1) W``. NaN when every rater ties every object.

    Parameters
    ----------
    scores : ndarray, shape (m, n)
        Scores of ``n`` objects (models or layers) by ``m`` raters (metrics); higher ranks
        higher.

    Returns
    -------
    float
        W in [0, 1]: 1 when every rater ranks the objects alike, 0 for no agreement.

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.evaluate.metrics import kendalls_w
    >>> kendalls_w(np.array([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]]))
    1.0
    """
    table = _check_table(scores)
    m, n = table.shape
    ranks = np.apply_along_axis(rankdata, 1, table)
    rank_sums = ranks.sum(axis=0)
    spread = float(np.sum((rank_sums - rank_sums.mean()) ** 2))
    ties = sum(_tie_term(row) for row in ranks)
    denominator = m**2 * (n**3 - n) - m * ties
    return float(12.0 * spread / denominator) if denominator > 0 else float("nan")


def _rank_correlations(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, m) Spearman and Kendall tau-b matrices; NaN next to a metric whose scores tie."""
    m = table.shape[0]
    ranks = np.apply_along_axis(rankdata, 1, table)
    constant = np.ptp(table, axis=1) == 0
    centred = ranks - ranks.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        spearman = (centred @ centred.T) / np.outer(norms, norms)
    kendall = np.full((m, m), np.nan)
    for i in range(m):
        for j in range(i, m):
            if not (constant[i] or constant[j]):
                kendall[i, j] = kendall[j, i] = kendalltau(table[i], table[j]).statistic
    spearman[constant] = np.nan
    spearman[:, constant] = np.nan
    return spearman, kendall


@dataclass(frozen=True)
class RankAgreement:
    """Agreement of several metrics' rankings of the same models or layers.

    Attributes
    ----------
    kendall_w : float
        Kendall's coefficient of concordance (tie-corrected), 0..1.
    chi2 : float
        Friedman's statistic ``m (n - 1) W``.
    p_value : float
        Its chi² (``n - 1`` degrees of freedom) p-value: a large-sample approximation that
        is poor for fewer than ~7 objects.
    spearman : ndarray, shape (n_metrics, n_metrics)
        Pairwise Spearman correlations of the metrics' scores.
    kendall : ndarray, shape (n_metrics, n_metrics)
        Pairwise Kendall tau-b (as :func:`scipy.stats.kendalltau`).
    """

    kendall_w: float
    chi2: float
    p_value: float
    spearman: np.ndarray
    kendall: np.ndarray


def rank_agreement(scores: np.ndarray) -> RankAgreement:
    """Kendall's W and pairwise rank correlations of a (metric, model-or-layer) table.

    Pass ``score_layers(...).scores.T`` to compare the metrics' rankings of a model's
    layers, or a (metric, model) table of each model's best score.

    Parameters
    ----------
    scores : ndarray, shape (n_metrics, n_objects)
        Each metric's score of each model or layer.

    Returns
    -------
    RankAgreement
        ``kendall_w``, Friedman's ``chi2`` and its ``p_value``, and the pairwise
        ``spearman`` and ``kendall`` (tau-b) matrices between metrics.

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.evaluate.metrics import rank_agreement
    >>> table = np.array([[0.1, 0.4, 0.3], [0.2, 0.9, 0.5], [0.5, 0.6, 0.7]])
    >>> round(rank_agreement(table).kendall_w, 3)
    0.778
    """
    table = _check_table(scores)
    m, n = table.shape
    w = kendalls_w(table)
    chi2 = m * (n - 1) * w
    spearman, kendall = _rank_correlations(table)
    return RankAgreement(
        kendall_w=w,
        chi2=chi2,
        p_value=float(chi2_distribution.sf(chi2, n - 1)),
        spearman=spearman,
        kendall=kendall,
    )
