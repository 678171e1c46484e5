"""The ``featstore`` logger: silent until routed (a NullHandler, the library convention),
notices and progress lines as records a notebook or a dask worker can route, and the
command line showing them on stderr as before."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import featstore as fs
from featstore.cli._common import logging_to_stderr
from featstore.evaluate.encoding.settings import EncodingSettings
from tests.evaluate.grid.conftest import build_store

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )


def test_the_package_logger_has_only_a_null_handler():
    package = logging.getLogger("featstore")
    assert [type(h) for h in package.handlers] == [logging.NullHandler]


def test_a_notice_is_silent_until_logging_is_configured():
    """Without the NullHandler, Python's last-resort handler would print it to stderr."""
    done = _run(
        """
        import logging, featstore
        logging.getLogger("featstore.evaluate.runs.grid").warning("reusing results/x")
        """
    )
    assert done.stderr == ""


def test_progress_asked_for_still_shows_where_logging_is_not_configured():
    """A notebook with logging left alone gets its progress lines on stderr."""
    done = _run(
        """
        import io
        from featstore.progress import progress_bar
        with progress_bar("grid r1", 2, enabled=True, stream=io.StringIO()) as advance:
            advance(2)
        """
    )
    lines = [line.split(" ", 1)[1] for line in done.stderr.splitlines()]
    assert lines == ["grid r1: 0/2 (0 %), 0 s elapsed", "grid r1: 2/2 (100 %), 0 s elapsed"]


def test_reusing_an_identical_grid_is_a_logged_notice(tmp_path, caplog):
    build_store(tmp_path / "s.zarr")
    store = fs.open_store(tmp_path / "s.zarr")
    settings = EncodingSettings(pca=6, delays=(1, 2, 3), alphas=(0.1, 10.0, 1000.0), cv=3)
    first = store.grid(models=["wavlm:tr3@3"], settings=settings, progress=False)
    with caplog.at_level(logging.INFO, logger="featstore"):
        again = store.grid(models=["wavlm:tr3@3"], settings=settings, progress=False)
    assert again.run_id == first.run_id
    (record,) = caplog.records
    assert record.name == "featstore.evaluate.runs.grid" and record.levelno == logging.WARNING
    assert record.getMessage().startswith(f"results/{first.run_id} already holds this grid")


def test_the_command_line_prints_notices_and_lines_then_leaves_logging_as_it_was(capsys):
    package = logging.getLogger("featstore")
    handlers, level = list(package.handlers), package.level
    with logging_to_stderr():
        logging.getLogger("featstore.extract.text_model").warning("family [qwen3] untested")
        logging.getLogger("featstore.progress").info("grid r1: 1/2 (50 %)")
        logging.getLogger("featstore.store").debug("not shown")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "warning: family [qwen3] untested"
    assert lines[1].split(" ", 1)[1] == "grid r1: 1/2 (50 %)" and len(lines) == 2
    assert package.handlers == handlers and package.level == level


def test_the_docs_routing_examples_route_progress_lines(tmp_path):
    blocks = re.findall(r"```python\n(.+?)```", (ROOT / "docs" / "logging.md").read_text(), re.S)
    progress = (
        "import io\nfrom featstore.progress import progress_bar\n"
        "with progress_bar('grid r1', 1, enabled=True, stream=io.StringIO()) as advance:\n"
        "    advance(1)\n"
    )
    for block in blocks[:2]:  # the notebook's two ways (the dask one needs a cluster)
        done = subprocess.run(
            [sys.executable, "-c", block + progress],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=True,
        )
        routed = done.stderr + ((tmp_path / "featstore.log").read_text() if "File" in block else "")
        assert routed.count("featstore.progress") == 2 and "grid r1: 1/1 (100 %)" in routed


def test_a_warning_is_also_a_log_record_that_the_command_line_does_not_repeat(
    tmp_path, caplog, capsys
):
    """A constant feature layer: a FeatstoreWarning for the script, the same message as a
    WARNING record for what logging routes (a job's file, a dask client), and one line on
    the command line (which prints the warning, not its copy)."""
    import numpy as np
    import pytest

    from featstore.cli._common import printing_warnings
    from featstore.errors import FeatstoreWarning
    from featstore.store import create_store, write_feature_set

    create_store(tmp_path / "s.zarr", dataset="d", tr_seconds=1.0, n_tr=7)
    hidden = np.random.default_rng(0).standard_normal((3, 7, 5)).astype(np.float32)
    hidden[1] = 0.0
    attrs = {"model_id": "m", "revision": "r", "modality": "text", "pooling": "mean"}
    attrs["stimulus_sha256"] = "a" * 64
    with caplog.at_level(logging.WARNING, logger="featstore"):
        with pytest.warns(FeatstoreWarning, match=r"layer 1 \(of 3\) is constant") as caught:
            write_feature_set(tmp_path / "s.zarr", "m", "ctx2", hidden, attrs=attrs)
    (record,) = caplog.records
    assert record.name == "featstore.store.features" and record.levelno == logging.WARNING
    assert record.getMessage() == str(caught[0].message)
    assert caught[0].filename == __file__  # points at the caller, as before

    with logging_to_stderr(), printing_warnings():
        write_feature_set(tmp_path / "s.zarr", "m", "ctx2", hidden, attrs=attrs, overwrite=True)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: feature set features/m/ctx2: layer 1")
