"""Representational similarity analysis (RSA) on condensed dissimilarity vectors.

A representational dissimilarity matrix (RDM) over ``n`` items (TRs, stimulus segments or
words) is kept as its condensed upper triangle, in the order of
:func:`scipy.spatial.distance.pdist`: pairs ``(0, 1), (0, 2), …, (0, n-1), (1, 2), …``.
2249 TRs give 2.5 M pairs, i.e. 10 MB in float32 instead of 40 MB for the square float64
matrix; RDMs are built by blocks of rows so no full ``n × n`` float64 copy is needed.

Comparisons (``spearman``, ``pearson``, ``kendall`` = Kendall's tau-a) reduce every RDM to a
centred, unit-norm vector once (ranks first for Spearman), so each comparison, and each
permutation of a permutation test, is one dot product.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import squareform
from scipy.stats import kendalltau, rankdata

from featstore.errors import InputError

DISTANCES = ("correlation", "cosine", "euclidean")
COMPARISONS = ("spearman", "pearson", "kendall")
# pairs handled per step when gathering or multiplying condensed vectors: bounds the float64
# temporaries to a few MB whatever the number of items
PAIR_CHUNK = 1 << 18
# residual norm (of a unit vector) below which the controls explain an RDM entirely
_EXPLAINED_NORM = 1e-3


def n_pairs(n_items: int) -> int:
    """Number of pairs ``n (n - 1) / 2`` in the condensed RDM of ``n_items`` items."""
    return n_items * (n_items - 1) // 2


def n_items_of(condensed: np.ndarray) -> int:
    """Number of items whose condensed RDM has ``len(condensed)`` entries."""
    size = int(np.shape(condensed)[-1])
    n = (1 + math.isqrt(1 + 8 * size)) // 2
    if n_pairs(n) != size:
        raise InputError(f"a condensed RDM has {size} entries, which is not n (n - 1) / 2")
    return n


def segment_average(
    values: np.ndarray, segment_ids: np.ndarray, axis: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Average ``values`` over the positions that share a segment id.

    Used to bring fMRI (per TR) and features (per TR or per word) to the same items,
    e.g. to average the TRs of each sentence, or to give each word the TR it falls in.

    Parameters
    ----------
    values : ndarray
        Any array; ``values.shape[axis]`` must equal ``len(segment_ids)``.
    segment_ids : ndarray of int, shape (n,)
        Segment of each position; negative ids drop the position.
    axis : int
        Axis along which to average.

    Returns
    -------
    averaged : ndarray of float64
        ``values`` with ``axis`` replaced by one entry per segment, in increasing id order.
    segments : ndarray of int64
        The sorted segment ids.
    """
    ids = np.asarray(segment_ids)
    values = np.asarray(values)
    if ids.ndim != 1 or ids.shape[0] != values.shape[axis]:
        raise InputError(
            f"segment_ids has shape {ids.shape} but values have {values.shape[axis]} "
            f"entries along axis {axis}; expected one id per entry"
        )
    if not np.issubdtype(ids.dtype, np.integer):
        raise InputError(f"segment_ids must be integers, got dtype {ids.dtype}")
    keep = np.flatnonzero(ids >= 0)
    if keep.size == 0:
        raise InputError("segment_ids has no non-negative id; nothing to average")
    order = keep[np.argsort(ids[keep], kind="stable")]
    sorted_ids = ids[order]
    segments, starts, counts = np.unique(sorted_ids, return_index=True, return_counts=True)
    moved = np.moveaxis(values, axis, 0)[order].astype(np.float64, copy=False)
    sums = np.add.reduceat(moved, starts, axis=0)
    averaged = sums / counts.reshape((-1,) + (1,) * (moved.ndim - 1))
    return np.moveaxis(averaged, 0, axis), segments.astype(np.int64)


def _prepare_rows(values: np.ndarray, distance: str) -> np.ndarray:
    """Rows transformed so that the distance is a function of one dot product."""
    if distance not in DISTANCES:
        raise InputError(f"distance {distance!r}: expected one of {', '.join(DISTANCES)}")
    rows = np.array(values, dtype=np.float64, copy=True)
    if rows.ndim != 2 or rows.shape[0] < 2:
        raise InputError(
            f"an RDM needs a 2-D (item, channel) array of >= 2 items, got {rows.shape}"
        )
    if not np.all(np.isfinite(rows)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(rows), axis=1))[0])
        raise InputError(f"item {bad} has a NaN or infinite value; expected finite values")
    if distance == "euclidean":
        return rows
    if distance == "correlation":
        rows -= rows.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(rows, axis=1)
    # an item with no variance (e.g. a TR without words, or a single channel) has no
    # correlation / cosine with anything: refuse rather than emit NaNs into the ranks
    flat = np.flatnonzero(norms <= 1e-12 * max(1.0, float(np.max(np.abs(values)))))
    if flat.size:
        raise InputError(
            f"item {int(flat[0])} (and {flat.size - 1} more) has zero "
            f"{'variance' if distance == 'correlation' else 'norm'} across "
            f"{rows.shape[1]} channels; {distance} distance is undefined — drop those items "
            "(e.g. TRs without words) or use distance='euclidean'"
        )
    rows /= norms[:, None]
    return rows


def rdm(
    values: np.ndarray,
    distance: str = "correlation",
    *,
    block_bytes: int = 16 << 20,
    dtype: np.dtype | type = np.float32,
) -> np.ndarray:
    """Condensed RDM of the rows of ``values`` (items × channels).

    Parameters
    ----------
    values : ndarray, shape (n_items, n_channels)
        One row per item (TR, segment or word), e.g. a layer's features or an ROI pattern.
    distance : {"correlation", "cosine", "euclidean"}
        As in :func:`scipy.spatial.distance.pdist`: ``1 - r``, ``1 - cos`` or the L2 norm.
    block_bytes : int
        Size of the float64 block of dot products computed at once (rows × items).
    dtype : dtype
        Storage dtype of the result (float32 halves the memory of float64).

    Returns
    -------
    ndarray, shape (n_items (n_items - 1) / 2,)
        The condensed RDM in :func:`~scipy.spatial.distance.pdist` order.
    """
    rows = _prepare_rows(values, distance)
    n = rows.shape[0]
    out = np.empty(n_pairs(n), dtype=dtype)
    sq_norms = np.einsum("ij,ij->i", rows, rows) if distance == "euclidean" else None
    block = max(1, int(block_bytes) // (8 * n))
    offset = 0
    for start in range(0, n - 1, block):
        stop = min(start + block, n - 1)
        # dot products of the block's rows with every later row only (upper triangle)
        gram = rows[start:stop] @ rows[start:].T
        if distance == "euclidean":
            gram *= -2.0
            gram += sq_norms[start:stop, None]
            gram += sq_norms[None, start:]
            np.maximum(gram, 0.0, out=gram)  # rounding can make near-zero squares negative
            np.sqrt(gram, out=gram)
        else:
            np.subtract(1.0, gram, out=gram)
            np.clip(gram, 0.0, 2.0, out=gram)
        for row in range(start, stop):
            length = n - row - 1
            out[offset : offset + length] = gram[row - start, row - start + 1 :]
            offset += length
    return out


def _standardize(vector: np.ndarray, what: str) -> np.ndarray:
    """Centred, unit-norm float64 copy (so a Pearson correlation is a dot product)."""
    centred = np.asarray(vector, dtype=np.float64) - np.mean(vector, dtype=np.float64)
    norm = np.linalg.norm(centred)
    if not np.isfinite(norm) or norm == 0.0:
        raise InputError(f"{what} is constant (or not finite); a correlation is undefined")
    return centred / norm


def standardize_rdm(
    condensed: np.ndarray, method: str = "spearman", *, dtype: np.dtype | type = np.float32
) -> np.ndarray:
    """An RDM as a centred unit-norm vector: Pearson of two such vectors is their dot product.

    ``method="spearman"`` ranks the entries first (average ranks for ties), so the dot
    product is Spearman's rho. Ranks are exact in float32 up to 2^23 pairs (~4100 items).
    """
    if method not in ("spearman", "pearson"):
        raise InputError(f"method {method!r}: expected 'spearman' or 'pearson' here")
    values = rankdata(condensed) if method == "spearman" else np.asarray(condensed)
    return _standardize(values, "an RDM").astype(dtype, copy=False)


def _chunked_dot(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``left @ right.T`` for (m, P) and (k, P) float32 rows, accumulated in float64."""
    left = np.atleast_2d(left)
    right = np.atleast_2d(right)
    out = np.zeros((left.shape[0], right.shape[0]))
    for start in range(0, left.shape[1], PAIR_CHUNK):
        part = slice(start, start + PAIR_CHUNK)
        out += left[:, part].astype(np.float64) @ right[:, part].astype(np.float64).T
    return out


def _tied_pairs(counts: np.ndarray) -> int:
    """Number of tied pairs among groups of the given sizes."""
    counts = counts.astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def kendall_tau_a(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-a, ``(concordant - discordant) / (n (n - 1) / 2)``.

    Tied pairs count as neither concordant nor discordant and stay in the denominator
    (unlike tau-b), which is the variant recommended for comparing RDMs when a model
    predicts ties (Nili et al. 2014). Without ties it equals tau-b. Computed from scipy's
    tau-b (O(n log n)) and the tie counts: ``C - D = tau_b · sqrt((n0 - n1)(n0 - n2))``
    with ``n0`` pairs, ``n1`` and ``n2`` pairs tied in x and in y.
    """
    x = np.asarray(x).ravel()
    y = np.asarray(y).ravel()
    if x.shape != y.shape:
        raise InputError(f"kendall_tau_a: x has {x.size} values but y has {y.size}")
    n = x.size
    if n < 2:
        raise InputError("kendall_tau_a needs at least 2 values")
    total = n_pairs(n)
    untied_x = total - _tied_pairs(np.unique(x, return_counts=True)[1])
    untied_y = total - _tied_pairs(np.unique(y, return_counts=True)[1])
    if untied_x == 0 or untied_y == 0:  # one side constant: no pair is (dis)concordant
        return 0.0
    tau_b = kendalltau(x, y, variant="b").statistic
    return float(tau_b * math.sqrt(untied_x * untied_y) / total)


def compare_rdms(a: np.ndarray, b: np.ndarray, method: str = "spearman") -> float:
    """Similarity of two condensed RDMs: Spearman's rho, Pearson's r or Kendall's tau-a."""
    if method not in COMPARISONS:
        raise InputError(f"compare method {method!r}: expected one of {', '.join(COMPARISONS)}")
    if np.shape(a) != np.shape(b):
        raise InputError(f"RDMs have {np.size(a)} and {np.size(b)} pairs; expected equal")
    if method == "kendall":
        return kendall_tau_a(a, b)
    std_a = standardize_rdm(a, method, dtype=np.float64)
    std_b = standardize_rdm(b, method, dtype=np.float64)
    return float(_chunked_dot(std_a, std_b)[0, 0])


def _partial_from_correlations(corr: np.ndarray) -> float:
    """Partial correlation of variables 0 and 1 given the rest, from their correlation matrix."""
    precision = np.linalg.pinv(corr)
    return float(-precision[0, 1] / np.sqrt(precision[0, 0] * precision[1, 1]))


def partial_compare(
    a: np.ndarray, b: np.ndarray, controls: Sequence[np.ndarray], method: str = "spearman"
) -> float:
    """Partial correlation of two RDMs controlling for one or more other RDMs.

    Spearman: every RDM is rank-transformed, then the partial Pearson correlation is taken
    (equivalently: correlate the residuals of ranks(a) and ranks(b) after a least-squares
    fit on the control ranks). Kendall's partial tau is not offered.
    """
    if method not in ("spearman", "pearson"):
        raise InputError(f"partial RSA supports 'spearman' or 'pearson', got {method!r}")
    vectors = [standardize_rdm(v, method, dtype=np.float64) for v in (a, b, *controls)]
    stacked = np.stack(vectors)
    return _partial_from_correlations(_chunked_dot(stacked, stacked))


def permutation_indices(n_items: int, n_perm: int, *, block: int = 1, seed: int = 0) -> np.ndarray:
    """Seeded item permutations, optionally of whole blocks of consecutive items.

    ``block > 1`` shuffles blocks of ``block`` consecutive items (the last one may be
    shorter) and keeps their inside order, which preserves the autocorrelation of a time
    series within blocks: a plain permutation of TRs gives a null that is too narrow.

    Returns
    -------
    ndarray of int64, shape (n_perm, n_items)
    """
    if n_items < 2 or block < 1 or n_perm < 0:
        raise InputError(
            f"permutations need n_items >= 2, block >= 1 and n_perm >= 0; got "
            f"{n_items}, {block}, {n_perm}"
        )
    rng = np.random.default_rng(seed)
    starts = np.arange(0, n_items, block)
    if starts.size < 2:
        raise InputError(f"block {block} leaves a single block of {n_items} items to permute")
    out = np.empty((n_perm, n_items), dtype=np.int64)
    for k in range(n_perm):
        order = rng.permutation(starts.size)
        out[k] = np.concatenate([np.arange(s, min(s + block, n_items)) for s in starts[order]])
    return out


def permute_rdm(condensed: np.ndarray, permutation: np.ndarray) -> np.ndarray:
    """Condensed RDM(s) with items reordered: new item ``k`` is old item ``permutation[k]``.

    ``condensed`` may hold several RDMs along its first axis; each goes through its square
    form one at a time (n² values of its own dtype, 20 MB in float32 for 2249 items).
    """
    condensed = np.asarray(condensed)
    n = n_items_of(condensed)
    permutation = np.asarray(permutation)
    if permutation.shape != (n,) or not np.array_equal(np.sort(permutation), np.arange(n)):
        raise InputError(f"permutation must reorder 0..{n - 1}; got {permutation.size} values")
    out = np.empty_like(condensed)
    for row in np.ndindex(condensed.shape[:-1]):
        square = squareform(condensed[row], checks=False)
        out[row] = squareform(square.take(permutation, 0).take(permutation, 1), checks=False)
    return out


def lag_mask(n_items: int, min_lag: int) -> np.ndarray:
    """Which pairs of a condensed RDM are at least ``min_lag`` items apart (``j − i``).

    Items are time points (TRs or segments): neighbours are similar in any autocorrelated
    series, so model and brain RDMs share a near-diagonal structure that is not shared
    content. Leaving out pairs closer than the autocorrelation removes that confound.
    """
    if min_lag < 0:
        raise InputError(f"min_lag {min_lag}: expected >= 0 items")
    lags = np.concatenate([np.arange(1, n_items - i, dtype=np.int32) for i in range(n_items - 1)])
    return lags >= min_lag


def _restandardize(vectors: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Rows restricted to the kept pairs, centred and scaled to unit norm again, float32.

    One row at a time, so no masked copy of all the rows is made besides the result.
    """
    vectors = np.atleast_2d(vectors)
    out = np.empty((vectors.shape[0], int(mask.sum())), dtype=np.float32)
    for row, vector in enumerate(vectors):
        out[row] = _standardize(vector[mask], "an RDM restricted to the kept pairs")
    return out


@dataclass(frozen=True)
class LayerRSA:
    """RSA of several model RDMs (layers) with several brain RDMs (subjects).

    Attributes
    ----------
    rho : ndarray, shape (n_layers, n_subjects)
        Spearman / Pearson / tau-a (partial if controls were given) per layer and subject,
        over the kept pairs.
    mean : ndarray, shape (n_layers,)
        Mean of ``rho`` over subjects.
    statistic : ndarray, shape (n_layers,)
        The group statistic the permutations test: ``mean``, except with ``min_lag`` and
        spearman / pearson, where it is the product of each layer's kept-pair vector with
        the subjects' mean brain vector standardized over all pairs (permuting items
        commutes with that standardization, so the null is exact).
    p_value : ndarray, shape (n_layers,)
        One-sided permutation p-value of ``statistic`` per layer, ``(1 + #null >= obs) /
        (1 + n_perm)``; NaN without permutations.
    p_fwe : ndarray, shape (n_layers,)
        Same against the null of the maximum over layers (family-wise across layers).
    null : ndarray, shape (n_perm, n_layers)
        Null distribution of ``statistic``.
    """

    rho: np.ndarray
    mean: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    p_fwe: np.ndarray
    null: np.ndarray


@dataclass(frozen=True)
class _Residualizer:
    """Least-squares fits of standardized RDMs on standardized control RDMs.

    For unit, centred vectors the residual of ``v`` given controls ``Z`` is
    ``v - Zᵀ β`` with ``β = C⁻¹ r_zv`` (``C`` the controls' correlations), and its norm is
    ``sqrt(1 - r_vz C⁻¹ r_zv)``: every partial correlation follows from correlations.
    """

    inverse: np.ndarray  # C⁻¹ (pseudo-inverse), (K, K)

    def beta(self, control_v: np.ndarray) -> np.ndarray:
        """(K, m) coefficients of m vectors from their (K, m) correlations with the controls."""
        return self.inverse @ control_v

    def residual_norm(self, control_v: np.ndarray) -> np.ndarray:
        """(m,) norms of the residuals of m unit vectors; NaN for a vector the controls
        explain entirely (a model given itself has no partial correlation)."""
        explained = np.einsum("km,km->m", control_v, self.beta(control_v))
        norm = np.sqrt(np.clip(1.0 - explained, 0.0, None))
        # float32 RDMs leave ~1e-4 of a perfectly explained vector
        return np.where(norm > _EXPLAINED_NORM, norm, np.nan)


def _partial_matrix(
    model_brain: np.ndarray,
    control_model: np.ndarray,
    control_brain: np.ndarray,
    residualizer: _Residualizer,
) -> np.ndarray:
    """Partial correlations (layers × subjects): the correlations of the residuals.

    Their covariance is ``r_xy - r_xz C⁻¹ r_zy`` and their norms ``sqrt(1 - r_xz C⁻¹ r_zx)``.
    """
    covariance = model_brain - control_model.T @ residualizer.beta(control_brain)
    norms = np.outer(
        residualizer.residual_norm(control_model), residualizer.residual_norm(control_brain)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return covariance / norms


def rsa_layers(
    model_rdms: np.ndarray,
    brain_rdms: np.ndarray,
    *,
    method: str = "spearman",
    control_rdms: np.ndarray | None = None,
    n_perm: int = 0,
    block: int = 1,
    seed: int = 0,
    min_lag: int = 0,
) -> LayerRSA:
    """Layer-wise RSA of model RDMs against subjects' brain RDMs, with a permutation test.

    Parameters
    ----------
    model_rdms : ndarray, shape (n_layers, n_pairs)
        Condensed RDMs of each layer; for spearman / pearson pass them through
        :func:`standardize_rdm` first (float32 keeps 2249 TRs at 10 MB per layer).
    brain_rdms : ndarray, shape (n_subjects, n_pairs)
        Condensed brain RDMs (standardized likewise for spearman / pearson).
    method : {"spearman", "pearson", "kendall"}
        ``kendall`` takes the raw RDMs and computes tau-a per pair of vectors (seconds per
        comparison of 2.5 M pairs, each permutation repeats all of them: use few
        permutations, or segment-average the items).
    control_rdms : ndarray, shape (n_controls, n_pairs), optional
        Standardized RDMs to partial out of every comparison (spearman / pearson only).
    n_perm : int
        Number of permutations (0: no test). The brain items are permuted, the same way for
        every subject; the statistic is the mean over subjects. With controls, the brain
        residuals given the controls are permuted and correlated with the model residuals
        (Kennedy 1995; with thousands of items the same as Freedman-Lane to O(1/n_pairs)).
    block : int
        Permute blocks of ``block`` consecutive items (time series); 1 = plain permutation.
    seed : int
        Seed of the permutations.
    min_lag : int
        Leave out the pairs of items fewer than ``min_lag`` apart (:func:`lag_mask`; 0 or 1
        keeps every pair). Kept pairs are re-centred and re-scaled (for spearman the ranks
        stay those among all pairs, a negligible difference when few pairs are dropped).
    """
    model_rdms = np.atleast_2d(model_rdms)
    brain_rdms = np.atleast_2d(brain_rdms)
    if method not in COMPARISONS:
        raise InputError(f"compare method {method!r}: expected one of {', '.join(COMPARISONS)}")
    if model_rdms.shape[1] != brain_rdms.shape[1]:
        raise InputError(
            f"model RDMs have {model_rdms.shape[1]} pairs but brain RDMs have "
            f"{brain_rdms.shape[1]}; expected the same items"
        )
    controls = None if control_rdms is None else np.atleast_2d(control_rdms)
    if controls is not None:
        if method == "kendall":
            raise InputError("partial RSA supports 'spearman' or 'pearson', not 'kendall'")
        if controls.shape[1] != model_rdms.shape[1]:
            raise InputError(
                f"control RDMs have {controls.shape[1]} pairs but model RDMs have "
                f"{model_rdms.shape[1]}; expected the same items"
            )
    n_items = n_items_of(model_rdms[0])
    mask = lag_mask(n_items, min_lag) if min_lag > 1 else None
    if mask is not None and mask.sum() < 3:
        raise InputError(f"min_lag {min_lag} leaves {int(mask.sum())} of {n_items} items' pairs")
    permutations = permutation_indices(n_items, n_perm, block=block, seed=seed) if n_perm else []
    if method == "kendall":
        kept = (lambda rdms: rdms) if mask is None else (lambda rdms: rdms[:, mask])
        rho = _tau_matrix(kept(model_rdms), kept(brain_rdms))
        null = _kendall_null(model_rdms, brain_rdms, permutations, mask)
        statistic = rho.mean(axis=1)
    elif controls is None:
        rho, null, statistic = _plain_rsa(model_rdms, brain_rdms, permutations, mask)
    else:
        rho, null, statistic = _partial_rsa(model_rdms, brain_rdms, controls, permutations, mask)
    if n_perm:
        # a layer without a statistic (a model given itself) has no p and no part in the max
        undefined = np.isnan(statistic)
        p_value = (1 + (null >= statistic[None]).sum(axis=0)) / (1 + n_perm)
        maximum = null[:, ~undefined].max(axis=1) if (~undefined).any() else null[:, 0]
        p_fwe = (1 + (maximum[:, None] >= statistic[None]).sum(axis=0)) / (1 + n_perm)
        p_value[undefined] = np.nan
        p_fwe[undefined] = np.nan
    else:
        p_value = np.full(statistic.shape, np.nan)
        p_fwe = np.full(statistic.shape, np.nan)
    return LayerRSA(
        rho=rho,
        mean=rho.mean(axis=1),
        statistic=statistic,
        p_value=p_value,
        p_fwe=p_fwe,
        null=null,
    )


def _float32_dot(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``left @ right.T`` in float32 BLAS: several times faster than the float64 chunks,
    with errors ~1e-6 on unit vectors, ample for a null distribution."""
    return (np.atleast_2d(left) @ np.atleast_2d(right).T).astype(np.float64)


def _kept(vectors: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Standardized vectors restricted to the kept pairs (and standardized there again)."""
    return vectors if mask is None else _restandardize(vectors, mask)


def _stacked_kept(parts: Sequence[np.ndarray], mask: np.ndarray | None) -> np.ndarray:
    """The rows of several arrays, kept pairs only, in one array (one copy, not two)."""
    if mask is None:
        return np.concatenate(parts)
    out = np.empty((sum(len(p) for p in parts), int(mask.sum())), dtype=np.float32)
    start = 0
    for part in parts:
        out[start : start + len(part)] = _restandardize(part, mask)
        start += len(part)
    return out


def _kept_products(left: np.ndarray, brain: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``left @ kept(brain).T``, one subject's kept vector at a time (bounded memory)."""
    if mask is None:
        return _chunked_dot(left, brain)
    return np.column_stack([_chunked_dot(left, _kept(b[None], mask))[:, 0] for b in brain])


def _plain_rsa(
    model: np.ndarray, brain: np.ndarray, permutations, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RSA values, their null and the tested statistic (spearman / pearson, no controls).

    The mean over subjects of correlations with one model is the correlation with the
    subjects' mean (standardized) vector, so each permutation moves a single vector.
    """
    model_kept = _kept(model, mask)
    rho = _kept_products(model_kept, brain, mask)
    brain_mean = brain.mean(axis=0, keepdims=True)

    def statistic(vector: np.ndarray) -> np.ndarray:
        return _float32_dot(model_kept, vector if mask is None else vector[:, mask])[:, 0]

    null = np.array([statistic(permute_rdm(brain_mean, perm)) for perm in permutations])
    observed = rho.mean(axis=1) if mask is None else statistic(brain_mean)
    return rho, null.reshape(len(permutations), model.shape[0]), observed


def _partial_rsa(
    model: np.ndarray, brain: np.ndarray, controls: np.ndarray, permutations, mask
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Partial RSA, its null by permutation of residuals (Kennedy 1995), the statistic.

    The null permutes the brain residuals (given the controls) and correlates them with the
    model residuals. As for plain RSA the mean over subjects is linear in the brain side,
    so one vector, the mean of the subjects' standardized residuals, is permuted; its
    product with the model residual ``(y - Zᵀβ)/‖·‖`` needs only the model and control rows.
    With a mask the model side lives on the kept pairs and the brain residuals on all
    pairs (so that permuting commutes with computing them).
    """
    n_layers = model.shape[0]
    stacked = _stacked_kept([model, controls], mask)
    model_kept, controls_kept = stacked[:n_layers], stacked[n_layers:]
    residualizer = _Residualizer(np.linalg.pinv(_chunked_dot(controls_kept, controls_kept)))
    control_model = _chunked_dot(controls_kept, model_kept)
    products = _kept_products(stacked, brain, mask)
    rho = _partial_matrix(products[:n_layers], control_model, products[n_layers:], residualizer)
    observed = rho.mean(axis=1)
    null = np.empty((len(permutations), model.shape[0]))
    if len(permutations) == 0 and mask is None:
        return rho, null, observed
    full = (
        residualizer
        if mask is None
        else _Residualizer(np.linalg.pinv(_chunked_dot(controls, controls)))
    )
    control_brain = _chunked_dot(controls, brain)
    with np.errstate(divide="ignore"):
        weights = 1.0 / (brain.shape[0] * full.residual_norm(control_brain))
    # mean over subjects of x̃_s / ‖x̃_s‖ = Σ w_s x_s − Zᵀ Σ w_s β_s (float32 products: a
    # float64 weight vector would upcast the whole brain array)
    gamma = full.beta(control_brain) @ weights
    mean_residual = weights.astype(np.float32) @ brain - gamma.astype(np.float32) @ controls
    model_beta = residualizer.beta(control_model)  # (K, L)
    model_norm = residualizer.residual_norm(control_model)

    def statistic(vector: np.ndarray) -> np.ndarray:
        vector = vector if mask is None else vector[mask]
        products = _float32_dot(stacked, vector)[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            return (products[:n_layers] - model_beta.T @ products[n_layers:]) / model_norm

    for k, permutation in enumerate(permutations):
        null[k] = statistic(permute_rdm(mean_residual, permutation))
    return rho, null, observed if mask is None else statistic(mean_residual)


def _tau_matrix(model: np.ndarray, brain: np.ndarray) -> np.ndarray:
    return np.array([[kendall_tau_a(m, b) for b in brain] for m in model])


def _kendall_null(
    model: np.ndarray, brain: np.ndarray, permutations, mask: np.ndarray | None
) -> np.ndarray:
    """Mean tau-a over subjects under each permutation of the brain items.

    Permuting the brain items by π gives the same values as permuting the model items by
    π⁻¹, so without a mask the side with fewer RDMs is permuted (a mask is tied to item
    positions, so with one the brain is permuted).
    """
    null = np.empty((len(permutations), model.shape[0]))
    model_kept = model if mask is None else model[:, mask]
    for k, permutation in enumerate(permutations):
        if mask is not None or brain.shape[0] <= model.shape[0]:
            permuted = permute_rdm(brain, permutation)
            null[k] = _tau_matrix(model_kept, permuted if mask is None else permuted[:, mask]).mean(
                axis=1
            )
        else:
            inverse = np.argsort(permutation)
            null[k] = _tau_matrix(permute_rdm(model, inverse), brain).mean(axis=1)
    return null
