"""``featstore ls``, ``info``, ``validate`` and ``store upgrade``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from featstore.cli._common import StoryOption, console, fail, new_app, one_story

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
    story: StoryOption = None,
) -> None:
    """List a store's groups with shapes and provenance (`featstore info` shows everything),
    and writes staged in the store that are running or were interrupted (resumable).

    On a store of stories: each story's TRs, subjects and targets, and which feature
    sets each story has (complete, incomplete or missing); `--story` lists one story's
    groups.

    Examples:

        featstore ls stores/21styear.zarr

        featstore ls stores/narr.zarr --story pieman
    """
    from featstore.store.stories import is_collection

    if story is None and is_collection(store):
        _ls_stories(store)
        return
    _ls_groups(one_story(store, story), title=store)


def _ls_groups(store, *, title) -> None:
    from featstore import store as fs
    from featstore.store.staging import list_staged

    attrs = fs.root_attrs(store)
    console.print(
        f"[bold]{title}[/]  {_story_label(attrs)}dataset={attrs.get('dataset')}  "
        f"TR={attrs.get('tr_seconds')} s  n_tr={attrs.get('n_tr')}  "
        f"schema={attrs.get('featstore_schema')}"
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


def _story_label(attrs: dict) -> str:
    return f"story={attrs['story']}  " if attrs.get("story") else ""


_STATE_CELL = {"complete": "[green]complete[/]", "incomplete": "[red]incomplete[/]"}


def _ls_stories(store) -> None:
    """A store of stories: one row per story, then feature sets × stories, then runs."""
    from featstore import store as fs
    from featstore.store.listing import list_story_infos

    attrs = fs.root_attrs(store)
    stories = list_story_infos(store)
    console.print(
        f"[bold]{store}[/]  dataset={attrs.get('dataset')}  TR={attrs.get('tr_seconds')} s  "
        f"schema={attrs.get('featstore_schema')}  {len(stories)} stories"
    )
    table = Table(pad_edge=False, title="stories")
    for column in ("story", "n_tr", "subjects", "targets", "groups complete"):
        table.add_column(column, overflow="fold")
    for info in stories:
        targets = "" if info.n_targets is None else f"{info.n_targets} {info.target_kind}"
        done = sum(g.complete for g in info.groups)
        table.add_row(
            info.name,
            str(info.n_tr or ""),
            "" if info.n_subjects is None else str(info.n_subjects),
            targets,
            f"{done}/{len(info.groups) + len(info.staged)}",
        )
    console.print(table)
    groups = sorted(
        {g.path for s in stories for g in s.groups if g.kind == "features"}
        | {path for s in stories for path in s.staged if path.startswith("features/")}
    )
    if groups:
        table = Table(pad_edge=False, title="feature sets × stories")
        table.add_column("feature set", overflow="fold")
        for info in stories:
            table.add_column(info.name)
        for group in groups:
            cells = [_STATE_CELL.get(s.state(group), "missing") for s in stories]
            table.add_row(group.removeprefix("features/"), *cells)
        console.print(table)
    runs = [info for info in fs.list_groups(store) if info.kind == "results"]
    for info in runs:
        state = "yes" if info.complete else "[red]no (incomplete)[/]"
        console.print(f"{info.path}  {_provenance(info)}  complete: {state}", highlight=False)


def info(
    store: Annotated[Path, typer.Argument(help="Store path.")],
    group: Annotated[
        str, typer.Argument(help="Group path, e.g. features/gpt2/ctx200 (key or alias).")
    ],
    story: StoryOption = None,
) -> None:
    """Show one group: its xarray summary and all its attrs.

    A feature group may name the model alias instead of the key (`features/minilm/ctx32`).
    On a store of stories, `--story` names the story the group belongs to (runs across
    stories, `results/<run>`, live at the store's root and need none).

    Examples:

        featstore info stores/21styear.zarr features/gpt2/ctx200

        featstore info stores/narr.zarr features/gpt2/ctx200 --story pieman
    """
    from featstore import store as fs
    from featstore.store import _schema as S
    from featstore.store.stories import is_collection

    at_root = story is None and group.startswith(S.RESULTS) and is_collection(store)
    target = store if at_root else one_story(store, story)
    ds = fs.open_group(target, fs.resolve_feature_group(target, group), require_complete=False)
    attrs = dict(ds.attrs)
    ds.attrs = {}
    console.print(ds)
    console.print("[bold]attrs[/]")
    console.print_json(json.dumps(attrs, default=str))
    if not attrs.get("complete", False):
        console.print("[red]this group is incomplete: its write was interrupted or is running[/]")


def validate(
    store: Annotated[Path, typer.Argument(help="Store path.")],
    story: StoryOption = None,
) -> None:
    """Check a store against the schema; exit 2 if anything is wrong.

    A store of stories is checked story by story, then its root and its runs across
    stories; `--story` checks one story.

    Examples:

        featstore validate stores/21styear.zarr

        featstore validate stores/narr.zarr --story pieman
    """
    from featstore import store as fs

    target = store if story is None else one_story(store, story)
    problems = fs.validate(target)
    if problems:
        for problem in problems:
            console.print(f"[red]✗[/] {problem}", highlight=False)
        raise fail(f"{len(problems)} schema problem(s) in {target}; first: {problems[0]}")
    console.print(f"[green]✓[/] {target} follows featstore schema v{fs.SCHEMA_VERSION}")


store_app = new_app(
    "Manage a store as a whole.\n\nExample:\n\n    featstore store upgrade stores/21styear.zarr"
)


@store_app.command("upgrade")
def upgrade(
    store: Annotated[Path, typer.Argument(help="Store path of a one-story (schema 1) store.")],
    story: Annotated[
        str | None,
        typer.Option("--story", help="Name of its story. [default: the store's dataset name]"),
    ] = None,
) -> None:
    """Turn a one-story store into a store of stories (schema 2), losing nothing.

    Stimulus, fMRI, features, runs and staged work move, by renaming (no chunk is
    rewritten), to `stories/<story>`; more stories can then be imported next to it.

    Examples:

        featstore store upgrade stores/21styear.zarr

        featstore store upgrade stores/21styear.zarr --story 21styear
    """
    from featstore.store.stories import list_stories, upgrade_store

    upgraded = upgrade_store(store, story=story)
    names = list_stories(upgraded)
    console.print(
        f"upgraded {store} to a store of stories (schema 2): stories/{names[0]}", highlight=False
    )


def register(app: typer.Typer) -> None:
    """Add the commands of this module to ``app``."""
    app.command("ls")(ls)
    app.command("info")(info)
    app.command("validate")(validate)
    app.add_typer(store_app, name="store")
