"""Layer-wise RSA with permutation tests: every layer's RDM against every subject's.

:func:`rsa_layers` compares model RDMs (one per layer) with brain RDMs (one per subject),
optionally partialling out control RDMs and leaving out the pairs of nearby items
(:func:`lag_mask`), and tests the mean over subjects by permuting the brain items
(:func:`permutation_indices`, :func:`permute_rdm`), blocks of them for time series.
RDMs are condensed vectors as in :mod:`featstore.evaluate.metrics.rsa`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import squareform

from featstore.errors import InputError
from featstore.evaluate.metrics.rsa import (
    COMPARISONS,
    _chunked_dot,
    _standardize,
    kendall_tau_a,
    n_items_of,
)

# residual norm (of a unit vector) below which the controls explain an RDM entirely
_EXPLAINED_NORM = 1e-3


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
