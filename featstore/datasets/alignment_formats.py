"""One entry point for every word-alignment format: CSV, Gentle JSON, Praat TextGrid.

The format is chosen by extension (``.json``, ``.textgrid``, ``.csv``) and, for any
other name, by content (a JSON object, a Praat ``ooTextFile`` header, else CSV). All
three readers return the same :class:`~featstore.datasets.align.Alignment`, so the
stimulus group does not depend on which file a story came with.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable
from pathlib import Path

from featstore.datasets._files import existing_file
from featstore.datasets.align import Alignment, read_alignment
from featstore.datasets.gentle import read_gentle_json
from featstore.datasets.textgrid import read_textgrid
from featstore.errors import InputError

READERS: dict[str, Callable[[str | os.PathLike], Alignment]] = {
    "csv": read_alignment,
    "gentle-json": read_gentle_json,
    "textgrid": read_textgrid,
}
_BY_SUFFIX = {".csv": "csv", ".json": "gentle-json", ".textgrid": "textgrid"}


def _sniff(file: Path) -> str:
    try:
        with open(file, "rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        raise InputError(f"alignment {file}: cannot read it ({exc.strerror})") from None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        head = head.decode("utf-16", errors="ignore").encode()
    text = head.removeprefix(codecs.BOM_UTF8).lstrip()
    if text.startswith(b"{"):
        return "gentle-json"
    if text.startswith(b'File type = "ooTextFile"'):
        return "textgrid"
    return "csv"


def alignment_format(path: str | os.PathLike) -> str:
    """``"csv"``, ``"gentle-json"`` or ``"textgrid"``: by extension, else by content."""
    file = existing_file(path, "alignment")
    return _BY_SUFFIX.get(file.suffix.lower()) or _sniff(file)


def read_word_alignment(path: str | os.PathLike) -> Alignment:
    """Read a word alignment in any supported format (see the module docstring).

    Parameters
    ----------
    path : str or os.PathLike
        A Gentle CSV (``.csv``), Gentle JSON (``.json``) or Praat TextGrid
        (``.TextGrid``); other names are recognised by their content.

    Returns
    -------
    Alignment
        The words with their onsets and offsets, back-filled as the CSV reader does.

    Examples
    --------
    >>> from featstore.datasets import read_word_alignment
    >>> from featstore.datasets.demo import demo_story_paths
    >>> alignment = read_word_alignment(demo_story_paths()[1])
    >>> alignment.n_words, alignment.location
    (830, 'line')

    Raises
    ------
    InputError
        As the format's reader does, naming the file and its line, word or interval.
    """
    return READERS[alignment_format(path)](path)
