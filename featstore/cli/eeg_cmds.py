"""``evaluate trf`` and ``evaluate similarity-eeg``: EEG/MEG analyses of word features.

Both read the store's ``eeg`` group (``featstore dataset import-eeg``) and one feature
set's per-word states, write one group ``results/<run>`` and print a short summary.
"""

from __future__ import annotations

from typing import Annotated

import typer

from featstore.cli._common import StoreOption, console

ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Feature set with per-word states: NAME[:WINDOW][@LAYERS], e.g. minilm:ctx32@2,4.",
    ),
]
RunOption = Annotated[
    str | None,
    typer.Option("--run", help="Id of the results group. [default: <analysis>-YYYYmmdd-HHMMSS]"),
]
OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace an existing results group of that id.")
]


def trf(
    store: StoreOption,
    model: ModelOption,
    lags: Annotated[
        str, typer.Option("--lags", help="Lags in ms, START:STOP (MNE's tmin:tmax).")
    ] = "-100:600",
    alphas: Annotated[
        str,
        typer.Option("--alphas", help="Ridge alphas: LOW:HIGH:COUNT (log-spaced) or a list."),
    ] = "1e-2:1e6:9",
    pca: Annotated[
        int,
        typer.Option("--pca", help="PCA components of the word vectors (0: none, z-scored)."),
    ] = 10,
    test_frac: Annotated[
        float, typer.Option("--test-frac", help="Held-out fraction at the end of the story.")
    ] = 0.2,
    cv: Annotated[int, typer.Option("--cv", help="Contiguous CV folds for alpha.")] = 5,
    run: RunOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Temporal response functions: word impulses of each layer → every EEG channel.

    Alpha per channel by CV over contiguous blocks of the train part (a gap of the
    longest lag around each block), z-scoring and PCA fitted on the train part only;
    r on the held-out end of the story. Writes r, alpha (layer, subject, channel) and the
    lag profile (layer, subject, lag, channel).

    Example:

        evaluate trf --store stores/eeg.zarr --model minilm:ctx32 --lags -100:600
    """
    from featstore.evaluate.eeg.epochs import parse_ms_range
    from featstore.evaluate.eeg.trf_run import TRFSettings, alphas_from_text, run_trf, trf_summary

    settings = TRFSettings(
        lags_ms=parse_ms_range(lags, "--lags"),
        alphas=alphas_from_text(alphas),
        pca=pca or None,
        test_frac=test_frac,
        cv=cv,
    )
    run_id = run_trf(store, model, settings, run_id=run, overwrite=overwrite)
    console.print(f"results/{run_id}", highlight=False, markup=False)
    for line in trf_summary(store, run_id):
        console.print(line, highlight=False, markup=False)


def register(root: typer.Typer) -> None:
    """Add ``evaluate trf`` and ``evaluate similarity-eeg`` to ``root``."""
    root.command("trf")(trf)
