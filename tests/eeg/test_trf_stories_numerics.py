"""TRF numerics across stories against a brute-force sklearn reference, and leak tests."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from featstore.evaluate.encoding.split import contiguous_folds
from featstore.evaluate.encoding.trf_stories import fit_trf_stories, pooled_pearson

LAGS = [-2, 0, 3, 5]
ALPHAS = [1e-1, 1e1, 1e3]
LENGTHS = {"a": 97, "b": 83, "c": 71, "d": 64}


def _stories(seed=0, n_features=3, n_targets=4):
    rng = np.random.default_rng(seed)
    X = {s: rng.standard_normal((n, n_features)) for s, n in LENGTHS.items()}
    mixing = rng.standard_normal((n_features, n_targets))
    Y = {}
    for s, x in X.items():
        y = 0.8 * rng.standard_normal((len(x), n_targets))
        y[3:] += x[:-3] @ mixing  # planted lag of 3 samples
        Y[s] = 5.0 + 2.0 * y  # an offset and a scale z-scoring per story removes
    return X, Y


def _lagged(x, lags):
    """Delays of one story alone, zero-filled (the obvious way)."""
    out = np.zeros((len(x), len(lags) * x.shape[1]))
    for k, lag in enumerate(lags):
        block = np.zeros_like(x)
        if lag >= 0:
            block[lag:] = x[: len(x) - lag]
        else:
            block[:lag] = x[-lag:]
        out[:, k * x.shape[1] : (k + 1) * x.shape[1]] = block
    return out


def _reference(X, Y, train, test, n_folds):
    """sklearn Ridge per alpha and fold, chosen by mean validation R², refitted."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score

    stacked = np.concatenate([X[s] for s in train])
    mean, std = stacked.mean(0), stacked.std(0)
    design = {s: _lagged((x - mean) / std, LAGS) for s, x in X.items()}
    target = {s: (y - y.mean(0)) / y.std(0) for s, y in Y.items()}
    D, T = np.concatenate([design[s] for s in train]), np.concatenate([target[s] for s in train])
    if len(train) > 1:
        bounds = np.cumsum([0, *(len(X[s]) for s in train)])
        folds = [
            (np.setdiff1d(np.arange(len(D)), np.arange(a, b)), np.arange(a, b))
            for a, b in pairwise(bounds)
        ]
    else:
        folds = contiguous_folds(len(D), n_folds, gap=max(abs(lag) for lag in LAGS))
    scores = np.zeros((len(ALPHAS), T.shape[1]))
    for i, alpha in enumerate(ALPHAS):
        for fit, val in folds:
            pred = Ridge(alpha=alpha, fit_intercept=False).fit(D[fit], T[fit]).predict(D[val])
            scores[i] += r2_score(T[val], pred, multioutput="raw_values") / len(folds)
    best = len(ALPHAS) - 1 - np.argmax(scores[::-1], axis=0)
    predictions = {}
    for s in test:
        predictions[s] = np.column_stack(
            [
                Ridge(alpha=ALPHAS[b], fit_intercept=False).fit(D, T[:, j]).predict(design[s])
                for j, b in enumerate(best)
            ]
        )
    return np.array(ALPHAS)[best], predictions


@pytest.mark.parametrize(("train", "test"), [(["a", "b", "c"], ["d"]), (["b"], ["a", "d"])])
def test_fit_trf_stories_equals_a_brute_force_sklearn_reference(train, test):
    X, Y = _stories()
    fit = fit_trf_stories(X, Y, LAGS, ALPHAS, train=train, test=test, n_folds=3)
    alpha, predictions = _reference(X, Y, train, test, n_folds=3)
    np.testing.assert_array_equal(fit.alpha, alpha)
    assert list(fit.predictions) == test
    for story in test:
        np.testing.assert_allclose(fit.predictions[story], predictions[story], atol=1e-9)
    assert fit.weights.shape == (len(LAGS), 3, 4)


def test_no_lagged_row_reads_another_story_and_the_test_stories_teach_nothing():
    X, Y = _stories()
    first = fit_trf_stories(X, Y, LAGS, ALPHAS, train=["a", "b"], test=["c"], n_folds=3)
    X2, Y2 = dict(X), dict(Y)
    X2["c"], Y2["c"] = 40.0 * X["c"] + 3.0, -Y["c"]  # the test story: never fitted on
    second = fit_trf_stories(X2, Y2, LAGS, ALPHAS, train=["a", "b"], test=["c"], n_folds=3)
    np.testing.assert_array_equal(first.alpha, second.alpha)
    np.testing.assert_allclose(first.weights, second.weights, rtol=1e-12)
    # story b's first rows see only zeros before its start, whatever ends story a
    X3 = dict(X)
    X3["a"] = X["a"].copy()
    X3["a"][-5:] += 100.0
    scaled = fit_trf_stories(X3, Y, LAGS, ALPHAS, train=["b"], test=["a", "c"], n_folds=3)
    base = fit_trf_stories(X, Y, LAGS, ALPHAS, train=["b"], test=["a", "c"], n_folds=3)
    np.testing.assert_allclose(scaled.predictions["c"], base.predictions["c"], rtol=1e-12)
    np.testing.assert_allclose(
        scaled.predictions["a"][: -5 - max(LAGS)], base.predictions["a"][: -5 - max(LAGS)]
    )


def test_planted_lag_is_recovered_across_stories():
    X, Y = _stories(seed=3, n_features=2, n_targets=3)
    lags = list(range(-2, 8))
    fit = fit_trf_stories(X, Y, lags, ALPHAS, train=["a", "b", "c"], test=["d"], n_folds=3)
    profile = np.sqrt(np.mean(fit.weights**2, axis=1))
    assert np.all(np.array(lags)[profile.argmax(axis=0)] == 3)
    r = pooled_pearson([Y["d"]], [fit.predictions["d"]])
    assert np.all(r > 0.5)


def test_pooled_pearson_z_scores_each_story_before_concatenating():
    rng = np.random.default_rng(1)
    y = [rng.standard_normal((23, 2)), 100.0 + 7.0 * rng.standard_normal((17, 2))]
    p = [y[0] + rng.standard_normal((23, 2)), (y[1] - 100.0) / 7.0]
    z = [(a - a.mean(0)) / a.std(0) for a in y]
    expected = [
        np.corrcoef(
            np.concatenate([z[0][:, j], z[1][:, j]]), np.concatenate([p[0][:, j], p[1][:, j]])
        )[0, 1]
        for j in range(2)
    ]
    np.testing.assert_allclose(pooled_pearson(y, p), expected, rtol=1e-12)
