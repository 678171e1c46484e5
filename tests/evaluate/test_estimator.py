"""EncodingModel: the scikit-learn contract, the grid's numerics, groups and FIR weights."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import featstore
from featstore.errors import InputError
from featstore.evaluate import EncodingSettings, encode
from featstore.evaluate.encoding.estimator import EncodingModel
from featstore.evaluate.encoding.scoring import pearson_by_column
from tests.evaluate.conftest import N_ROI, N_SUBJECT, naive_delays

ALPHAS = tuple(np.logspace(-2, 5, 8))

#: Checks a time-lagged model fails by design, and why.
DELAYED_MODEL_FAILURES = {
    "check_regressors_train": (
        "the check's targets depend on the same row's features; with delays (1, 2, 3, 4) "
        "the model looks only at earlier rows, so it cannot fit them"
    ),
    "check_methods_sample_order_invariance": (
        "FIR delays read the previous rows: reordering rows changes every prediction"
    ),
    "check_methods_subset_invariance": (
        "FIR delays read the previous rows: a subset has another history"
    ),
}


def _expected_failures(estimator):
    return DELAYED_MODEL_FAILURES if tuple(estimator.delays) != (0,) else {}


@parametrize_with_checks(
    [EncodingModel(delays=(0,)), EncodingModel()],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("overrides", [{"pca": 5}, {"pca": 0, "delays": (0, 2)}])
def test_same_numerics_as_the_grid(problem, overrides):
    """Fitted on the grid's train rows, the estimator gives the grid's alphas and r."""
    feature_a, _, bold = problem
    settings = EncodingSettings(alphas=ALPHAS, trim=0, dtype="float64", **overrides)
    result = encode([feature_a], bold, settings)
    train, test = result.train_index, result.test_index
    for s in range(N_SUBJECT):
        model = EncodingModel(
            pca=settings.pca, delays=settings.delays, alphas=ALPHAS, dtype="float64"
        ).fit(feature_a[train], bold[s, train])
        # the grid builds delays on the whole run: predict the whole run, keep test rows
        predictions = model.predict(feature_a)[test]
        np.testing.assert_array_equal(model.alpha_, result.alpha[s])
        np.testing.assert_allclose(
            pearson_by_column(bold[s, test], predictions), result.r[s], atol=1e-10
        )
        assert model.cv_scores_.shape == (len(ALPHAS), N_ROI)
        np.testing.assert_allclose(
            model.best_cv_score_, model.cv_scores_.max(axis=0), rtol=0, atol=1e-12
        )


def test_groups_restart_delays_and_make_the_folds(rng):
    """Two stories: delays zero-filled at each start, folds leave one story out (a reference
    built from StandardScaler, naive delays per story and sklearn's Ridge)."""
    lengths, delays = (23, 31), (1, 3)
    X = rng.standard_normal((sum(lengths), 7))
    Y = np.roll(X[:, :4], 1, axis=0) + 0.5 * rng.standard_normal((sum(lengths), 4))
    groups = np.repeat(["story-b", "story-a"], lengths)  # labels need not be sorted
    model = EncodingModel(pca=0, delays=delays, alphas=ALPHAS, dtype="float64")
    model.fit(X, Y, groups=groups)

    z = StandardScaler().fit_transform(X)
    design = np.vstack([naive_delays(z[:23], delays), naive_delays(z[23:], delays)])
    Y_z = StandardScaler().fit_transform(Y)
    expected = np.zeros((len(ALPHAS), Y.shape[1]))
    for held_out in ("story-a", "story-b"):
        fit, val = groups != held_out, groups == held_out
        for i, alpha in enumerate(ALPHAS):
            ridge = Ridge(alpha=alpha, fit_intercept=False).fit(design[fit], Y_z[fit])
            expected[i] += r2_score(Y_z[val], ridge.predict(design[val]), multioutput="raw_values")
    np.testing.assert_allclose(model.cv_scores_, expected / 2, atol=1e-10)

    together = model.predict(X, groups=groups)
    apart = np.vstack([model.predict(X[:23]), model.predict(X[23:])])
    np.testing.assert_allclose(together, apart, atol=1e-12)
    assert not np.allclose(model.predict(X), together)  # without groups, no restart


def test_coef_and_intercept_reproduce_predict_where_the_history_exists(rng):
    delays = (1, 2, 4)
    X = rng.standard_normal((90, 12)) * 3.0 + 5.0
    Y = np.roll(X[:, :3] @ rng.standard_normal((3, 2)), 2, axis=0) + 100.0
    model = EncodingModel(pca=6, delays=delays, alphas=ALPHAS).fit(X, Y)
    assert model.coef_.shape == (2, len(delays), 12) and model.intercept_.shape == (2,)
    by_hand = model.intercept_ + sum(
        np.roll(X, d, axis=0) @ model.coef_[:, k].T for k, d in enumerate(delays)
    )
    np.testing.assert_allclose(by_hand[max(delays) :], model.predict(X)[max(delays) :], atol=1e-8)

    single = EncodingModel(pca=6, delays=delays, alphas=ALPHAS).fit(X, Y[:, 0])
    assert single.coef_.shape == (len(delays), 12) and np.ndim(single.intercept_) == 0
    assert np.ndim(single.alpha_) == 0 and single.predict(X).shape == (90,)


def test_works_in_a_pipeline_with_clone_and_from_the_top_level(problem):
    feature_a, _, bold = problem
    model = featstore.EncodingModel(pca=4, delays=(1, 2), alphas=ALPHAS)
    pipeline = make_pipeline(FunctionTransformer(np.tanh), clone(model))
    pipeline.fit(feature_a, bold[0])
    assert pipeline.predict(feature_a).shape == bold[0].shape
    assert clone(model).get_params() == model.get_params()
    assert 0.0 < pipeline.score(feature_a, bold[0]) <= 1.0


def test_bad_input_names_the_parameter(rng):
    X, Y = rng.standard_normal((40, 5)), rng.standard_normal((40, 2))
    with pytest.raises(InputError, match="groups"):
        EncodingModel(pca=0).fit(X, Y, groups=np.zeros(39))
    with pytest.raises(InputError, match="pca"):
        EncodingModel(pca=-1).fit(X, Y)
    with pytest.raises(InputError, match="delays"):
        EncodingModel(delays=()).fit(X, Y)
