"""``evaluate trf`` and ``evaluate similarity-eeg``: EEG/MEG analyses of word features.

Both read the store's ``eeg`` group (``featstore dataset import-eeg``) and one feature
set's per-word states, write one group ``results/<run>`` and print a short summary. In
a store of stories they work on one story (``--story``): its groups, its results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from featstore.cli._common import StoreOption, StoryOption, console, one_story, story_prefix
from featstore.cli._encoding_options import TestStoriesOption
from featstore.cli._options import OverwriteResultsOption, ResultsRunOption
from featstore.errors import InputError

ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Feature set with per-word states: NAME[:WINDOW][@LAYERS], e.g. minilm:ctx32@2,4.",
    ),
]


def trf(
    store: StoreOption,
    story: StoryOption = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Word impulses of a feature set with per-word states: NAME[:WINDOW][@LAYERS], "
            "e.g. minilm:ctx32@2,4.",
        ),
    ] = None,
    continuous: Annotated[
        str | None,
        typer.Option(
            "--continuous",
            help="A continuous predictor instead of --model: `envelope` (acoustic envelope "
            "at the EEG rate, from the stored audio) or a feature set NAME[:WINDOW][@LAYERS] "
            "whose TR-rate states are interpolated onto the EEG samples.",
        ),
    ] = None,
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
    cv: Annotated[
        str,
        typer.Option(
            "--cv",
            help="Contiguous CV folds for alpha, or 'stories' (a store of stories): predict "
            "each story once from the others.",
        ),
    ] = "5",
    test_stories: TestStoriesOption = None,
    run: ResultsRunOption = None,
    overwrite: OverwriteResultsOption = False,
) -> None:
    """Temporal response functions: word impulses of each layer (or a continuous series) → every EEG channel.

    Alpha per channel by CV over contiguous blocks of the train part (a gap of the
    longest lag around each block), z-scoring and PCA fitted on the train part only;
    r on the held-out end of the story. Writes r, alpha (layer, subject, channel) and the
    lag profile (layer, subject, lag, channel).

    On a store of stories with EEG in two or more stories, `--test-stories` trains on the
    other stories and scores the listed ones, `--cv stories` predicts each story once from
    the others: lags never cross a story start, PCA and z-scoring are fitted on the
    training stories, alpha by leave-one-story-out CV (contiguous folds when one story
    trains); results go to `results/<run>` at the store's root, with r per story
    (r_story) besides the pooled r.

    Example:

        evaluate trf --store stores/eeg.zarr --model minilm:ctx32 --lags -100:600

        evaluate trf --store stores/eeg.zarr --continuous envelope --lags -100:400

        evaluate trf --store stores/stories.zarr --story s2 --model minilm:ctx32

        evaluate trf --store stores/stories.zarr --model minilm:ctx32 --test-stories s3

        evaluate trf --store stores/stories.zarr --continuous envelope --cv stories
    """
    from featstore.evaluate.eeg.epochs import parse_ms_range
    from featstore.evaluate.eeg.trf_run import TRFSettings, alphas_from_text, run_trf, trf_summary

    across = test_stories is not None or cv.strip().lower() == "stories"
    settings = TRFSettings(
        lags_ms=parse_ms_range(lags, "--lags"),
        alphas=alphas_from_text(alphas),
        pca=pca or None,
        test_frac=test_frac,
        cv=5 if cv.strip().lower() == "stories" else _folds(cv),
    )
    if across:
        _trf_across_stories(store, story, model, continuous, settings, test_stories, run, overwrite)
        return
    target = one_story(store, story)
    run_id = run_trf(
        target, model, settings, continuous=continuous, run_id=run, overwrite=overwrite
    )
    _print_results(store, target, run_id, trf_summary(target, run_id))


def _folds(cv: str) -> int:
    try:
        return int(cv)
    except ValueError:
        raise InputError(f"--cv {cv!r}: expected a number of folds or 'stories'") from None


def _trf_across_stories(
    store: Path,
    story: str | None,
    model: str | None,
    continuous: str | None,
    settings: Any,
    test_stories: str | None,
    run: str | None,
    overwrite: bool,
) -> None:
    """``--test-stories`` / ``--cv stories``: fit across stories, print the root's run."""
    from featstore.evaluate.eeg.trf_run import trf_summary
    from featstore.evaluate.eeg.trf_stories import run_trf_stories, trf_stories_summary

    if story is not None:
        raise InputError(
            "--story evaluates one story; --test-stories and --cv stories use every story"
        )
    tests = [t.strip() for t in test_stories.split(",") if t.strip()] if test_stories else None
    run_id = run_trf_stories(
        store,
        model,
        settings,
        continuous=continuous,
        test_stories=tests,
        run_id=run,
        overwrite=overwrite,
    )
    summary = trf_stories_summary(store, run_id) + trf_summary(store, run_id)
    _print_results(store, store, run_id, summary)


def _print_results(store: Path, target: Any, run_id: str, summary: list[str]) -> None:
    """The results group, named from the store's root (``stories/<story>/results/<run>``),
    then the summary lines."""
    console.print(f"{story_prefix(store, target)}results/{run_id}", highlight=False, markup=False)
    for line in summary:
        console.print(line, highlight=False, markup=False)


def similarity_eeg(
    store: StoreOption,
    model: ModelOption,
    story: StoryOption = None,
    epochs: Annotated[
        str, typer.Option("--epochs", help="Epoch around each word onset, START:STOP in ms.")
    ] = "-100:800",
    baseline: Annotated[
        str, typer.Option("--baseline", help="Baseline START:STOP in ms, or 'none'.")
    ] = "-100:0",
    reject: Annotated[
        float | None,
        typer.Option("--reject", help="Drop epochs with a channel's peak-to-peak above this (V)."),
    ] = None,
    window: Annotated[float, typer.Option("--window", help="Window length in ms.")] = 50.0,
    step: Annotated[float, typer.Option("--step", help="Window step in ms.")] = 25.0,
    within: Annotated[
        str,
        typer.Option(
            "--within",
            help="RDMs over the words of each sentence (sentence: ends at . ! ? …) or all words.",
        ),
    ] = "sentence",
    metrics: Annotated[
        str, typer.Option("--metrics", help="Comma-separated metric names, or all.")
    ] = "all",
    n_perm: Annotated[int, typer.Option("--n-perm", help="Permutations of the words.")] = 100,
    perm_block: Annotated[
        int, typer.Option("--perm-block", help="Words per permuted block (--within all).")
    ] = 10,
    cluster: Annotated[
        bool, typer.Option("--cluster", help="Also cluster-mass p-values over time.")
    ] = False,
    run: ResultsRunOption = None,
    overwrite: OverwriteResultsOption = False,
) -> None:
    """Time-resolved representational alignment: layer × time maps of every metric.

    Word-locked epochs (baseline-corrected, optionally amplitude-rejected), sliding
    windows, one score per subject, layer, metric and window; p by permuting words
    (within sentences, or in blocks), FDR over time points.

    Example:

        evaluate similarity-eeg --store stores/eeg.zarr --model minilm:ctx32 --epochs -100:800 --window 50 --step 25 --within sentence --metrics all

        evaluate similarity-eeg --store stores/stories.zarr --story s2 --model minilm:ctx32
    """
    from featstore.evaluate.eeg.epochs import parse_ms_range
    from featstore.evaluate.eeg.similarity_run import (
        SimilarityTimeSettings,
        run_similarity_eeg,
        similarity_summary,
    )

    settings = SimilarityTimeSettings(
        epochs_ms=parse_ms_range(epochs, "--epochs"),
        baseline_ms=None if baseline == "none" else parse_ms_range(baseline, "--baseline"),
        reject=reject,
        window_ms=window,
        step_ms=step,
        within=within,
        metrics=tuple(m.strip() for m in metrics.split(",")),
        n_perm=n_perm,
        perm_block=perm_block,
        cluster=cluster,
    )
    target = one_story(store, story)
    run_id = run_similarity_eeg(target, model, settings, run_id=run, overwrite=overwrite)
    _print_results(store, target, run_id, similarity_summary(target, run_id))


def register(root: typer.Typer) -> None:
    """Add ``evaluate trf`` and ``evaluate similarity-eeg`` to ``root``."""
    root.command("trf")(trf)
    root.command("similarity-eeg")(similarity_eeg)
