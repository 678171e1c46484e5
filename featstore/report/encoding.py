"""The report's section of one encoding result set: its tables, and its figures drawn in
the order ``encoding.html`` shows them (the figures are numbered as they are saved)."""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from featstore.errors import FeatstoreWarning, InputError
from featstore.evaluate.analyses.runner import analysis_runs
from featstore.evaluate.metrics.noise_ceiling import DEFAULT_CEILING_THRESHOLD
from featstore.evaluate.roi_groups import (
    BUILTIN_ROI_GROUPS,
    load_roi_groups,
    roi_group_indices,
)
from featstore.evaluate.runs import tables
from featstore.evaluate.runs.ceiling import ESTIMATOR, ceiling_for_run
from featstore.evaluate.runs.results import EXCLUDED_ATTR, complete_runs
from featstore.evaluate.runs.significance import load_stats
from featstore.evaluate.runs.summary import excluded_configs, story_summary
from featstore.plot.atlas import GLASSER_SHORT
from featstore.report.maps import MapKind, ParcelView, map_kind, mean_over_subjects, parcel_view
from featstore.report.page import _p_format, _Page, _table
from featstore.report.summaries import (
    best_config_summary,
    fusion_comparisons,
    settings_line,
    significance_counts,
)
from featstore.store import _schema as S
from featstore.store.groups import StorePath


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


def usable_groups(
    results: xr.Dataset, groups: Mapping[str, Sequence[str]]
) -> dict[str, Sequence[str]]:
    """The groups whose every area is among the ROIs of the results (custom atlases and
    vertex targets without HCP-MMP1.0 names may match none of the built-in groups).

    Parameters
    ----------
    results : xarray.Dataset
        Results with ``roi_name`` and ``hemisphere`` coords.
    groups : mapping
        Group name → areas.

    Returns
    -------
    dict
    """
    return _resolve_groups(results, groups)[0]


def _resolve_groups(
    results: xr.Dataset, groups: Mapping[str, Sequence[str]]
) -> tuple[dict[str, Sequence[str]], dict[str, str]]:
    """The usable groups, and the error naming the missing areas of each other group
    (none when the results carry no ROI names at all)."""
    if S.ROI_NAME_COORD not in results.coords or S.HEMISPHERE_COORD not in results.coords:
        return {}, {}
    names, hemis = _roi_coords(results)
    usable, errors = {}, {}
    for name, members in groups.items():
        try:
            roi_group_indices(names, hemis, members, group_name=name)
        except InputError as exc:
            errors[name] = str(exc)
            continue
        usable[name] = members
    return usable, errors


def groups_to_test(
    results: xr.Dataset, groups_file: str | os.PathLike | None = None
) -> dict[str, Sequence[str]]:
    """The built-in groups the results resolve, then every group of ``groups_file``.

    The built-in groups name HCP-MMP1.0 areas, so targets named otherwise (vertices, a
    custom atlas) keep none of them. The groups of a file are the user's request and are
    kept whole: one naming an area the data lack fails with that name when tested.

    Parameters
    ----------
    results : xarray.Dataset
        Results with ``roi_name`` and ``hemisphere`` coords.
    groups_file : path, optional
        A JSON or TOML file of groups (see
        :func:`featstore.evaluate.roi_groups.load_roi_groups`).

    Returns
    -------
    dict
        Group name → areas; a group of the file replaces a built-in one of that name.
    """
    chosen = dict(usable_groups(results, BUILTIN_ROI_GROUPS))
    if groups_file is not None:
        chosen.update(load_roi_groups(groups_file))
    return chosen


def _warn_unresolved_groups(
    groups: Mapping[str, Sequence[str]], errors: Mapping[str, str], heading: str
) -> None:
    """Warn, naming the areas, of each group left out that is not a built-in one: a
    user's group with a typo should not vanish from the report without a word."""
    for name, error in errors.items():
        if tuple(groups[name]) != BUILTIN_ROI_GROUPS.get(name):
            message = f"{error}; left out of the report's {heading!r}"
            warnings.warn(message, FeatstoreWarning, stacklevel=4)


def _story_table(results: xr.Dataset, configs: Sequence[str]) -> pd.DataFrame | None:
    """Mean r ± std across subjects per test story (columns) of the given configs."""
    if "r_story" not in results.data_vars:
        return None
    frame = story_summary(results.sel({S.CONFIG_DIM: list(configs)}))
    frame["cell"] = [
        f"{m:.4f} ± {s:.4f} ({n})"
        for m, s, n in zip(frame["mean"], frame["std"], frame["n_subjects"], strict=True)
    ]
    table = frame.pivot(index="config", columns="story", values="cell").reindex(list(configs))
    table.columns.name = None
    return table.reset_index()


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
    maps: MapKind | None = None
    parcels: ParcelView | None = None

    @property
    def results(self) -> xr.Dataset:
        return self.result_set.results

    @property
    def table_results(self) -> xr.Dataset:
        """What ROI tables and groups read: the parcels of vertex/voxel targets when an
        atlas names them, else the targets themselves."""
        return self.results if self.parcels is None else self.parcels.results

    @property
    def table_ceiling(self) -> xr.Dataset | None:
        """The noise ceiling on :attr:`table_results`' ROIs."""
        return self.ceiling if self.parcels is None else self.parcels.ceiling(self.ceiling)

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
    parcels: str | None = None,
    mesh_dir: str | None = None,
) -> None:
    """Render ``encoding.html`` for one result set, drawing its figures in page order.

    Vertex and voxel targets get maps on their surface or the MNI152 template
    (:func:`featstore.report.maps.map_kind`; ``mesh_dir`` for fsaverage6) and ROI tables
    of parcels (``parcels``: an atlas; default: the names the targets carry)."""
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
        "target_noun": _TARGET_NOUNS.get(results.attrs.get("target_kind"), "ROIs"),
        "settings": settings_line(result_set.settings, results.attrs),
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
    ceiling = ceiling_for_run(store, result_set.run_attrs[newest])
    stats = {r: s for r in result_set.runs if (s := load_stats(store, r)) is not None}
    frame = tables.config_table(results, ceiling=ceiling)
    section = _Section(page, result_set, frame, ceiling, stats, {}, alpha, top)
    section.maps = map_kind(results, mesh_dir=mesh_dir) if brain_maps else None
    section.parcels = parcel_view(results, parcels)
    section.groups, unresolved = _resolve_groups(section.table_results, groups)
    usable = section.groups
    _warn_unresolved_groups(groups, unresolved, heading)
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
    stories = _story_table(results, list(section.best_family["config"]))
    context["stories"] = None if stories is None else _table(stories)
    context["brain"] = _brain_part(section) if section.maps is not None else None
    context["no_map"] = brain_maps and section.maps is None
    context["parcels_of"] = section.parcels.grouping.atlas if section.parcels else None
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


_TARGET_NOUNS = {"vertex": "vertices", "voxel": "voxels"}


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
    # A profile needs layers at known depths: a one-layer low-level model has none.
    layer_profiles = (
        page.figure(compare.plot_layer_profiles(results), "layer-profiles", alt="layer profiles")
        if singles["depth"].notna().any()
        else None
    )
    return {
        "best_layers": best_layers,
        "window_trends": window_trends,
        "layer_profiles": layer_profiles,
    }


def _brain_part(section: _Section) -> dict[str, Any]:
    page, results, frame, ceiling = section.page, section.results, section.frame, section.ceiling
    draw = section.maps.draw
    panels = []
    for kind, rows in section.best_family.groupby("kind", sort=False):
        figure = draw(
            mean_over_subjects(results, list(rows["config"])),
            titles=[f"{row['config']} (mean r {row['mean']:.3f})" for _, row in rows.iterrows()],
            shared_scale=True,
            suptitle=f"Best config of each {kind} model",
        )
        panels.append(
            (kind, page.figure(figure, f"brain-{kind}", alt=f"brain maps {kind}", tight=False))
        )
    overall = frame.loc[frame["mean"].idxmax()]
    mask = _mask_for(overall, section.stats, section.alpha)
    figure = draw(
        mean_over_subjects(results, [overall["config"]]),
        masks=[mask],
        suptitle=f"Best config: {overall['config']}",
    )
    best = page.figure(figure, "brain-best", alt="brain map of the best config", tight=False)
    ceiling_map = None
    if ceiling is not None:
        figure = draw(
            [ceiling["ceiling"].values],
            suptitle="Noise ceiling (leave-one-subject-out ISC)",
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
        "views": section.maps.views,
    }


def _roi_top_part(section: _Section) -> list[dict[str, Any]]:
    from featstore.plot import compare

    page, top = section.page, section.top
    results, ceiling = section.table_results, section.table_ceiling
    items = []
    for _, row in section.best_family.drop_duplicates("kind").iterrows():
        config = row["config"]
        # p-values are per target: they do not apply to parcels averaged from targets
        run_stats = section.stats.get(str(row.get("run", ""))) if section.parcels is None else None
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

    page, groups = section.page, section.groups
    results, ceiling = section.table_results, section.table_ceiling
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
