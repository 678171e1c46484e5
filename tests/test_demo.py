"""`featstore demo` end to end (without whisper): the planted answer must come out."""

import numpy as np
import xarray as xr

from featstore import demo
from featstore.evaluate.runs.summary import best_layers, summary_table
from featstore.store import validate


def _roi_names(ds):
    return np.array([str(name) for name in ds.roi_name.values])


def test_demo_prints_store_summary_xarray_line_and_report(demo_store):
    store, report, output = demo_store
    assert "features/sentence-transformers--all-MiniLM-L6-v2/ctx32" in output
    assert "xr.open_zarr(" in output and f"report: {report / 'index.html'}" in output
    assert (report / "index.html").is_file()
    assert validate(store) == []


def test_planted_layer_comes_out_on_top(demo_store):
    store, _, _ = demo_store
    best = best_layers(summary_table(store, [demo.RUN_ID])).set_index("model")
    assert best.loc[demo.TEXT_MODEL, "layer"] == demo.PLANTED_TEXT_LAYER
    run = xr.open_zarr(store, group=f"results/{demo.RUN_ID}", consolidated=False).load()
    planted = np.isin(_roi_names(run), demo.planted_roi_names(demo.TEXT_GROUPS))
    text = [c for c in run.config.values if str(c).startswith(f"{demo.TEXT_MODEL}/")]
    in_planted = {c: float(run.r.sel(config=c).mean("subject")[planted].mean()) for c in text}
    assert max(in_planted, key=in_planted.get).endswith(f"layer{demo.PLANTED_TEXT_LAYER}")


def test_planted_rois_top_the_ranking(demo_store):
    store, _, _ = demo_store
    run = xr.open_zarr(store, group=f"results/{demo.RUN_ID}", consolidated=False).load()
    names = _roi_names(run)
    auditory = demo.planted_roi_names(demo.AUDIO_GROUPS)
    spectral = run.r.sel(config="spectral/tr1/layer0").mean("subject").values
    assert set(names[np.argsort(-spectral)[:12]]) <= set(auditory)
    text = run.r.sel(config=f"minilm/ctx32/layer{demo.PLANTED_TEXT_LAYER}").mean("subject")
    top = names[np.argsort(-text.values)[:10]]
    assert np.isin(top, demo.planted_roi_names(demo.TEXT_GROUPS)).sum() >= 6


def test_planted_rois_are_significant_and_noise_rois_are_not(demo_store):
    store, _, _ = demo_store
    stats = xr.open_zarr(store, group=f"results/{demo.RUN_ID}/stats", consolidated=False).load()
    names = _roi_names(stats)
    text_rois = np.isin(names, demo.planted_roi_names(demo.TEXT_GROUPS))
    audio_rois = np.isin(names, demo.planted_roi_names(demo.AUDIO_GROUPS))
    noise = ~(text_rois | audio_rois)
    spectral = stats.q.sel(config="spectral/tr1/layer0").values < 0.05
    text = stats.q.sel(config=f"minilm/ctx32/layer{demo.PLANTED_TEXT_LAYER}").values < 0.05
    assert spectral[audio_rois].all() and not spectral[noise].any()
    assert text[text_rois].sum() >= 8 and not text[noise].any()


def test_noise_ceiling_is_high_where_planted(demo_store):
    store, _, _ = demo_store
    ceiling = xr.open_zarr(store, group="fmri/noise_ceiling", consolidated=False).load()
    names = _roi_names(ceiling)
    planted = np.isin(names, demo.planted_roi_names(demo.TEXT_GROUPS + demo.AUDIO_GROUPS))
    values = ceiling.ceiling.values
    assert values[planted].min() > values[~planted].max()


def test_spectral_control_leaves_the_textual_alignment(demo_store):
    # MiniLM's prediction of the language ROIs is textual: regressing the log-mel spectrum
    # out of its features barely changes it (whisper's auditory alignment, by contrast,
    # loses most of it; the demo prints that when whisper-base is installed)
    store, _, _ = demo_store
    run = demo.lowlevel_run_id(f"{demo.TEXT_MODEL}:ctx{demo.DEMO_CTX}")
    ds = xr.open_zarr(store, group=f"results/{run}", consolidated=False).load()
    drop = ds.group_drop.sel(layer=demo.PLANTED_TEXT_LAYER)
    for group in ("late-language", "inferior-frontal"):
        assert abs(float(drop.sel(roi_group=group))) < 10
