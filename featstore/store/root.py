"""A store's root: opened and schema-checked once, by path or through a :class:`StoreHandle`.

Every function of :mod:`featstore.store` takes a store as a path (``str`` or
``os.PathLike``). A :class:`StoreHandle` is such a path that also keeps the store's root
group once it has been opened and checked, so the functions it is passed to open the store
once instead of on every call (as xarray's ``ZarrStore`` is opened once and passed around).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import zarr

from featstore import __version__
from featstore._docs import fill_doc
from featstore.errors import SchemaVersionError, StoreError
from featstore.store import _schema as S

StorePath = str | os.PathLike


def _local_path(store: StorePath) -> Path | None:
    text = os.fspath(store)
    if "://" in text and not text.startswith("file://"):
        return None
    return Path(text.removeprefix("file://"))


# What zarr raises on metadata it cannot use: unparsable JSON and zarr's own errors are
# ValueErrors; JSON of the wrong shape surfaces as TypeError, KeyError or AttributeError.
_UNREADABLE_METADATA = (ValueError, TypeError, KeyError, AttributeError)
_ZARR_JSON = "zarr.json"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _open_checked_root(store: StorePath, mode: str) -> zarr.Group:
    """Open a store's root group and check it is a featstore store this version reads."""
    local = _local_path(store)
    if local is not None and not local.exists():
        raise StoreError(f"no store at {local}")
    try:
        root = zarr.open_group(os.fspath(store), mode=mode, zarr_format=S.ZARR_FORMAT)
    except (FileNotFoundError, NotADirectoryError, *_UNREADABLE_METADATA) as exc:
        raise StoreError(
            f"{os.fspath(store)} is not a readable Zarr v3 store ({_first_line(exc)})"
        ) from exc
    except OSError as exc:
        raise StoreError(f"cannot open store {os.fspath(store)}: {exc.strerror}") from exc
    version = root.attrs.get(S.SCHEMA_ATTR)
    if version is None:
        raise StoreError(
            f"{os.fspath(store)} is a Zarr store but not a featstore store "
            f"(root attr {S.SCHEMA_ATTR!r} is missing)"
        )
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise StoreError(
            f"{os.fspath(store)}: root attr {S.SCHEMA_ATTR} is {version!r}; expected a "
            "positive integer (the store is damaged)"
        )
    if version > S.SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{os.fspath(store)} has featstore schema version {version!r}, but this featstore "
            f"({__version__}) reads version {S.SCHEMA_VERSION}; upgrade featstore to read it"
        )
    return root


@fill_doc
def open_root(store: StorePath, *, mode: str = "r") -> zarr.Group:
    """Open a store's root group after checking it is a featstore store we can read.

    A :class:`StoreHandle` hands out the root it opened the first time (per mode).

    Parameters
    ----------
    %(store)s
    mode : {'r', 'r+'}
        Read only, or read and write.

    Returns
    -------
    zarr.Group
        The root group, its schema version checked.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import open_root
    >>> open_root(example_store()).attrs["dataset"]
    'example'
    """
    if isinstance(store, StoreHandle):
        return store.root(mode)
    return _open_checked_root(store, mode)


class StoreHandle(os.PathLike):
    """A featstore store opened once: a path-like that keeps its checked root group.

    Pass it wherever a store path is taken; functions given a handle reuse its root
    instead of opening and checking the store again.

    Parameters
    ----------
    location : str or os.PathLike
        Local directory or fsspec URL of the store.

    Examples
    --------
    >>> import os
    >>> from featstore.store.root import StoreHandle
    >>> handle = StoreHandle("stores/demo.zarr")
    >>> os.fspath(handle)
    'stores/demo.zarr'
    """

    def __init__(self, location: StorePath) -> None:
        self._location = os.fspath(location)
        self._roots: dict[str, zarr.Group] = {}

    def __fspath__(self) -> str:
        return self._location

    def __str__(self) -> str:
        return self._location

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._location!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StoreHandle):
            return self._location == other._location
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._location)

    @property
    def location(self) -> str:
        """Where the store is (the path or URL it was opened with)."""
        return self._location

    def root(self, mode: str = "r") -> zarr.Group:
        """The root group, opened and schema-checked on first use (``"r"`` or ``"r+"``)."""
        if mode not in self._roots:
            self._roots[mode] = _open_checked_root(self._location, mode)
        return self._roots[mode]

    def refresh(self) -> None:
        """Forget the opened root (after another process rewrote the root attrs)."""
        self._roots.clear()


@fill_doc
def root_attrs(store: StorePath) -> dict[str, Any]:
    """The root attrs of a store (schema checked).

    %(parameters_store)s

    Returns
    -------
    dict
        ``featstore_schema``, ``dataset``, ``tr_seconds``, ``n_tr``, ``created`` …

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import root_attrs
    >>> root_attrs(example_store())["dataset"]
    'example'
    """
    return dict(open_root(store).attrs)


@fill_doc
def store_n_tr(store: StorePath) -> int:
    """The store's ``n_tr`` root attr, checked to be a positive integer.

    %(parameters_store)s

    Returns
    -------
    int
        TRs of the story's BOLD and of every feature set.

    Examples
    --------
    %(example_store_trs)s
    """
    return int(_positive_root_attr(store, "n_tr", (int,), "the positive number of fMRI TRs"))


@fill_doc
def store_tr_seconds(store: StorePath) -> float:
    """The store's ``tr_seconds`` root attr, checked to be a positive number.

    %(parameters_store)s

    Returns
    -------
    float
        The repetition time, in seconds.

    Examples
    --------
    %(example_store_trs)s
    """
    return float(
        _positive_root_attr(store, "tr_seconds", (int, float), "the repetition time in seconds")
    )


def _positive_root_attr(store: StorePath, name: str, types: tuple[type, ...], what: str) -> Any:
    """Root attr ``name``, checked to be a finite positive number of ``types`` (no bool)."""
    attrs = root_attrs(store)
    if name == "n_tr" and attrs.get(S.SCHEMA_ATTR) == S.COLLECTION_SCHEMA:
        names = collection_story_names(open_root(store))
        raise StoreError(
            f"{os.fspath(store)} is a store of {len(names)} stories "
            f"({', '.join(names) or 'none yet'}), each with its own TRs; name one (`story`)"
        )
    value = attrs.get(name)
    if isinstance(value, bool) or not isinstance(value, types) or not 0 < value < float("inf"):
        raise StoreError(
            f"{os.fspath(store)}: root attr {name} is {value!r}; expected {what} (the store "
            "is damaged: `featstore validate` lists what is wrong)"
        )
    return value


def collection_story_names(root: zarr.Group) -> list[str]:
    """The sorted story names of a store of stories' root group (``[]`` if none yet)."""
    try:
        stories = root[S.STORIES]
    except KeyError:
        return []
    if not isinstance(stories, zarr.Group):
        raise StoreError(f"{S.STORIES!r} in {root.store} is not a group (the store is damaged)")
    return sorted(name for name, node in stories.members() if isinstance(node, zarr.Group))
