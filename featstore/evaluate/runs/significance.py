"""Significance of a run's results, stored beside them, and paired comparisons of configs.

Permutation p-values of a run go to the group ``results/<run_id>/stats`` (a sub-group of
the run, so rewriting the run removes stale p-values with it):

* ``r`` (config, subject, roi): test-set r recomputed from the predictions;
* ``p_subject`` (config, subject, roi): one-sided permutation p of each subject's r;
* ``r_mean`` (config, roi), ``p`` (config, roi): the subject-mean r and its p-value —
  every subject's predictions permuted with the same draw, because the stimulus (hence
  the prediction's time course) is shared;
* ``q`` (config, roi): Benjamini–Hochberg FDR of ``p`` across the ROIs of each config;
* ``n_perm``, ``perm_method``, ``perm_block``, ``perm_seed`` (config): how each config
  was tested;
* attrs: ``statistic`` (what p and q mean), ``settings`` (the run's), ``run``.

Predictions are recomputed from the store with the run's settings (the results keep only
r), so the test sees exactly the model the run fitted, in the standardised units its r was
computed from: the observed r equals the run's r.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from featstore.errors import InputError
from featstore.evaluate.metrics.stats import (
    check_fdr_level,
    fdr_bh,
    paired_wilcoxon,
    permutation_test,
)
from featstore.evaluate.roi_groups import roi_group_indices, roi_labels
from featstore.evaluate.runs.results import run_settings
from featstore.outputs import writing_file
from featstore.store import _schema as S
from featstore.store.groups import StorePath, group_attrs, group_exists, open_group, write_group
from featstore.store.paths import result_group

STATISTIC = (
    "one-sided permutation test of test-set Pearson r; p = (1 + #null >= observed) / "
    "(1 + n_perm); p for the subject mean permutes all subjects with the same draw; "
    "q = Benjamini-Hochberg across ROIs per config"
)

SUBJECT_STATISTIC = (
    "one-sided Wilcoxon signed-rank test across subjects that the test r is above 0, per "
    "config and target (runs across stories keep no predictions to permute); subjects "
    "without an r are left out; q = Benjamini-Hochberg across targets per config"
)
SUBJECT_METHOD = "wilcoxon-subjects"
_INDEX_COORDS = ("vertex", "voxel")
CROSS_STORY_SPLITS = ("test-stories", "cv-stories")

#: ``predict(config) -> (predictions, observed)``, both (subject, test TR, roi).
Predictor = Callable[[str], tuple[np.ndarray, np.ndarray]]


def stats_group(run_id: str) -> str:
    """Group path of a run's permutation statistics: ``results/<run_id>/stats``."""
    return f"{result_group(run_id)}/{S.RESULT_STATS}"


def load_stats(store: StorePath, run_id: str) -> xr.Dataset | None:
    """A run's stored permutation statistics, or None if none were computed."""
    group = stats_group(run_id)
    if not group_exists(store, group):
        return None
    return open_group(store, group).load()


def store_predictor(store: StorePath, run_id: str) -> Predictor:
    """Recompute a config's test-set predictions from the store with the run's settings.

    Predictions and test BOLD come back in the evaluator's standardised units — the very
    arrays the run's r was computed from — so the permutation test's observed r is the
    run's r.
    """
    from featstore.evaluate.runs.scheduling import run_config

    settings = run_settings(group_attrs(store, result_group(run_id)))

    def predict(config: str) -> tuple[np.ndarray, np.ndarray]:
        # No variance partitioning: only the joint model's predictions are tested.
        result = run_config(store, config, settings, return_predictions=True, partition=False)
        return np.asarray(result.predictions), np.asarray(result.observed)

    return predict


def run_significance(
    store: StorePath,
    run_id: str,
    configs: Sequence[str] | None = None,
    *,
    n_perm: int = 10_000,
    method: str = "block",
    block: int = 10,
    seed: int = 0,
    predict: Predictor | None = None,
    on_config: Callable[[str], None] | None = None,
) -> xr.Dataset:
    """Test configs of a run and store the p-values in ``results/<run_id>/stats``.

    A run across stories (attr ``split``) keeps no predictions, so its configs get a
    group-level test instead of permutations: per target, a one-sided Wilcoxon
    signed-rank test across subjects that r > 0 (:func:`subjects_above_zero`; method
    ``wilcoxon-subjects``, ``n_perm`` 0, no ``p_subject``).

    Parameters
    ----------
    store : path
    run_id : str
    configs : sequence of str, optional
        Config labels to test (default: every config of the run).
    n_perm, method, block, seed
        See :func:`featstore.evaluate.metrics.stats.permutation_test`.
    predict : callable, optional
        ``predict(config) -> (predictions, observed)``; default recomputes the
        predictions from the store (:func:`store_predictor`).
    on_config : callable, optional
        Called with each config label once it is done (progress bars).

    Returns
    -------
    xarray.Dataset
        The stats group as written (configs tested before and not retested are kept).
    """
    results = open_group(store, result_group(run_id))
    labels = [str(c) for c in results[S.CONFIG_DIM].values]
    configs = list(labels if configs is None else configs)
    unknown = [c for c in configs if c not in labels]
    if unknown:
        raise InputError(f"config {unknown[0]!r} is not in run {run_id!r}")
    if predict is None and is_cross_story(results.attrs):
        per_config = []
        for config in configs:
            per_config.append(_subject_test(results, config))
            if on_config is not None:
                on_config(config)
        statistic = SUBJECT_STATISTIC
    else:
        per_config = _permutation_tests(
            configs,
            predict or store_predictor(store, run_id),
            dict(n_perm=n_perm, method=method, block=block, seed=seed),
            on_config,
        )
        statistic = STATISTIC
    fresh = xr.concat(per_config, dim=S.CONFIG_DIM, coords="all")
    coords = {S.CONFIG_DIM: np.array(configs, dtype=object)}
    for name in (S.SUBJECT_DIM, S.ROI_DIM, S.ROI_NAME_COORD, S.HEMISPHERE_COORD, *_INDEX_COORDS):
        if name in results.coords:
            coords[name] = results[name].variable.to_base_variable().load()
    fresh = fresh.assign_coords(coords)
    previous = load_stats(store, run_id)
    if previous is not None:
        kept = [str(c) for c in previous[S.CONFIG_DIM].values if str(c) not in configs]
        if kept:
            fresh = xr.concat([previous.sel({S.CONFIG_DIM: kept}), fresh], dim=S.CONFIG_DIM)
    order = [c for c in labels if c in set(fresh[S.CONFIG_DIM].values)]
    fresh = fresh.sel({S.CONFIG_DIM: order})
    fresh.attrs = {
        "statistic": statistic,
        "settings": dict(results.attrs.get("settings", {})),
        "run": run_id,
    }
    write_group(store, stats_group(run_id), fresh, overwrite=True)
    return fresh


def _permutation_tests(
    configs: Sequence[str],
    predict: Predictor,
    options: Mapping[str, Any],
    on_config: Callable[[str], None] | None,
) -> list[xr.Dataset]:
    per_config = []
    for config in configs:
        predictions, observed = predict(config)
        outcome = permutation_test(predictions, observed, **options)
        per_config.append(
            xr.Dataset(
                {
                    "r": ((S.SUBJECT_DIM, S.ROI_DIM), outcome.r.astype(np.float32)),
                    "p_subject": ((S.SUBJECT_DIM, S.ROI_DIM), outcome.p_subject),
                    "r_mean": ((S.ROI_DIM,), outcome.r_mean.astype(np.float32)),
                    "p": ((S.ROI_DIM,), outcome.p_mean),
                    "q": ((S.ROI_DIM,), fdr_bh(outcome.p_mean)),
                },
                # How each config was tested travels with it, so configs tested in
                # separate calls (other draws, other blocks) can share the group.
                coords={
                    "n_perm": outcome.n_perm,
                    "perm_method": np.array(outcome.method, dtype=object),
                    "perm_block": outcome.block,
                    "perm_seed": outcome.seed,
                },
            )
        )
        if on_config is not None:
            on_config(config)
    return per_config


def is_cross_story(attrs: Mapping[str, Any]) -> bool:
    """Whether a run's attrs describe a run across stories (``split`` attr)."""
    return attrs.get("split") in CROSS_STORY_SPLITS


def subjects_above_zero(r: np.ndarray) -> np.ndarray:
    """One-sided Wilcoxon signed-rank p that r > 0 across subjects, per target.

    Parameters
    ----------
    r : numpy.ndarray
        (subject, target); NaN where a subject has no r (left out of that target's test).

    Returns
    -------
    numpy.ndarray
        (target,) p-values; NaN for a target with fewer than 2 finite subjects.

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.evaluate.runs.significance import subjects_above_zero
    >>> r = np.array([[0.2, -0.1], [0.3, 0.1], [0.1, -0.2], [0.25, np.nan]])
    >>> subjects_above_zero(r).round(4).tolist()
    [0.0625, 0.875]
    """
    r = np.asarray(r, dtype=np.float64)
    valid = np.isfinite(r)
    p = np.full(r.shape[1], np.nan)
    # scipy tests columns with a NaN one by one (seconds per thousand targets): test the
    # targets sharing a pattern of missing subjects together, each without the NaN rows
    patterns, inverse = np.unique(valid.T, axis=0, return_inverse=True)
    for k, pattern in enumerate(patterns):
        if pattern.sum() < 2:
            continue
        columns = np.flatnonzero(inverse.ravel() == k)
        values = r[np.ix_(pattern, columns)]
        p[columns] = paired_wilcoxon(values, np.zeros_like(values), alternative="greater").p_value
    return p


def _subject_test(results: xr.Dataset, config: str) -> xr.Dataset:
    r = np.asarray(results["r"].sel({S.CONFIG_DIM: config}).values, dtype=np.float64)
    p = subjects_above_zero(r)
    finite = np.isfinite(r)
    with np.errstate(invalid="ignore", divide="ignore"):
        r_mean = np.where(finite, r, 0.0).sum(axis=0) / finite.sum(axis=0)
    return xr.Dataset(
        {
            "r_mean": ((S.ROI_DIM,), r_mean.astype(np.float32)),
            "p": ((S.ROI_DIM,), p),
            "q": ((S.ROI_DIM,), fdr_bh(p)),
        },
        coords={
            "n_perm": 0,
            "perm_method": np.array(SUBJECT_METHOD, dtype=object),
            "perm_block": 0,
            "perm_seed": 0,
        },
    )


def stats_table(stats: xr.Dataset, *, alpha: float = 0.05) -> pd.DataFrame:
    """Long table of a stats group: one row per config and ROI (for CSV export)."""
    check_fdr_level(alpha)
    frame = stats[["r_mean", "p", "q"]].to_dataframe().reset_index()
    if S.HEMISPHERE_COORD in frame and S.ROI_NAME_COORD in frame:
        frame.insert(2, "label", roi_labels(frame[S.ROI_NAME_COORD], frame[S.HEMISPHERE_COORD]))
    frame["significant"] = frame["q"] < alpha
    frame.insert(0, "run", stats.attrs.get("run", ""))
    return frame


def export_stats_csv(stats: xr.Dataset, path: str | os.PathLike, *, alpha: float = 0.05) -> Path:
    """Write :func:`stats_table` to ``path`` as CSV; return the path."""
    path = Path(path)
    with writing_file(path, "CSV file") as file:
        stats_table(stats, alpha=alpha).to_csv(file, index=False)
    return path


def significance_mask(stats: xr.Dataset | None, config: str, *, alpha: float) -> np.ndarray:
    """True for ROIs of ``config`` NOT significant at FDR level ``alpha`` (to gray them out)."""
    check_fdr_level(alpha)
    if stats is None or config not in [str(c) for c in stats[S.CONFIG_DIM].values]:
        raise InputError(
            f"no permutation statistics for {config!r}; run `evaluate significance` first"
        )
    q = stats["q"].sel({S.CONFIG_DIM: config}).values
    return ~(q < alpha)


def compare_configs(
    results: xr.Dataset,
    config_a: str,
    config_b: str,
    *,
    groups: Mapping[str, Sequence[str]] | None = None,
    per_roi: bool = False,
    alternative: str = "two-sided",
) -> pd.DataFrame:
    """Paired Wilcoxon signed-rank tests of two configs across subjects.

    Rows: ``all ROIs`` (per-subject mean r over every ROI), then each ROI group, then —
    with ``per_roi`` — every ROI (with BH q across ROIs). Columns: scope, n_rois,
    n_subjects, mean_a, mean_b, median_difference (a - b), rank_biserial, statistic, p
    (and q for ROI rows).
    """
    labels = [str(c) for c in results[S.CONFIG_DIM].values]
    for config in (config_a, config_b):
        if config not in labels:
            raise InputError(f"config {config!r} is not in the results")
    r_a = results["r"].sel({S.CONFIG_DIM: config_a}).values.astype(np.float64)
    r_b = results["r"].sel({S.CONFIG_DIM: config_b}).values.astype(np.float64)
    scopes: list[tuple[str, np.ndarray]] = [("all ROIs", np.arange(r_a.shape[1]))]
    if groups:
        names = results[S.ROI_NAME_COORD].values
        hemis = results[S.HEMISPHERE_COORD].values
        for name, members in groups.items():
            scopes.append((name, roi_group_indices(names, hemis, members, group_name=name)))
    rows = []
    for scope, index in scopes:
        test = paired_wilcoxon(
            np.nanmean(r_a[:, index], axis=1),
            np.nanmean(r_b[:, index], axis=1),
            alternative=alternative,
        )
        rows.append(_comparison_row(scope, len(index), test))
    frame = pd.DataFrame(rows)
    if per_roi:
        test = paired_wilcoxon(r_a, r_b, alternative=alternative)
        roi_rows = pd.DataFrame(
            {
                "scope": roi_labels(
                    results[S.ROI_NAME_COORD].values, results[S.HEMISPHERE_COORD].values
                ),
                "n_rois": 1,
                "n_subjects": test.n,
                "mean_a": test.mean_a,
                "mean_b": test.mean_b,
                "median_difference": test.median_difference,
                "rank_biserial": test.rank_biserial,
                "statistic": test.statistic,
                "p": test.p_value,
                "q": fdr_bh(test.p_value),
            }
        )
        frame = pd.concat([frame, roi_rows], ignore_index=True)
    frame.insert(0, "config_b", config_b)
    frame.insert(0, "config_a", config_a)
    return frame


def _comparison_row(scope: str, n_rois: int, test) -> dict:
    return {
        "scope": scope,
        "n_rois": n_rois,
        "n_subjects": int(test.n),
        "mean_a": float(test.mean_a),
        "mean_b": float(test.mean_b),
        "median_difference": float(test.median_difference),
        "rank_biserial": float(test.rank_biserial),
        "statistic": float(test.statistic),
        "p": float(test.p_value),
    }
