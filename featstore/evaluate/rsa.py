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

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from featstore.errors import InputError

DISTANCES = ("correlation", "cosine", "euclidean")
COMPARISONS = ("spearman", "pearson", "kendall")
# pairs handled per step when gathering or multiplying condensed vectors: bounds the float64
# temporaries to a few MB whatever the number of items
PAIR_CHUNK = 1 << 18
# smallest width of the merge passes in the inversion count; blocks this wide are counted by
# direct comparison, which is faster than the first few vectorised merge passes
_INVERSION_BASE = 32


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


def condensed_index(i: np.ndarray, j: np.ndarray, n_items: int) -> np.ndarray:
    """Position of pair ``(i, j)`` (``i != j``, either order) in the condensed vector."""
    lo = np.minimum(i, j).astype(np.int64)
    hi = np.maximum(i, j).astype(np.int64)
    return n_items * lo - lo * (lo + 1) // 2 + hi - lo - 1


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
    block_bytes: int = 32 << 20,
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


def _count_inversions(sequence: np.ndarray) -> int:
    """Number of pairs ``i < j`` with ``sequence[i] > sequence[j]`` (strict), O(n log² n).

    Bottom-up merge sort, vectorised: at each pass the array is sorted within runs of
    ``width``; for every element of a right run, the elements of its left partner run that
    are larger are counted with one :func:`numpy.searchsorted` over all runs at once (runs
    are made globally sortable by adding ``run_pair × M`` to the values).
    """
    values = np.asarray(sequence, dtype=np.int64)
    n = values.size
    if n < 2:
        return 0
    top = int(values.max()) + 1
    # pad with a value above all others so padding adds no inversion
    n_blocks = -(-n // _INVERSION_BASE)
    merged = np.full(n_blocks * _INVERSION_BASE, top, dtype=np.int64)
    merged[:n] = values
    blocks = merged.reshape(n_blocks, _INVERSION_BASE)
    total = 0
    for lag in range(1, _INVERSION_BASE):
        total += int(np.count_nonzero(blocks[:, :-lag] > blocks[:, lag:]))
    blocks.sort(axis=1)
    position = np.arange(merged.size, dtype=np.int64)
    stride = top + 1
    width = _INVERSION_BASE
    while width < merged.size:
        shift = width.bit_length() - 1
        pair = position >> (shift + 1)
        is_right = ((position >> shift) & 1).astype(bool)
        key = pair * stride + merged
        left_keys = key[~is_right]
        right_pair = pair[is_right]
        # a right run exists only after a full left run, so (pair + 1) * width left
        # elements sit in pairs <= this one
        not_greater = np.searchsorted(left_keys, key[is_right], side="right")
        total += int(((right_pair + 1) * width - not_greater).sum())
        key.sort(kind="stable")
        key -= pair * stride
        merged = key
        width *= 2
    return total


def _tied_pairs(*columns: np.ndarray) -> int:
    """Number of pairs tied on all the given integer columns at once."""
    _, counts = np.unique(np.stack(columns, axis=1), axis=0, return_counts=True)
    counts = counts.astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def kendall_tau_a(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-a, ``(concordant - discordant) / (n (n - 1) / 2)``, in O(n log² n).

    Tied pairs count as neither concordant nor discordant and stay in the denominator
    (unlike tau-b), which is the variant recommended for comparing RDMs when a model
    predicts ties (Nili et al. 2014). Without ties it equals tau-b.
    """
    x = np.asarray(x).ravel()
    y = np.asarray(y).ravel()
    if x.shape != y.shape:
        raise InputError(f"kendall_tau_a: x has {x.size} values but y has {y.size}")
    n = x.size
    if n < 2:
        raise InputError("kendall_tau_a needs at least 2 values")
    x_rank = np.unique(x, return_inverse=True)[1].ravel()
    y_rank = np.unique(y, return_inverse=True)[1].ravel()
    total = n_pairs(n)
    # sorted by x then y, pairs tied in x are in y order: the strict inversions of y are
    # exactly the discordant pairs
    order = np.lexsort((y_rank, x_rank))
    discordant = _count_inversions(y_rank[order])
    x_ties = _tied_pairs(x_rank)
    y_ties = _tied_pairs(y_rank)
    both_ties = _tied_pairs(x_rank, y_rank)
    concordant_minus_discordant = total - x_ties - y_ties + both_ties - 2 * discordant
    return concordant_minus_discordant / total


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

    Equivalent to ``squareform(condensed)[perm][:, perm]`` without building the square
    matrix; ``condensed`` may hold several RDMs along its first axis.
    """
    condensed = np.asarray(condensed)
    n = n_items_of(condensed)
    permutation = np.asarray(permutation)
    if sorted(permutation.tolist()) != list(range(n)):
        raise InputError(f"permutation must reorder 0..{n - 1}; got {permutation.size} values")
    i, j = _pair_items(n)
    out = np.empty_like(condensed)
    for start in range(0, i.size, PAIR_CHUNK):
        part = slice(start, start + PAIR_CHUNK)
        out[..., part] = condensed[
            ..., condensed_index(permutation[i[part]], permutation[j[part]], n)
        ]
    return out


@functools.lru_cache(maxsize=2)
def _pair_items(n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Item indices ``(i, j)`` of every condensed position, as int32 (8 bytes per pair).

    Cached: a permutation test reuses them for every permutation.
    """
    i, j = np.triu_indices(n_items, k=1)
    return i.astype(np.int32), j.astype(np.int32)


@dataclass(frozen=True)
class LayerRSA:
    """RSA of several model RDMs (layers) with several brain RDMs (subjects).

    Attributes
    ----------
    rho : ndarray, shape (n_layers, n_subjects)
        Spearman / Pearson / tau-a (partial if controls were given) per layer and subject.
    mean : ndarray, shape (n_layers,)
        Mean of ``rho`` over subjects (the group statistic tested).
    p_value : ndarray, shape (n_layers,)
        One-sided permutation p-value of ``mean`` per layer, ``(1 + #null >= obs) /
        (1 + n_perm)``; NaN without permutations.
    p_fwe : ndarray, shape (n_layers,)
        Same against the null of the maximum over layers (family-wise across layers).
    null : ndarray, shape (n_perm, n_layers)
        Null distribution of ``mean``.
    """

    rho: np.ndarray
    mean: np.ndarray
    p_value: np.ndarray
    p_fwe: np.ndarray
    null: np.ndarray


def _partial_matrix(
    model_brain: np.ndarray,
    model_control: np.ndarray,
    control_brain: np.ndarray,
    control_control: np.ndarray,
) -> np.ndarray:
    """Partial correlations (layers × subjects) from the blocks of their correlation matrix.

    The partial correlation of x and y given z is the correlation of their residuals, whose
    covariance is ``r_xy - r_xz C⁻¹ r_zy`` and variances ``1 - r_xz C⁻¹ r_zx``.
    """
    inverse = np.linalg.pinv(control_control)
    covariance = model_brain - model_control @ inverse @ control_brain
    model_var = 1.0 - np.einsum("lk,km,lm->l", model_control, inverse, model_control)
    brain_var = 1.0 - np.einsum("ks,km,ms->s", control_brain, inverse, control_brain)
    with np.errstate(invalid="ignore", divide="ignore"):
        return covariance / np.sqrt(np.outer(model_var, brain_var))


def rsa_layers(
    model_rdms: np.ndarray,
    brain_rdms: np.ndarray,
    *,
    method: str = "spearman",
    control_rdms: np.ndarray | None = None,
    n_perm: int = 0,
    block: int = 1,
    seed: int = 0,
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
        ``kendall`` takes the raw RDMs and computes tau-a per pair of vectors (about 2 s per
        comparison of 2.5 M pairs: use few permutations, or segment-average the items).
    control_rdms : ndarray, shape (n_controls, n_pairs), optional
        Standardized RDMs to partial out of every comparison (spearman / pearson only).
    n_perm : int
        Number of permutations (0: no test). The brain items are permuted, the same way for
        every subject, and the statistic is the mean over subjects.
    block : int
        Permute blocks of ``block`` consecutive items (time series); 1 = plain permutation.
    seed : int
        Seed of the permutations.
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

    if method == "kendall":

        def statistic(brain: np.ndarray) -> np.ndarray:
            return np.array([[kendall_tau_a(m, b) for b in brain] for m in model_rdms])

    elif controls is None:

        def statistic(brain: np.ndarray) -> np.ndarray:
            return _chunked_dot(model_rdms, brain)

    else:
        # model × control and control × control correlations do not change under a
        # permutation of the brain items: compute them once
        model_control = _chunked_dot(model_rdms, controls)
        control_control = _chunked_dot(controls, controls)

        def statistic(brain: np.ndarray) -> np.ndarray:
            return _partial_matrix(
                _chunked_dot(model_rdms, brain),
                model_control,
                _chunked_dot(controls, brain),
                control_control,
            )

    rho = statistic(brain_rdms)
    mean = rho.mean(axis=1)
    null = np.empty((n_perm, model_rdms.shape[0]))
    # the mean over subjects of Pearson correlations with one model is the correlation with
    # the subjects' mean (standardized) vector, so plain RSA permutes a single vector
    if n_perm:
        linear = method != "kendall" and controls is None
        permuted_source = brain_rdms.mean(axis=0, keepdims=True) if linear else brain_rdms
        for k, permutation in enumerate(
            permutation_indices(n_items, n_perm, block=block, seed=seed)
        ):
            null[k] = statistic(permute_rdm(permuted_source, permutation)).mean(axis=1)
        p_value = (1 + (null >= mean[None]).sum(axis=0)) / (1 + n_perm)
        p_fwe = (1 + (null.max(axis=1)[:, None] >= mean[None]).sum(axis=0)) / (1 + n_perm)
    else:
        p_value = np.full(mean.shape, np.nan)
        p_fwe = np.full(mean.shape, np.nan)
    return LayerRSA(rho=rho, mean=mean, p_value=p_value, p_fwe=p_fwe, null=null)
