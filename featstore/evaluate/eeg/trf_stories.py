"""``evaluate trf`` across the stories of a store of stories.

Each story holding an ``eeg`` group gives, per layer, a design on its own sample grid
(word impulses, or a continuous series) and its recording. A split trains on some
stories and predicts others, with the leakage rules of the fMRI evaluator across stories
(:func:`featstore.evaluate.encoding.trf_stories.fit_trf_stories`): lags made per story,
PCA and z-scoring fitted on the training stories only, alpha by leave-one-story-out CV
over the training stories (two or more) else contiguous folds. ``test_stories`` trains
on the rest; without it every story is predicted once from the others (``cv-stories``).
Subjects lacking a story are left out of the splits that need it
(:func:`~featstore.evaluate.encoding.stories.plan_story_split`). Written at the store's
root as ``results/<run_id>`` (``analysis = "trf"``): ``r``, ``alpha`` (layer, subject,
channel), ``lag_profile`` (layer, subject, lag, channel) and ``r_story`` (layer, story,
subject, channel).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr

from featstore.errors import InputError
from featstore.evaluate.analyses.runner import check_run_id, write_analysis
from featstore.evaluate.eeg.continuous import Predictor, continuous_features
from featstore.evaluate.eeg.epochs import lag_samples
from featstore.evaluate.eeg.inputs import word_features, word_onsets
from featstore.evaluate.eeg.trf_run import TRFSettings
from featstore.evaluate.encoding.preprocess import apply_pca, fit_pca
from featstore.evaluate.encoding.stories import StoryPlan, plan_story_split
from featstore.evaluate.encoding.trf import impulse_series, lag_profile
from featstore.evaluate.encoding.trf_stories import fit_trf_stories, pooled_pearson
from featstore.store import _schema as S
from featstore.store.groups import StorePath, group_exists, now_iso, open_group
from featstore.store.stories import is_collection, list_stories, story_store


@dataclass(frozen=True)
class StoryEEG:
    """One story's recording and predictor (word vectors at the word onsets, or TR /
    sample rows: :class:`~featstore.evaluate.eeg.continuous.Predictor`)."""

    name: str
    eeg: xr.Dataset
    data: np.ndarray  # (subject, time, channel)
    predictor: Predictor
    info: dict

    @property
    def subjects(self) -> list[str]:
        """The story's subjects, in its ``eeg`` order."""
        return [str(s) for s in self.eeg[S.SUBJECT_DIM].values]

    @property
    def layers(self) -> list[int]:
        """The predictor's layers."""
        return self.predictor.layers

    @property
    def fit_rows(self) -> np.ndarray:
        """The predictor rows inside the recording (where PCA may be fitted)."""
        times = self.eeg[S.TIME_DIM].values.astype(np.float64)
        row_times = self.predictor.row_times
        return np.flatnonzero((row_times >= times[0]) & (row_times <= times[-1]))


def _story_eeg(name: str, handle, model: str | None, continuous: str | None) -> StoryEEG:
    eeg = open_group(handle, S.EEG)
    times = eeg[S.TIME_DIM].values.astype(np.float64)
    sfreq = float(eeg.attrs["sfreq"])
    data = eeg[S.EEG_DATA_VAR].values
    if continuous is None:
        features = word_features(handle, model)
        onsets = word_onsets(handle, features)
        hidden = features.word_hidden
        words = Predictor(
            features.key,
            features.layers,
            rows=lambda layer: hidden.sel({S.LAYER_DIM: layer}).values.astype(np.float64),
            row_times=onsets,
            on_samples=lambda values: impulse_series(
                values, onsets, first_time=times[0], sfreq=sfreq, n_times=len(times)
            ),
            reducible=True,
            provenance={"window": features.window, "model_id": features.attrs.get("model_id")},
        )
        info = {"predictor": "word impulses", "features": features.describe()}
        return StoryEEG(name, eeg, data, words, info)
    series = continuous_features(handle, continuous, eeg)
    info = {"predictor": "continuous", "features": series.describe()}
    return StoryEEG(name, eeg, data, series, info)


def _check_same(stories: Sequence[StoryEEG]) -> None:
    """One sampling rate, one channel list and one set of layers in every story."""
    first = stories[0]
    checks = (
        ("sampling rate (Hz)", lambda s: float(s.eeg.attrs["sfreq"])),
        ("channels", lambda s: [str(c) for c in s.eeg[S.CHANNEL_DIM].values]),
        ("layers", lambda s: list(s.layers)),
    )
    for what, value in checks:
        for other in stories[1:]:
            if value(other) != value(first):
                raise InputError(
                    f"story {other.name!r} has {what} {value(other)} but story {first.name!r} "
                    f"has {value(first)}; expected the same in every story of a TRF across "
                    "stories (import the EEG with the same `sfreq` and channels)"
                )


def load_stories(store: StorePath, model: str | None, continuous: str | None) -> list[StoryEEG]:
    """Every story of ``store`` holding EEG, checked for one rate, channel list and layers."""
    if (model is None) == (continuous is None):
        raise InputError("give `model` (word impulses) or `continuous` (a series), one of them")
    if not is_collection(store):
        raise InputError(
            f"{store} is a one-story store; `test_stories` and cv over stories need a store "
            "of stories"
        )
    with_eeg = [
        (name, story_store(store, name))
        for name in list_stories(store)
        if group_exists(story_store(store, name), S.EEG)
    ]
    if len(with_eeg) < 2:
        raise InputError(
            f"{store}: {len(with_eeg)} of its stories ({', '.join(list_stories(store))}) hold "
            "EEG; a TRF across stories needs at least 2 (import with `story`)"
        )
    stories = [_story_eeg(name, handle, model, continuous) for name, handle in with_eeg]
    _check_same(stories)
    return stories


def _designs(
    stories: dict[str, StoryEEG], layer: int, train: Sequence[str], pca: int | None
) -> dict[str, np.ndarray]:
    """Each story's design for ``layer``, PCA fitted on the training stories' rows only."""
    rows = {name: story.predictor.rows(layer) for name, story in stories.items()}
    if pca is not None and next(iter(stories.values())).predictor.reducible:
        fit = np.concatenate([rows[s][stories[s].fit_rows] for s in train])
        if pca > min(fit.shape):
            raise InputError(
                f"pca={pca}: expected at most min(training rows, dims) = min{fit.shape} "
                f"(training stories {', '.join(train)})"
            )
        mean, components = fit_pca(fit, pca)
        rows = {name: apply_pca(values, mean, components) for name, values in rows.items()}
    return {name: stories[name].predictor.on_samples(values) for name, values in rows.items()}


def _targets(story: StoryEEG, subjects: Sequence[str]) -> np.ndarray:
    """(time, subject × channel) recording of ``subjects`` in ``story``."""
    index = [story.subjects.index(s) for s in subjects]
    return story.data[index].transpose(1, 0, 2).reshape(story.data.shape[1], -1)


def _fit_layer(
    stories: dict[str, StoryEEG],
    layer: int,
    plan: StoryPlan,
    subjects: Sequence[str],
    lags: np.ndarray,
    settings: TRFSettings,
) -> tuple[dict, dict, dict]:
    """Per subject: (recording, prediction) pairs per test story, alphas and lag profiles."""
    n_channels = next(iter(stories.values())).data.shape[2]
    scored: dict[str, dict[str, tuple]] = {s: {} for s in subjects}
    alphas: dict[str, list] = {s: [] for s in subjects}
    profiles: dict[str, list] = {s: [] for s in subjects}
    for train in plan.training_sets:
        designs = _designs(stories, layer, train, settings.pca)
        for fold in (f for f in plan.folds if f.train == train):
            names = [subjects[k] for k in fold.subjects]
            fit = fit_trf_stories(
                designs,
                {s: _targets(stories[s], names) for s in train},
                lags,
                settings.alphas,
                train=train,
                test=fold.test,
                n_folds=settings.cv,
            )
            profile = lag_profile(fit.weights)
            for k, subject in enumerate(names):
                columns = slice(k * n_channels, (k + 1) * n_channels)
                alphas[subject].append(fit.alpha[columns])
                profiles[subject].append(profile[:, columns])
                for story in fold.test:
                    if subject in stories[story].subjects:
                        recording = _targets(stories[story], [subject])
                        scored[subject][story] = (recording, fit.predictions[story][:, columns])
    return scored, alphas, profiles


def run_trf_stories(
    store: StorePath,
    model: str | None,
    settings: TRFSettings,
    *,
    continuous: str | None = None,
    test_stories: Sequence[str] | None = None,
    run_id: str | None = None,
    overwrite: bool = False,
) -> str:
    """Fit TRFs across the stories of a store of stories; return the run id.

    ``test_stories`` are predicted from the other stories; ``None`` predicts every story
    from the others in turn (``cv-stories``). ``r`` is pooled over each subject's
    predicted stories (each story's recording z-scored over that story), ``r_story`` is
    per story, ``alpha`` the chosen alpha (the median over folds for ``cv-stories``) and
    ``lag_profile`` the mean over folds.
    """
    check_run_id(store, run_id, overwrite)  # before the fits, not only before writing
    stories = {story.name: story for story in load_stories(store, model, continuous)}
    first = next(iter(stories.values()))
    subjects = list(dict.fromkeys(s for story in stories.values() for s in story.subjects))
    has_story = np.array([[s in story.subjects for story in stories.values()] for s in subjects])
    plan = plan_story_split(has_story, list(stories), test_stories)
    sfreq = float(first.eeg.attrs["sfreq"])
    lags = lag_samples(settings.lags_ms[0] / 1e3, settings.lags_ms[1] / 1e3, sfreq)
    n_channels = first.data.shape[2]
    shape = (len(first.layers), len(subjects), n_channels)
    r, alpha = np.full(shape, np.nan), np.full(shape, np.nan)
    profile = np.full((len(first.layers), len(subjects), len(lags), n_channels), np.nan)
    r_story = np.full((len(first.layers), len(plan.test_stories), *shape[1:]), np.nan)
    for i, layer in enumerate(first.layers):
        scored, alphas, profiles = _fit_layer(stories, layer, plan, subjects, lags, settings)
        for j, subject in enumerate(subjects):
            if not scored[subject]:
                continue
            pairs = scored[subject]
            r[i, j] = pooled_pearson([p[0] for p in pairs.values()], [p[1] for p in pairs.values()])
            alpha[i, j] = np.median(alphas[subject], axis=0)
            profile[i, j] = np.mean(profiles[subject], axis=0)
            for k, story in enumerate(plan.test_stories):
                if story in pairs:
                    r_story[i, k, j] = pooled_pearson([pairs[story][0]], [pairs[story][1]])
    ds = _result(first, plan, subjects, lags, settings, (r, alpha, profile, r_story))
    return write_analysis(store, "trf", ds, run_id=run_id, overwrite=overwrite)


def _result(first: StoryEEG, plan: StoryPlan, subjects, lags, settings, arrays) -> xr.Dataset:
    r, alpha, profile, r_story = arrays
    eeg, sfreq = first.eeg, float(first.eeg.attrs["sfreq"])
    dims = (S.LAYER_DIM, S.SUBJECT_DIM, S.CHANNEL_DIM)
    story_settings = {k: v for k, v in asdict(settings).items() if k != "test_frac"}
    return xr.Dataset(
        {
            "r": (dims, r.astype(np.float32)),
            "alpha": (dims, alpha),
            "lag_profile": ((S.LAYER_DIM, S.SUBJECT_DIM, S.LAG_DIM, S.CHANNEL_DIM), profile),
            "r_story": (
                (S.LAYER_DIM, "story", S.SUBJECT_DIM, S.CHANNEL_DIM),
                r_story.astype(np.float32),
            ),
        },
        coords={
            S.LAYER_DIM: first.layers,
            "story": np.asarray(plan.test_stories, dtype=object),
            S.SUBJECT_DIM: np.asarray(subjects, dtype=object),
            S.CHANNEL_DIM: eeg[S.CHANNEL_DIM].values,
            S.LAG_DIM: lags / sfreq * 1e3,
            **{name: (S.CHANNEL_DIM, eeg[name].values) for name in ("ch_type", "x", "y", "z")},
        },
        attrs={
            "settings": {
                **story_settings,
                "gap_samples": int(np.abs(lags).max()),
                "predictor": first.info["predictor"],
                "pca_applied": settings.pca is not None and first.predictor.reducible,
            },
            "features": first.info["features"],
            "fmri": None,
            "eeg": {"sfreq": sfreq, "filter": eeg.attrs.get("filter")},
            "split": plan.split,
            "stories": list(plan.stories),
            "test_stories": list(plan.test_stories),
            "subjects_left_out": {
                story: [subjects[k] for k in left] for story, left in plan.left_out.items()
            },
            "created": now_iso(),
        },
    )


def trf_stories_summary(store: StorePath, run_id: str) -> list[str]:
    """The split, the subjects left out, then per layer the pooled and per-story mean r."""
    ds = open_group(store, f"{S.RESULTS}/{run_id}").load()
    lines = [
        f"split {ds.attrs['split']}, stories {', '.join(ds.attrs['stories'])}, test stories "
        f"{', '.join(ds.attrs['test_stories'])}"
    ]
    for story, left in ds.attrs["subjects_left_out"].items():
        if left:
            lines.append(f"story {story}: left out {', '.join(left)} (not scored on it)")
    for layer in ds[S.LAYER_DIM].values:
        per_story = ds.r_story.sel({S.LAYER_DIM: layer}).mean((S.SUBJECT_DIM, S.CHANNEL_DIM))
        stories = ", ".join(
            f"{s} {float(v):+.3f}" for s, v in zip(ds.story.values, per_story.values, strict=True)
        )
        lines.append(f"layer {int(layer):>3}  per story mean r: {stories}")
    return lines
