"""The alignment metric registry against scipy and the kernel form of CKA."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import pearsonr, spearmanr

from featstore.errors import InputError
from featstore.evaluate.metrics.alignment import ALIGNMENT_METRICS, resolve_metrics


def _pair(seed=0):
    rng = np.random.default_rng(seed)
    model = rng.standard_normal((13, 7))
    return model, model[:, :4] @ rng.standard_normal((4, 5)) + rng.standard_normal((13, 5))


def test_rsa_metrics_equal_scipy_on_correlation_distance_rdms():
    model, brain = _pair()
    a, b = pdist(model, "correlation"), pdist(brain, "correlation")
    assert ALIGNMENT_METRICS["rsa_spearman"](model, brain) == pytest.approx(spearmanr(a, b)[0])
    assert ALIGNMENT_METRICS["rsa_pearson"](model, brain) == pytest.approx(pearsonr(a, b)[0])


def test_linear_cka_equals_the_hsic_of_linear_kernels():
    model, brain = _pair(1)
    n = len(model)
    h = np.eye(n) - 1.0 / n
    k, l_ = h @ model @ model.T @ h, h @ brain @ brain.T @ h
    expected = np.sum(k * l_) / np.sqrt(np.sum(k * k) * np.sum(l_ * l_))
    assert ALIGNMENT_METRICS["linear_cka"](model, brain) == pytest.approx(expected)


def test_every_metric_takes_model_and_brain_matrices_of_different_widths():
    model, brain = _pair(2)
    for name, metric in ALIGNMENT_METRICS.items():
        value = metric(model, brain)
        assert isinstance(value, float) and np.isfinite(value), name
        assert metric(model, model) == pytest.approx(1.0), name


def test_resolve_metrics():
    assert resolve_metrics(["all"]) == list(ALIGNMENT_METRICS)
    assert resolve_metrics(["linear_cka", "linear_cka"]) == ["linear_cka"]
    with pytest.raises(InputError, match="unknown nope"):
        resolve_metrics(["nope"])
