"""The report page being built: its parts in order, figures saved or embedded, and the
small HTML helpers (escaping, tables, p-values) every section uses."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from featstore.outputs import writing_file

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.7em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
h3 { margin-top: 1.6em; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #444; max-width: 900px; }
table.tbl { border-collapse: collapse; font-size: .85em; margin: .8em 0; }
table.tbl th, table.tbl td { border: 1px solid #ddd; padding: .25em .55em; text-align: right; }
table.tbl th { background: #f3f3f3; } table.tbl td:first-child { text-align: left; }
.note { color: #555; font-size: .9em; } code, pre { background: #f6f6f6; }
pre { padding: .6em; overflow-x: auto; font-size: .8em; }
details { margin: .5em 0; } .meta { font-size: .9em; color: #333; }
"""

# Sets data-images on <body> once the page has loaded: "ok" when every image decoded,
# else "failed:<n>". Lets a headless browser (and the test) check the figures load.
_IMAGE_CHECK = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  document.body.setAttribute("data-images", bad.length ? "failed:" + bad.length : "ok");
  document.body.setAttribute("data-image-count", String(imgs.length));
});
"""


@dataclass
class _Page:
    """Figures and HTML fragments of the report, numbered in order."""

    out_dir: Path
    embed: bool
    dpi: int
    parts: list[str] = field(default_factory=list)
    n_figures: int = 0
    on_figure: Callable[[int], None] = lambda n: None

    def add(self, fragment: str) -> None:
        self.parts.append(fragment)

    def figure(
        self, figure: Figure, name: str, caption: str, *, alt: str, tight: bool = True
    ) -> None:
        """Save ``figure`` and add it with a numbered caption (``tight=False`` for brain
        maps: their layout is fixed, and a tight bounding box costs a second draw)."""
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
        self.add(
            f'<figure><img src="{html.escape(source)}" alt="{html.escape(alt)}">'
            f"<figcaption><b>Figure {self.n_figures}.</b> {caption}</figcaption></figure>"
        )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:60] or "figure"


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _table(frame: pd.DataFrame, *, digits: int = 3) -> str:
    """An HTML table of ``frame`` (floats rounded, text escaped)."""
    return frame.to_html(
        index=False,
        classes="tbl",
        border=0,
        na_rep="–",
        float_format=lambda x: f"{x:.{digits}f}",
        escape=True,
    )


def _p_format(value: float) -> str:
    if not np.isfinite(value):
        return "–"
    return f"{value:.2e}" if value < 1e-3 else f"{value:.4f}"
