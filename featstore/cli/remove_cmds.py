"""``featstore rm features`` and ``featstore rm run``: delete what a store no longer needs."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from featstore.cli._common import (
    StoreOption,
    StoryListOption,
    StoryOption,
    console,
    new_app,
    one_story,
    parse_story_list,
    story_prefix,
    story_stores,
)
from featstore.errors import InputError

app = new_app(
    "Delete feature sets or runs from a store (asks first; --yes in scripts).\n\n"
    "Example:\n\n"
    "    featstore rm run -s stores/21styear.zarr grid-20250101-120000 --yes"
)

YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Delete without asking (needed without a terminal).")
]


def _confirm(groups: list[str], yes: bool) -> None:
    """Ask before deleting ``groups``, or refuse without a terminal unless ``--yes``."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise InputError(f"would delete {', '.join(groups)}; pass --yes to delete without asking")
    if not typer.confirm(f"delete {', '.join(groups)}?", default=False):
        raise typer.Exit(code=1)


@app.command("features")
def features(
    store: StoreOption,
    name: Annotated[
        str,
        typer.Argument(help="KEY or KEY/WINDOW (an alias works too): every window, or one."),
    ],
    story: StoryListOption = None,
    yes: YesOption = False,
) -> None:
    """Delete a feature set (one window, or every window of a model), with its stage.

    Runs computed from it keep their results. Refused while an extraction writes it.
    On a store of stories, from every story holding it, or the stories `--story` names.

    Examples:

        featstore rm features -s stores/21styear.zarr wavlm/tr6

        featstore rm features -s stores/21styear.zarr my-lm --yes

        featstore rm features -s stores/narr.zarr gpt2/ctx200 --story pieman --yes
    """
    from featstore.errors import GroupNotFoundError
    from featstore.store.remove import feature_groups_of, remove_feature_sets

    key, _, window = name.strip("/").partition("/")
    targets = story_stores(store, parse_story_list(story))
    found = []
    for prefix, target in targets:
        try:
            found += [(prefix, target, feature_groups_of(target, key, window or None))]
        except GroupNotFoundError:
            if len(targets) == 1:
                raise
    if not found:
        raise GroupNotFoundError(f"no feature set {name} in any story of {store}")
    _confirm([prefix + group for prefix, _, groups in found for group in groups], yes)
    for prefix, target, _ in found:
        for group in remove_feature_sets(target, key, window or None):
            console.print(f"deleted {prefix}{group}", highlight=False, markup=False)


@app.command("run")
def run(
    store: StoreOption,
    run_id: Annotated[str, typer.Argument(help="Run id, as `evaluate runs` lists it.")],
    story: StoryOption = None,
    yes: YesOption = False,
) -> None:
    """Delete a run (`results/RUN`: an encoding grid or an analysis, with its stats and
    stage). Refused while a grid writes it. On a store of stories, runs across stories
    are at its root; `--story` names a story whose own run it is.

    Examples:

        featstore rm run -s stores/21styear.zarr grid-20250101-120000 --yes

        featstore rm run -s stores/narr.zarr grid-20250101-120000 --story pieman --yes
    """
    from featstore.store.remove import remove_run, run_group_of

    target = store if story is None else one_story(store, story)
    prefix = story_prefix(store, target)
    _confirm([prefix + run_group_of(target, run_id)], yes)
    console.print(f"deleted {prefix}{remove_run(target, run_id)}", highlight=False, markup=False)


def register(root: typer.Typer) -> None:
    """Add ``featstore rm …`` to ``root``."""
    root.add_typer(app, name="rm")
