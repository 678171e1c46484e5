"""Encoding across stories: split plans, story-wise designs and the chunk solver, each
against an obvious reference (sklearn Ridge per target, numpy closed forms)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from featstore.errors import InputError
from featstore.evaluate.encoding import EncodingSettings
from featstore.evaluate.encoding.delays import make_delays
from featstore.evaluate.encoding.design import FeatureTransform
from featstore.evaluate.encoding.scoring import pearson_by_column
from featstore.evaluate.encoding.stories import (
    inner_folds,
    plan_story_split,
    prepare_fit,
    story_designs,
    zscore_story,
)
from featstore.evaluate.encoding.story_solver import encode_stories, solve_targets

LENGTHS = {"a": 53, "b": 47, "c": 41}
N_SUBJECTS, N_TARGETS, N_DIM = 3, 13, 9
SETTINGS = EncodingSettings(pca=5, delays=(1, 2), alphas=(0.1, 10.0, 1000.0), cv=3)


def _problem(seed: int = 0, missing: tuple[int, str] | None = (2, "b")):
    """Features of 3 stories and BOLD of 3 subjects (subject 2 lacks story b); targets
    0-5 follow the features 1 TR later, the others are noise."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((N_DIM, 6))
    features, bold = {}, {}
    for story, n_tr in LENGTHS.items():
        x = rng.standard_normal((n_tr, N_DIM))
        signal = np.zeros((n_tr, 6))
        signal[1:] = x[:-1] @ mixing
        values = rng.standard_normal((N_SUBJECTS, n_tr, N_TARGETS)) + 5.0
        values[:, :, :6] += signal
        features[story] = [x]
        bold[story] = values
    if missing is not None:
        bold[missing[1]][missing[0]] = np.nan
    return features, bold


def test_plan_groups_subjects_by_training_stories():
    has = np.array([[1, 1, 1], [1, 0, 1], [0, 1, 0]], dtype=bool)
    plan = plan_story_split(has, ["a", "b", "c"], ["c"])
    assert [(f.train, f.test, f.subjects) for f in plan.folds] == [
        (("a", "b"), ("c",), (0,)),
        (("a",), ("c",), (1,)),
    ]
    assert plan.left_out == {"c": [2]}
    cv = plan_story_split(has, ["a", "b", "c"], None)
    assert cv.test_stories == ("a", "b", "c")
    assert cv.training_sets == [("b", "c"), ("c",), ("a", "c"), ("a", "b"), ("a",)]
    # subject 2 has only story b: nothing to train on when b is held out
    assert cv.left_out == {"a": [2], "b": [1, 2], "c": [2]}


@pytest.mark.parametrize(
    ("test", "message"),
    [(["z"], "not among"), (["b"], "no subject has it"), (["a", "c"], "to train on")],
)
def test_plan_errors(test, message):
    has = np.array([[1, 0, 1], [1, 0, 1]], dtype=bool)
    with pytest.raises(InputError, match=message):
        plan_story_split(has, ["a", "b", "c"], test)


def test_designs_restart_delays_at_every_story_start():
    """No row of a story's design holds another story's stimulus: the delays restart
    (zero-padded) at each story, and the transform is fitted on training rows only."""
    features, _ = _problem()
    settings = EncodingSettings(pca=4, delays=(1, 2, 3), trim=0)
    designs = story_designs(features, ["a", "b"], settings)
    transform = FeatureTransform.fit(
        [np.concatenate([features["a"][0], features["b"][0]])], n_components=4
    )
    for story, spaces in features.items():
        expected = make_delays(transform.transform(spaces), settings.delays)
        np.testing.assert_allclose(designs[story], expected, atol=1e-12)
        for k, delay in enumerate(settings.delays):
            assert not designs[story][:delay, k * 4 : (k + 1) * 4].any()
    # the test story's features do not enter the training rows' design
    changed = dict(features, c=[features["c"][0] * 3.0 + 1.0])
    again = story_designs(changed, ["a", "b"], settings)
    np.testing.assert_array_equal(again["a"], designs["a"])


def test_designs_trim_each_story():
    features, _ = _problem()
    designs = story_designs(features, ["a"], EncodingSettings(pca=3, delays=(1, 2), trim=2))
    # fitted on the kept rows of the training story; delays on the whole story, then trimmed
    transform = FeatureTransform.fit([features["a"][0][2 : LENGTHS["a"] - 2]], n_components=3)
    for story, n_tr in LENGTHS.items():
        full = make_delays(transform.transform(features[story]), (1, 2))
        np.testing.assert_allclose(designs[story], full[2 : n_tr - 2], atol=1e-12)


def test_inner_folds_leave_one_story_out_or_contiguous():
    folds = inner_folds([4, 3, 5], SETTINGS)
    assert [val.tolist() for _, val in folds] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9, 10, 11]]
    assert folds[1][0].tolist() == [0, 1, 2, 3, 7, 8, 9, 10, 11]
    single = inner_folds([12], EncodingSettings(cv=3, gap=1))
    assert [val.tolist() for _, val in single] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert single[0][0].tolist() == [5, 6, 7, 8, 9, 10, 11]


def test_zscore_story_per_story():
    bold = np.random.default_rng(3).standard_normal((20, 4)) * 3 + 7
    bold[:, 2] = 1.5
    z, constant = zscore_story(bold, trim=2)
    kept = bold[2:18][:, [0, 1, 3]]
    np.testing.assert_allclose(z[:, [0, 1, 3]], (kept - kept.mean(0)) / kept.std(0), rtol=1e-5)
    assert constant.tolist() == [False, False, True, False] and not z[:, 2].any()


def _sklearn_reference(features, bold, subject, train, test, settings):
    """Alpha by leave-one-story-out CV with sklearn Ridge per target, then refit and r."""
    designs = story_designs(features, train, settings)
    z = {
        s: zscore_story(bold[s][subject], settings.resolved_trim)[0].astype(np.float64)
        for s in (*train, *test)
    }
    alphas = np.empty(N_TARGETS)
    for target in range(N_TARGETS):
        scores = []
        for alpha in settings.alphas:
            fold_r2 = []
            for held in train:
                rest = [s for s in train if s != held]
                model = Ridge(alpha=alpha, fit_intercept=False).fit(
                    np.concatenate([designs[s] for s in rest]),
                    np.concatenate([z[s][:, target] for s in rest]),
                )
                y = z[held][:, target]
                sse = ((model.predict(designs[held]) - y) ** 2).sum()
                fold_r2.append(1 - sse / ((y - y.mean()) ** 2).sum())
            scores.append(np.mean(fold_r2))
        alphas[target] = settings.alphas[len(scores) - 1 - int(np.argmax(scores[::-1]))]
    predictions = {}
    for target, alpha in enumerate(alphas):
        model = Ridge(alpha=alpha, fit_intercept=False).fit(
            np.concatenate([designs[s] for s in train]),
            np.concatenate([z[s][:, target] for s in train]),
        )
        for s in test:
            predictions.setdefault(s, []).append(model.predict(designs[s]))
    pred = {s: np.stack(v, axis=1) for s, v in predictions.items()}
    r_story = {s: pearson_by_column(z[s], pred[s]) for s in test}
    pooled = pearson_by_column(
        np.concatenate([z[s] for s in test]), np.concatenate([pred[s] for s in test])
    )
    return alphas, r_story, pooled


def test_test_stories_match_sklearn_ridge_per_target():
    features, bold = _problem()
    settings = EncodingSettings(pca=5, delays=(1, 2), alphas=(0.1, 10.0, 1000.0), dtype="float64")
    plan, scores = encode_stories(features, bold, settings, ["c"])
    for subject in (0, 1):
        alphas, r_story, pooled = _sklearn_reference(
            features, bold, subject, ("a", "b"), ("c",), settings
        )
        np.testing.assert_array_equal(scores.alpha[subject], alphas.astype(np.float32))
        np.testing.assert_allclose(scores.r_story[0, subject], r_story["c"], atol=1e-5)
        np.testing.assert_allclose(scores.r[subject], pooled, atol=1e-5)
    # subject 2 lacks b: trains on a alone, still scored on c
    assert plan.left_out == {"c": []}
    assert np.isfinite(scores.r[2]).all()


def test_single_training_story_uses_contiguous_folds():
    features, bold = _problem(missing=None)
    settings = EncodingSettings(pca=0, delays=(1, 2), alphas=(0.1, 1000.0), cv=3, dtype="float64")
    two = {s: features[s] for s in ("a", "c")}
    _, scores = encode_stories(two, {s: bold[s] for s in two}, settings, ["c"])
    fit = prepare_fit(two, ["a"], ["c"], settings)
    assert len(fit.folds) == 3 and [len(v) for _, v in fit.folds] == [17, 16, 16]
    assert scores.r[:, :6].mean() > 0.6 and np.abs(scores.r[:, 6:]).mean() < 0.3


def test_cv_stories_predicts_each_story_once():
    features, bold = _problem()
    settings = EncodingSettings(pca=0, delays=(1, 2), alphas=(0.1, 10.0, 1000.0), dtype="float64")
    plan, scores = encode_stories(features, bold, settings, None)
    assert scores.r_story.shape == (3, N_SUBJECTS, N_TARGETS)
    # subject 2 lacks b: NaN there, scored on a and c
    assert np.isnan(scores.r_story[1, 2]).all() and np.isfinite(scores.r_story[[0, 2], 2]).all()
    assert plan.left_out["b"] == [2]
    # planted targets are recovered in every story, noise targets are not
    assert (scores.r[:, :6].min(axis=1) > np.abs(scores.r[:, 6:]).max(axis=1)).all()
    # pooled r of subject 0 target 0 equals r over its concatenated held-out predictions
    reference = []
    for held in ("a", "b", "c"):
        train = tuple(s for s in ("a", "b", "c") if s != held)
        alphas, r_story, _ = _sklearn_reference(features, bold, 0, train, (held,), settings)
        reference.append(alphas)
        np.testing.assert_allclose(
            scores.r_story[plan.test_stories.index(held), 0], r_story[held], atol=1e-5
        )
    np.testing.assert_array_equal(scores.alpha[0], np.median(reference, axis=0).astype(np.float32))


def test_chunked_equals_unchunked():
    features, bold = _problem(seed=5)
    plan, whole = encode_stories(features, bold, SETTINGS, ["b"])
    fits = {t: prepare_fit(features, t, plan.evaluated(t), SETTINGS) for t in plan.training_sets}
    parts = []
    for chunk in (slice(0, 4), slice(4, 11), slice(11, N_TARGETS)):
        n = chunk.stop - chunk.start
        parts.append(solve_targets(plan, fits, lambda s, j, c=chunk: bold[s][j][:, c], n, SETTINGS))
    for name in ("r", "alpha"):
        np.testing.assert_allclose(
            np.concatenate([getattr(p, name) for p in parts], axis=1),
            getattr(whole, name),
            atol=1e-5,
        )
    np.testing.assert_allclose(
        np.concatenate([p.r_story for p in parts], axis=2), whole.r_story, atol=1e-5
    )


def test_fixed_alpha_and_nonfinite_bold():
    features, bold = _problem(missing=None)
    settings = EncodingSettings(pca=5, delays=(1, 2), alpha=10.0)
    _, scores = encode_stories(features, bold, settings, ["a"])
    assert (scores.alpha == 10.0).all() and not scores.edge_counts.any()
    pair = {s: [x[0], x[0][:, ::-1] ** 2] for s, x in features.items()}
    banded = dataclasses.replace(settings, method="banded")
    _, scores = encode_stories(pair, bold, banded, ["a"])
    assert np.isnan(scores.alpha).all() and (scores.band_alpha == 10.0).all()
    # 3 of the 5 components go to the planted space: weaker, still well above the noise
    assert scores.r[:, :6].mean() > np.abs(scores.r[:, 6:]).mean() + 0.2
    bold["b"][1, 3, 4] = np.inf
    with pytest.raises(InputError, match=r"story 'b' subject '1'.*\[4\]"):
        encode_stories(features, bold, settings, ["a"])


def test_edge_counts_follow_the_one_story_rule():
    features, bold = _problem()
    for story in bold:  # subject 0, target 12: constant in every story, not a fit
        bold[story][0, :, 12] = 7.0
    settings = EncodingSettings(pca=5, delays=(1, 2), alphas=(0.1, 10.0, 1000.0), dtype="float64")
    _, scores = encode_stories(features, bold, settings, ["c"])
    at_low, n_fits, at_high, n_predictable = scores.edge_counts.tolist()
    valid = np.ones((N_SUBJECTS, N_TARGETS), bool)
    valid[0, 12] = False
    assert n_fits == valid.sum()
    assert at_low == ((scores.alpha == 0.1) & valid).sum()
    # the upper edge counts only predictable fits: the planted ones are, most noise is not
    assert 18 <= n_predictable < n_fits and at_high <= ((scores.alpha == 1000.0) & valid).sum()
    # cv-stories: one fit per (subject, outer fold, target); subject 2 has 2 folds
    _, cv = encode_stories(features, bold, settings, None)
    assert cv.edge_counts[1] == (3 + 3 + 2) * N_TARGETS - 3


def test_narrow_grid_warns_like_the_one_story_grid():
    from featstore.evaluate.encoding.alpha_edges import edge_alpha_warnings

    features, bold = _problem()
    narrow = EncodingSettings(pca=5, delays=(1, 2), alphas=(1e4, 1e5), dtype="float64")
    _, scores = encode_stories(features, bold, narrow, ["c"])
    (message,) = edge_alpha_warnings(scores.edge_counts, narrow.alphas, "subject x target fits")
    assert message.startswith("the chosen alpha is the smallest of the grid (10000) for ")
    assert "subject x target fits (" in message and "add smaller alphas to `alphas`" in message
    wide = EncodingSettings(pca=5, delays=(1, 2), alphas=(1e-3, 1.0, 1e3, 1e6), dtype="float64")
    _, scores = encode_stories(features, bold, wide, ["c"])
    assert edge_alpha_warnings(scores.edge_counts, wide.alphas) == []


def _banded_reference(features, bold, subject, train, test, settings):
    """Banded ridge by brute force: for every alpha pair, sklearn Ridge per target on the
    design whose second space is scaled by sqrt(a0 / a1), CV over the same inner folds."""
    spaces = [
        story_designs({t: [f[k]] for t, f in features.items()}, train, settings) for k in range(2)
    ]
    designs = {s: np.concatenate([d[s] for d in spaces], axis=1) for s in (*train, *test)}
    width = spaces[0][train[0]].shape[1]
    z = {s: zscore_story(bold[s][subject], settings.resolved_trim)[0] for s in (*train, *test)}
    X = np.concatenate([designs[s] for s in train])
    Y = np.concatenate([z[s] for s in train]).astype(np.float64)
    folds = inner_folds([len(designs[s]) for s in train], settings)
    pairs = [(a0, a1) for a0 in settings.alphas for a1 in settings.alphas]

    def scaled(x, a0, a1):
        return np.concatenate([x[:, :width], x[:, width:] * np.sqrt(a0 / a1)], axis=1)

    band = np.empty((N_TARGETS, 2))
    pooled_true, pooled_pred = [], []
    for target in range(N_TARGETS):
        scores = []
        for a0, a1 in pairs:
            fold_r2 = []
            for rows, held in folds:
                model = Ridge(alpha=a0, fit_intercept=False)
                model.fit(scaled(X[rows], a0, a1), Y[rows, target])
                y = Y[held, target]
                sse = ((model.predict(scaled(X[held], a0, a1)) - y) ** 2).sum()
                fold_r2.append(1 - sse / ((y - y.mean()) ** 2).sum())
            scores.append(np.mean(fold_r2))
        a0, a1 = band[target] = pairs[len(scores) - 1 - int(np.argmax(scores[::-1]))]
        model = Ridge(alpha=a0, fit_intercept=False).fit(scaled(X, a0, a1), Y[:, target])
        X_test = np.concatenate([designs[s] for s in test])
        pooled_pred.append(model.predict(scaled(X_test, a0, a1)))
        pooled_true.append(np.concatenate([z[s][:, target] for s in test]))
    r = pearson_by_column(np.stack(pooled_true, axis=1), np.stack(pooled_pred, axis=1))
    return band, r


def test_banded_matches_brute_force_ridge_per_alpha_pair():
    features, bold = _problem(seed=3)
    rng = np.random.default_rng(4)
    for story, n_tr in LENGTHS.items():  # a second space of pure noise
        features[story] = [features[story][0], rng.standard_normal((n_tr, 4))]
    settings = EncodingSettings(
        pca=0, delays=(1, 2), alphas=(0.1, 10.0, 1000.0), cv=3, method="banded", dtype="float64"
    )
    _, scores = encode_stories(features, bold, settings, ["c"])
    assert np.isnan(scores.alpha).all() and scores.band_alpha.shape == (N_SUBJECTS, N_TARGETS, 2)
    # subjects 0, 1 train on a and b (leave one story out); subject 2 lacks b and trains
    # on a alone (contiguous folds), as the one-story grid's inner CV
    for subject, train in ((0, ("a", "b")), (2, ("a",))):
        band, r = _banded_reference(features, bold, subject, train, ("c",), settings)
        np.testing.assert_array_equal(scores.band_alpha[subject], band.astype(np.float32))
        np.testing.assert_allclose(scores.r[subject], r, atol=1e-5)
    # planted targets: the noise space is shrunk at least as much as the signal space
    assert (scores.band_alpha[:, :6, 1] >= scores.band_alpha[:, :6, 0]).all()
    assert scores.r[:, :6].min() > np.abs(scores.r[:, 6:]).max()
    # concat and banded share everything but the ridge: same plan, other alphas
    _, concat = encode_stories(features, bold, dataclasses.replace(settings, method="concat"))
    assert concat.band_alpha is None and np.isfinite(concat.alpha).all()


@pytest.mark.parametrize("method", ["concat", "banded"])
@pytest.mark.parametrize("test_stories", [["c"], None])
def test_torch_backend_equals_numpy(method, test_stories):
    pytest.importorskip("torch")
    from featstore.evaluate.encoding.backend import get_backend

    features, bold = _problem(seed=7)
    rng = np.random.default_rng(8)
    for story, n_tr in LENGTHS.items():
        features[story] = [features[story][0], rng.standard_normal((n_tr, 4))]
    settings = dataclasses.replace(SETTINGS, method=method)
    _, numpy_scores = encode_stories(features, bold, settings, test_stories)
    _, torch_scores = encode_stories(
        features, bold, settings, test_stories, backend=get_backend("torch", "cpu")
    )
    for name in ("r", "alpha", "r_story", "band_alpha", "edge_counts"):
        expected, got = getattr(numpy_scores, name), getattr(torch_scores, name)
        if expected is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, expected, atol=1e-5)
