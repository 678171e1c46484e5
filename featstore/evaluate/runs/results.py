"""Results of a grid in the store: ``results/<run_id>``, staged config by config.

A run stages one block per config under ``_work/results/<run_id>`` (see
:class:`featstore.store.BlockStage`): a killed grid started again with the same configs
and settings resumes where it stopped. When every config is staged, the final group
is written lazily from the stage and the stage is discarded.

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

A config's hash covers the encoding settings, the provenance of its features and the
fMRI fingerprint; any complete run holding the same hash is copied, not recomputed.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
import xarray as xr
import zarr

from featstore.errors import InputError
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.runs.configs import Config, FeatureLayer, n_blocks, stored_layers
from featstore.evaluate.runs.inputs import FmriInfo
from featstore.evaluate.runs.labels import match_label, parse_label
from featstore.store import _schema as S
from featstore.store.groups import (
    StorePath,
    child_names,
    group_attrs,
    is_complete,
    open_group,
    write_group,
)
from featstore.store.paths import result_group
from featstore.store.staging import BlockStage, StagedArray, settings_hash

PARTITION_VARS = ("unique_a", "unique_b", "shared")
BAND_ALPHA_VAR = "band_alpha"
BAND_DIM = "band"
# ROIs per subject whose CV alpha sat at an edge of the alpha grid
EDGE_ALPHA_VAR = "n_edge_alpha"
N_BANDS = 2
# per-config JSON (warnings, train and test ranges) staged as utf-8 bytes, so
# it is written in the same atomic block as the numbers
_META_VAR = "meta"
_META_BYTES = 8192
# configs per chunk of the final arrays: one read serves many configs of a summary
_CONFIG_CHUNK = 64
FLOAT = "float32"
# Run attr: label -> why the config has no result (a constant feature set); such configs
# are NaN throughout and left out of summaries and reports.
EXCLUDED_ATTR = "excluded"
# Keys of a run's settings attr that belong to the grid, not to EncodingSettings.
_GRID_SETTINGS = ("partition",)


def auto_run_id(store: StorePath, prefix: str = "grid") -> str:
    """``<prefix>-YYYYmmdd-HHMMSS`` (local time), with ``-2``, ``-3`` … if that id is taken."""
    base = _dt.datetime.now().strftime(f"{prefix}-%Y%m%d-%H%M%S")
    taken = set(child_names(store, S.RESULTS)) | {r.run_id for r in list_runs(store)}
    run_id, n = base, 1
    while run_id in taken:
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def config_hash(
    config: Config,
    settings: Mapping[str, Any],
    provenance: Mapping[str, Mapping[str, Any]],
    fmri_fingerprint: str,
    partition: bool,
) -> str:
    """Hash of everything that determines a config's results.

    ``settings`` is the encoding settings dict; the fusion method and partitioning
    only count for fusion configs, so a single config run alone or inside a fusion
    grid hashes the same.
    """
    settings = dict(settings)
    settings.pop("method", None)
    parts = [
        {"group": p.group, "layer": p.layer, "provenance": dict(provenance[p.group])}
        for p in config.parts
    ]
    return settings_hash(
        {
            "settings": settings,
            "method": config.method,
            "partition": bool(partition) if config.is_fusion else None,
            "features": parts,
            "fmri": fmri_fingerprint,
        }
    )


def pack_result(result: Any, config: Config, *, partition: bool) -> dict[str, Any]:
    """The arrays and metadata of one :class:`EncodingResult` as they are staged."""
    shape = np.shape(result.r)
    nan = np.full(shape, np.nan, dtype=FLOAT)
    packed: dict[str, Any] = {
        "r": np.asarray(result.r, dtype=FLOAT),
        "alpha": np.asarray(result.alpha, dtype=FLOAT),
        BAND_ALPHA_VAR: (
            np.asarray(result.band_alphas, dtype=FLOAT)
            if result.band_alphas is not None
            else np.full((*shape, N_BANDS), np.nan, dtype=FLOAT)
        ),
    }
    pieces = result.partition if (partition and config.is_fusion) else None
    for name in PARTITION_VARS:
        packed[name] = np.asarray(pieces[name], dtype=FLOAT) if pieces else nan
    packed[EDGE_ALPHA_VAR] = np.broadcast_to(
        np.asarray(result.n_edge_alpha, dtype=np.int32), shape[:1]
    )
    packed[_META_VAR] = {
        "warnings": [str(w) for w in result.warnings],
        "excluded": result.excluded,
        "train": _index_range(result.train_index),
        "test": _index_range(result.test_index),
    }
    return packed


def _index_range(index: Any) -> list[int]:
    index = np.asarray(index)
    return [int(index[0]), int(index[-1]) + 1, int(index.size)] if index.size else [0, 0, 0]


def _meta_bytes(meta: Mapping[str, Any]) -> np.ndarray:
    warnings = list(meta["warnings"])
    kept = len(warnings)
    text = json.dumps(dict(meta)).encode()
    while len(text) > _META_BYTES and kept:
        # drop whole warnings from the end rather than cut the JSON
        kept -= 1
        note = [f"… {len(warnings) - kept} more warning(s) dropped"]
        text = json.dumps({**meta, "warnings": warnings[:kept] + note}).encode()
    out = np.zeros(_META_BYTES, dtype=np.uint8)
    out[: len(text)] = np.frombuffer(text, dtype=np.uint8)
    return out


def _meta_from_bytes(row: np.ndarray) -> dict[str, Any]:
    text = bytes(np.asarray(row, dtype=np.uint8)).rstrip(b"\0").decode()
    return json.loads(text)


@dataclass(frozen=True)
class RunLayout:
    """What a run stages: its configs, their hashes and the array shapes."""

    configs: tuple[Config, ...]
    hashes: tuple[str, ...]
    n_subjects: int
    n_roi: int

    @property
    def variables(self) -> tuple[str, ...]:
        """Result variables of this run (banded and partition ones only when needed)."""
        names = ["r", "alpha"]
        if any(c.method == "banded" for c in self.configs):
            names.append(BAND_ALPHA_VAR)
        if any(c.is_fusion for c in self.configs):
            names.extend(PARTITION_VARS)
        return tuple(names)

    def staged_arrays(self) -> dict[str, StagedArray]:
        """The staged arrays: results plus the per-config metadata bytes."""
        n = len(self.configs)
        arrays = {}
        for name in self.variables:
            shape = (n, self.n_subjects, self.n_roi)
            if name == BAND_ALPHA_VAR:
                shape = (*shape, N_BANDS)
            arrays[name] = StagedArray(shape, FLOAT, block_axis=0)
        arrays[EDGE_ALPHA_VAR] = StagedArray((n, self.n_subjects), "int32", block_axis=0)
        arrays[_META_VAR] = StagedArray((n, _META_BYTES), "uint8", block_axis=0)
        return arrays

    def stage_settings(self) -> dict[str, Any]:
        """What makes two stages the same: the config hashes and the variables."""
        return {"configs": list(self.hashes), "variables": list(self.variables)}


def find_resumable_run(store: StorePath, layout: RunLayout) -> str | None:
    """The id of an unfinished run staged with exactly this layout, if any."""
    wanted = settings_hash(layout.stage_settings())
    work = f"{S.WORK}/{S.RESULTS}"
    try:
        node = zarr.open_group(str(store), path=work, mode="r", zarr_format=S.ZARR_FORMAT)
    except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError):
        return None
    for run_id in sorted(node.group_keys()):
        if node[run_id].attrs.get("settings_hash") == wanted and not is_complete(
            store, result_group(run_id)
        ):
            return run_id
    return None


class RunStage:
    """The staged blocks of one run (one block per config)."""

    def __init__(self, store: StorePath, run_id: str, layout: RunLayout) -> None:
        self.store = store
        self.run_id = run_id
        self.layout = layout
        self.stage = BlockStage(
            store,
            result_group(run_id),
            layout.staged_arrays(),
            block_size=1,
            settings=layout.stage_settings(),
        )

    @property
    def resumed(self) -> int:
        """Configs already staged when this stage was opened."""
        return self.stage.resumed_blocks

    def pending(self) -> list[int]:
        """Indices of configs not staged yet."""
        return self.stage.pending_blocks()

    def write(self, index: int, packed: Mapping[str, Any]) -> None:
        """Stage one config's packed result (see :func:`pack_result`)."""
        names = (*self.layout.variables, EDGE_ALPHA_VAR)
        values = {name: np.asarray(packed[name])[None] for name in names}
        values[_META_VAR] = _meta_bytes(packed[_META_VAR])[None]
        self.stage.write_block(index, **values)

    def metas(self) -> list[dict[str, Any]]:
        """The per-config metadata of every staged config."""
        rows = self.stage.dask_arrays()[_META_VAR].compute(scheduler="threads")
        return [_meta_from_bytes(row) for row in rows]

    def finalize(self, coords: Mapping[str, Any], attrs: Mapping[str, Any]) -> None:
        """Write ``results/<run_id>`` lazily from the stage, then discard the stage."""
        arrays = self.stage.dask_arrays()
        data_vars = {}
        encoding = {}
        n = len(self.layout.configs)
        for name in self.layout.variables:
            dims = (S.CONFIG_DIM, S.SUBJECT_DIM, S.ROI_DIM)
            if name == BAND_ALPHA_VAR:
                dims = (*dims, BAND_DIM)
            chunks = (min(n, _CONFIG_CHUNK), *arrays[name].shape[1:])
            data_vars[name] = (dims, arrays[name].rechunk(chunks))
            encoding[name] = {"chunks": chunks}
        chunks = (min(n, _CONFIG_CHUNK), arrays[EDGE_ALPHA_VAR].shape[1])
        data_vars[EDGE_ALPHA_VAR] = (
            (S.CONFIG_DIM, S.SUBJECT_DIM),
            arrays[EDGE_ALPHA_VAR].rechunk(chunks),
        )
        encoding[EDGE_ALPHA_VAR] = {"chunks": chunks}
        ds = xr.Dataset(data_vars, coords=dict(coords), attrs=dict(attrs))
        # read the stage and write the group here, whatever dask client is current;
        # overwrite: a group left incomplete by a killed finalize is written again
        with dask.config.set(scheduler="threads"):
            write_group(
                self.store, result_group(self.run_id), ds, encoding=encoding, overwrite=True
            )
        self.stage.discard()


def config_coords(
    layout: RunLayout,
    fmri: FmriInfo,
    infos: Mapping[str, Any],
) -> dict[str, Any]:
    """Coordinates of a results group (see the module docstring)."""
    configs = layout.configs

    def column(values, dtype=object):
        return (S.CONFIG_DIM, np.asarray(list(values), dtype=dtype))

    def kind(config: Config) -> str:
        return "fusion" if config.is_fusion else str(infos[config.a.group].modality)

    def blocks(config: Config) -> int:
        return n_blocks(stored_layers(infos[config.a.group]))

    coords: dict[str, Any] = {
        S.CONFIG_DIM: np.asarray([c.label for c in configs], dtype=object),
        "feature": column(c.a.key for c in configs),
        "model": column(c.model for c in configs),
        "window": column(c.a.window for c in configs),
        "layer": column((c.a.layer for c in configs), np.int64),
        "partner": column(c.b.key if c.b else "" for c in configs),
        "partner_model": column(c.b.name if c.b else "" for c in configs),
        "partner_window": column(c.b.window if c.b else "" for c in configs),
        "partner_layer": column((c.b.layer if c.b else -1 for c in configs), np.int64),
        "method": column(c.method for c in configs),
        "kind": column(kind(c) for c in configs),
        "n_layers": column((blocks(c) for c in configs), np.int64),
        "config_hash": column(layout.hashes),
    }
    coords.update(fmri.coords)
    if any(c.method == "banded" for c in configs):
        coords[BAND_DIM] = np.asarray(["a", "b"], dtype=object)
    return coords


def complete_runs(store: StorePath) -> list[str]:
    """Ids of the complete encoding runs of a store, sorted.

    Groups of the other analyses (``evaluate rsa``, ``similarity``, ``lowlevel``) share
    ``results/`` but have another layout; their attr ``analysis`` leaves them out here
    (see :mod:`featstore.evaluate.analyses.runner`).
    """
    runs = []
    for run_id in child_names(store, S.RESULTS):
        attrs = group_attrs(store, result_group(run_id))
        if attrs.get(S.COMPLETE_ATTR) and S.ANALYSIS_ATTR not in attrs:
            runs.append(run_id)
    return runs


def find_reusable(store: StorePath, hashes: set[str]) -> dict[str, tuple[str, int]]:
    """``hash → (run_id, config index)`` for configs any complete run already holds."""
    found: dict[str, tuple[str, int]] = {}
    for run_id in complete_runs(store):
        if not hashes - set(found):
            break
        ds = open_group(store, result_group(run_id))
        if "config_hash" not in ds.coords:
            continue
        for index, value in enumerate(ds["config_hash"].values):
            if value in hashes and value not in found:
                found[str(value)] = (run_id, index)
    return found


def copy_result(source: xr.Dataset, index: int, *, variables: Sequence[str]) -> dict[str, Any]:
    """Config ``index`` of a complete run, packed as :func:`pack_result` packs a fresh one."""
    ds = source.isel({S.CONFIG_DIM: index})
    attrs = ds.attrs
    label = str(ds[S.CONFIG_DIM].values)
    shape = ds["r"].shape
    packed: dict[str, Any] = {}
    for name in variables:
        if name in ds:
            packed[name] = np.asarray(ds[name].values, dtype=FLOAT)
        else:
            packed[name] = np.full(
                (*shape, N_BANDS) if name == BAND_ALPHA_VAR else shape, np.nan, dtype=FLOAT
            )
    packed[EDGE_ALPHA_VAR] = np.asarray(ds[EDGE_ALPHA_VAR].values, dtype=np.int32)
    packed[_META_VAR] = {
        "warnings": list(attrs.get("config_warnings", {}).get(label, [])),
        "excluded": attrs.get(EXCLUDED_ATTR, {}).get(label),
        "train": list(attrs.get("train_range", [0, 0, 0])),
        "test": list(attrs.get("test_range", [0, 0, 0])),
    }
    return packed


def runs_newest_first(store: StorePath) -> list[str]:
    """Ids of the complete encoding runs, newest (``created`` attr, then id) first."""
    created = {
        r: str(group_attrs(store, result_group(r)).get("created", "")) for r in complete_runs(store)
    }
    return sorted(created, key=lambda r: (created[r], r), reverse=True)


def open_run(store: StorePath, run_id: str | None = None) -> xr.Dataset:
    """A complete run (the newest one when ``run_id`` is None), fusion model names as
    :func:`fusion_model_names` gives them."""
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


@dataclass(frozen=True)
class RunInfo:
    """One run of a store, finished or not, for listings."""

    run_id: str
    complete: bool
    created: str
    n_configs: int
    n_done: int
    attrs: dict[str, Any]


def list_runs(store: StorePath) -> list[RunInfo]:
    """Complete runs, then unfinished ones (staged but interrupted), each sorted by id."""
    runs = [
        RunInfo(
            run_id,
            True,
            str(attrs.get("created", "")),
            int(attrs.get("n_configs", 0)),
            int(attrs.get("n_configs", 0)),
            attrs,
        )
        for run_id in complete_runs(store)
        for attrs in [group_attrs(store, result_group(run_id))]
    ]
    try:
        work = zarr.open_group(
            str(store), path=f"{S.WORK}/{S.RESULTS}", mode="r", zarr_format=S.ZARR_FORMAT
        )
    except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError):
        return runs
    for run_id in sorted(work.group_keys()):
        node = work[run_id]
        if is_complete(store, result_group(run_id)) or _META_VAR not in node:
            continue
        written = np.asarray(node[_META_VAR][:, 0]) != 0
        runs.append(RunInfo(run_id, False, "", int(written.size), int(written.sum()), {}))
    return runs
