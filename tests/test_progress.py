"""Progress off a terminal: rate-limited log lines, never a bar; a bar on a terminal."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from featstore import progress
from featstore.errors import InputError

REPO = Path(__file__).parents[1]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(progress, "_clock", fake)
    return fake


def _messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "featstore.progress"]


def test_lines_off_a_terminal_are_rate_limited(caplog, clock):
    caplog.set_level(logging.INFO, logger="featstore")
    log = io.StringIO()  # a log file: not a terminal
    with progress.progress_bar(
        "extract minilm/ctx200", 40, enabled=True, unit="words", stream=log, interval=10
    ) as advance:
        for _ in range(40):  # one word per second: 40 s of work
            clock.now += 1
            advance(1)
    assert _messages(caplog) == [
        "extract minilm/ctx200: 0/40 words (0 %), 0 s elapsed",
        "extract minilm/ctx200: 10/40 words (25 %), 10 s elapsed, ETA 30 s",
        "extract minilm/ctx200: 20/40 words (50 %), 20 s elapsed, ETA 20 s",
        "extract minilm/ctx200: 30/40 words (75 %), 30 s elapsed, ETA 10 s",
        "extract minilm/ctx200: 40/40 words (100 %), 40 s elapsed",
    ]
    assert log.getvalue() == ""  # nothing of a bar goes to the stream itself


def test_a_quick_job_logs_its_start_and_end_only(caplog, clock):
    caplog.set_level(logging.INFO, logger="featstore")
    with progress.progress_bar("grid r1", 500, enabled=True, stream=io.StringIO()) as advance:
        for _ in range(500):
            clock.now += 0.01
            advance(1)
    assert _messages(caplog) == [
        "grid r1: 0/500 (0 %), 0 s elapsed",
        "grid r1: 500/500 (100 %), 5 s elapsed",
    ]


def test_unknown_total_and_long_durations(caplog, clock):
    caplog.set_level(logging.INFO, logger="featstore")
    with progress.progress_bar(
        "report", None, enabled=True, unit="figures", stream=io.StringIO(), interval=600
    ) as advance:
        clock.now += 3725
        advance(3)
    assert _messages(caplog)[-1] == "report: 3 figures done, 1 h 02 min elapsed"


def test_disabled_and_terminal_give_no_log_lines(caplog):
    caplog.set_level(logging.INFO, logger="featstore")
    with progress.progress_bar("x", 3, enabled=False, stream=io.StringIO()) as advance:
        advance(3)
    terminal = _Terminal()
    with progress.progress_bar("extract gpt2/ctx20", 3, enabled=True, stream=terminal) as advance:
        advance(3)
    assert _messages(caplog) == []
    assert "extract gpt2/ctx20" in terminal.getvalue()  # the rich bar went to the terminal


@pytest.mark.parametrize("value", ["soon", "-1", "nan"])
def test_a_bad_interval_is_named(monkeypatch, value):
    monkeypatch.setenv(progress.INTERVAL_ENV, value)
    with pytest.raises(InputError, match=f"FEATSTORE_PROGRESS_INTERVAL='{value}'"):
        progress.progress_interval()


def test_grid_in_a_batch_job_logs_progress_lines(tmp_path):
    """stderr to a pipe, as in a batch job: progress lines, plain text, no bar."""
    from tests.evaluate.grid.conftest import build_store

    store = tmp_path / "s.zarr"
    build_store(store)
    env = {**os.environ, "PYTHONPATH": str(REPO), progress.INTERVAL_ENV: "0"}
    args = ["grid", "-s", str(store), "--model", "gpt2", "--layers", "1,2,3", "--run", "batch"]
    done = subprocess.run(
        [sys.executable, "-m", "featstore.cli.evaluate_main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert [line.split(" ", 1)[1].split(",")[0] for line in lines] == [
        "grid batch: 0/3 configs (0 %)",
        "grid batch: 1/3 configs (33 %)",
        "grid batch: 2/3 configs (67 %)",
        "grid batch: 3/3 configs (100 %)",
    ]
    assert "\x1b" not in done.stderr and "━" not in done.stderr
