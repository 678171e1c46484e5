"""The report page being built: figures saved or embedded, sections rendered from the
jinja2 templates in ``templates/`` (autoescaped: every value from a store, a run name
or a ROI name included, is escaped), and the table and p-value formats they share."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from featstore.outputs import writing_file

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _oneline(text: Markup) -> Markup:
    """``text`` with every run of white space one space: a caption on one line."""
    return Markup(re.sub(r"\s+", " ", str(text)).strip())


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, sort_keys=True)


@cache
def environment() -> Environment:
    """The templates' environment: package data of :mod:`featstore.report`, autoescaped."""
    env = Environment(
        loader=PackageLoader("featstore.report"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["oneline"] = _oneline
    env.filters["pretty_json"] = _pretty_json
    return env


@dataclass(frozen=True)
class _Figure:
    """A saved figure as the templates show it: its number, ``src`` and ``alt`` text."""

    number: int
    source: str
    alt: str


@dataclass
class _Page:
    """The rendered sections of the report and its figures, numbered in order."""

    out_dir: Path
    embed: bool
    dpi: int
    sections: list[Markup] = field(default_factory=list)
    n_figures: int = 0
    on_figure: Callable[[int], None] = lambda n: None

    def render(self, template: str, **context: Any) -> None:
        """Add a section: ``template`` rendered with ``context``."""
        self.sections.append(Markup(environment().get_template(template).render(**context)))

    def figure(self, figure: Figure, name: str, *, alt: str, tight: bool = True) -> _Figure:
        """Save ``figure`` under the next number (``tight=False`` for brain maps: their
        layout is fixed, and a tight bounding box costs a second draw)."""
        self.n_figures += 1
        path = self.out_dir / "figures" / f"{self.n_figures:02d}-{_slug(name)}.png"
        with writing_file(path, "report figure"):
            figure.savefig(
                path, dpi=self.dpi, bbox_inches="tight" if tight else None, facecolor="white"
            )
        if self.embed:
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            path.unlink()
            source = f"data:image/png;base64,{data}"
        else:
            source = path.relative_to(self.out_dir).as_posix()
        self.on_figure(1)
        return _Figure(self.n_figures, source, alt)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:60] or "figure"


def _table(frame: pd.DataFrame, *, digits: int = 3) -> Markup:
    """An HTML table of ``frame`` (floats rounded, text escaped by pandas)."""
    return Markup(
        frame.to_html(
            index=False,
            classes="tbl",
            border=0,
            na_rep="–",
            float_format=lambda x: f"{x:.{digits}f}",
            escape=True,
        )
    )


def _p_format(value: float) -> str:
    if not np.isfinite(value):
        return "–"
    return f"{value:.2e}" if value < 1e-3 else f"{value:.4f}"
