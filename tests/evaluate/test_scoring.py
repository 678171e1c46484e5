import numpy as np
from scipy.stats import pearsonr
from sklearn.metrics import r2_score

from featstore.evaluate.encoding.scoring import pearson_by_column, r2_by_column
from tests.evaluate.conftest import N_ROI, N_TR


def test_pearson_matches_scipy(rng):
    y = rng.standard_normal((N_TR, N_ROI))
    pred = y * 0.3 + rng.standard_normal((N_TR, N_ROI))
    expected = [pearsonr(y[:, j], pred[:, j]).statistic for j in range(N_ROI)]
    np.testing.assert_allclose(pearson_by_column(y, pred), expected, atol=1e-12)
    np.testing.assert_allclose(
        pearson_by_column(y.astype(np.float32), pred.astype(np.float32)), expected, atol=1e-6
    )


def test_constant_columns_give_nan_without_warning(rng):
    y = rng.standard_normal((N_TR, N_ROI))
    pred = rng.standard_normal((N_TR, N_ROI))
    y[:, 1] = 3.0
    pred[:, 4] = 0.0
    r = pearson_by_column(y, pred)
    assert np.isnan(r[[1, 4]]).all() and np.isfinite(r[[0, 2, 3]]).all()


def test_r2_matches_sklearn(rng):
    y = rng.standard_normal((N_TR, N_ROI))
    pred = y * 0.5 + rng.standard_normal((N_TR, N_ROI))
    np.testing.assert_allclose(
        r2_by_column(y, pred), r2_score(y, pred, multioutput="raw_values"), atol=1e-12
    )
