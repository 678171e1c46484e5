"""``featstore dataset import``: a story's alignment, audio and fMRI into a new store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from featstore.cli._common import StoreOption, console, interrupted, new_app
from featstore.cli.eeg_import_cmds import import_eeg

app = new_app(
    "Import datasets (word alignment, story audio, fMRI) into a store.\n\n"
    "Example:\n\n"
    "    featstore dataset import --align align.csv --audio story.wav --fmri bold.npz --tr 1.5 "
    "--store stores/story.zarr"
)


@app.command("import")
def import_(
    align: Annotated[
        Path,
        typer.Option(
            "--align",
            help="Word alignment: Gentle CSV (word, word_lower, onset, offset; header "
            "optional) or align.json, or a Praat TextGrid with a 'words' tier.",
        ),
    ],
    audio: Annotated[
        Path,
        typer.Option(
            "--audio", help="Story audio, WAV, FLAC or Ogg Opus/Vorbis (any rate/channels)."
        ),
    ],
    tr: Annotated[float, typer.Option("--tr", help="Repetition time in seconds, e.g. 1.5.")],
    store: StoreOption,
    fmri: Annotated[
        Path | None,
        typer.Option(
            "--fmri",
            help="ROI fMRI: .npz (one (TR, ROI) array per subject), a directory of "
            "<subject>.npy, or a pickled dict (needs --allow-pickle); or brain files, a path "
            "or quoted glob of .func.gii (hemi-L, right found by name), .dtseries.nii or "
            "4-D .nii(.gz), subjects from sub-XX, averaged by --parcellate.",
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
            help="Brain mask for NIfTI --fmri (default: nilearn's compute_epi_mask per "
            "subject, recorded in the fmri attrs).",
        ),
    ] = None,
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
        bool, typer.Option("--overwrite", help="Replace an existing store at --store.")
    ] = False,
) -> None:
    """Create a store from a story's word alignment and audio, plus its fMRI.

    Everything is checked before anything is written; a failed import leaves nothing.

    Example:

        featstore dataset import --align 21styear_align.csv --audio 21styear_audio.wav --fmri 21styear_all_sub.pkl --allow-pickle --tr 1.5 --store stores/21styear.zarr

        featstore dataset import --align align.json --audio pieman.wav --fmri 'sub-*_task-pieman_space-fsaverage6_hemi-L_desc-clean.func.gii' --parcellate lh.aparc.annot --tr 1.5 --store stores/pieman.zarr
    """
    from featstore.datasets.importer import import_dataset

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
        )
    except KeyboardInterrupt:
        # nothing to resume: the new store is renamed into place only once complete
        raise interrupted(
            "nothing was written (an import is all or nothing): rerun the import"
        ) from None
    for line in report.lines():
        console.print(line, highlight=False, markup=False)


app.command("import-eeg")(import_eeg)


def register(root: typer.Typer) -> None:
    """Add ``featstore dataset …`` to ``root``."""
    root.add_typer(app, name="dataset")
