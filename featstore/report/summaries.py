"""The tables of an encoding section of the report, as DataFrames: the best config of
each model and window, permutation-test counts, each fusion against its single parts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from featstore.evaluate.runs import tables
from featstore.evaluate.runs.significance import compare_configs
from featstore.store import _schema as S


def _best_label(row: pd.Series) -> str:
    if row["kind"] == "fusion":
        return f"{row['layer']}×{row['partner_layer']}"
    return f"layer {row['layer']}"


def best_config_summary(
    config_frame: pd.DataFrame, stats: Mapping[str, xr.Dataset], alpha: float
) -> pd.DataFrame:
    """The best layer of each model and window: the summary statistics of its per-subject
    scores, r / ceiling when known, and the ROIs significant at FDR ``alpha``."""
    best = tables.best_configs(config_frame, by=("family", "window"))
    out = pd.DataFrame(
        {
            "model": best["family"],
            "kind": best["kind"],
            "window": [
                f"{w}+{pw}" if k == "fusion" else w
                for w, pw, k in zip(
                    best["window"], best["partner_window"], best["kind"], strict=True
                )
            ],
            "best": [_best_label(row) for _, row in best.iterrows()],
            "mean r": best["mean"],
            "std": best["std"],
            "median": best["median"],
            "min": best["min"],
            "max": best["max"],
        }
    )
    if "mean_normalized" in best:
        out["r / ceiling"] = best["mean_normalized"].to_numpy()
    significant = []
    for _, row in best.iterrows():
        run_stats = stats.get(str(row.get("run", "")))
        if run_stats is not None and row["config"] in set(run_stats[S.CONFIG_DIM].values):
            q = run_stats["q"].sel({S.CONFIG_DIM: row["config"]}).values
            significant.append(f"{int(np.sum(q < alpha))}/{q.size}")
        else:
            significant.append("–")
    if any(s != "–" for s in significant):
        out[f"ROIs q<{alpha:g}"] = significant
    return out


def settings_line(settings: Mapping[str, Any], run_attrs: Mapping[str, Any] | None = None) -> str:
    """The encoding settings of a result set on one line (the alpha grid summarised).

    A run across stories shows its split and test stories instead of ``test_frac`` and
    ``cv``, which it does not use."""
    split = (run_attrs or {}).get("split")
    keys = ("test_frac", "trim", "gap", "pca", "delays", "cv", "alpha", "method", "dtype")
    if split:
        keys = tuple(k for k in keys if k not in ("test_frac", "cv"))
    shown = [f"{k}={settings[k]}" for k in keys if k in settings]
    if split:
        tested = ", ".join(str(s) for s in (run_attrs or {}).get("test_stories") or [])
        shown.insert(0, f"split={split} (test stories: {tested})")
    alphas = settings.get("alphas")
    if alphas:
        shown.append(f"alphas={len(alphas)} values {min(alphas):g}…{max(alphas):g}")
    return ", ".join(shown)


def significance_counts(stats: Mapping[str, xr.Dataset], alpha: float) -> pd.DataFrame:
    """Per run and config tested: the ROIs significant at FDR ``alpha``, the draws."""
    rows = []
    for run_id, run_stats in stats.items():
        for config in run_stats[S.CONFIG_DIM].values:
            tested = run_stats.sel({S.CONFIG_DIM: config})
            q = tested["q"].values
            rows.append(
                {
                    "run": run_id,
                    "config": str(config),
                    f"ROIs q<{alpha:g}": int(np.sum(q < alpha)),
                    "ROIs": int(q.size),
                    "draws": int(tested["n_perm"].values),
                    "method": f"{tested['perm_method'].values} ({int(tested['perm_block'])} TRs)",
                }
            )
    return pd.DataFrame(rows)


def fusion_comparisons(
    results: xr.Dataset, frame: pd.DataFrame, groups: Mapping[str, Sequence[str]]
) -> pd.DataFrame:
    """Best config of each fusion pair against the best single config of each part."""
    fusion = frame[frame["kind"] == "fusion"]
    singles = frame[frame["kind"] != "fusion"]
    tables_out = []
    best_fusions = fusion.loc[
        fusion.groupby(["family", "window", "partner_window", "method"], sort=False)[
            "mean"
        ].idxmax()
    ]
    for _, row in best_fusions.iterrows():
        for key, window in (
            (row["feature"], row["window"]),
            (row["partner"], row["partner_window"]),
        ):
            candidates = singles[(singles["feature"] == key) & (singles["window"] == window)]
            if candidates.empty:
                continue
            single = candidates.loc[candidates["mean"].idxmax(), "config"]
            table = compare_configs(results, row["config"], single, groups=groups)
            tables_out.append(table)
    if not tables_out:
        return pd.DataFrame()
    out = pd.concat(tables_out, ignore_index=True)
    return out.rename(
        columns={
            "config_a": "fusion",
            "config_b": "single",
            "mean_a": "mean r fusion",
            "mean_b": "mean r single",
        }
    )
