"""Feature sets: ``features/<key>/<window>`` with ``hidden(layer, tr, dim)``.

A feature set is chunked one layer per chunk, so reading one layer is one read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr

from featstore import __version__
from featstore._docs import fill_doc
from featstore.errors import GroupNotFoundError, InputError, warn
from featstore.store import _schema as S
from featstore.store.groups import (
    StorePath,
    child_names,
    group_attrs,
    open_group,
    open_root,
    store_n_tr,
    write_group,
)
from featstore.store.io_errors import reading_data, reading_metadata
from featstore.store.paths import feature_group, parse_window

ArrayLike = np.ndarray | da.Array


def feature_dataset(
    hidden: ArrayLike,
    *,
    attrs: Mapping[str, Any],
    layers: Sequence[int] | None = None,
    word_hidden: ArrayLike | None = None,
    has_words: ArrayLike | None = None,
    extra_vars: Mapping[str, tuple[tuple[str, ...], ArrayLike]] | None = None,
) -> xr.Dataset:
    """Build the in-memory (or dask) dataset of a feature set, checking its shape.

    Parameters
    ----------
    hidden : array-like, (layer, tr, dim)
        Hidden states per TR, numpy or dask.
    attrs : mapping
        The set's attrs (:func:`write_feature_set` checks the provenance attrs among them).
    layers : sequence of int, optional
        Layer labels (default: 0, 1, …).
    word_hidden, has_words : array-like, optional
        Hidden states per word (layer, word, dim); whether each TR has a word.
    extra_vars : mapping, optional
        More variables, name -> (dims, values).

    Returns
    -------
    xarray.Dataset
        ``hidden`` and the other variables, with ``layer`` and ``tr`` coordinates.
    """
    if np.ndim(hidden) != 3:
        raise InputError(
            f"hidden must be (layer, tr, dim), got an array of shape {np.shape(hidden)}"
        )
    if 0 in hidden.shape:
        raise InputError(
            f"hidden has shape {hidden.shape}; a feature set needs values on every axis"
        )
    n_layer, n_tr, _ = hidden.shape
    layers = list(range(n_layer)) if layers is None else [int(x) for x in layers]
    if len(layers) != n_layer:
        raise InputError(f"{len(layers)} layer labels for {n_layer} layers")
    data_vars: dict[str, Any] = {S.HIDDEN_VAR: (S.HIDDEN_DIMS, hidden)}
    if word_hidden is not None:
        if np.ndim(word_hidden) != 3 or word_hidden.shape[0] != n_layer:
            raise InputError(
                f"word_hidden must be (layer={n_layer}, word, dim), got {np.shape(word_hidden)}"
            )
        data_vars[S.WORD_HIDDEN_VAR] = (S.WORD_HIDDEN_DIMS, word_hidden)
    if has_words is not None:
        if np.shape(has_words) != (n_tr,):
            raise InputError(f"has_words must have shape ({n_tr},), got {np.shape(has_words)}")
        data_vars[S.HAS_WORDS_VAR] = ((S.TR_DIM,), np.asarray(has_words, dtype=bool))
    for name, (dims, values) in (extra_vars or {}).items():
        data_vars[name] = (dims, values)
    full_attrs = {"featstore_version": __version__, **dict(attrs), "layers": layers}
    return xr.Dataset(
        data_vars,
        coords={S.LAYER_DIM: np.asarray(layers, dtype=np.int64), S.TR_DIM: np.arange(n_tr)},
        attrs=full_attrs,
    )


def feature_encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Zarr encoding of a feature set: one chunk per layer for the layered variables.

    A layer is what the evaluator reads (one chunk, ~7 MB at 2249 TRs × 768 dims);
    compression is write_group's (checksummed zstd, see ``array_compressors``).
    """
    encoding: dict[str, dict[str, Any]] = {}
    for name in (S.HIDDEN_VAR, S.WORD_HIDDEN_VAR):
        if name in ds:
            shape = ds[name].shape
            encoding[name] = {"chunks": (1, max(shape[1], 1), max(shape[2], 1))}
    return encoding


def window_mismatch(what: str, modality: str, window: str) -> str:
    """The message for a window of the wrong kind for ``modality`` (``ctx200`` for audio)."""
    kind = S.MODALITY_WINDOW_KIND[modality]
    return (
        f"{what}: window {window!r} does not fit modality {modality!r}, whose windows are "
        f"{kind}N ({S.WINDOW_KINDS[kind]}), e.g. {kind}{6 if kind == 'tr' else 200}"
    )


def _check_attrs(attrs: Mapping[str, Any], window: str, group: str) -> None:
    filled_here = ("layers", "featstore_version", S.COMPLETE_ATTR)
    missing = [a for a in S.FEATURE_ATTRS if a not in attrs and a not in filled_here]
    if missing:
        raise InputError(f"feature set {group!r} lacks provenance attrs {missing}")
    if attrs["modality"] not in S.MODALITIES:
        raise InputError(
            f"feature set {group!r} has modality {attrs['modality']!r}; expected one of {S.MODALITIES}"
        )
    kind, size = parse_window(window)
    expected = S.MODALITY_WINDOW_KIND[attrs["modality"]]
    if kind != expected:
        raise InputError(window_mismatch(group, attrs["modality"], window))
    window_attr = "ctx_words" if kind == "ctx" else "tr_win"
    if int(attrs.get(window_attr, size)) != size:
        raise InputError(
            f"feature set {group!r}: attr {window_attr}={attrs[window_attr]} disagrees with window {window!r}"
        )


@fill_doc
def write_feature_set(
    store: StorePath,
    key: str,
    window: str,
    hidden: ArrayLike,
    *,
    attrs: Mapping[str, Any],
    layers: Sequence[int] | None = None,
    overwrite: bool = False,
    **variables: Any,
) -> str:
    """Write a feature set as ``features/<key>/<window>`` and return the group path.

    ``hidden`` is ``(layer, tr, dim)``, numpy or dask (written chunk by chunk); its TR
    count must equal the store's ``n_tr``. ``attrs`` must hold the provenance attrs of
    the schema (``model_id``, ``revision``, ``modality``, ``pooling``,
    ``stimulus_sha256``); ``ctx_words`` / ``tr_win`` are filled in from ``window``.

    Parameters
    ----------
    %(store)s
    key, window : str
        Feature key and window name.
    hidden : array-like, (layer, tr, dim)
        Hidden states per TR.
    attrs : mapping
        Provenance attrs (see above).
    layers : sequence of int, optional
        Layer labels (default: 0, 1, …).
    overwrite : bool
        Replace an existing feature set.
    **variables
        The set's variables beyond ``hidden`` (``word_hidden``, ``has_words``,
        ``extra_vars``), passed to :func:`feature_dataset`, which documents them.

    Returns
    -------
    str
        The group path, ``features/<key>/<window>``.

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.datasets import example_store
    >>> from featstore.store import write_feature_set
    >>> attrs = {"model_id": "org/my-lm", "revision": "v1", "modality": "text",
    ...          "pooling": "last", "stimulus_sha256": "0" * 64}
    >>> hidden = np.random.default_rng(0).standard_normal((2, 120, 4))  # (layer, tr, dim)
    >>> write_feature_set(example_store(), "org--my-lm", "ctx8", hidden, attrs=attrs)
    'features/org--my-lm/ctx8'
    """
    group = feature_group(key, window)
    kind, size = parse_window(window)
    attrs = dict(attrs)
    attrs.setdefault("ctx_words" if kind == "ctx" else "tr_win", size)
    _check_attrs(attrs, window, group)
    n_tr = store_n_tr(store)
    if np.ndim(hidden) == 3 and hidden.shape[1] != n_tr:
        raise InputError(
            f"feature set {group!r} has {hidden.shape[1]} TRs but the store has n_tr={n_tr}"
        )
    ds = feature_dataset(hidden, attrs=attrs, layers=layers, **variables)
    write_group(store, group, ds, overwrite=overwrite, encoding=feature_encoding(ds))
    constant = constant_layers(store, group)
    if constant:
        message = constant_layers_message(group, constant, ds.sizes[S.LAYER_DIM], n_tr)
        warn(message, source=__name__, stacklevel=2)
    return group


def constant_layers(store: StorePath, group: str) -> list[int]:
    """Labels of the layers of a feature set whose every dim is constant over the TRs.

    Such a layer (all zero, say: a one-TR story, or an export that failed) carries no
    signal: z-scored it is all zero and an encoding model's r is NaN. Reads the stored
    ``hidden`` one layer (one chunk) at a time.
    """
    hidden = open_group(store, group, require_complete=False)[S.HIDDEN_VAR]
    flat = (hidden.max(S.TR_DIM) == hidden.min(S.TR_DIM)).all(S.DIM_DIM)
    with reading_data(store, group):
        values = flat.compute(scheduler="threads").values
    return [
        int(label)
        for label, constant in zip(hidden[S.LAYER_DIM].values, values, strict=True)
        if constant
    ]


def constant_layers_message(group: str, layers: Sequence[int], n_layers: int, n_tr: int) -> str:
    """The warning naming the constant layers of ``group`` (of ``n_layers``)."""
    many = len(layers) > 1
    return (
        f"feature set {group}: layer{'s' if many else ''} {', '.join(map(str, layers))} "
        f"(of {n_layers}) {'are' if many else 'is'} constant over all {n_tr} TRs (e.g. all "
        f"zero): no signal, and evaluating {'them' if many else 'it'} gives r = NaN"
    )


@fill_doc
def resolve_feature_key(store: StorePath, name: str) -> str:
    """The feature key ``name`` stands for: itself if the store has it, else the key of the
    feature sets extracted under the model alias ``name`` (``minilm`` →
    ``sentence-transformers--all-MiniLM-L6-v2``), else ``name`` unchanged.

    Parameters
    ----------
    %(store)s
    name : str
        A feature key or a model alias.

    Returns
    -------
    str
        The key, or ``name`` unchanged if no feature set has it as key or alias.

    Examples
    --------
    %(example_feature_alias)s
    """
    keys = child_names(store, S.FEATURES)
    if name in keys:
        return name
    for key in keys:
        for window in child_names(store, f"{S.FEATURES}/{key}"):
            if group_attrs(store, f"{S.FEATURES}/{key}/{window}").get("model_alias") == name:
                return key
    return name


@fill_doc
def resolve_feature_group(store: StorePath, group: str) -> str:
    """``features/<alias>/<window>`` → ``features/<key>/<window>``; other paths unchanged.

    %(parameters_store_group)s

    Returns
    -------
    str
        The group path with the alias resolved.

    Examples
    --------
    %(example_feature_alias)s
    """
    parts = str(group).strip("/").split("/")
    if len(parts) >= 2 and parts[0] == S.FEATURES:
        parts[1] = resolve_feature_key(store, parts[1])
    return "/".join(parts)


@fill_doc
def open_feature_set(
    store: StorePath, key: str, window: str, *, layers: Sequence[int] | None = None
) -> xr.Dataset:
    """Open a complete feature set lazily; optionally select ``layers`` by label.

    ``key`` is the feature key or the model alias it was extracted under.

    Parameters
    ----------
    %(store)s
    key, window : str
        Feature key (or model alias) and window name.
    layers : sequence of int, optional
        Layer labels to keep.

    Returns
    -------
    xarray.Dataset
        ``hidden`` (layer, tr, dim), dask-backed.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import open_feature_set
    >>> open_feature_set(example_store(), "toy-lm", "ctx8", layers=[2]).hidden.shape
    (1, 120, 8)
    """
    group = feature_group(resolve_feature_key(store, key), window)
    ds = open_group(store, group)
    if layers is not None:
        wanted = [int(x) for x in layers]
        have = [int(x) for x in ds[S.LAYER_DIM].values]
        absent = [x for x in wanted if x not in have]
        if absent:
            raise InputError(
                f"feature set {group!r} has layers {have[0]}..{have[-1]}; no layer {absent}"
            )
        ds = ds.sel({S.LAYER_DIM: wanted})
    return ds


@dataclass(frozen=True)
class FeatureSetInfo:
    """What a listing knows of a feature set without reading its arrays.

    Attributes
    ----------
    key, window, group, model_id, modality : str
        Where the set is and what made it.
    n_layers, n_tr, dim : int
        The shape of ``hidden``.
    complete : bool
        Whether its write finished.
    attrs : dict
        All its attrs.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import list_feature_sets
    >>> info = list_feature_sets(example_store())[0]
    >>> info.group, info.n_layers, info.n_tr, info.dim
    ('features/toy-lm/ctx8', 3, 120, 8)
    """

    key: str
    window: str
    group: str
    model_id: str
    modality: str
    n_layers: int
    n_tr: int
    dim: int
    complete: bool
    attrs: dict[str, Any]


@fill_doc
def list_feature_sets(store: StorePath) -> list[FeatureSetInfo]:
    """Every feature set in the store (complete or not), sorted by key and window.

    %(parameters_store)s

    Returns
    -------
    list of FeatureSetInfo
        Sorted by key and window.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import list_feature_sets
    >>> [info.group for info in list_feature_sets(example_store())]
    ['features/toy-lm/ctx8', 'features/toy-speech/tr1']
    """
    infos: list[FeatureSetInfo] = []
    root = open_root(store)
    for key in child_names(store, S.FEATURES):
        for window in child_names(store, f"{S.FEATURES}/{key}"):
            group = f"{S.FEATURES}/{key}/{window}"
            with reading_metadata(store, group):
                node = root[group]
                attrs = dict(node.attrs)
                hidden = node.get(S.HIDDEN_VAR) if isinstance(node, zarr.Group) else None
                shape = tuple(hidden.shape) if hidden is not None else (0, 0, 0)
            infos.append(
                FeatureSetInfo(
                    key=key,
                    window=window,
                    group=group,
                    model_id=str(attrs.get("model_id", key)),
                    modality=str(attrs.get("modality", "?")),
                    n_layers=int(shape[0]),
                    n_tr=int(shape[1]),
                    dim=int(shape[2]),
                    complete=bool(attrs.get(S.COMPLETE_ATTR, False)),
                    attrs=attrs,
                )
            )
    return infos


@fill_doc
def feature_set_attrs(store: StorePath, key: str, window: str) -> dict[str, Any]:
    """Attrs of a feature set, by key or alias (:class:`GroupNotFoundError` naming it if absent).

    Parameters
    ----------
    %(store)s
    key, window : str
        Feature key (or model alias) and window name.

    Returns
    -------
    dict
        Its provenance (``model_id``, ``revision`` …) and window attrs.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import feature_set_attrs
    >>> feature_set_attrs(example_store(), "toy-lm", "ctx8")["ctx_words"]
    8
    """
    group = feature_group(resolve_feature_key(store, key), window)
    try:
        return group_attrs(store, group)
    except GroupNotFoundError:
        present = [f"{i.key}/{i.window}" for i in list_feature_sets(store)]
        raise GroupNotFoundError(
            f"no feature set {key}/{window} in {store}; present: {', '.join(present) or 'none'}"
        ) from None
