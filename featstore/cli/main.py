"""The ``featstore`` command: stores, dataset import, extraction and the demo."""

from __future__ import annotations

from typing import Annotated

import typer

from featstore import __version__
from featstore.cli import (
    dataset_cmds,
    demo_cmds,
    extract_cmds,
    features_cmds,
    models_cmds,
    store_cmds,
)
from featstore.cli._common import console, new_app

app = new_app(
    "**featstore** — extract every layer once into one Zarr store, evaluate many.\n\n"
    "Examples:\n\n"
    "    featstore demo\n\n"
    "    featstore ls stores/21styear.zarr\n\n"
    "Run `evaluate --help` for encoding models, summaries and reports."
)


def _version(value: bool) -> None:
    if value:
        console.print(f"featstore {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """featstore — a feature store for brain-encoding research."""


store_cmds.register(app)
dataset_cmds.register(app)
extract_cmds.register(app)
features_cmds.register(app)
models_cmds.register(app)
demo_cmds.register(app)


def run() -> None:
    """Console-script entry point."""
    app(prog_name="featstore")
