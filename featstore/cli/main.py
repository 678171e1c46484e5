"""The ``featstore`` command: stores, dataset import, extraction and the demo."""

from __future__ import annotations

from featstore import __version__
from featstore.cli import (
    dataset_cmds,
    demo_cmds,
    extract_cmds,
    features_cmds,
    models_cmds,
    remove_cmds,
    store_cmds,
)
from featstore.cli._common import command_app

app = command_app(
    "**featstore** — extract every layer once into one Zarr store, evaluate many.\n\n"
    "Examples:\n\n"
    "    featstore demo\n\n"
    "    featstore ls stores/21styear.zarr\n\n"
    "Run `evaluate --help` for encoding models, summaries and reports.",
    f"featstore {__version__}",
    [
        store_cmds,
        dataset_cmds,
        extract_cmds,
        features_cmds,
        models_cmds,
        demo_cmds,
        remove_cmds,
    ],
)


def run() -> None:
    """Console-script entry point."""
    app(prog_name="featstore")
