"""``featstore rm features`` and ``featstore rm run``: delete what a store no longer needs."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from featstore.cli._common import StoreOption, console, new_app
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
    yes: YesOption = False,
) -> None:
    """Delete a feature set (one window, or every window of a model), with its stage.

    Runs computed from it keep their results. Refused while an extraction writes it.

    Examples:

        featstore rm features -s stores/21styear.zarr wavlm/tr6

        featstore rm features -s stores/21styear.zarr my-lm --yes
    """
    from featstore.store.remove import feature_groups_of, remove_feature_sets

    key, _, window = name.strip("/").partition("/")
    _confirm(feature_groups_of(store, key, window or None), yes)
    for group in remove_feature_sets(store, key, window or None):
        console.print(f"deleted {group}", highlight=False, markup=False)


@app.command("run")
def run(
    store: StoreOption,
    run_id: Annotated[str, typer.Argument(help="Run id, as `evaluate runs` lists it.")],
    yes: YesOption = False,
) -> None:
    """Delete a run (`results/RUN`: an encoding grid or an analysis, with its stats and
    stage). Refused while a grid writes it.

    Example:

        featstore rm run -s stores/21styear.zarr grid-20250101-120000 --yes
    """
    from featstore.store.remove import remove_run, run_group_of

    _confirm([run_group_of(store, run_id)], yes)
    console.print(f"deleted {remove_run(store, run_id)}", highlight=False, markup=False)


def register(root: typer.Typer) -> None:
    """Add ``featstore rm …`` to ``root``."""
    root.add_typer(app, name="rm")
