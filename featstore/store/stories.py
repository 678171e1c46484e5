"""Stores of many stories (schema version 2): each story a one-story store nested inside.

A version-2 store ("collection") holds no stimulus, fMRI or features at its root; each
story is a complete version-1 layout at ``stories/<story>``::

    narr.zarr/
      zarr.json                  featstore_schema = 2, dataset, tr_seconds, created
      stories/
        pieman/                  featstore_schema = 1, story = 'pieman', n_tr, tr_seconds …
          stimulus/  fmri/  features/<key>/<window>/  results/  _work/
        tunnel/ …
      results/<run_id>/          runs across stories (evaluate grid --test-stories / --cv stories)
      _work/

So every function that reads or writes one story takes the story's path
(:func:`story_store`) and works unchanged; plain xarray opens any group either way:
``xr.open_zarr("narr.zarr", group="stories/pieman/fmri")``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import zarr

from featstore import __version__
from featstore.errors import GroupExistsError, InputError, StoreError
from featstore.store import _schema as S
from featstore.store.root import (
    StoreHandle,
    StorePath,
    _local_path,
    collection_story_names,
    open_root,
)

__all__ = [
    "check_story_name",
    "create_collection",
    "create_story",
    "ensure_collection",
    "is_collection",
    "list_stories",
    "story_path",
    "story_store",
    "upgrade_store",
]


def check_story_name(story: str) -> str:
    """Return ``story`` if it is a valid story name, else raise :class:`InputError`.

    Parameters
    ----------
    story : str
        Letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit.

    Returns
    -------
    str
        ``story``, unchanged.

    Examples
    --------
    >>> from featstore.store.stories import check_story_name
    >>> check_story_name("pieman")
    'pieman'
    """
    if not isinstance(story, str) or not S._KEY_RE.match(story):
        raise InputError(
            f"invalid story name {story!r}: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return story


def is_collection(store: StorePath) -> bool:
    """Whether ``store`` is a store of stories (schema version 2).

    Parameters
    ----------
    store : str, os.PathLike or Store

    Returns
    -------
    bool
        False for a one-story (version 1) store.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store.stories import is_collection
    >>> is_collection(example_store())
    False
    """
    return open_root(store).attrs.get(S.SCHEMA_ATTR) == S.COLLECTION_SCHEMA


def story_path(store: StorePath, story: str) -> str:
    """Where story ``story`` of a version-2 store lives (existing or not).

    Parameters
    ----------
    store : str, os.PathLike or Store
    story : str
        A valid story name (:func:`check_story_name`).

    Returns
    -------
    str
        ``<store>/stories/<story>``.

    Examples
    --------
    >>> from featstore.store.stories import story_path
    >>> story_path("stores/narr.zarr", "pieman")
    'stores/narr.zarr/stories/pieman'
    """
    return f"{os.fspath(store).rstrip('/')}/{S.STORIES}/{check_story_name(story)}"


def list_stories(store: StorePath) -> list[str]:
    """The stories of a store, sorted; a version-1 store is one story, named by its dataset.

    Parameters
    ----------
    store : str, os.PathLike or Store

    Returns
    -------
    list of str
        Story names.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store.stories import list_stories
    >>> list_stories(example_store())
    ['example']
    """
    root = open_root(store)
    if root.attrs.get(S.SCHEMA_ATTR) != S.COLLECTION_SCHEMA:
        return [str(root.attrs.get(S.STORY_ATTR) or root.attrs.get("dataset") or "story")]
    return collection_story_names(root)


def story_store(store: StorePath, story: str | None = None) -> StoreHandle:
    """The one-story store of ``story``: what every single-story function takes.

    For a version-1 store, ``story`` may be omitted (or be its one story's name) and the
    store itself is returned. For a version-2 store, ``story`` may be omitted only if the
    store holds exactly one story.

    Parameters
    ----------
    store : str, os.PathLike or Store
    story : str, optional
        The story's name.

    Returns
    -------
    StoreHandle
        ``store`` itself for a version-1 store, else ``<store>/stories/<story>``.

    Raises
    ------
    InputError
        Unknown story (the message lists the store's stories), or none given for a store
        of several.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store.stories import story_store
    >>> story_store(example_store()).location.endswith("example.zarr")
    True
    """
    # one handle: its root is opened and checked once for both questions below
    handle = store if isinstance(store, StoreHandle) else StoreHandle(store)
    names = list_stories(handle)
    if not is_collection(handle):
        if story is not None and story not in names:
            raise InputError(
                f"{os.fspath(store)} holds one story, {names[0]!r}; there is no story {story!r}"
            )
        return handle
    if story is None:
        if len(names) == 1:
            story = names[0]
        else:
            raise InputError(
                f"{os.fspath(store)} holds {len(names)} stories ({', '.join(names) or 'none'}); "
                "name one (`story`)"
            )
    check_story_name(story)
    if story not in names:
        raise InputError(
            f"{os.fspath(store)} has no story {story!r}; its stories: "
            f"{', '.join(names) or 'none yet'}"
        )
    return StoreHandle(story_path(store, story))


def _collection_attrs(dataset: str, tr_seconds: float) -> dict:
    from featstore.store.groups import now_iso

    return {
        S.SCHEMA_ATTR: S.COLLECTION_SCHEMA,
        "dataset": str(dataset),
        "tr_seconds": float(tr_seconds),
        "created": now_iso(),
        "featstore_version": __version__,
    }


def create_collection(
    store: StorePath, *, dataset: str, tr_seconds: float, overwrite: bool = False
) -> StoreHandle:
    """Create an empty store of stories (schema version 2).

    Parameters
    ----------
    store : str or os.PathLike
    dataset : str
        Name of the dataset.
    tr_seconds : float
        Repetition time shared by every story, in seconds.
    overwrite : bool
        Replace what is at ``store``.

    Returns
    -------
    StoreHandle
        The new store, holding no story yet.

    Examples
    --------
    >>> import tempfile
    >>> from featstore.store.stories import create_collection, list_stories
    >>> store = create_collection(tempfile.mkdtemp() + "/narr.zarr", dataset="narr", tr_seconds=1.5)
    >>> list_stories(store)
    []
    """
    from featstore.store.io_errors import writing

    if (
        not isinstance(tr_seconds, (int, float))
        or isinstance(tr_seconds, bool)
        or not (0 < tr_seconds < float("inf"))
    ):
        raise InputError(f"tr_seconds must be a positive number of seconds, got {tr_seconds!r}")
    local = _local_path(store)
    if local is not None and local.exists() and not overwrite:
        raise GroupExistsError(f"{local} already exists; pass `overwrite` to replace it")
    with writing(store, "the root group"):
        if local is not None and local.exists():
            shutil.rmtree(local) if local.is_dir() else local.unlink()
        root = zarr.open_group(os.fspath(store), mode="w", zarr_format=S.ZARR_FORMAT)
        root.attrs.update(_collection_attrs(dataset, tr_seconds))
        root.create_group(S.STORIES)
        work = root.create_group(S.WORK)
        work.create_group(S.RESULTS)
    return StoreHandle(store)


def create_story(
    store: StorePath, story: str, *, n_tr: int, overwrite: bool = False
) -> StoreHandle:
    """Create an empty story (a one-story store with root attrs only) in a store of stories.

    The story's root gets the collection's ``dataset`` and ``tr_seconds``, its own
    ``n_tr`` and ``story``; its groups are then written with the single-story writers.

    Parameters
    ----------
    store : str, os.PathLike or Store
        A store of stories.
    story : str
        Name of the new story.
    n_tr : int
        TRs of the story's scans.
    overwrite : bool
        Replace a story of that name (otherwise refused, the store unchanged).

    Returns
    -------
    StoreHandle
        The story's store.

    Raises
    ------
    InputError
        ``store`` is a one-story store, or ``story`` is not a valid name.
    GroupExistsError
        The story exists (and not ``overwrite``).

    Examples
    --------
    >>> import tempfile
    >>> from featstore.store import store_n_tr
    >>> from featstore.store.stories import create_collection, create_story, list_stories
    >>> store = create_collection(tempfile.mkdtemp() + "/n.zarr", dataset="n", tr_seconds=1.5)
    >>> store_n_tr(create_story(store, "pieman", n_tr=300))
    300
    >>> list_stories(store)
    ['pieman']
    """
    from featstore.store.groups import create_store

    check_story_name(story)
    if not is_collection(store):
        raise InputError(
            f"{os.fspath(store)} is a one-story store (schema 1); run "
            "`featstore store upgrade` on it before adding stories"
        )
    if story in list_stories(store) and not overwrite:
        raise GroupExistsError(
            f"{os.fspath(store)} already has a story {story!r}; pass `overwrite` to replace it"
        )
    attrs = open_root(store).attrs
    path = story_path(store, story)
    create_store(
        path,
        dataset=str(attrs.get("dataset") or story),
        tr_seconds=float(attrs["tr_seconds"]),
        n_tr=n_tr,
        overwrite=overwrite,
        extra_attrs={S.STORY_ATTR: story},
    )
    return StoreHandle(path)


def ensure_collection(store: StorePath, *, dataset: str, tr_seconds: float) -> StoreHandle:
    """Open the store of stories at ``store``, creating it if nothing is there.

    Raises :class:`InputError` if ``store`` is a one-story (version 1) store (upgrade it
    first: :func:`upgrade_store`) or its TR is not ``tr_seconds``.

    Parameters
    ----------
    store : str or os.PathLike
    dataset : str
        Dataset name for a new store.
    tr_seconds : float
        The TR of the story about to be added.

    Returns
    -------
    StoreHandle
        The store of stories, new or as it was.

    Examples
    --------
    >>> import tempfile
    >>> from featstore.store.stories import ensure_collection, is_collection
    >>> store = ensure_collection(tempfile.mkdtemp() + "/n.zarr", dataset="n", tr_seconds=2.0)
    >>> is_collection(ensure_collection(store, dataset="n", tr_seconds=2.0))
    True
    """
    local = _local_path(store)
    if local is not None and not local.exists():
        return create_collection(store, dataset=dataset, tr_seconds=tr_seconds)
    handle = store if isinstance(store, StoreHandle) else StoreHandle(store)
    if not is_collection(handle):
        raise InputError(
            f"{os.fspath(store)} is a one-story store (schema 1); run "
            "`featstore store upgrade` on it before adding stories"
        )
    stored = open_root(handle).attrs.get("tr_seconds")
    if stored is not None and abs(float(stored) - float(tr_seconds)) > 1e-9:
        raise InputError(
            f"{os.fspath(store)} has TR {stored} s but this story's TR is {tr_seconds} s; "
            "every story of a store shares one TR"
        )
    return handle


def upgrade_store(store: StorePath, *, story: str | None = None) -> StoreHandle:
    """Turn a one-story store into a store of stories, losing nothing.

    Everything of the old store (stimulus, fMRI, features, results, staged work) moves,
    by renaming, to ``stories/<story>``; the new root has schema version 2. Local stores
    only. An upgrade interrupted between its two renames leaves the data in
    ``.<name>.upgrading`` next to the store; running it again finishes it.

    Parameters
    ----------
    store : str or os.PathLike
    story : str, optional
        Name of the story (default: the store's dataset name).

    Returns
    -------
    StoreHandle
        The same store, now of stories.

    Examples
    --------
    >>> import shutil, tempfile
    >>> from featstore.datasets import example_store
    >>> from featstore.store.stories import list_stories, upgrade_store
    >>> copy = shutil.copytree(example_store(), tempfile.mkdtemp() + "/s.zarr")
    >>> list_stories(upgrade_store(copy, story="tale"))
    ['tale']
    """
    local = _local_path(store)
    if local is None:
        raise StoreError(f"{os.fspath(store)}: only local stores can be upgraded")
    pending = local.parent / f".{local.name}.upgrading"
    if not local.exists() and pending.exists():
        os.rename(pending, local)  # the second rename of an interrupted upgrade
        return StoreHandle(local)
    root = open_root(os.fspath(local))
    attrs = dict(root.attrs)
    if attrs.get(S.SCHEMA_ATTR) == S.COLLECTION_SCHEMA:
        raise InputError(f"{local} is already a store of stories (schema 2)")
    name = check_story_name(story or str(attrs.get("dataset") or "story"))
    if pending.exists():
        raise StoreError(f"{pending} exists: remove it or finish that upgrade first")
    pending.mkdir()
    stories_dir = pending / S.STORIES
    os.rename(local, _make_dir(stories_dir) / name)
    new_root = zarr.open_group(os.fspath(pending), mode="a", zarr_format=S.ZARR_FORMAT)
    new_root.attrs.update(
        _collection_attrs(str(attrs.get("dataset") or name), float(attrs["tr_seconds"]))
    )
    new_root.attrs["upgraded_from"] = {"schema": attrs.get(S.SCHEMA_ATTR), "story": name}
    zarr.open_group(os.fspath(stories_dir), mode="a", zarr_format=S.ZARR_FORMAT)
    work = zarr.open_group(os.fspath(pending / S.WORK), mode="a", zarr_format=S.ZARR_FORMAT)
    work.require_group(S.RESULTS)
    story_root = zarr.open_group(
        os.fspath(stories_dir / name), mode="r+", zarr_format=S.ZARR_FORMAT
    )
    story_root.attrs[S.STORY_ATTR] = name
    os.rename(pending, local)
    return StoreHandle(local)


def _make_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
