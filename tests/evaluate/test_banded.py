import itertools

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from featstore.evaluate.encoding.banded import alpha_grid, banded_ridge_cv, banded_ridge_cv_scores
from featstore.evaluate.encoding.ridge import ridge_weights
from tests.evaluate.conftest import gapped_kfold

ALPHAS = np.logspace(-1, 3, 5)
N_SAMPLES, N_TARGETS = 31, 6


def _spaces(rng, widths=(5, 9)):
    n = N_SAMPLES + 7
    Xs = [rng.standard_normal((n, w)) * s for w, s in zip(widths, (1.0, 3.0), strict=True)]
    Y = Xs[0] @ rng.standard_normal((widths[0], N_TARGETS))
    Y[:, :3] += Xs[1] @ rng.standard_normal((widths[1], 3)) * 0.3
    Y += 2 * rng.standard_normal((n, N_TARGETS))
    Xs = [x - x[:N_SAMPLES].mean(0) for x in Xs]
    Y -= Y[:N_SAMPLES].mean(0)
    return [x[:N_SAMPLES] for x in Xs], Y[:N_SAMPLES], [x[N_SAMPLES:] for x in Xs]


def _brute_force(Xs, Y, X_tests, folds):
    """Every (alpha_a, alpha_b) pair with sklearn: features divided by sqrt(alpha), alpha 1."""
    pairs = list(itertools.product(ALPHAS, repeat=2))

    def scaled(arrays, pair):
        return np.hstack([x / np.sqrt(a) for x, a in zip(arrays, pair, strict=True)])

    scores = np.zeros((len(pairs), N_TARGETS))
    for p, pair in enumerate(pairs):
        X = scaled(Xs, pair)
        for train, val in folds:
            model = Ridge(alpha=1.0, fit_intercept=False).fit(X[train], Y[train])
            scores[p] += r2_score(Y[val], model.predict(X[val]), multioutput="raw_values")
    scores /= len(folds)
    best = np.argmax(scores, axis=0)
    predictions = np.empty((X_tests[0].shape[0], N_TARGETS))
    for j in range(N_TARGETS):
        pair = pairs[best[j]]
        model = Ridge(alpha=1.0, fit_intercept=False).fit(scaled(Xs, pair), Y[:, j])
        predictions[:, j] = model.predict(scaled(X_tests, pair))
    return scores, np.array([pairs[b] for b in best]), predictions


def test_grid_lists_every_pair_in_order():
    grid = alpha_grid([10.0, 1.0], 2)
    np.testing.assert_array_equal(grid, [[1, 1], [1, 10], [10, 1], [10, 10]])


@pytest.mark.parametrize(("dtype", "tolerance"), [("float64", 1e-6), ("float32", 1e-4)])
def test_matches_a_brute_force_grid_with_sklearn(rng, dtype, tolerance):
    Xs, Y, X_tests = _spaces(rng)
    folds = gapped_kfold(N_SAMPLES, 4, gap=1)
    scores, pairs, predictions = _brute_force(Xs, Y, X_tests, folds)
    np.testing.assert_allclose(
        banded_ridge_cv_scores(Xs, Y, ALPHAS, folds, dtype=dtype), scores, atol=tolerance
    )
    result = banded_ridge_cv(Xs, Y, ALPHAS, folds, X_tests=X_tests, dtype=dtype)
    np.testing.assert_allclose(result.band_alphas, pairs, rtol=1e-12)
    np.testing.assert_allclose(result.predictions, predictions, atol=tolerance, rtol=0)
    # The signal of the second space only reaches the first three targets.
    assert np.median(result.band_alphas[3:, 1]) >= np.median(result.band_alphas[:3, 1])


def test_equal_band_alphas_are_plain_ridge(rng):
    Xs, Y, _ = _spaces(rng)
    folds = gapped_kfold(N_SAMPLES, 3, gap=0)
    grid = alpha_grid(ALPHAS, 2)
    scores = banded_ridge_cv_scores(Xs, Y, ALPHAS, folds)
    diagonal = np.flatnonzero(grid[:, 0] == grid[:, 1])
    X = np.hstack(Xs)
    for position in diagonal:
        alpha = grid[position, 0]
        expected = np.mean(
            [
                r2_score(Y[v], X[v] @ ridge_weights(X[t], Y[t], alpha), multioutput="raw_values")
                for t, v in folds
            ],
            axis=0,
        )
        np.testing.assert_allclose(scores[position], expected, atol=1e-9)
