"""The report's section of one encoding result set: its tables, and its figures drawn in
the order ``encoding.html`` shows them (the figures are numbered as they are saved)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from featstore.errors import InputError
from featstore.evaluate.analyses.runner import analysis_runs
from featstore.evaluate.metrics.noise_ceiling import DEFAULT_CEILING_THRESHOLD
from featstore.evaluate.roi_groups import roi_group_indices
from featstore.evaluate.runs import tables
from featstore.evaluate.runs.ceiling import ESTIMATOR, noise_ceiling_for, run_held_out_trs
from featstore.evaluate.runs.results import EXCLUDED_ATTR, complete_runs
from featstore.evaluate.runs.significance import load_stats
from featstore.evaluate.runs.summary import excluded_configs
from featstore.plot.atlas import GLASSER_SHORT, atlas_positions
from featstore.report.page import _p_format, _Page, _table
from featstore.report.summaries import (
    best_config_summary,
    fusion_comparisons,
    settings_line,
    significance_counts,
)
from featstore.store import _schema as S
from featstore.store.groups import StorePath, store_n_tr


def encoding_result_sets(store: StorePath, runs: Sequence[str] | None) -> list[tables.ResultSet]:
    """The result sets of the encoding runs among ``runs`` (default: all of them).

    None when only analysis groups are asked for, or the store holds nothing else: such a
    store still gets a report, of its analyses.
    """
    analyses = [r for r in analysis_runs(store) if runs is None or r in runs]
    encoding = None if runs is None else [r for r in runs if r not in analyses]
    if analyses and not (complete_runs(store) if encoding is None else encoding):
        return []
    return tables.load_result_sets(store, encoding)


def _config_values(results: xr.Dataset, config: str) -> np.ndarray:
    return results["r"].sel({S.CONFIG_DIM: config}).mean(S.SUBJECT_DIM).values


def _roi_coords(results: xr.Dataset) -> tuple[list[str], list[str]]:
    return (
        [str(n) for n in results[S.ROI_NAME_COORD].values],
        [str(h) for h in results[S.HEMISPHERE_COORD].values],
    )


def _mask_for(row: pd.Series, stats: Mapping[str, xr.Dataset], alpha: float) -> np.ndarray | None:
    run_stats = stats.get(str(row.get("run", "")))
    if run_stats is None or row["config"] not in set(run_stats[S.CONFIG_DIM].values):
        return None
    return ~(run_stats["q"].sel({S.CONFIG_DIM: row["config"]}).values < alpha)


def _usable_groups(
    results: xr.Dataset, groups: Mapping[str, Sequence[str]]
) -> dict[str, Sequence[str]]:
    """The groups whose every area is among the ROIs of the results (custom atlases may
    match none of the built-in HCP-MMP groups)."""
    if S.ROI_NAME_COORD not in results.coords or S.HEMISPHERE_COORD not in results.coords:
        return {}
    names, hemis = _roi_coords(results)
    usable = {}
    for name, members in groups.items():
        try:
            roi_group_indices(names, hemis, members, group_name=name)
        except InputError:
            continue
        usable[name] = members
    return usable


def _has_hcp_names(results: xr.Dataset) -> bool:
    if S.ROI_NAME_COORD not in results.coords or S.HEMISPHERE_COORD not in results.coords:
        return False
    try:
        atlas_positions(*_roi_coords(results))
    except InputError:
        return False
    return True


@dataclass
class _Section:
    """What every part of one report section reads."""

    page: _Page
    result_set: tables.ResultSet
    frame: pd.DataFrame
    ceiling: xr.Dataset | None
    stats: dict[str, xr.Dataset]
    groups: Mapping[str, Sequence[str]]
    alpha: float
    top: int

    @property
    def results(self) -> xr.Dataset:
        return self.result_set.results

    @property
    def best_family(self) -> pd.DataFrame:
        """The best config of each model (family), across windows and layers."""
        return tables.best_configs(self.frame, by=("family",))


def add_encoding_section(
    page: _Page,
    store: StorePath,
    result_set: tables.ResultSet,
    *,
    heading: str,
    top: int,
    groups: Mapping[str, Sequence[str]],
    alpha: float,
    brain_maps: bool,
) -> None:
    """Render ``encoding.html`` for one result set, drawing its figures in page order."""
    excluded = _excluded(result_set)
    labels = [str(c) for c in result_set.results[S.CONFIG_DIM].values]
    result_set = dataclasses.replace(
        result_set,
        results=result_set.results.isel(
            {S.CONFIG_DIM: [i for i, label in enumerate(labels) if label not in excluded]}
        ),
    )
    results = result_set.results
    context: dict[str, Any] = {
        "heading": heading,
        "runs": result_set.runs,
        "n_configs": results.sizes[S.CONFIG_DIM],
        "n_excluded": len(excluded),
        "n_subjects": results.sizes[S.SUBJECT_DIM],
        "n_rois": results.sizes[S.ROI_DIM],
        "settings": settings_line(result_set.settings),
        "excluded_table": _table(
            pd.DataFrame({"config": list(excluded), "reason": list(excluded.values())})
        )
        if excluded
        else None,
        "summary": None,
    }
    if not results.sizes[S.CONFIG_DIM]:
        page.render("encoding.html", **context)
        return
    newest = result_set.runs[-1]
    ceiling = noise_ceiling_for(
        store, run_held_out_trs(result_set.run_attrs[newest], store_n_tr(store))
    )
    stats = {r: s for r in result_set.runs if (s := load_stats(store, r)) is not None}
    frame = tables.config_table(results, ceiling=ceiling)
    usable = _usable_groups(results, groups)
    section = _Section(page, result_set, frame, ceiling, stats, usable, alpha, top)
    context.update(
        summary=_table(best_config_summary(frame, stats, alpha)),
        ceiling=ceiling is not None,
        estimator=ESTIMATOR,
        ceiling_threshold=DEFAULT_CEILING_THRESHOLD,
        alpha=alpha,
        top=top,
        glasser_short=GLASSER_SHORT,
        run_attrs=result_set.run_attrs,
    )
    # one statement per part: the figures are numbered in the order they are drawn
    context["models"] = _models_part(section)
    context["brain"] = _brain_part(section) if brain_maps and _has_hcp_names(results) else None
    context["roi_top"] = _roi_top_part(section)
    context["fusion"] = _fusion_part(section)
    context["groups"] = _groups_part(section) if usable else None
    context["no_group_match"] = bool(groups) and not usable
    context["significance"] = _table(significance_counts(stats, alpha)) if stats else None
    page.render("encoding.html", **context)


def _excluded(result_set: tables.ResultSet) -> dict[str, str]:
    """The configs of a result set without any finite r, with the reason (the runs'
    ``excluded`` attrs, newest run last so that it wins)."""
    reasons: dict[str, str] = {}
    for run_id in result_set.runs:
        reasons.update(result_set.run_attrs[run_id].get(EXCLUDED_ATTR) or {})
    return excluded_configs(result_set.results, reasons)


def _models_part(section: _Section) -> dict[str, Any]:
    from featstore.plot import compare

    page, results, frame = section.page, section.results, section.frame
    best_layers = page.figure(
        compare.plot_best_layers(results), "best-layers", alt="best config per model"
    )
    window_trends = []
    singles = frame[frame["kind"] != "fusion"]
    for kind, unit in (("tr", "audio windows (TRs)"), ("ctx", "text context (words)")):
        windows = singles[[w.startswith(kind) for w in singles["window"]]]
        if windows.groupby("family")["window"].nunique().max(skipna=True) > 1:
            figure = compare.plot_window_trends(results, window_kind=kind)
            trends = page.figure(figure, f"window-trends-{kind}", alt=f"window trends {kind}")
            window_trends.append((unit, trends))
    layer_profiles = (
        page.figure(compare.plot_layer_profiles(results), "layer-profiles", alt="layer profiles")
        if not singles.empty
        else None
    )
    return {
        "best_layers": best_layers,
        "window_trends": window_trends,
        "layer_profiles": layer_profiles,
    }


def _brain_part(section: _Section) -> dict[str, Any]:
    from featstore.plot.brain import plot_brain, plot_brain_panels

    page, results, frame, ceiling = section.page, section.results, section.frame, section.ceiling
    names, hemis = _roi_coords(results)
    panels = []
    for kind, rows in section.best_family.groupby("kind", sort=False):
        figure = plot_brain_panels(
            [_config_values(results, c) for c in rows["config"]],
            titles=[f"{row['config']} (mean r {row['mean']:.3f})" for _, row in rows.iterrows()],
            roi_names=names,
            hemispheres=hemis,
            shared_scale=True,
            suptitle=f"Best config of each {kind} model",
        )
        panels.append(
            (kind, page.figure(figure, f"brain-{kind}", alt=f"brain maps {kind}", tight=False))
        )
    overall = frame.loc[frame["mean"].idxmax()]
    mask = _mask_for(overall, section.stats, section.alpha)
    figure = plot_brain(
        _config_values(results, overall["config"]),
        roi_names=names,
        hemispheres=hemis,
        mask=mask,
        title=f"Best config: {overall['config']}",
    )
    best = page.figure(figure, "brain-best", alt="brain map of the best config", tight=False)
    ceiling_map = None
    if ceiling is not None:
        figure = plot_brain(
            ceiling["ceiling"].values,
            roi_names=names,
            hemispheres=hemis,
            title="Noise ceiling (leave-one-subject-out ISC)",
            colorbar_label="ISC r",
        )
        ceiling_map = page.figure(
            figure, "brain-ceiling", alt="noise ceiling brain map", tight=False
        )
    return {
        "panels": panels,
        "best": best,
        "best_config": overall["config"],
        "masked": mask is not None,
        "ceiling": ceiling_map,
    }


def _roi_top_part(section: _Section) -> list[dict[str, Any]]:
    from featstore.plot import compare

    page, results, ceiling, top = section.page, section.results, section.ceiling, section.top
    items = []
    for _, row in section.best_family.drop_duplicates("kind").iterrows():
        config = row["config"]
        run_stats = section.stats.get(str(row.get("run", "")))
        figure = compare.plot_roi_top(results, config, top=top, ceiling=ceiling, stats=run_stats)
        roi_frame = tables.ranked_roi_table(results, config, ceiling=ceiling, stats=run_stats).head(
            top
        )
        roi_frame = roi_frame.drop(columns=["roi_name", "hemisphere"])
        for column in ("p", "q"):
            if column in roi_frame:
                roi_frame[column] = roi_frame[column].map(_p_format)
        items.append(
            {
                "figure": page.figure(figure, f"roi-top-{config}", alt=f"top ROIs {config}"),
                "config": config,
                "kind": row["kind"],
                "tested": run_stats is not None,
                "table": _table(roi_frame),
            }
        )
    return items


def _fusion_part(section: _Section) -> dict[str, Any] | None:
    from featstore.plot import compare

    page, results, frame = section.page, section.results, section.frame
    fusion = frame[frame["kind"] == "fusion"]
    if fusion.empty:
        return None
    heatmaps = [
        (
            pair,
            page.figure(
                compare.plot_fusion_heatmap(results, pair=pair),
                f"fusion-{pair}",
                alt=f"fusion heatmap {pair}",
            ),
        )
        for pair in dict.fromkeys(tables.fusion_pairs(fusion))
    ]
    comparisons = fusion_comparisons(results, frame, section.groups)
    if not comparisons.empty:
        comparisons["p"] = comparisons["p"].map(_p_format)
    return {
        "heatmaps": heatmaps,
        "comparisons": None
        if comparisons.empty
        else _table(comparisons.drop(columns=["statistic"])),
    }


def _groups_part(section: _Section) -> dict[str, Any]:
    from featstore.plot import compare

    page, results, ceiling, groups = section.page, section.results, section.ceiling, section.groups
    configs = list(section.best_family["config"])
    figure = compare.plot_roi_groups(results, configs, groups, ceiling=ceiling)
    summary = page.figure(figure, "roi-groups", alt="ROI group summary")
    normalized = None
    if ceiling is not None:
        figure = compare.plot_roi_groups(
            results,
            configs,
            groups,
            ceiling=ceiling,
            normalized=True,
            title="ROI groups, r / noise ceiling",
        )
        normalized = page.figure(
            figure, "roi-groups-normalized", alt="ROI group summary normalized"
        )
    return {"figure": summary, "members": groups, "normalized": normalized}
