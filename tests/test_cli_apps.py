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


def _all_flags() -> set[str]:
    """Every option flag of every command of both apps."""
    import typer.main

    flags: set[str] = set()
    pending = [typer.main.get_command(featstore_app), typer.main.get_command(evaluate_app)]
    while pending:
        command = pending.pop()
        pending.extend(getattr(command, "commands", {}).values())
        for param in command.params:
            flags.update(opt for opt in param.opts if opt.startswith("--"))
    return flags


def test_every_mapped_parameter_is_a_flag_of_the_cli():
    from featstore.cli._flags import PARAMETER_FLAGS

    flags = _all_flags()
    for parameter, flag in PARAMETER_FLAGS.items():
        assert set(flag.split(" or ")) <= flags, (parameter, flag)


def test_library_messages_of_extraction_and_import_name_parameters():
    """Messages raised by extract/, datasets/, store/, outputs.py, the report, its figures
    and the significance tests quote no CLI flag (docstrings and comments may); the CLI
    maps the parameters they name back."""
    import ast
    import re

    flag = re.compile(r"(?<![\w-])--[a-z]")
    package = ROOT / "featstore"
    files = [*package.glob("extract/*.py"), *package.glob("datasets/*.py")]
    files += [*package.glob("store/*.py"), package / "outputs.py"]
    files += [*package.glob("report/*.py"), *package.glob("plot/*.py")]
    files += [package / "evaluate" / "runs" / "significance.py"]
    quoted = []
    for file in files:
        tree = ast.parse(file.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and flag.search(node.value)
            ):
                quoted.append(f"{file.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert quoted == []


def test_library_messages_read_as_the_cli_flags():
    from featstore.cli._flags import as_flags

    for message, cli in [
        (
            "tr_wins=5 is 2.5 s of audio; use tr_wins=4 or less",
            "--tr-win 5 is 2.5 s of audio; use --tr-win 4 or less",
        ),
        (
            "`max_memory` and `offload_folder` go with `device_map` (e.g. auto)",
            "--max-memory and --offload-folder go with --device-map (e.g. auto)",
        ),
        (
            "gpt2 is a text model: give `ctx` N, not `tr_wins`",
            "gpt2 is a text model: give --ctx N, not --tr-win",
        ),
        (
            "store=s.zarr: dataset import writes local stores only",
            "--store s.zarr: dataset import writes local stores only",
        ),
        ("`batch_size` must be >= 1, got 0", "--batch-size must be >= 1, got 0"),
        ("`out_dir` rep: is a file", "--out rep: is a file"),
        (
            "this RSA run has no 'rho_partial' (run the RSA with `partial`)",
            "this RSA run has no 'rho_partial' (run the RSA with --partial)",
        ),
        (
            "import the EEG with `montage` (e.g. standard_1020)",
            "import the EEG with --montage (e.g. standard_1020)",
        ),
    ]:
        assert as_flags(message) == cli
