"""``featstore dataset import``: alignment + audio (+ fMRI) → a new store, all or nothing.

Every input is read and checked before anything is written. The store is then built
in a hidden sibling directory and renamed into place, so a failed import leaves
nothing behind and an existing store is replaced only with ``overwrite=True`` (and
stays untouched if the import fails).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import xarray as xr

from featstore._docs import fill_doc
from featstore.datasets._publish import (
    check_new_stories,
    check_target,
    make_parent,
    new_staging,
    publish,
    removed_on_failure,
    target_path,
)
from featstore.datasets.alignment_formats import read_word_alignment
from featstore.datasets.atlas import roi_names_from_file
from featstore.datasets.audio import audio_file_info, read_audio
from featstore.datasets.brain import brain_files, brain_format, read_brain_fmri
from featstore.datasets.fmri import read_fmri
from featstore.datasets.fmri_group import fmri_dataset, fmri_encoding
from featstore.datasets.import_report import ImportReport
from featstore.datasets.stimulus_group import stimulus_dataset, stimulus_encoding
from featstore.datasets.targets import (
    SPACES,
    TargetSource,
    check_space,
    scan_targets,
    space_from_name,
    target_dataset,
    target_encoding,
)
from featstore.datasets.timeline import audio_tr_count, check_timing
from featstore.errors import InputError
from featstore.store import _schema as S
from featstore.store.groups import StorePath, create_store, open_root, write_group
from featstore.store.stories import check_story_name, ensure_collection

__all__ = ["ImportReport", "import_dataset"]

# A word may start this long after the last audio sample (encoder frame rounding).
_AUDIO_END_SLACK_S = 0.05


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


def read_targets(
    fmri: str | os.PathLike,
    *,
    space: str | None,
    mask: str | os.PathLike | None,
    trim_to_shortest: bool,
) -> TargetSource:
    """Scan GIfTI / CIFTI / NIfTI ``fmri`` (a path or glob) as vertex or voxel targets.

    ``space`` defaults to the BIDS ``space-<label>`` of the first file's name (CIFTI:
    ``fsLR32k``); see :func:`featstore.datasets.targets.scan_targets`.
    """
    files, kind = brain_files(fmri)
    if space is None:
        named = space_from_name(files[0])
        space = "fsLR32k" if kind == "cifti" else named
        if space not in SPACES:
            raise InputError(
                f"fmri {files[0]}: no known space in the file name; pass `space` "
                f"(one of {', '.join(SPACES)})"
            )
    return scan_targets(
        files,
        kind=kind,
        space=check_space(space, kind),
        pattern=os.fspath(fmri),
        mask=Path(mask) if mask is not None else None,
        trim_to_shortest=trim_to_shortest,
    )


def _fmri_group(fmri, targets: TargetSource | None, options: dict[str, Any]) -> tuple:
    """(fmri dataset or None, its encoding, subjects trimmed, TargetSource or None)."""
    brain = fmri is not None and brain_format(fmri) is not None
    space = options.pop("space")
    if targets is None and brain and options["parcellate"] is None:
        if options["roi_names"] is not None:
            raise InputError("`roi_names` names ROIs; vertex and voxel targets have none")
        targets = read_targets(
            fmri, space=space, mask=options["mask"], trim_to_shortest=options["trim_to_shortest"]
        )
    if targets is not None:
        ds = target_dataset(targets)
        return ds, target_encoding(ds), targets.trimmed, targets
    if space is not None and not brain:
        raise InputError(f"space={space}: applies to GIfTI, CIFTI or NIfTI `fmri` files")
    bold, subjects, source, names, hemispheres = _read_any_fmri(fmri, brain=brain, **options)
    if bold is None:
        return None, None, {}, None
    extra = (source.attrs if brain else {}) | ({"space": space} if space else {})
    ds = fmri_dataset(
        bold,
        subjects,
        roi_names=names,
        hemispheres=hemispheres,
        atlas=source.atlas if brain else None,
        source=source.describe(),
        extra_attrs=extra | ({"lengths_as_read": source.lengths} if source.trimmed else {}),
    )
    return ds, fmri_encoding(ds), source.trimmed, None


@dataclass(frozen=True)
class StoryData:
    """A story read and checked, not yet written: its groups and its report's fields."""

    stimulus: xr.Dataset
    fmri: xr.Dataset | None
    fmri_encoding: dict | None
    n_tr: int
    fields: dict[str, Any]


def prepare_story(
    *,
    align: str | os.PathLike,
    audio: str | os.PathLike,
    fmri: str | os.PathLike | None = None,
    targets: TargetSource | None = None,
    tr: float,
    stim_onset: float = 0.0,
    tr_assign: str = "ceil",
    tr_tolerance: float = 2.0,
    **fmri_options: Any,
) -> StoryData:
    """Read and check one story's alignment, audio and fMRI; write nothing.

    ``targets`` (already scanned vertex/voxel fMRI) replaces ``fmri``; ``fmri_options``
    are :func:`import_dataset`'s ``parcellate``, ``mask``, ``space``, ``allow_pickle``,
    ``roi_names`` and ``trim_to_shortest``.
    """
    where = fmri if targets is None else targets.pattern
    alignment = read_word_alignment(align)
    fmri_ds, encoding, trimmed, targets = _fmri_group(fmri, targets, fmri_options)
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
    if fmri_ds is not None:
        n_fmri = int(fmri_ds.sizes[S.TR_DIM])
        tr_mismatch = n_fmri - audio_n_tr
        if abs(tr_mismatch) > tr_tolerance:
            raise InputError(
                f"fmri {where} has {n_fmri} TRs but audio {audio} ({duration_s:.2f} s, "
                f"starting {stim_onset:g} s into the scan) spans {audio_n_tr} TRs of {tr:g} s; "
                f"the difference {tr_mismatch:+d} is over tr_tolerance={tr_tolerance:g}"
            )
    n_tr = int(fmri_ds.sizes[S.TR_DIM]) if fmri_ds is not None else audio_n_tr
    stimulus = stimulus_dataset(
        alignment,
        samples,
        audio_sha256=audio_sha256,
        tr=tr,
        stim_onset=stim_onset,
        tr_assign=tr_assign,
        sources={"align": str(align), "audio": str(audio), "audio_file": audio_file_info(audio)},
    )
    attrs = fmri_ds.attrs if fmri_ds is not None else {}
    fields = {
        "tr_seconds": float(tr),
        "stim_onset": float(stim_onset),
        "tr_assign": tr_assign,
        "n_words": alignment.n_words,
        "n_time_filled": alignment.n_time_filled,
        "n_word_missing": alignment.n_word_missing,
        "duration_s": duration_s,
        "n_tr": n_tr,
        "audio_n_tr": audio_n_tr,
        "n_words_after_scan": int((stimulus["tr_index"].values >= n_tr).sum()),
        "stimulus_sha256": stimulus.attrs["stimulus_sha256"],
        "subjects": [str(s) for s in fmri_ds[S.SUBJECT_DIM].values] if attrs else [],
        "n_roi": int(fmri_ds.sizes[S.ROI_DIM]) if attrs else 0,
        "atlas": attrs.get("atlas", ""),
        "tr_mismatch": tr_mismatch,
        "trimmed": trimmed,
        "target_kind": attrs.get("target_kind", "roi"),
        "space": attrs.get("space", ""),
        "dropped_targets": int(attrs.get("dropped_targets", 0)),
        "notes": _notes(targets),
    }
    return StoryData(stimulus, fmri_ds, encoding, n_tr, fields)


def _notes(targets: TargetSource | None) -> list[str]:
    if targets is None or not targets.attrs.get("dropped_subcortical"):
        return []
    return [
        f"{targets.attrs['dropped_subcortical']} subcortical grayordinates of the CIFTI "
        "files dropped (only the cortex surface vertices are kept)"
    ]


def write_story(staging: Path, data: StoryData, *, dataset: str, story: str | None = None) -> None:
    """Write a prepared story as a one-story store at ``staging`` (to be published)."""
    extra = {S.STORY_ATTR: story} if story else None
    create_store(
        staging,
        dataset=dataset,
        tr_seconds=data.fields["tr_seconds"],
        n_tr=data.n_tr,
        extra_attrs=extra,
    )
    write_group(staging, S.STIMULUS, data.stimulus, encoding=stimulus_encoding(data.stimulus))
    if data.fmri is not None:
        # one subject read at a time: vertex data are too large to hold every subject
        with dask.config.set(scheduler="synchronous"):
            write_group(staging, S.FMRI, data.fmri, encoding=data.fmri_encoding)


@fill_doc
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
    story: str | None = None,
    space: str | None = None,
) -> ImportReport:
    """Import a story (alignment + audio) and optionally its fMRI into a new store.

    With ``story``, the story is added to a store of stories instead (created if
    absent; see :mod:`featstore.store.stories`).

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
        files, a path or glob (``'sub-*_hemi-L.func.gii'``): vertex or voxel targets,
        or averaged into the parcels of ``parcellate``
        (:func:`featstore.datasets.brain.read_brain_fmri`).
        Without it, ``n_tr`` is the TR count the audio spans.
    parcellate
        Atlas for GIfTI/CIFTI/NIfTI ``fmri``: ``hcp-mmp``, a ``.label.gii``, a
        FreeSurfer ``.annot`` or a NIfTI label image.
    mask
        Brain mask for NIfTI ``fmri``; without it nilearn computes one (per subject
        when parcellating, from the first subject for voxel targets).
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
        directory is ever replaced); with ``story``, replace only that story.
    story
        Add the story under this name to the store of stories at ``store``. A one-story
        store is refused (upgrade it first), as is a story already there without
        ``overwrite``.
    space
        Space of vertex or voxel ``fmri``: ``fsaverage5``, ``fsaverage6``, ``fsLR32k``,
        ``MNI152NLin2009cAsym``, ``MNI152NLin6Asym`` or ``native`` (default: the BIDS
        ``space-`` of the file names; ``fsLR32k`` for CIFTI).

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
    %(example_import)s
    >>> report.dataset, round(report.duration_s)
    ('demo', 308)
    """
    check_timing(tr, stim_onset, tr_assign)
    if not tr_tolerance >= 0:
        raise InputError(f"tr_tolerance={tr_tolerance!r}: expected a number of TRs >= 0")
    collection = target = target_path(store)
    if story is None:
        check_target(target, overwrite)
    else:
        target = collection / S.STORIES / check_story_name(story)
        check_new_stories(collection, [story], overwrite, tr)
    data = prepare_story(
        align=align,
        audio=audio,
        fmri=fmri,
        tr=tr,
        stim_onset=stim_onset,
        tr_assign=tr_assign,
        tr_tolerance=tr_tolerance,
        parcellate=parcellate,
        mask=mask,
        space=space,
        allow_pickle=allow_pickle,
        roi_names=roi_names,
        trim_to_shortest=trim_to_shortest,
    )
    dataset_name = dataset or collection.name.removesuffix(".zarr")
    make_parent(collection)
    created = collection if story is not None and not collection.exists() else None
    if story is not None:
        handle = ensure_collection(collection, dataset=dataset_name, tr_seconds=tr)
        dataset_name = str(open_root(handle).attrs.get("dataset") or dataset_name)
    staging = new_staging(target, None if story is None else collection)
    with removed_on_failure([staging], created, target, "the new store"):
        write_story(staging, data, dataset=dataset_name, story=story)
        publish(staging, target, overwrite, story and f"story {story!r} of {collection}")
    return ImportReport(store=target, dataset=dataset_name, story=story or "", **data.fields)
