"""Pieces shared by every command module: the app class, consoles, common options."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import click
import typer
import typer.core
from rich.console import Console
from rich.markup import escape

from featstore.cli._flags import as_flags
from featstore.errors import WARNING_RECORD, FeatstoreError, FeatstoreWarning

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

DEFAULT_STORE_DIR = Path("stores")


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` as one line on stderr and return the exit to raise.

    The parameters the message names are written as flags (:func:`as_flags`).
    """
    err_console.print(f"[bold red]error:[/] {as_flags(message)}", markup=True, highlight=False)
    return typer.Exit(code=2)


RESUME_HINT = "rerun the same command to resume"


def interrupted(hint: str = RESUME_HINT) -> typer.Exit:
    """Print ``interrupted; hint`` as one line on stderr and return the exit (130) to raise."""
    err_console.print(f"interrupted; {hint}", highlight=False, markup=False)
    return typer.Exit(code=130)


# The click that typer runs on: typer >= 0.29 vendors its own copy (typer._click), older
# releases use click itself; typer.BadParameter lives in that click's exceptions module.
_click_errors = sys.modules[typer.BadParameter.__module__]
UsageError = _click_errors.UsageError
NoArgsIsHelpError = _click_errors.NoArgsIsHelpError


def _usage_line(exc: UsageError) -> str:
    """A usage error (bad option value, missing option) as one line with a help hint."""
    message = " ".join(exc.format_message().split())
    command = exc.ctx.command_path if exc.ctx is not None else ""
    return f"{message} (see `{command} --help`)" if command else message


class FeatstoreGroup(typer.core.TyperGroup):
    """A Typer group that turns featstore errors and usage errors into one line, exit 2.

    Click would print usage errors as a multi-line panel; a user (or a script reading
    stderr) gets the same one-line ``error: ...`` for a bad option value as for a bad file.
    ``NoArgsIsHelpError`` is a usage error too, but its message is the help text itself.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            raise fail(_usage_line(exc)) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with logging_to_stderr():
                return super().invoke(ctx)
        except FeatstoreError as exc:
            raise fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            raise fail(_usage_line(exc)) from None
        except KeyboardInterrupt:
            raise interrupted() from None


class _StderrLines(logging.Handler):
    """featstore's log records as the command line shows them on stderr: ``warning: …``
    for a notice, ``HH:MM:SS …`` for a progress line off a terminal."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, WARNING_RECORD, False):
            return  # a FeatstoreWarning's copy: the warning itself is printed
        try:
            if record.levelno >= logging.WARNING:
                message = as_flags(record.getMessage())  # the parameters it names, as flags
                line = f"[yellow]{record.levelname.lower()}:[/] {escape(message)}"
                err_console.print(line, highlight=False, emoji=False)
            else:
                err_console.print(self.format(record), markup=False, highlight=False, emoji=False)
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def logging_to_stderr() -> Iterator[None]:
    """Route the ``featstore`` logger (INFO and above) to stderr while a command runs."""
    package = logging.getLogger("featstore")
    handler = _StderrLines()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    level = package.level
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(level)


def new_app(help_text: str, **kwargs: Any) -> typer.Typer:
    """A Typer app with featstore's error handling and rich help."""
    return typer.Typer(
        cls=FeatstoreGroup,
        help=help_text,
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode="markdown",
        pretty_exceptions_show_locals=False,
        **kwargs,
    )


def store_location(text: str) -> Path | str:
    """A local store as a :class:`Path`; a URL (``s3://bucket/s.zarr``) kept as text.

    ``Path`` would fold ``s3://bucket`` into ``s3:/bucket``, a local directory.
    """
    return text if "://" in text else Path(text)


StoreOption = Annotated[
    Path,
    typer.Option(
        "--store",
        "-s",
        help="Path of the Zarr store, e.g. stores/21styear.zarr (or an fsspec URL).",
        envvar="FEATSTORE_STORE",
        parser=store_location,
    ),
]


def parse_story_list(text: str | None) -> list[str] | None:
    """``--story A,B`` as a list of story names (``None``: every story)."""
    if text is None:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


StoryListOption = Annotated[
    str | None,
    typer.Option(
        "--story",
        help="Stories of a store of stories, e.g. pieman,tunnel. [default: every story]",
    ),
]

StoryOption = Annotated[
    str | None,
    typer.Option(
        "--story",
        help="The story of a store of stories, e.g. pieman (needed when it has several).",
    ),
]


def one_story(store: Path | str, story: str | None) -> Any:
    """The one-story store that a single-story command works on: ``store`` itself for a
    one-story store, else its story ``story`` (which may be left out when it holds one).
    An unknown or missing story is an :class:`InputError` listing the stories."""
    from featstore.store.stories import story_store

    return story_store(store, story)


def story_stores(store: Path | str, stories: list[str] | None) -> list[tuple[str, Any]]:
    """``(prefix, story store)`` of each story named (default: every story) of a store of
    stories, where ``prefix`` is ``stories/<story>/``; ``[("", store)]`` for a one-story
    store (any names given must be its story's)."""
    from featstore.store.stories import is_collection, list_stories, story_store

    if not is_collection(store):
        for name in stories or []:
            story_store(store, name)
        return [("", store)]
    handles = [story_store(store, name) for name in stories or list_stories(store)]
    return [(story_prefix(store, handle), handle) for handle in handles]


def story_prefix(store: Path | str, story_store: Any) -> str:
    """``stories/<story>/`` when ``story_store`` is a story of ``store``, else ``""``: what
    goes before a group path to name it from the store's root."""
    inner = os.fspath(story_store)[len(os.fspath(store).rstrip("/")) :].strip("/")
    return f"{inner}/" if inner else ""


def command_app(help_text: str, banner: str, command_modules: Iterable[ModuleType]) -> typer.Typer:
    """A top-level command (``featstore``, ``evaluate``): its app, a ``--version`` option
    printing ``banner``, and the commands each of ``command_modules`` registers."""
    app = new_app(help_text)

    def show(value: bool) -> None:
        if value:
            console.print(banner)
            raise typer.Exit()

    @app.callback()
    def main(
        version: bool = typer.Option(
            False, "--version", callback=show, is_eager=True, help="Print the version."
        ),
    ) -> None:
        pass

    for module in command_modules:
        module.register(app)
    return app


QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="No progress (a bar on a terminal, else a log line every "
        "FEATSTORE_PROGRESS_INTERVAL seconds, default 10).",
    ),
]


def progress_enabled(quiet: bool) -> bool:
    """Progress unless --quiet: a bar on a terminal, log lines elsewhere (see
    :mod:`featstore.progress`)."""
    return not quiet


def print_warning(message: str) -> None:
    """Print ``warning: message`` on stderr, the parameters it names written as flags."""
    err_console.print(f"[yellow]warning:[/] {as_flags(message)}", highlight=False)


@contextlib.contextmanager
def printing_warnings() -> Iterator[list[str]]:
    """Print the library's :class:`FeatstoreWarning` notices as ``warning: …`` lines on
    stderr once the block has finished (instead of Python's two-line warning format).

    Yields the list the printed messages are added to, so a command that also prints the
    warnings a run stored can skip those already said."""
    printed: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FeatstoreWarning)
        yield printed
    for item in caught:
        if issubclass(item.category, FeatstoreWarning):
            print_warning(str(item.message))
            printed.append(str(item.message))
        else:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
