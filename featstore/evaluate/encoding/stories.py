"""Encoding across stories: splits by story and the designs one training set shares.

A training set (the stories a subject trains on in one split) fixes everything that
does not depend on the BOLD: the feature z-scoring and PCA (fitted on the trimmed rows
of the training stories only), the FIR delays (built on each story's own timeline, so
they are zero-padded at every story start and no row ever holds another story's
stimulus), the ``trim`` rows dropped at both edges of every story, the inner CV folds
(leave one training story out when there are two or more, contiguous folds of the one
story otherwise) and the ridge decompositions of each fold and of all training rows.
:func:`prepare_fit` builds that once as a :class:`SharedFit`; every subject, target chunk
and alpha that trains on those stories reuses it (:mod:`~.story_solver`).

:func:`plan_story_split` says which subjects train on which stories and are scored on
which: subjects whose story sets differ fall into groups, one per training set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from featstore._docs import fill_doc
from featstore.errors import InputError
from featstore.evaluate.encoding.delays import make_delays
from featstore.evaluate.encoding.design import FeatureTransform, split_components
from featstore.evaluate.encoding.preprocess import constant_columns, constant_set_reason
from featstore.evaluate.encoding.ridge import RidgeFactor, factorize
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.encoding.split import story_folds

#: The two ways of splitting a store of stories.
SPLITS = ("test-stories", "cv-stories")


@dataclass(frozen=True)
class StoryFold:
    """Subjects that train on the same stories and are scored on some others.

    Attributes
    ----------
    train : tuple of str
        Training stories, in the plan's story order.
    test : tuple of str
        Stories predicted (each subject is scored on those it has).
    subjects : tuple of int
        Indices of the subjects of this group.
    """

    train: tuple[str, ...]
    test: tuple[str, ...]
    subjects: tuple[int, ...]


@dataclass(frozen=True)
class StoryPlan:
    """Who trains on what in a split across stories.

    Attributes
    ----------
    split : {"test-stories", "cv-stories"}
    stories : tuple of str
        Every story used.
    test_stories : tuple of str
        Stories scored (all stories for ``cv-stories``).
    folds : tuple of StoryFold
        One per (outer fold, training set); each training set is fitted once.
    has_story : bool array of shape (n_subjects, n_stories)
        Whether each subject has each story (the order of ``stories``).
    left_out : dict of str to list of int
        Per test story, the subjects not scored on it (they lack it, or lack any other
        story to train on).
    """

    split: str
    stories: tuple[str, ...]
    test_stories: tuple[str, ...]
    folds: tuple[StoryFold, ...]
    has_story: np.ndarray = field(repr=False)
    left_out: dict[str, list[int]]

    @property
    def training_sets(self) -> list[tuple[str, ...]]:
        """The distinct training sets, each needing one :class:`SharedFit`."""
        return list(dict.fromkeys(fold.train for fold in self.folds))

    def evaluated(self, train: tuple[str, ...]) -> list[str]:
        """The stories predicted from training set ``train``."""
        return list(dict.fromkeys(s for f in self.folds if f.train == train for s in f.test))


def plan_story_split(
    has_story: np.ndarray, stories: Sequence[str], test_stories: Sequence[str] | None
) -> StoryPlan:
    """Group subjects by the stories they train on, for a test-story or a CV split.

    Parameters
    ----------
    has_story : bool array of shape (n_subjects, n_stories)
        Which subject has which story.
    stories : sequence of str
        Story names, in the column order of ``has_story``.
    test_stories : sequence of str or None
        Held-out stories (train on the others); ``None``: leave each story out in turn
        (``cv-stories``), every story predicted once.

    Returns
    -------
    StoryPlan

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.evaluate.encoding.stories import plan_story_split
    >>> has = np.array([[1, 1, 1], [1, 0, 1]], bool)  # subject 1 lacks story "b"
    >>> plan = plan_story_split(has, ["a", "b", "c"], ["c"])
    >>> [(f.train, f.subjects) for f in plan.folds]
    [(('a', 'b'), (0,)), (('a',), (1,))]
    """
    has_story = np.asarray(has_story, dtype=bool)
    stories = tuple(str(s) for s in stories)
    if has_story.shape[1] != len(stories) or len(set(stories)) != len(stories):
        raise InputError(f"stories: expected {has_story.shape[1]} distinct names, got {stories}")
    split = "cv-stories" if test_stories is None else "test-stories"
    tests = stories if test_stories is None else tuple(dict.fromkeys(map(str, test_stories)))
    for story in tests:
        if story not in stories:
            raise InputError(
                f"test story {story!r} is not among the stories ({', '.join(stories)})"
            )
        if not has_story[:, stories.index(story)].any():
            raise InputError(f"test story {story!r}: no subject has it; nothing to test on")
    outer = [tests] if split == "test-stories" else [(story,) for story in stories]
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[int]] = {}
    left_out: dict[str, list[int]] = {story: [] for story in tests}
    for held_out in outer:
        for subject, row in enumerate(has_story):
            own = [s for s, has in zip(stories, row, strict=True) if has]
            train = tuple(s for s in own if s not in held_out)
            scored = tuple(s for s in held_out if s in own)
            for story in held_out:
                if story not in scored or not train:
                    left_out[story].append(subject)
            if scored and train:
                groups.setdefault((train, held_out), []).append(subject)
    folds = tuple(
        StoryFold(train, test, tuple(subjects)) for (train, test), subjects in groups.items()
    )
    if not folds:
        raise InputError(
            f"no subject has a story besides {', '.join(tests) if split == 'test-stories' else 'the held-out one'} "
            "to train on; keep at least one of each subject's stories out of `test_stories`"
        )
    return StoryPlan(split, stories, tests, folds, has_story, left_out)


def story_rows(n_tr: int, trim: int, story: str) -> np.ndarray:
    """The rows of a story kept after dropping ``trim`` TRs at each edge."""
    if n_tr - 2 * trim < 2:
        raise InputError(
            f"story {story!r} has {n_tr} TRs; trim={trim} at each edge leaves "
            f"{max(n_tr - 2 * trim, 0)}, expected at least 2"
        )
    return np.arange(trim, n_tr - trim, dtype=np.int64)


def zscore_story(
    bold: np.ndarray, trim: int, story: str = "story"
) -> tuple[np.ndarray, np.ndarray]:
    """One subject's BOLD of one story, trimmed and z-scored over the story's kept rows.

    Parameters
    ----------
    bold : array of shape (n_tr, n_targets)
    trim : int
        TRs dropped at each edge before z-scoring.
    story : str
        Named in errors.

    Returns
    -------
    zscored : float32 array of shape (n_tr - 2 * trim, n_targets)
        A constant target becomes zeros.
    constant : bool array of shape (n_targets,)
    """
    kept = np.asarray(bold[story_rows(len(bold), trim, story)], dtype=np.float64)
    mean, std = kept.mean(axis=0), kept.std(axis=0)
    constant = constant_columns(mean, std)
    return ((kept - mean) / np.where(constant, 1.0, std)).astype(np.float32), constant


def story_designs(
    features: Mapping[str, Sequence[np.ndarray]],
    train: Sequence[str],
    settings: EncodingSettings,
    n_components: int | None = None,
) -> dict[str, np.ndarray]:
    """The trimmed design of every story, z-scoring and PCA fitted on ``train`` only.

    Parameters
    ----------
    features : mapping of story to a sequence of (n_tr, n_features_k) arrays
        Each story's feature spaces (one, or two for a concatenation fusion).
    train : sequence of str
        Training stories: only their kept rows fit the z-scoring and the PCA.
    settings : EncodingSettings
        ``pca``, ``delays`` and ``resolved_trim`` are used.
    n_components : int, optional
        PCA components (default ``settings.pca``).

    Returns
    -------
    dict of story to float64 array of shape (n_tr - 2 * trim, n_kept * n_delays)
        FIR delays built on each story's own timeline, then trimmed.
    """
    trim = settings.resolved_trim
    rows = {story: story_rows(len(spaces[0]), trim, story) for story, spaces in features.items()}
    n_spaces = len(next(iter(features.values())))
    fit_rows = [
        np.concatenate([np.asarray(features[s][k])[rows[s]] for s in train])
        for k in range(n_spaces)
    ]
    n_components = settings.pca if n_components is None else n_components
    transform = FeatureTransform.fit(fit_rows, n_components)
    return {
        story: make_delays(transform.transform(spaces), settings.delays)[rows[story]]
        for story, spaces in features.items()
    }


def inner_folds(
    lengths: Sequence[int], settings: EncodingSettings
) -> list[tuple[np.ndarray, np.ndarray]]:
    """CV folds over the stacked rows of the training stories (of ``lengths`` rows each).

    Two or more stories: leave one story out (no gap is needed: delays never cross a
    story start). One story: ``settings.cv`` contiguous folds with ``resolved_gap``.
    """
    return story_folds(lengths, settings.cv, settings.resolved_gap)


@dataclass(frozen=True)
class SharedFit:
    """Everything a training set fixes before the BOLD is seen (see the module docstring).

    Attributes
    ----------
    train : tuple of str
        The training stories.
    lengths : tuple of int
        Kept rows of each training story (their rows are stacked in this order).
    X_train : float64 array of shape (sum(lengths), n_features)
    X_eval : dict of story to float64 array
        Designs of the stories predicted with this fit.
    folds : list of (train, validation) row arrays into ``X_train``
    fold_factors : list of RidgeFactor
        ``factorize(X_train[train])`` per fold (empty with a fixed alpha, and for banded
        ridge, whose decompositions depend on the alpha ratios).
    factor : RidgeFactor
        ``factorize(X_train)``: the refit on every training row.
    widths : tuple of int
        Columns of each feature space in the designs: one entry, or one per space for
        banded ridge (each space z-scored, reduced by PCA and delayed on its own).
    """

    train: tuple[str, ...]
    lengths: tuple[int, ...]
    X_train: np.ndarray = field(repr=False)
    X_eval: dict[str, np.ndarray] = field(repr=False)
    folds: list[tuple[np.ndarray, np.ndarray]] = field(repr=False)
    fold_factors: list[RidgeFactor] = field(repr=False)
    factor: RidgeFactor = field(repr=False)
    widths: tuple[int, ...] = ()

    @property
    def banded(self) -> bool:
        """Whether each feature space gets its own alpha (banded ridge)."""
        return len(self.widths) > 1

    def spaces(self, design: np.ndarray) -> list[np.ndarray]:
        """``design`` (``X_train`` or an ``X_eval``) split into its feature spaces."""
        return np.split(design, np.cumsum(self.widths)[:-1], axis=1)


def constant_feature_reason(
    features: Mapping[str, Sequence[np.ndarray]], names: Sequence[str]
) -> str | None:
    """Why a config cannot be fitted: a feature set constant over every story's TRs.

    The rule of the one-story evaluator (:func:`~featstore.evaluate.encoding.preprocess.constant_set_reason`) over all the
    stories: such a set (an all-zero layer, a silent recording's envelope) gives the ridge
    nothing to learn from, so its r would be NaN and its alphas meaningless.

    Parameters
    ----------
    features : mapping of story to a sequence of (n_tr, n_features_k) arrays
    names : sequence of str
        Name of each feature set (for the message).

    Returns
    -------
    str or None

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.evaluate.encoding.stories import constant_feature_reason
    >>> flat = {"a": [np.ones((5, 2))], "b": [np.ones((7, 2))]}
    >>> constant_feature_reason(flat, ["envelope/tr1"])
    'envelope/tr1 is constant over the 12 TRs of 2 stories (zero variance in every dim)'
    """
    spaces = [np.concatenate([parts[k] for parts in features.values()]) for k in range(len(names))]
    over = f"the {len(spaces[0])} TRs of {len(features)} stories"
    return constant_set_reason(spaces, names, over)


def check_banded_pca(settings: EncodingSettings, n_spaces: int) -> None:
    """Refuse a banded fit whose ``pca`` leaves a feature space without a component."""
    if settings.method == "banded" and n_spaces > 1 and 0 < settings.pca < n_spaces:
        raise InputError(
            f"pca={settings.pca} with method='banded': expected at least one component "
            f"per feature space ({n_spaces})"
        )


def _space_designs(
    features: Mapping[str, Sequence[np.ndarray]], train: Sequence[str], settings: EncodingSettings
) -> tuple[dict[str, np.ndarray], tuple[int, ...]]:
    """Each story's design and the widths of its spaces: one joint design, or for banded
    ridge one per space (PCA components split as in the one-story grid), side by side."""
    n_spaces = len(next(iter(features.values())))
    if settings.method != "banded" or n_spaces < 2:
        designs = story_designs(features, train, settings)
        return designs, (next(iter(designs.values())).shape[1],)
    check_banded_pca(settings, n_spaces)
    per_space = [
        story_designs({s: [spaces[k]] for s, spaces in features.items()}, train, settings, n)
        for k, n in enumerate(split_components(settings.pca, n_spaces))
    ]
    designs = {s: np.concatenate([d[s] for d in per_space], axis=1) for s in features}
    return designs, tuple(next(iter(d.values())).shape[1] for d in per_space)


@fill_doc
def prepare_fit(
    features: Mapping[str, Sequence[np.ndarray]],
    train: Sequence[str],
    evaluate: Sequence[str],
    settings: EncodingSettings,
) -> SharedFit:
    """Designs, inner folds and ridge decompositions of one training set.

    Parameters
    ----------
    features : mapping of story to a sequence of (n_tr, n_features_k) arrays
        At least the stories of ``train`` and ``evaluate``.
    train : sequence of str
        Training stories.
    evaluate : sequence of str
        Stories to predict.
    settings : EncodingSettings

    Returns
    -------
    SharedFit

    Examples
    --------
    %(example_story_features)s
    >>> from featstore.evaluate.encoding.stories import prepare_fit
    >>> fit = prepare_fit(features, ["a", "b"], ["c"], EncodingSettings(pca=4, delays=(1, 2)))
    >>> fit.lengths, fit.X_train.shape, fit.X_eval["c"].shape, len(fit.folds)
    ((86, 76), (162, 8), (66, 8), 2)
    """
    train = tuple(train)
    needed = {*train, *evaluate}
    designs, widths = _space_designs(
        {s: features[s] for s in features if s in needed}, train, settings
    )
    lengths = tuple(len(designs[s]) for s in train)
    X_train = np.concatenate([designs[s] for s in train])
    folds = inner_folds(lengths, settings) if settings.cross_validated else []
    shared = len(widths) == 1  # banded ridge factorises per alpha ratio, per target chunk
    fold_factors = [factorize(X_train[rows]) for rows, _ in folds] if shared else []
    return SharedFit(
        train=train,
        lengths=lengths,
        X_train=X_train,
        X_eval={s: designs[s] for s in evaluate},
        folds=folds,
        fold_factors=fold_factors,
        factor=factorize(X_train),
        widths=widths,
    )
