"""analysis_inputs: the options every analysis command has, added once, in --help order."""

from __future__ import annotations

import inspect

import pytest

from featstore.cli import analysis_cmds
from featstore.cli._analysis_options import analysis_inputs


@pytest.mark.parametrize("command", ["rsa", "similarity", "lowlevel"])
def test_every_analysis_command_has_the_shared_options_in_order(command):
    names = list(inspect.signature(getattr(analysis_cmds, command)).parameters)
    assert "inputs" not in names and "settings" not in names
    window_options = [names.index(n) for n in ("ctx", "tr_win", "layers")]
    assert window_options == list(range(window_options[0], window_options[0] + 3))
    assert names.index("roi_groups_file") > window_options[-1]  # the command's own options
    assert names[-3:] == ["run", "overwrite", "quiet"]
    assert names.index("pca") > names.index("roi_groups_file")  # the settings' options


def test_the_command_gets_the_runner_arguments_from_the_options():
    seen = {}

    @analysis_inputs
    def command(store: str, inputs: dict, extra: int = 0) -> None:
        seen.update(inputs, store=store, extra=extra)

    command(
        store="s.zarr", ctx="8", tr_win=None, layers="1,3", extra=5,
        settings="SETTINGS", run="r1", overwrite=True, quiet=True,
    )  # fmt: skip
    assert seen == {
        "store": "s.zarr",
        "extra": 5,
        "windows": ["ctx8"],
        "layers": [1, 3],
        "settings": "SETTINGS",
        "run_id": "r1",
        "overwrite": True,
        "progress": False,
    }
