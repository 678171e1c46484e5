"""Representational alignment of a model matrix with a brain matrix: nine metrics.

Every metric takes the same items (words, segments, TRs) seen by a model layer, ``x``
(n_items, d_x), and by the brain, ``y`` (n_items, d_y), and returns one similarity
(higher = more similar). Nothing is fitted on one part of the items and scored on
another: these are descriptive, in-sample similarities of two geometries, the way the
alignment literature computes them on the words of a sentence or a time window. For
held-out CCA / Procrustes scores use :func:`~featstore.evaluate.metrics.similarity.
similarity_scores`.

==========================  =============================================================
``rsa-spearman``            Spearman correlation of the correlation-distance RDMs
                            (``1 - r`` between items, upper triangle).
``rsa-pearson``             Pearson correlation of the same RDMs.
``cka-linear``              Linear centred kernel alignment (Kornblith et al. 2019).
``cka-rbf``                 CKA of Gaussian kernels, bandwidth σ = median Euclidean
                            distance between distinct items of each side (× ``sigma_scale``).
``svcca``                   PCA of each side to 99 % of its variance (at most a third of the
                            items), then the mean canonical correlation (Raghu et al. 2017).
``pwcca``                   The same CCA, correlations weighted by how much of ``x`` each
                            canonical variate accounts for (Morcos et al. 2018).
``procrustes``              ``||x̃ᵀỹ||_* / (||x̃|| ||ỹ||)`` of the centred sides: the cosine
                            after the best rotation (cos of the angular distance).
``mutual-knn``              Mean fraction of each item's k nearest neighbours (cosine) shared
                            by the two sides (Huh et al. 2024), k = 10 or ⌊(n-1)/2⌋.
``distance-correlation``    Székely's distance correlation dCor (Székely et al. 2007).
==========================  =============================================================

:func:`score_layers` scores every layer of a model with every metric (a layer × metric
table); :mod:`featstore.evaluate.metrics.agreement` measures whether the metrics rank the
layers (or models) alike. Pure numpy / scipy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.distance import pdist, squareform

from featstore.errors import InputError
from featstore.evaluate.metrics import rsa
from featstore.evaluate.metrics.similarity import (
    KEEP_VARIANCE,
    _check_pair,
    fit_svcca,
    linear_cka,
)

#: Huh et al. (2024) use k = 10 neighbours.
DEFAULT_K = 10


def _rsa(x: np.ndarray, y: np.ndarray, method: str) -> float:
    x, y = _check_pair(x, y)
    model = rsa.rdm(x, "correlation", dtype=np.float64)
    brain = rsa.rdm(y, "correlation", dtype=np.float64)
    return rsa.compare_rdms(model, brain, method)


def rsa_spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho of the two correlation-distance RDMs (upper triangles)."""
    return _rsa(x, y, "spearman")


def rsa_pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r of the two correlation-distance RDMs (upper triangles)."""
    return _rsa(x, y, "pearson")


def _centred_gram(gram: np.ndarray) -> np.ndarray:
    """``H K H`` with ``H = I - 11ᵀ/n``, without forming ``H``."""
    return gram - gram.mean(axis=0) - gram.mean(axis=1)[:, None] + gram.mean()


def rbf_gram(values: np.ndarray, sigma_scale: float = 1.0) -> np.ndarray:
    """Gaussian kernel ``exp(-d² / (2σ²))`` with σ = ``sigma_scale`` × median distance.

    The median is over the Euclidean distances between distinct items (pairs at distance
    0, i.e. repeated items, are left out), so the kernel, and the CKA built on it, does not
    change when a side is scaled.
    """
    if sigma_scale <= 0:
        raise InputError(f"sigma_scale={sigma_scale}: expected > 0")
    distances = pdist(values, "euclidean")
    positive = distances[distances > 0]
    if positive.size == 0:
        raise InputError("RBF CKA is undefined when every item is the same")
    sigma = sigma_scale * float(np.median(positive))
    return squareform(np.exp(-(distances**2) / (2.0 * sigma**2)), checks=False) + np.eye(
        values.shape[0]
    )


def cka_rbf(x: np.ndarray, y: np.ndarray, *, sigma_scale: float = 1.0) -> float:
    """CKA of RBF kernels: ``<K̃, L̃>_F / (||K̃||_F ||L̃||_F)`` with ``K̃ = HKH``.

    Kornblith et al. (2019) set σ to a fraction of the median distance; here σ is
    ``sigma_scale`` times the median distance of each side (:func:`rbf_gram`). As σ grows
    the value tends to linear CKA.
    """
    x, y = _check_pair(x, y)
    kx = _centred_gram(rbf_gram(x, sigma_scale))
    ky = _centred_gram(rbf_gram(y, sigma_scale))
    denominator = np.linalg.norm(kx) * np.linalg.norm(ky)
    if denominator == 0.0:
        raise InputError("RBF CKA is undefined when one side's kernel is constant")
    return float(np.sum(kx * ky) / denominator)


def svcca(
    x: np.ndarray,
    y: np.ndarray,
    *,
    keep_variance: float = KEEP_VARIANCE,
    max_components: int | None = None,
) -> float:
    """Mean canonical correlation after PCA of each side (:func:`~.similarity.fit_svcca`).

    Each side keeps the principal axes explaining ``keep_variance`` of its variance, at most
    ``max_components`` (default a third of the items: in-sample canonical correlations of
    ``d`` dimensions over ``n`` items tend to 1 as ``2d`` approaches ``n``).
    """
    fit = fit_svcca(x, y, keep_variance=keep_variance, max_components=max_components)
    return float(np.mean(fit.correlations))


def pwcca(x: np.ndarray, y: np.ndarray, **reduction: Any) -> float:
    """Projection-weighted CCA (Morcos et al. 2018) after the SVCCA reduction.

    ``reduction`` (``keep_variance``, ``max_components``, as :func:`svcca`) goes to
    :func:`~.similarity.fit_svcca`.

    With ``h_i`` the canonical variates of ``x`` (over items, orthonormalised by QR) and
    ``x̃_j`` its centred columns (neurons / units), each canonical correlation ``ρ_i`` gets
    the weight ``α_i = Σ_j |<h_i, x̃_j>|`` and ``PWCCA = Σ α_i ρ_i / Σ α_i``: directions
    that account for much of the model layer count more than the noise directions CCA
    also fits. ``x`` (the model side) is the paper's reference layer L1.
    """
    x, y = _check_pair(x, y)
    fit = fit_svcca(x, y, **reduction)
    centred = x - fit.x_mean
    basis, _ = np.linalg.qr(centred @ fit.x_weights)
    weights = np.abs(basis.T @ centred).sum(axis=1)
    return float(np.sum(weights * fit.correlations) / np.sum(weights))


def procrustes(x: np.ndarray, y: np.ndarray) -> float:
    """Orthogonal Procrustes similarity ``||x̃ᵀỹ||_* / (||x̃||_F ||ỹ||_F)`` of the centred sides.

    The value of :func:`~.similarity.fit_procrustes`'s ``score`` without forming the
    ``d × d`` rotation: with ``x̃ = U S Vᵀ`` (thin SVD), ``x̃ᵀỹ`` has the singular values of
    ``S Uᵀ ỹ``, at most ``n_items`` of them (a 768-wide layer over 15 words: 1 ms, not 3 s).
    """
    x, y = _check_pair(x, y)
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
    norms = np.linalg.norm(xc) * np.linalg.norm(yc)
    if norms == 0.0:
        raise InputError("Procrustes is undefined when one side is constant")
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    nuclear_norm = np.linalg.svd((s[:, None] * u.T) @ yc, compute_uv=False).sum()
    return float(nuclear_norm / norms)


def default_k(n_items: int) -> int:
    """Neighbours for :func:`mutual_knn`: ``DEFAULT_K`` (10), at most ``⌊(n - 1) / 2⌋``.

    The cap keeps chance (``k / (n - 1)``) at or below 1/2 on the few words of a sentence.
    """
    return max(1, min(DEFAULT_K, (n_items - 1) // 2))


def nearest_neighbours(values: np.ndarray, k: int) -> np.ndarray:
    """(n, k) indices of each row's k most cosine-similar other rows (ties: lower index)."""
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise InputError("mutual k-NN: an item has an all-zero vector; its cosine is undefined")
    unit = values / norms
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return np.argsort(-similarity, axis=1, kind="stable")[:, :k]


def mutual_knn(x: np.ndarray, y: np.ndarray, *, k: int | None = None) -> float:
    """Mutual k-nearest-neighbour alignment (Huh et al. 2024).

    Each item's ``k`` nearest other items by cosine similarity (rows L2-normalised, as in
    the paper's code) are found on each side; the score is the mean over items of
    ``|N_x(i) ∩ N_y(i)| / k``. Chance is about ``k / (n - 1)``. ``k`` defaults to
    :func:`default_k`.
    """
    x, y = _check_pair(x, y)
    n = x.shape[0]
    k = default_k(n) if k is None else int(k)
    if not 1 <= k <= n - 1:
        raise InputError(f"mutual k-NN: k={k}, expected 1..{n - 1} for {n} items")
    near_x = nearest_neighbours(x, k)
    near_y = nearest_neighbours(y, k)
    shared = (near_x[:, :, None] == near_y[:, None, :]).any(axis=2).sum(axis=1)
    return float(np.mean(shared / k))


def _double_centred_distances(values: np.ndarray) -> np.ndarray:
    return _centred_gram(squareform(pdist(values, "euclidean")))


def distance_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Distance correlation ``dCor = sqrt(dCov²(x, y) / sqrt(dVar²(x) dVar²(y)))``.

    ``dCov²`` is the mean product of the double-centred Euclidean distance matrices
    (the V-statistic of Székely, Rizzo & Bakirov 2007). 0 iff independent (in the
    population), 1 when ``y`` is a similarity transform of ``x`` (same dimension).
    """
    x, y = _check_pair(x, y)
    a = _double_centred_distances(x)
    b = _double_centred_distances(y)
    variance = np.mean(a * a) * np.mean(b * b)
    if variance == 0.0:
        raise InputError("distance correlation is undefined when one side is constant")
    return float(np.sqrt(max(np.mean(a * b), 0.0) / np.sqrt(variance)))


#: Metric name → function of (model (n_items, d1), brain (n_items, d2)) → similarity.
ALIGNMENT_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "rsa-spearman": rsa_spearman,
    "rsa-pearson": rsa_pearson,
    "cka-linear": linear_cka,
    "cka-rbf": cka_rbf,
    "svcca": svcca,
    "pwcca": pwcca,
    "procrustes": procrustes,
    "mutual-knn": mutual_knn,
    "distance-correlation": distance_correlation,
}


def resolve_metrics(
    metrics: str | Sequence[str] | Mapping[str, Callable[[np.ndarray, np.ndarray], float]],
) -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    """Metric names (``"all"``, a comma-separated string or a list) → name → function.

    A mapping is taken as is (custom metrics, or registry functions with other options).
    """
    if isinstance(metrics, Mapping):
        chosen = dict(metrics)
    else:
        if isinstance(metrics, str):
            metrics = (
                list(ALIGNMENT_METRICS)
                if metrics == "all"
                else [m.strip() for m in metrics.split(",")]
            )
        unknown = [name for name in metrics if name not in ALIGNMENT_METRICS]
        if unknown:
            raise InputError(
                f"metric {unknown[0]!r}: expected 'all' or any of {', '.join(ALIGNMENT_METRICS)}"
            )
        chosen = {name: ALIGNMENT_METRICS[name] for name in dict.fromkeys(metrics)}
    if not chosen:
        raise InputError("no metric asked for; expected 'all' or at least one metric name")
    return chosen


@dataclass(frozen=True)
class LayerAlignment:
    """Scores of every layer with every metric.

    Attributes
    ----------
    metrics : tuple of str
        Metric names, in column order.
    scores : ndarray, shape (n_layers, n_metrics)
        ``scores[l, m]``: metric ``m`` between layer ``l`` and the brain matrix.
    """

    metrics: tuple[str, ...]
    scores: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        """Metric name → (n_layers,) scores."""
        return {name: self.scores[:, column] for column, name in enumerate(self.metrics)}


def score_layers(
    layers: np.ndarray | Sequence[np.ndarray],
    brain: np.ndarray,
    metrics: str | Sequence[str] | Mapping[str, Callable[[np.ndarray, np.ndarray], float]] = "all",
) -> LayerAlignment:
    """Every layer of a model against one brain matrix, with every metric.

    Parameters
    ----------
    layers : ndarray (n_layers, n_items, dim) or sequence of (n_items, dim_l) arrays
        The model's vectors for the items, one matrix per layer (widths may differ).
    brain : ndarray, shape (n_items, n_channels)
        The brain's response to the same items (e.g. channels × time points of a window,
        flattened per word).
    metrics : "all", names, or a mapping name → function
        Which metrics (see :data:`ALIGNMENT_METRICS` and :func:`resolve_metrics`).

    Returns
    -------
    LayerAlignment
        ``metrics`` (names) and ``scores`` of shape (n_layers, n_metrics).

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.evaluate.metrics import score_layers
    >>> rng = np.random.default_rng(0)
    >>> table = score_layers(rng.normal(size=(3, 12, 5)), rng.normal(size=(12, 4)))
    >>> table.scores.shape, table.metrics[0]
    ((3, 9), 'rsa-spearman')
    """
    chosen = resolve_metrics(metrics)
    if isinstance(layers, np.ndarray) and layers.ndim != 3:
        raise InputError(
            f"layers has shape {layers.shape}; expected (layer, item, dim) or a list of "
            "(item, dim) matrices"
        )
    if len(layers) == 0:
        raise InputError("no layer to score; expected at least one (item, dim) matrix")
    scores = np.empty((len(layers), len(chosen)))
    for row, layer in enumerate(layers):
        for column, function in enumerate(chosen.values()):
            scores[row, column] = function(layer, brain)
    return LayerAlignment(metrics=tuple(chosen), scores=scores)
