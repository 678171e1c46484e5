"""``featstore ls``, ``featstore info`` and ``featstore validate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from featstore import store as fs
from featstore.cli._common import console, fail

_PROVENANCE_KEYS = ("model_id", "revision", "modality", "pooling", "ctx_words", "tr_win", "created")


def ls(
    store: Annotated[Path, typer.Argument(help="Store path, e.g. stores/21styear.zarr.")],
) -> None:
    """List a store's groups with shapes and provenance.

    Example: `featstore ls stores/21styear.zarr`
    """
    attrs = fs.root_attrs(store)
    console.print(
        f"[bold]{store}[/]  dataset={attrs.get('dataset')}  TR={attrs.get('tr_seconds')} s  "
        f"n_tr={attrs.get('n_tr')}  schema={attrs.get('featstore_schema')}"
    )
    table = Table(show_lines=False)
    for column in ("group", "variables", "provenance", "complete"):
        table.add_column(column)
    for info in fs.list_groups(store):
        variables = "\n".join(
            f"{v.name}({', '.join(f'{d}={n}' for d, n in zip(v.dims, v.shape, strict=False))}) {v.dtype}"
            for v in info.variables
            if len(v.shape) > 1 or v.name in ("word", "audio", "r")
        )
        provenance = " ".join(f"{k}={info.attrs[k]}" for k in _PROVENANCE_KEYS if k in info.attrs)
        table.add_row(info.path, variables, provenance, "yes" if info.complete else "[red]no[/]")
    console.print(table)


def info(
    store: Annotated[Path, typer.Argument(help="Store path.")],
    group: Annotated[str, typer.Argument(help="Group path, e.g. features/gpt2/ctx200.")],
) -> None:
    """Show one group: its xarray summary and all its attrs.

    Example: `featstore info stores/21styear.zarr features/gpt2/ctx200`
    """
    ds = fs.open_group(store, group, require_complete=False)
    attrs = dict(ds.attrs)
    ds.attrs = {}
    console.print(ds)
    console.print("[bold]attrs[/]")
    console.print_json(json.dumps(attrs, default=str))
    if not attrs.get("complete", False):
        console.print("[red]this group is incomplete: its write was interrupted or is running[/]")


def validate(
    store: Annotated[Path, typer.Argument(help="Store path.")],
) -> None:
    """Check a store against the schema; exit 2 if anything is wrong.

    Example: `featstore validate stores/21styear.zarr`
    """
    problems = fs.validate(store)
    if problems:
        for problem in problems:
            console.print(f"[red]✗[/] {problem}")
        raise fail(f"{len(problems)} schema problem(s) in {store}; first: {problems[0]}")
    console.print(f"[green]✓[/] {store} follows featstore schema v{fs.SCHEMA_VERSION}")


def register(app: typer.Typer) -> None:
    """Add the commands of this module to ``app``."""
    app.command("ls")(ls)
    app.command("info")(info)
    app.command("validate")(validate)
