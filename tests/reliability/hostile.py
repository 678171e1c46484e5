"""The curated catalogue of hostile inputs, each run through the real ``featstore`` CLI.

A case is a function of a :class:`~tests.reliability.conftest.Workspace` that writes its
bad files (or corrupts the workspace's store) and returns the command line to run and
the strings the one-line error must contain (the culprit: file, line, subject, value).
Every case must end in exit code 2, one ``error:`` line, no traceback, and leave the
stores and the scratch directory exactly as they were before the command ran. (A grid
that fails after finishing some configs keeps those staged for its rerun, by design;
the data cases below evaluate one config, so nothing can finish before the failure.)
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
import struct
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.datasets.conftest import ALIGN_ROWS, N_ROI, N_TR, SUBJECTS, bold_arrays, csv_text
from tests.reliability.conftest import N_FEATURE_DIM, Workspace

Outcome = tuple[list[str], tuple[str, ...]]
CASES: dict[str, Callable[[Workspace], Outcome]] = {}


def case(name: str) -> Callable:
    """Register a case under a unique ``category.what`` name."""

    def register(function: Callable[[Workspace], Outcome]) -> Callable[[Workspace], Outcome]:
        assert name not in CASES, f"duplicate hostile case {name}"
        CASES[name] = function
        return function

    return register


def _rows_with(line: int, row: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The valid rows with CSV line ``line`` (1 = header) replaced by ``row``."""
    rows = list(ALIGN_ROWS)
    rows[line - 2] = row
    return rows


def _align(ws: Workspace, name: str, content: bytes | str, *culprits: str) -> Outcome:
    path = ws.file(name, content)
    return ws.import_args("--align", path), (name, *culprits)


def wav_bytes(
    *, format_tag: int = 1, channels: int = 1, rate: int = 16_000, bits: int = 16, data: bytes = b""
) -> bytes:
    """A RIFF/WAVE file written by hand, so its header can lie."""
    block_align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", format_tag, channels, rate, rate * block_align, block_align, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _float_wav(ws: Workspace, name: str, samples: np.ndarray) -> Path:
    path = ws.dir / name
    sf.write(path, samples.astype(np.float32), 16_000, subtype="FLOAT")
    return path


def _audio(ws: Workspace, path: Path, *culprits: str) -> Outcome:
    return ws.import_args("--audio", path), (path.name, *culprits)


def _fmri(ws: Workspace, path: Path, *culprits: str, allow_pickle: bool = False) -> Outcome:
    extra = ["--allow-pickle"] if allow_pickle else []
    return ws.import_args("--fmri", path, *extra), (path.name, *culprits)


def _pickle(ws: Workspace, name: str, value: object) -> Path:
    return ws.file(name, pickle.dumps(value, protocol=4))


def _bold(**changes: np.ndarray) -> dict[str, np.ndarray]:
    arrays = bold_arrays()
    arrays.update(changes)
    return arrays


def _features(ws: Workspace, name: str, array: np.ndarray, *culprits: str) -> Outcome:
    path = ws.npy(name, array)
    return ws.features_args(path), (name, *culprits)


def _layer(n_tr: int = N_TR, dim: int = N_FEATURE_DIM) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((n_tr, dim))


def _edit_json(path: Path, edit: Callable[[dict], None]) -> None:
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def _root_attrs(ws: Workspace, **attrs: object) -> None:
    def edit(meta: dict) -> None:
        for key, value in attrs.items():
            if value is None:
                meta["attributes"].pop(key)
            else:
                meta["attributes"][key] = value

    _edit_json(ws.store / "zarr.json", edit)


FEATURE_GROUP = "features/mine/tr2"


# --- alignment CSV ----------------------------------------------------------------------


@case("align.missing-file")
def _(ws):
    return ws.import_args("--align", ws.dir / "absent.csv"), ("absent.csv", "no such file")


@case("align.directory")
def _(ws):
    (ws.dir / "folder.csv").mkdir()
    return ws.import_args("--align", ws.dir / "folder.csv"), ("folder.csv", "not a regular file")


@case("align.empty-file")
def _(ws):
    return _align(ws, "empty.csv", b"", "no words")


@case("align.header-only")
def _(ws):
    return _align(ws, "header.csv", "word,word_lower,onset,offset\n", "no words")


@case("align.blank-lines-only")
def _(ws):
    return _align(ws, "blank.csv", "\n\n\r\n\n", "no words")


@case("align.non-utf8")
def _(ws):
    text = csv_text(_rows_with(3, ("café", "café", "0.4", "0.7")))
    return _align(ws, "latin1.csv", text.encode("latin-1"), "line 3", "UTF-8")


@case("align.utf16")
def _(ws):
    return _align(ws, "utf16.csv", csv_text(ALIGN_ROWS).encode("utf-16"), "line 1", "UTF-8")


@case("align.binary-garbage")
def _(ws):
    garbage = np.random.default_rng(11).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    return _align(ws, "garbage.csv", garbage, "UTF-8")


@case("align.nul-byte")
def _(ws):
    text = csv_text(_rows_with(4, ("up\0on", "upon", "0.4", "0.7")))
    return _align(ws, "nul.csv", text, "line 4", "malformed CSV")


@case("align.unclosed-quote")
def _(ws):
    text = csv_text(_rows_with(5, ('"time', "time", "1.5", "1.9")))
    return _align(ws, "quote.csv", text, "malformed CSV")


@case("align.truncated-mid-row")
def _(ws):
    text = csv_text(ALIGN_ROWS)
    return _align(ws, "cut.csv", text[: text.rindex("9.3") + 2], "line 12", "3 columns")


@case("align.three-columns")
def _(ws):
    text = "\n".join(",".join(row[:3]) for row in ALIGN_ROWS)
    return _align(ws, "three.csv", text, "line 1", "3 columns", "expected 4")


@case("align.five-columns")
def _(ws):
    text = csv_text(_rows_with(6, ("there", "there", "1.6", "2.0", "extra")))
    return _align(ws, "five.csv", text, "line 6", "5 columns")


@case("align.tab-separated")
def _(ws):
    return _align(ws, "tabs.csv", csv_text(ALIGN_ROWS).replace(",", "\t"), "line 1", "1 columns")


@case("align.negative-onset")
def _(ws):
    return _align(
        ws,
        "neg.csv",
        csv_text(_rows_with(2, ("Once", "once", "-0.5", "0.4"))),
        "line 2",
        "negative",
    )


@case("align.negative-offset")
def _(ws):
    text = csv_text(_rows_with(2, ("Once", "once", "0.0", "-0.4")))
    return _align(ws, "negoff.csv", text, "line 2", "negative")


@case("align.onset-after-offset")
def _(ws):
    text = csv_text(_rows_with(5, ("time", "time", "1.9", "1.5")))
    return _align(ws, "reversed.csv", text, "line 5", "after offset")


@case("align.unsorted-onsets")
def _(ws):
    text = csv_text(_rows_with(9, ("old", "old", "2.5", "2.8")))
    return _align(ws, "unsorted.csv", text, "line 9", "backwards")


@case("align.non-numeric-time")
def _(ws):
    return _align(
        ws,
        "units.csv",
        csv_text(_rows_with(6, ("there", "there", "1.6s", "2.0"))),
        "line 6",
        "'1.6s'",
    )


@case("align.infinite-time")
def _(ws):
    text = csv_text(_rows_with(12, ("said", "said", "9.3", "inf")))
    return _align(ws, "inf.csv", text, "line 12", "not finite")


@case("align.overflowing-time")
def _(ws):
    text = csv_text(_rows_with(12, ("said", "said", "9.3", "1e400")))
    return _align(ws, "e400.csv", text, "line 12", "not finite")


@case("align.huge-time")
def _(ws):
    text = csv_text(_rows_with(12, ("said", "said", "1e38", "1e38")))
    return _align(ws, "huge.csv", text, "line 12", "1e+38 s", "story.wav")


@case("align.onset-without-offset")
def _(ws):
    text = csv_text(_rows_with(7, ("lived", "lived", "3.0", "")))
    return _align(ws, "half.csv", text, "line 7", "no offset")


@case("align.no-timed-word")
def _(ws):
    rows = [(w, lw, "", "") for w, lw, _, _ in ALIGN_ROWS]
    return _align(ws, "untimed.csv", csv_text(rows), "none of its 11 words")


@case("align.words-after-audio")
def _(ws):
    text = csv_text([*ALIGN_ROWS, ("end", "end", "60", "61")])
    return _align(ws, "late.csv", text, "line 13", "60 s", "10.000 s")


# --- audio --------------------------------------------------------------------------------


@case("audio.missing-file")
def _(ws):
    return _audio(ws, ws.dir / "absent.wav", "no such file")


@case("audio.directory")
def _(ws):
    (ws.dir / "folder.wav").mkdir()
    return _audio(ws, ws.dir / "folder.wav", "not a regular file")


@case("audio.zero-length-file")
def _(ws):
    return _audio(ws, ws.file("empty.wav", b""), "cannot read it")


@case("audio.no-frames")
def _(ws):
    return _audio(ws, ws.file("silent.wav", wav_bytes()), "no samples")


@case("audio.truncated-header")
def _(ws):
    return _audio(ws, ws.file("cut.wav", wav_bytes()[:20]), "cannot read it")


@case("audio.garbage")
def _(ws):
    garbage = np.random.default_rng(12).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    return _audio(ws, ws.file("garbage.wav", garbage), "cannot read it")


@case("audio.text-file")
def _(ws):
    return _audio(ws, ws.file("notes.wav", "this is not audio\n" * 50), "cannot read it")


@case("audio.npy-file")
def _(ws):
    return _audio(ws, ws.npy("samples.npy", np.zeros(16_000, np.float32)), "cannot read it")


@case("audio.unknown-sample-format")
def _(ws):
    data = bytes(4000)
    return _audio(ws, ws.file("tag.wav", wav_bytes(format_tag=0x1234, data=data)), "cannot read it")


@case("audio.zero-channels")
def _(ws):
    return _audio(
        ws, ws.file("nochan.wav", wav_bytes(channels=0, data=bytes(400))), "cannot read it"
    )


@case("audio.zero-sample-rate")
def _(ws):
    return _audio(ws, ws.file("norate.wav", wav_bytes(rate=0, data=bytes(400))), "cannot read it")


@case("audio.odd-bit-depth")
def _(ws):
    # libsndfile reads it (as 8-bit); the 0.025 s it holds cannot carry the story's words
    return _audio(ws, ws.file("bits.wav", wav_bytes(bits=7, data=bytes(400))), "lasts 0.025 s")


@case("audio.nan-samples")
def _(ws):
    samples = np.zeros(16_000 * 10, np.float32)
    samples[24_000] = np.nan
    return _audio(ws, _float_wav(ws, "nan.wav", samples), "sample 24000", "1.500 s", "NaN")


@case("audio.inf-samples")
def _(ws):
    samples = np.zeros(16_000 * 10, np.float32)
    samples[5] = -np.inf
    return _audio(ws, _float_wav(ws, "inf.wav", samples), "sample 5", "infinite")


@case("audio.shorter-than-words")
def _(ws):
    return _audio(ws, _float_wav(ws, "short.wav", np.zeros(16_000, np.float32)), "1.000 s")


# --- fMRI ---------------------------------------------------------------------------------


@case("fmri.missing-file")
def _(ws):
    return _fmri(ws, ws.dir / "absent.npz", "no such file")


@case("fmri.pickle-without-allow-pickle")
def _(ws):
    return _fmri(ws, _pickle(ws, "all_sub.pkl", bold_arrays()), "--allow-pickle")


class _WritesMarker:
    """Unpickling this writes a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


@case("fmri.malicious-pickle-without-allow-pickle")
def _(ws):
    # the marker would appear in the scratch directory: the snapshot check catches it
    path = _pickle(ws, "evil.pkl", {"sub-01": _WritesMarker(ws.dir / "pwned.txt")})
    return _fmri(ws, path, "--allow-pickle")


@case("fmri.malicious-pickle-renamed-npz")
def _(ws):
    path = _pickle(ws, "evil.npz", {"sub-01": _WritesMarker(ws.dir / "pwned.txt")})
    return _fmri(ws, path, "--allow-pickle")


@case("fmri.pickle-of-list")
def _(ws):
    path = _pickle(ws, "list.pkl", list(bold_arrays().values()))
    return _fmri(ws, path, "holds a list", "expected a dict", allow_pickle=True)


@case("fmri.pickle-of-array")
def _(ws):
    path = _pickle(ws, "array.pkl", np.stack(list(bold_arrays().values())))
    return _fmri(ws, path, "holds a ndarray", allow_pickle=True)


@case("fmri.pickle-truncated")
def _(ws):
    data = pickle.dumps(bold_arrays(), protocol=4)
    return _fmri(
        ws, ws.file("cut.pkl", data[: len(data) // 2]), "cannot unpickle", allow_pickle=True
    )


@case("fmri.pickle-raising")
def _(ws):
    class _Raises:
        def __reduce__(self):
            return (int, ("not a number",))

    return _fmri(ws, _pickle(ws, "raises.pkl", _Raises()), "cannot unpickle", allow_pickle=True)


@case("fmri.pickle-duplicate-subjects")
def _(ws):
    arrays = bold_arrays()
    value = {1: arrays["sub-01"], "1": arrays["sub-02"]}
    return _fmri(ws, _pickle(ws, "dup.pkl", value), "'1' appears more than once", allow_pickle=True)


@case("fmri.pickle-string-values")
def _(ws):
    value = {s: "bold" for s in SUBJECTS}
    return _fmri(ws, _pickle(ws, "strings.pkl", value), "sub-01", "dtype <U4", allow_pickle=True)


@case("fmri.pickle-nested-lists")
def _(ws):
    value = {"sub-01": [[1.0, 2.0], [3.0]]}
    return _fmri(ws, _pickle(ws, "ragged.pkl", value), "sub-01", allow_pickle=True)


@case("fmri.nan")
def _(ws):
    bad = bold_arrays()["sub-02"]
    bad[3, 1] = np.nan
    return _fmri(ws, ws.npz("nan.npz", **_bold(**{"sub-02": bad})), "sub-02", "TR 3, ROI 1")


@case("fmri.inf")
def _(ws):
    bad = bold_arrays()["sub-03"]
    bad[6, 4] = -np.inf
    return _fmri(ws, ws.npz("inf.npz", **_bold(**{"sub-03": bad})), "sub-03", "TR 6, ROI 4", "-inf")


@case("fmri.overflows-float32")
def _(ws):
    bad = bold_arrays()["sub-01"]
    bad[0, 2] = 1e39
    return _fmri(
        ws, ws.npz("big.npz", **_bold(**{"sub-01": bad})), "sub-01", "TR 0, ROI 2", "1e+39"
    )


@case("fmri.finite-but-overflows-statistics")
def _(ws):
    bad = bold_arrays()["sub-02"]
    bad[2, 1] = 3e38  # finite float32, but its square is not
    return _fmri(
        ws, ws.npz("big38.npz", **_bold(**{"sub-02": bad})), "sub-02", "TR 2, ROI 1", "rescale"
    )


@case("fmri.object-array")
def _(ws):
    arrays = _bold(**{"sub-01": np.array([{"a": 1}] * 3, dtype=object)})
    return _fmri(ws, ws.npz("objects.npz", **arrays), "object arrays")


@case("fmri.truncated-npz")
def _(ws):
    data = Path(ws.fmri).read_bytes()
    return _fmri(ws, ws.file("cut.npz", data[: len(data) // 2]), "cannot read it as .npz")


@case("fmri.npz-without-subjects")
def _(ws):
    return _fmri(ws, ws.npz("none.npz"), "holds no subjects")


@case("fmri.one-dimensional")
def _(ws):
    arrays = _bold(**{"sub-02": np.zeros(N_TR)})
    return _fmri(ws, ws.npz("flat.npz", **arrays), "sub-02", "shape (7,)", "(TR, ROI)")


@case("fmri.three-dimensional")
def _(ws):
    arrays = _bold(**{"sub-01": np.zeros((2, N_TR, N_ROI))})
    return _fmri(ws, ws.npz("cube.npz", **arrays), "sub-01", "shape (2, 7, 5)")


@case("fmri.zero-trs")
def _(ws):
    arrays = _bold(**{"sub-03": np.zeros((0, N_ROI))})
    return _fmri(ws, ws.npz("zero.npz", **arrays), "sub-03", "empty")


@case("fmri.roi-count-differs")
def _(ws):
    arrays = _bold(**{"sub-02": np.zeros((N_TR, N_ROI + 1))})
    return _fmri(ws, ws.npz("rois.npz", **arrays), "sub-02", "6 ROIs", "5")


@case("fmri.tr-count-differs")
def _(ws):
    arrays = _bold(**{"sub-03": np.zeros((N_TR - 1, N_ROI))})
    return _fmri(ws, ws.npz("uneven.npz", **arrays), "sub-03", "--trim-to-shortest")


@case("fmri.complex-values")
def _(ws):
    arrays = _bold(**{"sub-01": np.zeros((N_TR, N_ROI), complex)})
    return _fmri(ws, ws.npz("complex.npz", **arrays), "sub-01", "complex128")


@case("fmri.boolean-values")
def _(ws):
    arrays = _bold(**{"sub-01": np.zeros((N_TR, N_ROI), bool)})
    return _fmri(ws, ws.npz("bool.npz", **arrays), "sub-01", "dtype bool")


@case("fmri.single-npy")
def _(ws):
    return _fmri(ws, ws.npy("one.npy", np.zeros((N_TR, N_ROI))), "single .npy")


@case("fmri.empty-file")
def _(ws):
    return _fmri(ws, ws.file("empty.npz", b""), "empty")


@case("fmri.text-file")
def _(ws):
    return _fmri(ws, ws.file("bold.txt", "1 2 3\n4 5 6\n"), "unrecognised")


@case("fmri.empty-directory")
def _(ws):
    (ws.dir / "subjects").mkdir()
    return _fmri(ws, ws.dir / "subjects", "no .npy files")


@case("fmri.directory-corrupt-npy")
def _(ws):
    for subject, array in bold_arrays().items():
        ws.npy(f"subjects/{subject}.npy", array)
    (ws.dir / "subjects" / "sub-02.npy").write_bytes(b"\x93NUMPY garbage")
    return _fmri(ws, ws.dir / "subjects", "sub-02.npy")


@case("fmri.directory-object-npy")
def _(ws):
    for subject, array in bold_arrays().items():
        ws.npy(f"subjects/{subject}.npy", array)
    ws.npy("subjects/sub-03.npy", np.array([None, 1], dtype=object))
    return _fmri(ws, ws.dir / "subjects", "sub-03.npy", "object array")


@case("fmri.directory-duplicate-subject")
def _(ws):
    for subject, array in bold_arrays().items():
        ws.npy(f"subjects/{subject}.npy", array)
    ws.npy("subjects/sub-01.NPY", bold_arrays()["sub-02"])
    return _fmri(ws, ws.dir / "subjects", "'sub-01' appears more than once")


@case("fmri.npz-duplicate-member")
def _(ws):
    path = ws.dir / "dup.npz"
    with zipfile.ZipFile(path, "w") as archive, warnings.catch_warnings():
        # writing the duplicate is the point of the case; zipfile warns about it
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
        for subject in ("sub-01", "sub-01"):
            buffer = io.BytesIO()
            np.save(buffer, bold_arrays()[subject])
            archive.writestr(f"{subject}.npy", buffer.getvalue())
    return _fmri(ws, path, "'sub-01' appears more than once")


@case("fmri.zip-of-text")
def _(ws):
    path = ws.dir / "notes.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return _fmri(ws, path, "readme.txt")


@case("fmri.tr-count-disagrees-with-audio")
def _(ws):
    path = ws.npz("long.npz", **bold_arrays(n_tr=11))
    return _fmri(ws, path, "11 TRs", "spans 7 TRs", "--tr-tolerance")


@case("roi-names.wrong-count")
def _(ws):
    path = ws.file("rois.txt", "a\nb\n")
    return ws.import_args("--roi-names", path), ("rois.txt", "2 names", "5 ROIs")


@case("roi-names.non-utf8")
def _(ws):
    path = ws.file("rois.txt", "a\nb\n\xe9\nd\ne\n".encode("latin-1"))
    return ws.import_args("--roi-names", path), ("rois.txt", "line 3", "UTF-8")


@case("roi-names.duplicated")
def _(ws):
    path = ws.file("rois.txt", "L_V1\nL_V2\nL_V1\nR_V1\nR_V2\n")
    return ws.import_args("--roi-names", path), ("rois.txt", "line 3", "line 1")


@case("roi-names.without-fmri")
def _(ws):
    path = ws.file("rois.txt", "a\nb\nc\nd\ne\n")
    argv = ["dataset", "import", "--align", ws.align, "--audio", ws.audio, "--tr", "1.5"]
    argv += ["--store", ws.store, "--overwrite", "--roi-names", path]
    return [str(a) for a in argv], ("--roi-names", "--fmri")


# --- command-line values --------------------------------------------------------------------


@case("option.tr-negative")
def _(ws):
    return ws.import_args("--tr", "-1.5"), ("--tr -1.5",)


@case("option.tr-zero")
def _(ws):
    return ws.import_args("--tr", "0"), ("--tr 0",)


@case("option.tr-nan")
def _(ws):
    return ws.import_args("--tr", "nan"), ("--tr nan",)


@case("option.tr-infinite")
def _(ws):
    return ws.import_args("--tr", "inf"), ("--tr inf",)


@case("option.tr-not-a-number")
def _(ws):
    return ws.import_args("--tr", "1.5s"), ("'--tr'",)


@case("option.tr-absurdly-small")
def _(ws):
    return ws.import_args("--tr", "1e-300"), ("--tr 1e-300",)


@case("option.tr-absurdly-large")
def _(ws):
    return ws.import_args("--tr", "1e300"), ("--tr 1e+300",)


@case("option.stim-onset-negative")
def _(ws):
    return ws.import_args("--stim-onset", "-2"), ("--stim-onset -2",)


@case("option.stim-onset-nan")
def _(ws):
    return ws.import_args("--stim-onset", "nan"), ("--stim-onset nan",)


@case("option.stim-onset-huge")
def _(ws):
    return ws.import_args("--stim-onset", "1e308"), ("--stim-onset 1e+308",)


@case("option.tr-assign-unknown")
def _(ws):
    return ws.import_args("--tr-assign", "round"), ("--tr-assign 'round'",)


@case("option.tr-tolerance-negative")
def _(ws):
    return ws.import_args("--tr-tolerance", "-1"), ("--tr-tolerance -1",)


@case("option.tr-tolerance-nan")
def _(ws):
    return ws.import_args("--tr-tolerance", "nan"), ("--tr-tolerance nan",)


@case("option.missing-required")
def _(ws):
    argv = ["dataset", "import", "--audio", ws.audio, "--tr", "1.5", "--store", ws.store]
    return [str(a) for a in argv], ("--align",)


@case("option.unknown-option")
def _(ws):
    return ws.import_args("--tr-win", "0"), ("--tr-win",)


@case("option.unknown-command")
def _(ws):
    return ["extrakt", "--store", str(ws.store)], ("extrakt",)


@case("option.store-remote-url")
def _(ws):
    argv = ws.import_args()
    argv[argv.index("--store") + 1] = "s3://bucket/story.zarr"
    return argv, ("s3://bucket/story.zarr", "local stores only")


@case("option.store-exists-without-overwrite")
def _(ws):
    argv = ws.import_args()
    argv.remove("--overwrite")
    return argv, ("story.zarr", "--overwrite")


@case("option.store-overwrites-foreign-directory")
def _(ws):
    (ws.dir / "thesis").mkdir()
    (ws.dir / "thesis" / "chapter1.tex").write_text("precious")
    return ws.import_args(store=ws.dir / "thesis"), ("thesis", "not a featstore store")


@case("option.store-below-a-file")
def _(ws):
    return ws.import_args(store=ws.align / "new.zarr"), ("story_align.csv",)


# --- features import ----------------------------------------------------------------------


@case("features.tr-count-differs")
def _(ws):
    return _features(ws, "short.npy", _layer(n_tr=5), "5 TRs", "n_tr=7")


@case("features.nan")
def _(ws):
    layer = _layer()
    layer[4, 9] = np.nan
    return _features(ws, "nan.npy", layer, "TR 4, dim 9")


@case("features.inf")
def _(ws):
    layer = _layer()
    layer[2, 0] = np.inf
    return _features(ws, "inf.npy", layer, "TR 2, dim 0")


@case("features.overflows-float32")
def _(ws):
    layer = _layer()
    layer[6, 12] = -1e39
    return _features(ws, "big.npy", layer, "TR 6, dim 12")


@case("features.one-dimensional")
def _(ws):
    return _features(ws, "flat.npy", np.zeros(N_TR), "shape (7,)")


@case("features.four-dimensional")
def _(ws):
    return _features(ws, "4d.npy", np.zeros((2, 2, N_TR, 3)), "shape (2, 2, 7, 3)")


@case("features.zero-dims")
def _(ws):
    return _features(ws, "nodim.npy", np.zeros((N_TR, 0)), "shape (7, 0)")


@case("features.zero-layers")
def _(ws):
    return _features(ws, "nolayer.npy", np.zeros((0, N_TR, 4)), "shape (0, 7, 4)")


@case("features.layer-dims-differ")
def _(ws):
    first, second = ws.npy("l0.npy", _layer(dim=4)), ws.npy("l1.npy", _layer(dim=5))
    return ws.features_args(first, second), ("l1.npy", "dim 5", "dim 4")


@case("features.object-array")
def _(ws):
    return _features(ws, "objects.npy", np.array([[None] * 3] * N_TR, dtype=object), "object")


@case("features.truncated-npy")
def _(ws):
    path = ws.npy("cut.npy", _layer())
    path.write_bytes(path.read_bytes()[:100])
    return ws.features_args(path), ("cut.npy", "cannot read it")


@case("features.wrong-suffix")
def _(ws):
    path = ws.file("layer.csv", "1,2,3\n")
    return ws.features_args(path), ("layer.csv", ".npy or .npz")


@case("features.npz-several-arrays")
def _(ws):
    path = ws.npz("many.npz", a=_layer(), b=_layer())
    return ws.features_args(path), ("many.npz", "['a', 'b']")


@case("features.npz-empty")
def _(ws):
    return ws.features_args(ws.npz("none.npz")), ("none.npz",)


@case("features.complex-values")
def _(ws):
    return _features(ws, "complex.npy", _layer().astype(complex), "complex128")


@case("features.missing-file")
def _(ws):
    return ws.features_args(ws.dir / "absent.npy"), ("absent.npy", "no such file")


@case("features.name-traversal")
def _(ws):
    path = ws.npy("l.npy", _layer())
    return ws.features_args(path, name="../evil"), ("'../evil'",)


@case("features.name-with-slash")
def _(ws):
    path = ws.npy("l.npy", _layer())
    return ws.features_args(path, name="org/model"), ("'org/model'",)


@case("features.window-zero")
def _(ws):
    return ws.features_args(ws.npy("l.npy", _layer()), window="tr0"), ("'tr0'",)


@case("features.window-negative-ctx")
def _(ws):
    return ws.features_args(ws.npy("l.npy", _layer()), window="ctx-3"), ("'ctx-3'",)


@case("features.window-unknown")
def _(ws):
    return ws.features_args(ws.npy("l.npy", _layer()), window="6"), ("'6'",)


@case("features.modality-unknown")
def _(ws):
    return ws.features_args(ws.npy("l.npy", _layer()), modality="smell"), ("'smell'",)


@case("features.exists-without-overwrite")
def _(ws):
    return ws.features_args(ws.npy("l.npy", _layer()), name="mine"), (FEATURE_GROUP, "--overwrite")


@case("features.no-files")
def _(ws):
    return ws.features_args(), ("Missing argument 'files'",)


@case("features.store-missing")
def _(ws):
    path = ws.npy("l.npy", _layer())
    return ws.features_args(path, store=ws.dir / "absent.zarr"), ("absent.zarr", "no store")


@case("features.store-without-stimulus")
def _(ws):
    shutil.rmtree(ws.store / "stimulus")
    return ws.features_args(ws.npy("l.npy", _layer())), ("story.zarr", "stimulus")


@case("features.store-without-n-tr")
def _(ws):
    _root_attrs(ws, n_tr=None)
    return ws.features_args(ws.npy("l.npy", _layer())), ("story.zarr", "n_tr")


@case("features.store-with-text-n-tr")
def _(ws):
    _root_attrs(ws, n_tr="seven")
    return ws.features_args(ws.npy("l.npy", _layer())), ("story.zarr", "n_tr", "'seven'")


@case("features.store-newer-schema")
def _(ws):
    _root_attrs(ws, featstore_schema=99)
    return ws.features_args(ws.npy("l.npy", _layer())), ("story.zarr", "version 99")


# --- corrupt and foreign stores -------------------------------------------------------------


@case("store.missing")
def _(ws):
    return ["ls", str(ws.dir / "absent.zarr")], ("absent.zarr", "no store")


@case("store.regular-file")
def _(ws):
    return ["ls", str(ws.align)], ("story_align.csv",)


@case("store.empty-directory")
def _(ws):
    (ws.dir / "empty.zarr").mkdir()
    return ["ls", str(ws.dir / "empty.zarr")], ("empty.zarr",)


@case("store.garbage-root-metadata")
def _(ws):
    (ws.store / "zarr.json").write_bytes(b"\x00\xffnot json{")
    return ["ls", str(ws.store)], ("story.zarr",)


@case("store.root-metadata-is-a-list")
def _(ws):
    (ws.store / "zarr.json").write_text("[1, 2, 3]")
    return ["ls", str(ws.store)], ("story.zarr",)


@case("store.root-metadata-truncated")
def _(ws):
    text = (ws.store / "zarr.json").read_text()
    (ws.store / "zarr.json").write_text(text[: len(text) // 2])
    return ["validate", str(ws.store)], ("story.zarr",)


@case("store.root-metadata-missing")
def _(ws):
    (ws.store / "zarr.json").unlink()
    return ["ls", str(ws.store)], ("story.zarr",)


@case("store.root-is-an-array")
def _(ws):
    meta = json.loads((ws.store / "fmri" / "bold" / "zarr.json").read_text())
    (ws.store / "zarr.json").write_text(json.dumps(meta))
    return ["ls", str(ws.store)], ("story.zarr",)


@case("store.plain-zarr-group")
def _(ws):
    import zarr

    zarr.open_group(ws.dir / "plain.zarr", mode="w", zarr_format=3).attrs["title"] = "mine"
    return ["ls", str(ws.dir / "plain.zarr")], ("plain.zarr", "not a featstore store")


@case("store.zarr-v2-group")
def _(ws):
    import zarr

    zarr.open_group(ws.dir / "old.zarr", mode="w", zarr_format=2).attrs["featstore_schema"] = 1
    return ["ls", str(ws.dir / "old.zarr")], ("old.zarr",)


@case("store.schema-99")
def _(ws):
    _root_attrs(ws, featstore_schema=99)
    return ["ls", str(ws.store)], ("story.zarr", "version 99", "upgrade")


@case("store.schema-as-text")
def _(ws):
    _root_attrs(ws, featstore_schema="1")
    return ["validate", str(ws.store)], ("story.zarr", "'1'")


@case("store.schema-zero")
def _(ws):
    _root_attrs(ws, featstore_schema=0)
    return ["info", str(ws.store), "fmri"], ("story.zarr", "featstore_schema is 0")


@case("store.missing-hidden-array")
def _(ws):
    shutil.rmtree(ws.store / FEATURE_GROUP / "hidden")
    return ["validate", str(ws.store)], (FEATURE_GROUP, "hidden", "missing")


@case("store.garbage-group-metadata")
def _(ws):
    (ws.store / FEATURE_GROUP / "zarr.json").write_text("{garbage")
    return ["ls", str(ws.store)], (FEATURE_GROUP,)


@case("store.garbage-array-metadata")
def _(ws):
    (ws.store / FEATURE_GROUP / "hidden" / "zarr.json").write_text("{garbage")
    return ["ls", str(ws.store)], (f"{FEATURE_GROUP}/hidden",)


@case("store.array-metadata-wrong-shape-type")
def _(ws):
    def edit(meta: dict) -> None:
        meta["shape"] = "big"

    _edit_json(ws.store / FEATURE_GROUP / "hidden" / "zarr.json", edit)
    return ["validate", str(ws.store)], (f"{FEATURE_GROUP}/hidden",)


@case("store.garbage-fmri-metadata")
def _(ws):
    (ws.store / "fmri" / "zarr.json").write_bytes(b"")
    return ["validate", str(ws.store)], ("fmri",)


@case("store.incomplete-group")
def _(ws):
    def edit(meta: dict) -> None:
        meta["attributes"]["complete"] = False

    _edit_json(ws.store / FEATURE_GROUP / "zarr.json", edit)
    return ["validate", str(ws.store)], (FEATURE_GROUP, "incomplete")


@case("store.fmri-tr-count-differs-from-root")
def _(ws):
    _root_attrs(ws, n_tr=8)
    return ["validate", str(ws.store)], ("fmri", "bold", "7 TRs", "8")


@case("store.features-is-a-file")
def _(ws):
    shutil.rmtree(ws.store / "features")
    (ws.store / "features").write_text("oops")
    return ws.features_args(ws.npy("l.npy", _layer())), ("features/other/tr2", "Not a directory")


@case("store.info-missing-group")
def _(ws):
    return ["info", str(ws.store), "features/gpt2/ctx200"], ("features/gpt2/ctx200", "not found")


@case("store.info-array-not-group")
def _(ws):
    return ["info", str(ws.store), "fmri/bold"], ("fmri/bold",)


@case("store.info-path-traversal")
def _(ws):
    return ["info", str(ws.store), "../../etc"], ("../../etc",)


@case("store.features-import-over-garbage-group")
def _(ws):
    (ws.store / FEATURE_GROUP / "zarr.json").write_text("{garbage")
    path = ws.npy("l.npy", _layer())
    return [*ws.features_args(path, name="mine"), "--overwrite"], (FEATURE_GROUP,)


@case("store.pickle-codec")
def _(ws):
    # a store from someone else that asks for an unpickling codec must not get one
    def edit(meta: dict) -> None:
        meta["codecs"] = [{"name": "numcodecs.pickle", "configuration": {"protocol": 5}}]

    _edit_json(ws.store / "fmri" / "roi_name" / "zarr.json", edit)
    return ["info", str(ws.store), "fmri"], ("fmri/roi_name",)


@case("store.unknown-codec")
def _(ws):
    def edit(meta: dict) -> None:
        meta["codecs"] = [*meta["codecs"], {"name": "vendor.secret-compressor"}]

    _edit_json(ws.store / FEATURE_GROUP / "hidden" / "zarr.json", edit)
    return ["ls", str(ws.store)], (f"{FEATURE_GROUP}/hidden",)


@case("store.corrupt-coordinate-chunk")
def _(ws):
    (ws.store / "fmri" / "roi" / "c" / "0").write_bytes(b"\x28\xb5\x2f\xfd garbage")
    return ["info", str(ws.store), "fmri"], ("fmri",)


@case("store.truncated-coordinate-chunk")
def _(ws):
    chunk = ws.store / "fmri" / "subject" / "c" / "0"
    chunk.write_bytes(chunk.read_bytes()[:5])
    return ["info", str(ws.store), "fmri"], ("fmri",)


# --- evaluate grid ----------------------------------------------------------------------------

GRID_FEATURE = "features/microsoft--wavlm-base-plus/tr3"


def _grid(ws: Workspace, *extra: object, culprits: tuple[str, ...]) -> Outcome:
    return ws.grid_args(*extra), culprits


for _option, _value, _culprit in [
    ("--pca", "-1", "--pca"),
    ("--cv", "0", "--cv"),
    ("--cv", "1", "--cv"),
    ("--alphas", "abc", "--alphas"),
    ("--alphas", "-1,10", "--alphas"),
    ("--alphas", "logspace:2:1", "--alphas"),
    ("--alpha", "-5", "--alpha"),
    ("--alpha", "nan", "--alpha"),
    ("--test-frac", "0", "--test-frac"),
    ("--test-frac", "1", "--test-frac"),
    ("--test-frac", "nan", "--test-frac"),
    ("--test-frac", "0.01", "test"),
    ("--gap", "-1", "--gap"),
    ("--fir-window", "0", "--fir-window"),
    ("--fir-offset", "-1", "--fir-offset"),
    ("--delays", "2,2", "--delays"),
    ("--delays", "1,x", "--delays"),
    ("--trim", "-2", "--trim"),
    ("--trim", "50", "--trim"),
    ("--dtype", "float8", "--dtype"),
    ("--method", "magic", "--method"),
    ("--workers", "-1", "--workers"),
    ("--threads-per-worker", "0", "--threads-per-worker"),
    ("--tr-win", "0", "--tr-win '0'"),
    ("--layers", "99", "99"),
    ("--layers", "two", "--layers"),
    ("--run", "../escape", "../escape"),
    ("--scheduler", "notanaddress", "notanaddress"),
]:
    case(f"grid.option{_option}={_value}")(
        lambda ws, o=_option, v=_value, c=_culprit: _grid(ws, o, v, culprits=(c,))
    )


@case("grid.option--ctx=-3")
def _(ws):
    return _grid(ws, "--model", "gpt2", "--ctx", "-3", culprits=("-3",))


@case("grid.workers-and-scheduler")
def _(ws):
    return _grid(ws, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1", culprits=("not both",))


@case("grid.unknown-model")
def _(ws):
    return _grid(ws, "--model", "nosuchmodel", culprits=("nosuchmodel",))


@case("grid.missing-window")
def _(ws):
    return _grid(ws, "--model", "gpt2", "--ctx", "999", culprits=("ctx999",))


@case("grid.fusion-without-partner")
def _(ws):
    return _grid(ws, "--fusion", "gpt2+", culprits=("'gpt2+'",))


@case("grid.fusion-of-three")
def _(ws):
    return _grid(ws, "--fusion", "gpt2+wavlm+gpt2", culprits=("gpt2+wavlm+gpt2",))


@case("grid.store-without-fmri")
def _(ws):
    shutil.rmtree(ws.grid_store / "fmri")
    return _grid(ws, culprits=("fmri",))


@case("grid.nan-in-a-feature-layer")
def _(ws):
    import zarr

    zarr.open_array(ws.grid_store / GRID_FEATURE / "hidden", mode="r+")[3, 17, 4] = np.nan
    return _grid(ws, "--layers", "3", culprits=(GRID_FEATURE, "layer 3", "TR 17"))


@case("grid.nan-in-bold")
def _(ws):
    import zarr

    zarr.open_array(ws.grid_store / "fmri" / "bold", mode="r+")[1, 40, 5] = np.inf
    return _grid(ws, culprits=("sub-02", "5 (V1)"))


@case("grid.corrupt-feature-chunk")
def _(ws):
    chunk = ws.grid_store / GRID_FEATURE / "hidden" / "c" / "2" / "0" / "0"
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    chunk.write_bytes(bytes(raw))
    return _grid(ws, "--layers", "2", culprits=(GRID_FEATURE, "corrupt"))


@case("grid.truncated-bold-chunk")
def _(ws):
    chunk = ws.grid_store / "fmri" / "bold" / "c" / "1" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:10])
    return _grid(ws, culprits=("fmri",))


@case("grid.incomplete-feature-set")
def _(ws):
    def edit(meta: dict) -> None:
        meta["attributes"]["complete"] = False

    _edit_json(ws.grid_store / GRID_FEATURE / "zarr.json", edit)
    return _grid(ws, culprits=(GRID_FEATURE, "incomplete"))


@case("grid.feature-tr-count-differs")
def _(ws):
    def edit(meta: dict) -> None:
        meta["shape"][1] = 79

    def edit_tr(meta: dict) -> None:
        meta["shape"][0] = 79

    _edit_json(ws.grid_store / GRID_FEATURE / "hidden" / "zarr.json", edit)
    _edit_json(ws.grid_store / GRID_FEATURE / "tr" / "zarr.json", edit_tr)
    return _grid(ws, culprits=("80 TRs", GRID_FEATURE, "79"))


@case("grid.run-exists")
def _(ws):
    from tests.reliability.conftest import run_cli

    assert run_cli(ws.grid_args()).exit_code == 0
    return _grid(ws, culprits=("results/hostile", "already exists"))


# --- featstore extract --------------------------------------------------------------------------


@case("extract.unknown-model")
def _(ws):
    return ws.extract_args("--ctx", "5", model="nosuchmodel"), ("nosuchmodel",)


@case("extract.hub-model-offline")
def _(ws):
    return ws.extract_args("--ctx", "5", model="gpt2"), ("gpt2",)


@case("extract.directory-without-config")
def _(ws):
    (ws.dir / "empty-model").mkdir()
    return ws.extract_args("--ctx", "5", model=ws.dir / "empty-model"), (
        "empty-model",
        "config.json",
    )


@case("extract.unsupported-model-type")
def _(ws):
    ws.file("odd-model/config.json", json.dumps({"model_type": "mamba9"}))
    return ws.extract_args("--ctx", "5", model=ws.dir / "odd-model"), ("mamba9",)


@case("extract.garbage-config")
def _(ws):
    ws.file("bad-model/config.json", "{not json")
    return ws.extract_args("--ctx", "5", model=ws.dir / "bad-model"), ("config.json",)


@case("extract.truncated-weights")
def _(ws):
    model = shutil.copytree(ws.model, ws.dir / "cut-model")
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    return ws.extract_args("--ctx", "5", model=model), ("cut-model",)


@case("extract.weights-missing")
def _(ws):
    model = shutil.copytree(ws.model, ws.dir / "hollow-model")
    (model / "model.safetensors").unlink()
    return ws.extract_args("--ctx", "5", model=model), ("hollow-model",)


for _extra, _culprit in [
    (("--ctx", "0"), "0"),
    (("--ctx", "-3"), "-3"),
    (("--tr-win", "2"), "--ctx"),
    (("--ctx", "5", "--tr-win", "0"), "--tr-win"),
    (("--ctx", "5", "--pool", "max"), "--pool"),
    (("--ctx", "5", "--stride", "0"), "--stride"),
    (("--ctx", "5", "--batch-size", "0"), "--batch-size"),
    (("--ctx", "5", "--dtype", "int8"), "--dtype"),
    (("--ctx", "5", "--device", "tpu"), "--device"),
    (("--ctx", "5", "--device", "cuda:3"), "--device"),
    (("--ctx", "5", "--block-words", "0"), "--block-words"),
    (("--ctx", "5", "--to-tr", "median"), "--to-tr"),
    (("--ctx", "5", "--threads", "abc"), "--threads"),
]:
    case(f"extract.option{' '.join(_extra)}")(
        lambda ws, e=_extra, c=_culprit: (ws.extract_args(*e), (c,))
    )


@case("extract.audio-model-given-ctx")
def _(ws):
    return ws.extract_args("--ctx", "5", model="wavlm"), ("--tr-win",)


@case("extract.store-without-stimulus")
def _(ws):
    shutil.rmtree(ws.store / "stimulus")
    return ws.extract_args("--ctx", "5"), ("stimulus",)


@case("extract.store-missing")
def _(ws):
    argv = ws.extract_args("--ctx", "5")
    argv[argv.index("--store") + 1] = str(ws.dir / "absent.zarr")
    return argv, ("absent.zarr",)


# --- after a grid: summary, roi, stats, significance, ceiling, plot, report, runs -------------

RUN_CONFIG = "wavlm/tr3/layer4"  # the template's finished run r1


def _evaluate(ws: Workspace, *argv: object, culprits: tuple[str, ...]) -> Outcome:
    return ["evaluate", *[str(a) for a in argv], "--store", str(ws.grid_store)], culprits


def _a_file(ws: Workspace) -> Path:
    return ws.file("afile", "not a directory")


@case("summary.run-missing")
def _(ws):
    return _evaluate(ws, "summary", "--run", "nosuch", culprits=("'nosuch'", "r1"))


@case("summary.csv-is-a-directory")
def _(ws):
    return _evaluate(ws, "summary", "--csv", ws.dir, culprits=(str(ws.dir), "is a directory"))


@case("summary.csv-below-a-file")
def _(ws):
    path = _a_file(ws) / "s.csv"
    return _evaluate(ws, "summary", "--roi-csv", path, culprits=("afile", "not a directory"))


@case("roi.top-negative")
def _(ws):
    return _evaluate(ws, "roi", "--top", "-1", culprits=("--top",))


@case("roi.config-missing")
def _(ws):
    return _evaluate(ws, "roi", "--config", "nosuch/tr3/2", culprits=("nosuch",))


@case("stats.groups-not-json")
def _(ws):
    compare = ["--compare", RUN_CONFIG, RUN_CONFIG]
    return _evaluate(ws, "stats", *compare, "--groups", _a_file(ws), culprits=("afile", "JSON"))


@case("stats.alternative-unknown")
def _(ws):
    argv = ["stats", "--compare", RUN_CONFIG, RUN_CONFIG, "--alternative", "bigger"]
    return _evaluate(ws, *argv, culprits=("'bigger'",))


for _extra, _culprit in [
    (("--n-perm", "0"), "n_perm 0"),
    (("--block", "0"), "block of 0"),
    (("--block", "3", "--n-perm", "20", "--method", "magic"), "'magic'"),
    (("--block", "3", "--n-perm", "20", "--alpha", "2"), "2"),
    (("--block", "3", "--n-perm", "20", "--config", "nosuch/tr1/1"), "nosuch/tr1/1"),
    (("--run", "nosuch"), "nosuch"),
]:
    case(f"significance.{' '.join(_extra)}")(
        lambda ws, e=_extra, c=_culprit: _evaluate(
            ws, "significance", "--run", "r1", *e, "--quiet", culprits=(c,)
        )
    )


@case("ceiling.trim-negative")
def _(ws):
    return _evaluate(ws, "ceiling", "--trim", "-1", culprits=("--trim -1",))


@case("ceiling.run-missing")
def _(ws):
    return _evaluate(ws, "ceiling", "--run", "nosuch", culprits=("results/nosuch",))


@case("plot.out-below-a-file")
def _(ws):
    out = _a_file(ws) / "x.png"
    argv = ["plot", "roi-top", "--config", RUN_CONFIG, "--out", out]
    return _evaluate(ws, *argv, culprits=("afile", "not a directory"))


@case("plot.config-missing")
def _(ws):
    argv = ["plot", "brain", "--config", "nosuch/tr3/2", "--out", ws.dir / "x.png"]
    return _evaluate(ws, *argv, culprits=("nosuch/tr3/2",))


@case("report.out-is-a-file")
def _(ws):
    return _evaluate(ws, "report", "--out", _a_file(ws), culprits=("afile", "expected a directory"))


@case("report.top-zero")
def _(ws):
    return _evaluate(ws, "report", "--out", ws.dir / "rep", "--top", "0", culprits=("--top",))


@case("runs.damaged-results-group")
def _(ws):
    (ws.grid_store / "results" / "r1" / "zarr.json").write_text("{bad")
    return _evaluate(ws, "runs", culprits=("results/r1",))


@case("models.import-ct2-out-below-a-file")
def _(ws):
    out = ws.file("afile", "x") / "whisper"
    model = ws.file("ct2/model.bin", b"\x06\x00\x00\x00")
    return ["models", "import-ct2", str(model), "--out", str(out)], ("afile", "not a directory")


@case("models.import-ct2-out-is-a-file")
def _(ws):
    out = ws.file("afile", "x")
    model = ws.file("ct2/model.bin", b"\x06\x00\x00\x00")
    return ["models", "import-ct2", str(model), "--out", str(out)], ("afile", "is a file")
