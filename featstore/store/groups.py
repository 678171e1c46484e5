"""Create and open stores; write and read whole groups atomically.

A group written here carries ``complete = False`` while its arrays are written and
``complete = True`` as the very last write, so a reader never takes a half-written
group for a finished one. Writes go through xarray with ``consolidated=False`` and
Zarr format 3.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import shutil
import time
from collections.abc import Mapping
from typing import Any

import xarray as xr
import zarr

from featstore import __version__
from featstore._docs import fill_doc
from featstore.errors import (
    FeatstoreError,
    GroupExistsError,
    GroupNotFoundError,
    IncompleteGroupError,
    InputError,
)
from featstore.store import _schema as S
from featstore.store.encoding import to_json_safe, with_compressors, with_tr_time
from featstore.store.io_errors import (
    reading_data,
    reading_metadata,
    write_failure,
    writing,
)
from featstore.store.root import (  # noqa: F401 - re-exported: callers import them from here
    _UNREADABLE_METADATA,
    _ZARR_JSON,
    StorePath,
    _first_line,
    _local_path,
    collection_story_names,
    open_root,
    root_attrs,
    store_n_tr,
    store_tr_seconds,
)


def now_iso() -> str:
    """UTC time stamp for ``created`` attrs."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def group_key(group: str) -> str:
    """``group`` as a path inside the store (``''`` is the root).

    Raises :class:`InputError` for ``.``/``..`` or empty components, so a group
    path never leaves the store.
    """
    key = str(group).strip("/")
    if key and any(part in ("", ".", "..") for part in key.split("/")):
        raise InputError(
            f"invalid group path {group!r}: expected names separated by '/', "
            "e.g. features/gpt2/ctx200"
        )
    return key


@fill_doc
def create_store(
    store: StorePath,
    *,
    dataset: str,
    tr_seconds: float,
    n_tr: int,
    overwrite: bool = False,
    extra_attrs: Mapping[str, Any] | None = None,
) -> None:
    """Create an empty one-story store (schema version 1 layout).

    Raises :class:`GroupExistsError` if something is already at ``store`` and
    ``overwrite`` is false.

    Parameters
    ----------
    %(store)s
    dataset : str
        Name of the dataset.
    tr_seconds : float
        Repetition time, in seconds.
    n_tr : int
        TRs of the story: of every feature set and of the BOLD.
    overwrite : bool
        Replace what is at ``store``.
    extra_attrs : mapping, optional
        More root attrs.

    Examples
    --------
    >>> import tempfile
    >>> from featstore.store import create_store, store_n_tr
    >>> store = tempfile.mkdtemp() + "/new.zarr"
    >>> create_store(store, dataset="mine", tr_seconds=1.5, n_tr=300)
    >>> store_n_tr(store)
    300
    """
    local = _local_path(store)
    if local is not None and local.exists() and not overwrite:
        raise GroupExistsError(f"{local} already exists; pass `overwrite` to replace it")
    attrs = {
        S.SCHEMA_ATTR: S.STORY_SCHEMA,
        "dataset": str(dataset),
        "tr_seconds": float(tr_seconds),
        "n_tr": int(n_tr),
        "created": now_iso(),
        "featstore_version": __version__,
    }
    attrs.update(to_json_safe(dict(extra_attrs or {})))
    with writing(store, "the root group"):
        if local is not None and local.exists():
            shutil.rmtree(local) if local.is_dir() else local.unlink()
        root = zarr.open_group(os.fspath(store), mode="w", zarr_format=S.ZARR_FORMAT)
        root.attrs.update(attrs)
        # The internal area exists from the start, so a write that fails and removes its
        # stage leaves the store as it found it (zarr creates parents, never removes them).
        work = root.create_group(S.WORK)
        for name in (S.FEATURES, S.RESULTS):
            work.create_group(name)


def _node(store: StorePath, group: str) -> zarr.Group | zarr.Array | None:
    """The node at ``group`` (None if absent), with damaged metadata reported as such."""
    key = group_key(group)
    root = open_root(store)
    with reading_metadata(store, key):
        return root.get(key) if key else root


@fill_doc
def group_exists(store: StorePath, group: str) -> bool:
    """Whether ``group`` exists in the store (complete or not).

    %(parameters_store_group)s

    Returns
    -------
    bool
        Whether a group (not an array) is at ``group``.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import group_exists
    >>> group_exists(example_store(), "fmri"), group_exists(example_store(fmri=False), "fmri")
    (True, False)
    """
    return isinstance(_node(store, group), zarr.Group)


@fill_doc
def group_attrs(store: StorePath, group: str) -> dict[str, Any]:
    """The attrs of a group, without checking it is complete.

    %(parameters_store_group)s

    Returns
    -------
    dict
        The group's attrs, ``complete`` among them.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import group_attrs
    >>> group_attrs(example_store(), "fmri")["atlas"]
    'HCP-MMP1.0'
    """
    node = _node(store, group)
    if node is None:
        raise GroupNotFoundError(
            f"group {group!r} not found in {os.fspath(store)}{_story_hint(store, group)}"
        )
    if not isinstance(node, zarr.Group):
        raise GroupNotFoundError(f"{group!r} in {os.fspath(store)} is an array, not a group")
    return dict(node.attrs)


def _story_hint(store: StorePath, group: str) -> str:
    """For a store of stories asked for a story's group: which stories to pick from."""
    if group_key(group).split("/")[0] not in (S.STIMULUS, S.FMRI, S.FEATURES, S.EEG):
        return ""
    if open_root(store).attrs.get(S.SCHEMA_ATTR) != S.COLLECTION_SCHEMA:
        return ""
    names = collection_story_names(open_root(store))
    return (
        f", which is a store of {len(names)} stories ({', '.join(names) or 'none yet'}); "
        "name one (`story`)"
    )


@fill_doc
def is_complete(store: StorePath, group: str) -> bool:
    """Whether a group exists and its ``complete`` flag is set.

    %(parameters_store_group)s

    Returns
    -------
    bool
        False for an absent group or one whose write never finished.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import is_complete
    >>> is_complete(example_store(), "features/toy-lm/ctx8")
    True
    """
    try:
        return bool(group_attrs(store, group).get(S.COMPLETE_ATTR, False))
    except GroupNotFoundError:
        return False


@fill_doc
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
    set last. An existing group is replaced only if ``overwrite`` is true. Numeric
    arrays get :func:`array_compressors` unless ``encoding`` names others. A ``tr`` dim
    gets a ``time`` coordinate in seconds (``tr * tr_seconds``).

    An OS error on the way (disk full, read-only store) raises a one-line
    :class:`StoreError`, after removing what was written of the group if possible
    (it was incomplete and would only hold the space).

    Parameters
    ----------
    %(store_group)s
    dataset : xarray.Dataset
        Arrays and attrs of the group.
    overwrite : bool
        Replace an existing group.
    encoding : mapping, optional
        Zarr encoding per variable.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> import numpy as np, xarray as xr
    >>> from featstore.store import open_group, write_group
    >>> store = example_store()
    >>> write_group(store, "extra/notes", xr.Dataset({"x": ("tr", np.arange(3.0))}))
    >>> open_group(store, "extra/notes").x.values
    array([0., 1., 2.])
    """
    key = group_key(group)
    open_root(store, mode="r")
    if group_exists(store, key) and not overwrite:
        raise GroupExistsError(
            f"group {group!r} already exists in {os.fspath(store)}; pass `overwrite` to replace it"
        )
    ds = with_tr_time(dataset.copy(), root_attrs(store).get("tr_seconds"))
    ds.attrs = to_json_safe({**ds.attrs, S.COMPLETE_ATTR: False})
    ds.attrs.setdefault("featstore_version", __version__)
    ds.attrs.setdefault("created", now_iso())
    parts = key.split("/")
    new_parents = [
        parent
        for parent in ("/".join(parts[:i]) for i in range(1, len(parts)))
        if _node(store, parent) is None
    ]
    try:
        ds.to_zarr(
            os.fspath(store),
            group=key,
            mode="w",
            consolidated=False,
            zarr_format=S.ZARR_FORMAT,
            encoding=with_compressors(ds, encoding),
        )
        mark_complete(store, key)
    except OSError as exc:
        _remove_failed_write(store, key, new_parents)
        raise write_failure(store, f"group {key!r}", exc) from exc


# zarr writes the chunks of one assignment concurrently and raises on the first failure
# without waiting for the others, so chunks may still land after the error surfaced.
_LATE_WRITES_QUIET_S = 0.5  # nothing of the group reappeared for this long: done
_LATE_WRITES_MAX_S = 10.0


def _remove_failed_write(store: StorePath, key: str, new_parents: list[str]) -> None:
    """Best effort: remove a group whose write failed, and the parents it created if
    nothing else has been put in them since.

    Chunk writes still in flight when the failure surfaced can land after a first
    removal (and re-create folders without metadata, which zarr no longer sees as a
    group), so the group is removed again until nothing of it has reappeared for
    ``_LATE_WRITES_QUIET_S`` seconds.
    """
    local = _local_path(store)

    def present() -> bool:
        if local is not None:
            return (local / key).exists()
        with contextlib.suppress(OSError, FeatstoreError, *_UNREADABLE_METADATA):
            return _node(store, key) is not None
        return False

    deadline = time.monotonic() + _LATE_WRITES_MAX_S
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        if present():
            quiet_since = None
            with contextlib.suppress(OSError, FeatstoreError, *_UNREADABLE_METADATA):
                delete_group(store, key)
            if local is not None:
                shutil.rmtree(local / key, ignore_errors=True)  # folders zarr no longer sees
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= _LATE_WRITES_QUIET_S:
            break
        time.sleep(0.05)
    with contextlib.suppress(OSError, FeatstoreError, *_UNREADABLE_METADATA):
        for parent in reversed(new_parents):
            node = _node(store, parent)
            if isinstance(node, zarr.Group) and not list(node.keys()):
                delete_group(store, parent)


def _open_for_update(store: StorePath, group: str) -> zarr.Group:
    key = group_key(group)
    with reading_metadata(store, key):
        try:
            return zarr.open_group(os.fspath(store), path=key, mode="r+", zarr_format=S.ZARR_FORMAT)
        except (FileNotFoundError, zarr.errors.GroupNotFoundError):
            raise GroupNotFoundError(f"group {group!r} not found in {os.fspath(store)}") from None


def mark_complete(store: StorePath, group: str, value: bool = True) -> None:
    """Set a group's ``complete`` flag (the last write of every writer)."""
    node = _open_for_update(store, group)
    with writing(store, f"the attrs of group {group!r}"):
        node.attrs[S.COMPLETE_ATTR] = bool(value)


@fill_doc
def update_group_attrs(store: StorePath, group: str, attrs: Mapping[str, Any]) -> None:
    """Add or replace attrs of an existing group.

    Parameters
    ----------
    %(store_group)s
    attrs : mapping
        Attrs to add or replace.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import group_attrs, update_group_attrs
    >>> store = example_store()
    >>> update_group_attrs(store, "fmri", {"source": "simulated"})
    >>> group_attrs(store, "fmri")["source"]
    'simulated'
    """
    node = _open_for_update(store, group)
    with writing(store, f"the attrs of group {group!r}"):
        node.attrs.update(to_json_safe(dict(attrs)))


@fill_doc
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

    Parameters
    ----------
    %(store_group)s
    chunks : optional
        Dask chunks, as :func:`xarray.open_zarr` (default: as stored).
    require_complete : bool
        Refuse a group whose write never finished.

    Returns
    -------
    xarray.Dataset
        Dask-backed.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import open_group
    >>> open_group(example_store(), "fmri").bold.dims
    ('subject', 'tr', 'roi')
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
    key = group_key(group)
    with reading_data(store, key):  # index coordinates are read here
        return xr.open_zarr(os.fspath(store), group=key, **kwargs)


@fill_doc
def delete_group(store: StorePath, group: str) -> None:
    """Remove a group and everything below it (no error if absent).

    %(parameters_store_group)s

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import delete_group, group_exists
    >>> store = example_store()
    >>> delete_group(store, "fmri")
    >>> group_exists(store, "fmri")
    False
    """
    key = group_key(group)
    root = open_root(store, mode="r+")
    with reading_metadata(store, key), writing(store, f"(delete) group {key!r}"):
        if key and key in root:
            del root[key]


def child_names(store: StorePath, group: str = "") -> list[str]:
    """Names of the sub-groups of ``group`` (sorted; internal ones skipped; [] if absent)."""
    node = _node(store, group)
    if not isinstance(node, zarr.Group):
        return []
    with reading_metadata(store, group_key(group)):
        return sorted(name for name in node.group_keys() if not name.startswith(("_", ".")))
