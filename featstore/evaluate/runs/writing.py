"""Writing a grid's results: run ids, config hashes, and the stage a run resumes from.

A run stages one block per config under ``_work/results/<run_id>`` (see
:class:`featstore.store.BlockStage`): a killed grid started again with the same configs
and settings resumes where it stopped. When every config is staged, the final group
is written lazily from the stage and the stage is discarded. The layout of that group
is described in :mod:`featstore.evaluate.runs.results`.

A config's hash covers the encoding settings, the provenance of its features and the
fMRI fingerprint; any complete run holding the same hash is copied, not recomputed.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
import xarray as xr
import zarr

from featstore.evaluate.runs.configs import Config, n_blocks, stored_layers
from featstore.evaluate.runs.inputs import FmriInfo
from featstore.evaluate.runs.results import (
    BAND_ALPHA_VAR,
    BAND_DIM,
    EDGE_ALPHA_VAR,
    EXCLUDED_ATTR,
    FLOAT,
    META_VAR,
    N_BANDS,
    PARTITION_VARS,
    complete_runs,
    list_runs,
    stage_attrs,
)
from featstore.store import _schema as S
from featstore.store.groups import StorePath, child_names, is_complete, open_group, write_group
from featstore.store.paths import result_group
from featstore.store.staging import BlockStage, StagedArray, settings_hash

# room for one config's metadata (META_VAR) in the stage
_META_BYTES = 8192
# configs per chunk of the final arrays: one read serves many configs of a summary
_CONFIG_CHUNK = 64


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
    packed[META_VAR] = {
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
        arrays[META_VAR] = StagedArray((n, _META_BYTES), "uint8", block_axis=0)
        return arrays

    def stage_settings(self) -> dict[str, Any]:
        """What makes two stages the same: the config hashes and the variables."""
        return {"configs": list(self.hashes), "variables": list(self.variables)}


def find_resumable_run(store: StorePath, layout: RunLayout) -> str | None:
    """The id of an unfinished run staged with exactly this layout, if any."""
    return find_staged_run(store, layout.stage_settings())


def find_staged_run(store: StorePath, stage_settings: Mapping[str, Any]) -> str | None:
    """The id of an unfinished run whose stage was opened with ``stage_settings``, if any."""
    wanted = settings_hash(stage_settings)
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
            attrs=stage_attrs(len(layout.configs)),
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
        values[META_VAR] = _meta_bytes(packed[META_VAR])[None]
        self.stage.write_block(index, **values)

    def metas(self) -> list[dict[str, Any]]:
        """The per-config metadata of every staged config."""
        rows = self.stage.dask_arrays()[META_VAR].compute(scheduler="threads")
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
    packed[META_VAR] = {
        "warnings": list(attrs.get("config_warnings", {}).get(label, [])),
        "excluded": attrs.get(EXCLUDED_ATTR, {}).get(label),
        "train": list(attrs.get("train_range", [0, 0, 0])),
        "test": list(attrs.get("test_range", [0, 0, 0])),
    }
    return packed


# distinct warnings a run lists before pointing to the per-config ones
MAX_RUN_WARNINGS = 5


def run_warnings(
    per_config: Mapping[str, Sequence[str]],
    limit: int = MAX_RUN_WARNINGS,
    *,
    first: Collection[str] = (),
) -> list[str]:
    """The warnings of a run: each distinct message once, most frequent first.

    ``encode``'s warnings (constant ROIs, alphas at a grid edge) often repeat across
    configs; each is listed once with how many configs gave it, and past ``limit``
    distinct messages one line points to the per-config list. Messages in ``first``
    (why a config was excluded) come before all others.
    """
    seen: dict[str, list[str]] = {}
    for label, messages in per_config.items():
        for message in messages:
            seen.setdefault(message, []).append(label)
    ranked = sorted(seen.items(), key=lambda item: (item[0] not in first, -len(item[1])))
    lines = []
    for message, labels in ranked[:limit]:
        where = labels[0] if len(labels) == 1 else f"{len(labels)} configs, e.g. {labels[0]}"
        lines.append(f"{message} ({where})")
    if len(ranked) > limit:
        rest = {label for _, labels in ranked[limit:] for label in labels}
        lines.append(
            f"{len(ranked) - limit} more distinct warning(s) from {len(rest)} config(s); "
            "see the results attr config_warnings"
        )
    return lines
