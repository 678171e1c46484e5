"""Representational similarity metrics between a model layer and brain responses.

All functions take two matrices over the same items (rows: TRs), ``x`` (n, d_x) and ``y``
(n, d_y), and make no assumption that ``d_x == d_y``. Metrics that learn a map (CCA,
Procrustes) are fit on the train TRs and scored on the test TRs, like the encoding model;
metrics that do not (linear CKA, RSA) are computed on the test TRs only, so every metric
sees the same held-out data (:func:`similarity_scores`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import orthogonal_procrustes

from featstore.errors import InputError
from featstore.evaluate.metrics import rsa

METRICS = ("cka", "rsa", "cca", "procrustes")
#: Variance each side keeps before CCA (Raghu et al. 2017).
KEEP_VARIANCE = 0.99


def _check_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2:
        raise InputError(f"expected 2-D (item, feature) arrays, got shapes {x.shape} and {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise InputError(
            f"x has {x.shape[0]} items (TRs) but y has {y.shape[0]}; expected the same items"
        )
    if x.shape[0] < 3:
        raise InputError(f"need at least 3 items (TRs), got {x.shape[0]}")
    return x, y


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear centred kernel alignment (Kornblith et al. 2019).

    ``||yᵀx||²_F / (||xᵀx||_F ||yᵀy||_F)`` after centring the columns: the HSIC of the
    linear kernels ``x xᵀ`` and ``y yᵀ``, normalised. Invariant to orthogonal transforms
    and isotropic scaling of either side, not to arbitrary invertible linear maps.
    """
    x, y = _check_pair(x, y)
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    # the smaller of the feature-space (d × d) and item-space (n × n) products: few words
    # against wide layers is the item-space form, thousands of TRs the feature-space one
    if x.shape[0] < x.shape[1] + y.shape[1]:
        kx, ky = x @ x.T, y @ y.T
        cross = np.sum(kx * ky)
        denominator = np.linalg.norm(kx) * np.linalg.norm(ky)
    else:
        cross = np.linalg.norm(y.T @ x) ** 2
        denominator = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    if denominator == 0.0:
        raise InputError("linear CKA is undefined when one side is constant")
    return float(cross / denominator)


@dataclass(frozen=True)
class CCAFit:
    """A fitted CCA: ``(x - x_mean) @ x_weights`` and ``(y - y_mean) @ y_weights``.

    ``correlations`` are the canonical correlations on the data the fit saw, in
    decreasing order; the projections have unit variance there and are uncorrelated.
    """

    x_mean: np.ndarray
    y_mean: np.ndarray
    x_weights: np.ndarray
    y_weights: np.ndarray
    correlations: np.ndarray


def _whitening_basis(centred: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal basis of the column space and the map onto it (pseudo-inverse of rank r)."""
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    rank = int(np.sum(s > s[0] * max(centred.shape) * np.finfo(float).eps)) if s.size else 0
    if rank == 0:
        raise InputError(f"{what} is constant; CCA is undefined")
    return u[:, :rank], vt[:rank].T / s[:rank]


def fit_cca(x: np.ndarray, y: np.ndarray, n_components: int | None = None) -> CCAFit:
    """Canonical correlation analysis in closed form.

    With orthonormal bases ``Q_x``, ``Q_y`` of the centred column spaces, the canonical
    correlations are the singular values of ``Q_xᵀ Q_y`` (Björck & Golub 1973). Rank
    deficient inputs are handled by keeping the non-zero singular directions; when
    ``d_x + d_y`` approaches the number of items the in-sample correlations tend to 1, so
    score on held-out data (:func:`cca_correlations`) or reduce first (:func:`fit_svcca`).

    Parameters
    ----------
    x, y : ndarray, shapes (n, d_x) and (n, d_y)
    n_components : int, optional
        Number of canonical pairs kept (default: all, ``min`` of the two ranks).
    """
    x, y = _check_pair(x, y)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    qx, to_qx = _whitening_basis(x - x_mean, "x")
    qy, to_qy = _whitening_basis(y - y_mean, "y")
    u, s, vt = np.linalg.svd(qx.T @ qy, full_matrices=False)
    k = s.size if n_components is None else int(n_components)
    if not 1 <= k <= s.size:
        raise InputError(f"n_components={n_components}: expected 1..{s.size} (the smaller rank)")
    # scaled by sqrt(n - 1) so the projections have unit (sample) variance
    scale = np.sqrt(x.shape[0] - 1)
    return CCAFit(
        x_mean=x_mean,
        y_mean=y_mean,
        x_weights=to_qx @ u[:, :k] * scale,
        y_weights=to_qy @ vt[:k].T * scale,
        correlations=np.clip(s[:k], 0.0, 1.0),
    )


def _pearson_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=0) / np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))


def cca_correlations(fit: CCAFit, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each canonical pair on (held-out) data."""
    x, y = _check_pair(x, y)
    return _pearson_columns((x - fit.x_mean) @ fit.x_weights, (y - fit.y_mean) @ fit.y_weights)


def _pca_projection(centred: np.ndarray, keep_variance: float, max_components: int) -> np.ndarray:
    """(d, k) projection onto the leading principal axes that explain ``keep_variance``."""
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    explained = np.cumsum(s**2) / np.sum(s**2)
    k = int(np.searchsorted(explained, keep_variance - 1e-12) + 1)
    return vt[: min(k, max_components, s.size)].T


def fit_svcca(
    x: np.ndarray,
    y: np.ndarray,
    *,
    keep_variance: float = KEEP_VARIANCE,
    max_components: int | None = None,
    n_components: int | None = None,
) -> CCAFit:
    """SVCCA (Raghu et al. 2017): PCA of each side, then CCA of the reduced data.

    Each side keeps its leading principal axes that explain ``keep_variance`` of its
    variance (at most ``max_components``, by default a third of the items so the CCA stays
    well posed). The PCA is folded into the returned weights, so :func:`cca_correlations`
    applies unchanged to held-out data. The SVCCA similarity is the mean canonical
    correlation.
    """
    x, y = _check_pair(x, y)
    if not 0.0 < keep_variance <= 1.0:
        raise InputError(f"keep_variance={keep_variance}: expected a fraction in (0, 1]")
    cap = max(1, x.shape[0] // 3) if max_components is None else int(max_components)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    x_axes = _pca_projection(x - x_mean, keep_variance, cap)
    y_axes = _pca_projection(y - y_mean, keep_variance, cap)
    reduced = fit_cca((x - x_mean) @ x_axes, (y - y_mean) @ y_axes, n_components)
    return CCAFit(
        x_mean=x_mean,
        y_mean=y_mean,
        x_weights=x_axes @ reduced.x_weights,
        y_weights=y_axes @ reduced.y_weights,
        correlations=reduced.correlations,
    )


@dataclass(frozen=True)
class ProcrustesFit:
    """A fitted orthogonal Procrustes map from centred ``x`` to centred ``y``.

    Both sides are zero-padded to ``d = max(d_x, d_y)`` columns; ``rotation`` is the
    (d, d) orthogonal matrix minimising ``||x R - y||_F``. ``score`` is the in-sample
    similarity ``||xᵀy||_* / (||x||_F ||y||_F)`` (1 = identical up to rotation and scale).
    """

    x_mean: np.ndarray
    y_mean: np.ndarray
    rotation: np.ndarray
    score: float


def _pad(a: np.ndarray, width: int) -> np.ndarray:
    return np.pad(a, ((0, 0), (0, width - a.shape[1])))


def fit_procrustes(x: np.ndarray, y: np.ndarray) -> ProcrustesFit:
    """Orthogonal Procrustes: the rotation ``R = U Vᵀ`` from the SVD ``xᵀy = U S Vᵀ``.

    scipy's ``orthogonal_procrustes`` gives ``R`` and the nuclear norm ``sum(S)``.
    """
    x, y = _check_pair(x, y)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    width = max(x.shape[1], y.shape[1])
    xc = _pad(x - x_mean, width)
    yc = _pad(y - y_mean, width)
    norms = np.linalg.norm(xc) * np.linalg.norm(yc)
    if norms == 0.0:
        raise InputError("Procrustes is undefined when one side is constant")
    rotation, nuclear_norm = orthogonal_procrustes(xc, yc)
    return ProcrustesFit(
        x_mean=x_mean, y_mean=y_mean, rotation=rotation, score=float(nuclear_norm / norms)
    )


def procrustes_score(fit: ProcrustesFit, x: np.ndarray, y: np.ndarray) -> float:
    """Cosine similarity of ``x R`` and ``y`` on (held-out) data, centred with the fit's means.

    Equals ``fit.score`` on the fitting data; ``arccos`` of it is the angular Procrustes
    distance (Williams et al. 2021).
    """
    x, y = _check_pair(x, y)
    width = fit.rotation.shape[0]
    mapped = _pad(x - fit.x_mean, width) @ fit.rotation
    target = _pad(y - fit.y_mean, width)
    return float(np.sum(mapped * target) / (np.linalg.norm(mapped) * np.linalg.norm(target)))


def procrustes_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Angular Procrustes distance ``arccos(||xᵀy||_*)`` of centred, unit-norm ``x``, ``y``."""
    return float(np.arccos(np.clip(fit_procrustes(x, y).score, -1.0, 1.0)))


def similarity_scores(
    x: np.ndarray,
    y: np.ndarray,
    train_index: np.ndarray,
    test_index: np.ndarray,
    metrics: Sequence[str] = METRICS,
    *,
    rsa_distance: str = "correlation",
    rsa_compare: str = "spearman",
    keep_variance: float = KEEP_VARIANCE,
    cca_components: int = 5,
) -> dict[str, float]:
    """Every requested metric for one layer and one subject, on one train/test split.

    ``cka`` and ``rsa`` are computed on the test items; ``cca`` (SVCCA: mean held-out
    correlation of the ``cca_components`` leading canonical pairs — later pairs mostly fit
    noise and turn negative on held-out data) and ``procrustes`` (held-out cosine after the
    rotation) are fit on the train items and scored on the test items.
    """
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise InputError(f"metric {unknown[0]!r}: expected any of {', '.join(METRICS)}")
    x, y = _check_pair(x, y)
    x_train, y_train = x[train_index], y[train_index]
    x_test, y_test = x[test_index], y[test_index]
    scores: dict[str, float] = {}
    for metric in metrics:
        if metric == "cka":
            scores[metric] = linear_cka(x_test, y_test)
        elif metric == "rsa":
            scores[metric] = rsa.compare_rdms(
                rsa.rdm(x_test, rsa_distance), rsa.rdm(y_test, rsa_distance), rsa_compare
            )
        elif metric == "cca":
            fit = fit_svcca(x_train, y_train, keep_variance=keep_variance)
            leading = cca_correlations(fit, x_test, y_test)[:cca_components]
            scores[metric] = float(np.nanmean(leading))
        else:
            scores[metric] = procrustes_score(fit_procrustes(x_train, y_train), x_test, y_test)
    return scores
