import hashlib
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featstore.datasets import read_alignment
from featstore.errors import InputError
from tests.datasets.conftest import ALIGN_ROWS, csv_text


def _write(tmp_path, text, name="a.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


@pytest.mark.parametrize("header", [True, False])
def test_reads_with_or_without_header(tmp_path, header):
    path = _write(tmp_path, csv_text(ALIGN_ROWS, header=header))
    alignment = read_alignment(path)
    assert alignment.has_header is header
    assert alignment.n_words == len(ALIGN_ROWS) == 11
    assert alignment.word[:3] == ["Once", "upon", "a"]
    np.testing.assert_array_equal(alignment.line[:2], [2, 3] if header else [1, 2])
    assert alignment.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_back_fills_from_next_timed_word_and_flags(tmp_path):
    alignment = read_alignment(_write(tmp_path, csv_text(ALIGN_ROWS)))
    # "a" (no times) takes the times of "time", the next timed word
    assert (alignment.onset[2], alignment.offset[2]) == (1.5, 1.9)
    np.testing.assert_array_equal(np.flatnonzero(alignment.time_filled), [2])
    assert alignment.onset.dtype == np.float64 and alignment.n_time_filled == 1
    # the row with an empty word keeps "" and its times
    assert alignment.word[6] == "" and alignment.word_lower[6] == ""
    np.testing.assert_array_equal(np.flatnonzero(alignment.word_missing), [6])
    assert alignment.n_word_missing == 1 and alignment.onset[6] == 4.2


def test_trailing_untimed_words_take_previous_times(tmp_path):
    rows = [("a", "a", "1.0", "1.2"), ("b", "b", "nan", "NaN"), ("c", "c", "2.0", "2.5")]
    rows += [("d", "d", "", ""), ("e", "e", "", "")]
    alignment = read_alignment(_write(tmp_path, csv_text(rows, header=False)))
    np.testing.assert_array_equal(alignment.onset, [1.0, 2.0, 2.0, 2.0, 2.0])
    np.testing.assert_array_equal(alignment.offset, [1.2, 2.5, 2.5, 2.5, 2.5])
    np.testing.assert_array_equal(alignment.time_filled, [False, True, False, True, True])


def test_lower_case_filled_bom_quotes_blank_lines(tmp_path):
    text = '\ufeffword,word_lower,onset,offset\n"Hi, you",,0.5,0.9\n\nOK,ok,1,2\n'
    alignment = read_alignment(_write(tmp_path, text))
    assert alignment.has_header
    assert alignment.word == ["Hi, you", "OK"]
    assert alignment.word_lower == ["hi, you", "ok"]
    np.testing.assert_array_equal(alignment.line, [2, 4])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"word,word_lower,onset,offset\nok,ok,0.1,0.2\n\xff\xfe,x,1,2\n",
            "line 3 is not valid UTF-8",
        ),
        ("a,a,0.1\n", "line 1 has 3 columns; expected 4"),
        ("a,a,0.1,0.2\nb,b,0.3,0.4,\n", "line 2 has 5 columns"),
        ("a,a,zero,0.2\n", "line 1: onset 'zero' is not a number"),
        ("a,a,0.1,0.2\nb,b,1.0,2s\n", "line 2: offset '2s' is not a number"),
        ("a,a,inf,inf\n", "line 1: onset 'inf' is not finite"),
        ("a,a,0.1,0.2\nb,b,-0.5,0.4\n", "line 2: onset -0.5 s is negative"),
        ("a,a,2,1\n", "line 1: onset 2 s is after offset 1 s"),
        ("a,a,0,1\nb,b,1,2\nc,c,0.5,3\n", "line 3: onset 0.5 s is before the onset 1 s of line 2"),
        ("a,a,0,1\nb,b,1,\n", "line 2 has an onset but no offset"),
        ("a,a,0,1\nb,b,,2\n", "line 2 has an offset but no onset"),
        ("", "no words"),
        ("word,word_lower,onset,offset\n", "no words"),
        ("a,a,,\nb,b,,\n", "none of its 2 words has timestamps"),
        ('a,a,0,1\n"b,b,1,2\n', "line 2: malformed CSV"),
    ],
)
def test_bad_alignment_names_file_and_line(tmp_path, content, message):
    path = _write(tmp_path, content)
    with pytest.raises(InputError, match=re.escape(f"alignment {path}:")) as info:
        read_alignment(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_alignment(tmp_path / "absent.csv")
    with pytest.raises(InputError, match="not a regular file"):
        read_alignment(tmp_path)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 5, allow_nan=False), st.floats(0, 1), st.booleans()),
        min_size=1,
        max_size=12,
    ).filter(lambda rows: any(timed for *_, timed in rows))
)
def test_back_fill_invariants(tmp_path_factory, rows):
    """Filled onsets never go backwards and equal the next timed word's (or the last's)."""
    onsets = np.cumsum([gap for gap, _, _ in rows])
    lines = [
        f"w{i},w{i},{on:.6f},{on + dur:.6f}" if timed else f"w{i},w{i},,"
        for i, ((_, dur, timed), on) in enumerate(zip(rows, onsets, strict=True))
    ]
    path = tmp_path_factory.mktemp("h") / "a.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    alignment = read_alignment(path)
    timed = np.array([t for *_, t in rows])
    np.testing.assert_array_equal(alignment.time_filled, ~timed)
    assert np.all(np.diff(alignment.onset) >= 0)
    given_onsets = np.round(onsets, 6)
    for i in np.flatnonzero(~timed):
        later = np.flatnonzero(timed[i:])
        source = i + later[0] if later.size else np.flatnonzero(timed)[-1]
        assert alignment.onset[i] == given_onsets[source]
