"""Reading what a user types: config labels, window lists and model requests.

Config labels, canonical or short (``wavlm/tr6/layer9``, ``wavlm/9``,
``gpt2+wavlm/tr6/9x9/banded``), are parsed into a :class:`LabelPattern` and matched
against a store's feature sets (:func:`parse_config`) or a run's configs
(:func:`match_label`); ``NAME[:WINDOWS][@LAYERS]`` text becomes a
:class:`~featstore.evaluate.runs.configs.ModelRequest`. The label format itself is
described in :mod:`featstore.evaluate.runs.configs`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from featstore.errors import InputError
from featstore.evaluate.runs.configs import (
    BANDED,
    CONCAT,
    FUSION_METHODS,
    SINGLE,
    Config,
    FeatureLayer,
    ModelRequest,
    StoreCatalog,
    candidate_keys,
    display_name,
)
from featstore.layers import parse_layers
from featstore.store.groups import StorePath
from featstore.store.paths import parse_window

_LAYER = r"(?:layer)?(\d+)"


@dataclass(frozen=True)
class _Side:
    """One side of a typed label: a name, a window (None: any) and a layer."""

    name: str
    window: str | None
    layer: int

    def matches(self, part: FeatureLayer | None) -> bool:
        return (
            part is not None
            and part.key in candidate_keys(self.name)
            and self.window in (None, part.window)
            and self.layer == part.layer
        )

    def __str__(self) -> str:
        name = display_name(candidate_keys(self.name)[0])
        return f"{name}/{self.window}" if self.window else name


@dataclass(frozen=True)
class LabelPattern:
    """A typed config label, canonical or short, before it is matched (see :func:`parse_label`)."""

    a: _Side
    b: _Side | None
    method: str

    def matches(self, config: Config) -> bool:
        """Whether ``config`` is one the typed label can mean."""
        if self.b is None:
            return config.b is None and self.a.matches(config.a)
        return (
            self.method == config.method and self.a.matches(config.a) and self.b.matches(config.b)
        )

    def __str__(self) -> str:
        """The label with names as in canonical labels (``wavlm/tr6/layer9``, ``wavlm/layer9``)."""
        if self.b is None:
            return f"{self.a}/layer{self.a.layer}"
        suffix = f"/{BANDED}" if self.method == BANDED else ""
        return f"{self.a}+{self.b}/{self.a.layer}x{self.b.layer}{suffix}"


def parse_label(label: str) -> LabelPattern:
    """The parts of a typed config label, canonical or short (checked against nothing).

    Accepts ``wavlm/tr6/layer9``, ``wavlm/tr6/9``, ``wavlm/9`` (any window),
    ``gpt2/ctx200+wavlm/tr6/9x9`` and ``gpt2+wavlm/tr6/9x9``, each fusion optionally
    ending in ``/banded`` or ``/concat`` (the default).
    """
    text = str(label).strip().strip("/")
    method = None
    for name in FUSION_METHODS:
        if text.endswith(f"/{name}"):
            method, text = name, text[: -len(name) - 1]
    if "+" in text:
        left, right = text.split("+", 1)
        match = re.fullmatch(rf"([^/]+)(?:/([^/]+))?/{_LAYER}x{_LAYER}", right)
        a_match = re.fullmatch(r"([^/]+)(?:/([^/]+))?", left)
        if not match or not a_match:
            raise InputError(
                f"cannot parse fusion config {label!r}: expected e.g. gpt2/ctx200+wavlm/tr6/9x9"
            )
        a = _Side(a_match.group(1), a_match.group(2), int(match.group(3)))
        b = _Side(match.group(1), match.group(2), int(match.group(4)))
        return LabelPattern(a, b, method or CONCAT)
    match = re.fullmatch(rf"([^/]+)(?:/([^/]+))?/{_LAYER}", text)
    if not match or method is not None:
        raise InputError(f"cannot parse config {label!r}: expected e.g. wavlm/tr6/layer9")
    return LabelPattern(_Side(match.group(1), match.group(2), int(match.group(3))), None, SINGLE)


def parse_config(label: str, store: StorePath | StoreCatalog) -> Config:
    """Parse a config label, canonical or short, against the feature sets the store holds.

    Short forms as in :func:`parse_label`; a window left out must be the model's only
    stored window.
    """
    catalog = store if isinstance(store, StoreCatalog) else StoreCatalog(store)
    pattern = parse_label(label)
    parts = [
        catalog.feature_layer(side.name, side.window, side.layer)
        for side in (pattern.a, pattern.b)
        if side is not None
    ]
    return Config(*parts, method=pattern.method)


def match_label(typed: str, configs: Mapping[str, Config]) -> str | None:
    """The label among ``configs`` (label → config, e.g. a run's) that ``typed`` names.

    ``typed`` is a label, canonical or short (:func:`parse_label`); a window left out
    matches any window. Returns None when no config matches; raises
    :class:`InputError` listing the choices when several do.
    """
    if typed in configs:
        return typed
    pattern = parse_label(typed)
    hits = [label for label, config in configs.items() if pattern.matches(config)]
    if len(hits) > 1:
        raise InputError(f"config {typed!r} is ambiguous: {', '.join(hits[:8])}; say which window")
    return hits[0] if hits else None


def parse_windows(text: str) -> list[str]:
    """``"tr1,2,3,6"`` → ``['tr1', 'tr2', 'tr3', 'tr6']``; ``"ctx200"`` → ``['ctx200']``.

    A bare number takes the kind of the window before it.
    """
    windows: list[str] = []
    kind = None
    for token in (t.strip() for t in str(text).split(",")):
        if not token:
            continue
        if token.isdigit():
            if kind is None:
                raise InputError(f"window list {text!r}: say ctxN or trN before bare numbers")
            token = f"{kind}{token}"
        kind, _ = parse_window(token)
        windows.append(token)
    if not windows:
        raise InputError(f"empty window list {text!r}")
    return windows


def parse_model_request(text: str) -> ModelRequest:
    """``NAME[:WINDOWS][@LAYERS]``: ``"wavlm:tr1,2,3,6"`` → windows tr1, tr2, tr3, tr6;
    ``"spectral@0"`` → layer 0; ``"gpt2"`` → neither (the grid's defaults)."""
    head, at, layers = str(text).strip().partition("@")
    name, sep, windows = head.partition(":")
    if not name:
        raise InputError(
            f"model={text!r}: expected NAME, NAME:WINDOWS or NAME:WINDOWS@LAYERS such as "
            "wavlm:tr1,2,6@3,9"
        )
    return ModelRequest(
        name,
        parse_windows(windows) if sep else None,
        parse_layers(layers, option=f"{text!r}: the layers after @") if at else None,
    )


def parse_fusion_request(text: str) -> tuple[ModelRequest, ModelRequest]:
    """``"gpt2+wavlm"``, ``"gpt2:ctx200+wavlm:tr6"`` or ``"gpt2@4,9+spectral@0"`` → the two
    model requests (each side ``NAME[:WINDOWS][@LAYERS]``)."""
    if str(text).count("+") != 1:
        raise InputError(
            f"fusions={text!r}: expected A+B such as gpt2+wavlm or gpt2:ctx200+wavlm:tr6"
        )
    left, right = str(text).split("+")
    if not left.strip() or not right.strip():
        raise InputError(
            f"fusions={text!r}: a model is missing on one side of '+'; expected A+B such as "
            "gpt2+wavlm"
        )
    return parse_model_request(left), parse_model_request(right)
