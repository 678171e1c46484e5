"""Hostile inputs through the real ``featstore`` command line.

Every case ends in exit code 2 with one ``error:`` line naming the culprit, no
traceback, and the store (hash of every file) and the scratch directory unchanged.
The curated catalogue is in ``tests/reliability/hostile.py``; the property-based
tests below generate more of each kind with hypothesis.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featstore import store as fs
from tests.ct2._ct2_format import ct2_bytes
from tests.datasets.conftest import N_TR
from tests.reliability.conftest import (
    assert_clean_failure,
    copy_workspace,
    fresh_workspace,
    run_cli,
)
from tests.reliability.hostile import CASES


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_case(name, workspace):
    argv, culprits = CASES[name](workspace)
    before = workspace.snapshot()
    result = run_cli(argv)
    assert_clean_failure(result, *culprits)
    assert workspace.snapshot() == before


# --- property-based: hypothesis generates many more inputs of each kind -----------------------


class _Generated:
    """How many inputs the property tests generated (for the terminal summary)."""

    total = 0


GENERATED = _Generated()
#: The property-based tests, each one distinct case of the catalogue's count.
PROPERTIES = (
    "test_alignment_with_one_fault_names_its_line",
    "test_fmri_bad_values_name_subject_tr_and_roi",
    "test_feature_file_shapes_and_dtypes",
    "test_damaged_metadata_never_crashes_the_readers",
    "test_timing_option_values",
    "test_random_bytes_as_any_input_file",
    "test_damaged_ctranslate2_model_bin",
)
BOUNDED = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure is reproducible
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# letters that cannot spell inf, nan, none, null or n/a (those parse as numbers or "missing")
_WORD = st.text(alphabet="bcdghjkmpqrstuvwxz", min_size=1, max_size=8)
_FAULTS = (
    "negative-onset",
    "negative-offset",
    "not-a-number",
    "non-finite",
    "half-timed",
    "onset-after-offset",
    "backwards",
    "columns",
    "non-utf8",
    "nul",
)


@st.composite
def _alignment_with_fault(draw):
    n_words = draw(st.integers(3, 12))
    gaps = draw(st.lists(st.floats(0.05, 0.8), min_size=n_words, max_size=n_words))
    onsets = 0.1 + np.cumsum(gaps) * (8.5 / max(sum(gaps), 8.5))
    rows = [[draw(_WORD), "", f"{onset:.3f}", f"{onset + 0.04:.3f}"] for onset in onsets.tolist()]
    row = draw(st.integers(0, n_words - 1))
    fault = draw(st.sampled_from(_FAULTS))
    cells = rows[row]
    expected = {"columns": "columns", "non-utf8": "UTF-8", "nul": "NUL"}.get(fault, "")
    if fault == "negative-onset":
        cells[2], expected = f"-{draw(st.floats(0.001, 5)):.3f}", "negative"
    elif fault == "negative-offset":
        cells[3], expected = f"-{draw(st.floats(0.001, 5)):.3f}", "negative"
    elif fault == "not-a-number":
        cells[draw(st.sampled_from([2, 3]))], expected = draw(_WORD), "not a number"
    elif fault == "non-finite":
        value = draw(st.sampled_from(["inf", "-inf", "1e999", "Infinity", "-1e400"]))
        cells[draw(st.sampled_from([2, 3]))], expected = value, "not finite"
    elif fault == "half-timed":
        cells[draw(st.sampled_from([2, 3]))], expected = "", "give both times"
    elif fault == "onset-after-offset":
        cells[2], expected = f"{float(cells[3]) + draw(st.floats(0.01, 1)):.3f}", "after offset"
    elif fault == "backwards":
        if row == 0:
            row, cells = 1, rows[1]
        previous = float(rows[row - 1][2])
        onset = previous - draw(st.floats(0.001, 1)) * previous
        cells[2:4], expected = [f"{onset:.4f}", f"{onset + 0.01:.4f}"], "backwards"
        if cells[2] == rows[row - 1][2]:  # rounding ate the step
            cells[2:4] = [f"{previous / 2:.4f}", f"{previous / 2 + 0.01:.4f}"]
    elif fault == "columns":
        if draw(st.booleans()):
            cells.append(draw(_WORD))
        else:
            cells.pop(draw(st.integers(0, 3)))
    elif fault == "nul":
        cells[0] = cells[0] + "\0"
    header = draw(st.booleans())
    lines = ["word,word_lower,onset,offset"] if header else []
    lines += [",".join(cells) for cells in rows]
    text = ("\n".join(lines) + "\n").encode()
    if fault == "non-utf8":
        word = rows[row][0].encode()
        position = sum(len(line.encode()) + 1 for line in lines[: row + header])
        bad = draw(st.sampled_from([b"\xff", b"\xe9", b"\xc3\x28", b"\x80abc"]))
        text = text[:position] + bad + text[position + len(word) :]
    return text, row + 1 + header, expected


@BOUNDED
@given(case=_alignment_with_fault())
def test_alignment_with_one_fault_names_its_line(template, case):
    text, line, expected = case
    GENERATED.total += 1
    with fresh_workspace(template) as ws:
        path = ws.file("generated.csv", text)
        before = ws.snapshot()
        message = assert_clean_failure(run_cli(ws.import_args("--align", path)), "generated.csv")
        assert f"line {line}" in message and expected in message, (text, message)
        assert ws.snapshot() == before


_BAD_VALUES = st.sampled_from([np.nan, np.inf, -np.inf, 1e39, -7e38, 1e300])


@st.composite
def _fmri_with_bad_values(draw):
    n_subjects, n_roi = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    arrays = {f"s{i}": rng.standard_normal((N_TR, n_roi)) for i in range(n_subjects)}
    positions = draw(
        st.lists(
            st.tuples(
                st.integers(0, n_subjects - 1), st.integers(0, N_TR - 1), st.integers(0, n_roi - 1)
            ),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    for subject, tr, roi in positions:
        arrays[f"s{subject}"][tr, roi] = draw(_BAD_VALUES)
    subject, tr, roi = min(positions)
    return arrays, f"s{subject}", tr, roi


@BOUNDED
@given(case=_fmri_with_bad_values())
def test_fmri_bad_values_name_subject_tr_and_roi(template, case):
    arrays, subject, tr, roi = case
    GENERATED.total += 1
    with fresh_workspace(template) as ws:
        path = ws.npz("generated.npz", **arrays)
        before = ws.snapshot()
        result = run_cli(ws.import_args("--fmri", path))
        assert_clean_failure(result, "generated.npz", repr(subject), f"TR {tr}, ROI {roi}")
        assert ws.snapshot() == before


_SIZES = st.sampled_from([0, 1, 2, 6, N_TR, 8])
_DTYPES = st.sampled_from(["float64", "float32", "float16", "int64", "uint8", "bool", "complex64"])


@BOUNDED
@given(
    shape=st.lists(_SIZES, min_size=1, max_size=4).map(tuple),
    dtype=_DTYPES,
)
def test_feature_file_shapes_and_dtypes(template, shape, dtype):
    GENERATED.total += 1
    numeric = dtype not in ("bool", "complex64")
    fits = (len(shape) == 2 and shape[0] == N_TR and shape[1] > 0) or (
        len(shape) == 3 and shape[1] == N_TR and shape[0] > 0 and shape[2] > 0
    )
    with fresh_workspace(template) as ws:
        array = (np.arange(int(np.prod(shape))) % 5).reshape(shape).astype(dtype)
        path = ws.npy("generated.npy", array)
        before = ws.snapshot()
        result = run_cli(ws.features_args(path))
        if numeric and fits:
            assert result.exit_code == 0, result.output
            stored = fs.open_feature_set(ws.store, "other", "tr2").hidden.values
            np.testing.assert_array_equal(stored, array.reshape(-1, N_TR, array.shape[-1]))
        else:
            assert_clean_failure(result, "generated.npy")
            assert ws.snapshot() == before


def _metadata_files(store: Path) -> list[str]:
    return sorted(p.relative_to(store).as_posix() for p in store.rglob("zarr.json"))


@st.composite
def _damaged_metadata(draw, names):
    name = draw(st.sampled_from(names))
    how = draw(st.sampled_from(["truncate", "flip", "insert", "replace", "delete"]))
    return name, how, draw(st.integers(0, 10_000)), draw(st.binary(min_size=1, max_size=8))


@BOUNDED
@given(data=st.data())
def test_damaged_metadata_never_crashes_the_readers(template, data):
    names = _metadata_files(template / "story.zarr")
    name, how, position, junk = data.draw(_damaged_metadata(names))
    GENERATED.total += 1
    with fresh_workspace(template) as ws:
        meta = ws.store / name
        content = meta.read_bytes()
        position %= len(content)
        if how == "delete":
            meta.unlink()
        else:
            meta.write_bytes(
                {
                    "truncate": content[:position],
                    "flip": content[:position] + junk[:1] + content[position + 1 :],
                    "insert": content[:position] + junk + content[position:],
                    "replace": junk,
                }[how]
            )
        group = str(Path(name).parent.as_posix())
        before = ws.snapshot()
        for argv in (["ls", ws.store], ["validate", ws.store], ["info", ws.store, group]):
            result = run_cli(argv)
            assert result.exit_code in (0, 2), (name, how, argv, result.output)
            if result.exit_code == 2:
                assert_clean_failure(result)
        assert ws.snapshot() == before


_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-5, 100),
    st.sampled_from(["1.5", "abc", "", "1,5", "0x10", "1e-400"]),
)


def _in(value: object, low: float, high: float) -> bool:
    try:
        number = float(value)
    except ValueError:
        return False
    return low <= number <= high


@BOUNDED
@given(tr=_NUMBERS, stim_onset=_NUMBERS, tolerance=_NUMBERS)
def test_timing_option_values(template, tr, stim_onset, tolerance):
    GENERATED.total += 1
    with fresh_workspace(template) as ws:
        target = ws.dir / "fresh.zarr"
        argv = ws.import_args(store=target)
        argv.remove("--overwrite")
        argv += ["--tr", str(tr), "--stim-onset", str(stim_onset), "--tr-tolerance", str(tolerance)]
        result = run_cli(argv)
        assert result.exit_code in (0, 2), result.output
        valid = _in(tr, 0.01, 60) and _in(stim_onset, 0, 3600) and _in(tolerance, 0, float("inf"))
        if result.exit_code == 0:
            assert valid and fs.validate(target) == []
        else:
            assert_clean_failure(result)
            assert not target.exists()
            assert [p.name for p in ws.dir.iterdir() if p.name.startswith(".")] == []


@BOUNDED
@given(option=st.sampled_from(["--align", "--audio", "--fmri", "--roi-names"]), data=st.binary())
def test_random_bytes_as_any_input_file(template, option, data):
    GENERATED.total += 1
    with fresh_workspace(template) as ws:
        path = ws.file("random.bin", data)
        target = ws.dir / "fresh.zarr"
        argv = ws.import_args(option, path, store=target)
        argv.remove("--overwrite")
        result = run_cli(argv)
        assert_clean_failure(result, "random.bin")
        assert not target.exists()


def _ct2_model_bin() -> bytes:
    rng = np.random.default_rng(4)
    variables = {
        "encoder/conv1/weight": rng.standard_normal((6, 5, 3)).astype(np.float16),
        "encoder/layer_0/ffn/linear_0/weight": rng.integers(-127, 127, (7, 6), dtype=np.int8),
        "encoder/layer_0/ffn/linear_0/weight_scale": rng.random(7).astype(np.float32),
        "decoder/num_heads": np.int16(2),
    }
    return ct2_bytes(variables, {"decoder/projection/weight": "encoder/conv1/weight"})


@BOUNDED
@given(
    how=st.sampled_from(["truncate", "flip", "huge-uint32", "insert"]),
    position=st.integers(0, 10_000),
    junk=st.binary(min_size=1, max_size=6),
)
def test_damaged_ctranslate2_model_bin(template, how, position, junk):
    """A CTranslate2 model.bin, truncated or with a flipped byte or a huge length field:
    ``models import-ct2`` names the file in one line and writes nothing."""
    GENERATED.total += 1
    content = _ct2_model_bin()
    position %= len(content)
    damaged = {
        "truncate": content[:position],
        "flip": content[:position] + junk[:1] + content[position + 1 :],
        "huge-uint32": content[:position] + b"\xff\xff\xff\x7f" + content[position + 4 :],
        "insert": content[:position] + junk + content[position:],
    }[how]
    with fresh_workspace(template) as ws:
        (ws.dir / "ct2").mkdir()
        path = ws.file("ct2/model.bin", damaged)
        result = run_cli(["models", "import-ct2", str(path), "--out", str(ws.dir / "out")])
        assert_clean_failure(result)
        assert not (ws.dir / "out").exists() or not any((ws.dir / "out").iterdir())


def test_real_entry_point_prints_one_line(template, tmp_path):
    """``python -m featstore`` in a narrow terminal: one stderr line, nothing else (no
    warning, no wrapped panel), for a sample of cases run side by side."""
    ws = copy_workspace(template, tmp_path)
    sample = [
        "align.non-utf8",
        "fmri.nan",
        "store.garbage-array-metadata",
        "option.tr-absurdly-small",
    ]
    argvs = {name: CASES[name](ws)[0] for name in sample}
    before = ws.snapshot()
    env = {**os.environ, "COLUMNS": "40", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "featstore", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=Path(__file__).parents[2],
        )
        for name, argv in argvs.items()
    }
    for name, process in processes.items():
        _, stderr = process.communicate(timeout=120)
        lines = stderr.strip().splitlines()
        assert process.returncode == 2, (name, stderr)
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, stderr)
    assert ws.snapshot() == before
