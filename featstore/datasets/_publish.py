"""Staging and publishing imported stores: built hidden, renamed into place when complete.

A store (or one story of a store of stories) is written in a hidden directory beside
its store, ``.NAME.importing-<pid>-<hex>``, and renamed into place at the end, so a
failed import leaves nothing behind; the pid lets a later import remove the staging
directory of one that was killed outright.
"""

from __future__ import annotations

import glob
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from featstore.errors import GroupExistsError, InputError, SchemaVersionError, StoreError
from featstore.store import _schema as S
from featstore.store.groups import StorePath, _local_path, open_root
from featstore.store.io_errors import write_failure
from featstore.store.stories import ensure_collection


def target_path(store: StorePath) -> Path:
    """The local directory of ``store``; dataset import writes local stores only."""
    local = _local_path(store)
    if local is None:
        raise InputError(f"store={os.fspath(store)}: dataset import writes local stores only")
    return local


def is_featstore_store(path: Path) -> bool:
    """Whether ``path`` is a featstore store this featstore may replace.

    A store of a newer schema raises :class:`SchemaVersionError`, as every other command
    does: its groups (features, results) are not ours to judge, let alone delete.
    """
    try:
        open_root(path)
    except SchemaVersionError as exc:
        raise SchemaVersionError(
            f"{exc}; refusing to replace it even with `overwrite` (choose another `store` path)"
        ) from None
    except StoreError:
        return False
    return True


def check_target(target: Path, overwrite: bool, what: str | None = None) -> None:
    """Refuse an existing ``target`` without ``overwrite``, or one that is not a store."""
    if not (target.exists() or target.is_symlink()):
        return
    if not overwrite:
        raise GroupExistsError(f"{what or target} already exists; pass `overwrite` to replace it")
    empty_dir = target.is_dir() and not any(target.iterdir())
    if not (empty_dir or is_featstore_store(target)):
        raise InputError(
            f"{target} exists and is not a featstore store; refusing to replace it "
            "even with `overwrite` (choose another `store` path)"
        )


def check_new_stories(
    collection: Path, stories: Sequence[str], overwrite: bool, tr_seconds: float
) -> None:
    """Refuse to add ``stories`` to the store of stories ``collection`` before anything
    is read or written: a story already there without ``overwrite`` (see
    :func:`check_target`), or a store that is not a store of stories at ``tr_seconds``.

    A ``collection`` that does not exist yet passes; nothing is created.
    """
    if not collection.exists():
        return
    ensure_collection(collection, dataset="", tr_seconds=tr_seconds)  # checks, creates nothing
    for story in stories:
        check_target(collection / S.STORIES / story, overwrite, f"story {story!r} of {collection}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def staging_prefix(target: Path, beside: Path | None = None) -> tuple[Path, str]:
    """(directory, name prefix) of the staging directories of ``target``.

    A store stages beside itself; a story stages beside its store (``beside``), never
    inside ``stories/`` where it would show up as a story.
    """
    if beside is None:
        return target.parent, f".{target.name}.importing-"
    return beside.parent, f".{beside.name}.{target.name}.importing-"


def new_staging(target: Path, beside: Path | None = None) -> Path:
    """A fresh staging path for ``target``, after removing those of killed imports."""
    directory, prefix = staging_prefix(target, beside)
    for path in directory.glob(f"{glob.escape(prefix)}*"):
        pid_text = path.name[len(prefix) :].split("-", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            shutil.rmtree(path, ignore_errors=True)
    # The pid in the name lets a later import remove it if this process is killed.
    return directory / f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:8]}"


def publish(staging: Path, target: Path, overwrite: bool, what: str | None = None) -> None:
    """Rename the finished store into place, replacing an old one only at the very end."""
    check_target(target, overwrite, what)
    if not (target.exists() or target.is_symlink()):
        os.rename(staging, target)
        return
    # beside the staging directory (never inside stories/, where it would be a story),
    # under a name stale-staging cleanup leaves alone: it holds the old store
    stem = staging.name.split(".importing-")[0]
    retired = staging.with_name(f"{stem}.replaced-{uuid.uuid4().hex[:8]}")
    os.rename(target, retired)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(retired, target)
        raise
    if retired.is_dir() and not retired.is_symlink():
        shutil.rmtree(retired, ignore_errors=True)
    else:
        retired.unlink()


def make_parent(target: Path) -> None:
    """Create the directory the store goes in, or say in one line why it cannot be."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"store={target}: cannot create its directory {target.parent} ({exc.strerror})"
        ) from None


@contextmanager
def removed_on_failure(
    stagings: Sequence[Path], created: Path | None, target: Path, what: str
) -> Iterator[None]:
    """Undo an import whose block fails: remove its staging directories, and the store of
    stories ``created`` by this import (None: it existed before); an :class:`OSError` is
    reported as a failure to write ``what`` into ``target``.

    ``stagings`` is read when the block fails, so a list the block appends to works.
    """
    try:
        yield
    except BaseException as exc:
        for staging in stagings:
            shutil.rmtree(staging, ignore_errors=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        if isinstance(exc, OSError):
            raise write_failure(target, what, exc) from None
        raise
