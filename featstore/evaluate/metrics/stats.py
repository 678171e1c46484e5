"""Significance of encoding results: permutation tests, FDR, paired tests across subjects.

* :func:`permutation_test` — is a config's test-set r above chance, per ROI? The null
  keeps the autocorrelation of both time series: the predictions are permuted in blocks
  of consecutive TRs (default 10 TRs, longer than the hemodynamic response) or
  circularly shifted, never TR by TR (a TR-wise shuffle of smooth series gives far too
  narrow a null and p-values that are much too small).
* :func:`fdr_bh` — Benjamini–Hochberg adjusted p-values (q) across ROIs.
* :func:`paired_wilcoxon` — two configs compared across subjects (paired Wilcoxon
  signed-rank) with effect sizes: median difference and matched-pairs rank-biserial r.

Everything here is plain numpy/scipy on arrays; :mod:`featstore.evaluate.runs.significance`
reads the store and writes the p-values back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import false_discovery_control

from featstore.errors import InputError
from featstore.evaluate.encoding.scoring import pearson_by_column

PERMUTATION_METHODS = ("block", "circular")
ALTERNATIVES = ("two-sided", "greater", "less")
# Bytes of float64 scratch per chunk of permutation draws (keeps peak memory bounded
# whatever the number of draws and ROIs).
_CHUNK_BYTES = 32 * 2**20


@dataclass(frozen=True)
class PermutationResult:
    """Outcome of :func:`permutation_test`.

    Attributes
    ----------
    r : ndarray, shape (n_subject, n_roi)
        Observed test-set Pearson r per subject and ROI (NaN for constant series).
    r_mean : ndarray, shape (n_roi,)
        Observed r averaged over subjects (the value brain maps show).
    p_subject : ndarray, shape (n_subject, n_roi)
        One-sided p-value of each subject's r.
    p_mean : ndarray, shape (n_roi,)
        One-sided p-value of the subject-mean r, every subject's predictions permuted
        with the same draw (the stimulus, hence the prediction's time course, is shared).
    n_perm : int
        Number of null draws used (for ``"circular"``: possibly fewer, all shifts).
    method : str
    block : int
    seed : int
    """

    r: np.ndarray
    r_mean: np.ndarray
    p_subject: np.ndarray
    p_mean: np.ndarray
    n_perm: int
    method: str
    block: int
    seed: int


def _zscore_time(x: np.ndarray) -> np.ndarray:
    """Z-score along axis 1 (time) with the population std; constant series → NaN."""
    x = np.asarray(x, dtype=np.float64)
    centered = x - x.mean(axis=1, keepdims=True)
    norm = np.sqrt((centered**2).mean(axis=1, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, centered / np.where(norm > 0, norm, 1.0), np.nan)


def block_orders(n_blocks: int, n_perm: int, seed: int) -> np.ndarray:
    """Random orders of ``n_blocks`` blocks, one row per draw: shape (n_perm, n_blocks).

    Draw ``i`` is ``argsort`` of row ``i`` of ``default_rng(seed).random((n_perm,
    n_blocks))`` — a uniform random permutation, generated for all draws at once.
    """
    keys = np.random.default_rng(seed).random((n_perm, n_blocks))
    return np.argsort(keys, axis=1, kind="stable")


def circular_shifts(n_time: int, n_perm: int, min_shift: int, seed: int) -> np.ndarray:
    """Shifts (in TRs) of the circular-shift null: all admissible ones, or a sample.

    Admissible shifts are ``min_shift .. n_time - min_shift`` (a shift near 0 or
    ``n_time`` leaves the series aligned with itself). When ``n_perm`` is at least their
    number, all of them are used (an exact enumeration); otherwise ``n_perm`` distinct
    shifts are drawn with ``default_rng(seed).choice(..., replace=False)``.
    """
    admissible = np.arange(min_shift, n_time - min_shift + 1)
    if admissible.size == 0:
        raise InputError(
            f"the test part has {n_time} TRs: too short for circular shifts of at least "
            f"{min_shift} TRs"
        )
    if n_perm >= admissible.size:
        return admissible
    return np.sort(np.random.default_rng(seed).choice(admissible, size=n_perm, replace=False))


def _null_block(pz: np.ndarray, yz: np.ndarray, block: int, orders: np.ndarray) -> np.ndarray:
    """Null r of one subject under block permutations: shape (n_perm, n_roi).

    With blocks of equal length, the r of a block permutation is a sum of block-by-block
    cross products ``C[a, b] = Σ_j p[a·B + j] · y[b·B + j]``: C is computed once
    (n_blocks² × n_roi) and each draw only sums n_blocks of its entries. The last
    ``n_time mod B`` TRs stay in place (their product enters every draw unchanged).
    """
    n_time, n_roi = pz.shape
    n_blocks = n_time // block
    main = n_blocks * block
    p_blocks = pz[:main].reshape(n_blocks, block, n_roi)
    y_blocks = yz[:main].reshape(n_blocks, block, n_roi)
    cross = np.einsum("ajv,bjv->abv", p_blocks, y_blocks)
    tail = (pz[main:] * yz[main:]).sum(axis=0)
    destination = np.arange(n_blocks)
    n_perm = orders.shape[0]
    null = np.empty((n_perm, n_roi))
    step = max(1, _CHUNK_BYTES // (8 * n_blocks * max(n_roi, 1)))
    for start in range(0, n_perm, step):
        chunk = orders[start : start + step]
        # Draw d puts source block orders[d, b] at destination block b.
        null[start : start + step] = cross[chunk, destination].sum(axis=1)
    return (null + tail) / n_time


def _null_circular(pz: np.ndarray, yz: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Null r of one subject for the given circular shifts: shape (n_shift, n_roi).

    ``r_k = mean_t p[(t - k) mod T] · y[t]`` for every k at once through the FFT
    (circular cross-correlation), then the requested shifts are picked.
    """
    n_time = pz.shape[0]
    spectrum = np.fft.rfft(yz, axis=0) * np.conj(np.fft.rfft(pz, axis=0))
    correlation = np.fft.irfft(spectrum, n=n_time, axis=0)
    return correlation[shifts] / n_time


def permutation_test(
    predictions: np.ndarray,
    observed: np.ndarray,
    *,
    n_perm: int = 10_000,
    method: str = "block",
    block: int = 10,
    seed: int = 0,
) -> PermutationResult:
    """Permutation test of test-set Pearson r, per subject and ROI and for the subject mean.

    Parameters
    ----------
    predictions : ndarray, shape (n_subject, n_time, n_roi)
        Predicted test-set responses (``EncodingResult.predictions``). Pass them in
        the units the model was scored in (the evaluator's standardised units), or in
        float64: float32 values around a large offset lose the prediction's variation.
    observed : ndarray, shape (n_subject, n_time, n_roi)
        Measured responses on the same test TRs (``EncodingResult.observed``).
    n_perm : int
        Null draws. The smallest p-value is 1/(n_perm+1), and after Benjamini–Hochberg
        over m ROIs of which k carry signal the smallest q is about m / (k·(n_perm+1)):
        with 360 ROIs, 1000 draws cannot pass q < 0.05 unless more than 7 ROIs do, hence
        the default of 10 000 (cheap: the draws are vectorized).
    method : {"block", "circular"}
        ``"block"``: the predictions are cut into consecutive blocks of ``block`` TRs
        whose order is shuffled (the last ``n_time mod block`` TRs stay in place).
        ``"circular"``: the predictions are rotated by a random shift of at least
        ``block`` TRs; a test part of T TRs has only T - 2·block + 1 such shifts, all of
        them are used when ``n_perm`` is larger.
    block : int
        Block length (``"block"``) or smallest shift (``"circular"``), in TRs. Blocks
        should outlast the autocorrelation (10 TRs = 15 s at TR 1.5 s), and the test part
        must hold enough of them: the smallest reachable p-value is about
        1 / (number of distinct orders), so a few blocks cannot give significance after
        FDR over hundreds of ROIs (fewer orders than draws is refused).
    seed : int
        Seed of numpy's ``default_rng``; the same seed gives the same draws.

    Returns
    -------
    PermutationResult
        p-values ``(1 + #{null ≥ observed}) / (1 + n_draws)``: one-sided (is r larger
        than chance?), never 0. NaN where a series is constant.

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.evaluate.metrics import permutation_test
    >>> observed = np.random.default_rng(0).standard_normal((2, 60, 3))  # (subject, TR, roi)
    >>> result = permutation_test(observed + np.random.rand(2, 60, 3), observed, n_perm=200)
    >>> result.p_subject.shape, bool((result.p_mean < 0.05).all())
    ((2, 3), True)
    """
    predictions = np.asarray(predictions)
    observed = np.asarray(observed)
    if predictions.ndim != 3 or predictions.shape != observed.shape:
        raise InputError(
            f"predictions {predictions.shape} and observed responses {observed.shape} must "
            "have the same (subject, time, roi) shape"
        )
    if method not in PERMUTATION_METHODS:
        raise InputError(f"permutation method {method!r}: expected one of {PERMUTATION_METHODS}")
    if n_perm < 1:
        raise InputError(f"n_perm {n_perm}: expected at least 1 draw")
    n_subject, n_time, n_roi = predictions.shape
    if block < 1 or (method == "block" and n_time < 2 * block):
        raise InputError(
            f"block of {block} TRs for a test part of {n_time} TRs: expected 1 <= block and "
            "at least two blocks"
        )
    if method == "block" and math.factorial(n_time // block) < n_perm:
        raise InputError(
            f"a test part of {n_time} TRs has {n_time // block} blocks of {block} TRs, only "
            f"{math.factorial(n_time // block)} orders for {n_perm} draws; use shorter blocks"
        )
    pz = _zscore_time(predictions)
    yz = _zscore_time(observed)
    # The observed statistic by the evaluator's own formula, so that it equals the run's r.
    r = np.stack([pearson_by_column(observed[s], predictions[s]) for s in range(n_subject)])
    if method == "block":
        draws = block_orders(n_time // block, n_perm, seed)
    else:
        draws = circular_shifts(n_time, n_perm, block, seed)
    n_draws = draws.shape[0]
    exceed = np.zeros((n_subject, n_roi))
    null_sum = np.zeros((n_draws, n_roi))
    for s in range(n_subject):
        if method == "block":
            null = _null_block(pz[s], yz[s], block, draws)
        else:
            null = _null_circular(pz[s], yz[s], draws)
        exceed[s] = (null >= r[s] - 1e-12).sum(axis=0)
        null_sum += null
    with np.errstate(invalid="ignore"):
        p_subject = np.where(np.isnan(r), np.nan, (1.0 + exceed) / (1.0 + n_draws))
        r_mean = r.mean(axis=0)
        null_mean = null_sum / n_subject
        p_mean = (1.0 + (null_mean >= r_mean - 1e-12).sum(axis=0)) / (1.0 + n_draws)
    p_mean = np.where(np.isnan(r_mean), np.nan, p_mean)
    return PermutationResult(
        r=r,
        r_mean=r_mean,
        p_subject=p_subject,
        p_mean=p_mean,
        n_perm=int(n_draws),
        method=method,
        block=int(block),
        seed=int(seed),
    )


def check_fdr_level(alpha: float) -> float:
    """``alpha`` if it is an FDR level strictly between 0 and 1, else :class:`InputError`."""
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise InputError(f"alpha={alpha!r}: expected an FDR level between 0 and 1, e.g. 0.05")
    return float(alpha)


def fdr_bh(p_values: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values) along ``axis``; NaN stays NaN.

    scipy's ``false_discovery_control(method="bh")`` over the non-NaN p-values of each
    slice (m = their number) — equal to statsmodels' ``multipletests(p,
    method="fdr_bh")[1]``. An ROI is significant at FDR level α when q < α.

    Parameters
    ----------
    p_values : array-like
        p-values, NaN where there is none.
    axis : int
        The axis of the family of tests (e.g. ROIs).

    Returns
    -------
    numpy.ndarray
        q-values.

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.evaluate.metrics import fdr_bh
    >>> fdr_bh(np.array([0.01, 0.04, 0.03, np.nan]))
    array([0.03, 0.04, 0.04,  nan])
    """
    p = np.moveaxis(np.asarray(p_values, dtype=np.float64), axis, -1)
    if np.any((p < 0) | (p > 1)):
        raise InputError("p-values must lie in [0, 1]")
    flat = p.reshape(-1, p.shape[-1]) if p.ndim else p.reshape(1, 1)
    q = np.full_like(flat, np.nan)
    finite = ~np.isnan(flat)
    whole = finite.all(axis=1)
    if whole.any() and flat.shape[1]:
        q[whole] = false_discovery_control(flat[whole], axis=1, method="bh")
    for row in np.flatnonzero(~whole & finite.any(axis=1)):
        q[row, finite[row]] = false_discovery_control(flat[row, finite[row]], method="bh")
    return np.moveaxis(q.reshape(p.shape), -1, axis)


@dataclass(frozen=True)
class PairedComparison:
    """Outcome of :func:`paired_wilcoxon` (scalars, or arrays over the remaining axes).

    Attributes
    ----------
    n : int or ndarray
        Subjects with both values (non-NaN).
    mean_a, mean_b : float or ndarray
        Means over subjects.
    median_difference : float or ndarray
        Median over subjects of ``a - b``.
    rank_biserial : float or ndarray
        Matched-pairs rank-biserial correlation ``(T+ - T-) / (T+ + T-)`` from the
        signed ranks of the non-zero differences: +1 when every subject has a > b, -1
        when every subject has a < b.
    statistic : float or ndarray
        scipy's Wilcoxon statistic (the smaller rank sum for the two-sided test).
    p_value : float or ndarray
    """

    n: np.ndarray
    mean_a: np.ndarray
    mean_b: np.ndarray
    median_difference: np.ndarray
    rank_biserial: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray


def rank_biserial(differences: np.ndarray, *, axis: int = 0) -> np.ndarray:
    """Matched-pairs rank-biserial correlation of paired differences along ``axis``.

    Zero differences are dropped (as the Wilcoxon test's default ``zero_method="wilcox"``
    does); tied absolute differences get average ranks. NaN when no difference is left.
    """
    from scipy.stats import rankdata

    d = np.moveaxis(np.asarray(differences, dtype=np.float64), axis, 0)
    magnitude = np.where((d == 0) | np.isnan(d), np.nan, np.abs(d))
    ranks = rankdata(magnitude, axis=0, nan_policy="omit")
    positive = np.nansum(np.where(d > 0, ranks, 0.0), axis=0)
    negative = np.nansum(np.where(d < 0, ranks, 0.0), axis=0)
    total = positive + negative
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (positive - negative) / np.where(total > 0, total, 1), np.nan)


def paired_wilcoxon(
    a: np.ndarray,
    b: np.ndarray,
    *,
    axis: int = 0,
    alternative: str = "two-sided",
) -> PairedComparison:
    """Paired Wilcoxon signed-rank test of ``a`` against ``b`` across subjects.

    Parameters
    ----------
    a, b : array-like
        Paired values, subjects along ``axis`` (e.g. per-subject mean r of two configs,
        shape (n_subject,), or per subject and ROI, shape (n_subject, n_roi)).
    axis : int
        The subject axis.
    alternative : {"two-sided", "greater", "less"}
        ``"greater"`` tests whether a tends to exceed b (e.g. the r of the original
        features over that of the residual ones in :mod:`featstore.evaluate.encoding.residualize`).

    Returns
    -------
    PairedComparison
        p-values are scipy's ``wilcoxon(a, b, zero_method="wilcox")`` (exact null
        distribution for small samples without ties or zeros, normal approximation
        otherwise). Subjects with a NaN in either value are left out.

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.evaluate.metrics import paired_wilcoxon
    >>> a = np.array([0.21, 0.18, 0.25, 0.30, 0.22, 0.19])  # mean r per subject, config A
    >>> paired_wilcoxon(a, a - 0.02, alternative="greater").p_value  # config B always lower
    0.015625
    """
    from scipy.stats import wilcoxon

    a = np.moveaxis(np.asarray(a, dtype=np.float64), axis, 0)
    b = np.moveaxis(np.asarray(b, dtype=np.float64), axis, 0)
    if a.shape != b.shape:
        raise InputError(f"paired values must have the same shape, got {a.shape} and {b.shape}")
    if alternative not in ALTERNATIVES:
        raise InputError(f"alternative {alternative!r}: expected one of {', '.join(ALTERNATIVES)}")
    if a.ndim == 0 or a.shape[0] < 2:
        raise InputError(f"a paired test needs at least 2 subjects, got shape {a.shape}")
    out_shape = a.shape[1:]
    a2 = a.reshape(a.shape[0], -1)
    b2 = b.reshape(b.shape[0], -1)
    valid = ~(np.isnan(a2) | np.isnan(b2))
    d = np.where(valid, a2 - b2, np.nan)
    # Columns whose differences are all zero (or missing) have no signed ranks: their
    # test is undefined and stays NaN instead of reaching scipy's 0/0.
    testable = np.sum(valid & (d != 0), axis=0) > 0
    statistic = np.full(d.shape[1], np.nan)
    p_value = np.full(d.shape[1], np.nan)
    if testable.any():
        test = wilcoxon(
            a2[:, testable],
            b2[:, testable],
            axis=0,
            zero_method="wilcox",
            alternative=alternative,
            nan_policy="omit",
        )
        statistic[testable] = test.statistic
        p_value[testable] = test.pvalue
    has_any = valid.any(axis=0)
    median = np.full(d.shape[1], np.nan)
    mean_a = np.full(d.shape[1], np.nan)
    mean_b = np.full(d.shape[1], np.nan)
    median[has_any] = np.nanmedian(d[:, has_any], axis=0)
    mean_a[has_any] = np.nanmean(np.where(valid, a2, np.nan)[:, has_any], axis=0)
    mean_b[has_any] = np.nanmean(np.where(valid, b2, np.nan)[:, has_any], axis=0)

    def shaped(values: np.ndarray) -> np.ndarray:
        return values.reshape(out_shape) if out_shape else values.reshape(()).item()

    return PairedComparison(
        n=shaped(valid.sum(axis=0)),
        mean_a=shaped(mean_a),
        mean_b=shaped(mean_b),
        median_difference=shaped(median),
        rank_biserial=shaped(rank_biserial(d, axis=0)),
        statistic=shaped(statistic),
        p_value=shaped(p_value),
    )
