"""Options shared by every command that fits or mirrors the encoding model.

``evaluate grid`` and the analyses (``rsa``, ``similarity``, ``lowlevel``) take the same
window, layer, split, PCA, delay and ridge options, with the same names, help and
defaults, and turn them into :class:`~featstore.evaluate.encoding.settings.EncodingSettings`
the same way. The settings' options are generated from the dataclass's fields (their help
and defaults live there, in one place) by :func:`encoding_options`. This module imports
nothing heavy: ``evaluate --help`` reads it, and the evaluator runs only when a command does.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import fields
from typing import Annotated, Any

import typer

from featstore.cli._option_groups import Command, Flag, parameters, replace_parameter
from featstore.errors import InputError
from featstore.evaluate.encoding.settings import FIR_HELP, EncodingSettings, delays_from_fir
from featstore.layers import comma_integers, parse_layers

CtxOption = Annotated[
    str | None, typer.Option("--ctx", help="Text windows in words, e.g. 200 or 50,200.")
]
TrWinOption = Annotated[
    str | None, typer.Option("--tr-win", help="Audio windows in TRs, e.g. 1,2,3,6.")
]
LayersOption = Annotated[
    str,
    typer.Option(
        "--layers",
        help="auto (5 evenly spaced depths), all, or a list such as 1,4,6; a model or "
        "fusion side's own @LAYERS wins.",
    ),
]
#: ``--test-stories`` of ``evaluate grid`` and ``evaluate trf`` on a store of stories.
TEST_STORIES = Flag(
    "test_stories",
    str,
    "A store of stories: test on these stories (lucy or lucy,tunnel), train on the others.",
)
TestStoriesOption = TEST_STORIES.option

#: ``--ctx``, ``--tr-win`` and ``--layers`` as (name, type, default): the feature set's
#: windows and layers a command reads (:func:`layer_selection`).
LAYER_PARAMETERS = (
    ("ctx", CtxOption, None),
    ("tr_win", TrWinOption, None),
    ("layers", LayersOption, "auto"),
)


#: The settings' options, by what they set: the design of a layer (split, PCA, delays),
#: the ridge fit, and the fusion of two feature spaces; in the order ``--help`` lists them.
DESIGN_OPTIONS = ("pca", "fir_window", "fir_offset", "delays", "trim", "test_frac", "gap")
RIDGE_OPTIONS = ("alphas", "alpha", "cv", "dtype")
FUSION_OPTIONS = ("method",)


def _option_parameter(name: str) -> inspect.Parameter:
    """A keyword parameter ``name: Annotated[T | None, typer.Option(...)] = None`` whose help
    and ``[default: …]`` come from the settings (a field, or an argument of
    :func:`delays_from_fir`); sequences are given as text (``1,2,3``)."""
    if name in FIR_HELP:
        help_text = FIR_HELP[name]
        default = inspect.signature(delays_from_fir).parameters[name].default
        kind, shown = type(default), default
    else:
        setting = {f.name: f for f in fields(EncodingSettings)}[name]
        help_text, default = setting.metadata["help"], setting.default
        kind = setting.metadata.get("kind", str if isinstance(default, tuple) else type(default))
        shown = setting.metadata.get("shown_default", default)
    if shown is not None:
        help_text = f"{help_text} [default: {shown}]"
    flag = "--" + name.replace("_", "-")
    return inspect.Parameter(
        name,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        default=None,
        annotation=Annotated[kind | None, typer.Option(flag, help=help_text)],
    )


def encoding_options(*names: str) -> Callable[[Command], Command]:
    """Give a command the encoding settings' options ``names`` in place of its ``settings``.

    The command declares ``settings: EncodingSettings``; the decorated command takes one
    option per name instead (``--pca``, ``--fir-window`` …; see :data:`DESIGN_OPTIONS`,
    :data:`RIDGE_OPTIONS`, :data:`FUSION_OPTIONS`) and calls the command with the
    settings built from them by :func:`encoding_settings` (options not given keep the
    settings' defaults).
    """

    def decorate(command: Command) -> Command:
        parameters = [_option_parameter(name) for name in names]
        return replace_parameter(command, "settings", parameters, encoding_settings)

    return decorate


def parse_alphas(text: str) -> tuple[float, ...]:
    """``"1,10,100"`` or ``"logspace:-2:8:21"`` (10^-2 .. 10^8, 21 values) → alphas."""
    import numpy as np

    text = text.strip()
    try:
        if text.startswith("logspace:"):
            low, high, count = text.split(":")[1:]
            alphas = tuple(float(a) for a in np.logspace(float(low), float(high), int(count)))
        else:
            alphas = tuple(float(a) for a in text.split(",") if a.strip())
    except ValueError:
        raise InputError(
            f"--alphas {text!r}: expected a list such as 1,10,100 or logspace:-2:8:21"
        ) from None
    if not alphas or any(not math.isfinite(a) or a <= 0 for a in alphas):
        raise InputError(f"--alphas {text!r}: expected positive finite values")
    return alphas


def encoding_settings(**options: Any) -> EncodingSettings:
    """Encoding settings from the options' values; options not given (``None``) keep their
    defaults. ``delays`` and ``alphas`` are text (``1,2,3``), ``fir_window`` /
    ``fir_offset`` build the delays (:func:`delays_from_fir`)."""
    values = {name: value for name, value in options.items() if value is not None}
    fir = {name: values.pop(name) for name in FIR_HELP if name in values}
    if "delays" in values and fir:
        raise InputError("give --delays or --fir-window/--fir-offset, not both")
    if "delays" in values:
        values["delays"] = tuple(
            comma_integers(values["delays"], "--delays", "integers such as 1,2,3,4")
        )
    elif fir:
        values["delays"] = delays_from_fir(**fir)
    if "alphas" in values:
        values["alphas"] = parse_alphas(values["alphas"])
    return EncodingSettings(**values)


# what a window size counts, and an example, per option
_WINDOW_SIZES = {"--ctx": ("words of context", "200 or 50,200"), "--tr-win": ("TRs", "1,2,3,6")}


def parse_window_sizes(text: str | None, option: str) -> list[int] | None:
    """``"1,2,3,6"`` → ``[1, 2, 3, 6]`` (positive, distinct, in the order given) for
    ``option`` (``--ctx`` or ``--tr-win``); ``tr6`` / ``ctx200`` are read as 6 / 200."""
    if text is None:
        return None
    unit, example = _WINDOW_SIZES[option]
    prefix = option.removeprefix("--").replace("-win", "")
    sizes = []
    for part in text.split(","):
        part = part.strip().removeprefix(prefix)
        if not part.isdigit() or int(part) < 1:
            raise InputError(
                f"{option} {text!r}: {part!r} is not a positive whole number of {unit}; "
                f"expected e.g. {example}"
            )
        if int(part) not in sizes:
            sizes.append(int(part))
    return sizes


def requested_windows(ctx: str | None, tr_win: str | None) -> list[str]:
    """Window names from ``--ctx`` and ``--tr-win`` (``"200"`` → ``ctx200``; ``"1,6"`` →
    ``tr1``, ``tr6``)."""
    windows = [f"ctx{n}" for n in parse_window_sizes(ctx, "--ctx") or []]
    windows += [f"tr{n}" for n in parse_window_sizes(tr_win, "--tr-win") or []]
    return windows


def selected_layers(ctx: str | None, tr_win: str | None, layers: str) -> dict[str, Any]:
    """A runner's ``windows`` and ``layers`` from ``--ctx``, ``--tr-win`` and ``--layers``."""
    return {"windows": requested_windows(ctx, tr_win), "layers": parse_layers(layers)}


def layer_selection(command: Command) -> Command:
    """Give a command ``--ctx``, ``--tr-win`` and ``--layers`` in place of its parameter
    ``selection``, which it gets as the runner's ``windows`` and ``layers`` (a dict)."""
    return replace_parameter(command, "selection", parameters(LAYER_PARAMETERS), selected_layers)
