"""``evaluate trf``: temporal response functions of one feature set's layers, per subject.

The predictors of a layer are either its word vectors, PCA-reduced (axes fitted on the
words of the train part only) and placed as impulses at the word onsets on the EEG
sample grid, or a continuous series on that grid (``continuous``: the acoustic envelope,
or a feature set's TR-rate states interpolated, PCA fitted on the train TRs only;
:mod:`featstore.evaluate.eeg.continuous`). Either is mapped to every channel by
:func:`featstore.evaluate.encoding.trf.fit_trf`. Written as ``results/<run_id>`` with
``analysis = "trf"``: ``r`` and ``alpha`` (layer, subject, channel) and ``lag_profile``
(layer, subject, lag, channel).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr

from featstore.errors import InputError
from featstore.evaluate.analyses.runner import write_analysis
from featstore.evaluate.eeg.continuous import continuous_features
from featstore.evaluate.eeg.epochs import lag_samples
from featstore.evaluate.eeg.inputs import open_eeg, word_features, word_onsets
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


def _reduce(vectors: np.ndarray, train_rows: np.ndarray, pca: int | None, what: str) -> np.ndarray:
    """``vectors`` projected on the PCA axes of its train rows (unchanged when ``pca`` is None)."""
    if pca is None:
        return vectors
    if pca > min(len(train_rows), vectors.shape[1]):
        raise InputError(
            f"pca={pca}: expected at most min({what}, dims) = "
            f"min({len(train_rows)}, {vectors.shape[1]})"
        )
    mean, components = fit_pca(vectors[train_rows], pca)
    return apply_pca(vectors, mean, components)


def _word_designs(store, model, eeg, train, pca) -> tuple[Iterator[np.ndarray], dict]:
    """Per layer: the word vectors (PCA on the train words) as impulses at the onsets."""
    features = word_features(store, model)
    onsets = word_onsets(store, features)
    sfreq, times = float(eeg.attrs["sfreq"]), eeg[S.TIME_DIM].values
    train_words = np.flatnonzero(_train_words(onsets, times, train))

    def designs():
        for layer in features.layers:
            vectors = features.word_hidden.sel({S.LAYER_DIM: layer}).values.astype(np.float64)
            vectors = _reduce(vectors, train_words, pca, "train words")
            yield impulse_series(
                vectors, onsets, first_time=times[0], sfreq=sfreq, n_times=len(times)
            )

    return designs(), {
        "layers": features.layers,
        "predictor": "word impulses",
        "features": features.describe(),
    }


def _continuous_designs(store, name, eeg, train, pca) -> tuple[Iterator[np.ndarray], dict]:
    """Per layer: the continuous series on the EEG samples.

    PCA axes are fitted on the rows (TRs) whose time lies in the train part and applied
    before interpolating (the two commute), so memory is samples × components.
    """
    features = continuous_features(store, name, eeg)
    pca = pca if features.reducible else None
    times = eeg[S.TIME_DIM].values
    train_rows = np.flatnonzero(
        (features.row_times >= times[train[0]]) & (features.row_times <= times[train[-1]])
    )
    designs = (
        features.on_samples(_reduce(features.rows(layer), train_rows, pca, "train TRs"))
        for layer in features.layers
    )
    info = {
        "layers": features.layers,
        "predictor": "continuous",
        "features": features.describe(),
        "pca_applied": pca is not None,
    }
    return designs, info


def run_trf(
    store: StorePath,
    model: str | None,
    settings: TRFSettings,
    *,
    continuous: str | None = None,
    run_id: str | None = None,
    overwrite: bool = False,
) -> str:
    """Fit TRFs of every requested layer to every subject; return the run id.

    The predictors are ``model``'s per-word states as impulses at the word onsets, or
    with ``continuous`` (``model`` None) the acoustic envelope (``"envelope"``) or a
    feature set's TR-rate states interpolated onto the EEG samples
    (:mod:`featstore.evaluate.eeg.continuous`).
    """
    if (model is None) == (continuous is None):
        raise InputError("give `model` (word impulses) or `continuous` (a series), one of them")
    eeg = open_eeg(store)
    sfreq = float(eeg.attrs["sfreq"])
    times = eeg[S.TIME_DIM].values
    lags = lag_samples(settings.lags_ms[0] / 1e3, settings.lags_ms[1] / 1e3, sfreq)
    gap = int(np.abs(lags).max())
    train, test = chronological_split(len(times), trim=0, test_frac=settings.test_frac, gap=gap)
    if continuous is None:
        designs, info = _word_designs(store, model, eeg, train, settings.pca)
    else:
        designs, info = _continuous_designs(store, continuous, eeg, train, settings.pca)
    data = eeg[S.EEG_DATA_VAR].values  # (subject, time, channel)
    n_subjects, _, n_channels = data.shape
    targets = data.transpose(1, 0, 2).reshape(len(times), -1)
    r, alpha, profile = [], [], []
    for X in designs:
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
            S.LAYER_DIM: info["layers"],
            S.SUBJECT_DIM: eeg[S.SUBJECT_DIM].values,
            S.CHANNEL_DIM: eeg[S.CHANNEL_DIM].values,
            S.LAG_DIM: lags / sfreq * 1e3,
            **{name: (S.CHANNEL_DIM, eeg[name].values) for name in ("ch_type", "x", "y", "z")},
        },
        attrs={
            "settings": {
                **asdict(settings),
                "test_samples": len(test),
                "gap_samples": gap,
                "predictor": info["predictor"],
                "pca_applied": info.get("pca_applied", settings.pca is not None),
            },
            "features": info["features"],
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
