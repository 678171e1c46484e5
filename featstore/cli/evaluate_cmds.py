"""``evaluate grid``, ``evaluate summary``, ``evaluate roi`` and ``evaluate runs``."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from featstore.cli._common import (
    QuietOption,
    StoreOption,
    console,
    err_console,
    print_warning,
    printing_warnings,
    progress_enabled,
)
from featstore.cli._encoding_options import (
    DESIGN_OPTIONS,
    FUSION_OPTIONS,
    RIDGE_OPTIONS,
    TEST_STORIES,
    encoding_options,
    layer_selection,
)
from featstore.cli._option_groups import Flag, option_group
from featstore.errors import InputError
from featstore.evaluate.encoding.settings import EncodingSettings

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr


#: Where and how ``evaluate grid`` runs its configs: ``run_grid``'s keywords of these names.
_EXECUTION_OPTIONS = (
    Flag("workers", int, "Worker processes (0 or 1: this process, threaded scheduler).", 1),
    Flag("threads_per_worker", int, "BLAS threads per worker. [default: all cores]"),
    Flag("scheduler", str, "Address of an existing dask scheduler, e.g. tcp://10.0.0.5:8786."),
    Flag(
        "backend",
        str,
        "Array library of the PCA, alpha sweep and predictions: numpy or torch.",
        "numpy",
    ),
    Flag("device", str, "cpu, cuda or cuda:N (cuda needs --backend torch). [default: cpu]"),
)


def _execution(**options: Any) -> dict[str, Any]:
    """The execution options, checked: a local cluster or an existing scheduler, not both."""
    workers, threads = options["workers"], options["threads_per_worker"]
    if options["scheduler"] and workers > 1:
        raise InputError(
            "give --workers (a local cluster) or --scheduler (an existing one), not both"
        )
    if workers < 0 or (threads is not None and threads < 1):
        raise InputError(
            f"--workers {workers} --threads-per-worker {threads}: expected >= 0 and >= 1"
        )
    return options


#: Which stories train and which test, on a store of stories: ``run_grid``'s ``story``,
#: ``test_stories`` and ``cv_stories``, and ``cv``, the folds of the settings.
_SPLIT_OPTIONS = (
    Flag(
        "cv",
        str,
        "Contiguous CV folds on the train part [default: 5], or 'stories': leave "
        "each story out in turn (a store of stories).",
    ),
    TEST_STORIES,
    Flag("story", str, "A store of stories: evaluate this one story (chronological split)."),
)


def _split(cv: str | None, test_stories: str | None, story: str | None) -> dict[str, Any]:
    """The split options read: ``--cv stories`` or a number of folds (``None``: the
    settings'), and the list of ``--test-stories``."""
    cv_stories = cv is not None and cv.strip().lower() == "stories"
    folds = None
    if cv is not None and not cv_stories:
        try:
            folds = int(cv)
        except ValueError:
            raise InputError(f"--cv {cv!r}: expected a number of folds or 'stories'") from None
    tests = [t.strip() for t in test_stories.split(",") if t.strip()] if test_stories else None
    return {"story": story, "test_stories": tests, "cv_stories": cv_stories, "cv": folds}


@encoding_options(*DESIGN_OPTIONS, *(o for o in RIDGE_OPTIONS if o != "cv"), *FUSION_OPTIONS)
@option_group("execution", _EXECUTION_OPTIONS, build=_execution)
@option_group("split", _SPLIT_OPTIONS, build=_split)
@layer_selection  # innermost: its errors come last, as when the grid parsed them itself
def grid(
    store: StoreOption,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="NAME[:WINDOWS][@LAYERS] (gpt2:ctx200, wavlm:tr1,2,3,6, wavlm@3,9); repeatable.",
        ),
    ] = None,
    fusion: Annotated[
        list[str] | None,
        typer.Option(
            "--fusion",
            help="A+B, each side NAME[:WINDOWS][@LAYERS] (gpt2+wavlm, gpt2@4,9+spectral@0); "
            "repeatable.",
        ),
    ] = None,
    *,
    selection: dict,
    partition: Annotated[
        bool,
        typer.Option("--partition/--no-partition", help="Variance partitioning of fusion pairs."),
    ] = True,
    settings: EncodingSettings = EncodingSettings(),
    execution: dict,
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            help="Run id. [default: grid-YYYYmmdd-HHMMSS, or the unfinished run it resumes]",
        ),
    ] = None,
    split: dict,
    quiet: QuietOption = False,
) -> None:
    """Evaluate every model × window × layer (and fusion layer pair) asked for.

    Writes `results/<run>` into the store. A killed grid resumes when run again with the
    same options; configs any earlier run computed with the same settings and features
    are copied, not recomputed.

    `--model` takes `NAME` or `NAME:WINDOWS`: `gpt2:ctx200`, `wavlm:tr1,2,3,6`. A bare
    `NAME` takes the `--ctx` windows if it is a text model, the `--tr-win` windows if it
    is an audio one, else every stored window. `--fusion A+B` fuses every layer pair of
    A and B (`--layers` restricts both sides) at each window: the text side keeps its
    ctx window and the audio side takes each `--tr-win`. `@LAYERS` after a model or a
    fusion side selects that side's own layers instead of `--layers` (`spectral@0`).
    A set fused with itself takes each pair of different layers once (4x9).

    Examples:

        evaluate grid -s stores/21styear.zarr --model gpt2 --ctx 200 --model wavlm --tr-win 1,2,3,6

        evaluate grid -s stores/21styear.zarr --fusion gpt2+wavlm --tr-win 6

        evaluate grid -s stores/21styear.zarr --fusion gpt2+wavlm --method banded --layers 9

        evaluate grid -s stores/21styear.zarr --fusion gpt2:ctx200@4,9+spectral:tr1@0

        evaluate grid -s stores/21styear.zarr --model whisper-base --alpha 1000 --workers 2 --threads-per-worker 1

        evaluate grid -s /shared/21styear.zarr --model wavlm --scheduler tcp://10.0.0.5:8786

        evaluate grid -s stores/21styear.zarr --fusion gpt2+wavlm --backend torch --device cuda

        evaluate grid -s stores/narr.zarr --model gpt2:ctx200 --test-stories lucy

        evaluate grid -s stores/narr.zarr --model gpt2:ctx200 --cv stories --workers 2

        evaluate grid -s stores/narr.zarr --fusion gpt2+wavlm --method banded --test-stories lucy

        evaluate grid -s stores/narr.zarr --model gpt2:ctx200 --story pieman

    On a store of stories, `--test-stories` trains on the other stories and scores the
    listed ones; `--cv stories` predicts each story once from the others; results go to
    `results/<run>` at the store's root (r pooled over the test stories and r per story,
    for every target). `--story` evaluates one story as a one-story store.
    """
    from featstore.evaluate.runs import summary as summ
    from featstore.evaluate.runs.grid import run_grid
    from featstore.evaluate.runs.labels import parse_fusion_request, parse_model_request
    from featstore.evaluate.runs.results import open_run
    from featstore.store.stories import is_collection, story_store

    folds = split.pop("cv")
    if folds is not None:
        settings = dataclasses.replace(settings, cv=folds)
    with printing_warnings() as already_said:
        run_id = run_grid(
            store,
            models=[parse_model_request(m) for m in model or []],
            fusions=[parse_fusion_request(f) for f in fusion or []],
            **selection,
            settings=settings,
            partition=partition,
            run_id=run,
            progress=progress_enabled(quiet),
            **split,
            **execution,
        )
    story = split["story"]
    if split["test_stories"] or split["cv_stories"] or (story is None and is_collection(store)):
        _print_story_run(store, run_id, quiet, already_said)
        return
    if story is not None:
        store = story_store(store, story)
    ds = open_run(store, run_id)
    attrs = ds.attrs
    console.print(
        f"[green]✓[/] results/{run_id}: {attrs['n_configs']} configs "
        f"({attrs['n_computed']} computed, {attrs['n_resumed']} resumed, {attrs['n_reused']} reused "
        "from earlier runs)"
    )
    for message in attrs.get("warnings", []):
        print_warning(message)
    if not quiet:
        table = summ.summary_table(store, [run_id])
        _print_summary(summ.best_layers(table), title="best layer per model and window")
        _print_excluded(table)


def _print_story_run(store: Path, run_id: str, quiet: bool, already_said: list[str]) -> None:
    """The outcome of a run across stories: counts, warnings, and r per config."""
    import numpy as np

    from featstore.store.groups import open_group

    ds = open_group(store, f"results/{run_id}")
    attrs = ds.attrs
    console.print(
        f"[green]✓[/] results/{run_id}: {attrs['n_configs']} configs ({attrs['n_computed']} "
        f"computed, {attrs['n_resumed']} resumed), split {attrs['split']}, test stories "
        f"{', '.join(attrs['test_stories'])}, {ds.sizes['roi']} targets"
    )
    for message in attrs.get("warnings", []):
        if message not in already_said:
            print_warning(message)
    if quiet:
        return
    out = Table(title="pooled test r per config", box=box.SIMPLE_HEAD, show_edge=False)
    for column in ("config", "median", "p95", "max"):
        out.add_column(column, justify="left" if column == "config" else "right")
    for label in ds["config"].values:
        r = np.asarray(ds["r"].sel(config=label).values, dtype=float)
        r = r[np.isfinite(r)]
        cells = [np.median(r), np.percentile(r, 95), r.max()] if r.size else [np.nan] * 3
        out.add_row(str(label), *(_fmt(v) for v in cells))
    console.print(out)


def _fmt(value: float) -> str:
    return "nan" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _summary_rich(table: pd.DataFrame, *, title: str, limit: int | None = 20) -> Table:
    # fits 80 columns: numbers and layers are never wrapped or cut (a long model name
    # folds instead); the CSV has every column (run, kind, n_layers, log …)
    from featstore.evaluate.runs.configs import BANDED

    out = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=0)
    out.add_column("model", overflow="fold")
    out.add_column("window", no_wrap=True)
    for column in ("layer", "mean", "std", "median", "min", "max"):
        out.add_column(column, justify="right", no_wrap=True)
    rows = table.head(limit) if limit else table
    for _, row in rows.iterrows():
        model = row["model"] + (" banded" if row["method"] == BANDED else "")
        cells = [model, row["window"], str(row["layer"])]
        cells += [_fmt(row[k]) for k in ("mean", "std", "median", "min", "max")]
        out.add_row(*cells)
    if limit and len(table) > limit:
        out.caption = f"{limit} of {len(table)} rows; use --csv for all"
    return out


def _print_excluded(table: pd.DataFrame) -> None:
    """One line per config left out of the tables because it has no result."""
    excluded = table[table["excluded"] != ""]
    for _, row in excluded.iterrows():
        where = f"results/{row['run']}/{row['config']}"
        err_console.print(f"[yellow]excluded:[/] {where}: {row['excluded']}", highlight=False)


def _print_summary(table: pd.DataFrame, *, title: str, limit: int | None = 20) -> None:
    """One table per run; with several runs, each under its run id (whole: `--run` takes it)."""
    runs = list(dict.fromkeys(table["run"]))
    for run_id in runs:
        if len(runs) > 1:
            console.print(f"run {run_id}", style="bold", highlight=False, soft_wrap=True)
        console.print(_summary_rich(table[table["run"] == run_id], title=title, limit=limit))


def summary(
    store: StoreOption,
    run: Annotated[
        list[str] | None,
        typer.Option("--run", help="Run id(s); repeatable. [default: every complete run]"),
    ] = None,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="Write summary.csv here (every config).")
    ] = None,
    roi_csv: Annotated[
        Path | None, typer.Option("--roi-csv", help="Write roi.csv here (every config × ROI).")
    ] = None,
    parcels: Annotated[
        str | None,
        typer.Option(
            "--parcels",
            help="With --roi-csv, average the vertices/voxels of each run into parcels: "
            "'names' (the parcel names the targets carry; hcp-mmp for fsLR32k), hcp-mmp, a "
            ".label.gii or FreeSurfer .annot, or a NIfTI label image. Parcel runs are "
            "written as they are.",
        ),
    ] = None,
    all_configs: Annotated[
        bool, typer.Option("--all", help="Show every config, not only the best layers.")
    ] = False,
) -> None:
    """Best layer per model and window: mean ± std across subjects of the per-subject mean r.

    Examples:

        evaluate summary -s stores/21styear.zarr

        evaluate summary -s stores/21styear.zarr --run grid-20250101-120000 --csv results/summary.csv --roi-csv results/roi.csv

        evaluate summary -s stores/narr.zarr --roi-csv results/roi.csv --parcels lh.aparc.a2009s.annot
    """
    from featstore.evaluate.runs import summary as summ
    from featstore.evaluate.runs.results import open_run

    table = summ.summary_table(store, run)
    if table.empty:
        raise InputError(f"no complete evaluation run in {store}; run `evaluate grid` first")
    usable = table[table["excluded"] == ""]
    shown = usable.sort_values("mean", ascending=False) if all_configs else summ.best_layers(table)
    title = "every config" if all_configs else "best layer per model and window"
    _print_summary(shown, title=title, limit=None)
    _print_excluded(table)
    if csv is not None:
        summ.write_summary_csv(table, csv)
        console.print(f"wrote {csv} ({len(table)} rows)")
    if roi_csv is not None:
        import pandas as pd

        rois = pd.concat(
            [
                summ.roi_table(_in_parcels(open_run(store, r), parcels))
                for r in table["run"].unique()
            ],
            ignore_index=True,
        )
        summ.write_roi_csv(rois, roi_csv)
        console.print(f"wrote {roi_csv} ({len(rois)} rows)")
    elif parcels is not None:
        raise InputError("--parcels groups the rows of --roi-csv; give --roi-csv too")


def _in_parcels(ds: xr.Dataset, parcels: str | None) -> xr.Dataset:
    """A vertex/voxel run's ``r`` averaged into the parcels of ``parcels`` ('names': the
    targets' own parcel names); ``ds`` itself without ``parcels`` or for a parcel run."""
    from featstore.evaluate.runs.targets import group_by_parcels, parcel_grouping, target_kind

    if parcels is None or target_kind(ds.attrs) == "parcel":
        return ds
    grouping = parcel_grouping(ds, None if parcels == "names" else parcels)
    return group_by_parcels(ds, grouping, variables=["r"])


def roi(
    store: StoreOption,
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            help="Run id. [default: the newest complete run holding --config, else the newest]",
        ),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            help="Config label, e.g. wavlm/tr6/layer9 or wavlm/9. [default: the run's best config]",
        ),
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="How many ROIs to show.")] = 20,
    csv: Annotated[
        Path | None,
        typer.Option(
            "--csv", help="Write roi.csv here (the --config, else every config of the run)."
        ),
    ] = None,
) -> None:
    """The ROIs a config predicts best (mean r across subjects).

    Examples:

        evaluate roi -s stores/21styear.zarr --run grid-20250101-120000 --top 20

        evaluate roi -s stores/21styear.zarr --config wavlm/tr6/9 --csv results/roi.csv
    """
    from featstore.evaluate.runs import summary as summ
    from featstore.evaluate.runs.results import find_run, open_run

    run_id, labels = find_run(store, [config] if config else [], run)
    ds = open_run(store, run_id)
    if labels:
        label = labels[0]
    else:
        scores = summ.run_summary(ds)
        label = str(
            scores.sort_values("mean", ascending=False, na_position="last")["config"].iloc[0]
        )
    table = summ.roi_table(ds, [label]).sort_values("r", ascending=False, na_position="last")
    where = [c for c in summ.TARGET_INDEX_COORDS if c in table.columns]  # vertex or voxel
    noun = {"vertex": "vertices", "voxel": "voxels"}.get(where[0] if where else "", "ROIs")
    out = Table(title=f"{label}: top {min(top, len(table))} {noun} (mean r across subjects)")
    for column in ("rank", "roi", *where, "name", "hemisphere", "r"):
        out.add_column(column, justify="left" if column in ("name", "hemisphere") else "right")
    for rank, (_, row) in enumerate(table.head(top).iterrows(), start=1):
        cells = [str(row["roi"]), *(str(row[c]) for c in where), row["roi_name"], row["hemisphere"]]
        out.add_row(str(rank), *cells, _fmt(row["r"]))
    console.print(out)
    if csv is not None:
        rows = summ.roi_table(ds, [label] if config else None)
        summ.write_roi_csv(rows, csv)
        console.print(f"wrote {csv} ({len(rows)} rows)")


def runs(store: StoreOption) -> None:
    """List the evaluation runs of a store, finished and interrupted.

    Example: `evaluate runs -s stores/21styear.zarr`
    """
    from featstore.evaluate.runs.results import list_runs

    infos = list_runs(store)
    if not infos:
        console.print(f"no evaluation runs in {store}")
        return
    # run ids are printed whole (`--run` takes them); settings wrap instead
    out = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        caption="configs: total (computed/resumed/reused); created: UTC",
    )
    out.add_column("run", no_wrap=True)
    out.add_column("state", no_wrap=True)
    out.add_column("created", no_wrap=True)
    out.add_column("configs", no_wrap=True, justify="right")
    out.add_column("settings", overflow="fold")
    for info in infos:
        settings = info.attrs.get("settings", {})
        if info.complete:
            fit = (
                f"alpha={settings.get('alpha')}"
                if settings.get("alpha") is not None
                else f"CV {settings.get('cv')} folds"
            )
            delays = ",".join(str(d) for d in settings.get("delays") or [])
            described = f"pca={settings.get('pca')} delays={delays} {fit}"
            counts = "/".join(
                str(info.attrs.get(k)) for k in ("n_computed", "n_resumed", "n_reused")
            )
            state = "complete"
        else:
            described, counts = "", ""
            state = f"[yellow]interrupted[/] ({info.n_done}/{info.n_configs})"
            if info.n_blocks != info.n_configs:  # a run across stories: per target chunk
                state += f", chunks {info.blocks_done}/{info.n_blocks}"
        created = info.created[:16].replace("T", " ")  # minutes are enough to tell runs apart
        configs = f"{info.n_configs} ({counts})" if counts else str(info.n_configs)
        out.add_row(info.run_id, state, created, configs, described)
    console.print(out)


def register(app: typer.Typer) -> None:
    """Add the commands of this module to ``app``."""
    app.command("grid")(grid)
    app.command("summary")(summary)
    app.command("roi")(roi)
    app.command("runs")(runs)
