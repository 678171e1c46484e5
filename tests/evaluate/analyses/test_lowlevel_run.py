"""evaluate lowlevel's library side: the planted acoustic component is removed by its control."""

from __future__ import annotations

import numpy as np
import pytest

from featstore.errors import InputError
from featstore.evaluate.analyses.runner import load_inputs, open_analysis
from featstore.evaluate.encoding.pipeline import encode
from featstore.evaluate.encoding.residualize import percent_drop, residualize
from featstore.evaluate.metrics.stats import paired_wilcoxon
from featstore.evaluate.runs.scheduling import run_config

from .conftest import AUDITORY, LANGUAGE, N_SUBJECTS, ROI_NAMES


@pytest.fixture
def lowlevel_run(analyses_store, settings):
    from featstore.evaluate.analyses.lowlevel import run_lowlevel

    run_id = run_lowlevel(analyses_store, "wavlm", ["spectral"], layers="all", settings=settings)
    return analyses_store, open_analysis(analyses_store, run_id, "lowlevel")


def test_spectral_control_removes_the_acoustic_alignment_not_the_textual_one(lowlevel_run):
    _, ds = lowlevel_run
    assert ds.attrs["controls"] == ["spectral/tr1/layer0"]
    # the speech-model layers hold the spectral signal and the text latent: both groups are
    # predicted before; removing the spectral control leaves the text part only
    orig = ds["group_r_orig"].mean("subject")
    assert float(orig.sel(roi_group="auditory").min()) > 0.3
    assert float(orig.sel(roi_group="late-language").min()) > 0.3
    auditory = ds["group_drop"].sel(roi_group="auditory")
    language = ds["group_drop"].sel(roi_group="late-language")
    assert float(auditory.min()) > 60.0
    # (removing the control can even help the noisier layers: a negative drop)
    assert float(language.max()) < 10.0 and float(language.min()) > -30.0
    # one-sided Wilcoxon across 6 subjects: all drop in auditory (p = 1/64), not in language
    np.testing.assert_allclose(ds["group_p"].sel(roi_group="auditory"), 1 / 64)
    assert float(ds["group_p"].sel(roi_group="late-language").min()) > 0.2
    # per ROI likewise, and noise ROIs (V1-V3) have no alignment to lose
    per_roi = ds["drop"].sel(layer=1).values
    assert np.all(per_roi[: len(AUDITORY)] > 30.0)
    assert np.all(per_roi[len(AUDITORY) : len(AUDITORY) + len(LANGUAGE)] < 15.0)
    assert (ds["q"] >= ds["p"]).all()
    assert np.all((ds["explained_test"] > 0.2) & (ds["explained_test"] < 0.8))


def test_values_are_encode_of_the_original_and_residual_features(lowlevel_run, settings):
    store, ds = lowlevel_run
    assert ds["r_orig"].dims == ("layer", "subject", "roi")
    assert ds["r_orig"].shape == (3, N_SUBJECTS, len(ROI_NAMES))
    assert list(ds["roi_name"].values) == ROI_NAMES
    np.testing.assert_allclose(
        ds["r_orig"].sel(layer=2), run_config(store, "wavlm/tr2/layer2", settings).r, rtol=1e-5
    )
    inputs = load_inputs(store, "wavlm", layers=[2], settings=settings)
    control = inputs.read(inputs.catalog.feature_layer("spectral", "tr1", 0))
    residual = residualize(
        inputs.read(inputs.layers[0]), control, inputs.train_index, n_folds=settings.cv
    )
    assert float(ds["control_alpha"].sel(layer=2)) == residual.alpha
    r_resid = encode([residual.features], inputs.bold, settings).r
    np.testing.assert_allclose(ds["r_resid"].sel(layer=2), r_resid, rtol=1e-5)
    r_orig = ds["r_orig"].sel(layer=2).values
    np.testing.assert_allclose(
        ds["drop"].sel(layer=2), percent_drop(r_orig.mean(0), r_resid.mean(0)), rtol=1e-4
    )
    expected_p = paired_wilcoxon(r_orig, r_resid, alternative="greater").p_value
    np.testing.assert_allclose(ds["p"].sel(layer=2), expected_p)
    group = ds.attrs["roi_groups"]
    assert group["auditory"] == [f"L_{name}" for name in AUDITORY]


def test_bad_controls_are_named(analyses_store, settings):
    from featstore.evaluate.analyses.lowlevel import run_lowlevel

    with pytest.raises(InputError, match="a model cannot be its own control"):
        run_lowlevel(analyses_store, "wavlm", ["wavlm/tr2/0"], settings=settings)
    with pytest.raises(InputError, match="no feature set for model 'envelope'"):
        run_lowlevel(analyses_store, "wavlm", ["envelope"], settings=settings)
    with pytest.raises(InputError, match="at least one control"):
        run_lowlevel(analyses_store, "wavlm", [], settings=settings)
