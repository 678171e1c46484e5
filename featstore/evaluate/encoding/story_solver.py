"""Scores of a chunk of targets across stories, from the fits its training sets share.

:func:`solve_targets` takes a :class:`~.stories.StoryPlan`, one
:class:`~.stories.SharedFit` per training set and a reader of one subject's BOLD of one
story restricted to a chunk of targets. Subject by subject, it z-scores each story's
BOLD over its kept rows, chooses alpha per target by the shared inner CV (the ridge
decompositions come from the fit: nothing is factorised here; banded ridge, whose
decompositions depend on the alpha ratios, runs its own search), refits, predicts the
held-out stories and scores them: r per story and r pooled over the concatenated
held-out stories. Every target column is solved on its own, so a chunk's results do not
depend on the other chunks (:func:`encode_stories` is the whole problem as one chunk).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from featstore._docs import fill_doc
from featstore.errors import InputError
from featstore.evaluate.encoding.alpha_edges import edge_masks
from featstore.evaluate.encoding.backend import NUMPY, Backend
from featstore.evaluate.encoding.banded import banded_ridge_cv
from featstore.evaluate.encoding.ridge import RidgeFactor, predict_with_alphas, ridge_cv
from featstore.evaluate.encoding.scoring import pearson_by_column
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.encoding.stories import (
    SharedFit,
    StoryPlan,
    plan_story_split,
    prepare_fit,
    zscore_story,
)

#: ``read(story, subject_index)`` → that subject's BOLD of that story, (n_tr, n_targets).
BoldReader = Callable[[str, int], np.ndarray]


@dataclass(frozen=True)
class StoryScores:
    """Scores of a chunk of targets (float32, NaN where a subject is not scored).

    Attributes
    ----------
    r : array of shape (n_subjects, n_targets)
        Pearson r over the concatenated held-out stories.
    alpha : array of shape (n_subjects, n_targets)
        Chosen alpha (the median over outer folds for ``cv-stories``); NaN for banded
        ridge (see ``band_alpha``).
    r_story : array of shape (n_test_stories, n_subjects, n_targets)
        r within each held-out story.
    n_constant : int
        (subject, story, target) BOLD series constant over a story's kept rows.
    edge_counts : int64 array of shape (4,)
        Fits (subject × outer fold × target) whose CV alpha is the smallest of the grid,
        fits counted there (the target varies in training), fits at the largest alpha
        among the predictable ones (CV R² > 0), predictable fits: the counts of
        :func:`~featstore.evaluate.encoding.alpha_edges.edge_alpha_warnings`. Zeros with a
        fixed alpha. For banded ridge, a fit's alpha is the smallest of its band
        alphas (its overall regularisation), as in the one-story grid.
    band_alpha : array of shape (n_subjects, n_targets, n_spaces), optional
        Banded ridge only: the alpha of each feature space (the median over outer folds
        for ``cv-stories``).
    """

    r: np.ndarray
    alpha: np.ndarray
    r_story: np.ndarray
    n_constant: int
    edge_counts: np.ndarray
    band_alpha: np.ndarray | None = None


def _check_finite(values: np.ndarray, story: str, subject: str) -> None:
    bad = ~np.isfinite(values).all(axis=0)
    if bad.any():
        first = np.flatnonzero(bad)[:5].tolist()
        raise InputError(
            f"story {story!r} subject {subject!r}: BOLD has NaN/inf in {int(bad.sum())} "
            f"target(s) (first: {first}); drop or fill them before evaluating"
        )


def _edge_counts(
    alpha: np.ndarray, cv_score: np.ndarray, Y_train: np.ndarray, alphas: Sequence[float]
) -> np.ndarray:
    """(at the smallest alpha, fits, at the largest, predictable fits) of one fold's targets.

    The rule of the one-story grid: a target constant over the training rows is not a
    fit; at the largest alpha only targets the features predict (CV R² > 0) count, since
    shrinking to zero is the right answer for the others.
    """
    valid = np.any(Y_train != 0, axis=0)  # z-scored: a constant target is all zeros
    at_low, at_high, predictable = edge_masks(alpha, valid, cv_score, alphas)
    return np.array([at_low.sum(), valid.sum(), at_high.sum(), predictable.sum()], np.int64)


@dataclass(frozen=True)
class _FoldFit:
    """One subject's fold: predictions per story, alpha per target, the band alphas
    (banded ridge) and the edge counts (see :func:`_edge_counts`)."""

    predictions: dict[str, np.ndarray]
    alpha: np.ndarray
    band_alpha: np.ndarray | None
    edges: np.ndarray


def _on_backend(fit: SharedFit, backend: Backend) -> SharedFit:
    """``fit`` with its decompositions moved to ``backend`` (computed once, on the CPU)."""
    if backend.is_numpy:
        return fit

    def moved(factor: RidgeFactor) -> RidgeFactor:
        return RidgeFactor(
            *(backend.asarray(a, "float64") for a in (factor.eigvals, factor.basis, factor.right)),
            backend,
        )

    return dataclasses.replace(
        fit, fold_factors=[moved(f) for f in fit.fold_factors], factor=moved(fit.factor)
    )


def _fold_predictions(
    fit: SharedFit,
    Y_train: np.ndarray,
    stories: Sequence[str],
    settings: EncodingSettings,
    backend: Backend,
) -> _FoldFit:
    """Fit one subject's fold (ridge or banded ridge) and predict ``stories``."""
    X_eval = np.concatenate([fit.X_eval[s] for s in stories])
    band = None
    edges = np.zeros(4, dtype=np.int64)
    if not settings.cross_validated:
        alpha = np.full(Y_train.shape[1], settings.alpha)
        predictions = predict_with_alphas(fit.factor, X_eval, Y_train, alpha, settings.dtype)
        if fit.banded:
            band, alpha = np.repeat(alpha[:, None], len(fit.widths), axis=1), alpha * np.nan
    elif fit.banded:
        result = banded_ridge_cv(
            fit.spaces(fit.X_train),
            Y_train,
            settings.alphas,
            fit.folds,
            X_tests=fit.spaces(X_eval),
            dtype=settings.dtype,
            backend=backend,
        )
        predictions, band = result.predictions, result.band_alphas
        alpha = np.full(Y_train.shape[1], np.nan)
        edges = _edge_counts(band.min(axis=1), result.cv_score, Y_train, settings.alphas)
    else:
        result = ridge_cv(
            fit.X_train,
            Y_train,
            settings.alphas,
            fit.folds,
            X_test=X_eval,
            dtype=settings.dtype,
            factors=fit.fold_factors,
            refit_factor=fit.factor,
            backend=backend,
        )
        predictions, alpha = result.predictions, result.alpha
        edges = _edge_counts(alpha, result.cv_score, Y_train, settings.alphas)
    bounds = np.cumsum([0, *(len(fit.X_eval[s]) for s in stories)])
    split = {s: predictions[a:b] for s, a, b in zip(stories, bounds[:-1], bounds[1:], strict=True)}
    return _FoldFit(split, alpha, band, edges)


def solve_targets(
    plan: StoryPlan,
    fits: Mapping[tuple[str, ...], SharedFit],
    read: BoldReader,
    n_targets: int,
    settings: EncodingSettings,
    subject_names: Sequence[str] | None = None,
    backend: Backend = NUMPY,
) -> StoryScores:
    """Scores of every subject for one chunk of ``n_targets`` targets.

    Parameters
    ----------
    plan : StoryPlan
    fits : mapping of training set to SharedFit
        One per ``plan.training_sets``.
    read : callable
        ``read(story, subject_index)`` → (n_tr, n_targets) BOLD of the chunk.
    n_targets : int
    settings : EncodingSettings
    subject_names : sequence of str, optional
        Named in errors (default: the indices).
    backend : Backend
        Where the products with the BOLD run (numpy, or torch on a CPU or GPU); the
        fits' decompositions are moved there once per call.

    Returns
    -------
    StoryScores
    """
    n_subjects = plan.has_story.shape[0]
    fits = {train: _on_backend(fit, backend) for train, fit in fits.items()}
    names = list(subject_names) if subject_names is not None else list(map(str, range(n_subjects)))
    tests = plan.test_stories
    r = np.full((n_subjects, n_targets), np.nan, dtype=np.float32)
    alpha = np.full((n_subjects, n_targets), np.nan, dtype=np.float32)
    r_story = np.full((len(tests), n_subjects, n_targets), np.nan, dtype=np.float32)
    n_constant, edge_counts = 0, np.zeros(4, dtype=np.int64)
    n_bands = len(next(iter(fits.values())).widths) if fits else 1
    band_alpha = (
        np.full((n_subjects, n_targets, n_bands), np.nan, dtype=np.float32) if n_bands > 1 else None
    )
    for subject in range(n_subjects):
        folds = [fold for fold in plan.folds if subject in fold.subjects]
        if not folds:
            continue
        needed = dict.fromkeys(s for fold in folds for s in (*fold.train, *fold.test))
        zscored = {}
        for story in needed:
            if not plan.has_story[subject, plan.stories.index(story)]:
                continue
            values = np.asarray(read(story, subject))
            _check_finite(values, story, names[subject])
            zscored[story], constant = zscore_story(values, settings.resolved_trim, story)
            n_constant += int(constant.sum())
        predicted, fold_fits = {}, []
        for fold in folds:
            scored = [s for s in fold.test if s in zscored]
            Y_train = np.concatenate([zscored[s] for s in fold.train])
            fold_fit = _fold_predictions(fits[fold.train], Y_train, scored, settings, backend)
            edge_counts += fold_fit.edges
            predicted.update(fold_fit.predictions)
            fold_fits.append(fold_fit)
        alpha[subject] = np.median([f.alpha for f in fold_fits], axis=0)
        if band_alpha is not None:
            band_alpha[subject] = np.median([f.band_alpha for f in fold_fits], axis=0)
        order = [s for s in tests if s in predicted]
        for story in order:
            r_story[tests.index(story), subject] = pearson_by_column(
                zscored[story], predicted[story]
            )
        r[subject] = pearson_by_column(
            np.concatenate([zscored[s] for s in order]),
            np.concatenate([predicted[s] for s in order]),
        )
    return StoryScores(
        r=r,
        alpha=alpha,
        r_story=r_story,
        n_constant=n_constant,
        edge_counts=edge_counts,
        band_alpha=band_alpha,
    )


@fill_doc
def encode_stories(
    features: Mapping[str, Sequence[np.ndarray]],
    bold: Mapping[str, np.ndarray],
    settings: EncodingSettings,
    test_stories: Sequence[str] | None = None,
    backend: Backend = NUMPY,
) -> tuple[StoryPlan, StoryScores]:
    """Fit and score an encoding model across stories, all targets at once (in memory).

    Parameters
    ----------
    features : mapping of story to a sequence of (n_tr, n_features_k) arrays
    bold : mapping of story to an array of shape (n_subjects, n_tr, n_targets)
        NaN everywhere for a subject who lacks the story.
    settings : EncodingSettings
    test_stories : sequence of str, optional
        Held-out stories; ``None``: leave each story out in turn (``cv-stories``).
    backend : Backend
        Where the products with the BOLD run (``get_backend("torch", "cuda")``, …).

    Returns
    -------
    plan : StoryPlan
    scores : StoryScores

    Examples
    --------
    %(example_story_features)s
    >>> from featstore.evaluate.encoding.story_solver import encode_stories
    >>> bold = {s: np.stack([np.roll(x[0][:, :2], 1, axis=0)] * 2) + 0.5 *
    ...         rng.standard_normal((2, len(x[0]), 2)) for s, x in features.items()}
    >>> plan, scores = encode_stories(features, bold, EncodingSettings(pca=0, delays=(1,)), ["c"])
    >>> bool(scores.r.min() > 0.7), scores.r_story.shape
    (True, (1, 2, 2))
    """
    stories = list(features)
    first = np.asarray(next(iter(bold.values())))
    has_story = np.stack([~np.isnan(np.asarray(bold[s])).all(axis=(1, 2)) for s in stories], axis=1)
    plan = plan_story_split(has_story, stories, test_stories)
    fits = {
        train: prepare_fit(features, train, plan.evaluated(train), settings)
        for train in plan.training_sets
    }
    scores = solve_targets(
        plan,
        fits,
        lambda story, subject: bold[story][subject],
        first.shape[2],
        settings,
        backend=backend,
    )
    return plan, scores
