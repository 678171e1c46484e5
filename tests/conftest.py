"""Shared fixtures: small stores with distinct sizes per axis."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest

from featstore import store as fs

N_TR = 37


@pytest.fixture
def empty_store(tmp_path):
    """A store with root attrs only (n_tr = 37)."""
    path = tmp_path / "s.zarr"
    fs.create_store(path, dataset="tiny", tr_seconds=1.5, n_tr=N_TR)
    return path


@pytest.fixture
def feature_attrs():
    """Minimal provenance attrs of a feature set."""
    return {
        "model_id": "org/tiny-model",
        "revision": "main",
        "modality": "audio",
        "pooling": "mean",
        "stimulus_sha256": "0" * 64,
    }


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory):
    """`featstore demo --no-whisper` run once per test session: (store, report, output).

    Tests that write into the store copy it first (``shutil.copytree``).
    """
    from typer.testing import CliRunner

    from featstore.cli.main import app

    root = tmp_path_factory.mktemp("demo")
    store, report = root / "demo.zarr", root / "report"
    result = CliRunner().invoke(
        app, ["demo", "--no-whisper", "--quiet", "--store", str(store), "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    return store, report, result.output
