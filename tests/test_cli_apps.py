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


def _commands(command, path):
    """Every command and group under ``command`` (a click command), with its path."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, [*path, name])


def test_every_command_and_group_help_shows_an_example():
    from typer.main import get_command

    seen = []
    for app, name in ((featstore_app, "featstore"), (evaluate_app, "evaluate")):
        for path, _ in _commands(get_command(app), [name]):
            result = CliRunner().invoke(app, [*path[1:], "--help"], env={"COLUMNS": "120"})
            assert result.exit_code == 0, result.output
            help_text = result.output
            assert "Example" in help_text, " ".join(path)
            usage = " ".join(path)
            after = help_text[help_text.index("Example") :]
            assert usage in after, f"{usage}: the example does not run {usage!r}"
            seen.append(usage)
    assert {"evaluate", "featstore dataset", "featstore features", "evaluate plot"} <= set(seen)
