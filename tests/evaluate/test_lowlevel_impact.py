"""Low-level impact numerics against sklearn / scipy (T=37, D=11, C=3 controls, V=5)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wilcoxon
from sklearn.linear_model import Ridge

from featstore.errors import InputError
from featstore.evaluate import lowlevel_impact as li

T, D, C, V = 37, 11, 3, 5


@pytest.fixture
def rng():
    return np.random.default_rng(5)


@pytest.fixture
def data(rng):
    control = rng.standard_normal((T, C)) * [1.0, 4.0, 0.1] + [0.0, 2.0, -1.0]
    model = control @ rng.standard_normal((C, D)) + rng.standard_normal((T, D)) + 3.0
    return model, control, np.arange(29)


def test_residualize_matches_sklearn_ridge_with_blockwise_cv(data):
    model, control, train = data
    alphas = np.logspace(-2, 4, 7)
    out = li.residualize(model, control, train, alphas=alphas, n_folds=4)
    # reference: z-score the control on train, ridge with intercept, contiguous folds
    z = (control - control[train].mean(0)) / control[train].std(0)
    errors = []
    for alpha in alphas:
        error = 0.0
        for fold in np.array_split(train, 4):
            kept = np.setdiff1d(train, fold)
            fit = Ridge(alpha=alpha).fit(z[kept], model[kept])
            error += np.sum((fit.predict(z[fold]) - model[fold]) ** 2)
        errors.append(error)
    assert out.alpha == alphas[int(np.argmin(errors))]
    ridge = Ridge(alpha=out.alpha).fit(z[train], model[train])
    expected = model - ridge.predict(z)
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


def test_wilcoxon_drop_matches_scipy(rng):
    r_orig = rng.random((V + 3, 4))
    r_resid = r_orig - rng.random((V + 3, 4)) * 0.1
    r_resid[:, 2] = r_orig[:, 2]  # no difference at all: no test
    r_orig[0, 3] = np.nan  # a missing subject is left out
    statistic, p_value = li.wilcoxon_drop(r_orig, r_resid)
    for region in (0, 1):
        expected = wilcoxon(r_orig[:, region], r_resid[:, region], alternative="greater")
        assert statistic[region] == expected.statistic
        assert p_value[region] == pytest.approx(expected.pvalue)
    assert np.isnan(statistic[2]) and np.isnan(p_value[2])
    expected = wilcoxon(r_orig[1:, 3], r_resid[1:, 3], alternative="greater")
    assert p_value[3] == pytest.approx(expected.pvalue)
    with pytest.raises(InputError, match="alternative"):
        li.wilcoxon_drop(r_orig, r_resid, alternative="bigger")
