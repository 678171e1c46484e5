"""The ``stimulus`` group: words with times and TR indices, and the 16 kHz story audio."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from featstore._docs import fill_doc
from featstore.datasets.align import Alignment
from featstore.datasets.timeline import assign_tr, stimulus_sha256
from featstore.store import _schema as S
from featstore.store.groups import StorePath, open_group

# One minute of 16 kHz audio per chunk (3.8 MB): an audio window is a read of one or two.
AUDIO_CHUNK = 60 * S.AUDIO_SAMPLE_RATE


def _strings(values: list[str]) -> np.ndarray:
    # Object strings: numpy fixed-width strings make Zarr v3 warn.
    return np.array(values, dtype=object)


def stimulus_dataset(
    alignment: Alignment,
    samples: np.ndarray,
    *,
    audio_sha256: str,
    tr: float,
    stim_onset: float,
    tr_assign: str,
    sources: Mapping[str, Any],
) -> xr.Dataset:
    """Build the ``stimulus`` group of the schema from an alignment and 16 kHz audio."""
    duration_s = len(samples) / S.AUDIO_SAMPLE_RATE
    return xr.Dataset(
        {
            "word": ((S.WORD_DIM,), _strings(alignment.word)),
            "word_lower": ((S.WORD_DIM,), _strings(alignment.word_lower)),
            "onset": ((S.WORD_DIM,), alignment.onset.astype(np.float64)),
            "offset": ((S.WORD_DIM,), alignment.offset.astype(np.float64)),
            "tr_index": (
                (S.WORD_DIM,),
                assign_tr(alignment.onset, tr=tr, stim_onset=stim_onset, rule=tr_assign),
            ),
            "time_filled": ((S.WORD_DIM,), alignment.time_filled.astype(bool)),
            "word_missing": ((S.WORD_DIM,), alignment.word_missing.astype(bool)),
            S.STIMULUS_AUDIO_VAR: ((S.SAMPLE_DIM,), np.asarray(samples, dtype=np.float32)),
        },
        attrs={
            "audio_sha256": audio_sha256,
            "sample_rate": S.AUDIO_SAMPLE_RATE,
            "align_sha256": alignment.sha256,
            "tr_assign": tr_assign,
            "stimulus_sha256": stimulus_sha256(
                audio_sha256, alignment.sha256, tr=tr, stim_onset=stim_onset, tr_assign=tr_assign
            ),
            "stim_onset": float(stim_onset),
            "duration_s": float(duration_s),
            "n_time_filled": alignment.n_time_filled,
            "n_word_missing": alignment.n_word_missing,
            "sources": dict(sources),
        },
    )


def stimulus_encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Zarr chunks of the stimulus group: words in one chunk, audio by the minute."""
    n_samples = ds.sizes[S.SAMPLE_DIM]
    return {S.STIMULUS_AUDIO_VAR: {"chunks": (max(1, min(AUDIO_CHUNK, n_samples)),)}}


@fill_doc
def open_stimulus(store: StorePath) -> xr.Dataset:
    """Open a store's ``stimulus`` group lazily (dask-backed).

    Raises :class:`featstore.errors.GroupNotFoundError` if the store has none and
    :class:`featstore.errors.IncompleteGroupError` if its write never finished.

    %(open_group)s
        ``word``, ``onset``, ``offset``, ``tr_index`` (word) and ``audio`` (sample) ….

    Examples
    --------
    %(example_import)s
    >>> from featstore.datasets import open_stimulus
    >>> open_stimulus(store).word.values[:3].tolist()
    ['Every', 'morning,', 'before']
    """
    return open_group(store, S.STIMULUS)
