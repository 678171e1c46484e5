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
from featstore.cli._common import new_app, version_option

app = new_app(
    "**featstore** — extract every layer once into one Zarr store, evaluate many.\n\n"
    "Examples:\n\n"
    "    featstore demo\n\n"
    "    featstore ls stores/21styear.zarr\n\n"
    "Run `evaluate --help` for encoding models, summaries and reports."
)

VersionOption = version_option(f"featstore {__version__}")


@app.callback()
def main(version: VersionOption = False) -> None:
    """featstore — a feature store for brain-encoding research."""


store_cmds.register(app)
dataset_cmds.register(app)
extract_cmds.register(app)
features_cmds.register(app)
models_cmds.register(app)
demo_cmds.register(app)
remove_cmds.register(app)


def run() -> None:
    """Console-script entry point."""
    app(prog_name="featstore")
