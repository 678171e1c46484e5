"""On simulated fMRI with planted ROIs, through the real encoder: the planted ROIs are
significant after FDR and have a high noise ceiling; the noise ROIs are not."""

from __future__ import annotations

import numpy as np

from featstore.datasets.atlas import hcp_mmp_rois
from featstore.datasets.simulate import PlantedSource, simulate_bold
from featstore.evaluate import EncodingSettings, encode
from featstore.evaluate.metrics.noise_ceiling import loso_isc
from featstore.evaluate.metrics.stats import fdr_bh, permutation_test
from featstore.evaluate.roi_groups import BUILTIN_ROI_GROUPS


def test_planted_rois_are_significant_and_noise_rois_are_not():
    rng = np.random.default_rng(3)
    n_tr = 410  # 80 test TRs: 10 blocks of 8 TRs, 3.6 million orders
    white = rng.normal(size=(n_tr + 3, 12))
    features = white[:-3] + white[1:-2] + white[2:-1] + white[3:]  # autocorrelated
    names, _ = hcp_mmp_rois()
    source = PlantedSource("demo/tr1/layer1", features, BUILTIN_ROI_GROUPS["auditory"])
    bold, _, planted = simulate_bold([source], names, n_subjects=4, snr=0.6, seed=1)
    settings = EncodingSettings(pca=0, alphas=(1.0, 10.0, 100.0, 1000.0), cv=3)
    result = encode([features], bold, settings, return_predictions=True)
    outcome = permutation_test(result.predictions, result.observed, n_perm=1000, block=8, seed=0)
    np.testing.assert_array_equal(outcome.r, result.r)  # the evaluator's r, exactly

    is_planted = np.zeros(len(names), dtype=bool)
    is_planted[planted["demo/tr1/layer1"]] = True
    assert is_planted.sum() == 12
    q = fdr_bh(outcome.p_mean)
    assert np.all(q[is_planted] < 0.05)
    assert np.mean(q[~is_planted] < 0.05) < 0.02
    ceiling = loso_isc(bold[:, result.test_index]).mean(axis=0)
    assert ceiling[is_planted].min() > ceiling[~is_planted].mean() + 0.1
