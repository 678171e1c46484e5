"""The ``evaluate`` command: encoding grids, summaries, ROI tables, reports, and the
analyses beyond encoding r (RSA, similarity metrics, low-level impact)."""

from __future__ import annotations

from featstore import __version__
from featstore.cli import analysis_cmds, evaluate_cmds, report_cmds
from featstore.cli._common import new_app, version_option

app = new_app(
    "**evaluate** — PCA + FIR ridge encoding models straight from a featstore store.\n\n"
    "Every command reads features and fMRI from the store and writes results back to it."
)

VersionOption = version_option(f"evaluate (featstore {__version__})")


@app.callback()
def main(version: VersionOption = False) -> None:
    """evaluate — encoding models from a featstore store."""


evaluate_cmds.register(app)
report_cmds.register(app)
analysis_cmds.register(app)


def run() -> None:
    """Console-script entry point."""
    app(prog_name="evaluate")


if __name__ == "__main__":
    run()
