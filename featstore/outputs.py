"""Files featstore writes outside a store (CSV tables, figures, reports): checked paths.

A path whose parent is a file, a directory given where a file is expected, a read-only
or full disk: each is one :class:`~featstore.errors.InputError` naming the path and the
option it came from, instead of an ``OSError`` traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from featstore.errors import InputError


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk full"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or type(exc).__name__


@contextlib.contextmanager
def writing_file(path: str | os.PathLike, what: str) -> Iterator[Path]:
    """Yield ``path`` (its parent directories created) for writing one file.

    Parameters
    ----------
    path
        The file to write.
    what
        The parameter or role that named it, for the message (``"`out_dir`"``, which
        the CLI shows as its flag, or ``"CSV file"``).
    """
    file = Path(path)
    if file.is_dir():
        raise InputError(f"{what} {file}: is a directory; expected a file name")
    _check_parents(file, what)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        yield file
    except OSError as exc:
        raise InputError(f"{what} {file}: cannot write it ({_reason(exc)})") from None


def _check_parents(path: Path, what: str) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{what} {path}: {parent} is a file, not a directory")
            return


def check_output_directory(path: str | os.PathLike, what: str) -> Path:
    """``path`` if a directory can be there: it is not a file, nor below one."""
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{what} {directory}: is a file; expected a directory")
    _check_parents(directory, what)
    return directory


@contextlib.contextmanager
def writing_directory(path: str | os.PathLike, what: str) -> Iterator[Path]:
    """Yield ``path`` (not created; its parents are) for writing a directory's files.

    Checked first: ``path`` is not a file and no parent of it is a file; OS errors while
    writing (disk full, no permission) become one :class:`InputError` naming ``path``.
    """
    directory = check_output_directory(path, what)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        yield directory
    except OSError as exc:
        raise InputError(f"{what} {directory}: cannot write it ({_reason(exc)})") from None


def output_directory(path: str | os.PathLike, what: str) -> Path:
    """``path`` as an existing directory (created if needed), or :class:`InputError`."""
    directory = check_output_directory(path, what)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{what} {directory}: cannot create it ({_reason(exc)})") from None
    return directory
