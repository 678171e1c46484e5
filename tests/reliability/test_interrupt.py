"""Ctrl-C on a grid with worker processes: one line, no traceback, and a rerun resumes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from featstore.evaluate.runs.results import list_runs
from tests.evaluate.grid.conftest import build_store

pytestmark = pytest.mark.slow
REPO = Path(__file__).parents[2]
#: Default SIGINT handling, unblocked, then exec the command: as a shell starts a foreground
#: job, whatever the test process inherited (an ignored or blocked SIGINT is inherited by
#: children and would make the grid deaf to the Ctrl-C under test).
AS_A_SHELL_STARTS_A_JOB = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


def _grid(store: Path) -> subprocess.Popen:
    argv = ["grid", "-s", str(store), "--fusion", "gpt2:ctx20+wavlm:tr2,3", "--model", "gpt2"]
    argv += ["--layers", "all", "--pca", "6", "--cv", "5", "--run", "ctrl-c", "--quiet"]
    argv += ["--alphas", ",".join(f"1e{k}" for k in range(-3, 9))]
    argv += ["--workers", "2", "--threads-per-worker", "1"]
    return subprocess.Popen(
        [sys.executable, "-c", AS_A_SHELL_STARTS_A_JOB, "-m", "featstore.cli.evaluate_main", *argv],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )


def _staged_configs(store: Path) -> int:
    """Configs the unfinished run has staged (0 before its stage exists or once complete)."""
    try:
        with warnings.catch_warnings():  # zarr warns about a stage still being created
            warnings.simplefilter("ignore")
            runs = {run.run_id: run for run in list_runs(store)}
    except Exception:  # the stage may be half-created at this instant
        return 0
    run = runs.get("ctrl-c")
    return run.n_done if run is not None and not run.complete else 0


def _started_grid(tmp_path: Path) -> tuple[Path, subprocess.Popen]:
    """A grid with at least one config staged and more to come: the moment to press Ctrl-C.

    On a fast machine the whole grid may finish between two polls; then try again (the
    point is an interrupt in the middle of the work, which needs a run still going).
    """
    for attempt in range(3):
        store = tmp_path / f"s{attempt}.zarr"
        build_store(store)
        process = _grid(store)
        deadline = time.monotonic() + 240
        while process.poll() is None and time.monotonic() < deadline:
            if _staged_configs(store) > 0:
                return store, process
            time.sleep(0.02)
        process.communicate(timeout=120)
    pytest.fail("the grid finished before a Ctrl-C could land in it, 3 times")


def test_ctrl_c_on_a_grid_with_workers_prints_one_line_and_resumes(tmp_path):
    store, process = _started_grid(tmp_path)
    # a terminal's Ctrl-C: SIGINT to the whole foreground process group, workers included
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert err.strip().splitlines() == ["interrupted; rerun the same command to resume"], err

    rerun = _grid(store)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    resumed = re.search(r"(\d+) resumed", out)
    assert resumed and int(resumed.group(1)) > 0, out
