"""metric_agreement: Spearman correlation of the metrics' subject-mean layer profiles."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.stats import spearmanr

from featstore.plot import metric_agreement


def _similarity_run(n_metrics: int) -> xr.Dataset:
    """score(metric, layer, subject) of 5 layers and 3 subjects (distinct sizes per axis)."""
    score = np.random.default_rng(n_metrics).standard_normal((n_metrics, 5, 3))
    metrics = ["cka", "rsa", "cca", "procrustes"][:n_metrics]
    return xr.Dataset(
        {"score": (("metric", "layer", "subject"), score)},
        coords={"metric": metrics, "layer": np.arange(1, 6), "subject": ["a", "b", "c"]},
    )


@pytest.mark.parametrize("n_metrics", [1, 2, 3, 4])
def test_is_the_spearman_matrix_of_the_mean_profiles_for_any_number_of_metrics(n_metrics):
    ds = _similarity_run(n_metrics)
    means = ds["score"].mean("subject").values
    expected = np.array(
        [
            [spearmanr(means[i], means[j]).statistic for j in range(n_metrics)]
            for i in range(n_metrics)
        ]
    )
    agreement = metric_agreement(ds)
    assert agreement.dims == ("metric_a", "metric_b")
    assert agreement.shape == (n_metrics, n_metrics)
    np.testing.assert_allclose(agreement.values, expected, atol=1e-12)
