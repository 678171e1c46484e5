"""Options shared by every command that fits or mirrors the encoding model.

``evaluate grid`` and the analyses (``rsa``, ``similarity``, ``lowlevel``) take the same
window, layer, split, PCA, delay and ridge options, with the same names, help and
defaults, and turn them into :class:`~featstore.evaluate.encoding.settings.EncodingSettings`
the same way. This module imports nothing heavy: ``evaluate --help`` reads it, and the
evaluator is imported only when a command runs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

import typer

from featstore.errors import InputError

if TYPE_CHECKING:
    from featstore.evaluate.encoding.settings import EncodingSettings

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
PcaOption = Annotated[
    int | None, typer.Option("--pca", help="PCA components (0 = no PCA). [default: 250]")
]
FirWindowOption = Annotated[
    int | None, typer.Option("--fir-window", help="Number of FIR delays. [default: 4]")
]
FirOffsetOption = Annotated[
    int | None, typer.Option("--fir-offset", help="First FIR delay in TRs. [default: 1]")
]
DelaysOption = Annotated[
    str | None, typer.Option("--delays", help="Explicit delays in TRs, e.g. 1,2,3,4,5,6,7,8.")
]
TrimOption = Annotated[
    int | None,
    typer.Option("--trim", help="TRs dropped at each edge. [default: the largest delay]"),
]
TestFracOption = Annotated[
    float | None,
    typer.Option("--test-frac", help="Fraction of TRs in the final test part. [default: 0.2]"),
]
GapOption = Annotated[
    int | None,
    typer.Option(
        "--gap",
        help="TRs dropped between train and test and between CV folds; raised to "
        "-min(delays) for negative delays. [default: 0]",
    ),
]
AlphasOption = Annotated[
    str | None,
    typer.Option("--alphas", help="Ridge alphas for CV: 1,10,100 or logspace:-2:8:21."),
]
AlphaOption = Annotated[
    float | None,
    typer.Option("--alpha", help="One fixed alpha, no CV (the reference protocol)."),
]
CvOption = Annotated[
    int | None, typer.Option("--cv", help="Contiguous CV folds on the train part. [default: 5]")
]
DtypeOption = Annotated[
    str | None,
    typer.Option("--dtype", help="float32 or float64 arithmetic. [default: float32]"),
]


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


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"{option} {text!r}: expected integers such as 1,2,3,4") from None
    if not values:
        raise InputError(f"{option} is empty")
    return values


def encoding_settings(
    *,
    method: str | None = None,
    pca: int | None = None,
    fir_window: int | None = None,
    fir_offset: int | None = None,
    delays: str | None = None,
    trim: int | None = None,
    test_frac: float | None = None,
    gap: int | None = None,
    alphas: str | None = None,
    alpha: float | None = None,
    cv: int | None = None,
    dtype: str | None = None,
) -> EncodingSettings:
    """Encoding settings from the options; options not given keep their defaults.

    Commands without the ridge or fusion options (``evaluate rsa``) leave them out.
    """
    from featstore.evaluate.encoding.settings import EncodingSettings, delays_from_fir

    values: dict[str, Any] = {}
    if delays is not None and (fir_window is not None or fir_offset is not None):
        raise InputError("give --delays or --fir-window/--fir-offset, not both")
    if delays is not None:
        values["delays"] = tuple(_int_list(delays, "--delays"))
    elif fir_window is not None or fir_offset is not None:
        values["delays"] = delays_from_fir(
            4 if fir_window is None else fir_window, 1 if fir_offset is None else fir_offset
        )
    if alphas is not None:
        values["alphas"] = parse_alphas(alphas)
    for name, value in (
        ("method", method),
        ("pca", pca),
        ("trim", trim),
        ("test_frac", test_frac),
        ("gap", gap),
        ("alpha", alpha),
        ("cv", cv),
        ("dtype", dtype),
    ):
        if value is not None:
            values[name] = value
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
