"""Store I/O failures as one-line :class:`featstore.errors.StoreError` messages.

Unreadable metadata, corrupt chunks, a full disk or a read-only store surface from zarr,
xarray and the OS as many exception types; these helpers turn each into one message that
names the store and the group at fault.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import zarr

from featstore._docs import fill_doc
from featstore.errors import FeatstoreError, StoreError
from featstore.store import _schema as S
from featstore.store.root import (
    _UNREADABLE_METADATA,
    _ZARR_JSON,
    StorePath,
    _first_line,
    _local_path,
)


def _readable_node(store: StorePath, meta: Path, key: str) -> bool:
    try:
        node = json.loads(meta.read_bytes())
    except (OSError, ValueError):
        return False
    if not (isinstance(node, dict) and node.get("node_type") in ("group", "array")):
        return False
    try:
        zarr.open(os.fspath(store), path=key, mode="r", zarr_format=S.ZARR_FORMAT)
    except (*_UNREADABLE_METADATA, OSError):
        return False
    return True


def _damaged_node(store: StorePath, key: str) -> str:
    """The node at or just below ``key`` whose metadata zarr cannot read (local stores;
    else ``key``), to name it in messages. Only called once something failed."""
    local = _local_path(store)
    if local is not None:
        base = local / key if key else local
        for meta in [base / _ZARR_JSON, *sorted(base.glob(f"*/{_ZARR_JSON}"))]:
            node_key = meta.parent.relative_to(local).as_posix().removeprefix(".")
            if meta.exists() and not _readable_node(store, meta, node_key):
                return node_key or "/"
    return key or "/"


@contextlib.contextmanager
def reading_metadata(store: StorePath, key: str) -> Iterator[None]:
    """Turn zarr's errors on damaged metadata at or below ``key`` into a :class:`StoreError`
    naming the node; and keep zarr quiet about stray files (``.DS_Store``, notebooks'
    checkpoint folders), which are simply not part of the hierarchy."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=".*is not recognized as a component of a Zarr hierarchy"
            )
            yield
    except FeatstoreError:
        raise
    except OSError as exc:
        raise StoreError(
            f"{os.fspath(store)}: cannot read {key or '/'!r} ({exc.strerror or _first_line(exc)})"
        ) from exc
    except _UNREADABLE_METADATA as exc:
        where = _damaged_node(store, key)
        raise StoreError(
            f"{os.fspath(store)}: cannot read the metadata of {where!r} ({_first_line(exc)}); "
            "the store is damaged there"
        ) from exc


def write_failure(store: StorePath, what: str, exc: OSError) -> StoreError:
    """A one-line :class:`StoreError` for an OS error while writing ``what`` in ``store``."""
    where = f"{what} in {os.fspath(store)}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreError(f"disk full while writing {where} ({exc.strerror}); free space and rerun")
    if exc.errno == errno.EROFS:
        return StoreError(f"cannot write {where}: the store is on a read-only file system")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return StoreError(f"cannot write {where}: permission denied ({exc.filename or ''})")
    return StoreError(f"cannot write {where}: {exc.strerror or _first_line(exc)}")


@contextlib.contextmanager
def writing(store: StorePath, what: str) -> Iterator[None]:
    """Report OS errors of a write (disk full, read-only store, no permission) as one line."""
    try:
        yield
    except OSError as exc:
        raise write_failure(store, what, exc) from exc


@fill_doc
@contextlib.contextmanager
def reading_data(store: StorePath, group: str) -> Iterator[None]:
    """Report a chunk that cannot be read or decoded (truncated, corrupt) as one line.

    Codecs fail with RuntimeError (zstd, blosc) or ValueError/TypeError; all of them
    mean the bytes on disk are not what the metadata says.

    %(parameters_store_group)s

    Returns
    -------
    contextlib.AbstractContextManager
        Turns a failed chunk read in its block into a :class:`StoreError`.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import open_group, reading_data
    >>> store = example_store()
    >>> with reading_data(store, "fmri"):  # a corrupt chunk: a StoreError naming the group
    ...     total = open_group(store, "fmri").bold.sum().values
    """
    try:
        with reading_metadata(store, group):
            yield
    except StoreError:
        raise
    except (RuntimeError, *_UNREADABLE_METADATA) as exc:
        raise StoreError(
            f"{os.fspath(store)}: cannot read the data of group {group!r} ({_first_line(exc)}); "
            "a chunk file is corrupt or truncated"
        ) from exc
