"""Create and open stores; write and read whole groups atomically.

A group written here carries ``complete = False`` while its arrays are written and
``complete = True`` as the very last write, so a reader never takes a half-written
group for a finished one. Writes go through xarray with ``consolidated=False`` and
Zarr format 3.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from featstore import __version__
from featstore.errors import (
    GroupExistsError,
    GroupNotFoundError,
    IncompleteGroupError,
    SchemaVersionError,
    StoreError,
)
from featstore.store import _schema as S

StorePath = str | os.PathLike


def now_iso() -> str:
    """UTC time stamp for ``created`` attrs."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _local_path(store: StorePath) -> Path | None:
    text = os.fspath(store)
    if "://" in text and not text.startswith("file://"):
        return None
    return Path(text.removeprefix("file://"))


def to_json_safe(value: Any) -> Any:
    """Convert numpy scalars/arrays and tuples in attrs to plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json_safe(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def create_store(
    store: StorePath,
    *,
    dataset: str,
    tr_seconds: float,
    n_tr: int,
    overwrite: bool = False,
    extra_attrs: Mapping[str, Any] | None = None,
) -> None:
    """Create an empty store with the root attrs of schema version 1.

    Raises :class:`GroupExistsError` if something is already at ``store`` and
    ``overwrite`` is false.
    """
    local = _local_path(store)
    if local is not None and local.exists():
        if not overwrite:
            raise GroupExistsError(f"{local} already exists; pass --overwrite to replace it")
        shutil.rmtree(local) if local.is_dir() else local.unlink()
    attrs = {
        S.SCHEMA_ATTR: S.SCHEMA_VERSION,
        "dataset": str(dataset),
        "tr_seconds": float(tr_seconds),
        "n_tr": int(n_tr),
        "created": now_iso(),
        "featstore_version": __version__,
    }
    attrs.update(to_json_safe(dict(extra_attrs or {})))
    root = zarr.open_group(os.fspath(store), mode="w", zarr_format=S.ZARR_FORMAT)
    root.attrs.update(attrs)


def open_root(store: StorePath, *, mode: str = "r") -> zarr.Group:
    """Open a store's root group after checking it is a featstore store we can read."""
    local = _local_path(store)
    if local is not None and not local.exists():
        raise StoreError(f"no store at {local}")
    try:
        root = zarr.open_group(os.fspath(store), mode=mode, zarr_format=S.ZARR_FORMAT)
    except (
        FileNotFoundError,
        zarr.errors.GroupNotFoundError,
        ValueError,
        json.JSONDecodeError,
    ) as exc:
        raise StoreError(f"{os.fspath(store)} is not a readable Zarr v3 store: {exc}") from exc
    version = root.attrs.get(S.SCHEMA_ATTR)
    if version is None:
        raise StoreError(
            f"{os.fspath(store)} is a Zarr store but not a featstore store "
            f"(root attr {S.SCHEMA_ATTR!r} is missing)"
        )
    if not isinstance(version, int) or version > S.SCHEMA_VERSION or version < 1:
        raise SchemaVersionError(
            f"{os.fspath(store)} has featstore schema version {version!r}, but this featstore "
            f"({__version__}) reads version {S.SCHEMA_VERSION}; upgrade featstore to read it"
        )
    return root


def root_attrs(store: StorePath) -> dict[str, Any]:
    """The root attrs of a store (schema checked)."""
    return dict(open_root(store).attrs)


def group_exists(store: StorePath, group: str) -> bool:
    """Whether ``group`` exists in the store (complete or not)."""
    root = open_root(store)
    try:
        node = root[group.strip("/")]
    except KeyError:
        return False
    return isinstance(node, zarr.Group)


def group_attrs(store: StorePath, group: str) -> dict[str, Any]:
    """The attrs of a group, without checking it is complete."""
    root = open_root(store)
    try:
        node = root[group.strip("/")]
    except KeyError:
        raise GroupNotFoundError(f"group {group!r} not found in {os.fspath(store)}") from None
    return dict(node.attrs)


def is_complete(store: StorePath, group: str) -> bool:
    """Whether a group exists and its ``complete`` flag is set."""
    try:
        return bool(group_attrs(store, group).get(S.COMPLETE_ATTR, False))
    except GroupNotFoundError:
        return False


def write_group(
    store: StorePath,
    group: str,
    dataset: xr.Dataset,
    *,
    overwrite: bool = False,
    encoding: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Write ``dataset`` as ``group``, atomically in the sense of the ``complete`` flag.

    The dataset's attrs are written with ``complete = False`` together with the arrays
    (lazily computed chunk by chunk if they are dask arrays); ``complete = True`` is
    set last. An existing group is replaced only if ``overwrite`` is true.
    """
    open_root(store, mode="r")
    if group_exists(store, group) and not overwrite:
        raise GroupExistsError(
            f"group {group!r} already exists in {os.fspath(store)}; pass --overwrite to replace it"
        )
    ds = dataset.copy()
    ds.attrs = to_json_safe({**ds.attrs, S.COMPLETE_ATTR: False})
    ds.attrs.setdefault("featstore_version", __version__)
    ds.attrs.setdefault("created", now_iso())
    ds.to_zarr(
        os.fspath(store),
        group=group,
        mode="w",
        consolidated=False,
        zarr_format=S.ZARR_FORMAT,
        encoding=dict(encoding or {}),
    )
    mark_complete(store, group)


def mark_complete(store: StorePath, group: str, value: bool = True) -> None:
    """Set a group's ``complete`` flag (the last write of every writer)."""
    node = zarr.open_group(os.fspath(store), path=group, mode="r+", zarr_format=S.ZARR_FORMAT)
    node.attrs[S.COMPLETE_ATTR] = bool(value)


def update_group_attrs(store: StorePath, group: str, attrs: Mapping[str, Any]) -> None:
    """Add or replace attrs of an existing group."""
    node = zarr.open_group(os.fspath(store), path=group, mode="r+", zarr_format=S.ZARR_FORMAT)
    node.attrs.update(to_json_safe(dict(attrs)))


def open_group(
    store: StorePath,
    group: str,
    *,
    chunks: Any = None,
    require_complete: bool = True,
) -> xr.Dataset:
    """Open a group lazily (dask-backed) as an :class:`xarray.Dataset`.

    Raises :class:`GroupNotFoundError` if the group is absent and
    :class:`IncompleteGroupError` if its write never finished.
    """
    attrs = group_attrs(store, group)
    if require_complete and not attrs.get(S.COMPLETE_ATTR, False):
        raise IncompleteGroupError(
            f"group {group!r} in {os.fspath(store)} is incomplete (its write was interrupted "
            "or is still running); rerun the command that writes it to resume or replace it"
        )
    kwargs: dict[str, Any] = {"consolidated": False, "zarr_format": S.ZARR_FORMAT}
    if chunks is not None:
        kwargs["chunks"] = chunks
    return xr.open_zarr(os.fspath(store), group=group, **kwargs)


def delete_group(store: StorePath, group: str) -> None:
    """Remove a group and everything below it (no error if absent)."""
    root = open_root(store, mode="r+")
    name = group.strip("/")
    if name in root:
        del root[name]


def child_names(store: StorePath, group: str = "") -> list[str]:
    """Names of the sub-groups of ``group`` (sorted; internal ones skipped; [] if absent)."""
    root = open_root(store)
    try:
        node = root[group.strip("/")] if group.strip("/") else root
    except KeyError:
        return []
    if not isinstance(node, zarr.Group):
        return []
    return sorted(name for name in node.group_keys() if not name.startswith(("_", ".")))
