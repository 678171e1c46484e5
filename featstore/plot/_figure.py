"""Figures that never touch pyplot's global state: headless, nothing to close, no show().

Every ``plot_*`` function draws into a :class:`matplotlib.figure.Figure` created here (or
into the caller's axes), saves it when asked, and returns it. A figure made without pyplot
is garbage-collected like any object, renders with the Agg canvas whatever the backend,
and still displays inline when returned as the last value of a notebook cell.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from featstore.outputs import writing_file

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

KIND_COLORS = {
    "text": "#4C72B0",
    "audio": "#DD8452",
    "multimodal": "#55A868",
    "lowlevel": "#8C8C8C",
    "fusion": "#8172B3",
}


def new_figure(width: float, height: float) -> Figure:
    """A pyplot-free figure of ``width`` × ``height`` inches."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout=None)


def figure_and_axes(axes: Axes | None, width: float, height: float) -> tuple[Figure, Axes]:
    """The caller's axes and its figure, or a new figure with one axes."""
    if axes is not None:
        return axes.figure, axes
    figure = new_figure(width, height)
    return figure, figure.add_subplot(1, 1, 1)


def finish(
    figure: Figure,
    output_file: str | os.PathLike | None,
    *,
    dpi: int = 120,
    tight: bool = True,
) -> Figure:
    """Save ``figure`` to ``output_file`` (format from its suffix) if given; return it.

    ``tight=False`` keeps the figure's own margins and saves in one draw instead of two
    (worth it for brain maps, whose 3D views dominate the drawing time).
    """
    if output_file is not None:
        with writing_file(output_file, "output file") as path:
            figure.savefig(path, dpi=dpi, bbox_inches="tight" if tight else None, facecolor="white")
    return figure


def line_colors(n: int) -> list:
    """``n`` colors of the tab10 palette, cycled: one per line or bar series."""
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    return [palette[i % len(palette)] for i in range(max(n, 1))]


def style_axes(ax: Axes, title: str | None, **title_style: Any) -> None:
    """``title`` (when given) with ``title_style``; no top and right spines."""
    if title:
        ax.set_title(title, **title_style)
    ax.spines[["top", "right"]].set_visible(False)


def finish_axes(
    figure: Figure,
    ax: Axes,
    output_file: str | os.PathLike | None,
    *,
    title: str | None,
    new: bool,
    **title_style: Any,
) -> Figure:
    """The common end of a one-axes plot: :func:`style_axes`, a tight layout when the
    figure is ``new`` (not the caller's), then :func:`finish`."""
    style_axes(ax, title, **title_style)
    if new:
        figure.tight_layout()
    return finish(figure, output_file)


def grouped_bar_positions(n_ticks: int, n_bars: int) -> tuple[float, list[np.ndarray]]:
    """Width and x positions of ``n_bars`` bars side by side at each of ``n_ticks`` ticks
    (tick ``k`` at x = ``k``), the group 0.8 wide."""
    width = 0.8 / max(n_bars, 1)
    ticks = np.arange(n_ticks)
    return width, [ticks + (i - (n_bars - 1) / 2) * width for i in range(n_bars)]
