"""Option groups (featstore.cli._option_groups): declared once, handed to a command whole."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from featstore.cli import dataset_cmds, eeg_import_cmds, evaluate_cmds, extract_cmds
from featstore.cli._option_groups import Flag, option_group
from featstore.errors import InputError


def test_a_group_takes_the_place_of_its_parameter_and_reaches_the_command_built():
    seen = {}

    @option_group(
        "options",
        (Flag("size", int, "A size.", 3), Flag("label_file", Path, "A file.")),
        build=lambda **values: sorted(values.items()),
    )
    def command(name: str, count: int = 1, *, options: list, last: bool = False) -> None:
        seen.update(name=name, count=count, options=options, last=last)

    signature = inspect.signature(command)
    assert list(signature.parameters) == ["name", "count", "size", "label_file", "last"]
    assert signature.parameters["size"].kind is inspect.Parameter.KEYWORD_ONLY
    app = typer.Typer()
    app.command()(command)
    result = CliRunner().invoke(app, ["x", "--label-file", "f.json", "--last"])
    assert result.exit_code == 0, result.output
    assert seen == {
        "name": "x",
        "count": 1,
        "options": [("label_file", Path("f.json")), ("size", 3)],
        "last": True,
    }
    assert "--label-file" in CliRunner().invoke(app, ["--help"]).output


_STORIES = Flag("test_stories", str, "Stories to test on.")
_SWITCH = Flag("on", bool, "Switch it.", True, flags=("--on/--off",))


def test_a_flag_is_the_option_it_declares():
    assert _STORIES.parameter().default is None
    seen = {}

    def command(test_stories: _STORIES.option = None, on: _SWITCH.option = True) -> None:
        seen.update(test_stories=test_stories, on=on)

    app = typer.Typer()
    app.command()(command)
    assert CliRunner().invoke(app, ["--test-stories", "a,b", "--off"]).exit_code == 0
    assert seen == {"test_stories": "a,b", "on": False}
    shown = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100"}).output
    assert "Stories to test on." in shown and "--on" in shown


def _parameters(command) -> list[str]:
    return list(inspect.signature(command).parameters)


def test_grouped_options_keep_their_place_in_help_order():
    grid = _parameters(evaluate_cmds.grid)
    assert grid[grid.index("fusion") : grid.index("fusion") + 5] == [
        "fusion", "ctx", "tr_win", "layers", "partition",
    ]  # fmt: skip
    assert grid[grid.index("run") :] == ["run", "cv", "test_stories", "story", "quiet"]
    assert grid[grid.index("workers") : grid.index("run")] == [
        "workers", "threads_per_worker", "scheduler", "backend", "device",
    ]  # fmt: skip
    extract = _parameters(extract_cmds.extract)
    assert extract[:4] == ["model", "store", "ctx", "tr_win"]
    assert extract[-4:] == ["transcript", "overwrite", "story", "quiet"]
    dataset = _parameters(dataset_cmds.import_)
    at = dataset.index("story")
    assert dataset[at : at + 6] == ["story", "bids", "pipeline", "tasks", "subjects", "dataset"]
    assert dataset[-4:] == ["overwrite", "eeg", "onset_event", "onset"]
    assert _parameters(eeg_import_cmds.import_eeg)[-3:] == ["tmin", "montage", "overwrite"]


def test_extractor_options_become_the_extractor_arguments():
    options = {flag.name: flag.default for flag in extract_cmds._EXTRACTOR_OPTIONS}
    assert extract_cmds._extractor_options(**options) == {"dtype": "float32", "words": False}
    options.update(
        tr_win="1,2", whisper_unpadded=True, max_memory="0=2GiB", offload_folder=Path("o")
    )
    assert extract_cmds._extractor_options(**options) == {
        "dtype": "float32",
        "words": False,
        "tr_wins": [1, 2],
        "pad_to_30s": False,
        "max_memory": {"0": "2GiB"},
        "offload_folder": "o",
    }
    with pytest.raises(InputError, match="go with --to-tr lanczos"):
        extract_cmds._extractor_options(**{**options, "lanczos_cutoff": 0.5})


def test_grid_split_reads_cv_and_test_stories():
    assert evaluate_cmds._split("stories", None, None) == {
        "story": None, "test_stories": None, "cv_stories": True, "cv": None,
    }  # fmt: skip
    assert evaluate_cmds._split("3", "lucy, tunnel", None) == {
        "story": None, "test_stories": ["lucy", "tunnel"], "cv_stories": False, "cv": 3,
    }  # fmt: skip
    with pytest.raises(InputError, match="number of folds"):
        evaluate_cmds._split("three", None, None)


def test_eeg_import_options_name_the_resampling_rate_sfreq():
    options = {flag.name: flag.default for flag in eeg_import_cmds._RECORDING_OPTIONS}
    built = eeg_import_cmds._import_options(**{**options, "resample": 128.0})
    assert built["sfreq"] == 128.0 and "resample" not in built
    assert built["onset_event"] == "story_onset" and built["tmin"] == -1.0
