"""Both command lines start without the array stack: ``--help`` must be instant."""

import subprocess
import sys
from pathlib import Path

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
