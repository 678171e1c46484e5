import numpy as np
import pytest
from himalaya.ridge import solve_ridge_cv_svd
from himalaya.scoring import r2_score as himalaya_r2
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from featstore.evaluate.encoding import ridge as ridge_module
from featstore.evaluate.encoding.ridge import (
    best_alpha_index,
    factorize,
    near_ties,
    predict_with_alphas,
    ridge_cv,
    ridge_cv_scores,
    ridge_weights,
)
from tests.evaluate.conftest import N_ROI, gapped_kfold

ALPHAS = np.logspace(-2, 4, 7)
N_SAMPLES, N_TARGETS = 29, N_ROI * 3


def _data(rng, n_features):
    X = rng.standard_normal((N_SAMPLES + 6, n_features))
    Y = X @ rng.standard_normal((n_features, N_TARGETS)) + 3 * rng.standard_normal(
        (N_SAMPLES + 6, N_TARGETS)
    )
    X -= X[:N_SAMPLES].mean(0)
    Y -= Y[:N_SAMPLES].mean(0)
    return X[:N_SAMPLES], Y[:N_SAMPLES], X[N_SAMPLES:]


@pytest.mark.parametrize("n_features", [11, 40])  # primal (p < n) and dual (p > n)
def test_weights_match_sklearn_ridge(rng, n_features):
    X, Y, _ = _data(rng, n_features)
    alphas = rng.choice(ALPHAS, N_TARGETS)
    weights = ridge_weights(X, Y, alphas)
    for j in range(N_TARGETS):
        reference = Ridge(alpha=alphas[j], fit_intercept=False, solver="svd").fit(X, Y[:, j])
        np.testing.assert_allclose(weights[:, j], reference.coef_, atol=1e-9)
    shared = Ridge(alpha=3.0, fit_intercept=False).fit(X, Y).coef_.T
    np.testing.assert_allclose(ridge_weights(X, Y, 3.0), shared, atol=1e-9)


@pytest.mark.parametrize("n_features", [11, 40])
def test_cv_scores_match_sklearn_per_alpha_and_fold(rng, n_features):
    X, Y, _ = _data(rng, n_features)
    folds = gapped_kfold(N_SAMPLES, 4, gap=1)
    expected = np.zeros((len(ALPHAS), N_TARGETS))
    for a, alpha in enumerate(ALPHAS):
        for train, val in folds:
            model = Ridge(alpha=alpha, fit_intercept=False).fit(X[train], Y[train])
            expected[a] += r2_score(Y[val], model.predict(X[val]), multioutput="raw_values")
    expected /= len(folds)
    np.testing.assert_allclose(ridge_cv_scores(X, Y, ALPHAS, folds), expected, atol=1e-9)
    scores32 = ridge_cv_scores(X, Y, ALPHAS, folds, dtype="float32", target_batch=4)
    np.testing.assert_allclose(scores32, expected, atol=1e-4)


@pytest.mark.parametrize("n_features", [11, 40])
@pytest.mark.parametrize(("dtype", "tolerance"), [("float64", 1e-6), ("float32", 1e-4)])
def test_ridge_cv_matches_himalaya_with_the_same_folds(rng, n_features, dtype, tolerance):
    X, Y, X_test = _data(rng, n_features)
    folds = gapped_kfold(N_SAMPLES, 5, gap=1)
    best, coefs, _ = solve_ridge_cv_svd(
        X, Y, alphas=ALPHAS, cv=folds, score_func=himalaya_r2, warn=False
    )
    result = ridge_cv(X, Y, ALPHAS, folds, X_test=X_test, dtype=dtype, target_batch=4)
    np.testing.assert_allclose(result.alpha, best, rtol=1e-12)
    np.testing.assert_allclose(result.predictions, X_test @ coefs, atol=tolerance, rtol=0)
    assert result.predictions.dtype == np.dtype(dtype)


def test_float32_near_ties_are_rescored_in_float64(rng, monkeypatch):
    X, Y, X_test = _data(rng, 11)
    folds = gapped_kfold(N_SAMPLES, 5, gap=0)
    exact = ridge_cv(X, Y, ALPHAS, folds, X_test=X_test)
    monkeypatch.setattr(ridge_module, "TIE_TOLERANCE", np.inf)
    rescored = ridge_cv(X, Y, ALPHAS, folds, X_test=X_test, dtype="float32")
    assert rescored.n_rescored == N_TARGETS
    np.testing.assert_array_equal(rescored.alpha_index, exact.alpha_index)
    np.testing.assert_allclose(rescored.cv_score, exact.cv_score, atol=1e-12)


def test_selection_prefers_larger_alphas_on_ties_and_flags_near_ties():
    scores = np.array([[0.5, 0.1, 0.3], [0.5, 0.2, 0.3 - 1e-7], [0.4, 0.3, 0.1]])
    np.testing.assert_array_equal(best_alpha_index(scores), [1, 2, 0])
    np.testing.assert_array_equal(near_ties(scores, 1e-6), [True, False, True])


def test_predictions_with_one_alpha_per_column(rng):
    X, Y, X_test = _data(rng, 11)
    alphas = rng.choice(ALPHAS, N_TARGETS)
    predictions = predict_with_alphas(factorize(X), X_test, Y, alphas, "float64", target_batch=2)
    np.testing.assert_allclose(predictions, X_test @ ridge_weights(X, Y, alphas), atol=1e-10)
