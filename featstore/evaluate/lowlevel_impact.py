"""Low-level feature impact: how much brain alignment survives removing a control.

Following Oota et al. (2024) and Moussa et al. (brain-tuning, 2025): learn a linear map
from a low-level control (power spectrum, envelope, word rate, or any stored feature set)
to the model's features on the train TRs, subtract its prediction on all TRs, evaluate the
residual features with the same encoding pipeline, and report the percentage drop
``100 · (r_orig − r_resid) / r_orig`` per ROI or ROI group, tested across subjects with a
Wilcoxon signed-rank test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import wilcoxon

from featstore.errors import InputError

# ridge penalties tried for the control → model map (controls are z-scored on train, so
# the penalty is relative to the number of train TRs)
DEFAULT_ALPHAS = np.logspace(-2, 5, 15)


@dataclass(frozen=True)
class Residualized:
    """Model features with the control's linear prediction removed.

    Attributes
    ----------
    features : ndarray, shape (n_tr, dim), float32
        ``model_features − prediction`` on every TR (the prediction includes the train
        mean, so the residual has mean ~0 on train).
    alpha : float
        Ridge penalty chosen by contiguous-block cross-validation on the train TRs.
    explained_train, explained_test : float
        Fraction of the model features' variance (pooled over dims) that the control
        predicts on the train TRs and on the other TRs.
    """

    features: np.ndarray
    alpha: float
    explained_train: float
    explained_test: float


def _ridge_predictions(
    x_fit: np.ndarray, y_fit: np.ndarray, x_new: np.ndarray, alphas: np.ndarray
) -> np.ndarray:
    """Ridge predictions on ``x_new`` for every alpha at once, via one SVD of ``x_fit``."""
    u, s, vt = np.linalg.svd(x_fit, full_matrices=False)
    uty = u.T @ y_fit
    projected = x_new @ vt.T
    shrink = s[None, :] / (s[None, :] ** 2 + alphas[:, None])  # (alpha, k)
    return np.einsum("nk,ak,kd->and", projected, shrink, uty)


def _explained(y: np.ndarray, prediction: np.ndarray, mean: np.ndarray) -> float:
    total = float(np.sum((y - mean) ** 2))
    return 1.0 - float(np.sum((y - prediction) ** 2)) / total if total > 0 else float("nan")


def residualize(
    model_features: np.ndarray,
    control_features: np.ndarray,
    train_index: np.ndarray,
    *,
    alphas: np.ndarray = DEFAULT_ALPHAS,
    n_folds: int = 5,
) -> Residualized:
    """Remove the part of the model features a control predicts linearly.

    A ridge regression from the control (z-scored with train statistics, plus intercept)
    to every model dimension is fit on the train TRs only; one penalty shared by all
    dimensions is chosen from ``alphas`` by ``n_folds`` contiguous-block cross-validation
    on train (pooled R²; contiguous blocks because neighbouring TRs are correlated). The
    prediction is subtracted on all TRs, test included, so the residual features carry no
    information about the test TRs that the control would not also have.

    Parameters
    ----------
    model_features : ndarray, shape (n_tr, dim)
    control_features : ndarray, shape (n_tr, n_control)
    train_index : ndarray of int
        TRs the map is learnt from (the encoding model's train TRs).
    alphas : ndarray
        Candidate ridge penalties.
    n_folds : int
        Number of contiguous cross-validation blocks over the train TRs.
    """
    y = np.asarray(model_features, dtype=np.float64)
    x = np.asarray(control_features, dtype=np.float64)
    if y.ndim != 2 or x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise InputError(
            f"model features {y.shape} and control features {x.shape} must be 2-D with the "
            "same number of TRs"
        )
    train_index = np.asarray(train_index)
    if train_index.size < 2 * n_folds:
        raise InputError(
            f"{train_index.size} train TRs are too few for {n_folds}-fold cross-validation"
        )
    alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    x_mean = x[train_index].mean(axis=0)
    x_std = x[train_index].std(axis=0)
    # constant control columns (e.g. a silent band) carry nothing: zero them
    x = np.where(x_std > 0, (x - x_mean) / np.where(x_std > 0, x_std, 1.0), 0.0)
    y_mean = y[train_index].mean(axis=0)
    y_centred = y - y_mean

    folds = np.array_split(np.arange(train_index.size), n_folds)
    errors = np.zeros(alphas.size)
    for fold in folds:
        held = train_index[fold]
        kept = np.delete(train_index, fold)
        # the intercept of each fold's fit: centre both sides on the fold's own TRs
        x_fit_mean = x[kept].mean(axis=0)
        y_fit_mean = y_centred[kept].mean(axis=0)
        predictions = y_fit_mean + _ridge_predictions(
            x[kept] - x_fit_mean, y_centred[kept] - y_fit_mean, x[held] - x_fit_mean, alphas
        )
        errors += ((predictions - y_centred[held][None]) ** 2).sum(axis=(1, 2))
    alpha = float(alphas[int(np.argmin(errors))])

    prediction = _ridge_predictions(x[train_index], y_centred[train_index], x, np.array([alpha]))[0]
    test_mask = np.ones(y.shape[0], dtype=bool)
    test_mask[train_index] = False
    residual = y_centred - prediction
    return Residualized(
        features=residual.astype(np.float32),
        alpha=alpha,
        explained_train=_explained(y_centred[train_index], prediction[train_index], 0.0),
        explained_test=(
            _explained(y[test_mask], prediction[test_mask] + y_mean, y[test_mask].mean(axis=0))
            if test_mask.any()
            else float("nan")
        ),
    )


def percent_drop(r_orig: np.ndarray, r_resid: np.ndarray) -> np.ndarray:
    """Percentage drop in alignment ``100 · (r_orig − r_resid) / r_orig``.

    Where ``r_orig <= 0`` (or is not finite) there was no alignment to lose and the ratio
    would flip sign or explode: the drop is NaN there. A drop above 100 % means the residual
    correlates negatively; a negative drop means removing the control helped.
    """
    r_orig = np.asarray(r_orig, dtype=np.float64)
    r_resid = np.asarray(r_resid, dtype=np.float64)
    valid = np.isfinite(r_orig) & (r_orig > 0)
    safe = np.where(valid, r_orig, 1.0)
    return np.where(valid, 100.0 * (safe - r_resid) / safe, np.nan)


def wilcoxon_drop(
    r_orig: np.ndarray, r_resid: np.ndarray, *, alternative: str = "greater"
) -> tuple[np.ndarray, np.ndarray]:
    """Wilcoxon signed-rank test of ``r_orig`` vs ``r_resid`` across subjects, per column.

    Parameters
    ----------
    r_orig, r_resid : ndarray, shape (n_subjects, n_regions)
        Encoding r per subject and ROI (or ROI group) before and after residualizing.
    alternative : {"greater", "two-sided", "less"}
        ``greater`` (default) tests that the original alignment is higher, i.e. that the
        control explains part of it.

    Returns
    -------
    statistic, p_value : ndarray, shape (n_regions,)
        NaN for a region with fewer than 2 subjects with finite values in both, or whose
        differences are all zero (no evidence either way).
    """
    r_orig = np.atleast_2d(np.asarray(r_orig, dtype=np.float64))
    r_resid = np.atleast_2d(np.asarray(r_resid, dtype=np.float64))
    if r_orig.shape != r_resid.shape:
        raise InputError(f"r_orig has shape {r_orig.shape} but r_resid {r_resid.shape}")
    if alternative not in ("greater", "two-sided", "less"):
        raise InputError(f"alternative {alternative!r}: expected greater, two-sided or less")
    statistic = np.full(r_orig.shape[1], np.nan)
    p_value = np.full(r_orig.shape[1], np.nan)
    for region in range(r_orig.shape[1]):
        difference = r_orig[:, region] - r_resid[:, region]
        difference = difference[np.isfinite(difference)]
        if difference.size < 2 or not np.any(difference != 0):
            continue
        result = wilcoxon(difference, alternative=alternative)
        statistic[region] = result.statistic
        p_value[region] = result.pvalue
    return statistic, p_value
