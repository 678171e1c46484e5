"""Read Gentle's JSON alignment (``align.json``) into the same words as its CSV.

Gentle writes one entry per transcript word with ``case`` ``success`` (timed:
``start``, ``end`` in seconds, ``alignedWord`` the lower-case dictionary form or
``<unk>``), ``not-found-in-audio`` (no times) or ``not-found-in-transcript`` (heard but
not in the transcript). Its CSV export keeps the first two cases, writing
``word, alignedWord, start, end`` with empty cells where a value is missing; this
reader keeps the same words, so an untimed word is back-filled exactly as the CSV
path does (:mod:`featstore.datasets.align`).
"""

from __future__ import annotations

import json
from pathlib import Path

from featstore.datasets._files import read_bytes
from featstore.datasets.align import AlignedWord, Alignment, alignment_from_words, check_time
from featstore.errors import InputError

TIMED, UNTIMED, NOT_IN_TRANSCRIPT = "success", "not-found-in-audio", "not-found-in-transcript"


def _time(entry: dict, key: str, file: Path, number: int) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(
            f"alignment {file}: word {number}: case {TIMED!r} needs a number {key!r}, got {value!r}"
        )
    return check_time(float(value), "onset" if key == "start" else "offset", file, f"word {number}")


def _word(entry: object, file: Path, number: int) -> AlignedWord | None:
    if not isinstance(entry, dict):
        raise InputError(
            f"alignment {file}: word {number} is a {type(entry).__name__}; expected an object"
        )
    case = entry.get("case")
    if case == NOT_IN_TRANSCRIPT:
        return None
    text = entry.get("word", "")
    if not isinstance(text, str):
        raise InputError(f"alignment {file}: word {number}: 'word' {text!r} is not a string")
    aligned = entry.get("alignedWord") or ""
    if case == UNTIMED:
        return AlignedWord(number, text, str(aligned), None, None)
    if case == TIMED:
        start, end = _time(entry, "start", file, number), _time(entry, "end", file, number)
        return AlignedWord(number, text, str(aligned), start, end)
    raise InputError(
        f"alignment {file}: word {number} has case {case!r}; expected {TIMED!r}, "
        f"{UNTIMED!r} or {NOT_IN_TRANSCRIPT!r}"
    )


def read_gentle_json(path: str | Path) -> Alignment:
    """Read a Gentle ``align.json``.

    Parameters
    ----------
    path
        Gentle's JSON output: an object with a ``words`` list.

    Returns
    -------
    Alignment
        ``location`` ``"word"``: ``line`` holds each word's 1-based position in the
        JSON ``words`` list.

    Raises
    ------
    InputError
        Naming the file and word: not JSON, no ``words`` list, an unknown ``case``, a
        timed word without numeric ``start``/``end``, and everything
        :func:`~featstore.datasets.align.alignment_from_words` checks.
    """
    file = Path(path)
    raw = read_bytes(file, "alignment")
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(f"alignment {file}: not valid UTF-8; expected Gentle's JSON") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"alignment {file}: line {exc.lineno}: not valid JSON ({exc.msg})"
        ) from None
    entries = document.get("words") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise InputError(f"alignment {file}: no 'words' list; expected Gentle's JSON output")
    words = [_word(entry, file, number) for number, entry in enumerate(entries, start=1)]
    return alignment_from_words(file, raw, [w for w in words if w is not None], location="word")
