"""Options every analysis command (``evaluate rsa``, ``similarity``, ``lowlevel``) has.

They select the feature set's layers (``--ctx``, ``--tr-win``, ``--layers``) and name the
run (``--run``, ``--overwrite``, ``--quiet``); :func:`analysis_inputs` adds them to a
command and hands it the keyword arguments every analysis runner takes.
"""

from __future__ import annotations

from typing import Annotated

import typer

from featstore.cli._common import QuietOption, progress_enabled
from featstore.cli._encoding_options import LAYER_PARAMETERS, selected_layers
from featstore.cli._option_groups import Command, parameters, replace_parameter
from featstore.cli._options import OverwriteResultsOption, ResultsRunOption
from featstore.evaluate.encoding.settings import EncodingSettings

#: ``--roi-group`` of ``evaluate rsa`` and ``evaluate lowlevel``: the groups scored.
RoiGroupsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--roi-group",
        help="ROI group(s), repeatable or comma-separated. [default: every group the "
        "ROI names resolve]",
    ),
]


def _common_inputs(
    ctx: str | None,
    tr_win: str | None,
    layers: str,
    settings: EncodingSettings,
    run: str | None,
    overwrite: bool,
    quiet: bool,
) -> dict:
    """The arguments every analysis runner takes, from the options every command has."""
    return {
        **selected_layers(ctx, tr_win, layers),
        "settings": settings,
        "run_id": run,
        "overwrite": overwrite,
        "progress": progress_enabled(quiet),
    }


#: The options every analysis command has after its own, as (name, type, default): the
#: settings and the run's options (those that select the layers take its ``inputs``' place).
_RUN_PARAMETERS = (
    ("settings", EncodingSettings, EncodingSettings()),
    ("run", ResultsRunOption, None),
    ("overwrite", OverwriteResultsOption, False),
    ("quiet", QuietOption, False),
)


def analysis_inputs(command: Command) -> Command:
    """Give an analysis command the options every analysis has, in place of its ``inputs``.

    The command declares ``inputs: dict``; the decorated command takes ``--ctx``,
    ``--tr-win`` and ``--layers`` there and, after its own options, ``settings`` (which
    :func:`encoding_options` turns into options), ``--run``, ``--overwrite`` and
    ``--quiet``; it calls the command with ``inputs`` = the keyword arguments every
    analysis runner takes (:func:`_common_inputs`).
    """
    return replace_parameter(
        command,
        "inputs",
        parameters(LAYER_PARAMETERS),
        _common_inputs,
        appended=parameters(_RUN_PARAMETERS),
    )
