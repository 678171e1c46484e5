"""``featstore dataset import-eeg``: continuous EEG/MEG (any format MNE reads) into a store."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from featstore.cli._common import StoreOption, StoryOption, console, one_story
from featstore.cli._option_groups import Flag, option_group

#: How ``featstore dataset import-eeg`` reads the recordings: ``import_eeg``'s keyword
#: arguments of these names (``--resample`` is its ``sfreq``), in ``--help`` order.
_RECORDING_OPTIONS = (
    Flag(
        "onset_event",
        str,
        "Annotation (or stim-channel event code) marking the story onset.",
        "story_onset",
    ),
    Flag("onset", float, "Story onset in seconds from each file's first sample (wins)."),
    Flag("l_freq", float, "High-pass edge in Hz (MNE raw.filter)."),
    Flag("h_freq", float, "Low-pass edge in Hz (MNE raw.filter)."),
    Flag("resample", float, "Resample to this rate in Hz after filtering."),
    Flag("tmin", float, "Seconds before the story onset to keep (<= 0).", -1.0),
    Flag("montage", str, "MNE standard montage for files without positions, e.g. standard_1020."),
    Flag("overwrite", bool, "Replace an existing eeg group.", False),
)


def _import_options(resample: float | None = None, **options: Any) -> dict[str, Any]:
    """``import_eeg``'s keyword arguments from :data:`_RECORDING_OPTIONS`."""
    return {**options, "sfreq": resample}


@option_group("options", _RECORDING_OPTIONS, build=_import_options)
def import_eeg(
    store: StoreOption,
    story: StoryOption = None,
    eeg: Annotated[
        list[str] | None,
        typer.Option(
            "--eeg",
            help="EEG/MEG file(s) or glob(s), one file per subject, any format MNE reads "
            "(BrainVision .vhdr, EDF/BDF, FIF, EEGLAB .set); 'sub-XX' in a name names the "
            "subject. Repeat for several patterns.",
        ),
    ] = None,
    bids: Annotated[
        str | None,
        typer.Option(
            "--bids",
            help="BIDS dataset root instead of --eeg: every subject's recording of --task, "
            "read with mne-bids (events.tsv as annotations).",
        ),
    ] = None,
    task: Annotated[
        str | None, typer.Option("--task", help="With --bids: the BIDS task of the story.")
    ] = None,
    *,
    options: dict,
) -> None:
    """Add every subject's continuous EEG/MEG of the story as the store's `eeg` group.

    The store must hold the story (`featstore dataset import`; in a store of stories,
    `dataset import --story NAME`, then `--story NAME` here); the EEG is cut to the
    story's span, time 0 at the story onset. Nothing is written if any check fails.

    Examples:

        featstore dataset import-eeg --store stores/eeg.zarr --eeg 'sub-*_task-s1_eeg.vhdr' --onset-event 'Stimulus/S  1' --l-freq 0.5 --h-freq 30 --resample 128

        featstore dataset import-eeg --store stores/eeg.zarr --bids data/ds-eeg --task s1 --onset-event story_onset

        featstore dataset import-eeg --store stores/stories.zarr --story s2 --eeg 'sub-*_task-s2_eeg.fif'
    """
    from featstore.datasets.eeg import import_eeg as run_import
    from featstore.datasets.eeg_bids import import_bids_eeg
    from featstore.errors import InputError

    if (eeg is None) == (bids is None) or (bids is None) != (task is None):
        raise InputError("give --eeg FILES, or --bids ROOT with --task NAME")
    report = (import_bids_eeg if bids else run_import)(
        one_story(store, story),
        *((bids, task) if bids else (eeg,)),
        **options,
    )
    for line in report.lines():
        console.print(line, highlight=False, markup=False)
