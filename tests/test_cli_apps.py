"""What the two command lines share: a fast start and ``--version``."""

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from featstore import __version__
from featstore.cli.evaluate_main import app as evaluate_app
from featstore.cli.main import app as featstore_app

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("xarray", "dask", "zarr", "pandas", "torch", "transformers", "matplotlib")


def test_cli_modules_import_nothing_heavy():
    script = (
        "import sys; import featstore.cli.main, featstore.cli.evaluate_main; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_version_of_both_apps():
    for app, banner in (
        (featstore_app, f"featstore {__version__}"),
        (evaluate_app, f"evaluate (featstore {__version__})"),
    ):
        result = CliRunner().invoke(app, ["--version"])
        assert result.exit_code == 0 and result.stdout.strip() == banner, result.output
