"""``featstore extract``: options, output, errors, and resuming after a SIGKILL."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from featstore import store as fs
from featstore.cli._encoding_options import parse_window_sizes
from featstore.cli.main import app
from featstore.errors import InputError
from featstore.extract.registry import resolve_model
from featstore.extract.text import extract_text

from .conftest import STORY, write_stimulus_store

REPO = Path(__file__).resolve().parents[3]


def test_parse_window_sizes():
    assert parse_window_sizes("1,2,3,6", "--tr-win") == [1, 2, 3, 6]
    assert parse_window_sizes(" 6, 1,6", "--tr-win") == [6, 1]
    assert parse_window_sizes("tr1,tr6", "--tr-win") == [1, 6]
    assert parse_window_sizes("ctx200", "--ctx") == [200]
    assert parse_window_sizes(None, "--tr-win") is None
    for bad in ("1,x", "0", "1,,2", "-1"):
        with pytest.raises(InputError, match="--tr-win"):
            parse_window_sizes(bad, "--tr-win")


def test_extract_prints_the_groups_written(story_store, tiny_bert):
    runner = CliRunner()
    args = ["extract", "--model", tiny_bert, "--ctx", "5", "--store", story_store, "--quiet"]
    result = runner.invoke(app, [*args, "--pool", "mean", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    assert (
        "wrote features/tiny-bert/ctx5: hidden(layer=4, tr=23, dim=24) float32, "
        "word_hidden(layer=4, word=62, dim=24) float32"
    ) in result.output
    assert fs.group_attrs(story_store, "features/tiny-bert/ctx5")["pooling"] == "mean"
    again = runner.invoke(app, args)
    assert again.exit_code == 2
    assert "error:" in again.output and "--overwrite" in again.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ctx", "5", "--tr-win", "2"], "give --ctx N"),
        (["--tr-win", "1,x"], "--tr-win '1,x'"),
        (["--ctx", "0"], "--ctx 0: expected a positive whole number of words"),
        (["--ctx", "5", "--pool", "max"], "--pool 'max'"),
        (["--ctx", "5", "--dtype", "float64"], "--dtype 'float64'"),
        (["--ctx", "5", "--precision", "int8"], "--precision 'int8'"),
        (["--ctx", "5", "--precision", "float16", "--device", "cpu"], "needs a GPU"),
        (["--ctx", "5", "--lanczos-window", "2"], "go with --to-tr lanczos"),
        (["--ctx", "5", "--to-tr", "lanczos", "--lanczos-cutoff", "0"], "--lanczos-cutoff 0"),
    ],
)
def test_bad_options_exit_2_with_one_line(story_store, tiny_bert, extra, message):
    result = CliRunner().invoke(
        app, ["extract", "--model", tiny_bert, "--store", story_store, *extra]
    )
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_killed_extraction_resumes_to_the_same_features(tmp_path, tiny_gpt2):
    words = STORY * 5
    killed = write_stimulus_store(tmp_path / "killed.zarr", words)
    whole = write_stimulus_store(tmp_path / "whole.zarr", words)
    options = {"ctx": 40, "batch_size": 1, "block_words": 10, "threads": 1}
    command = [
        sys.executable, "-m", "featstore", "extract", "--model", tiny_gpt2, "--store", killed,
        "--ctx", "40", "--batch-size", "1", "--block-words", "10", "--threads", "1", "--quiet",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    first_block = Path(killed) / "_work/features/tiny-gpt2/ctx40/_block_done/c/0"
    process = subprocess.Popen(command, cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 120
        while not first_block.exists() and process.poll() is None:
            assert time.monotonic() < deadline, "no block was staged in 120 s"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not fs.is_complete(killed, "features/tiny-gpt2/ctx40")
    # the rerun: the same command line, in this process to save a start-up
    done = CliRunner().invoke(app, command[3:])
    assert done.exit_code == 0, done.output
    assert "wrote features/tiny-gpt2/ctx40" in done.output
    extract_text(whole, resolve_model(tiny_gpt2), **options)
    group = "features/tiny-gpt2/ctx40"
    resumed = xr.open_zarr(killed, group=group, consolidated=False).load()
    reference = xr.open_zarr(whole, group=group, consolidated=False).load()
    n_blocks = -(-len(words) // 10)
    assert 1 <= resumed.attrs["resumed_blocks"] < n_blocks
    for name in ("hidden", "word_hidden", "has_words", "context_words"):
        np.testing.assert_array_equal(resumed[name].values, reference[name].values)
