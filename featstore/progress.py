"""Progress of long work: a rich bar on a terminal, rate-limited log lines elsewhere.

A batch job, a log file or a notebook gets no terminal: a bar there would print nothing
until the end (or escape codes into a log). Off a terminal, progress goes instead to the
``featstore.progress`` logger (level INFO) as lines such as ::

    extract minilm/ctx200: 120/447 words (27 %), 14 s elapsed, ETA 38 s

at most one every ``FEATSTORE_PROGRESS_INTERVAL`` seconds (default 10), plus the first
and the last. Where logging is not configured at all, featstore writes these lines to
stderr itself; configure the ``featstore`` logger to send them elsewhere
(``docs/logging.md``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from featstore.errors import InputError

logger = logging.getLogger("featstore.progress")

INTERVAL_ENV = "FEATSTORE_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 10.0

Advance = Callable[[int], None]
_clock = time.monotonic


def progress_interval() -> float:
    """Seconds between two progress lines off a terminal (``FEATSTORE_PROGRESS_INTERVAL``)."""
    text = os.environ.get(INTERVAL_ENV, "").strip()
    if not text:
        return DEFAULT_INTERVAL_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise InputError(
            f"{INTERVAL_ENV}={text!r}: expected seconds between progress lines, a number >= 0"
        )
    return value


@contextlib.contextmanager
def progress_bar(
    description: str,
    total: int | None,
    *,
    enabled: bool,
    unit: str = "",
    transient: bool = False,
    stream: TextIO | None = None,
    interval: float | None = None,
) -> Iterator[Advance]:
    """Report progress of ``total`` steps; yields ``advance(n)`` (a no-op when disabled).

    Parameters
    ----------
    description
        What is running, e.g. ``extract gpt2/ctx200``.
    total
        Number of steps, or None when unknown.
    enabled
        False: no output at all.
    unit
        Name of a step in log lines (``words``, ``configs``).
    transient
        Remove the bar from the terminal once done.
    stream
        Where a bar would go (default: ``sys.stderr``); a bar only if it is a terminal,
        else log lines.
    interval
        Least seconds between two log lines (default: :func:`progress_interval`).
    """
    if not enabled:
        yield lambda n: None
        return
    stream = sys.stderr if stream is None else stream
    if _is_terminal(stream):
        with _rich_bar(description, total, transient, stream) as advance:
            yield advance
        return
    lines = _LogLines(
        description, total, unit, progress_interval() if interval is None else interval
    )
    lines.start()
    yield lines.advance
    lines.finish()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


# the description is cut (…) beyond this, so count and times fit 80 columns
_DESCRIPTION_WIDTH = 30


def progress_columns() -> tuple[Any, ...]:
    """Columns of featstore's progress bars: description, bar, done/total, elapsed, ETA.

    In a narrow terminal the bar shrinks and a long description is cut with "…"; the
    count and the times are never cut (they were, to ``447/…``, at 80 columns).
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Column

    return (
        TextColumn(
            "[progress.description]{task.description}",
            table_column=Column(no_wrap=True, overflow="ellipsis", max_width=_DESCRIPTION_WIDTH),
        ),
        BarColumn(),
        MofNCompleteColumn(table_column=Column(no_wrap=True)),
        TimeElapsedColumn(table_column=Column(no_wrap=True)),
        TimeRemainingColumn(table_column=Column(no_wrap=True)),
    )


@contextlib.contextmanager
def _rich_bar(
    description: str, total: int | None, transient: bool, stream: TextIO
) -> Iterator[Advance]:
    from rich.console import Console
    from rich.progress import Progress

    with Progress(*progress_columns(), console=Console(file=stream), transient=transient) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


class _LogLines:
    """Progress as log lines, at most one per ``interval`` seconds (and the last one)."""

    def __init__(self, description: str, total: int | None, unit: str, interval: float) -> None:
        self.description, self.total, self.interval = description, total, interval
        self.unit = f" {unit}" if unit else ""
        self.done = self.logged = 0
        self.started = self.last = 0.0

    def start(self) -> None:
        _ensure_handler()
        self.started = self.last = _clock()
        self._log(self.started)

    def advance(self, n: int) -> None:
        self.done += n
        now = _clock()
        if now - self.last >= self.interval:
            self._log(now)

    def finish(self) -> None:
        if self.done != self.logged:
            self._log(_clock())

    def _log(self, now: float) -> None:
        self.last, self.logged = now, self.done
        elapsed = now - self.started
        if self.total:
            percent = 100 * self.done / self.total
            line = f"{self.done}/{self.total}{self.unit} ({percent:.0f} %), {_seconds(elapsed)} elapsed"
            if 0 < self.done < self.total:
                line += f", ETA {_seconds(elapsed / self.done * (self.total - self.done))}"
        else:
            line = f"{self.done}{self.unit} done, {_seconds(elapsed)} elapsed"
        logger.info("%s: %s", self.description, line)


def _seconds(value: float) -> str:
    value = round(value)
    if value < 60:
        return f"{value} s"
    minutes, seconds = divmod(value, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class _StderrHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is at each record (a notebook or a test swaps it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def _ensure_handler() -> None:
    """Send featstore's INFO lines to stderr when nothing is configured to receive them.

    Progress was asked for (``progress=True``), so a notebook with logging left alone
    still shows it; the package's own :class:`logging.NullHandler` receives nothing.
    """
    package = logging.getLogger("featstore")
    if _routed(package):
        return
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    package.addHandler(handler)
    if package.level == logging.NOTSET:
        package.setLevel(logging.INFO)


def _routed(logger: logging.Logger) -> bool:
    """Whether a handler other than a :class:`logging.NullHandler` receives ``logger``'s
    records (on it or, while records propagate, on a parent)."""
    current: logging.Logger | None = logger
    while current is not None:
        if any(not isinstance(h, logging.NullHandler) for h in current.handlers):
            return True
        current = current.parent if current.propagate else None
    return False
