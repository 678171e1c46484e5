"""evaluate similarity's library side: every metric against its own function, planted layer."""

from __future__ import annotations

import numpy as np
import pytest

from featstore.errors import InputError
from featstore.evaluate.analyses.runner import load_inputs, open_analysis, select_roi_groups
from featstore.evaluate.analyses.similarity import ALL_METRICS, run_similarity
from featstore.evaluate.metrics.similarity import similarity_scores
from featstore.evaluate.runs.scheduling import run_config

from .conftest import N_SUBJECTS, PLANTED_TEXT_LAYER


def test_scores_are_the_metrics_on_the_encoding_split(analyses_store, settings):
    run_id = run_similarity(
        analyses_store, "gpt2", layers=[1, 2], roi_group="late-language", settings=settings
    )
    ds = open_analysis(analyses_store, run_id, "similarity")
    assert ds["score"].dims == ("metric", "layer", "subject")
    assert ds["score"].shape == (len(ALL_METRICS), 2, N_SUBJECTS)
    assert list(ds["metric"].values) == list(ALL_METRICS)
    assert ds.attrs["roi_group"] == "late-language" and len(ds.attrs["rois"]) == 5
    assert ds.attrs["settings"]["encoding"] == settings.to_dict()
    inputs = load_inputs(analyses_store, "gpt2", layers=[2], settings=settings)
    rois = select_roi_groups(inputs.roi_names, inputs.hemispheres)["late-language"]
    # the encoding metric is the evaluator's own r, averaged over the group's ROIs
    encoded = run_config(analyses_store, "gpt2/ctx20/layer2", settings)
    np.testing.assert_allclose(
        ds["score"].sel(metric="encoding", layer=2), encoded.r[:, rois].mean(axis=1), rtol=1e-5
    )
    # the others: similarity_scores on the layer's encoding design and the z-scored BOLD
    expected = similarity_scores(
        inputs.design(inputs.layers[0]),
        inputs.bold_zscored(3, rois),
        inputs.train_index,
        inputs.test_index,
    )
    for metric, value in expected.items():
        assert float(ds["score"].sel(metric=metric, layer=2)[3]) == pytest.approx(value, rel=1e-5)


def test_every_metric_finds_the_planted_layer(analyses_store, settings):
    run_id = run_similarity(
        analyses_store,
        "gpt2",
        layers="all",
        metrics=["encoding", "cka", "cca", "procrustes", "rsa"],
        roi_group="late-language",
        settings=settings,
        run_id="similarity-planted",
    )
    means = open_analysis(analyses_store, run_id)["score"].mean("subject")
    assert run_id == "similarity-planted"
    for metric in means["metric"].values:
        assert int(means.sel(metric=metric).idxmax()) == PLANTED_TEXT_LAYER, metric


def test_whole_brain_default_and_bad_metrics(analyses_store, settings):
    run_id = run_similarity(analyses_store, "wavlm", layers=[1], metrics=["cka"], settings=settings)
    ds = open_analysis(analyses_store, run_id)
    assert ds.attrs["roi_group"] == "all" and len(ds.attrs["rois"]) == 14
    assert list(ds["metric"].values) == ["cka"]
    with pytest.raises(InputError, match="metrics='mutual-information'"):
        run_similarity(analyses_store, "gpt2", metrics=["cka", "mutual-information"])
