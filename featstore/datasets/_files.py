"""File access shared by the dataset readers: checked opening, np.load errors, content hashes."""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from featstore.errors import InputError

_HASH_BLOCK = 1 << 20


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _blocks(file: Path) -> Iterator[bytes]:
    """A file's bytes in blocks (audio and feature files can be large)."""
    with open(file, "rb") as handle:
        yield from iter(lambda: handle.read(_HASH_BLOCK), b"")


def plain_value(value: object) -> str:
    """A value as a user reads it in a message: ``nan``, ``1e+20``, ``7``, not numpy's
    ``np.float32(nan)``."""
    return repr(value.item() if hasattr(value, "item") else value)


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (or its type's name if empty)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def numpy_load_errors(
    path: Path, what: str, *, read_as: str = "", one_array: bool = False
) -> Iterator[None]:
    """Turn what ``np.load(..., allow_pickle=False)`` raises on a bad file into an InputError.

    ``what`` names the input (``features``, ``fmri``); ``read_as`` (``.npy``, ``.npz`` or
    "") says which format failed; ``one_array`` words the pickled-object refusal for an
    ``.npy`` (one array) rather than an archive. An :class:`InputError` raised inside passes.
    """
    unreadable = f"{what} {path}: cannot read it" + (f" as {read_as}" if read_as else "")
    try:
        yield
    except InputError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            held = (
                "an object array, which needs unpickling; save a numeric array"
                if one_array
                else "object arrays, which need unpickling; save numeric arrays"
            )
            raise InputError(f"{what} {path}: holds {held}") from None
        raise InputError(f"{unreadable} ({first_line(exc)})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise InputError(f"{unreadable} ({first_line(exc)})") from None


def existing_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a :class:`Path` if it is a readable regular file, else :class:`InputError`."""
    file = Path(path)
    if not file.exists():
        raise InputError(f"{what} {file}: no such file")
    if not file.is_file():
        raise InputError(f"{what} {file}: not a regular file")
    if not os.access(file, os.R_OK):
        raise InputError(f"{what} {file}: permission denied")
    return file


def read_bytes(path: str | os.PathLike, what: str) -> bytes:
    """The whole content of a file, with a one-line error naming it if unreadable."""
    file = existing_file(path, what)
    try:
        return file.read_bytes()
    except OSError as exc:
        raise InputError(f"{what} {file}: cannot read it ({_reason(exc)})") from None


def file_sha256(path: str | os.PathLike, what: str) -> str:
    """Hex sha256 of a file's bytes, read in blocks (audio files can be large)."""
    file = existing_file(path, what)
    digest = hashlib.sha256()
    try:
        for block in _blocks(file):
            digest.update(block)
    except OSError as exc:
        raise InputError(f"{what} {file}: cannot read it ({_reason(exc)})") from None
    return digest.hexdigest()


def files_sha256(files: Sequence[Path]) -> str:
    """Hex sha256 of the files' bytes, in order (for one file: the file's own sha256)."""
    digest = hashlib.sha256()
    for file in files:
        for block in _blocks(file):
            digest.update(block)
    return digest.hexdigest()
