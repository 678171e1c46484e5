"""Find the stories, scans, alignments, audio and onsets of a Narratives-style BIDS tree.

A small scanner over file names, not pybids: the layout is fixed and known, pybids
indexes every file of a tree (slow on Narratives' tens of thousands) and is a heavy
dependency for reading a few names. Recognised (``<story>`` is the BIDS ``task``)::

    derivatives/<pipeline>/sub-*/func/sub-*_task-<story>[_run-N]_space-<space>_hemi-L_desc-clean.func.gii
        (and its hemi-R twin), or for a volume space
    derivatives/<pipeline>/sub-*/func/sub-*_task-<story>[_…]_space-<space>[_…]_desc-clean[_bold].nii[.gz]
    derivatives/<pipeline>/sub-*/func/…_space-<space>[_…]_desc-brain_mask.nii[.gz]  (optional)
    stimuli/gentle/<story>/align.json | align.csv, or stimuli/<story>.TextGrid,
        or (LeBel et al.) derivative[s]/TextGrids/<story>.TextGrid
    stimuli/<story>_audio.wav | stimuli/<story>.wav
    sub-*/func/sub-*_task-<story>[_run-N]_events.tsv   (raw BIDS; else task-<story>_events.tsv)
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from featstore.datasets.targets import NATIVE, SPACES, VOLUME_SPACES
from featstore.errors import InputError

_ENTITY = re.compile(r"([A-Za-z]+)-([A-Za-z0-9]+)")
_NIFTI = (".nii.gz", ".nii")


def _entities(name: str) -> dict[str, str]:
    """BIDS ``key-value`` entities of a file name, plus ``suffix`` and ``ext``."""
    stem, dot, _ = name.partition(".")
    ext = name[len(stem) :]
    parts = stem.split("_")
    found = {m.group(1): m.group(2) for p in parts if (m := _ENTITY.fullmatch(p))}
    suffix = parts[-1] if not _ENTITY.fullmatch(parts[-1]) else ""
    return found | {"suffix": suffix, "ext": ext if dot else ""}


def _is_scan(info: dict[str, str], space: str, surface: bool) -> bool:
    if info.get("space") != space or info.get("desc") != "clean" or "sub" not in info:
        return False
    if surface:
        return info["ext"] == ".func.gii" and info.get("hemi") == "L"
    return info["ext"] in _NIFTI and info["suffix"] in ("", "bold")


@dataclass(frozen=True)
class BidsStory:
    """One story of the tree: its scans (subject → file), stimulus files and onset.

    For surfaces a scan is the ``hemi-L`` file (the right one is found by name).
    """

    name: str
    scans: dict[str, Path]
    masks: dict[str, Path]
    align: Path
    audio: Path
    onset: float
    onset_source: str
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BidsTree:
    """What :func:`scan_bids` found: the stories asked for and the subjects of each."""

    root: Path
    pipeline: str
    space: str
    kind: str
    stories: list[BidsStory]
    subjects: list[str]

    @property
    def missing(self) -> list[tuple[str, str]]:
        """(story, subject) pairs without a scan."""
        return [(s.name, sub) for s in self.stories for sub in self.subjects if sub not in s.scans]

    def lines(self) -> list[str]:
        """The stories × subjects table and what is missing, as the CLI prints it."""
        width = max(len(s.name) for s in self.stories) + 2
        out = [
            f"BIDS       {self.root}: derivatives/{self.pipeline}, space {self.space} "
            f"({self.kind}), {len(self.stories)} stories × {len(self.subjects)} subjects",
            "story".ljust(width) + " ".join(self.subjects) + "  onset",
        ]
        for story in self.stories:
            marks = [("x" if sub in story.scans else "-").center(len(sub)) for sub in self.subjects]
            out.append(
                story.name.ljust(width)
                + " ".join(marks)
                + f"  {story.onset:g} s ({story.onset_source})"
            )
        missing = self.missing
        if missing:
            out.append(
                "missing    "
                + ", ".join(f"{story} of {subject}" for story, subject in missing)
                + " (no scan; each story keeps its own subjects)"
            )
        out += [f"note       {s.name}: {note}" for s in self.stories for note in s.notes]
        return out


def _first(candidates: list[Path]) -> Path | None:
    return next((path for path in candidates if path.is_file()), None)


def _alignment(root: Path, story: str) -> Path | None:
    gentle = root / "stimuli" / "gentle" / story
    return _first(
        [
            gentle / "align.json",
            gentle / "align.csv",
            root / "stimuli" / f"{story}.TextGrid",
            root / "derivative" / "TextGrids" / f"{story}.TextGrid",
            root / "derivatives" / "TextGrids" / f"{story}.TextGrid",
        ]
    )


def _audio(root: Path, story: str) -> Path | None:
    return _first([root / "stimuli" / f"{story}_audio.wav", root / "stimuli" / f"{story}.wav"])


def events_onset(path: Path, story: str) -> tuple[float, str]:
    """The story's onset in an ``events.tsv``, and which row gave it.

    The onset of the first row whose ``trial_type`` contains the story's name (any
    case), else of the first row.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"events {path}: cannot read it ({exc})") from None
    if not rows or "onset" not in rows[0]:
        raise InputError(f"events {path}: no rows with an 'onset' column")
    named = [r for r in rows if story.lower() in (r.get("trial_type") or "").lower()]
    row = named[0] if named else rows[0]
    try:
        onset = float(row["onset"])
    except (TypeError, ValueError):
        onset = math.nan
    if not math.isfinite(onset) or onset < 0:
        raise InputError(f"events {path}: onset {row['onset']!r} is not a time >= 0 s")
    which = f"trial_type {row.get('trial_type')!r}" if named else "first row"
    return onset, which


def _onset(root: Path, story: str, subjects: list[str]) -> tuple[float, str]:
    """One onset for the story: every subject's events.tsv must agree."""
    found: dict[str, tuple[float, str, Path]] = {}
    for subject in subjects:
        for path in sorted((root / subject / "func").glob(f"{subject}_task-{story}_*events.tsv")):
            if _entities(path.name).get("task") == story:
                found[subject] = (*events_onset(path, story), path)
                break
    if not found:
        shared = root / f"task-{story}_events.tsv"
        if shared.is_file():
            onset, which = events_onset(shared, story)
            return onset, f"{shared.name}, {which}"
        return 0.0, "no events.tsv: the scan start"
    first = next(iter(found))
    for subject, (onset, _, path) in found.items():
        if abs(onset - found[first][0]) > 1e-3:
            raise InputError(
                f"events {path}: story {story!r} starts at {onset:g} s for {subject} but at "
                f"{found[first][0]:g} s for {first} ({found[first][2]}); one onset per story "
                "is stored: import the subjects separately (`subjects`)"
            )
    return found[first][0], f"events.tsv, {found[first][1]}"


def _derivatives(root: Path, pipeline: str) -> Path:
    if not root.is_dir():
        raise InputError(f"bids={root}: not a directory")
    base = root / "derivatives"
    folder = base / pipeline
    if not folder.is_dir():
        there = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        raise InputError(
            f"pipeline={pipeline}: no {folder}; pipelines there: {', '.join(there) or 'none'}"
        )
    return folder


def _check_names(tasks: list[str], subjects: list[str] | None) -> None:
    if not tasks:
        raise InputError("`tasks`: name at least one story (task) to import")
    for what, names in (("tasks", tasks), ("subjects", subjects or [])):
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise InputError(f"{what}={','.join(names)}: {twice[0]!r} is listed twice")


def _scans(folder: Path, space: str, surface: bool) -> dict[str, dict[str, list[Path]]]:
    """story → subject → scan files (several runs possible), from the file names."""
    scans: dict[str, dict[str, list[Path]]] = {}
    for path in sorted(folder.glob("sub-*/func/sub-*")):
        info = _entities(path.name)
        if "task" in info and _is_scan(info, space, surface):
            scans.setdefault(info["task"], {}).setdefault("sub-" + info["sub"], []).append(path)
    return scans


def _mask_of(scan: Path) -> Path | None:
    info = _entities(scan.name)
    for candidate in sorted(scan.parent.glob(f"sub-{info['sub']}_task-{info['task']}_*")):
        other = _entities(candidate.name)
        if (
            other.get("desc") == "brain"
            and other["suffix"] == "mask"
            and other.get("space") == info["space"]
            and other.get("run") == info.get("run")
            and other["ext"] in _NIFTI
        ):
            return candidate
    return None


def scan_bids(
    root: str | os.PathLike,
    *,
    pipeline: str,
    space: str,
    tasks: list[str],
    subjects: list[str] | None = None,
) -> BidsTree:
    """Find every asked-for story's scans, alignment, audio and onset in a BIDS tree.

    Parameters
    ----------
    root
        The dataset root (holding ``derivatives/``, ``stimuli/`` and ``sub-*/``).
    pipeline
        The derivatives folder, e.g. ``afni-nosmooth``.
    space
        ``fsaverage5``, ``fsaverage6`` or ``fsLR32k`` (GIfTI), ``MNI152NLin2009cAsym``
        or ``MNI152NLin6Asym`` (NIfTI), or ``native`` (GIfTI if any, else NIfTI).
    tasks
        The stories to import, in order.
    subjects
        Only these subjects (default: every subject with a scan).

    Returns
    -------
    BidsTree

    Raises
    ------
    InputError
        An unknown space or pipeline, a story listed twice or without scans, a story
        with scans but no alignment or audio, an unknown subject, disagreeing onsets.

    Examples
    --------
    Only names are read (and events.tsv files), so empty files show the layout:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from featstore.datasets import scan_bids
    >>> root = Path(tempfile.mkdtemp())
    >>> func = root / "derivatives" / "afni" / "sub-01" / "func"
    >>> func.mkdir(parents=True)
    >>> for h in "LR":
    ...     (func / f"sub-01_task-tale_space-fsaverage6_hemi-{h}_desc-clean.func.gii").touch()
    >>> (root / "stimuli" / "gentle" / "tale").mkdir(parents=True)
    >>> (root / "stimuli" / "gentle" / "tale" / "align.json").touch()
    >>> (root / "stimuli" / "tale_audio.wav").touch()
    >>> tree = scan_bids(root, pipeline="afni", space="fsaverage6", tasks=["tale"])
    >>> [(story.name, list(story.scans), story.onset) for story in tree.stories]
    [('tale', ['sub-01'], 0.0)]
    """
    root = Path(root)
    if space not in SPACES:
        raise InputError(f"space={space!r}: unknown space; expected one of {', '.join(SPACES)}")
    _check_names(tasks, subjects)
    folder = _derivatives(root, pipeline)
    surface = space not in VOLUME_SPACES
    scans = _scans(folder, space, surface)
    if space == NATIVE and not scans:  # native: GIfTI if there are any, else NIfTI
        surface = False
        scans = _scans(folder, space, surface)
    kind = "GIfTI" if surface else "NIfTI"
    everyone = sorted({sub for by_subject in scans.values() for sub in by_subject})
    unknown = [s for s in subjects or [] if s not in everyone]
    if unknown:
        raise InputError(
            f"subjects: {unknown[0]!r} has no scan in {folder} for space {space}; "
            f"subjects there: {', '.join(everyone) or 'none'}"
        )
    wanted = sorted(subjects) if subjects else everyone
    stories = []
    for story in tasks:
        align, audio = _alignment(root, story), _audio(root, story)
        by_subject = {s: files for s, files in scans.get(story, {}).items() if s in wanted}
        if not by_subject:
            has = f"an alignment ({align}) but " if align else ""
            raise InputError(
                f"tasks: story {story!r} has {has}no {kind} scan in {folder} for space {space}"
                f"{' of the subjects asked for' if scans.get(story) else ''}; stories there: "
                f"{', '.join(sorted(scans)) or 'none'}"
            )
        if align is None or audio is None:
            what = "word alignment (stimuli/gentle/<story>/align.json, align.csv or a TextGrid)"
            what = what if align is None else f"audio (stimuli/{story}_audio.wav)"
            raise InputError(f"tasks: story {story!r} has fMRI scans but no {what} in {root}")
        notes = [
            f"{s}: {len(files)} runs, {files[0].name} used"
            for s, files in by_subject.items()
            if len(files) > 1
        ]
        chosen = {s: files[0] for s, files in sorted(by_subject.items())}
        masks = {s: m for s, f in chosen.items() if (m := _mask_of(f)) is not None}
        onset, source = _onset(root, story, list(chosen))
        stories.append(BidsStory(story, chosen, masks, align, audio, onset, source, notes))
    return BidsTree(root, pipeline, space, kind, stories, wanted)
