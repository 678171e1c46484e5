"""Disk-full and read-only stores: one clear line, exit 2, and the store left readable.

The real thing runs on a small tmpfs (mounted for the test; needs root or
CAP_SYS_ADMIN, else skipped with the reason). The same failures are also injected at
Zarr's file-writing function, so they are tested on every machine.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import zarr.storage._local as zarr_local

from featstore import store as fs
from featstore.errors import StoreError
from tests.datasets.conftest import N_TR
from tests.reliability.conftest import (
    Workspace,
    assert_clean_failure,
    copy_workspace,
    run_cli,
)


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` for the duration (skips if not permitted)."""
    if not _mount_tmpfs(path, size):
        pytest.skip("cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def _remount_read_only(path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)


def _big_layers(path: Path, n_layers: int, dim: int) -> Path:
    # random values do not compress: the bytes written are the bytes asked for
    values = np.random.default_rng(0).standard_normal((n_layers, N_TR, dim)).astype(np.float32)
    np.save(path, values)
    return path


def _assert_readable(ws: Workspace, template: Path) -> None:
    for argv in (["ls", ws.store], ["validate", ws.store], ["info", ws.store, "fmri"]):
        result = run_cli(argv)
        assert result.exit_code == 0, (argv, result.output)
    stored = fs.open_feature_set(ws.store, "mine", "tr2").hidden.values
    np.testing.assert_array_equal(stored, np.load(template / "layers.npy"))


def test_read_only_mount(template, tmp_path):
    with tmpfs(tmp_path / "ro", "16m") as mount:
        ws = copy_workspace(template, mount)
        layers = _big_layers(tmp_path / "layers.npy", 2, 5)  # outside the mount
        _remount_read_only(mount)
        before = ws.snapshot()
        result = run_cli(ws.features_args(layers))
        assert_clean_failure(result, "story.zarr", "read-only file system")
        result = run_cli(ws.import_args())
        assert_clean_failure(result, "story.zarr", "read-only file system")
        assert ws.snapshot() == before
        _assert_readable(ws, template)


def test_disk_full_tmpfs(template, tmp_path):
    ws = copy_workspace(template, tmp_path)
    with tmpfs(tmp_path / "small", "3m") as mount:
        ws.store = shutil.copytree(ws.store, mount / "story.zarr")  # ~1 MB of the 3
        big = _big_layers(tmp_path / "big.npy", 3, 40_000)  # 3.4 MB
        before = ws.snapshot()
        result = run_cli(ws.features_args(big))
        assert_clean_failure(result, "disk full while writing group 'features/other/tr2'")
        assert ws.snapshot() == before  # the partial group is gone, its space free again
        _assert_readable(ws, template)
        result = run_cli(ws.features_args(_big_layers(tmp_path / "small.npy", 2, 5)))
        assert result.exit_code == 0, result.output
        assert fs.validate(ws.store) == []

        long_audio = tmp_path / "long.wav"
        noise = np.random.default_rng(1).uniform(-0.5, 0.5, 16_000 * 60).astype(np.float32)
        sf.write(long_audio, noise, 16_000, subtype="FLOAT")  # 3.8 MB that do not compress
        argv = ["dataset", "import", "--align", ws.align, "--audio", long_audio, "--tr", "1.5"]
        result = run_cli([*map(str, argv), "--store", str(mount / "new.zarr")])
        assert_clean_failure(result, "new.zarr", "disk full")
        assert [p.name for p in mount.iterdir()] == ["story.zarr"]  # no staging left


@contextlib.contextmanager
def failing_writes(monkeypatch, error: int, after: int) -> Iterator[None]:
    """Zarr's file writes fail with ``error`` after ``after`` successful ones."""
    real_put = zarr_local._put
    count = {"writes": 0}

    def put(path, value, exclusive=False):
        count["writes"] += 1
        if count["writes"] > after:
            raise OSError(error, f"{errno.errorcode[error]} injected", str(path))
        return real_put(path, value, exclusive=exclusive)

    with monkeypatch.context() as patch:
        patch.setattr(zarr_local, "_put", put)
        yield


@pytest.mark.parametrize(
    ("error", "message"),
    [(errno.ENOSPC, "disk full while writing"), (errno.EROFS, "read-only file system")],
)
@pytest.mark.parametrize("after", [0, 2, 5])
def test_injected_write_failures(template, tmp_path, monkeypatch, error, message, after):
    ws = copy_workspace(template, tmp_path)
    layers = _big_layers(tmp_path / "layers.npy", 3, 7)
    before = ws.snapshot()
    with failing_writes(monkeypatch, error, after):
        result = run_cli(ws.features_args(layers))
    assert_clean_failure(result, "story.zarr", message)
    assert ws.snapshot() == before
    _assert_readable(ws, template)


def test_stage_block_on_full_disk(template, tmp_path, monkeypatch):
    ws = copy_workspace(template, tmp_path)
    stage = fs.BlockStage(
        ws.store,
        "features/staged/tr1",
        {"hidden": fs.StagedArray((2, N_TR, 3), "float32", block_axis=1)},
        block_size=3,
        settings={"seed": uuid.uuid4().hex},
    )
    stage.write_block(0, hidden=np.ones((2, 3, 3)))
    with failing_writes(monkeypatch, errno.ENOSPC, 0), pytest.raises(StoreError) as info:
        stage.write_block(1, hidden=np.ones((2, 3, 3)))
    assert "disk full while writing block 1" in str(info.value)
    assert stage.pending_blocks() == [1, 2]  # the block that failed is not marked done
    stage.discard()
    shutil.rmtree(ws.store / "_work", ignore_errors=True)
