"""What :func:`~featstore.evaluate.encoding.pipeline.encode` returns for one model."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from featstore.errors import InputError


@dataclass
class EncodingResult:
    """Outcome of ``encode`` for every subject and ROI.

    Attributes
    ----------
    r : float64 array of shape (n_subjects, n_rois)
        Pearson r of predictions and BOLD on the test part (NaN for constant ROIs).
    alpha : float64 array of shape (n_subjects, n_rois)
        Chosen (or fixed) ridge alpha; NaN for banded ridge and for constant ROIs.
    band_alphas : float64 array of shape (n_subjects, n_rois, n_spaces) or None
        One alpha per feature space (banded ridge only).
    partition : dict or None
        ``unique_a``, ``unique_b``, ``shared``: arrays (n_subjects, n_rois) of test R²
        (``partition=True`` with two feature spaces).
    predictions : array of shape (n_subjects, n_test, n_rois) or None
        Test predictions (``return_predictions=True``) in standardised units: BOLD
        z-scored with each column's train mean and std, in ``settings.dtype``. These are
        exactly the values ``r`` was computed from; BOLD units are
        ``predictions * bold_scale[:, None] + bold_mean[:, None]`` (see
        :meth:`predictions_in_bold_units`). Raw BOLD units in float32 are not returned:
        around a scanner mean of ~1000, a heavily regularised prediction varies below
        float32's resolution there and its r would change.
    observed : array of shape (n_subjects, n_test, n_rois) or None
        The test BOLD in the same standardised units (``return_predictions=True``):
        ``pearson_by_column(observed[s], predictions[s]) == r[s]``.
    bold_mean, bold_scale : float64 arrays of shape (n_subjects, n_rois) or None
        Train mean and std (1 for constant ROIs) that standardised the BOLD.
    test_index, train_index : int64 arrays
        TR indices of the test and train parts.
    n_edge_alpha : int64 array of shape (n_subjects,)
        ROIs whose chosen alpha is the smallest of the grid, or the largest while the ROI
        is predictable (CV R² > 0; for an unpredictable ROI shrinking to zero is right).
    cv_score : float64 array of shape (n_subjects, n_rois) or None
        Mean validation R² of the chosen alpha (None with a fixed alpha).
    warnings : list of str
        Constant ROIs, alphas piling up at a grid edge, a constant feature set.
    excluded : str or None
        Why the model has no result at all (r, alpha, partition NaN everywhere): a feature
        set constant over the train TRs. ``None`` for a usable model.

    Examples
    --------
    >>> import numpy as np, featstore as fs
    >>> fs.encode([np.random.rand(99, 6)], np.random.rand(2, 99, 3), fs.EncodingSettings()).r.shape
    (2, 3)
    """

    r: np.ndarray
    alpha: np.ndarray
    band_alphas: np.ndarray | None
    partition: dict[str, np.ndarray] | None
    predictions: np.ndarray | None
    test_index: np.ndarray
    train_index: np.ndarray
    n_edge_alpha: np.ndarray
    warnings: list[str] = field(default_factory=list)
    cv_score: np.ndarray | None = None
    observed: np.ndarray | None = None
    bold_mean: np.ndarray | None = None
    bold_scale: np.ndarray | None = None
    excluded: str | None = None

    def predictions_in_bold_units(self) -> np.ndarray:
        """Test predictions in the BOLD's own units, float64: (n_subjects, n_test, n_rois)."""
        if self.predictions is None:
            raise InputError("no predictions: call encode(..., return_predictions=True)")
        return (
            np.asarray(self.predictions, dtype=np.float64) * self.bold_scale[:, None, :]
            + self.bold_mean[:, None, :]
        )
