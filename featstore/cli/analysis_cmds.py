"""``evaluate rsa``, ``evaluate similarity``, ``evaluate lowlevel``: beyond encoding r.

Each command reads one feature set and the fMRI from the store, writes one group
``results/<run>`` (layouts in docs/analyses.md) and prints a table.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from featstore.cli._analysis_options import RoiGroupsOption, analysis_inputs
from featstore.cli._common import (
    StoreOption,
    StoryOption,
    console,
    err_console,
    one_story,
    print_warning,
)
from featstore.cli._encoding_options import DESIGN_OPTIONS, RIDGE_OPTIONS, encoding_options
from featstore.cli._options import RdmCompareOption, RdmDistanceOption, RoiGroupsFileOption

if TYPE_CHECKING:
    import xarray as xr

_EEG_PANEL = "EEG/MEG (time-resolved, with --epochs)"
_FMRI_METRICS = "cka,rsa,cca,procrustes,encoding"


def _eeg_without_fmri(store: Path, story: str | None) -> bool:
    """Whether the (story's) store holds EEG/MEG and no fMRI: similarity is then over time."""
    from featstore.store import _schema as S
    from featstore.store.groups import group_exists

    target = one_story(store, story)
    return group_exists(target, S.EEG) and not group_exists(target, S.FMRI)


def _similarity_over_time(
    store: Path, model: str, story: str | None, inputs: dict, metric: str, **options
) -> None:
    """``evaluate similarity --epochs …``: the time-resolved analysis of
    ``evaluate similarity-eeg``, with its defaults for the options not given here."""
    from featstore.cli.eeg_cmds import similarity_eeg

    windows = inputs["windows"]
    if ":" not in model and len(windows) == 1:
        model = f"{model}:{windows[0]}"  # --model minilm --ctx 32 → minilm:ctx32
    similarity_eeg(
        store,
        model,
        story=story,
        epochs=options["epochs"] or "-100:800",
        window=options["window"],
        step=options["step"],
        within=options["within"],
        metrics="all" if metric == _FMRI_METRICS else metric,
        run=inputs["run_id"],
        overwrite=inputs["overwrite"],
    )


ModelOption = Annotated[
    str,
    typer.Option(
        "--model", "-m", help="Model name or alias (gpt2, wavlm …), optionally NAME:WINDOW."
    ),
]


def _fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _label(ds: xr.Dataset) -> str:
    """``wavlm/tr2`` for ``features/microsoft--wavlm-base-plus/tr2``: short table titles."""
    from featstore.evaluate.runs.configs import display_name
    from featstore.store.paths import split_feature_group

    key, window = split_feature_group(ds.attrs["request"]["feature_group"])
    return f"{display_name(key)}/{window}"


def _p(value: float) -> str:
    return "–" if not math.isfinite(value) else (f"{value:.1e}" if value < 1e-3 else f"{value:.3f}")


@encoding_options(*DESIGN_OPTIONS)
@analysis_inputs
def rsa(
    store: StoreOption,
    model: ModelOption,
    inputs: dict,
    roi_group: RoiGroupsOption = None,
    roi_groups_file: RoiGroupsFileOption = None,
    partial: Annotated[
        str | None,
        typer.Option(
            "--partial", help="Partial out this stored layer's RDM, e.g. wavlm/tr6/9 or spectral."
        ),
    ] = None,
    distance: RdmDistanceOption = "correlation",
    compare: RdmCompareOption = "spearman",
    n_perm: Annotated[
        int, typer.Option("--n-perm", help="Permutations of the items (0: no test).")
    ] = 1000,
    block: Annotated[
        int, typer.Option("--block", help="Permute blocks of this many consecutive items.")
    ] = 10,
    min_lag: Annotated[
        int | None,
        typer.Option(
            "--min-lag",
            help="Leave out pairs of items fewer than this many items apart (0: keep all). "
            "[default: --block]",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the permutations.")] = 0,
    subset: Annotated[
        str, typer.Option("--subset", help="Items: all TRs after trimming, or the test part.")
    ] = "all",
    segment: Annotated[
        int, typer.Option("--segment", help="Average the items over segments of this many TRs.")
    ] = 1,
) -> None:
    """Layer-wise RSA of one model against ROI groups, with a block-permutation test.

    Items are TRs; each layer is seen as the encoding model sees it (z-score, PCA fitted
    on train, FIR delays: `--pca`, `--delays` …), each ROI group as its ROIs' BOLD. Writes
    `results/<run>`: rho(roi_group, layer, subject), rho_mean and p(roi_group, layer), …

    Examples:

        evaluate rsa -s stores/21styear.zarr --model gpt2 --ctx 200 --roi-group late-language

        evaluate rsa -s S --model gpt2 --ctx 200 --layers all --partial wavlm/tr6/9 --n-perm 1000

        evaluate rsa -s S --model wavlm --tr-win 6 --distance euclidean --compare kendall --segment 5 --n-perm 100
    """
    from featstore.evaluate.analyses.rsa import run_rsa
    from featstore.evaluate.analyses.runner import open_analysis, split_names

    run_id = run_rsa(
        store,
        model,
        **inputs,
        roi_groups=split_names(roi_group),
        roi_groups_file=roi_groups_file,
        partial=partial,
        distance=distance,
        compare=compare,
        n_perm=n_perm,
        block=block,
        min_lag=min_lag,
        seed=seed,
        subset=subset,
        segment=segment,
    )
    ds = open_analysis(store, run_id, "rsa")
    console.print(f"[green]✓[/] results/{run_id}: {ds.attrs['n_items']} items", soft_wrap=True)
    for group in ds.attrs.get("skipped_roi_groups", []):
        err_console.print(
            f"[yellow]note:[/] ROI group {group} left out: fewer than 3 ROIs for a correlation "
            "distance (ask for it with --distance euclidean)",
            highlight=False,
        )
    for name, label in (("rho", "RSA"), ("rho_partial", f"partial RSA (given {partial})")):
        if name not in ds:
            continue
        p_name = "p" + name.removeprefix("rho")
        table = Table(
            title=f"{_label(ds)}: {label}, mean {compare} (p)",
            box=box.SIMPLE_HEAD,
        )
        table.add_column("layer", justify="right")
        groups = [str(g) for g in ds["roi_group"].values]
        for group in groups:
            table.add_column(group, justify="right")
        for layer in ds["layer"].values:
            cells = []
            for group in groups:
                point = {"roi_group": group, "layer": layer}
                value = float(ds[f"{name}_mean"].sel(point))
                cells.append(f"{_fmt(value)} ({_p(float(ds[p_name].sel(point)))})")
            table.add_row(str(layer), *cells)
        console.print(table)


@encoding_options(*DESIGN_OPTIONS, *RIDGE_OPTIONS)
@analysis_inputs
def similarity(
    store: StoreOption,
    model: ModelOption,
    inputs: dict,
    metric: Annotated[
        str,
        typer.Option(
            "--metric",
            "--metrics",
            help="Comma list of cka, rsa, cca, procrustes, encoding (EEG/MEG: any of "
            "`evaluate similarity-eeg`'s, or all).",
        ),
    ] = _FMRI_METRICS,
    roi_group: Annotated[
        str | None,
        typer.Option("--roi-group", help="Compare with this ROI group. [default: every ROI]"),
    ] = None,
    roi_groups_file: RoiGroupsFileOption = None,
    distance: RdmDistanceOption = "correlation",
    compare: RdmCompareOption = "spearman",
    figure: Annotated[
        Path | None,
        typer.Option(
            "--figure",
            help="Save the figure here. [default: none; `evaluate report` draws it too]",
        ),
    ] = None,
    story: StoryOption = None,
    epochs: Annotated[
        str | None,
        typer.Option(
            "--epochs",
            help="EEG/MEG: epoch around each word onset, START:STOP in ms (-100:800); runs "
            "`evaluate similarity-eeg` with the options below.",
            rich_help_panel=_EEG_PANEL,
        ),
    ] = None,
    window: Annotated[
        float, typer.Option("--window", help="Window length in ms.", rich_help_panel=_EEG_PANEL)
    ] = 50.0,
    step: Annotated[
        float, typer.Option("--step", help="Window step in ms.", rich_help_panel=_EEG_PANEL)
    ] = 25.0,
    within: Annotated[
        str,
        typer.Option(
            "--within", help="RDMs within sentences, or over all words.", rich_help_panel=_EEG_PANEL
        ),
    ] = "sentence",
) -> None:
    """Several similarity metrics between one model and the brain, layer by layer.

    With `--epochs` (or on a store with EEG/MEG and no fMRI) it is the time-resolved
    analysis of `evaluate similarity-eeg` (see there for all its options): layer × time
    maps of every metric over word-locked epochs.

    On one chronological split: linear CKA and RSA on the test TRs, SVCCA and orthogonal
    Procrustes fitted on train and scored on test, and the ridge encoding model's test r
    (same options as `evaluate grid`). Writes `results/<run>` (score(metric, layer,
    subject)) and, with `--figure`, a figure of the layer profiles and of how the metrics
    agree (`evaluate report` shows it too).

    Examples:

        evaluate similarity -s stores/21styear.zarr --model wavlm --tr-win 6

        evaluate similarity -s S --model gpt2 --ctx 200 --layers all --metric cka,encoding --roi-group auditory --figure gpt2.png

        evaluate similarity --store stores/eeg.zarr --model minilm:ctx32 --epochs -100:800 --window 50 --step 25 --within sentence --metrics all
    """
    if epochs is not None or _eeg_without_fmri(store, story):
        _similarity_over_time(
            store, model, story, inputs, metric, epochs=epochs, window=window, step=step,
            within=within,
        )  # fmt: skip
        return
    import numpy as np

    from featstore.evaluate.analyses.runner import open_analysis, split_names
    from featstore.evaluate.analyses.similarity import run_similarity
    from featstore.plot.analyses import plot_similarity

    run_id = run_similarity(
        store,
        model,
        **inputs,
        metrics=split_names([metric]),
        roi_group=roi_group,
        roi_groups_file=roi_groups_file,
        rsa_distance=distance,
        rsa_compare=compare,
    )
    ds = open_analysis(store, run_id, "similarity")
    group = ds.attrs["roi_group"]
    table = Table(
        title=f"{_label(ds)} vs {group} ROIs: mean over subjects",
        box=box.SIMPLE_HEAD,
    )
    metrics = [str(m) for m in ds["metric"].values]
    table.add_column("layer", justify="right")
    for name in metrics:
        table.add_column(name, justify="right")
    means = ds["score"].mean("subject")
    for layer in ds["layer"].values:
        table.add_row(str(layer), *(_fmt(float(means.sel(metric=m, layer=layer))) for m in metrics))
    console.print(table)
    best = {
        m: int(ds["layer"].values[int(np.nanargmax(means.sel(metric=m).values))]) for m in metrics
    }
    console.print("best layer: " + ", ".join(f"{m} {layer}" for m, layer in best.items()))
    if figure is not None:
        plot_similarity(ds, title=f"{_label(ds)} ({group} ROIs)", output_file=figure)
        console.print(f"figure: {figure}", soft_wrap=True, highlight=False)
    for message in ds.attrs.get("warnings", []):
        print_warning(message)


@encoding_options(*DESIGN_OPTIONS, *RIDGE_OPTIONS)
@analysis_inputs
def lowlevel(
    store: StoreOption,
    model: ModelOption,
    control: Annotated[
        list[str],
        typer.Option(
            "--control",
            help="Low-level control(s), comma-separated or repeated: spectral, envelope, "
            "wordrate or any stored layer (wavlm/tr6/1).",
        ),
    ],
    inputs: dict,
    roi_group: RoiGroupsOption = None,
    roi_groups_file: RoiGroupsFileOption = None,
) -> None:
    """How much of a model's alignment is low-level: % drop after regressing out controls.

    Each layer is residualized on the controls (a ridge map learnt on the train TRs,
    subtracted on all TRs), both versions are evaluated by the encoding model (options
    as `evaluate grid`), and the drop 100·(r_orig − r_resid)/r_orig is reported per ROI
    and ROI group with one-sided Wilcoxon tests across subjects. Writes `results/<run>`.

    Examples:

        evaluate lowlevel -s stores/21styear.zarr --model wavlm --tr-win 6 --control spectral,wordrate

        evaluate lowlevel -s S --model gpt2 --ctx 200 --control wordrate --layers 6,9 --roi-group late-language
    """
    import numpy as np

    from featstore.evaluate.analyses.lowlevel import run_lowlevel
    from featstore.evaluate.analyses.runner import open_analysis, split_names

    run_id = run_lowlevel(
        store,
        model,
        split_names(control),
        **inputs,
        roi_groups=split_names(roi_group),
        roi_groups_file=roi_groups_file,
    )
    ds = open_analysis(store, run_id, "lowlevel")
    controls = ", ".join(ds.attrs["controls"])
    console.print(f"[green]✓[/] results/{run_id}: controls {controls}", soft_wrap=True)
    table = Table(
        title=f"{_label(ds)}: % drop of r after removing {controls}",
        box=box.SIMPLE_HEAD,
    )
    for column in ("layer", "region", "r orig", "r resid", "drop %", "p"):
        table.add_column(column, justify="left" if column == "region" else "right")
    if "group_drop" in ds:
        regions = [str(g) for g in ds["roi_group"].values]
        orig = ds["group_r_orig"].mean("subject")
        resid = ds["group_r_resid"].mean("subject")
        drop, p, dim = ds["group_drop"], ds["group_p"], "roi_group"
        positions = {r: r for r in regions}
    else:
        # a custom atlas: the 10 ROIs the original features predict best
        orig = ds["r_orig"].mean("subject")
        resid = ds["r_resid"].mean("subject")
        drop, p, dim = ds["drop"], ds["p"], "roi"
        top = np.argsort(-np.nan_to_num(orig.max("layer").values, nan=-np.inf))[:10]
        regions = [str(ds["roi_name"].values[i]) for i in top]
        positions = {str(ds["roi_name"].values[i]): int(ds["roi"].values[i]) for i in top}
    for layer in ds["layer"].values:
        for region in regions:
            point = {"layer": layer, dim: positions[region]}
            table.add_row(
                str(layer),
                region,
                _fmt(float(orig.sel(point))),
                _fmt(float(resid.sel(point))),
                _fmt(float(drop.sel(point)), 1),
                _p(float(p.sel(point))),
            )
    console.print(table)
    for message in ds.attrs.get("warnings", []):
        print_warning(message)


def register(app: typer.Typer) -> None:
    """Add the commands of this module to ``app``."""
    app.command("rsa")(rsa)
    app.command("similarity")(similarity)
    app.command("lowlevel")(lowlevel)
