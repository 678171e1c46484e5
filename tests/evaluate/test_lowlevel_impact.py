"""Low-level impact numerics against sklearn (T=37, D=11, C=3 controls)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from featstore.errors import InputError
from featstore.evaluate.encoding import residualize as li

T, D, C = 37, 11, 3


@pytest.fixture
def rng():
    return np.random.default_rng(5)


@pytest.fixture
def data(rng):
    control = rng.standard_normal((T, C)) * [1.0, 4.0, 0.1] + [0.0, 2.0, -1.0]
    model = control @ rng.standard_normal((C, D)) + rng.standard_normal((T, D)) + 3.0
    return model, control, np.arange(29)


def _sklearn_residual(model, control, train, alphas, n_folds):
    """Reference: z-score the control and centre the model on train, then for each alpha
    fit sklearn's Ridge without intercept on every contiguous fold, score R² per dim on the
    validation block, average over folds and dims; refit the best alpha on all of train."""
    z = (control - control[train].mean(0)) / control[train].std(0)
    centred = model - model[train].mean(0)
    scores = []
    for alpha in alphas:
        per_fold = []
        for fold in np.array_split(np.arange(train.size), n_folds):
            kept = train[np.setdiff1d(np.arange(train.size), fold)]
            held = train[fold]
            fit = Ridge(alpha=alpha, fit_intercept=False).fit(z[kept], centred[kept])
            per_fold.append(r2_score(centred[held], fit.predict(z[held]), multioutput="raw_values"))
        scores.append(np.mean(per_fold))
    best = alphas[len(alphas) - 1 - int(np.argmax(scores[::-1]))]
    ridge = Ridge(alpha=best, fit_intercept=False).fit(z[train], centred[train])
    return best, centred - ridge.predict(z)


def test_residualize_matches_sklearn_ridge_with_blockwise_cv(data):
    model, control, train = data
    alphas = np.logspace(-2, 4, 7)
    out = li.residualize(model, control, train, alphas=alphas, n_folds=4)
    alpha, expected = _sklearn_residual(model, control, train, alphas, 4)
    assert out.alpha == alpha
    assert out.features.shape == (T, D) and out.features.dtype == np.float32
    np.testing.assert_allclose(out.features, expected, atol=1e-5)
    # explained variance pooled over dims (sklearn's score averages per-dim R² instead)
    centred = model[train] - model[train].mean(0)
    pooled = 1 - np.sum(expected[train] ** 2) / np.sum(centred**2)
    assert out.explained_train == pytest.approx(pooled, rel=1e-6)
    assert 0.3 < out.explained_test < 1.0


def test_residualize_removes_an_exact_linear_control(rng):
    control = rng.standard_normal((T, C))
    model = control @ rng.standard_normal((C, D))
    out = li.residualize(model, control, np.arange(25), alphas=[1e-6, 1.0])
    assert out.alpha == 1e-6
    np.testing.assert_allclose(out.features, 0.0, atol=1e-4)
    assert out.explained_test == pytest.approx(1.0)


def test_residualize_ignores_constant_controls_and_checks_shapes(data):
    model, control, train = data
    padded = np.column_stack([control, np.full(T, 7.0)])
    np.testing.assert_allclose(
        li.residualize(model, padded, train).features,
        li.residualize(model, control, train).features,
        atol=1e-5,
    )
    with pytest.raises(InputError, match="same number of TRs"):
        li.residualize(model, control[:-1], train)
    with pytest.raises(InputError, match="too few"):
        li.residualize(model, control, np.arange(6))


def test_percent_drop_rule():
    r_orig = np.array([0.2, 0.1, 0.0, -0.1, np.nan])
    r_resid = np.array([0.05, 0.12, 0.05, -0.2, 0.1])
    drop = li.percent_drop(r_orig, r_resid)
    np.testing.assert_allclose(drop[:2], [75.0, -20.0])
    assert np.isnan(drop[2:]).all()
