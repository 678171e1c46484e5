"""Read word alignments as Gentle writes them (and the reference study used them).

The CSV has four columns: ``word, word_lower, onset, offset`` (seconds from the start
of the story audio), with or without a header row. Gentle leaves both times empty for
words it could not align; those are back-filled from the next timed word, so an
untimed word joins the TR of the word that follows it (the reference study's rule).
Untimed words at the very end of the story, which have no next timed word, take the
times of the last timed word instead. An empty ``word`` cell is kept as ``""`` and
flagged as missing.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featstore.datasets._files import read_bytes
from featstore.errors import InputError

N_COLUMNS = 4
COLUMNS = ("word", "word_lower", "onset", "offset")
# Cells pandas (and so the reference study) read as missing.
_MISSING_TIME = frozenset({"", "nan", "na", "n/a", "null", "none"})


@dataclass(frozen=True)
class AlignedWord:
    """One word as a reader found it, before back-filling.

    ``location`` is its 1-based line, word or interval number in the file; ``onset``
    and ``offset`` are seconds (story clock) or None when the aligner gave none.
    """

    location: int
    word: str
    word_lower: str
    onset: float | None
    offset: float | None


@dataclass(frozen=True)
class Alignment:
    """The words of a story with their times (story clock, seconds).

    Attributes
    ----------
    path
        The CSV it was read from.
    sha256
        Hex sha256 of the CSV's bytes.
    has_header
        Whether the first row was a header.
    word, word_lower
        One string per word; ``""`` where the CSV had none.
    onset, offset
        float64 seconds, after back-filling.
    time_filled
        True where the times were back-filled (the CSV had none).
    word_missing
        True where the word cell was empty.
    line
        1-based position of each word in its file, for messages: the CSV line, the
        Gentle word or the TextGrid interval (``location`` says which).
    location
        ``"line"``, ``"word"`` or ``"interval"``: what ``line`` counts.

    Examples
    --------
    >>> from featstore.datasets import read_alignment
    >>> from featstore.datasets.demo import demo_story_paths
    >>> alignment = read_alignment(demo_story_paths()[1])
    >>> alignment.n_words, alignment.word[:2], alignment.onset[:2]
    (830, ['Every', 'morning,'], array([0.    , 0.3635]))
    """

    path: Path
    sha256: str
    has_header: bool
    word: list[str]
    word_lower: list[str]
    onset: np.ndarray
    offset: np.ndarray
    time_filled: np.ndarray
    word_missing: np.ndarray
    line: np.ndarray
    location: str = "line"

    @property
    def n_words(self) -> int:
        """Number of words (rows without the header)."""
        return len(self.word)

    @property
    def n_time_filled(self) -> int:
        """Number of words whose times were back-filled."""
        return int(self.time_filled.sum())

    @property
    def n_word_missing(self) -> int:
        """Number of rows with an empty word cell."""
        return int(self.word_missing.sum())

    @property
    def end_s(self) -> float:
        """Offset of the last word (seconds, story clock)."""
        return float(self.offset.max())


def _decode(raw: bytes, path: Path) -> str:
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"alignment {path}: line {line} is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); "
            "save the CSV as UTF-8"
        ) from None
    # The csv module reads NUL as a character since Python 3.11; in a word it is corruption.
    if "\0" in text:
        line = text[: text.index("\0")].count("\n") + 1
        raise InputError(
            f"alignment {path}: line {line} holds a NUL byte; malformed CSV (a binary or "
            "corrupt file?)"
        )
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _looks_like_header(fields: list[str]) -> bool:
    """A first row whose two time cells are words (``onset``, ``start``…), not numbers."""
    times = [cell.strip() for cell in fields[2:4]]
    return all(t[:1].isalpha() and not _is_number(t) for t in times)


def _parse_time(cell: str, column: str, path: Path, line: int) -> float | None:
    text = cell.strip()
    if text.lower() in _MISSING_TIME:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(
            f"alignment {path}: line {line}: {column} {text!r} is not a number of seconds"
        ) from None
    if not math.isfinite(value):
        raise InputError(f"alignment {path}: line {line}: {column} {text!r} is not finite")
    return check_time(value, column, path, f"line {line}")


def _rows(text: str, path: Path) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = []
    try:
        for fields in reader:
            if fields:  # blank lines
                rows.append((reader.line_num, fields))
    except csv.Error as exc:
        raise InputError(
            f"alignment {path}: line {reader.line_num}: malformed CSV ({exc})"
        ) from None
    return rows


def _back_fill(onset: list, offset: list) -> np.ndarray:
    """Fill untimed words in place from the next timed word (the last one at the end)."""
    filled = np.array([t is None for t in onset], dtype=bool)
    following: tuple[float, float] | None = None
    for i in reversed(range(len(onset))):
        if onset[i] is not None:
            following = (onset[i], offset[i])
        elif following is not None:
            onset[i], offset[i] = following
    preceding: tuple[float, float] | None = None
    for i in range(len(onset)):
        if onset[i] is not None:
            preceding = (onset[i], offset[i])
        else:  # only trailing untimed words are left
            onset[i], offset[i] = preceding
    return filled


def read_alignment(path: str | os.PathLike) -> Alignment:
    """Read a Gentle-style word alignment CSV.

    Parameters
    ----------
    path
        CSV with the columns ``word, word_lower, onset, offset`` (seconds from the
        start of the story audio); a header row is detected when its two time cells
        are words rather than numbers.

    Returns
    -------
    Alignment
        Words, times after back-filling, flags and the file's sha256.

    Raises
    ------
    InputError
        Naming the file and 1-based line: unreadable or non-UTF-8 file, malformed CSV,
        wrong column count, non-numeric, non-finite or negative time, onset after
        offset, only one of the two times given, onsets that go backwards, no words,
        no timed word.

    Examples
    --------
    >>> from featstore.datasets import read_alignment
    >>> from featstore.datasets.demo import demo_story_paths
    >>> read_alignment(demo_story_paths()[1]).word_lower[:3]
    ['every', 'morning', 'before']
    """
    file = Path(path)
    raw = read_bytes(file, "alignment")
    text = _decode(raw, file)
    rows = _rows(text, file)
    has_header = bool(rows) and len(rows[0][1]) == N_COLUMNS and _looks_like_header(rows[0][1])
    if has_header:
        rows = rows[1:]
    entries = []
    for line, fields in rows:
        if len(fields) != N_COLUMNS:
            raise InputError(
                f"alignment {file}: line {line} has {len(fields)} columns; expected {N_COLUMNS} "
                f"({', '.join(COLUMNS)})"
            )
        onset = _parse_time(fields[2], "onset", file, line)
        offset = _parse_time(fields[3], "offset", file, line)
        entries.append(AlignedWord(line, fields[0], fields[1], onset, offset))
    return alignment_from_words(file, raw, entries, has_header=has_header)


def check_time(value: float, column: str, file: Path, where: str) -> float:
    """``value`` if it is a finite, non-negative number of seconds, else :class:`InputError`
    naming ``file`` and ``where`` (``"line 3"``, ``"word 3"``, ``"interval 3"``)."""
    if not math.isfinite(value):
        raise InputError(f"alignment {file}: {where}: {column} {value!r} is not finite")
    if value < 0:
        raise InputError(
            f"alignment {file}: {where}: {column} {value:g} s is negative; "
            "times are seconds from the start of the story audio"
        )
    return float(value)


def alignment_from_words(
    file: Path,
    raw: bytes,
    words: list[AlignedWord],
    *,
    has_header: bool = False,
    location: str = "line",
) -> Alignment:
    """Check words read from any alignment format and back-fill their missing times.

    Every reader (CSV, Gentle JSON, Praat TextGrid) ends here, so the same words give
    the same :class:`Alignment` whatever file they came from.

    Parameters
    ----------
    file, raw
        The file read and its bytes (hashed into ``sha256``).
    words
        In story order; times already checked finite and non-negative, None = untimed.
    has_header
        Whether a header row was skipped (CSV only).
    location
        What ``AlignedWord.location`` counts, for messages: ``"line"``, ``"word"``…

    Raises
    ------
    InputError
        No words, only one of the two times, onset after offset, onsets that go
        backwards, no timed word; naming ``file`` and the word's location.
    """
    if not words:
        raise InputError(f"alignment {file}: no words (the story is empty)")
    previous: tuple[float, int] | None = None
    for entry in words:
        where = f"{location} {entry.location}"
        onset, offset = entry.onset, entry.offset
        if (onset is None) != (offset is None):
            given = "onset" if offset is None else "offset"
            raise InputError(
                f"alignment {file}: {where} has an {given} but no "
                f"{'offset' if given == 'onset' else 'onset'}; give both times or neither"
            )
        if onset is not None:
            if onset > offset:
                raise InputError(
                    f"alignment {file}: {where}: onset {onset:g} s is after offset {offset:g} s"
                )
            if previous is not None and onset < previous[0]:
                raise InputError(
                    f"alignment {file}: {where}: onset {onset:g} s is before the onset "
                    f"{previous[0]:g} s of {location} {previous[1]}; onsets must not go backwards"
                )
            previous = (onset, entry.location)
    if previous is None:
        raise InputError(f"alignment {file}: none of its {len(words)} words has timestamps")
    word_text = [entry.word.strip() for entry in words]
    onsets = [entry.onset for entry in words]
    offsets = [entry.offset for entry in words]
    filled = _back_fill(onsets, offsets)
    return Alignment(
        path=file,
        sha256=hashlib.sha256(raw).hexdigest(),
        has_header=has_header,
        word=word_text,
        word_lower=[
            e.word_lower.strip() or w.lower() for e, w in zip(words, word_text, strict=True)
        ],
        onset=np.asarray(onsets, dtype=np.float64),
        offset=np.asarray(offsets, dtype=np.float64),
        time_filled=filled,
        word_missing=np.array([w == "" for w in word_text], dtype=bool),
        line=np.asarray([entry.location for entry in words], dtype=np.int64),
        location=location,
    )
