"""Read the word tier of a Praat TextGrid (the LeBel et al. layout) as an alignment.

Both of Praat's text layouts are read (the long ``name = value`` one and the short
one): the file is a sequence of numbers and quoted strings, the rest (labels like
``xmin =``, ``intervals [3]:``) is decoration. The tier named ``words`` (or ``word``,
any case) is used; its intervals whose text is empty, ``sp`` or ``sil`` are silence
and skipped, every other interval is one word with ``onset = xmin`` and
``offset = xmax``. TextGrids carry no untimed words, so nothing is back-filled.
Praat saves UTF-16 with a byte-order mark or UTF-8; both are read.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

from featstore.datasets._files import read_bytes
from featstore.datasets.align import AlignedWord, Alignment, alignment_from_words, check_time
from featstore.errors import InputError

WORD_TIERS = ("words", "word")
SILENCE = frozenset({"", "sp", "sil"})
_TOKEN = re.compile(
    r'"((?:[^"]|"")*)"|(?<![\w\[])([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w\]])'
)
_INDEX = re.compile(r"\[\s*\d*\s*\]")


@dataclass(frozen=True)
class _Token:
    value: str | float
    line: int


def _decode(raw: bytes, file: Path) -> str:
    try:
        if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return raw.decode("utf-16")
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(
            f"alignment {file}: not UTF-8 nor UTF-16 text; expected a TextGrid"
        ) from None


def _tokens(text: str) -> list[_Token]:
    tokens = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        for match in _TOKEN.finditer(_INDEX.sub(" ", line)):
            if match.group(1) is not None:
                tokens.append(_Token(match.group(1).replace('""', '"'), line_number))
            else:
                tokens.append(_Token(float(match.group(2)), line_number))
    return tokens


class _Reader:
    """Walks the tokens, naming the file and line of whatever is not as expected."""

    def __init__(self, file: Path, tokens: list[_Token]):
        self.file, self.tokens, self.position = file, tokens, 0

    def next(self, kind: type, what: str) -> str | float:
        if self.position >= len(self.tokens):
            raise InputError(f"alignment {self.file}: ends before {what}; truncated TextGrid?")
        token = self.tokens[self.position]
        self.position += 1
        if not isinstance(token.value, kind):
            expected = "a number" if kind is float else "a quoted string"
            raise InputError(
                f"alignment {self.file}: line {token.line}: {what} is {token.value!r}; "
                f"expected {expected}"
            )
        return token.value

    def count(self, what: str) -> int:
        value = self.next(float, what)
        if value != int(value) or value < 0:
            raise InputError(f"alignment {self.file}: {what} {value:g} is not a count")
        return int(value)


def _tiers(reader: _Reader) -> dict[str, list[tuple[float, float, str]]]:
    """Every tier: name → its intervals (or points, as zero-length intervals)."""
    if (
        reader.next(str, "the file type") != "ooTextFile"
        or reader.next(str, "the object class") != "TextGrid"
    ):
        raise InputError(
            f"alignment {reader.file}: not a Praat TextGrid (no 'ooTextFile' 'TextGrid' header)"
        )
    reader.next(float, "xmin")
    reader.next(float, "xmax")
    tiers = {}
    for _ in range(reader.count("the tier count")):
        tier_class = reader.next(str, "a tier class")
        name = reader.next(str, "a tier name")
        reader.next(float, f"tier {name!r} xmin")
        reader.next(float, f"tier {name!r} xmax")
        items = []
        for number in range(1, reader.count(f"tier {name!r} size") + 1):
            where = f"tier {name!r} interval {number}"
            if tier_class == "IntervalTier":
                start, end = (
                    reader.next(float, f"{where} xmin"),
                    reader.next(float, f"{where} xmax"),
                )
            else:
                start = end = reader.next(float, f"{where} time")
            items.append((start, end, reader.next(str, f"{where} text")))
        tiers[name] = items
    return tiers


def read_textgrid(path: str | Path) -> Alignment:
    """Read the word tier of a Praat TextGrid.

    Parameters
    ----------
    path
        A TextGrid (long or short text layout) with an interval tier named ``words``.

    Returns
    -------
    Alignment
        One word per non-silent interval; ``location`` ``"interval"``: ``line`` holds
        each word's 1-based interval number in the tier.

    Raises
    ------
    InputError
        Naming the file and line or interval: not a TextGrid, truncated, no word tier
        (listing the tiers found), a negative or non-finite time, ``xmin > xmax``,
        intervals that go backwards, no word.
    """
    file = Path(path)
    raw = read_bytes(file, "alignment")
    tiers = _tiers(_Reader(file, _tokens(_decode(raw, file))))
    name = next((n for n in tiers if n.strip().lower() in WORD_TIERS), None)
    if name is None:
        raise InputError(
            f"alignment {file}: no word tier (named {' or '.join(WORD_TIERS)}); "
            f"its tiers are {sorted(tiers)}"
        )
    words = []
    for number, (start, end, text) in enumerate(tiers[name], start=1):
        if text.strip().lower() in SILENCE:
            continue
        where = f"interval {number}"
        onset = check_time(start, "onset", file, where)
        words.append(AlignedWord(number, text, "", onset, check_time(end, "offset", file, where)))
    return alignment_from_words(file, raw, words, location="interval")
