"""Temporal response functions across stories: train on some stories, predict others.

The leakage rules of the fMRI evaluator across stories (:mod:`~.stories`), on the EEG
sample grid: the lags are made on each story's own timeline (zero-padded at every story
start and end, so no lagged row reads another story's samples); the predictors are
z-scored with the statistics of the training stories' samples only; each story's
recording is z-scored over that story (as each story's BOLD is); alpha per target by
leave-one-story-out CV when there are two or more training stories, else by contiguous
folds of the one story with the longest lag left out around each block
(:func:`~featstore.evaluate.encoding.split.story_folds`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from featstore.errors import InputError
from featstore.evaluate.encoding.delays import make_delays
from featstore.evaluate.encoding.preprocess import constant_columns, fit_zscore
from featstore.evaluate.encoding.ridge import ridge_cv, ridge_weights
from featstore.evaluate.encoding.scoring import pearson_by_column
from featstore.evaluate.encoding.split import story_folds


def zscore_story_samples(values: np.ndarray) -> np.ndarray:
    """Each column z-scored over the rows of one story (a constant column becomes zeros).

    Parameters
    ----------
    values : array of shape (n_times, n_targets)

    Returns
    -------
    float64 array of shape (n_times, n_targets)
    """
    values = np.asarray(values, dtype=np.float64)
    mean, std = values.mean(axis=0), values.std(axis=0)
    return (values - mean) / np.where(constant_columns(mean, std), 1.0, std)


@dataclass(frozen=True)
class StoryTRFResult:
    """Outcome of :func:`fit_trf_stories`, one value per target column.

    Attributes
    ----------
    predictions : dict of str to float64 array of shape (n_times_story, n_targets)
        Each test story predicted (in units of its z-scored recording).
    alpha : float64 array of shape (n_targets,)
    cv_score : float64 array of shape (n_targets,)
        Mean validation R² of the chosen alpha.
    weights : float64 array of shape (n_lags, n_features, n_targets)
        Refitted on every training sample with each column's alpha.
    """

    predictions: dict[str, np.ndarray]
    alpha: np.ndarray
    cv_score: np.ndarray
    weights: np.ndarray


def fit_trf_stories(
    designs: Mapping[str, np.ndarray],
    targets: Mapping[str, np.ndarray],
    lags: Sequence[int],
    alphas: Sequence[float],
    *,
    train: Sequence[str],
    test: Sequence[str],
    n_folds: int,
) -> StoryTRFResult:
    """Fit a TRF on the training stories (alpha by CV over them) and predict the test ones.

    Parameters
    ----------
    designs : mapping of story to array of shape (n_times_story, n_features)
        Each story's predictors on its own sample grid (every story of ``train`` and
        ``test``; any reduction such as PCA already fitted on the training stories only).
    targets : mapping of story to array of shape (n_times_story, n_targets)
        The recordings of the training stories (the test ones are not read).
    lags : sequence of int
        Lags in samples (a positive lag looks at the past stimulus).
    alphas : sequence of float, increasing
    train, test : sequence of str
        Training and test stories (disjoint).
    n_folds : int
        Contiguous folds when there is one training story (ignored otherwise).

    Returns
    -------
    StoryTRFResult

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.evaluate.encoding.trf_stories import fit_trf_stories
    >>> rng = np.random.default_rng(0)
    >>> X = {s: rng.standard_normal((n, 2)) for s, n in (("a", 90), ("b", 80), ("c", 70))}
    >>> Y = {s: np.roll(x, 2, axis=0) @ [[1.0], [-1.0]] for s, x in X.items()}
    >>> fit = fit_trf_stories(X, Y, [0, 1, 2], [0.1, 10.0], train=["a", "b"], test=["c"], n_folds=3)
    >>> fit.predictions["c"].shape, fit.weights.shape, fit.alpha.tolist()
    ((70, 1), (3, 2, 1), [0.1])
    """
    lags = [int(lag) for lag in lags]
    train, test = [str(s) for s in train], [str(s) for s in test]
    if not train or set(train) & set(test):
        raise InputError(f"train stories {train} and test stories {test}: expected disjoint, ≥ 1")
    n_train = sum(len(designs[s]) for s in train)
    if n_train <= len(lags):
        raise InputError(
            f"{n_train} train samples for {len(lags)} lags; expected more samples "
            "(longer recordings or fewer lags)"
        )
    mean, scale = fit_zscore(np.concatenate([np.asarray(designs[s]) for s in train]))

    def delayed(story: str) -> np.ndarray:
        return make_delays((np.asarray(designs[story], dtype=np.float64) - mean) / scale, lags)

    X_train = np.concatenate([delayed(s) for s in train])
    Y_train = np.concatenate([zscore_story_samples(targets[s]) for s in train])
    gap = max(abs(lag) for lag in lags)
    folds = story_folds([len(designs[s]) for s in train], n_folds, gap)
    X_test = [delayed(s) for s in test]
    result = ridge_cv(X_train, Y_train, alphas, folds, X_test=np.concatenate(X_test))
    bounds = np.cumsum([0, *(len(x) for x in X_test)])
    predictions = {s: result.predictions[bounds[k] : bounds[k + 1]] for k, s in enumerate(test)}
    weights = ridge_weights(X_train, Y_train, result.alpha)
    n_features = np.shape(designs[train[0]])[1]
    return StoryTRFResult(
        predictions=predictions,
        alpha=result.alpha,
        cv_score=result.cv_score,
        weights=weights.reshape(len(lags), n_features, Y_train.shape[1]),
    )


def pooled_pearson(
    recordings: Sequence[np.ndarray], predictions: Sequence[np.ndarray]
) -> np.ndarray:
    """Pearson r per column over several stories' samples concatenated.

    Each story's recording is z-scored over that story first (so a story's offset or
    amplitude does not count as prediction).

    Parameters
    ----------
    recordings, predictions : sequences of arrays of shape (n_times_story, n_targets)
        One pair per story, in the same order.

    Returns
    -------
    float64 array of shape (n_targets,)

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.evaluate.encoding.trf_stories import pooled_pearson
    >>> y = [np.array([[1.0], [2.0], [3.0]]), np.array([[10.0], [30.0]])]
    >>> p = [np.array([[-1.0], [0.0], [1.0]]), np.array([[-1.0], [1.0]])]
    >>> pooled_pearson(y, p).round(3)  # the stories' offsets and scales do not count
    array([0.995])
    """
    if len(recordings) != len(predictions) or not recordings:
        raise InputError(
            f"{len(recordings)} recordings and {len(predictions)} predictions; "
            "expected one of each per story, at least one"
        )
    observed = np.concatenate([zscore_story_samples(y) for y in recordings])
    return pearson_by_column(observed, np.concatenate([np.asarray(p) for p in predictions]))
