"""Read ROI-level fMRI of several subjects into one ``(subject, tr, roi)`` float32 array.

Three layouts are read: an ``.npz`` with one ``(TR, ROI)`` array per subject (the key
is the subject), a directory of per-subject ``.npy`` files (the file stem is the
subject), and — only when the caller says the file is trusted — a pickled dict
``{subject: (TR, ROI) array}`` as the reference study kept it. Unpickling runs
whatever code the file names, so a pickle is refused unless ``allow_pickle`` is true;
``torch.load`` is never used. npz and npy files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from featstore.datasets._files import (
    existing_file,
    file_sha256,
    first_line,
    numpy_load_errors,
    plain_value,
)
from featstore.errors import InputError

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip
_PICKLE_MAGIC = b"\x80"  # the PROTO opcode that starts every pickle of protocol >= 2
_PICKLE_SUFFIXES = (".pkl", ".pickle")


@dataclass(frozen=True)
class FmriSource:
    """Where fMRI came from and what was done to it on reading.

    Attributes
    ----------
    path
        The file or directory read.
    kind
        ``"npz"``, ``"npy-dir"`` or ``"pickle"``.
    sha256
        Hex sha256 of the file (for a directory: of its files' names and hashes).
    lengths
        TR count of each subject as read, before any trimming.
    n_tr
        TR count after trimming (the length of the returned array).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from featstore.datasets import read_fmri
    >>> path = tempfile.mkdtemp() + "/bold.npz"
    >>> np.savez(path, s1=np.random.rand(12, 5), s2=np.random.rand(10, 5))
    >>> source = read_fmri(path, trim_to_shortest=True)[2]
    >>> source.kind, source.lengths, source.trimmed
    ('npz', {'s1': 12, 's2': 10}, {'s1': 2})
    """

    path: Path
    kind: str
    sha256: str
    lengths: dict[str, int] = field(default_factory=dict)
    n_tr: int = 0

    @property
    def trimmed(self) -> dict[str, int]:
        """Subjects that lost TRs to ``trim_to_shortest``: subject → TRs removed."""
        return {s: n - self.n_tr for s, n in self.lengths.items() if n > self.n_tr}

    def describe(self) -> str:
        """One line for the ``source`` attr of the fmri group."""
        return f"{self.kind} {self.path} (sha256 {self.sha256})"


def _read_npz(path: Path) -> list[tuple[str, object]]:
    # An open handle of our own: np.load leaves its file open when the zip is corrupt.
    with (
        numpy_load_errors(path, "fmri", read_as=".npz"),
        open(path, "rb") as handle,
        np.load(handle, allow_pickle=False) as archive,
    ):
        return [(name, archive[name]) for name in archive.files]


def _read_npy(path: Path) -> np.ndarray:
    with (
        numpy_load_errors(path, "fmri", read_as=".npy", one_array=True),
        open(path, "rb") as handle,
    ):
        return np.load(handle, allow_pickle=False)


def _read_npy_dir(path: Path) -> tuple[list[tuple[str, object]], str]:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".npy" and p.is_file())
    if not files:
        raise InputError(f"fmri {path}: directory has no .npy files (one per subject expected)")
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}\0{file_sha256(file, 'fmri')}\n".encode())
    return [(file.stem, _read_npy(file)) for file in files], digest.hexdigest()


def _read_pickle(path: Path, allow_pickle: bool) -> list[tuple[str, object]]:
    if not allow_pickle:
        raise InputError(
            f"fmri {path} is a pickle: unpickling runs code stored in the file; pass "
            "`allow_pickle` only if you trust it, or convert it to .npz"
        )
    try:
        with open(path, "rb") as handle:
            data = pickle.load(handle)
    except Exception as exc:  # unpickling can raise anything the file's code raises
        raise InputError(f"fmri {path}: cannot unpickle it ({first_line(exc)})") from None
    if not isinstance(data, dict):
        raise InputError(
            f"fmri {path}: the pickle holds a {type(data).__name__}; expected a dict "
            "{subject: (TR, ROI) array}"
        )
    return [(str(key), value) for key, value in data.items()]


def _as_matrix(path: Path, subject: str, value: object) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception as exc:  # arbitrary pickled objects
        raise InputError(
            f"fmri {path}: subject {subject!r} is not an array ({first_line(exc)})"
        ) from None
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise InputError(
            f"fmri {path}: subject {subject!r} has dtype {array.dtype}; expected real numbers"
        )
    if array.ndim != 2:
        raise InputError(
            f"fmri {path}: subject {subject!r} has shape {array.shape}; expected (TR, ROI)"
        )
    if 0 in array.shape:
        raise InputError(f"fmri {path}: subject {subject!r} has shape {array.shape}; it is empty")
    return array


# Largest |BOLD| accepted. Real data (scanner units, % signal change, z-scores) stay far
# below; beyond it the evaluator's float32 sums of squares over a story's TRs overflow
# (1e18² × 2000 TRs > 3.4e38) and r would silently come out NaN.
MAX_ABS_BOLD = 1e15


def _check_finite(path: Path, subject: str, original: np.ndarray, bold: np.ndarray) -> None:
    # (values refused, what they are, advice to the user); the first kind found is reported.
    refusals = (
        (~np.isfinite(bold), "NaN/inf value(s) (after conversion to float32)", ""),
        (
            np.abs(bold) > MAX_ABS_BOLD,
            f"value(s) beyond ±{MAX_ABS_BOLD:g}",
            "; such values overflow float32 statistics: rescale the data",
        ),
    )
    for refused, what, advice in refusals:
        if refused.any():
            tr, roi = (int(i[0]) for i in np.nonzero(refused))
            raise InputError(
                f"fmri {path}: subject {subject!r} has {int(refused.sum())} {what}; first at "
                f"TR {tr}, ROI {roi} (value {plain_value(original[tr, roi])}){advice}"
            )


def stack_subjects(
    path: Path, items: list[tuple[str, object]], trim_to_shortest: bool
) -> tuple[np.ndarray, list[str], dict[str, int]]:
    """Stack ``(subject, (TR, ROI) array)`` items into float32 (subject, tr, roi).

    Shared by every fMRI reader (npz, npy, pickle, and parcellated brain files), so all
    refuse duplicated subjects, ROI-count and TR-count mismatches and NaN/inf alike.
    Returns the stack, the subjects and each subject's TR count before trimming.
    """
    if not items:
        raise InputError(f"fmri {path}: holds no subjects")
    seen: set[str] = set()
    for subject, _ in items:
        if subject in seen:
            raise InputError(f"fmri {path}: subject {subject!r} appears more than once")
        seen.add(subject)
    matrices = [(s, _as_matrix(path, s, v)) for s, v in items]
    first_subject, first = matrices[0]
    for subject, matrix in matrices[1:]:
        if matrix.shape[1] != first.shape[1]:
            raise InputError(
                f"fmri {path}: subject {subject!r} has {matrix.shape[1]} ROIs but subject "
                f"{first_subject!r} has {first.shape[1]}; all subjects need the same ROIs"
            )
    lengths = {s: int(m.shape[0]) for s, m in matrices}
    n_tr = min(lengths.values())
    if max(lengths.values()) != n_tr and not trim_to_shortest:
        longest = max(lengths, key=lengths.__getitem__)
        shortest = min(lengths, key=lengths.__getitem__)
        raise InputError(
            f"fmri {path}: subject {longest!r} has {lengths[longest]} TRs but subject "
            f"{shortest!r} has {n_tr}; pass `trim_to_shortest` to cut every subject to {n_tr}"
        )
    # The scan start is the shared clock, so trimming keeps the first n_tr TRs.
    bold = np.empty((len(matrices), n_tr, first.shape[1]), dtype=np.float32)
    for i, (subject, matrix) in enumerate(matrices):
        with np.errstate(over="ignore"):  # overflow to inf is reported just below
            bold[i] = matrix[:n_tr]
        _check_finite(path, subject, matrix, bold[i])
    return bold, [s for s, _ in matrices], lengths


def read_fmri(
    path: str | os.PathLike,
    *,
    allow_pickle: bool = False,
    trim_to_shortest: bool = False,
) -> tuple[np.ndarray, list[str], FmriSource]:
    """Read ROI-level fMRI of all subjects.

    Parameters
    ----------
    path
        An ``.npz`` (one ``(TR, ROI)`` array per subject, keyed by subject), a
        directory of ``<subject>.npy`` files, or a pickled dict
        ``{subject: (TR, ROI) array}``.
    allow_pickle
        Read a pickle. Unpickling executes code stored in the file: only for trusted
        files. Without it a pickle is refused with a message saying so.
    trim_to_shortest
        Cut every subject to the shortest subject's TR count (keeping the first TRs)
        instead of refusing subjects of different lengths.

    Returns
    -------
    bold : numpy.ndarray
        float32, shape (subject, tr, roi).
    subjects : list of str
        Subject names in the order of ``bold``.
    source : FmriSource
        The file, its kind and hash, and each subject's TR count before trimming.

    Raises
    ------
    InputError
        Naming the file and subject: unreadable file, pickle without ``allow_pickle``,
        a pickle that is not a dict, no subjects, duplicated subjects, non-numeric
        arrays, arrays that are not 2-D, different ROI counts, different TR counts
        (without ``trim_to_shortest``), NaN/inf values (with the TR and ROI of the first
        and their count).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from featstore.datasets import read_fmri
    >>> folder = tempfile.mkdtemp()
    >>> for subject in ("sub-01", "sub-02"):  # one (tr, roi) array per subject
    ...     np.save(f"{folder}/{subject}.npy", np.random.rand(10, 5))
    >>> bold, subjects, source = read_fmri(folder)
    >>> bold.shape, bold.dtype, subjects
    ((2, 10, 5), dtype('float32'), ['sub-01', 'sub-02'])
    """
    source = Path(path)
    if source.is_dir():
        items, sha256 = _read_npy_dir(source)
        kind = "npy-dir"
    else:
        file = existing_file(source, "fmri")
        sha256 = file_sha256(file, "fmri")
        try:
            with open(file, "rb") as handle:
                magic = handle.read(len(_NPY_MAGIC))
        except OSError as exc:
            raise InputError(f"fmri {file}: cannot read it ({first_line(exc)})") from None
        if not magic:
            raise InputError(f"fmri {file}: the file is empty")
        if magic.startswith(_ZIP_MAGIC):
            items, kind = _read_npz(file), "npz"
        elif magic.startswith(_NPY_MAGIC):
            raise InputError(
                f"fmri {file}: is a single .npy array; give an .npz with one array per subject "
                "or a directory with one <subject>.npy per subject"
            )
        elif magic.startswith(_PICKLE_MAGIC) or file.suffix.lower() in _PICKLE_SUFFIXES:
            items, kind = _read_pickle(file, allow_pickle), "pickle"
        else:
            raise InputError(
                f"fmri {file}: not an .npz archive nor a pickle (unrecognised content); expected "
                ".npz, a directory of <subject>.npy files, or a pickled dict"
            )
    bold, subjects, lengths = stack_subjects(source, items, trim_to_shortest)
    return bold, subjects, FmriSource(source, kind, sha256, lengths, int(bold.shape[1]))
