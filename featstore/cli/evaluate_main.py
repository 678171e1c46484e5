"""The ``evaluate`` command: encoding grids, summaries, ROI tables, reports, and the
analyses beyond encoding r (RSA, similarity metrics, low-level impact)."""

from __future__ import annotations

from featstore import __version__
from featstore.cli import analysis_cmds, eeg_cmds, evaluate_cmds, report_cmds
from featstore.cli._common import command_app

app = command_app(
    "**evaluate** — PCA + FIR ridge encoding models straight from a featstore store.\n\n"
    "Every command reads features and fMRI from the store and writes results back to it.\n\n"
    "Examples:\n\n"
    "    evaluate grid -s stores/21styear.zarr --model gpt2 --ctx 200 --model wavlm --tr-win 1,2,3,6\n\n"
    "    evaluate summary -s stores/21styear.zarr --csv summary.csv\n\n"
    "    evaluate roi -s stores/21styear.zarr --config wavlm/tr6/9 --top 20\n\n"
    "    evaluate report -s stores/21styear.zarr --out report/\n\n"
    "Run `featstore --help` for stores, dataset import and feature extraction.",
    f"evaluate (featstore {__version__})",
    [evaluate_cmds, report_cmds, analysis_cmds, eeg_cmds],
)


def run() -> None:
    """Console-script entry point."""
    app(prog_name="evaluate")


if __name__ == "__main__":
    run()
