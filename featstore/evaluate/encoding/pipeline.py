"""``encode``: one PCA + FIR ridge encoding model for every subject and ROI at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from featstore.errors import InputError
from featstore.evaluate.encoding.alpha_edges import edge_alpha_warnings, edge_masks
from featstore.evaluate.encoding.backend import Backend, get_backend
from featstore.evaluate.encoding.banded import banded_ridge_cv
from featstore.evaluate.encoding.design import design_matrix, split_components
from featstore.evaluate.encoding.preprocess import constant_columns, constant_set_reason
from featstore.evaluate.encoding.result import EncodingResult
from featstore.evaluate.encoding.ridge import factorize, predict_with_alphas, ridge_cv
from featstore.evaluate.encoding.scoring import pearson_by_column, r2_by_column
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.encoding.split import chronological_split, contiguous_folds
from featstore.evaluate.encoding.threads import blas_threads


@dataclass(frozen=True)
class _Fit:
    predictions: np.ndarray  # (n_test, n_targets), standardised units
    alpha: np.ndarray  # (n_targets,) NaN for banded
    band_alphas: np.ndarray | None  # (n_targets, n_spaces)
    cv_score: np.ndarray | None = None  # (n_targets,) mean validation R² of the chosen alpha


def _check_inputs(features: Sequence[np.ndarray], bold: np.ndarray) -> list[np.ndarray]:
    if isinstance(features, np.ndarray):
        raise InputError("features: expected a list of (TR, dim) arrays, got one bare array")
    if not 1 <= len(features) <= 2:
        raise InputError(f"features: expected 1 feature set or a pair, got {len(features)}")
    if bold.ndim != 3:
        raise InputError(f"bold has shape {bold.shape}; expected (subject, TR, ROI)")
    n_tr = bold.shape[1]
    arrays = []
    for k, feature in enumerate(features):
        feature = np.asarray(feature)
        if feature.ndim != 2:
            raise InputError(f"features[{k}] has shape {feature.shape}; expected (TR, dim)")
        if feature.shape[0] != n_tr:
            raise InputError(
                f"bold has {n_tr} TRs but features[{k}] has {feature.shape[0]}; "
                "expected equal (features on the fMRI TR grid)"
            )
        bad = ~np.isfinite(feature)
        if bad.any():
            tr, dim = np.argwhere(bad)[0]
            raise InputError(
                f"features[{k}] has {int(bad.sum())} non-finite values (first at TR {tr}, "
                f"dim {dim}); expected finite features"
            )
        arrays.append(feature)
    bad = ~np.isfinite(bold)
    if bad.any():
        subjects, rois = np.nonzero(bad.any(axis=1))
        listed = ", ".join(
            f"subject {s} ROI {v}" for s, v in zip(subjects[:5], rois[:5], strict=True)
        )
        more = f" and {len(subjects) - 5} more" if len(subjects) > 5 else ""
        raise InputError(
            f"bold has non-finite values in {len(subjects)} ROIs ({listed}{more}); "
            "expected finite BOLD (drop or fill those ROIs)"
        )
    return arrays


def _targets(
    bold: np.ndarray, train_index: np.ndarray, test_index: np.ndarray, dtype: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train/test BOLD of every subject side by side (column ``s * n_rois + v``), z-scored.

    The mean and scale of each column come from its train rows (a constant column keeps
    scale 1 and becomes zeros): no intercept is needed, and neither r nor R² change.
    Also returns which columns are constant over the train or the test part.
    """
    n_subjects, _, n_rois = bold.shape
    Y_train = np.empty((len(train_index), n_subjects * n_rois), dtype=dtype)
    Y_test = np.empty((len(test_index), n_subjects * n_rois), dtype=dtype)
    mean = np.empty(n_subjects * n_rois)
    scale = np.empty(n_subjects * n_rois)
    constant = np.empty(n_subjects * n_rois, dtype=bool)
    # One subject at a time: float64 arithmetic without a float64 copy of all the BOLD.
    for subject in range(n_subjects):
        columns = slice(subject * n_rois, (subject + 1) * n_rois)
        train = np.asarray(bold[subject, train_index], dtype=np.float64)
        mean[columns], std = train.mean(axis=0), train.std(axis=0)
        constant[columns] = constant_columns(mean[columns], std)
        scale[columns] = np.where(constant[columns], 1.0, std)
        Y_train[:, columns] = (train - mean[columns]) / scale[columns]
        test = np.asarray(bold[subject, test_index], dtype=np.float64)
        Y_test[:, columns] = (test - mean[columns]) / scale[columns]
        constant[columns] |= constant_columns(test.mean(axis=0), test.std(axis=0))
    return Y_train, Y_test, mean, scale, constant


def _fit(
    X_trains: list,
    X_tests: list,
    Y_train,
    settings: EncodingSettings,
    folds: list[tuple[np.ndarray, np.ndarray]] | None,
    backend: Backend,
) -> _Fit:
    """Ridge (one design) or banded ridge (several) with CV or the fixed alpha.

    Designs and ``Y_train`` are arrays of ``backend``; the results are numpy arrays.
    """
    n_targets = Y_train.shape[1]
    if settings.alpha is not None:
        X_train = backend.concat(X_trains, axis=1)
        X_test = backend.concat(X_tests, axis=1)
        alpha = np.full(n_targets, settings.alpha)
        predictions = predict_with_alphas(
            factorize(X_train, backend=backend), X_test, Y_train, alpha, settings.dtype
        )
        band = np.full((n_targets, len(X_trains)), settings.alpha) if len(X_trains) > 1 else None
        return _Fit(predictions, np.full(n_targets, np.nan) if band is not None else alpha, band)
    if len(X_trains) > 1:
        banded = banded_ridge_cv(
            X_trains,
            Y_train,
            settings.alphas,
            folds,
            X_tests=X_tests,
            dtype=settings.dtype,
            backend=backend,
        )
        return _Fit(
            banded.predictions, np.full(n_targets, np.nan), banded.band_alphas, banded.cv_score
        )
    result = ridge_cv(
        X_trains[0],
        Y_train,
        settings.alphas,
        folds,
        X_test=X_tests[0],
        dtype=settings.dtype,
        backend=backend,
    )
    return _Fit(result.predictions, result.alpha, None, result.cv_score)


def _edge_counts(
    fit: _Fit, settings: EncodingSettings, valid: np.ndarray, n_subjects: int
) -> tuple[np.ndarray, list[str]]:
    """ROIs per subject whose alpha is at a grid edge, and a warning per crowded edge.

    An ROI the features cannot predict (CV R² <= 0 at its best alpha) is best fitted by
    shrinking to zero, so the largest alpha is the right answer there, not a sign of a
    narrow grid: at the upper edge only predictable ROIs count. At the lower edge every
    ROI counts (the data ask for less regularisation than the grid offers).
    """
    if settings.alpha is not None:
        return np.zeros(n_subjects, dtype=np.int64), []
    # Banded ridge: the smallest of the band alphas is the model's overall regularisation.
    effective = fit.alpha if fit.band_alphas is None else fit.band_alphas.min(axis=1)
    at_low, at_high, predictable = edge_masks(effective, valid, fit.cv_score, settings.alphas)
    n_edge = (at_low | at_high).reshape(n_subjects, -1).sum(axis=1).astype(np.int64)
    counts = (int(at_low.sum()), int(valid.sum()), int(at_high.sum()), int(predictable.sum()))
    return n_edge, edge_alpha_warnings(counts, settings.alphas)


def _constant_warning(
    constant: np.ndarray,
    subject_names: Sequence[str] | None = None,
    roi_names: Sequence[str] | None = None,
) -> list[str]:
    """One warning naming the constant ROIs of each subject (constant: (S, V) bool).

    With names, a subject reads ``subject 'sub-02'`` and a ROI ``5 (L_V1)``, as in the
    other messages about the bold; without, their indices.
    """
    if not constant.any():
        return []
    parts = []
    for subject in np.flatnonzero(constant.any(axis=1)):
        rois = np.flatnonzero(constant[subject])
        named = [f"{v} ({roi_names[v]})" if roi_names is not None else str(v) for v in rois[:10]]
        listed = ", ".join(named) + (" …" if len(rois) > 10 else "")
        who = repr(str(subject_names[subject])) if subject_names is not None else str(subject)
        parts.append(f"subject {who}: ROI{'s' if len(rois) > 1 else ''} {listed}")
    return [
        f"{int(constant.sum())} constant ROIs (zero variance in the train or test part) "
        f"get r = NaN: {'; '.join(parts)}"
    ]


def _nan_where(values: np.ndarray | None, constant: np.ndarray, shape: tuple[int, ...]):
    """A copy of per-column ``values`` (None stays None), NaN in the ``constant`` columns,
    reshaped to ``shape``."""
    if values is None:
        return None
    values = np.array(values, copy=True)
    values[constant] = np.nan
    return values.reshape(shape)


def _feature_names(names: Sequence[str] | None, n_sets: int) -> list[str]:
    """What messages call each feature set: ``names``, else ``features[k]``."""
    names = list(names) if names is not None else [f"features[{k}]" for k in range(n_sets)]
    if len(names) != n_sets:
        raise InputError(f"names: expected one per feature set ({n_sets}), got {len(names)}")
    return names


def _result_warnings(
    settings: EncodingSettings,
    excluded: str | None,
    constant_rois: np.ndarray,
    edge_warnings: list[str],
    subject_names: Sequence[str] | None,
    roi_names: Sequence[str] | None,
) -> list[str]:
    """A result's warnings: the raised gap first, then why the config is excluded, or its
    constant ROIs and alphas at a grid edge."""
    warnings = [settings.gap_notice] if settings.gap_notice else []
    if excluded is None:
        warnings += _constant_warning(constant_rois, subject_names, roi_names) + edge_warnings
    else:
        warnings += [
            f"{excluded}: r = NaN for every subject and ROI; the config is excluded from "
            "summaries and reports"
        ]
    return warnings


def _split_rows(
    n_tr: int, settings: EncodingSettings
) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]] | None]:
    """The train and test rows of ``n_tr`` TRs and the CV folds of the train part (None
    without CV); the test part must outlast the largest delay."""
    trim = settings.resolved_trim
    gap = settings.resolved_gap  # negative delays: no train row sees test stimulus
    train_index, test_index = chronological_split(
        n_tr, trim=trim, test_frac=settings.test_frac, gap=gap
    )
    longest = max(abs(d) for d in settings.delays)
    if len(test_index) <= longest or len(test_index) < 3:
        raise InputError(
            f"the test part has {len(test_index)} TRs ({n_tr} TRs, trim={trim}, "
            f"test_frac={settings.test_frac}); expected more than the largest delay "
            f"({longest}) and at least 3"
        )
    folds = (
        contiguous_folds(len(train_index), settings.cv, gap) if settings.cross_validated else None
    )
    return train_index, test_index, folds


def _variance_partition(
    Y_test: np.ndarray, joint: np.ndarray, alone_a: np.ndarray, alone_b: np.ndarray
) -> dict[str, np.ndarray]:
    """Unique and shared test R² of two feature sets, from the predictions of the joint
    model and of each set alone."""
    r2_joint = r2_by_column(Y_test, joint)
    r2_a, r2_b = r2_by_column(Y_test, alone_a), r2_by_column(Y_test, alone_b)
    return {
        "unique_a": r2_joint - r2_b,
        "unique_b": r2_joint - r2_a,
        "shared": r2_a + r2_b - r2_joint,
    }


def _by_subject(
    predictions: np.ndarray,
    Y_test: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    shape: tuple[int, int],
) -> dict[str, np.ndarray]:
    """The test predictions and BOLD, and the BOLD's train mean and scale, per subject.

    The very arrays r came from, (test, subject * roi) viewed as (subject, test, roi).
    """
    by_subject = {
        name: values.reshape(len(values), *shape).transpose(1, 0, 2)
        for name, values in (("predictions", predictions), ("observed", Y_test))
    }
    by_subject["bold_mean"] = mean.reshape(shape)
    by_subject["bold_scale"] = scale.reshape(shape)
    return by_subject


def encode(
    features: Sequence[np.ndarray],
    bold: np.ndarray,
    settings: EncodingSettings,
    *,
    return_predictions: bool = False,
    partition: bool = False,
    n_threads: int | None = None,
    names: Sequence[str] | None = None,
    subject_names: Sequence[str] | None = None,
    roi_names: Sequence[str] | None = None,
    backend: str | Backend = "numpy",
    device: str | None = None,
) -> EncodingResult:
    """Fit and test one encoding model for every subject and ROI at once.

    Trim the edges, split chronologically (test = last part, ``resolved_gap`` TRs between:
    ``gap``, raised for negative delays, with a warning),
    z-score features and BOLD with train statistics, fit PCA on the train rows, build
    the FIR delays on the whole timeline, choose alpha per subject and ROI by contiguous
    K-fold CV on the train part (mean validation R²), refit on the whole train part and
    score the test part with Pearson r. The stimulus is shared by all subjects, so every
    ROI of every subject is a column of one target matrix, and each CV fold decomposes
    the design once for all of them and all alphas. See docs/methods.md.

    Parameters
    ----------
    features : sequence of 1 or 2 arrays of shape (n_tr, n_features)
        Feature sets on the fMRI TR grid. Two sets are fused by ``settings.method``.
    bold : array of shape (n_subjects, n_tr, n_rois)
    settings : EncodingSettings
    return_predictions : bool
        Also return the test predictions and the test BOLD, both in the standardised
        units that ``r`` was computed from (see :class:`EncodingResult`).
    partition : bool
        With two feature sets, also fit each alone and return the variance partition.
    n_threads : int or None
        BLAS (and torch CPU) threads for the duration (None: unchanged).
    names : sequence of str, optional
        What to call each feature set in messages (default ``features[k]``).
    subject_names, roi_names : sequences of str, optional
        Names of the subjects and ROIs of ``bold``, for warnings (default: indices).
    backend, device : str
        Where the PCA, the alpha sweep, the refit and the predictions run: ``"numpy"``
        (CPU) or ``"torch"`` on ``device`` ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (see
        :mod:`featstore.evaluate.encoding.backend`). The features and the BOLD of the config are
        moved to the device once; r agrees with numpy's to ~1e-5 in float32.

    A feature set constant over the train TRs (e.g. an all-zero layer) cannot be learnt
    from: r, alpha and the partition are NaN for every subject and ROI, ``excluded``
    says why and a warning names the set (see :func:`~featstore.evaluate.encoding.preprocess.constant_set_reason`).

    Returns
    -------
    EncodingResult

    Examples
    --------
    >>> import numpy as np, featstore as fs
    >>> X = np.random.default_rng(0).standard_normal((200, 12))  # bold follows 2 TRs later:
    >>> bold = np.roll(X[:, :3], 2, axis=0) + np.random.default_rng(1).normal(size=(2, 200, 3))
    >>> assert fs.encode([X], bold, fs.EncodingSettings(pca=8, cv=3)).r.min() > 0.3
    """
    bold = np.asarray(bold)
    features = _check_inputs(features, bold)
    if partition and len(features) != 2:
        raise InputError(f"variance partitioning needs 2 feature sets, got {len(features)}")
    names = _feature_names(names, len(features))
    if not isinstance(backend, Backend):
        backend = get_backend(backend, device)
    n_subjects, n_tr, n_rois = bold.shape
    train_index, test_index, folds = _split_rows(n_tr, settings)
    banded = settings.method == "banded" and len(features) > 1
    if banded and 0 < settings.pca < len(features):
        raise InputError(
            f"pca={settings.pca} with method='banded': expected at least one component "
            f"per feature space ({len(features)})"
        )

    with blas_threads(n_threads), backend.threads(n_threads):
        Y_train, Y_test, mean, scale, constant = _targets(
            bold, train_index, test_index, settings.dtype
        )
        # the targets go to the device once per config, shared by every fit below
        Y_device = backend.asarray(Y_train, settings.dtype)
        train_rows, test_rows = backend.index(train_index), backend.index(test_index)

        def design(spaces: list[np.ndarray], n_components: int):
            return design_matrix(
                spaces, train_index, n_components, settings.delays, backend=backend
            )

        def fit_designs(designs: list) -> _Fit:
            return _fit(
                [x[train_rows] for x in designs],
                [x[test_rows] for x in designs],
                Y_device,
                settings,
                folds,
                backend,
            )

        if banded:
            per_space = split_components(settings.pca, len(features))
            spaces = [design([x], n) for x, n in zip(features, per_space, strict=True)]
            joint = fit_designs(spaces)
        else:
            spaces = None
            joint = fit_designs([design(features, settings.pca)])

        partition_out = None
        if partition:
            if spaces is None:
                spaces = [design([x], settings.pca) for x in features]
            partition_out = _variance_partition(
                Y_test, joint.predictions, *(fit_designs([x]).predictions for x in spaces)
            )

    excluded = constant_set_reason(
        [feature[train_index] for feature in features], names, f"the {len(train_index)} train TRs"
    )
    if excluded is not None:
        # a fit without information: no r, alpha or partition, and no edge statistics
        constant = np.ones_like(constant)
    shape = (n_subjects, n_rois)
    r = _nan_where(pearson_by_column(Y_test, joint.predictions), constant, shape)
    alpha = _nan_where(joint.alpha, constant, shape)
    band_alphas = _nan_where(joint.band_alphas, constant, (*shape, -1))
    n_edge, edge_warnings = _edge_counts(joint, settings, ~constant, n_subjects)
    cv_score = _nan_where(joint.cv_score, constant, shape)
    if partition_out is not None:
        partition_out = {k: _nan_where(v, constant, shape) for k, v in partition_out.items()}
    warnings = _result_warnings(
        settings,
        excluded,
        constant.reshape(n_subjects, n_rois),
        edge_warnings,
        subject_names,
        roi_names,
    )
    by_subject = (
        _by_subject(joint.predictions, Y_test, mean, scale, shape) if return_predictions else {}
    )
    return EncodingResult(
        r=r,
        alpha=alpha,
        band_alphas=band_alphas,
        partition=partition_out,
        predictions=by_subject.get("predictions"),
        test_index=test_index,
        train_index=train_index,
        n_edge_alpha=n_edge,
        warnings=warnings,
        cv_score=cv_score,
        observed=by_subject.get("observed"),
        bold_mean=by_subject.get("bold_mean"),
        bold_scale=by_subject.get("bold_scale"),
        excluded=excluded,
    )
