"""Tables from evaluation results: per-config summaries, best layers, ROI rankings, ROI groups.

Everything takes a results dataset (``results/<run_id>`` opened with xarray, or several
runs combined by :func:`combine_runs`) and returns a :class:`pandas.DataFrame`. The
summary statistic of a config is the reference study's (and ``evaluate summary``'s): the
per-subject mean of r over all ROIs, then its mean, std (across subjects, ddof=0 as
``numpy.std``), median, min and max.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from featstore.errors import InputError
from featstore.evaluate.metrics.noise_ceiling import DEFAULT_CEILING_THRESHOLD, normalized_r
from featstore.evaluate.roi_groups import roi_group_indices
from featstore.evaluate.runs.configs import display_name
from featstore.evaluate.runs.results import complete_runs, fusion_model_names
from featstore.evaluate.runs.summary import STORY_DIM, STORY_VAR, nanmean, subject_scores
from featstore.evaluate.runs.targets import TARGET_ATTRS, target_kind, target_labels
from featstore.store import _schema as S
from featstore.store.groups import StorePath, group_attrs, open_group
from featstore.store.paths import result_group

CONFIG_FIELDS = (
    "feature",
    "model",
    "window",
    "layer",
    "partner",
    "partner_model",
    "partner_window",
    "partner_layer",
    "method",
    "kind",
    "n_layers",
)
#: The kinds of configs, in the order tables and figures show them.
KIND_ORDER = (*S.MODALITIES, "fusion")
_OPTIONAL_VARS = ("unique_a", "unique_b", "shared")
# Settings that do not change single configs (the fusion method), left out when
# deciding whether runs can be compared side by side.
_PER_RUN_SETTINGS = ("method",)
# Run attrs of runs across stories: runs of other splits are not comparable.
_SPLIT_ATTRS = ("split", "test_stories", "stories")
_COMBINED_DIMS = (S.RESULT_DIMS, (S.CONFIG_DIM, STORY_DIM, S.SUBJECT_DIM, S.ROI_DIM))


@dataclass
class ResultSet:
    """Runs evaluated with the same settings, combined along ``config``.

    Attributes
    ----------
    runs : list of str
        Run ids, oldest first.
    settings : dict
        The shared encoding settings.
    results : xarray.Dataset
        ``r`` (config, subject, roi) and the config coordinates, plus a ``run``
        coordinate along ``config``; a config present in several runs is kept once
        (from the newest run).
    run_attrs : dict
        Attrs of each run, by run id (settings, provenance, created…).
    """

    runs: list[str]
    settings: dict[str, Any]
    results: xr.Dataset
    run_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)


def _settings_key(attrs: Mapping[str, Any]) -> str:
    kept = {k: v for k, v in dict(attrs.get("settings", {})).items() if k not in _PER_RUN_SETTINGS}
    kept.update({k: attrs[k] for k in _SPLIT_ATTRS if k in attrs})
    return json.dumps(kept, sort_keys=True, default=str)


def combine_runs(datasets: Mapping[str, xr.Dataset]) -> xr.Dataset:
    """Concatenate runs along ``config`` (later runs win for a config in several runs).

    Variables missing from a run (e.g. variance partitioning in a run without fusion)
    are filled with NaN; only variables along (config, subject, roi) are kept.
    """
    if not datasets:
        raise InputError("no results to combine")
    names = set()
    for ds in datasets.values():
        names |= {n for n, v in ds.data_vars.items() if v.dims in _COMBINED_DIMS}
    seen: set[str] = set()
    parts = []
    for run_id, ds in reversed(list(datasets.items())):
        labels = [str(c) for c in ds[S.CONFIG_DIM].values]
        keep = [i for i, label in enumerate(labels) if label not in seen]
        seen.update(labels)
        if not keep:
            continue
        part = ds.isel({S.CONFIG_DIM: keep})
        part = part[[n for n in part.data_vars if n in names]]
        for name in names - set(part.data_vars):
            part[name] = xr.full_like(part["r"], np.nan)
        part = part.assign_coords(run=(S.CONFIG_DIM, np.array([run_id] * len(keep), dtype=object)))
        # Keep the config fields every run has; per-run extras (hashes) are dropped.
        wanted = {S.CONFIG_DIM, "run", *CONFIG_FIELDS}
        extra = [c for c in part.coords if S.CONFIG_DIM in part[c].dims and c not in wanted]
        parts.append(part.drop_vars(extra))
    combined = xr.concat(
        list(reversed(parts)), dim=S.CONFIG_DIM, join="exact", coords="minimal", compat="override"
    )
    # the targets (and the split of runs across stories) are those of every run of a set
    newest = list(datasets.values())[-1].attrs
    combined.attrs = {k: newest[k] for k in (*TARGET_ATTRS, *_SPLIT_ATTRS) if k in newest}
    return combined


def load_result_sets(store: StorePath, run_ids: Sequence[str] | None = None) -> list[ResultSet]:
    """The complete runs of a store (or ``run_ids``), grouped by identical settings."""
    available = complete_runs(store)
    if run_ids is None:
        run_ids = available
    missing = [r for r in run_ids if r not in available]
    if missing:
        raise InputError(
            f"no complete run {missing[0]!r} in {store}; complete runs: "
            f"{', '.join(available) or 'none (run `evaluate grid` first)'}"
        )
    if not run_ids:
        raise InputError(f"no complete evaluation run in {store}; run `evaluate grid` first")
    attrs = {r: group_attrs(store, result_group(r)) for r in run_ids}
    ordered = sorted(run_ids, key=lambda r: (str(attrs[r].get("created", "")), r))
    groups: dict[str, list[str]] = {}
    for run_id in ordered:
        groups.setdefault(_settings_key(attrs[run_id]), []).append(run_id)
    sets = []
    for runs in groups.values():
        datasets = {r: _opened(store, r) for r in runs}
        sets.append(
            ResultSet(
                runs=runs,
                settings=dict(attrs[runs[-1]].get("settings", {})),
                results=combine_runs(datasets),
                run_attrs={r: attrs[r] for r in runs},
            )
        )
    return sets


def _opened(store: StorePath, run_id: str) -> xr.Dataset:
    ds = fusion_model_names(open_group(store, result_group(run_id)))
    # vertex and voxel runs stay lazy: summaries read them one config at a time
    return ds if target_kind(ds.attrs) != "parcel" else ds.load()


def config_table(
    results: xr.Dataset,
    *,
    ceiling: xr.Dataset | None = None,
    ceiling_threshold: float = DEFAULT_CEILING_THRESHOLD,
) -> pd.DataFrame:
    """One row per config: its coordinates and the summary of per-subject mean r.

    Columns: ``config``, the config fields (``model`` is ``A+B`` for a fusion),
    ``family`` (the same as ``model``), ``depth`` (layer / n_layers),
    ``mean``, ``std`` (across subjects, ddof=0), ``median``, ``min``, ``max``,
    ``n_subjects``, and with a noise ceiling ``mean_normalized`` (per-subject mean over
    ROIs of r / ceiling, ROIs with ceiling below the threshold left out, then averaged).
    """
    results = fusion_model_names(results)
    scores = subject_scores(results)
    frame = pd.DataFrame({"config": [str(c) for c in results[S.CONFIG_DIM].values]})
    for name in CONFIG_FIELDS:
        if name in results.coords:
            frame[name] = results[name].values
    if "run" in results.coords:
        frame["run"] = results["run"].values
    # a config's model family: the model, ``A+B`` for a fusion
    frame["family"] = frame["model"]
    n_layers = frame["n_layers"].where(frame["n_layers"] > 0) if "n_layers" in frame else np.nan
    frame["depth"] = frame["layer"] / n_layers
    with np.errstate(invalid="ignore"):
        frame["mean"] = np.nanmean(scores, axis=1)
        frame["std"] = np.nanstd(scores, axis=1)
        frame["median"] = np.nanmedian(scores, axis=1)
        frame["min"] = np.nanmin(scores, axis=1)
        frame["max"] = np.nanmax(scores, axis=1)
    frame["n_subjects"] = np.sum(~np.isnan(scores), axis=1)
    if ceiling is not None:
        # one config at a time: a vertex run's r is never in memory whole
        frame["mean_normalized"] = [
            float(
                normalized_r(
                    results["r"].isel({S.CONFIG_DIM: i}),
                    ceiling["ceiling"],
                    threshold=ceiling_threshold,
                )
                .mean(S.ROI_DIM, skipna=True)
                .mean(S.SUBJECT_DIM)
            )
            for i in range(results.sizes[S.CONFIG_DIM])
        ]
    return frame


def best_configs(table: pd.DataFrame, by: Sequence[str] = ("family", "window")) -> pd.DataFrame:
    """The config with the highest ``mean`` in each group of ``by`` (e.g. best layer per
    model and window), sorted by kind then descending mean."""
    if table.empty:
        return table
    best = table.loc[table.groupby(list(by), sort=False)["mean"].idxmax().dropna()]
    return sort_by_kind(best)


def sort_by_kind(table: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered text, audio, multimodal, lowlevel, fusion; best first within a kind."""
    rank = {kind: i for i, kind in enumerate(KIND_ORDER)}
    keys = table["kind"].map(lambda k: rank.get(k, len(rank)))
    return (
        table.assign(_k=keys)
        .sort_values(["_k", "mean"], ascending=[True, False])
        .drop(columns="_k")
    )


def roi_labels(results: xr.Dataset) -> list[str]:
    """``"L_A1"``-style labels of the ROIs (the bare name when the hemisphere is unknown);
    ``"L_v1234"`` for vertex targets, ``"v98765"`` for voxels (see
    :func:`featstore.evaluate.runs.targets.target_labels`)."""
    return target_labels(results)


def ranked_roi_table(
    results: xr.Dataset,
    config: str,
    *,
    ceiling: xr.Dataset | None = None,
    stats: xr.Dataset | None = None,
    ceiling_threshold: float = DEFAULT_CEILING_THRESHOLD,
) -> pd.DataFrame:
    """Per ROI for one config: name, mean and std of r across subjects (+ ``r_<story>``,
    the mean r within each test story of a run across stories, and ceiling, r / ceiling,
    p and FDR q when given), sorted by descending mean r."""
    r = select_config(results, config)["r"]
    frame = pd.DataFrame(
        {
            "roi": results[S.ROI_DIM].values.astype(int),
            "label": roi_labels(results),
            "roi_name": results[S.ROI_NAME_COORD].values
            if S.ROI_NAME_COORD in results.coords
            else "",
            "hemisphere": results[S.HEMISPHERE_COORD].values
            if S.HEMISPHERE_COORD in results.coords
            else "",
            "mean_r": r.mean(S.SUBJECT_DIM).values.astype(float),
            "std_r": r.std(S.SUBJECT_DIM).values.astype(float),
        }
    )
    if STORY_VAR in results.data_vars:
        story_r = select_config(results, config)[STORY_VAR]
        per_story = nanmean(np.asarray(story_r.values, dtype=np.float64), axis=1)
        for k, story in enumerate(story_r[STORY_DIM].values):
            frame[f"r_{story}"] = per_story[k]
    if ceiling is not None:
        frame["ceiling"] = ceiling["ceiling"].values.astype(float)
        ratio = normalized_r(r, ceiling["ceiling"], threshold=ceiling_threshold)
        frame["normalized_r"] = ratio.mean(S.SUBJECT_DIM).values.astype(float)
    if stats is not None and config in [str(c) for c in stats[S.CONFIG_DIM].values]:
        tested = stats.sel({S.CONFIG_DIM: config})
        frame["p"] = tested["p"].values.astype(float)
        frame["q"] = tested["q"].values.astype(float)
    return frame.sort_values("mean_r", ascending=False, na_position="last").reset_index(drop=True)


# The old name, until cli/report_cmds.py (changed on another branch now) imports the new one:


def select_config(results: xr.Dataset, config: str) -> xr.Dataset:
    """One config of a results dataset, with an error listing close labels if absent."""
    labels = [str(c) for c in results[S.CONFIG_DIM].values]
    if config not in labels:
        stem = config.split("/")[0]
        close = [label for label in labels if label.startswith(stem)][:8]
        hint = f"; configs of {stem!r}: {', '.join(close)}" if close else ""
        raise InputError(f"config {config!r} is not in the results ({len(labels)} configs){hint}")
    return results.isel({S.CONFIG_DIM: labels.index(config)})


def roi_group_table(
    results: xr.Dataset,
    configs: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    *,
    ceiling: xr.Dataset | None = None,
    ceiling_threshold: float = DEFAULT_CEILING_THRESHOLD,
) -> pd.DataFrame:
    """Per config and ROI group: mean and std across subjects of the per-subject mean r
    over the group's ROIs (and of r / ceiling with a ceiling)."""
    names = results[S.ROI_NAME_COORD].values
    hemis = results[S.HEMISPHERE_COORD].values
    rows = []
    subset = results.sel({S.CONFIG_DIM: list(configs)})
    ratio = (
        normalized_r(subset["r"], ceiling["ceiling"], threshold=ceiling_threshold)
        if ceiling is not None
        else None
    )
    for group_name, members in groups.items():
        index = roi_group_indices(names, hemis, members, group_name=group_name)
        scores = subset["r"].isel({S.ROI_DIM: index}).mean(S.ROI_DIM).values
        normalized = (
            ratio.isel({S.ROI_DIM: index}).mean(S.ROI_DIM, skipna=True).values
            if ratio is not None
            else None
        )
        for i, config in enumerate(configs):
            row = {
                "group": group_name,
                "config": config,
                "n_rois": len(index),
                "mean": float(np.nanmean(scores[i])),
                "std": float(np.nanstd(scores[i])),
            }
            if normalized is not None:
                # NaN, without a warning, for a group whose every ROI is below the threshold
                row["mean_normalized"] = float(nanmean(normalized[i], axis=0))
            rows.append(row)
    return pd.DataFrame(rows)


def fusion_pairs(fusion: pd.DataFrame) -> pd.Series:
    """``"{A}/{winA}+{B}/{winB}"`` (plus ``"/banded"``) of each fusion row of a config table:
    the label of a config without its layers."""
    names = fusion["feature"].map(display_name) + "/" + fusion["window"]
    partners = fusion["partner"].map(display_name) + "/" + fusion["partner_window"]
    suffix = np.where(fusion["method"] == "banded", "/banded", "")
    return names + "+" + partners + suffix


def fusion_grid(results: xr.Dataset, pair: str | None = None) -> tuple[str, pd.DataFrame]:
    """Mean r (over subjects of the whole-brain mean) of every layer pair of one fusion.

    Parameters
    ----------
    pair : str, optional
        ``"{A}/{winA}+{B}/{winB}"`` (plus ``"/banded"`` for banded configs); default:
        the first fusion pair of the results.

    Returns
    -------
    (pair, DataFrame)
        Rows: layer of A; columns: layer of B.
    """
    table = config_table(results)
    fusion = table[table["kind"] == "fusion"].copy()
    if fusion.empty:
        raise InputError("the results hold no fusion config")
    fusion["pair"] = fusion_pairs(fusion)
    pairs = list(dict.fromkeys(fusion["pair"]))
    pair = pairs[0] if pair is None else pair
    if pair not in pairs:
        raise InputError(f"fusion pair {pair!r} is not in the results; pairs: {', '.join(pairs)}")
    chosen = fusion[fusion["pair"] == pair]
    grid = chosen.pivot_table(index="layer", columns="partner_layer", values="mean")
    return pair, grid
