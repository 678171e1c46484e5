"""``featstore dataset import-eeg --bids ROOT --task STORY``: BIDS-EEG/MEG through mne-bids.

Every subject's (and session's, run's) recording of the task under ``ROOT`` is found with
``mne_bids.find_matching_paths`` (data types ``eeg``, ``meg``, ``ieeg``; one file per
recording, MNE-readable extensions) and read with ``mne_bids.read_raw_bids``, so the
dataset's ``events.tsv`` arrive as annotations (the story onset is found among them, as
for any file), ``channels.tsv`` marks bad channels and the sidecars set channel types.
The rest is :func:`featstore.datasets.eeg.import_eeg`: one recording per subject, same
checks, nothing written if any fails.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from featstore.datasets.eeg import EegImportReport, import_eeg
from featstore.errors import InputError
from featstore.store.groups import StorePath

#: Data types and file extensions looked for (a BrainVision recording is found by its .vhdr).
BIDS_DATATYPES = ("eeg", "meg", "ieeg")
BIDS_EXTENSIONS = (".vhdr", ".edf", ".bdf", ".set", ".fif")


def bids_recordings(root: str | os.PathLike, task: str) -> list[Path]:
    """Files of every recording of ``task`` under the BIDS ``root``, sorted.

    Raises :class:`InputError` when ``root`` is no directory or holds no recording of the task.
    """
    from mne_bids import find_matching_paths

    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError(f"bids={root}: not a directory; expected a BIDS dataset root")
    found = find_matching_paths(
        root, tasks=task, datatypes=list(BIDS_DATATYPES), extensions=list(BIDS_EXTENSIONS)
    )
    paths = sorted({Path(p.fpath) for p in found if p.suffix in BIDS_DATATYPES})
    if not paths:
        raise InputError(
            f"bids={root}: no EEG/MEG recording of task {task!r} (looked for "
            f"sub-*/[ses-*/]{{{','.join(BIDS_DATATYPES)}}}/*_task-{task}_*{{{','.join(BIDS_EXTENSIONS)}}})"
        )
    return paths


def read_bids_raw(path: Path) -> Any:
    """One BIDS recording read by ``mne_bids.read_raw_bids`` (sidecars applied), preloaded."""
    from mne_bids import get_bids_path_from_fname, read_raw_bids

    try:
        raw = read_raw_bids(get_bids_path_from_fname(path), verbose="error")
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"bids={path}: mne-bids cannot read it ({first})") from None
    return raw.load_data(verbose="error")


def import_bids_eeg(
    store: StorePath, root: str | os.PathLike, task: str, **options: Any
) -> EegImportReport:
    """Import every recording of ``task`` under the BIDS ``root`` as the store's ``eeg`` group.

    ``options`` are those of :func:`~featstore.datasets.eeg.import_eeg` (onset event,
    filter, resampling, montage, overwrite).
    Example: ``import_bids_eeg("s.zarr", "ds004408", "s1", onset_event="story_onset")``.
    """
    paths = bids_recordings(root, task)
    return import_eeg(store, [str(p) for p in paths], reader=read_bids_raw, **options)
