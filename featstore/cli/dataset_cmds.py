"""``featstore dataset import``: a story's alignment, audio and fMRI into a new store."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from featstore.cli._common import StoreOption, console, interrupted, new_app
from featstore.cli._option_groups import Flag, option_group
from featstore.cli.eeg_import_cmds import import_eeg
from featstore.errors import FeatstoreError

app = new_app(
    "Import datasets (word alignment, story audio, fMRI) into a store.\n\n"
    "Example:\n\n"
    "    featstore dataset import --align align.csv --audio story.wav --fmri bold.npz --tr 1.5 "
    "--store stores/story.zarr"
)


#: ``--bids`` and the options that go with it: a BIDS tree's stories (``_import_bids``).
_BIDS_OPTIONS = (
    Flag(
        "bids",
        Path,
        "A Narratives-style BIDS root: import every --tasks story of its "
        "derivatives/<--pipeline> into the store of stories --store.",
    ),
    Flag("pipeline", str, "BIDS derivatives pipeline, e.g. afni-nosmooth."),
    Flag("tasks", str, "BIDS stories (tasks) to import, comma-separated."),
    Flag("subjects", str, "BIDS subjects, comma-separated (default: every subject)."),
)
#: ``--eeg`` and the options that go with it: the story's EEG/MEG (``_import_story_eeg``).
_EEG_OPTIONS = (
    Flag(
        "eeg",
        list[str],
        "Then add the story's EEG/MEG (any format MNE reads; file or quoted glob, one "
        "file per subject, repeatable), as `featstore dataset import-eeg` does (its other "
        "options are there).",
    ),
    Flag(
        "onset_event",
        str,
        "With --eeg: the annotation or event marking the story onset (default story_onset).",
    ),
    Flag("onset", float, "With --eeg: story onset in seconds from the first sample."),
)


@app.command("import")
@option_group("bids_options", _BIDS_OPTIONS, build=dict)
@option_group("eeg_options", _EEG_OPTIONS, build=dict)
def import_(
    store: StoreOption,
    tr: Annotated[
        float | None,
        typer.Option(
            "--tr",
            help="Repetition time in seconds, e.g. 1.5. [default: the store of stories' TR; "
            "1 s for a story with --eeg and no --fmri]",
        ),
    ] = None,
    align: Annotated[
        Path | None,
        typer.Option(
            "--align",
            help="Word alignment: Gentle CSV (word, word_lower, onset, offset; header "
            "optional) or align.json, or a Praat TextGrid with a 'words' tier.",
        ),
    ] = None,
    audio: Annotated[
        Path | None,
        typer.Option(
            "--audio", help="Story audio, WAV, FLAC or Ogg Opus/Vorbis (any rate/channels)."
        ),
    ] = None,
    fmri: Annotated[
        Path | None,
        typer.Option(
            "--fmri",
            help="ROI fMRI: .npz (one (TR, ROI) array per subject), a directory of "
            "<subject>.npy, or a pickled dict (needs --allow-pickle); or brain files, a path "
            "or quoted glob of .func.gii (hemi-L, right found by name), .dtseries.nii or "
            "4-D .nii(.gz), subjects from sub-XX: vertex/voxel targets, or parcels with "
            "--parcellate.",
        ),
    ] = None,
    parcellate: Annotated[
        str | None,
        typer.Option(
            "--parcellate",
            help="Atlas for GIfTI/CIFTI/NIfTI --fmri: hcp-mmp (fs_LR 32k), a .label.gii or "
            "lh.*.annot (both hemispheres, paired by name), or a NIfTI label image.",
        ),
    ] = None,
    mask: Annotated[
        Path | None,
        typer.Option(
            "--mask",
            help="Brain mask for NIfTI --fmri (default: nilearn's compute_epi_mask, of each "
            "subject with --parcellate, of the first subject for voxel targets; recorded).",
        ),
    ] = None,
    space: Annotated[
        str | None,
        typer.Option(
            "--space",
            help="Space of vertex/voxel --fmri: fsaverage5, fsaverage6, fsLR32k, "
            "MNI152NLin2009cAsym, MNI152NLin6Asym or native (default: the files' space-).",
        ),
    ] = None,
    story: Annotated[
        str | None,
        typer.Option(
            "--story",
            help="Add the story under this name to the store of stories --store "
            "(created if absent); --overwrite then replaces only this story.",
        ),
    ] = None,
    *,
    bids_options: dict,
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", help="Dataset name (default: the store's name)."),
    ] = None,
    stim_onset: Annotated[
        float,
        typer.Option("--stim-onset", help="Seconds of scan before the story starts."),
    ] = 0.0,
    tr_assign: Annotated[
        str,
        typer.Option(
            "--tr-assign",
            help="Word → TR rule: ceil((onset + stim_onset) / TR) (default, the reference "
            "study's) or floor.",
        ),
    ] = "ceil",
    allow_pickle: Annotated[
        bool,
        typer.Option(
            "--allow-pickle",
            help="Read a pickled --fmri file. Unpickling runs code: only for files you trust.",
        ),
    ] = False,
    roi_names: Annotated[
        Path | None,
        typer.Option(
            "--roi-names",
            help="File with one ROI name per line (optional L_/R_ prefix); default for 360 "
            "ROIs: HCP-MMP1.0.",
        ),
    ] = None,
    trim_to_shortest: Annotated[
        bool,
        typer.Option(
            "--trim-to-shortest", help="Cut subjects of different lengths to the shortest."
        ),
    ] = False,
    tr_tolerance: Annotated[
        float,
        typer.Option(
            "--tr-tolerance",
            help="Largest allowed difference (TRs) between the fMRI TR count and the audio.",
        ),
    ] = 2.0,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace an existing store at --store (with --story: that story)."
        ),
    ] = False,
    eeg_options: dict,
) -> None:
    """Create a store from a story's word alignment and audio, plus its fMRI; or add the
    story to a store of stories (--story); or import the stories of a BIDS tree (--bids).

    Everything is checked before anything is written; a failed import leaves nothing.

    Example:

        featstore dataset import --align 21styear_align.csv --audio 21styear_audio.wav --fmri 21styear_all_sub.pkl --allow-pickle --tr 1.5 --store stores/21styear.zarr

        featstore dataset import --align align.json --audio pieman.wav --fmri 'sub-*_task-pieman_space-fsaverage6_hemi-L_desc-clean.func.gii' --parcellate lh.aparc.annot --tr 1.5 --store stores/pieman.zarr

        featstore dataset import --story slumlord --align slumlord.TextGrid --audio slumlord.wav --fmri 'sub-*_task-slumlord_hemi-L.func.gii' --space fsaverage6 --tr 1.5 --store stores/narr.zarr

        featstore dataset import --bids /data/narratives --pipeline afni-nosmooth --space fsaverage6 --tasks pieman,tunnel,lucy --tr 1.5 --store stores/narr.zarr

        featstore dataset import --store stores/eeg.zarr --story s1 --align s1_align.csv --audio s1.wav --eeg 'sub-*_task-s1_eeg.vhdr' --onset-event 'Stimulus/S  1' --tr 1.0
    """
    from featstore.datasets.importer import import_dataset

    eeg = eeg_options["eeg"]
    no_fmri = fmri is None and bids_options["bids"] is None
    tr = _repetition_time(tr, store, eeg_only=eeg is not None and no_fmri)
    if bids_options["bids"] is not None:
        _import_bids(
            **bids_options,
            space=space,
            tr=tr,
            store=store,
            mask=mask,
            tr_assign=tr_assign,
            tr_tolerance=tr_tolerance,
            trim_to_shortest=trim_to_shortest,
            overwrite=overwrite,
            others={"--align": align, "--audio": audio, "--fmri": fmri, "--story": story,
                    "--eeg": eeg},
        )  # fmt: skip
        return
    if eeg is None and any(value is not None for value in eeg_options.values()):
        raise typer.BadParameter("--onset-event and --onset go with --eeg", param_hint="--eeg")
    if align is None or audio is None:
        raise typer.BadParameter("give --align and --audio (or --bids)", param_hint="--align")
    try:
        report = import_dataset(
            store,
            align=align,
            audio=audio,
            fmri=fmri,
            parcellate=parcellate,
            mask=mask,
            tr=tr,
            dataset=dataset,
            stim_onset=stim_onset,
            tr_assign=tr_assign,
            allow_pickle=allow_pickle,
            roi_names=roi_names,
            trim_to_shortest=trim_to_shortest,
            tr_tolerance=tr_tolerance,
            overwrite=overwrite,
            story=story,
            space=space,
        )
    except KeyboardInterrupt:
        # nothing to resume: the new store is renamed into place only once complete
        raise interrupted(
            "nothing was written (an import is all or nothing): rerun the import"
        ) from None
    for line in report.lines():
        console.print(line, highlight=False, markup=False)
    if eeg is not None:
        _import_story_eeg(store, story, **eeg_options)


def _repetition_time(tr: float | None, store: Path, *, eeg_only: bool) -> float:
    """``--tr``, else the TR of the store of stories at ``store``, else 1 s for a story
    with EEG/MEG and no fMRI (its TR only sets the grid of TR-level features)."""
    from featstore.store.groups import store_tr_seconds
    from featstore.store.stories import is_collection

    if tr is not None:
        return tr
    if store.exists():
        with contextlib.suppress(FeatstoreError):
            if is_collection(store):
                return store_tr_seconds(store)
    if eeg_only:
        console.print("TR         1 s (no fMRI: --tr only sets the grid of TR-level features)")
        return 1.0
    raise typer.BadParameter("give the repetition time, e.g. --tr 1.5", param_hint="--tr")


def _import_story_eeg(store: Path, story: str | None, eeg: list[str], **onsets) -> None:
    """``--eeg``: the EEG of the story just imported (kept if the EEG import fails)."""
    from featstore.cli._common import one_story
    from featstore.datasets.eeg import import_eeg

    try:
        given = {name: value for name, value in onsets.items() if value is not None}
        report = import_eeg(one_story(store, story), eeg, **given)
    except FeatstoreError as error:
        where = f" --story {story}" if story else ""
        raise type(error)(
            f"{error} (the story was imported without EEG: add it with `featstore dataset "
            f"import-eeg --store {store}{where} --eeg ...`)"
        ) from error
    for line in report.lines():
        console.print(line, highlight=False, markup=False)


def _import_bids(bids: Path, *, others: dict, tasks: str | None, subjects: str | None, **options):
    """``--bids``: scan the tree, print what was found, import every story asked for."""
    from featstore.datasets.bids_import import import_bids

    given = [flag for flag, value in others.items() if value is not None]
    if given:
        raise typer.BadParameter(f"{given[0]} does not go with --bids", param_hint="--bids")
    split = [name.strip() for name in (tasks or "").split(",") if name.strip()]
    try:
        import_bids(
            bids,
            tasks=split,
            subjects=[s.strip() for s in subjects.split(",") if s.strip()] if subjects else None,
            echo=lambda line: console.print(line, highlight=False, markup=False),
            **options,
        )
    except KeyboardInterrupt:
        raise interrupted(
            "no story was published (a BIDS import is all or nothing): rerun the import"
        ) from None


app.command("import-eeg")(import_eeg)


def register(root: typer.Typer) -> None:
    """Add ``featstore dataset …`` to ``root``."""
    root.add_typer(app, name="dataset")
