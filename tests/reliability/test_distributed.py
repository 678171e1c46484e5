"""A grid on a real dask cluster: ``dask scheduler`` and two ``dask worker`` processes on
127.0.0.1 (random free ports), torn down whatever happens; results identical to a local run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from featstore import store as fs
from featstore.cli.evaluate_main import app
from tests.evaluate.grid.conftest import build_store as build_grid_store
from tests.reliability.conftest import REPORT
from tests.reliability.test_crash_resume import assert_same_group

pytestmark = pytest.mark.slow
REPO = Path(__file__).parents[2]
STARTUP_S = 90


def _start(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


@pytest.fixture
def dask_cluster(tmp_path) -> Iterator[str]:
    """The address of a scheduler with two single-threaded workers, all separate processes."""
    from distributed import Client

    scheduler_file = tmp_path / "scheduler.json"
    processes = []
    try:
        scheduler = ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0"]
        scheduler += ["--no-dashboard", "--scheduler-file", str(scheduler_file)]
        processes.append(_start(scheduler, tmp_path / "scheduler.log"))
        deadline = time.monotonic() + STARTUP_S
        while not scheduler_file.exists():
            assert processes[0].poll() is None, (tmp_path / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        for name in ("w1", "w2"):
            worker = ["distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file)]
            worker += ["--nthreads", "1", "--nworkers", "1", "--host", "127.0.0.1"]
            worker += ["--no-dashboard", "--name", name, "--death-timeout", "60"]
            processes.append(_start(worker, tmp_path / f"{name}.log"))
        with Client(scheduler_file=str(scheduler_file), timeout=STARTUP_S) as client:
            client.wait_for_workers(2, timeout=STARTUP_S)
            address = client.scheduler.address
        assert address.startswith("tcp://127.0.0.1:")
        yield address
    finally:
        for process in reversed(processes):
            _stop(process)


def test_grid_on_a_real_cluster_equals_the_local_run(tmp_path, dask_cluster):
    local, remote = tmp_path / "local.zarr", tmp_path / "remote.zarr"
    build_grid_store(local)
    shutil.copytree(local, remote)
    request = ["grid", "--model", "wavlm", "--tr-win", "3", "--fusion", "gpt2+wavlm"]
    request += ["--ctx", "20", "--layers", "2,3,4", "--pca", "6", "--delays", "1,2,3"]
    request += ["--alphas", "0.1,10,1000", "--cv", "3", "--run", "r", "--quiet", "--store"]
    done = CliRunner().invoke(app, [*request, str(local), "--threads-per-worker", "1"])
    assert done.exit_code == 0, done.output
    done = CliRunner().invoke(app, [*request, str(remote), "--scheduler", dask_cluster])
    assert done.exit_code == 0, done.output
    on_cluster = fs.open_group(remote, "results/r").load()
    here = fs.open_group(local, "results/r").load()
    assert on_cluster.attrs["execution"]["scheduler"] == dask_cluster
    assert on_cluster.attrs["n_computed"] == here.attrs["n_computed"] == 3 + 9
    for ds in (on_cluster, here):
        ds.attrs.pop("execution")
    assert_same_group(on_cluster, here)
    REPORT.append(
        f"distributed: a 12-config grid on dask scheduler + 2 workers ({dask_cluster}) "
        "equals the local run exactly"
    )


def test_store_behind_an_fsspec_url(tmp_path):
    """The store API and a grid through fsspec (memory://, as s3:// or gs:// would go)."""
    url = f"memory://featstore-{tmp_path.name}/grid.zarr"
    local = tmp_path / "local.zarr"
    build_grid_store(url)
    build_grid_store(local)
    request = ["grid", "--model", "wavlm", "--tr-win", "3", "--layers", "2,3", "--pca", "6"]
    request += ["--delays", "1,2,3", "--alphas", "0.1,10,1000", "--cv", "3", "--run", "u"]
    for store in (url, str(local)):
        done = CliRunner().invoke(app, [*request, "--quiet", "--store", store])
        assert done.exit_code == 0, done.output
    assert fs.validate(url) == []
    remote, here = (fs.open_group(s, "results/u").load() for s in (url, str(local)))
    # the two stores were built apart: their feature sets' "created" stamps (part of the
    # provenance and so of the config hashes) may differ by a second
    for ds in (remote, here):
        ds.attrs.pop("features")
    assert_same_group(remote.drop_vars("config_hash"), here.drop_vars("config_hash"))
