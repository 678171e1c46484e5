"""SIGKILL at random points, many times, then resume: the result equals an uninterrupted
run exactly, and a reader polling all along never sees a half-written group.

Each kill is seeded (``numpy.random.default_rng``) and lands at a uniformly random time
in the command's work: the command runs in a pre-imported driver
(``tests/reliability/_cli_driver.py``) and the clock starts when it is told to go, so no
kill is wasted on Python's start-up. The whole process group is killed, as a batch
system does.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from featstore import store as fs
from featstore.errors import GroupNotFoundError, IncompleteGroupError
from tests.evaluate.grid.conftest import build_store as build_grid_store
from tests.extract.audio.conftest import noise_audio
from tests.extract.audio.conftest import write_stimulus as write_audio_stimulus
from tests.extract.text.conftest import STORY, write_stimulus_store
from tests.reliability.conftest import REPORT

pytestmark = pytest.mark.slow
REPO = Path(__file__).parents[2]
N_KILLS = 5
# attrs that differ between two runs of the same work by design
_RUN_ATTRS = {"created", "extracted", "resumed_blocks", "n_computed", "n_resumed", "n_reused"}


class Driver:
    """A pre-imported featstore command, started on ``go`` and killable at any time."""

    def __init__(self, program: str, argv: list[str]) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability._cli_driver", program, *map(str, argv)],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, killed as a whole
        )
        ready = self.process.stdout.readline().strip()
        assert ready == "ready", (ready, self.process.stderr.read())
        self.started = 0.0

    def go(self) -> None:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        self.started = time.monotonic()

    def kill_after(self, seconds: float) -> bool:
        """SIGKILL the process group ``seconds`` after go; False if it had already ended."""
        try:
            self.process.wait(timeout=max(0.0, self.started + seconds - time.monotonic()))
            return False
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=60)
            return True
        finally:
            self.close()

    def finish(self, timeout: float = 300) -> tuple[int, str]:
        _, stderr = self.process.communicate(timeout=timeout)
        return self.process.returncode, stderr

    def close(self) -> None:
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            stream.close()


def run_whole(program: str, argv: list[str]) -> float:
    """Run a command to the end; return the seconds its work took."""
    driver = Driver(program, argv)
    driver.go()
    code, stderr = driver.finish()
    assert code == 0, stderr
    return time.monotonic() - driver.started


class PollingReader(threading.Thread):
    """Opens ``group`` again and again while writers work on it.

    Every open must either be refused (the group is absent or incomplete) or give
    exactly the reference values; anything else is recorded as a failure.
    """

    def __init__(self, store: Path, group: str, reference: xr.Dataset) -> None:
        super().__init__(daemon=True)
        self.store, self.group, self.reference = store, group, reference
        self.refused = self.complete = 0
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                ds = fs.open_group(self.store, self.group).load()
            except (IncompleteGroupError, GroupNotFoundError):
                self.refused += 1
            except Exception as exc:  # any other outcome is the failure under test
                self.failures.append(repr(exc))
            else:
                try:
                    assert_same_group(ds, self.reference)
                    self.complete += 1
                except AssertionError as exc:
                    self.failures.append(f"read a complete group with other values: {exc}")
            time.sleep(0.005)


def assert_same_group(ds: xr.Dataset, reference: xr.Dataset) -> None:
    """Same variables, coords and values (NaN where NaN), and the same attrs but run times."""
    assert sorted(ds.variables) == sorted(reference.variables)
    for name in reference.variables:
        np.testing.assert_array_equal(ds[name].values, reference[name].values, err_msg=name)
    keep = lambda attrs: {k: v for k, v in attrs.items() if k not in _RUN_ATTRS}  # noqa: E731
    assert keep(ds.attrs) == keep(reference.attrs)


def kill_and_resume(
    program: str, argv: list[str], store: Path, group: str, reference: xr.Dataset, work_s: float
) -> dict[str, int]:
    """N_KILLS seeded kills, then a run to the end.

    Each run resumes what the killed ones left, so the kill times are drawn uniformly in
    [0.2, 2] × work_s / N_KILLS: together they spread over the whole work, finalizing
    included.
    """
    rng = np.random.default_rng(8)
    reader = PollingReader(store, group, reference)
    reader.start()
    killed = 0
    try:
        for delay in rng.uniform(0.2, 2.0, N_KILLS) * work_s / N_KILLS:
            driver = Driver(program, argv)
            driver.go()
            killed += driver.kill_after(delay)
            if fs.is_complete(store, group):
                break
        final = Driver(program, argv)
        final.go()
        code, stderr = final.finish()
        # a kill after the last complete flag leaves nothing to do: the rerun says so
        assert code == 0 or (code == 2 and "already" in stderr), stderr
    finally:
        reader.stop.set()
        reader.join(timeout=30)
    assert reader.failures == [], reader.failures[:3]
    assert_same_group(fs.open_group(store, group).load(), reference)
    assert fs.validate(store) == []
    REPORT.append(
        f"crash {group}: {killed} of {N_KILLS} SIGKILLs landed in the work; the polling "
        f"reader was refused {reader.refused} times and read the complete group "
        f"{reader.complete} times, always equal to the uninterrupted run"
    )
    return {"killed": killed, "refused": reader.refused, "complete_reads": reader.complete}


def test_text_extraction_killed_repeatedly(tmp_path, tiny_gpt2):
    words = STORY * 3
    argv = ["extract", "--model", tiny_gpt2, "--ctx", "24", "--batch-size", "2"]
    argv += ["--block-words", "12", "--threads", "1", "--quiet", "--store"]
    group = "features/tiny-gpt2/ctx24"
    whole = write_stimulus_store(tmp_path / "whole.zarr", words)
    work_s = run_whole("featstore", [*argv, whole])
    reference = fs.open_group(whole, group).load()
    store = Path(write_stimulus_store(tmp_path / "killed.zarr", words))
    seen = kill_and_resume("featstore", [*argv, store], store, group, reference, work_s)
    assert seen["killed"] >= N_KILLS // 2, seen  # most kills landed in the work
    assert not (store / "_work" / group).exists()  # the stage is gone


def test_grid_killed_repeatedly(tmp_path):
    argv = ["grid", "--model", "gpt2", "--ctx", "20", "--model", "wavlm", "--tr-win", "2,3"]
    argv += ["--layers", "all", "--pca", "6", "--delays", "1,2,3", "--alphas", "0.1,10,1000"]
    argv += ["--cv", "3", "--run", "crash", "--quiet", "--store"]
    group = "results/crash"
    whole, store = tmp_path / "whole.zarr", tmp_path / "killed.zarr"
    build_grid_store(whole)
    shutil.copytree(whole, store)  # the same features, "created" stamps included
    work_s = run_whole("evaluate", [*argv, whole])
    reference = fs.open_group(whole, group).load()
    seen = kill_and_resume("evaluate", [*argv, store], store, group, reference, work_s)
    assert seen["killed"] >= N_KILLS // 2, seen


def test_audio_extraction_killed_repeatedly(tmp_path):
    """The loop every audio, multimodal and low-level extractor shares (``window_run``),
    here with the weight-free spectral model, two windows at once: kills also land
    between one window's final write and the other's, and the rerun must finish the
    second without --overwrite. (Tiny speech models go through the same loop;
    tests/extract/audio/test_resume.py kills one of them.)"""
    argv = ["extract", "--model", "spectral", "--tr-win", "1,3", "--batch-size", "2"]
    argv += ["--quiet", "--store"]
    groups = ["features/spectral/tr1", "features/spectral/tr3"]
    audio = noise_audio(40.0, seed=3)
    whole = write_audio_stimulus(tmp_path / "whole.zarr", audio, stim_onset=0.75, tr=0.5, n_tr=80)
    work_s = run_whole("featstore", [*argv, whole])
    store = write_audio_stimulus(tmp_path / "killed.zarr", audio, stim_onset=0.75, tr=0.5, n_tr=80)
    reference = fs.open_group(whole, groups[1]).load()
    seen = kill_and_resume("featstore", [*argv, store], store, groups[1], reference, work_s)
    assert_same_group(
        fs.open_group(store, groups[0]).load(), fs.open_group(whole, groups[0]).load()
    )
    assert seen["killed"] >= N_KILLS // 2, seen


def test_rerun_after_a_kill_between_two_windows(tmp_path):
    """One window complete, the other not: the same command finishes the other."""
    from typer.testing import CliRunner

    from featstore.cli.main import app

    audio = noise_audio(6.0, seed=4)
    store = write_audio_stimulus(tmp_path / "s.zarr", audio, stim_onset=0.75, tr=0.5, n_tr=12)
    first = ["extract", "--model", "spectral", "--tr-win", "1", "--quiet", "--store", str(store)]
    assert CliRunner().invoke(app, first).exit_code == 0
    tr1 = fs.open_group(store, "features/spectral/tr1").load()
    leftover = _leave_stage(store, "features/spectral/tr1")  # killed before its discard
    both = [*first[:3], "--tr-win", "1,3", *first[5:]]
    done = CliRunner().invoke(app, both)
    assert done.exit_code == 0, done.output
    assert "wrote features/spectral/tr3" in done.stdout and not leftover.exists()
    assert_same_group(fs.open_group(store, "features/spectral/tr1").load(), tr1)
    again = CliRunner().invoke(app, both)
    assert again.exit_code == 2 and "already extracted" in again.stderr


def _leave_stage(store: Path, group: str) -> Path:
    """What a writer killed after the complete flag, before discarding its stage, leaves."""
    stage = fs.BlockStage(
        store, group, {"x": fs.StagedArray((3,), "float32")}, block_size=1, settings={}
    )
    stage.write_block(0, x=np.ones(1))
    return store / "_work" / group


@pytest.mark.parametrize("program", ["featstore", "evaluate"])
def test_stage_left_after_the_complete_flag_is_removed(tmp_path, tiny_gpt2, program):
    from typer.testing import CliRunner

    from featstore.cli.evaluate_main import app as evaluate_app
    from featstore.cli.main import app as featstore_app

    if program == "featstore":
        store = Path(write_stimulus_store(tmp_path / "s.zarr", STORY))
        argv = ["extract", "--model", tiny_gpt2, "--ctx", "8", "--quiet", "--store", store]
        group, app = "features/tiny-gpt2/ctx8", featstore_app
    else:
        store = tmp_path / "s.zarr"
        build_grid_store(store)
        argv = ["grid", "--model", "gpt2", "--ctx", "20", "--pca", "6", "--cv", "3"]
        argv += ["--alphas", "1,100", "--run", "r1", "--quiet", "--store", store]
        group, app = "results/r1", evaluate_app
    argv = [str(a) for a in argv]
    assert CliRunner().invoke(app, argv).exit_code == 0
    before = fs.open_group(store, group).load()
    leftover = _leave_stage(store, group)
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2 and "already exists" in result.stderr, result.output
    assert not leftover.exists()
    assert_same_group(fs.open_group(store, group).load(), before)
