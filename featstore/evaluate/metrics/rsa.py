"""Representational similarity analysis (RSA) on condensed dissimilarity vectors.

A representational dissimilarity matrix (RDM) over ``n`` items (TRs, stimulus segments or
words) is kept as its condensed upper triangle, in the order of
:func:`scipy.spatial.distance.pdist`: pairs ``(0, 1), (0, 2), …, (0, n-1), (1, 2), …``.
2249 TRs give 2.5 M pairs, i.e. 10 MB in float32 instead of 40 MB for the square float64
matrix; RDMs are built by blocks of rows so no full ``n × n`` float64 copy is needed.

Comparisons (``spearman``, ``pearson``, ``kendall`` = Kendall's tau-a) reduce every RDM to a
centred, unit-norm vector once (ranks first for Spearman), so each comparison, and each
permutation of a permutation test, is one dot product. Layer-wise RSA with its
permutation tests is in :mod:`featstore.evaluate.metrics.rsa_layers`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import kendalltau, rankdata

from featstore.errors import InputError

DISTANCES = ("correlation", "cosine", "euclidean")
COMPARISONS = ("spearman", "pearson", "kendall")
# pairs handled per step when gathering or multiplying condensed vectors: bounds the float64
# temporaries to a few MB whatever the number of items
PAIR_CHUNK = 1 << 18


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
