"""evaluate rsa's library side: layout, values against the RSA numerics, the planted layer."""

from __future__ import annotations

import numpy as np
import pytest

from featstore.errors import InputError
from featstore.evaluate.analyses.rsa import run_rsa
from featstore.evaluate.analyses.runner import load_inputs, open_analysis, select_roi_groups
from featstore.evaluate.metrics import rsa

from .conftest import N_SUBJECTS, N_TR, PLANTED_TEXT_LAYER


def test_layout_and_values_match_the_rsa_numerics(analyses_store, settings):
    run_id = run_rsa(
        analyses_store, "gpt2", layers="all", n_perm=0, min_lag=0, subset="test", settings=settings
    )
    ds = open_analysis(analyses_store, run_id, "rsa")
    assert run_id.startswith("rsa-") and ds.attrs["analysis"] == "rsa"
    assert ds["rho"].dims == ("roi_group", "layer", "subject")
    assert ds["rho"].shape == (2, 5, N_SUBJECTS)
    assert list(ds["roi_group"].values) == ["auditory", "late-language"]
    assert list(ds["n_rois"].values) == [6, 5]
    assert np.isnan(ds["p"].values).all() and "rho_partial" not in ds
    attrs = ds.attrs
    assert attrs["request"]["feature_group"] == "features/gpt2/ctx20"
    assert set(attrs["features"]) == {"features/gpt2/ctx20"}
    assert attrs["features"]["features/gpt2/ctx20"]["model_id"] == "gpt2"
    assert attrs["fmri"]["n_tr"] == N_TR and len(attrs["fmri"]["fingerprint"]) == 64
    assert attrs["roi_groups"]["late-language"][0] == "L_PFm"
    # reference: the encoding design of the layer against the z-scored BOLD, test TRs
    inputs = load_inputs(analyses_store, "gpt2", layers="all", settings=settings)
    assert attrs["n_items"] == inputs.test_index.size
    language = select_roi_groups(inputs.roi_names, inputs.hemispheres)["late-language"]
    design = inputs.design(inputs.layers[3])[inputs.test_index]
    brain = inputs.bold_zscored(4, language)[inputs.test_index]
    expected = rsa.compare_rdms(rsa.rdm(design), rsa.rdm(brain), "spearman")
    assert float(ds["rho"].sel(roi_group="late-language", layer=3)[4]) == pytest.approx(
        expected, abs=1e-5
    )


def test_planted_text_layer_peaks_in_language_rois_only(analyses_store, settings):
    run_id = run_rsa(
        analyses_store, "gpt2", layers="all", n_perm=99, seed=1, settings=settings, segment=2
    )
    ds = open_analysis(analyses_store, run_id)
    settings_attrs = ds.attrs["settings"]
    assert (settings_attrs["block"], settings_attrs["min_lag"], settings_attrs["segment"]) == (
        10,
        10,
        2,
    )
    assert ds.attrs["n_items"] == (N_TR - 2 * settings.resolved_trim) // 2
    language = ds.sel(roi_group="late-language")
    assert int(language["rho_mean"].idxmax()) == PLANTED_TEXT_LAYER
    assert float(language["p_fwe"].sel(layer=PLANTED_TEXT_LAYER)) == pytest.approx(1 / 100)
    assert float(language["rho_mean"].sel(layer=PLANTED_TEXT_LAYER)) > 0.1
    # the text latent does not drive auditory cortex
    assert float(ds["rho_mean"].sel(roi_group="auditory").max()) < 0.05


def test_partial_rsa_given_the_planted_layer_removes_it(analyses_store, settings):
    run_id = run_rsa(
        analyses_store,
        "gpt2",
        layers=[1, 2, 3],
        roi_groups=["late-language"],
        partial="gpt2/ctx20/2",
        n_perm=19,
        settings=settings,
    )
    ds = open_analysis(analyses_store, run_id)
    assert ds.attrs["request"]["partial"] == "gpt2/ctx20/layer2"
    plain = ds["rho_mean"].sel(roi_group="late-language")
    partial = ds["rho_partial_mean"].sel(roi_group="late-language")
    # a layer given itself has no partial correlation; its neighbours keep little
    assert np.isnan(partial.sel(layer=2)) and float(plain.sel(layer=2)) > 0.1
    assert np.isnan(ds["p_partial"].sel(roi_group="late-language", layer=2))
    assert float(partial.sel(layer=1)) < 0.5 * float(plain.sel(layer=1))
    assert {"p_partial", "p_partial_fwe", "rho_partial"} <= set(ds.data_vars)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"compare": "kendall", "partial": "spectral"}, "`partial` needs compare='spearman'"),
        ({"distance": "manhattan"}, "distance='manhattan'"),
        ({"subset": "train"}, "subset='train'"),
        ({"segment": 500}, "segment=500 leaves 1 segments"),
        ({"roi_groups": ["middle-frontal"]}, "'middle-frontal': 55b match no ROI"),
    ],
)
def test_bad_requests_are_named(analyses_store, settings, options, message):
    with pytest.raises(InputError, match=message):
        run_rsa(analyses_store, "gpt2", n_perm=0, settings=settings, **options)


def test_groups_of_two_rois_are_skipped_by_default_refused_on_request(
    analyses_store, settings, tmp_path
):
    groups = tmp_path / "groups.toml"
    groups.write_text('pair = ["V1", "V2"]\n')
    run_id = run_rsa(
        analyses_store, "gpt2", layers=[2], n_perm=0, roi_groups_file=groups, settings=settings
    )
    ds = open_analysis(analyses_store, run_id)
    assert list(ds["roi_group"].values) == ["auditory", "late-language"]
    assert ds.attrs["skipped_roi_groups"] == ["pair"]
    with pytest.raises(InputError, match="'pair' has 2 ROIs"):
        run_rsa(analyses_store, "gpt2", roi_groups=["pair"], roi_groups_file=groups, n_perm=0)
    euclidean = run_rsa(
        analyses_store,
        "gpt2",
        layers=[2],
        n_perm=0,
        roi_groups=["pair"],
        roi_groups_file=groups,
        distance="euclidean",
        settings=settings,
    )
    assert list(open_analysis(analyses_store, euclidean)["roi_group"].values) == ["pair"]
