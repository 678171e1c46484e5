"""Results of a grid in the store: ``results/<run_id>``, read, listed and located.

How a run is staged config by config and written is in
:mod:`featstore.evaluate.runs.writing`.

Layout of ``results/<run_id>`` (dims ``config``, ``subject``, ``roi``, ``band``):

* ``r``, ``alpha`` (config, subject, roi) float32: test-set Pearson r and the ridge
  alpha chosen per subject and ROI (NaN for banded configs, see ``band_alpha``);
* ``band_alpha`` (config, subject, roi, band), when the run has banded configs;
* ``unique_a``, ``unique_b``, ``shared`` (config, subject, roi), when the run has
  fusion configs: variance partitioning of the fusion pair (test R²; NaN when
  partitioning is off and for single configs);
* ``n_edge_alpha`` (config, subject) int32: ROIs whose CV alpha is at an edge of the
  alpha grid;
* coordinates along ``config``: the canonical label, ``feature``, ``model`` (the
  config's model name, ``gpt2+wavlm`` for a fusion), ``window``, ``layer``, ``partner``,
  ``partner_model``, ``partner_window``,
  ``partner_layer`` (-1 when single), ``method``, ``kind``, ``n_layers``,
  ``config_hash``; ``subject``, ``roi``, ``roi_name``,
  ``hemisphere`` copied from ``fmri``.

The attr ``excluded`` maps each config without any result (a feature layer constant
over the train TRs: r NaN throughout) to the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
import zarr

from featstore._docs import fill_doc
from featstore.errors import InputError
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.runs.configs import Config, FeatureLayer
from featstore.evaluate.runs.labels import match_label, parse_label
from featstore.store import _schema as S
from featstore.store.groups import (
    StorePath,
    child_names,
    group_attrs,
    is_complete,
    open_group,
)
from featstore.store.paths import result_group
from featstore.store.staging import block_flags

PARTITION_VARS = ("unique_a", "unique_b", "shared")
BAND_ALPHA_VAR = "band_alpha"
BAND_DIM = "band"
# ROIs per subject whose CV alpha sat at an edge of the alpha grid
EDGE_ALPHA_VAR = "n_edge_alpha"
N_BANDS = 2
# per-config JSON (warnings, train and test ranges) staged as utf-8 bytes, so
# it is written in the same atomic block as the numbers
META_VAR = "meta"
FLOAT = "float32"
# Run attr: label -> why the config has no result (a constant feature set); such configs
# are NaN throughout and left out of summaries and reports.
EXCLUDED_ATTR = "excluded"
# Keys of a run's settings attr that belong to the grid, not to EncodingSettings.
_GRID_SETTINGS = ("partition",)


@fill_doc
def complete_runs(store: StorePath) -> list[str]:
    """Ids of the complete encoding runs of a store, sorted.

    Groups of the other analyses (``evaluate rsa``, ``similarity``, ``lowlevel``) share
    ``results/`` but have another layout; their attr ``analysis`` leaves them out here
    (see :mod:`featstore.evaluate.analyses.runner`).

    Parameters
    ----------
    %(store)s

    Returns
    -------
    list of str
        Run ids, oldest first.

    Examples
    --------
    %(example_store)s
    >>> from featstore.evaluate.runs import complete_runs
    >>> _ = store.grid(models=["toy-lm:ctx8"], run_id="first", progress=False)
    >>> complete_runs(store)
    ['first']
    """
    runs = []
    for run_id in child_names(store, S.RESULTS):
        attrs = group_attrs(store, result_group(run_id))
        if attrs.get(S.COMPLETE_ATTR) and S.ANALYSIS_ATTR not in attrs:
            runs.append(run_id)
    return runs


def runs_newest_first(store: StorePath) -> list[str]:
    """Ids of the complete encoding runs, newest (``created`` attr, then id) first."""
    created = {
        r: str(group_attrs(store, result_group(r)).get("created", "")) for r in complete_runs(store)
    }
    return sorted(created, key=lambda r: (created[r], r), reverse=True)


@fill_doc
def open_run(store: StorePath, run_id: str | None = None) -> xr.Dataset:
    """A complete run (the newest one when ``run_id`` is None), fusion model names as
    :func:`fusion_model_names` gives them.

    Parameters
    ----------
    %(store)s
    run_id : str, optional
        The run (default: the newest complete one).

    Returns
    -------
    xarray.Dataset
        ``r``, ``alpha`` (config, subject, roi), config coords, settings in attrs.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.evaluate.runs import open_run, run_grid
    >>> store = example_store()
    >>> _ = run_grid(store, models=[("toy-speech", ["tr1"], [2])], progress=False)
    >>> open_run(store).r.sizes
    Frozen({'config': 1, 'subject': 2, 'roi': 360})
    """
    runs = runs_newest_first(store)
    if run_id is None:
        if not runs:
            raise InputError(f"no complete evaluation run in {store}; run `evaluate grid` first")
        run_id = runs[0]
    elif run_id not in runs:
        raise InputError(
            f"no complete run {run_id!r} in {store}; complete runs: "
            f"{', '.join(sorted(runs)) or 'none'}"
        )
    return fusion_model_names(open_group(store, result_group(run_id)))


def fusion_model_names(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with the ``model`` coordinate of fusion configs as ``A+B``.

    Runs written by featstore 0.1 named a fusion config after its side A alone; runs
    since then store ``A+B``, as summaries and CSV files show it.
    """
    if "model" not in ds.coords or "partner_model" not in ds.coords:
        return ds
    model = np.asarray(ds["model"].values, dtype=object)
    partner = np.asarray(ds["partner_model"].values, dtype=object)
    old = np.array([bool(p) and "+" not in str(m) for m, p in zip(model, partner, strict=True)])
    if not old.any():
        return ds
    named = [f"{m}+{p}" if o else str(m) for m, p, o in zip(model, partner, old, strict=True)]
    return ds.assign_coords(model=(S.CONFIG_DIM, np.asarray(named, dtype=object)))


def run_configs(ds: xr.Dataset) -> dict[str, Config]:
    """The configs of a results dataset by label, rebuilt from its config coordinates."""
    labels = [str(c) for c in ds[S.CONFIG_DIM].values]
    coords = {
        name: ds[name].values
        for name in ("feature", "window", "layer", "partner", "partner_window", "partner_layer")
    }
    methods = ds["method"].values
    configs = {}
    for i, label in enumerate(labels):
        a = FeatureLayer(
            str(coords["feature"][i]), str(coords["window"][i]), int(coords["layer"][i])
        )
        b = None
        if coords["partner"][i]:
            b = FeatureLayer(
                str(coords["partner"][i]),
                str(coords["partner_window"][i]),
                int(coords["partner_layer"][i]),
            )
        configs[label] = Config(a, b, str(methods[i]))
    return configs


def locate_configs(
    store: StorePath, typed: Sequence[str], run_id: str | None = None
) -> list[tuple[str, str]]:
    """``(run id, canonical label)`` of each typed config label (canonical or short).

    The rule of every command that reads configs from results: the run ``run_id`` when
    given; else the newest complete run holding every config asked for; else each config
    from the newest complete run holding it. Raises :class:`InputError` for a label
    that no run (or not ``run_id``) holds, or that names several configs of one run.
    """
    if run_id is not None:
        open_run(store, run_id)  # the error for a run that is not there
    runs = [run_id] if run_id is not None else runs_newest_first(store)
    if not runs:
        raise InputError(f"no complete evaluation run in {store}; run `evaluate grid` first")
    found: dict[str, dict[str, str]] = {}
    for run in runs:
        configs = run_configs(open_group(store, result_group(run)))
        labels = {t: match_label(t, configs) for t in typed}
        found[run] = {t: label for t, label in labels.items() if label is not None}
        if len(found[run]) == len(typed):
            return [(run, found[run][t]) for t in typed]
    located = []
    for text in typed:
        holder = next((run for run in runs if text in found[run]), None)
        if holder is None:
            # as typed, and in the names and form of canonical labels when they differ
            canonical = str(parse_label(text))
            shown = repr(text) + (f" ({canonical})" if canonical != text else "")
            if run_id is not None:
                raise InputError(f"config {shown} is not in results/{run_id} of {store}")
            raise InputError(
                f"config {shown} is in no complete run of {store} (runs: {', '.join(runs)})"
            )
        located.append((holder, found[holder][text]))
    return located


def find_run(
    store: StorePath, typed: Sequence[str] = (), run_id: str | None = None
) -> tuple[str, list[str]]:
    """The one run a command reads ``typed`` configs from, and their canonical labels.

    Same rule as :func:`locate_configs`; with no config asked, ``run_id`` or the newest
    complete run. Raises :class:`InputError` when no single run holds them all.
    """
    if not typed:
        if run_id is not None:
            open_run(store, run_id)  # the error for a run that is not there
            return run_id, []
        runs = runs_newest_first(store)
        if not runs:
            raise InputError(f"no complete evaluation run in {store}; run `evaluate grid` first")
        return runs[0], []
    located = locate_configs(store, typed, run_id)
    runs = list(dict.fromkeys(run for run, _ in located))
    if len(runs) > 1:
        where = ", ".join(f"{label} ({run})" for run, label in located)
        raise InputError(f"no complete run holds all of {where}; give `run_id`")
    return runs[0], [label for _, label in located]


def run_settings(run_attrs: Mapping[str, Any]) -> EncodingSettings:
    """The encoding settings of a run, from its attrs (grid-level keys such as
    ``partition`` left out)."""
    values = dict(run_attrs.get("settings") or {})
    for grid_key in _GRID_SETTINGS:
        values.pop(grid_key, None)
    return EncodingSettings.from_dict(values)


# attrs of a run's stage: its configs and how many staged blocks make one config (one
# for a one-story run; one per target chunk for a run across stories)
STAGE_N_CONFIGS, STAGE_BLOCKS_PER_CONFIG = "n_configs", "blocks_per_config"


def stage_attrs(n_configs: int, blocks_per_config: int = 1) -> dict[str, int]:
    """The attrs a run's stage is created with, so :func:`list_runs` counts its configs."""
    return {STAGE_N_CONFIGS: int(n_configs), STAGE_BLOCKS_PER_CONFIG: int(blocks_per_config)}


@dataclass(frozen=True)
class RunInfo:
    """One run of a store, finished or not, for listings.

    ``n_done`` counts the configs whose every staged block is marked done; ``blocks_done``
    of ``n_blocks`` is the finer count of an unfinished run across stories (one block per
    config and target chunk).
    """

    run_id: str
    complete: bool
    created: str
    n_configs: int
    n_done: int
    attrs: dict[str, Any]
    blocks_done: int = 0
    n_blocks: int = 0


def list_runs(store: StorePath) -> list[RunInfo]:
    """Complete runs, then unfinished ones (staged but interrupted), each sorted by id."""
    runs = []
    for run_id in complete_runs(store):
        attrs = group_attrs(store, result_group(run_id))
        n = int(attrs.get("n_configs", 0))
        runs.append(RunInfo(run_id, True, str(attrs.get("created", "")), n, n, attrs, n, n))
    try:
        work = zarr.open_group(
            str(store), path=f"{S.WORK}/{S.RESULTS}", mode="r", zarr_format=S.ZARR_FORMAT
        )
    except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError):
        return runs
    for run_id in sorted(work.group_keys()):
        node = work[run_id]
        done = block_flags(node)
        if done is None or is_complete(store, result_group(run_id)):
            continue
        per = int(node.attrs.get(STAGE_BLOCKS_PER_CONFIG, 1))
        n_configs = int(node.attrs.get(STAGE_N_CONFIGS, 0))
        if per < 1 or n_configs * per != done.size:  # a stage written without these attrs
            n_configs, per = done.size, 1
        n_done = int(done.reshape(n_configs, per).all(axis=1).sum())
        runs.append(
            RunInfo(run_id, False, "", n_configs, n_done, {}, int(done.sum()), int(done.size))
        )
    return runs
