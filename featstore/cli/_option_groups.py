"""Groups of options that travel together, each declared once, handed to a command as one
object.

A command declares one parameter for the group (``options: dict``, ``settings:
EncodingSettings`` …); :func:`option_group` puts the group's options in its place (in
``--help`` where the parameter stands) and calls the command with that parameter set to
what ``build`` makes of the options' values. A group is a table of :class:`Flag`: a
parameter name, its type, its help and its default, which is all that a Typer
``Annotated[...]`` declaration says. :func:`replace_parameter` is the mechanism;
``encoding_options`` and ``analysis_inputs`` are groups built on it too.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer

Command = TypeVar("Command", bound=Callable[..., Any])


@dataclass(frozen=True)
class Flag:
    """One option of a group: the parameter ``name`` (its flag: ``--name`` with dashes, or
    ``flags``), its type ``kind`` (``| None`` is added where the default is ``None``), its
    help and its default."""

    name: str
    kind: Any
    help: str
    default: Any = None
    flags: tuple[str, ...] = ()

    @property
    def option(self) -> Any:
        """The option's type, ``Annotated[kind, typer.Option(flag, help=help)]``."""
        kind = self.kind if self.default is not None else self.kind | None
        flags = self.flags or ("--" + self.name.replace("_", "-"),)
        return Annotated[kind, typer.Option(*flags, help=self.help)]

    def parameter(self) -> inspect.Parameter:
        """The parameter ``name: option = default``."""
        return parameters([(self.name, self.option, self.default)])[0]


def parameters(table: Sequence[tuple[str, Any, Any]]) -> list[inspect.Parameter]:
    """The parameters ``name: kind = default`` of a table of (name, kind, default)."""
    option = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return [
        inspect.Parameter(name, option, annotation=kind, default=default)
        for name, kind, default in table
    ]


def replace_parameter(
    command: Command,
    name: str,
    parameters: Sequence[inspect.Parameter],
    build: Callable[..., Any],
    appended: Sequence[inspect.Parameter] = (),
) -> Command:
    """``command`` with its parameter ``name`` replaced by ``parameters`` (and ``appended``
    after its own): the new command calls it with ``name=build(**their values)``.

    Typer reads the new command's signature, so each new parameter is an option. A
    command whose group follows options with defaults declares it keyword-only (``*,
    options: dict``): the new parameters are keyword-only too.
    """
    signature = inspect.signature(command, eval_str=True)
    own = list(signature.parameters.values())
    at = [p.name for p in own].index(name)
    kind = own[at].kind  # keyword-only where the group follows options with defaults
    own[at : at + 1] = [p.replace(kind=kind) for p in parameters]
    own += [p.replace(kind=kind) for p in appended]
    names = [p.name for p in (*parameters, *appended)]

    @functools.wraps(command)
    def with_group(*args: Any, **kwargs: Any) -> Any:
        values = {option: kwargs.pop(option) for option in names if option in kwargs}
        return command(*args, **{name: build(**values)}, **kwargs)

    with_group.__signature__ = signature.replace(parameters=own)  # type: ignore[attr-defined]
    with_group.__annotations__ = {p.name: p.annotation for p in own}
    return with_group  # type: ignore[return-value]


def given(**values: Any) -> dict[str, Any]:
    """The options given: ``values`` without those left at ``None``."""
    return {name: value for name, value in values.items() if value is not None}


def option_group(
    name: str, flags: Sequence[Flag], build: Callable[..., Any] = given
) -> Callable[[Command], Command]:
    """Give a command the options ``flags`` in place of its parameter ``name``, which it
    gets as ``build(**values)`` (by default the options given, as a dict)."""

    def decorate(command: Command) -> Command:
        return replace_parameter(command, name, [flag.parameter() for flag in flags], build)

    return decorate
