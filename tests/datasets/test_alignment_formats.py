"""Gentle JSON and Praat TextGrid alignments give exactly what their CSV twin gives."""

import codecs
import json

import numpy as np
import pytest
import xarray as xr

from featstore.datasets import import_dataset, open_stimulus, read_alignment, read_word_alignment
from featstore.datasets.alignment_formats import alignment_format
from featstore.errors import InputError
from tests.datasets.conftest import ALIGN_ROWS, TR

# Hashes and source paths name the file read, write attrs the time; the rest is identical.
FILE_ATTRS = (
    "align_sha256",
    "stimulus_sha256",
    "sources",
    "created",
    "complete",
    "featstore_version",
)


def gentle_json(rows, extra_heard: bool = True) -> str:
    """Gentle's JSON for CSV ``rows``: untimed rows → not-found-in-audio."""
    words, offset = [], 0
    for word, lower, onset, end in rows:
        entry = {"word": word, "startOffset": offset, "endOffset": offset + len(word)}
        if onset:
            entry.update(case="success", alignedWord=lower, start=float(onset), end=float(end))
        else:
            entry["case"] = "not-found-in-audio"
        words.append(entry)
        offset += len(word) + 1
    if extra_heard:  # a word heard in the audio but absent from the transcript: dropped
        words.insert(3, {"case": "not-found-in-transcript", "word": "um", "start": 1.0, "end": 1.1})
    return json.dumps({"transcript": " ".join(r[0] for r in rows), "words": words}, indent=1)


def textgrid(words, short: bool = False) -> str:
    """A TextGrid with a phones tier and a words tier holding ``words`` and silences."""
    intervals, time = [], 0.0
    for word, onset, offset in words:
        if onset > time:
            intervals.append((time, onset, "sp" if len(intervals) % 2 else ""))
        intervals.append((onset, offset, word))
        time = offset
    intervals.append((time, 20.0, "sp"))
    tiers = [("phones", [(0.0, 20.0, "")]), ("words", intervals)]
    if short:
        lines = [
            'File type = "ooTextFile"',
            'Object class = "TextGrid"',
            "",
            "0",
            "20",
            "<exists>",
            str(len(tiers)),
        ]
        for name, items in tiers:
            lines += ['"IntervalTier"', f'"{name}"', "0", "20", str(len(items))]
            for start, end, text in items:
                lines += [repr(start), repr(end), f'"{text}"']
        return "\n".join(lines) + "\n"
    lines = [
        'File type = "ooTextFile"',
        'Object class = "TextGrid"',
        "",
        "xmin = 0 ",
        "xmax = 20 ",
        "tiers? <exists> ",
        f"size = {len(tiers)} ",
        "item []: ",
    ]
    for number, (name, items) in enumerate(tiers, start=1):
        lines += [
            f"    item [{number}]:",
            '        class = "IntervalTier" ',
            f'        name = "{name}" ',
            "        xmin = 0 ",
            "        xmax = 20 ",
            f"        intervals: size = {len(items)} ",
        ]
        for index, (start, end, text) in enumerate(items, start=1):
            lines += [
                f"        intervals [{index}]:",
                f"            xmin = {start!r} ",
                f"            xmax = {end!r} ",
                f'            text = "{text}" ',
            ]
    return "\n".join(lines) + "\n"


TIMED_ROWS = [r for r in ALIGN_ROWS if r[2] and r[0]]
TEXTGRID_WORDS = [(w, float(a), float(b)) for w, _, a, b in TIMED_ROWS]


def _csv(path, rows):
    path.write_text("word,word_lower,onset,offset\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


def _same(a, b):
    for name in ("word", "word_lower", "time_filled", "word_missing", "onset", "offset"):
        np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)))


def test_gentle_json_equals_its_csv(tmp_path):
    csv = read_alignment(_csv(tmp_path / "a.csv", ALIGN_ROWS))
    path = tmp_path / "align.json"
    path.write_text(gentle_json(ALIGN_ROWS))
    alignment = read_word_alignment(path)
    _same(alignment, csv)
    assert alignment.n_time_filled == 1 and alignment.time_filled[2]
    # back-filled from the next timed word, as the CSV path does
    assert (alignment.onset[2], alignment.offset[2]) == (1.5, 1.9)
    assert alignment.location == "word" and alignment.line[3] == 5  # word 4 was dropped


@pytest.mark.parametrize("short", [False, True])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_textgrid_equals_its_csv(tmp_path, short, encoding):
    csv = read_alignment(_csv(tmp_path / "a.csv", TIMED_ROWS))
    path = tmp_path / "story.TextGrid"
    data = textgrid(TEXTGRID_WORDS, short=short).encode(encoding)
    path.write_bytes(data)  # Python's utf-16 codec writes a BOM
    assert data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) == (encoding == "utf-16")
    alignment = read_word_alignment(path)
    _same(alignment, csv)
    assert alignment.location == "interval" and alignment.n_words == len(TIMED_ROWS)


def test_format_by_extension_then_content(tmp_path):
    json_as_txt = tmp_path / "align.txt"
    json_as_txt.write_text(gentle_json(ALIGN_ROWS))
    grid_as_txt = tmp_path / "grid.txt"
    grid_as_txt.write_text(textgrid(TEXTGRID_WORDS))
    csv = _csv(tmp_path / "x.dat", ALIGN_ROWS)
    assert [alignment_format(p) for p in (json_as_txt, grid_as_txt, csv)] == [
        "gentle-json",
        "textgrid",
        "csv",
    ]


@pytest.mark.parametrize("kind", ["json", "TextGrid"])
def test_import_gives_the_csv_twins_stimulus_group(inputs, kind):
    rows = ALIGN_ROWS if kind == "json" else TIMED_ROWS
    csv = _csv(inputs["dir"] / "twin.csv", rows)
    twin = inputs["dir"] / f"align.{kind}"
    twin.write_text(gentle_json(rows) if kind == "json" else textgrid(TEXTGRID_WORDS))
    stores = []
    for name, align in (("csv", csv), (kind, twin)):
        store = inputs["dir"] / f"{name}.zarr"
        import_dataset(store, align=align, audio=inputs["audio"], fmri=inputs["fmri"], tr=TR)
        stimulus = open_stimulus(store).load()
        assert stimulus.attrs["sources"]["align"] == str(align)
        stimulus.attrs = {k: v for k, v in stimulus.attrs.items() if k not in FILE_ATTRS}
        stores.append(stimulus)
    xr.testing.assert_identical(stores[0], stores[1])


BAD_JSON = [
    ("{not json", r"a\.json: line 1: not valid JSON"),
    ('{"words": 3}', r"a\.json: no 'words' list"),
    (
        '{"words": [{"case": "success", "word": "a", "start": 1}]}',
        r"word 1: case 'success' needs a number 'end'",
    ),
    ('{"words": [{"case": "odd", "word": "a"}]}', r"word 1 has case 'odd'"),
    (
        '{"words": [{"case": "success", "word": "a", "start": -1, "end": 1}]}',
        r"word 1: onset -1 s is negative",
    ),
    (
        '{"words": [{"case": "success", "word": "a", "start": 2, "end": 3},'
        ' {"case": "success", "word": "b", "start": 1, "end": 3}]}',
        r"word 2: onset 1 s is before the onset 2 s of word 1",
    ),
    (
        '{"words": [{"case": "not-found-in-audio", "word": "a"}]}',
        r"none of its 1 words has timestamps",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_JSON)
def test_bad_gentle_json_is_one_line_naming_file_and_word(tmp_path, text, message):
    path = tmp_path / "a.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        read_word_alignment(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_bad_textgrids_name_file_and_interval(tmp_path):
    path = tmp_path / "g.TextGrid"
    good = textgrid(TEXTGRID_WORDS)
    cases = [
        (
            good.replace('name = "words"', 'name = "phrases"'),
            r"no word tier .* tiers are \['phones', 'phrases'\]",
        ),
        (
            good.replace("xmin = 3.0 ", "xmin = 3.5 "),
            r"interval \d+: onset 3\.5 s is after offset 3\.4 s",
        ),
        (good[: len(good) // 2], r"ends before .*truncated TextGrid"),
        (
            good.replace('text = "king"', "text = 7"),
            r"line \d+: tier 'words' interval \d+ text is 7\.0; expected a quoted string",
        ),
        ('File type = "ooTextFile"\nObject class = "Sound"\n', r"not a Praat TextGrid"),
    ]
    for text, message in cases:
        path.write_text(text)
        with pytest.raises(InputError, match=message) as info:
            read_word_alignment(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)
