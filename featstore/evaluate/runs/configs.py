"""Evaluation configs: which feature layer(s) one encoding model is fitted on, and their labels.

A config is one evaluation: a single feature set at one layer, or a fusion of two
(feature set, layer) pairs with a method (``concat`` or ``banded``). Every config has a
canonical label, which is the ``config`` coordinate of a results group:

* single: ``"{name}/{window}/layer{L}"`` (``wavlm/tr6/layer9``)
* fusion: ``"{nameA}/{windowA}+{nameB}/{windowB}/{La}x{Lb}"`` (``gpt2/ctx200+wavlm/tr6/9x9``),
  followed by ``"/banded"`` for banded ridge

where ``name`` is the model alias when the feature key belongs to one (``wavlm`` for
``microsoft--wavlm-base-plus``), else the key itself. Labels and requests as a user
types them are parsed in :mod:`featstore.evaluate.runs.labels`. Everything here reads
store metadata only, never arrays.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from featstore.errors import FeatstoreError, IncompleteGroupError, InputError
from featstore.extract.registry import aliases, find_alias_for_key
from featstore.layers import LayerSpec, auto_layers
from featstore.store import _schema as S
from featstore.store.features import FeatureSetInfo, list_feature_sets
from featstore.store.groups import StorePath
from featstore.store.paths import feature_group, parse_window

SINGLE, CONCAT, BANDED = "single", "concat", "banded"
FUSION_METHODS = (CONCAT, BANDED)


@functools.cache
def display_name(key: str) -> str:
    """The name a feature key shows in labels: its model alias if it has one, else the key."""
    return find_alias_for_key(key) or key


@dataclass(frozen=True)
class FeatureLayer:
    """One layer of one stored feature set."""

    key: str
    window: str
    layer: int

    @property
    def group(self) -> str:
        """The feature group, ``features/<key>/<window>``."""
        return feature_group(self.key, self.window)

    @property
    def name(self) -> str:
        """Display name of the model (alias or key)."""
        return display_name(self.key)


@dataclass(frozen=True)
class Config:
    """One evaluation: ``a`` alone (method ``single``) or ``a`` fused with ``b``."""

    a: FeatureLayer
    b: FeatureLayer | None = None
    method: str = SINGLE

    def __post_init__(self) -> None:
        if self.b is None and self.method != SINGLE:
            raise InputError(f"a single feature set has method 'single', not {self.method!r}")
        if self.b is not None and self.method not in FUSION_METHODS:
            raise InputError(
                f"fusion method {self.method!r} is not one of {', '.join(FUSION_METHODS)}"
            )
        if self.b is not None and self.a == self.b:
            a = self.a
            raise InputError(
                f"fusion of {a.name}/{a.window} layer {a.layer} with itself: expected two "
                "different feature layers (the same layer twice adds nothing to the model)"
            )

    @property
    def is_self_fusion(self) -> bool:
        """Whether this config fuses two layers of one feature set (same key and window)."""
        return self.b is not None and (self.a.key, self.a.window) == (self.b.key, self.b.window)

    @property
    def is_fusion(self) -> bool:
        """Whether this config fuses two feature sets."""
        return self.b is not None

    @property
    def parts(self) -> tuple[FeatureLayer, ...]:
        """The feature layers, in the order they are given to the encoder."""
        return (self.a,) if self.b is None else (self.a, self.b)

    @property
    def model(self) -> str:
        """The config's model name, the ``model`` coordinate: ``wavlm``, or ``gpt2+wavlm``
        for a fusion (the name summaries and CSV files show)."""
        return self.a.name if self.b is None else f"{self.a.name}+{self.b.name}"

    @property
    def label(self) -> str:
        """The canonical label (see the module docstring)."""
        a, b = self.a, self.b
        if b is None:
            return f"{a.name}/{a.window}/layer{a.layer}"
        suffix = f"/{BANDED}" if self.method == BANDED else ""
        return f"{a.name}/{a.window}+{b.name}/{b.window}/{a.layer}x{b.layer}{suffix}"


def n_blocks(stored_layers: Sequence[int]) -> int:
    """Number of blocks of a feature set: its largest layer label (0 = embeddings only)."""
    return max(int(x) for x in stored_layers) if len(stored_layers) else 0


def select_layers(spec: LayerSpec | None, info: FeatureSetInfo) -> list[int]:
    """The layer labels ``spec`` (auto / all / list) picks from a stored feature set.

    ``auto`` maps each evenly spaced depth to the nearest stored layer (a set may
    store only some layers). Raises :class:`InputError` naming the set for a layer
    it does not have.
    """
    stored = stored_layers(info)
    if spec is None or spec == "auto":
        targets = auto_layers(n_blocks(stored))
        picked = [min(stored, key=lambda have, t=t: (abs(have - t), have)) for t in targets]
        return sorted(set(picked))
    if spec == "all":
        return stored
    absent = [int(x) for x in spec if int(x) not in stored]
    if absent:
        raise InputError(
            f"{info.group} has layers {_ranges(stored)}; no layer {', '.join(map(str, absent))}"
        )
    return list(dict.fromkeys(int(x) for x in spec))


def stored_layers(info: FeatureSetInfo) -> list[int]:
    """Layer labels of a feature set (from its ``layers`` attr, else 0..n-1)."""
    layers = info.attrs.get("layers")
    if isinstance(layers, list) and len(layers) == info.n_layers:
        return [int(x) for x in layers]
    return list(range(info.n_layers))


def _ranges(layers: Sequence[int]) -> str:
    layers = sorted(layers)
    if layers == list(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}..{layers[-1]}"
    return ", ".join(map(str, layers))


def candidate_keys(name: str) -> list[str]:
    """The feature keys a typed model name may mean: its alias's key first, then itself.

    ``ALIAS.words`` (audio features pooled per word) means the alias's key + ``.words``.
    """
    base, dot, suffix = name.rpartition(".")
    if dot and suffix == "words" and base in aliases():
        return [f"{aliases()[base].key}.words", name]
    return [aliases()[name].key, name] if name in aliases() else [name]


class StoreCatalog:
    """The complete feature sets of a store, looked up by model name and window."""

    def __init__(self, store: StorePath) -> None:
        self.store = store
        listed = list_feature_sets(store)
        self.sets = {(i.key, i.window): i for i in listed if i.complete}
        self.incomplete = {(i.key, i.window): i for i in listed if not i.complete}

    def _absent(self, what: str, incomplete: list[FeatureSetInfo]) -> FeatstoreError:
        """The error for a feature set that is not there, or there but unfinished."""
        if incomplete:
            info = incomplete[0]
            if info.model_id.startswith("imported:"):  # features import is all or nothing
                how = "import", "re-import it (`featstore features import ... --overwrite`)"
            else:
                how = "extraction", "rerun the extraction to resume it"
            return IncompleteGroupError(
                f"feature set {info.group} in {self.store} is incomplete (its {how[0]} was "
                f"interrupted or is still running); {how[1]}"
            )
        return InputError(f"no feature set {what} in {self.store}; present: {self.present()}")

    def keys(self) -> list[str]:
        """Feature keys present, sorted."""
        return sorted({key for key, _ in self.sets})

    def windows(self, key: str) -> list[str]:
        """Stored windows of a key, sorted by kind then size."""
        return sorted((w for k, w in self.sets if k == key), key=parse_window)

    def present(self) -> str:
        """What the store holds, for error messages: ``gpt2 (ctx200), wavlm (tr1, tr6)``."""
        if not self.sets:
            return "none (run `featstore extract` first)"
        return ", ".join(f"{display_name(k)} ({', '.join(self.windows(k))})" for k in self.keys())

    def resolve_key(self, name: str) -> str:
        """Feature key of what a user typed: an alias, a display name or a key."""
        candidates = candidate_keys(name)
        for key in candidates:
            if any(k == key for k, _ in self.sets):
                return key
        unfinished = [i for (k, _), i in self.incomplete.items() if k in candidates]
        raise self._absent(f"for model {name!r}", unfinished)

    def info(self, key: str, window: str) -> FeatureSetInfo:
        """The feature set ``key``/``window`` (error listing the present ones if absent)."""
        try:
            return self.sets[(key, window)]
        except KeyError:
            unfinished = (
                [self.incomplete[(key, window)]] if (key, window) in self.incomplete else []
            )
            raise self._absent(f"{display_name(key)}/{window}", unfinished) from None

    def only_window(self, key: str) -> str:
        """The single stored window of ``key`` (error listing them if there are several)."""
        windows = self.windows(key)
        if len(windows) != 1:
            raise InputError(
                f"{display_name(key)} has windows {', '.join(windows)} in {self.store}; "
                "say which one (e.g. gpt2/ctx200+wavlm/tr6/9x9)"
            )
        return windows[0]

    def feature_layer(self, name: str, window: str | None, layer: int) -> FeatureLayer:
        """Resolve a name, an optional window and a layer into a checked :class:`FeatureLayer`."""
        key = self.resolve_key(name)
        window = window or self.only_window(key)
        parse_window(window)
        info = self.info(key, window)
        select_layers([layer], info)
        return FeatureLayer(key, window, int(layer))


class ModelRequest(NamedTuple):
    """A model as asked for: its name, and its own windows and layers (``None``: the
    grid's ``windows`` and ``layers``). Plain ``(name, windows)`` tuples work too."""

    name: str
    windows: list[str] | None = None
    layers: LayerSpec | None = None


def _request(request: ModelRequest | tuple) -> ModelRequest:
    """A :class:`ModelRequest` from one or a plain ``(name, windows[, layers])`` tuple."""
    return ModelRequest(*request)


def _or(own: LayerSpec | None, default: LayerSpec | None) -> LayerSpec | None:
    return default if own is None else own


def _windows_for(
    catalog: StoreCatalog, key: str, explicit: list[str] | None, requested: Sequence[str]
) -> list[str]:
    """Windows of ``key`` to evaluate: explicit ones, else the requested ones of the kinds
    the key has (or its modality takes), else every stored window of the key.

    A requested window of the kind the key's modality takes is never swapped for another
    stored window (an audio set stored as ctx200 by mistake is not evaluated for tr1):
    :meth:`StoreCatalog.info` names what is stored instead.
    """
    if explicit is None:
        stored = catalog.windows(key)
        kinds = {parse_window(w)[0] for w in stored}
        kinds |= {
            S.MODALITY_WINDOW_KIND[modality]
            for w in stored
            if (modality := catalog.info(key, w).modality) in S.MODALITY_WINDOW_KIND
        }
        explicit = [w for w in requested if parse_window(w)[0] in kinds] or stored
    for window in explicit:
        catalog.info(key, window)
    return list(dict.fromkeys(explicit))


def build_configs(
    store: StorePath,
    *,
    models: Sequence[ModelRequest] = (),
    fusions: Sequence[tuple[ModelRequest, ModelRequest]] = (),
    windows: Sequence[str] = (),
    layers: LayerSpec | None = "auto",
    method: str = CONCAT,
) -> list[Config]:
    """Every config a grid request asks for, in a stable order, without duplicates.

    Parameters
    ----------
    store
        Store path.
    models
        :class:`ModelRequest` ``(name, windows, layers)`` per model (or ``(name,
        windows)``): windows ``None`` takes the ``windows`` of the model's window kind
        (ctx for text, tr for audio), else every stored window; layers ``None`` takes
        ``layers``.
    fusions
        ``(A, B)`` model requests; windows and layers resolve per side as for
        ``models``, so each side may have its own layers. When both sides
        have the same window kind, equal windows are paired (tr6 with tr6); otherwise
        every A window meets every B window (the text side keeps its ctx window while
        the audio side takes each tr window).
    windows
        Window names (``ctx200``, ``tr6``) applying by kind.
    layers
        ``auto``, ``all`` or a list of layer labels, for each side of a fusion; fusion
        takes every pair of the selected layers. A feature set fused with itself (same
        key and window on both sides) takes each pair of different layers once
        (``4x9``, not ``4x4`` or ``9x4``); none is an :class:`InputError`.
    method
        Fusion method, ``concat`` or ``banded``.
    """
    if method not in FUSION_METHODS:
        raise InputError(f"method={method!r}: expected one of {', '.join(FUSION_METHODS)}")
    for window in windows:
        parse_window(window)
    catalog = StoreCatalog(store)
    configs: list[Config] = []
    for name, explicit, own_layers in map(_request, models):
        key = catalog.resolve_key(name)
        for window in _windows_for(catalog, key, explicit, windows):
            for layer in select_layers(_or(own_layers, layers), catalog.info(key, window)):
                configs.append(Config(FeatureLayer(key, window, layer)))
    for side_a, side_b in fusions:
        (name_a, explicit_a, own_a), (name_b, explicit_b, own_b) = map(_request, (side_a, side_b))
        key_a, key_b = catalog.resolve_key(name_a), catalog.resolve_key(name_b)
        windows_a = _windows_for(catalog, key_a, explicit_a, windows)
        windows_b = _windows_for(catalog, key_b, explicit_b, windows)
        kinds_a = {parse_window(w)[0] for w in windows_a}
        kinds_b = {parse_window(w)[0] for w in windows_b}
        if kinds_a == kinds_b:
            pairs = [(w, w) for w in windows_a if w in windows_b]
            if not pairs:
                raise InputError(
                    f"fusion {name_a}+{name_b}: no common window ({', '.join(windows_a)} vs "
                    f"{', '.join(windows_b)}); give each side's window, e.g. {name_a}:tr6+{name_b}:tr6"
                )
        else:
            pairs = list(itertools.product(windows_a, windows_b))
        for window_a, window_b in pairs:
            layers_a = select_layers(_or(own_a, layers), catalog.info(key_a, window_a))
            layers_b = select_layers(_or(own_b, layers), catalog.info(key_b, window_b))
            layer_pairs = list(itertools.product(layers_a, layers_b))
            if (key_a, window_a) == (key_b, window_b):
                # a set fused with itself: each pair of different layers once (4x9, not 9x4)
                layer_pairs = list(
                    dict.fromkeys((min(p), max(p)) for p in layer_pairs if p[0] != p[1])
                )
                if not layer_pairs:
                    group = f"{display_name(key_a)}/{window_a}"
                    selected = ", ".join(map(str, dict.fromkeys(layers_a + layers_b)))
                    raise InputError(
                        f"fusions={name_a}+{name_b} fuses {group} with itself, which needs "
                        f"two different layers; selected: {selected}; give at least two, "
                        f"e.g. layers=4,9"
                    )
            for layer_a, layer_b in layer_pairs:
                configs.append(
                    Config(
                        FeatureLayer(key_a, window_a, layer_a),
                        FeatureLayer(key_b, window_b, layer_b),
                        method,
                    )
                )
    if not configs:
        raise InputError("nothing to evaluate: give `models` and/or `fusions`")
    return list(dict.fromkeys(configs))


@dataclass(frozen=True)
class GridRequest:
    """What a grid evaluates: the ``models``, ``fusions``, ``windows`` and ``layers`` of
    :func:`build_configs`, which travel together from
    :func:`~featstore.evaluate.runs.grid.run_grid` to the configs and the run's attrs."""

    models: Sequence[ModelRequest] = ()
    fusions: Sequence[tuple[ModelRequest, ModelRequest]] = ()
    windows: Sequence[str] = ()
    layers: LayerSpec | None = "auto"

    def configs(self, store: StorePath, method: str = CONCAT) -> list[Config]:
        """Its configs in ``store`` (:func:`build_configs`), fusions fitted by ``method``."""
        return build_configs(
            store,
            models=self.models,
            fusions=self.fusions,
            windows=self.windows,
            layers=self.layers,
            method=method,
        )

    def record(self) -> dict[str, Any]:
        """What was asked for, as the run's attr ``request`` keeps it (JSON: lists, not
        tuples)."""
        layers = self.layers
        return {
            "models": [list(m) for m in self.models],
            "fusions": [[list(a), list(b)] for a, b in self.fusions],
            "windows": list(self.windows),
            "layers": layers if isinstance(layers, str) or layers is None else list(layers),
        }


def self_fusion_notices(configs: Sequence[Config]) -> list[str]:
    """One line per feature set a grid fuses with itself: only pairs of different layers."""
    counts: dict[str, int] = {}
    for config in configs:
        if config.is_self_fusion:
            group = f"{config.a.name}/{config.a.window}"
            counts[group] = counts.get(group, 0) + 1
    return [
        f"fusion of {group} with itself: only its {n} pair(s) of different layers are "
        "evaluated (AxB with A < B; AxA adds nothing and BxA repeats AxB)"
        for group, n in counts.items()
    ]
