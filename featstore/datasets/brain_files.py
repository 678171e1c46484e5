"""Which brain files belong together: subjects from ``sub-XX``, hemispheres by name.

A surface scan comes as one file per hemisphere, told apart by a token in the name:
BIDS ``hemi-L`` / ``hemi-R`` (Narratives), HCP ``.L.`` / ``.R.``, FreeSurfer ``lh.`` /
``rh.``. The right file of a left one is its name with the token swapped, so a glob
for the left files (``'sub-*_hemi-L.func.gii'``) finds both.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

from featstore.errors import InputError

# (left, right) spellings of the hemisphere token in a file name.
_HEMISPHERE_TOKENS = (
    (re.compile(r"hemi-L(?=[_.])"), "hemi-L", "hemi-R"),
    (re.compile(r"hemi-R(?=[_.])"), "hemi-R", "hemi-L"),
    (re.compile(r"\.L\."), ".L.", ".R."),
    (re.compile(r"\.R\."), ".R.", ".L."),
    (re.compile(r"^lh\."), "lh.", "rh."),
    (re.compile(r"^rh\."), "rh.", "lh."),
)
_SUBJECT = re.compile(r"(?:^|[_./-])(sub-[A-Za-z0-9]+)")


def hemisphere_of(path: Path) -> str | None:
    """``'L'``, ``'R'`` or None: the hemisphere a file name says it holds."""
    for pattern, token, _ in _HEMISPHERE_TOKENS:
        if pattern.search(path.name):
            return "L" if token in ("hemi-L", ".L.", "lh.") else "R"
    return None


def twin(path: Path) -> Path:
    """The other hemisphere's file: ``x_hemi-L.func.gii`` → ``x_hemi-R.func.gii``."""
    for pattern, _, other in _HEMISPHERE_TOKENS:
        if pattern.search(path.name):
            return path.with_name(pattern.sub(other, path.name, count=1))
    raise InputError(f"fmri {path}: no hemisphere in the name (hemi-L/hemi-R, .L./.R. or lh./rh.)")


def subject_of(path: Path, what: str = "fmri") -> str:
    """The ``sub-XX`` in a file's name (its last occurrence in the path)."""
    found = _SUBJECT.findall(str(path))
    if not found:
        raise InputError(f"{what} {path}: no subject (sub-XX) in the file name")
    return found[-1]


def expand(pattern: str | os.PathLike) -> list[Path]:
    """Files a path or glob names, sorted; :class:`InputError` if none."""
    text = os.fspath(pattern)
    if glob.has_magic(text):
        files = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
    else:
        files = [Path(text)] if Path(text).is_file() else []
    if not files:
        raise InputError(f"fmri {text}: matches no file")
    return files


def hemisphere_pairs(files: list[Path]) -> list[tuple[Path, Path]]:
    """(left, right) file pairs of the given per-hemisphere files, each pair once.

    Raises
    ------
    InputError
        A file without a hemisphere token, or whose other hemisphere does not exist.
    """
    pairs: dict[Path, Path] = {}
    for file in files:
        other = twin(file)
        left, right = (file, other) if hemisphere_of(file) == "L" else (other, file)
        missing = other if not other.is_file() else None
        if missing is not None:
            raise InputError(
                f"fmri {file}: its other hemisphere {missing} does not exist; "
                "both hemispheres are needed"
            )
        pairs[left] = right
    return sorted(pairs.items())
