"""``featstore dataset import``: alignment + audio (+ fMRI) → a new store, all or nothing.

Every input is read and checked before anything is written. The store is then built
in a hidden sibling directory and renamed into place, so a failed import leaves
nothing behind and an existing store is replaced only with ``overwrite=True`` (and
stays untouched if the import fails).
"""

from __future__ import annotations

import glob
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from featstore.datasets.alignment_formats import read_word_alignment
from featstore.datasets.atlas import roi_names_from_file
from featstore.datasets.audio import audio_file_info, read_audio
from featstore.datasets.brain import brain_format, read_brain_fmri
from featstore.datasets.fmri import read_fmri
from featstore.datasets.fmri_group import fmri_dataset, fmri_encoding
from featstore.datasets.stimulus_group import stimulus_dataset, stimulus_encoding
from featstore.datasets.timeline import audio_tr_count, check_timing
from featstore.errors import GroupExistsError, InputError, SchemaVersionError, StoreError
from featstore.store import _schema as S
from featstore.store.groups import (
    StorePath,
    _local_path,
    create_store,
    open_root,
    write_group,
)
from featstore.store.io_errors import write_failure

# A word may start this long after the last audio sample (encoder frame rounding).
_AUDIO_END_SLACK_S = 0.05


@dataclass(frozen=True)
class ImportReport:
    """What ``import_dataset`` wrote and noticed.

    ``tr_mismatch`` is the fMRI TR count minus the TRs the story audio spans after
    ``stim_onset`` (``audio_n_tr``); None without fMRI.

    Attributes
    ----------
    store : Path
        The store written.
    n_words, n_tr, audio_n_tr : int
        Words; TRs of the store; TRs the audio spans after ``stim_onset``.
    tr_mismatch : int or None
        fMRI TRs minus ``audio_n_tr`` (None without fMRI).

    Examples
    --------
    >>> import tempfile
    >>> from featstore.datasets import import_dataset
    >>> from featstore.datasets.demo import demo_story_paths
    >>> audio, align = demo_story_paths()  # the bundled 5-minute story
    >>> store = tempfile.mkdtemp() + "/demo.zarr"
    >>> report = import_dataset(store, align=align, audio=audio, tr=1.5)
    >>> report.n_words, report.n_tr, report.tr_mismatch
    (830, 206, None)
    """

    store: Path
    dataset: str
    tr_seconds: float
    stim_onset: float
    tr_assign: str
    n_words: int
    n_time_filled: int
    n_word_missing: int
    duration_s: float
    n_tr: int
    audio_n_tr: int
    n_words_after_scan: int
    stimulus_sha256: str
    subjects: list[str] = field(default_factory=list)
    n_roi: int = 0
    atlas: str = ""
    tr_mismatch: int | None = None
    trimmed: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The report as short human-readable lines (what the CLI prints)."""
        out = [
            f"store      {self.store}  (dataset {self.dataset!r})",
            f"words      {self.n_words}  ({self.n_time_filled} timestamps back-filled, "
            f"{self.n_word_missing} missing words)",
            f"audio      {self.duration_s:.2f} s at 16 kHz; story starts {self.stim_onset:g} s "
            f"into the scan",
            f"TRs        n_tr={self.n_tr} of {self.tr_seconds:g} s; words → TRs by "
            f"{self.tr_assign}; the audio spans {self.audio_n_tr} TRs",
        ]
        if self.subjects:
            shown = ", ".join(self.subjects[:5]) + (" …" if len(self.subjects) > 5 else "")
            out.append(
                f"fMRI       {len(self.subjects)} subjects ({shown}); {self.n_roi} ROIs "
                f"({self.atlas})"
            )
            out.append(
                f"TR check   fMRI {self.n_tr} TRs vs audio {self.audio_n_tr} TRs: "
                f"difference {self.tr_mismatch:+d}"
            )
        else:
            out.append("fMRI       none (n_tr from the audio)")
        if self.trimmed:
            out.append(
                f"trimmed    {len(self.trimmed)} subject(s) cut to {self.n_tr} TRs: "
                + ", ".join(f"{s} (-{n})" for s, n in self.trimmed.items())
            )
        if self.n_words_after_scan:
            out.append(
                f"warning    {self.n_words_after_scan} word(s) fall after the last TR; "
                "features ignore them"
            )
        return out


def _target_path(store: StorePath) -> Path:
    local = _local_path(store)
    if local is None:
        raise InputError(f"store={os.fspath(store)}: dataset import writes local stores only")
    return local


def _is_featstore_store(path: Path) -> bool:
    """Whether ``path`` is a featstore store this featstore may replace.

    A store of a newer schema raises :class:`SchemaVersionError`, as every other command
    does: its groups (features, results) are not ours to judge, let alone delete.
    """
    try:
        open_root(path)
    except SchemaVersionError as exc:
        raise SchemaVersionError(
            f"{exc}; refusing to replace it even with `overwrite` (choose another `store` path)"
        ) from None
    except StoreError:
        return False
    return True


def _check_target(target: Path, overwrite: bool) -> None:
    if not (target.exists() or target.is_symlink()):
        return
    if not overwrite:
        raise GroupExistsError(f"{target} already exists; pass `overwrite` to replace it")
    empty_dir = target.is_dir() and not any(target.iterdir())
    if not (empty_dir or _is_featstore_store(target)):
        raise InputError(
            f"{target} exists and is not a featstore store; refusing to replace it "
            "even with `overwrite` (choose another `store` path)"
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _remove_stale_staging(target: Path) -> None:
    """Remove staging directories left by imports of ``target`` that were killed."""
    prefix = f".{target.name}.importing-"
    for path in target.parent.glob(f"{glob.escape(prefix)}*"):
        pid_text = path.name[len(prefix) :].split("-", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            shutil.rmtree(path, ignore_errors=True)


def _publish(staging: Path, target: Path, overwrite: bool) -> None:
    """Rename the finished store into place, replacing an old one only at the very end."""
    _check_target(target, overwrite)
    if not (target.exists() or target.is_symlink()):
        os.rename(staging, target)
        return
    retired = target.with_name(f".{target.name}.replaced-{uuid.uuid4().hex[:8]}")
    os.rename(target, retired)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(retired, target)
        raise
    if retired.is_dir() and not retired.is_symlink():
        shutil.rmtree(retired, ignore_errors=True)
    else:
        retired.unlink()


def _make_parent(target: Path) -> None:
    """Create the directory the store goes in, or say in one line why it cannot be."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"store={target}: cannot create its directory {target.parent} ({exc.strerror})"
        ) from None


def _read_any_fmri(
    fmri: str | os.PathLike | None,
    *,
    brain: bool,
    parcellate: str | None,
    mask: str | os.PathLike | None,
    allow_pickle: bool,
    roi_names: str | os.PathLike | None,
    trim_to_shortest: bool,
) -> tuple:
    """``(bold, subjects, source, roi names, hemispheres)`` of ROI-level fMRI or of brain
    files averaged into parcels; all ``None`` without ``fmri`` (names: ``None`` when the
    default HCP-MMP names apply)."""
    bold = subjects = source = names = hemispheres = None
    if brain:
        bold, subjects, source = read_brain_fmri(
            fmri, parcellate=parcellate, mask=mask, trim_to_shortest=trim_to_shortest
        )
        names, hemispheres = source.roi_names, source.hemispheres
    elif parcellate is not None or mask is not None:
        raise InputError("`parcellate` and `mask` apply to GIfTI, CIFTI or NIfTI `fmri` files")
    elif fmri is not None:
        bold, subjects, source = read_fmri(
            fmri, allow_pickle=allow_pickle, trim_to_shortest=trim_to_shortest
        )
    if fmri is not None:
        if roi_names is not None:
            names, hemispheres = roi_names_from_file(roi_names, bold.shape[2])
    elif roi_names is not None:
        raise InputError("`roi_names` names the ROIs of `fmri`, which was not given")
    return bold, subjects, source, names, hemispheres


def import_dataset(
    store: StorePath,
    *,
    align: str | os.PathLike,
    audio: str | os.PathLike,
    fmri: str | os.PathLike | None = None,
    parcellate: str | None = None,
    mask: str | os.PathLike | None = None,
    tr: float,
    dataset: str | None = None,
    stim_onset: float = 0.0,
    tr_assign: str = "ceil",
    allow_pickle: bool = False,
    roi_names: str | os.PathLike | None = None,
    trim_to_shortest: bool = False,
    tr_tolerance: float = 2.0,
    overwrite: bool = False,
) -> ImportReport:
    """Import a story (alignment + audio) and optionally its fMRI into a new store.

    Parameters
    ----------
    store
        Path of the store to create (a local directory).
    align
        Word alignment: Gentle CSV or JSON, or a Praat TextGrid word tier (see
        :func:`featstore.datasets.read_word_alignment`).
    audio
        Story audio, WAV, FLAC or Ogg Opus/Vorbis; stored mono at 16 kHz.
    fmri
        ``.npz``, directory of ``<subject>.npy``, or (with ``allow_pickle``) a pickled
        dict; see :func:`featstore.datasets.read_fmri`. Or GIfTI / CIFTI-2 / 4-D NIfTI
        files, a path or glob (``'sub-*_hemi-L.func.gii'``), averaged into the parcels
        of ``parcellate``; see :func:`featstore.datasets.brain.read_brain_fmri`.
        Without it, ``n_tr`` is the TR count the audio spans.
    parcellate
        Atlas for GIfTI/CIFTI/NIfTI ``fmri``: ``hcp-mmp``, a ``.label.gii``, a
        FreeSurfer ``.annot`` or a NIfTI label image.
    mask
        Brain mask for NIfTI ``fmri``; without it nilearn computes one per subject.
    tr
        Repetition time in seconds.
    dataset
        Dataset name for the root attrs; defaults to the store's name without ``.zarr``.
    stim_onset
        Seconds of scan before the story starts.
    tr_assign
        ``"ceil"`` (default, the reference study's) or ``"floor"``: how a word's onset
        maps to a TR (see :func:`featstore.datasets.timeline.assign_tr`).
    allow_pickle
        Allow a pickled fMRI file (unpickling runs code: trusted files only).
    roi_names
        File with one ROI name per line; without it 360 ROIs get HCP-MMP1.0 names.
    trim_to_shortest
        Cut subjects of different lengths to the shortest.
    tr_tolerance
        Largest allowed difference, in TRs, between the fMRI TR count and the TRs the
        audio spans after ``stim_onset``; smaller differences are only reported.
    overwrite
        Replace an existing store at ``store`` (only a featstore store or an empty
        directory is ever replaced).

    Returns
    -------
    ImportReport

    Raises
    ------
    InputError
        Any bad input, naming the file and row, subject or value; nothing is written.
    GroupExistsError
        A store exists at ``store`` and ``overwrite`` is false.

    Examples
    --------
    >>> import tempfile
    >>> from featstore.datasets import import_dataset
    >>> from featstore.datasets.demo import demo_story_paths
    >>> audio, align = demo_story_paths()  # the bundled 5-minute story
    >>> store = tempfile.mkdtemp() + "/demo.zarr"
    >>> report = import_dataset(store, align=align, audio=audio, tr=1.5)
    >>> report.dataset, round(report.duration_s)
    ('demo', 308)
    """
    target = _target_path(store)
    check_timing(tr, stim_onset, tr_assign)
    if not tr_tolerance >= 0:
        raise InputError(f"tr_tolerance={tr_tolerance!r}: expected a number of TRs >= 0")
    _check_target(target, overwrite)

    alignment = read_word_alignment(align)
    brain = fmri is not None and brain_format(fmri) is not None
    bold, subjects, source, names, hemispheres = _read_any_fmri(
        fmri,
        brain=brain,
        parcellate=parcellate,
        mask=mask,
        allow_pickle=allow_pickle,
        roi_names=roi_names,
        trim_to_shortest=trim_to_shortest,
    )
    samples, audio_sha256 = read_audio(audio)
    duration_s = len(samples) / S.AUDIO_SAMPLE_RATE
    last = int(alignment.onset.argmax())
    if alignment.onset[last] > duration_s + _AUDIO_END_SLACK_S:
        raise InputError(
            f"alignment {alignment.path}: {alignment.location} {alignment.line[last]}: word starts at "
            f"{alignment.onset[last]:g} s but audio {audio} lasts {duration_s:.3f} s; "
            "are they the same story?"
        )
    audio_n_tr = audio_tr_count(duration_s, tr=tr, stim_onset=stim_onset)
    tr_mismatch = None
    if bold is not None:
        tr_mismatch = int(bold.shape[1]) - audio_n_tr
        if abs(tr_mismatch) > tr_tolerance:
            raise InputError(
                f"fmri {fmri} has {bold.shape[1]} TRs but audio {audio} ({duration_s:.2f} s, "
                f"starting {stim_onset:g} s into the scan) spans {audio_n_tr} TRs of {tr:g} s; "
                f"the difference {tr_mismatch:+d} is over tr_tolerance={tr_tolerance:g}"
            )
    n_tr = int(bold.shape[1]) if bold is not None else audio_n_tr

    stimulus = stimulus_dataset(
        alignment,
        samples,
        audio_sha256=audio_sha256,
        tr=tr,
        stim_onset=stim_onset,
        tr_assign=tr_assign,
        sources={"align": str(align), "audio": str(audio), "audio_file": audio_file_info(audio)},
    )
    fmri_ds = None
    if bold is not None:
        fmri_ds = fmri_dataset(
            bold,
            subjects,
            roi_names=names,
            hemispheres=hemispheres,
            atlas=source.atlas if brain else None,
            source=source.describe(),
            extra_attrs=(source.attrs if brain else {})
            | ({"lengths_as_read": source.lengths} if source.trimmed else {}),
        )

    _make_parent(target)
    _remove_stale_staging(target)
    # The pid in the name lets a later import remove it if this process is killed.
    staging = target.with_name(f".{target.name}.importing-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    dataset_name = dataset or target.name.removesuffix(".zarr")
    try:
        create_store(staging, dataset=dataset_name, tr_seconds=tr, n_tr=n_tr)
        write_group(staging, S.STIMULUS, stimulus, encoding=stimulus_encoding(stimulus))
        if fmri_ds is not None:
            write_group(staging, S.FMRI, fmri_ds, encoding=fmri_encoding(fmri_ds))
        _publish(staging, target, overwrite)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise write_failure(target, "the new store", exc) from None
        raise

    return ImportReport(
        store=target,
        dataset=dataset_name,
        tr_seconds=float(tr),
        stim_onset=float(stim_onset),
        tr_assign=tr_assign,
        n_words=alignment.n_words,
        n_time_filled=alignment.n_time_filled,
        n_word_missing=alignment.n_word_missing,
        duration_s=duration_s,
        n_tr=n_tr,
        audio_n_tr=audio_n_tr,
        n_words_after_scan=int((stimulus["tr_index"].values >= n_tr).sum()),
        stimulus_sha256=stimulus.attrs["stimulus_sha256"],
        subjects=list(subjects or []),
        n_roi=int(bold.shape[2]) if bold is not None else 0,
        atlas=fmri_ds.attrs["atlas"] if fmri_ds is not None else "",
        tr_mismatch=tr_mismatch,
        trimmed=source.trimmed if source is not None else {},
    )
