"""``evaluate similarity-eeg``: time-resolved alignment of word features with EEG epochs.

For every subject, layer and metric of
:data:`~featstore.evaluate.metrics.alignment.ALIGNMENT_METRICS`, the metric between
the layer's word vectors and the word-locked epochs in sliding windows (within each
sentence, or over all words). Significance by permuting the words (within sentences, or
in blocks of consecutive words), the same permutations for every subject and window;
FDR over time points, cluster-mass correction as an option. Written as
``results/<run_id>`` with ``analysis = "similarity_time"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr

from featstore.errors import InputError
from featstore.evaluate.analyses.runner import write_analysis
from featstore.evaluate.eeg.epochs import EpochSettings, word_epochs
from featstore.evaluate.eeg.inputs import open_eeg, sentence_index, word_features
from featstore.evaluate.metrics.alignment import resolve_metrics
from featstore.evaluate.metrics.rsa_layers import permutation_indices
from featstore.evaluate.metrics.stats import fdr_bh
from featstore.evaluate.metrics.timeresolved import (
    cluster_p,
    permutation_p,
    sliding_scores,
    window_starts,
    within_group_permutations,
)
from featstore.store import _schema as S
from featstore.store.groups import StorePath, now_iso, open_group


@dataclass(frozen=True)
class SimilarityTimeSettings:
    """Epochs, windows (ms), grouping, metrics and the permutation test."""

    epochs_ms: tuple[float, float] = (-100.0, 800.0)
    baseline_ms: tuple[float, float] | None = (-100.0, 0.0)
    reject: float | None = None
    window_ms: float = 50.0
    step_ms: float = 25.0
    within: str = "sentence"
    metrics: tuple[str, ...] = ("all",)
    n_perm: int = 100
    perm_block: int = 10
    min_items: int = 3
    cluster: bool = False
    cluster_threshold: float = 0.05
    seed: int = 0


def _samples(ms: float, sfreq: float, what: str) -> int:
    samples = round(ms * sfreq / 1e3)
    if samples < 1:
        raise InputError(
            f"{what} {ms:g} ms is {ms * sfreq / 1e3:.2f} samples at {sfreq:g} Hz: the sampling "
            f"rate is below the window step; use {what} >= {1e3 / sfreq:g} ms"
        )
    return samples


def _permutations(groups, n_items: int, settings: SimilarityTimeSettings) -> np.ndarray:
    if groups is not None:
        return within_group_permutations(groups, settings.n_perm, settings.seed)
    return permutation_indices(
        n_items, settings.n_perm, block=settings.perm_block, seed=settings.seed
    )


def run_similarity_eeg(
    store: StorePath,
    model: str,
    settings: SimilarityTimeSettings,
    *,
    run_id: str | None = None,
    overwrite: bool = False,
) -> str:
    """Compute layer × time maps of every metric for every subject; return the run id."""
    if settings.within not in ("sentence", "all"):
        raise InputError(f"--within {settings.within!r}: expected sentence or all")
    functions = resolve_metrics(",".join(settings.metrics))  # name -> function
    metrics = list(functions)
    features = word_features(store, model)
    eeg = open_eeg(store)
    sfreq = float(eeg.attrs["sfreq"])
    window = _samples(settings.window_ms, sfreq, "--window")
    step = _samples(settings.step_ms, sfreq, "--step")
    groups_all = None
    if settings.within == "sentence":
        groups_all = sentence_index(open_group(store, S.STIMULUS)["word"].values)
    epoch_settings = EpochSettings(
        tmin=settings.epochs_ms[0] / 1e3,
        tmax=settings.epochs_ms[1] / 1e3,
        baseline=tuple(b / 1e3 for b in settings.baseline_ms) if settings.baseline_ms else None,
        reject=settings.reject,
    )
    epochs = word_epochs(store, epoch_settings)
    starts = window_starts(epochs.sizes[S.LAG_DIM], window, step)
    lags = epochs[S.LAG_DIM].values
    centres = (lags[starts] + lags[starts + window - 1]) / 2
    vectors = features.word_hidden.values  # (layer, word, dim)
    layer_index = [list(features.word_hidden[S.LAYER_DIM].values).index(x) for x in features.layers]
    shape = (len(metrics), len(features.layers), len(starts), epochs.sizes[S.SUBJECT_DIM])
    score = np.empty(shape)
    null = np.empty((settings.n_perm, *shape))
    for s in range(shape[3]):
        kept = np.flatnonzero(epochs.drop_reason.values[s] == 0)
        subject_epochs = epochs.epochs.values[s][kept]
        groups = groups_all[kept] if groups_all is not None else None
        # seeded: permutation k is the same for every layer, metric and window
        perms = _permutations(groups, len(kept), settings)
        for m, name in enumerate(metrics):
            for li, layer in enumerate(layer_index):
                score[m, li, :, s], null[:, m, li, :, s] = sliding_scores(
                    functions[name],
                    vectors[layer][kept],
                    subject_epochs,
                    starts,
                    window,
                    groups=groups,
                    permutations=perms,
                    min_items=settings.min_items,
                )
    return _write(store, features, eeg, settings, metrics, centres, score, null, run_id, overwrite)


def _write(store, features, eeg, settings, metrics, centres, score, null, run_id, overwrite) -> str:
    mean, null_mean = score.mean(axis=-1), null.mean(axis=-1)
    p = np.empty(mean.shape)
    p_cluster = np.ones(mean.shape)
    for m in range(mean.shape[0]):
        for layer in range(mean.shape[1]):
            p[m, layer] = permutation_p(mean[m, layer], null_mean[:, m, layer])
            if settings.cluster:
                p_cluster[m, layer] = cluster_p(
                    mean[m, layer], null_mean[:, m, layer], settings.cluster_threshold
                )
    maps = (S.METRIC_DIM, S.LAYER_DIM, S.TIME_DIM)
    data = {
        "score": ((*maps, S.SUBJECT_DIM), score),
        "score_mean": (maps, mean),
        "p": (maps, p),
        "q": (maps, fdr_bh(p, axis=-1)),
    }
    if settings.cluster:
        data["p_cluster"] = (maps, p_cluster)
    ds = xr.Dataset(
        data,
        coords={
            S.METRIC_DIM: np.array(metrics, dtype=object),
            S.LAYER_DIM: features.layers,
            S.TIME_DIM: centres,
            S.SUBJECT_DIM: eeg[S.SUBJECT_DIM].values,
        },
        attrs={
            "settings": asdict(settings),
            "time_unit": "ms after word onset (window centre)",
            "features": features.describe(),
            "fmri": None,
            "eeg": {"sfreq": float(eeg.attrs["sfreq"]), "filter": eeg.attrs.get("filter")},
            "created": now_iso(),
        },
    )
    return write_analysis(store, "similarity_time", ds, run_id=run_id, overwrite=overwrite)


def similarity_summary(store: StorePath, run_id: str) -> list[str]:
    """Per metric: the layer and window of the largest mean score, and its q."""
    ds = open_group(store, f"{S.RESULTS}/{run_id}").load()
    lines = []
    for m, metric in enumerate(ds[S.METRIC_DIM].values):
        values = ds.score_mean.values[m]
        layer, time = np.unravel_index(np.nanargmax(values), values.shape)
        lines.append(
            f"{metric!s:<14} peak {values[layer, time]:+.3f} at layer "
            f"{int(ds[S.LAYER_DIM].values[layer])}, {ds[S.TIME_DIM].values[time]:g} ms "
            f"(q {ds.q.values[m, layer, time]:.3g})"
        )
    return lines
