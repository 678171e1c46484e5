"""``featstore ls``, ``featstore info`` and ``featstore validate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from featstore.cli._common import console, fail

if TYPE_CHECKING:
    from featstore.store import GroupInfo

_MAIN_VARIABLE = {"stimulus": "word", "fmri": "bold", "features": "hidden", "results": "r"}


def _shape(info: GroupInfo) -> str:
    """``bold 25 subject × 2249 tr × 360 roi`` for the group's main array."""
    from featstore.store import _schema as S

    name = _MAIN_VARIABLE.get(info.kind, "")
    if S.ANALYSIS_ATTR in info.attrs:  # rsa / similarity / lowlevel: their first variable
        name = next(iter(S.ANALYSIS_VARS.get(info.attrs[S.ANALYSIS_ATTR], {})), "")
    var = info.variable(name)
    if var is None:
        return ""
    text = " × ".join(f"{n} {d}" for d, n in zip(var.dims, var.shape, strict=False))
    if info.kind == "stimulus":
        audio = info.variable("audio")
        seconds = audio.shape[0] / info.attrs.get("sample_rate", 16000) if audio else 0
        text += f", {seconds:.1f} s audio"
    return f"{var.name}: {text} {var.dtype if var.name != 'word' else ''}".strip()


def _provenance(info: GroupInfo) -> str:
    """Model, revision and pooling of a feature set; source or request of the others."""
    from featstore.store import _schema as S

    attrs = info.attrs
    if info.kind == "features":
        model = attrs.get("model_alias") or attrs.get("model_id", "")
        revision = str(attrs.get("revision", ""))
        revision = revision[:12] if len(revision) == 40 else revision  # a commit hash
        return f"{model} ({attrs.get('modality', '?')}) rev {revision}, pool {attrs.get('pooling', '')}"
    if info.kind == "fmri":
        return f"{attrs.get('atlas', '')}; {attrs.get('source', '')}"
    if info.kind == "stimulus":
        return f"TR rule {attrs.get('tr_assign', '')}, onset {attrs.get('stim_onset', 0)} s"
    if info.kind == "results" and S.ANALYSIS_ATTR in attrs:
        of = attrs.get("request", {}).get("feature_group", "")
        return f"{attrs[S.ANALYSIS_ATTR]} of {of}, created {attrs.get('created', '')}"
    if info.kind == "results":
        return f"created {attrs.get('created', '')}"
    return ""


def _group_cell(info: GroupInfo) -> str:
    """The group path, and for a feature set extracted under an alias, the alias too:
    plain xarray needs the key, featstore's commands take either."""
    alias = info.attrs.get("model_alias") if info.kind == "features" else None
    key = info.path.split("/")[1] if info.kind == "features" else None
    return f"{info.path}\n(alias {alias})" if alias and alias != key else info.path


def ls(
    store: Annotated[Path, typer.Argument(help="Store path, e.g. stores/21styear.zarr.")],
) -> None:
    """List a store's groups with shapes and provenance (`featstore info` shows everything),
    and writes staged in the store that are running or were interrupted (resumable).

    Example: `featstore ls stores/21styear.zarr`
    """
    from featstore import store as fs
    from featstore.store.staging import list_staged

    attrs = fs.root_attrs(store)
    console.print(
        f"[bold]{store}[/]  dataset={attrs.get('dataset')}  TR={attrs.get('tr_seconds')} s  "
        f"n_tr={attrs.get('n_tr')}  schema={attrs.get('featstore_schema')}"
    )
    table = Table(show_lines=False, pad_edge=False)
    for column in ("group", "contents", "provenance", "ok"):
        table.add_column(column, overflow="fold")
    listed = set()
    for info in fs.list_groups(store):
        listed.add(info.path)
        table.add_row(
            _group_cell(info),
            _shape(info),
            _provenance(info),
            "yes" if info.complete else "[red]no[/]",
        )
    for staged in list_staged(store):
        if staged.group not in listed:  # a write under way, or interrupted: resumable
            table.add_row(
                staged.group,
                f"staged: {staged.blocks_done}/{staged.n_blocks} blocks",
                "being written or interrupted: rerun the same command to resume",
                "[red]no[/]",
            )
    console.print(table)


def info(
    store: Annotated[Path, typer.Argument(help="Store path.")],
    group: Annotated[
        str, typer.Argument(help="Group path, e.g. features/gpt2/ctx200 (key or alias).")
    ],
) -> None:
    """Show one group: its xarray summary and all its attrs.

    A feature group may name the model alias instead of the key (`features/minilm/ctx32`).

    Example: `featstore info stores/21styear.zarr features/gpt2/ctx200`
    """
    from featstore import store as fs

    ds = fs.open_group(store, fs.resolve_feature_group(store, group), require_complete=False)
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
    from featstore import store as fs

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
