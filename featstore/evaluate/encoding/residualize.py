"""Low-level feature impact: how much brain alignment survives removing a control.

Following Oota et al. (2024) and Moussa et al. (brain-tuning, 2025): learn a linear map
from a low-level control (power spectrum, envelope, word rate, or any stored feature set)
to the model's features on the train TRs, subtract its prediction on all TRs, evaluate the
residual features with the same encoding pipeline, and report the percentage drop
``100 · (r_orig − r_resid) / r_orig`` per ROI or ROI group, tested across subjects with a
one-sided Wilcoxon signed-rank test (:func:`featstore.evaluate.metrics.stats.paired_wilcoxon`).

The map is the evaluator's own ridge (:mod:`featstore.evaluate.encoding.ridge`): one
decomposition per cross-validation fold serves every penalty and every model dimension.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from featstore.errors import InputError
from featstore.evaluate.encoding.preprocess import zscore_train
from featstore.evaluate.encoding.ridge import best_alpha_index, ridge_cv_scores, ridge_weights
from featstore.evaluate.encoding.split import contiguous_folds

# ridge penalties tried for the control → model map (controls are z-scored on train, so
# the penalty is relative to the number of train TRs)
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-2, 5, 15))


@dataclass(frozen=True)
class Residualized:
    """Model features with the control's linear prediction removed.

    Attributes
    ----------
    features : ndarray, shape (n_tr, dim), float32
        ``model_features − train mean − prediction`` on every TR (mean ~0 on train).
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


def _explained(target: np.ndarray, prediction: np.ndarray, mean: np.ndarray | float) -> float:
    """Pooled R² of ``prediction`` for ``target``, against the constant ``mean``."""
    total = float(np.sum((target - mean) ** 2))
    return 1.0 - float(np.sum((target - prediction) ** 2)) / total if total > 0 else float("nan")


def residualize(
    model_features: np.ndarray,
    control_features: np.ndarray,
    train_index: np.ndarray,
    *,
    alphas: tuple[float, ...] | np.ndarray = DEFAULT_ALPHAS,
    n_folds: int = 5,
    gap: int = 0,
) -> Residualized:
    """Remove the part of the model features a control predicts linearly.

    The control is z-scored and the model features centred with train statistics; a
    ridge regression (no intercept left to fit) from the control to every model dimension
    is fit on the train TRs only. One penalty shared by all dimensions is chosen from
    ``alphas`` by ``n_folds`` contiguous-block cross-validation on train (mean over
    dimensions of the validation R², ties to the larger penalty; contiguous blocks
    because neighbouring TRs are correlated). The prediction is subtracted on all TRs,
    test included, so the residual features carry no information about the test TRs that
    the control would not also have.

    Parameters
    ----------
    model_features : ndarray, shape (n_tr, dim)
    control_features : ndarray, shape (n_tr, n_control)
    train_index : ndarray of int
        TRs the map is learnt from (the encoding model's train TRs).
    alphas : sequence of float
        Candidate ridge penalties, increasing.
    n_folds : int
        Number of contiguous cross-validation blocks over the train TRs.
    gap : int
        TRs left out on both sides of each validation block (as ``--gap``).
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
    alphas = np.sort(np.atleast_1d(np.asarray(alphas, dtype=np.float64)))
    # constant control columns (e.g. a silent band) become zeros and carry nothing
    x = zscore_train(x, train_index)
    y_centred = y - y[train_index].mean(axis=0)
    x_train, y_train = x[train_index], y_centred[train_index]
    scores = ridge_cv_scores(
        x_train, y_train, alphas, contiguous_folds(train_index.size, n_folds, gap)
    )
    alpha = float(alphas[best_alpha_index(scores.mean(axis=1, keepdims=True))[0]])
    prediction = x @ ridge_weights(x_train, y_train, alpha)
    test_mask = np.ones(y.shape[0], dtype=bool)
    test_mask[train_index] = False
    held = y_centred[test_mask]
    return Residualized(
        features=(y_centred - prediction).astype(np.float32),
        alpha=alpha,
        explained_train=_explained(y_train, prediction[train_index], 0.0),
        # against the held-out TRs' own mean: a shift of the mean is not explained
        explained_test=(
            _explained(held, prediction[test_mask], held.mean(axis=0))
            if held.size
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
