"""What the EEG analyses read: a feature set's per-word vectors, and sentence indices."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import xarray as xr

from featstore.errors import InputError
from featstore.evaluate.runs.configs import StoreCatalog, select_layers
from featstore.evaluate.runs.labels import parse_model_request
from featstore.store import _schema as S
from featstore.store.groups import StorePath, group_exists, open_group

#: A word ends a sentence when it ends with . ! ? or … (closing quotes/brackets after it
#: allowed): "said." "end?!" "them.)" all end one; "Mr" "e.g" do not, "U.S." does.
_SENTENCE_END = re.compile(r"""[.!?…]+["'”’)\]]*$""")


@dataclass(frozen=True)
class WordFeatures:
    """One feature set's per-word hidden states: ``word_hidden (layer, word, dim)``."""

    key: str
    window: str
    layers: list[int]
    attrs: dict
    word_hidden: xr.DataArray

    def describe(self) -> dict:
        """Provenance written with every EEG result."""
        return {
            "key": self.key,
            "window": self.window,
            "model_id": self.attrs.get("model_id"),
            "layers": self.layers,
        }


@dataclass(frozen=True)
class ResolvedFeatureSet:
    """A feature set named by ``NAME[:WINDOW][@LAYERS]``: its key, window, layers and group."""

    key: str
    window: str
    layers: list[int]
    group: str
    dataset: xr.Dataset


def resolve_feature_set(store: StorePath, model: str, option: str = "model") -> ResolvedFeatureSet:
    """Resolve ``NAME[:WINDOW][@LAYERS]`` (one window) to a stored feature set."""
    request = parse_model_request(model)
    catalog = StoreCatalog(store)
    key = catalog.resolve_key(request.name)
    if request.windows and len(request.windows) > 1:
        raise InputError(f"{option}={model!r}: expected one window, got {len(request.windows)}")
    window = request.windows[0] if request.windows else catalog.only_window(key)
    info = catalog.info(key, window)
    layers = select_layers(request.layers or "all", info)
    return ResolvedFeatureSet(key, window, layers, info.group, open_group(store, info.group))


def word_features(store: StorePath, model: str) -> WordFeatures:
    """Resolve ``NAME[:WINDOW][@LAYERS]`` to a feature set holding ``word_hidden``."""
    resolved = resolve_feature_set(store, model)
    ds = resolved.dataset
    if S.WORD_HIDDEN_VAR not in ds:
        raise InputError(
            f"{resolved.group} has no per-word states (word_hidden); extract a text model, or an "
            "audio model with `words`, or give it as `continuous`"
        )
    return WordFeatures(
        resolved.key, resolved.window, resolved.layers, dict(ds.attrs), ds[S.WORD_HIDDEN_VAR]
    )


def word_onsets(store: StorePath, features: WordFeatures) -> np.ndarray:
    """Onsets (s) of the stimulus words that ``features`` holds one vector each for."""
    onsets = open_group(store, S.STIMULUS)["onset"].values.astype(np.float64)
    if features.word_hidden.sizes[S.WORD_DIM] != len(onsets):
        raise InputError(
            f"{store}: {features.key}/{features.window} has "
            f"{features.word_hidden.sizes[S.WORD_DIM]} words but the stimulus has {len(onsets)}"
        )
    return onsets


def open_eeg(store: StorePath) -> xr.Dataset:
    """The store's ``eeg`` group (error naming the import command if absent)."""
    if not group_exists(store, S.EEG):
        raise InputError(
            f"{store} has no eeg group; import the recordings first (featstore dataset "
            "import-eeg --store ... --eeg FILES)"
        )
    return open_group(store, S.EEG)


def sentence_index(words: np.ndarray, source: str = "stimulus/word") -> np.ndarray:
    """Per-word sentence number (0, 1, …): a sentence ends at a word matching ``_SENTENCE_END``.

    Raises :class:`InputError` when no word carries sentence-final punctuation (an
    alignment stripped of it cannot give sentences).
    """
    ends = np.array([bool(_SENTENCE_END.search(str(w).strip())) for w in words])
    if not ends.any():
        raise InputError(
            f"{source}: no word ends with . ! ? or …, so the alignment has no punctuation to "
            "find sentences with; --within sentence needs it (use --within all)"
        )
    return np.concatenate([[0], np.cumsum(ends[:-1])]).astype(np.int64)
