"""80-column terminals: tables and progress bars keep numbers, run ids and totals whole."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from rich.console import Console
from rich.progress import Progress
from typer.testing import CliRunner

from featstore.cli import _common
from featstore.cli.evaluate_cmds import _summary_rich
from featstore.cli.evaluate_main import app
from featstore.progress import progress_columns

WIDTH = 80
FAST = ["--pca", "6", "--delays", "1,2,3", "--alphas", "0.1,10,1000", "--cv", "3", "--quiet"]


def _render(renderable) -> list[str]:
    console = Console(width=WIDTH, file=io.StringIO(), color_system=None)
    console.print(renderable)
    lines = console.file.getvalue().splitlines()
    assert all(len(line) <= WIDTH for line in lines)
    return lines


def test_progress_bar_shows_total_elapsed_and_eta():
    progress = Progress(*progress_columns(), console=Console(width=WIDTH, file=io.StringIO()))
    task = progress.add_task("extract sentence-transformers--all-MiniLM-L6-v2/ctx200", total=12000)
    progress.update(task, completed=447)
    (line,) = _render(progress.make_tasks_table(progress.tasks))
    assert "447/12000" in line and "0:00:00" in line and "-:--:--" in line, line
    assert line.startswith("extract sentence-transformers") and "…" in line


def test_summary_numbers_are_never_cut():
    rows = [
        {"model": "sentence-transformers--all-MiniLM-L6-v2+openai--whisper-base",
         "window": "ctx200+tr6", "layer": "12x6", "method": "banded"},
        {"model": "minilm+whisper-base", "window": "ctx200+tr6", "layer": "2x3",
         "method": "concat"},
    ]  # fmt: skip
    numbers = {"mean": -0.01234, "std": 0.1234, "median": -0.00123, "min": -0.123456, "max": 0.4}
    table = pd.DataFrame([{**row, **numbers} for row in rows])
    text = "\n".join(_render(_summary_rich(table, title="every config")))
    for value in ("-0.0123", "0.1234", "-0.0012", "-0.1235", "0.4000", "ctx200+tr6"):
        assert text.count(value) == 2, value
    assert "12x6" in text and "2x3" in text
    assert "…" not in text
    assert "minilm+whisper-base" in text  # a name that fits is not cut


@pytest.fixture
def narrow_console(monkeypatch):
    monkeypatch.setattr(_common.console, "width", WIDTH)


def test_run_ids_are_printed_whole(grid_store, narrow_console):
    run_id = "grid-20250101-120000-2"
    for model, run in (("gpt2", run_id), ("wavlm:tr3", "grid-20250101-120000-3")):
        args = ["grid", "-s", str(grid_store), "--model", model, "--layers", "3", "--run", run]
        assert CliRunner().invoke(app, [*args, *FAST]).exit_code == 0
    result = CliRunner().invoke(app, ["runs", "-s", str(grid_store)])
    assert result.exit_code == 0, result.output
    assert run_id in result.stdout and "grid-20250101-120000-3" in result.stdout
    assert "1 (1/0/0)" in result.stdout
    assert all(len(line) <= WIDTH for line in result.stdout.splitlines())
    result = CliRunner().invoke(app, ["summary", "-s", str(grid_store)])
    assert result.exit_code == 0, result.output
    assert f"run {run_id}" in result.stdout  # several runs: one table per run
    assert all(len(line) <= WIDTH for line in result.stdout.splitlines())
