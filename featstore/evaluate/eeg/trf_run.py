"""``evaluate trf``: temporal response functions of one feature set's layers, per subject.

Each layer's word vectors are PCA-reduced (axes fitted on the words of the train part
only), placed as impulses at the word onsets on the EEG sample grid, and mapped to every
channel by :func:`featstore.evaluate.encoding.trf.fit_trf`. Written as
``results/<run_id>`` with ``analysis = "trf"``: ``r`` and ``alpha`` (layer, subject,
channel) and ``lag_profile`` (layer, subject, lag, channel).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr

from featstore.errors import InputError
from featstore.evaluate.analyses.runner import write_analysis
from featstore.evaluate.eeg.epochs import lag_samples
from featstore.evaluate.eeg.inputs import open_eeg, word_features
from featstore.evaluate.encoding.preprocess import apply_pca, fit_pca
from featstore.evaluate.encoding.split import chronological_split
from featstore.evaluate.encoding.trf import fit_trf, impulse_series, lag_profile
from featstore.store import _schema as S
from featstore.store.groups import StorePath, now_iso, open_group


@dataclass(frozen=True)
class TRFSettings:
    """Lags in ms, the alpha grid, PCA components, held-out fraction and CV folds."""

    lags_ms: tuple[float, float] = (-100.0, 600.0)
    alphas: tuple[float, ...] = tuple(10.0 ** np.arange(-2, 7))
    pca: int | None = 10
    test_frac: float = 0.2
    cv: int = 5


def _train_words(onsets: np.ndarray, times: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Words whose onset sample lies in the train part (where PCA axes are fitted)."""
    first, last = times[train[0]], times[train[-1]]
    return np.isfinite(onsets) & (onsets >= first) & (onsets <= last)


def _layer_design(
    vectors: np.ndarray, onsets: np.ndarray, times: np.ndarray, sfreq: float, train_words, pca
) -> np.ndarray:
    if pca is not None:
        if pca > min(int(train_words.sum()), vectors.shape[1]):
            raise InputError(
                f"--pca {pca}: expected at most min(train words, dims) = "
                f"min({int(train_words.sum())}, {vectors.shape[1]})"
            )
        mean, components = fit_pca(vectors[train_words], pca)
        vectors = apply_pca(vectors, mean, components)
    return impulse_series(vectors, onsets, first_time=times[0], sfreq=sfreq, n_times=len(times))


def run_trf(
    store: StorePath,
    model: str,
    settings: TRFSettings,
    *,
    run_id: str | None = None,
    overwrite: bool = False,
) -> str:
    """Fit TRFs of every requested layer of ``model`` to every subject; return the run id."""
    features = word_features(store, model)
    eeg = open_eeg(store)
    onsets = open_group(store, S.STIMULUS)["onset"].values.astype(np.float64)
    if features.word_hidden.sizes[S.WORD_DIM] != len(onsets):
        raise InputError(
            f"{features.key}/{features.window} has {features.word_hidden.sizes[S.WORD_DIM]} "
            f"words but the stimulus has {len(onsets)}"
        )
    sfreq = float(eeg.attrs["sfreq"])
    times = eeg[S.TIME_DIM].values
    lags = lag_samples(settings.lags_ms[0] / 1e3, settings.lags_ms[1] / 1e3, sfreq)
    gap = int(np.abs(lags).max())
    train, test = chronological_split(len(times), trim=0, test_frac=settings.test_frac, gap=gap)
    data = eeg[S.EEG_DATA_VAR].values  # (subject, time, channel)
    n_subjects, _, n_channels = data.shape
    targets = data.transpose(1, 0, 2).reshape(len(times), -1)
    train_words = _train_words(onsets, times, train)
    r, alpha, profile = [], [], []
    for layer in features.layers:
        vectors = features.word_hidden.sel({S.LAYER_DIM: layer}).values.astype(np.float64)
        X = _layer_design(vectors, onsets, times, sfreq, train_words, settings.pca)
        fit = fit_trf(
            X,
            targets,
            lags,
            settings.alphas,
            train_index=train,
            test_index=test,
            n_folds=settings.cv,
        )
        r.append(fit.r.reshape(n_subjects, n_channels))
        alpha.append(fit.alpha.reshape(n_subjects, n_channels))
        profile.append(lag_profile(fit.weights).reshape(len(lags), n_subjects, n_channels))
    dims = (S.LAYER_DIM, S.SUBJECT_DIM, S.CHANNEL_DIM)
    ds = xr.Dataset(
        {
            "r": (dims, np.array(r)),
            "alpha": (dims, np.array(alpha)),
            "lag_profile": (
                (S.LAYER_DIM, S.SUBJECT_DIM, S.LAG_DIM, S.CHANNEL_DIM),
                np.array(profile).transpose(0, 2, 1, 3),
            ),
        },
        coords={
            S.LAYER_DIM: features.layers,
            S.SUBJECT_DIM: eeg[S.SUBJECT_DIM].values,
            S.CHANNEL_DIM: eeg[S.CHANNEL_DIM].values,
            S.LAG_DIM: lags / sfreq * 1e3,
            **{name: (S.CHANNEL_DIM, eeg[name].values) for name in ("ch_type", "x", "y", "z")},
        },
        attrs={
            "settings": {**asdict(settings), "test_samples": len(test), "gap_samples": gap},
            "features": features.describe(),
            "fmri": None,
            "eeg": {"sfreq": sfreq, "filter": eeg.attrs.get("filter")},
            "created": now_iso(),
        },
    )
    return write_analysis(store, "trf", ds, run_id=run_id, overwrite=overwrite)


def trf_summary(store: StorePath, run_id: str) -> list[str]:
    """One line per layer: mean r over subjects and channels, best channel, its peak lag."""
    ds = open_group(store, f"{S.RESULTS}/{run_id}").load()
    lines = []
    channels = [str(c) for c in ds[S.CHANNEL_DIM].values]
    lags = ds[S.LAG_DIM].values
    for layer in ds[S.LAYER_DIM].values:
        r = ds.r.sel({S.LAYER_DIM: layer}).mean(S.SUBJECT_DIM).values
        best = int(np.nanargmax(r))
        profile = ds.lag_profile.sel({S.LAYER_DIM: layer}).mean(S.SUBJECT_DIM).values[:, best]
        lines.append(
            f"layer {int(layer):>3}  mean r {float(np.nanmean(r)):+.3f}  best {channels[best]} "
            f"r {float(r[best]):+.3f}, peak lag {float(lags[profile.argmax()]):g} ms"
        )
    return lines


def alphas_from_text(text: str) -> tuple[float, ...]:
    """``"1e-2:1e6:9"`` (log-spaced) or ``"1,10,100"`` → increasing alphas."""
    try:
        if text.count(":") == 2:
            low, high, count = text.split(":")
            values: Sequence[float] = np.logspace(
                np.log10(float(low)), np.log10(float(high)), int(count)
            )
        else:
            values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not len(values) or min(values) <= 0:
        raise InputError(f"--alphas {text!r}: expected LOW:HIGH:COUNT or a list of values > 0")
    return tuple(sorted(float(v) for v in values))
