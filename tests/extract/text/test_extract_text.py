"""extract_text end to end on a small story store."""

import logging

import numpy as np
import pytest
import xarray as xr

from featstore import store as fs
from featstore.errors import FeatstoreWarning, GroupExistsError, InputError
from featstore.extract import text as text_module
from featstore.extract.registry import resolve_model
from featstore.extract.text import extract_text, read_stimulus_words

from .conftest import N_TR, STORY, write_stimulus_store


def _open(store, group):
    return xr.open_zarr(store, group=group, consolidated=False).load()


def test_features_of_every_layer_and_their_tr_means(story_store, tiny_gpt2):
    spec = resolve_model(tiny_gpt2)
    groups = extract_text(story_store, spec, ctx=8, block_words=16, batch_size=5)
    assert groups == ["features/tiny-gpt2/ctx8"]
    ds = _open(story_store, groups[0])
    words = read_stimulus_words(story_store)
    n_words = len(words.words)
    assert ds["hidden"].dims == ("layer", "tr", "dim")
    assert ds["hidden"].shape == (3, N_TR, 32)
    assert ds["word_hidden"].shape == (3, n_words, 32)
    assert ds["hidden"].dtype == np.float32
    # missing words: zero rows, no context; the others: all layers filled in
    word_hidden = ds["word_hidden"].values
    assert not word_hidden[:, ~words.is_input].any()
    assert np.abs(word_hidden[:, words.is_input]).sum(axis=(0, 2)).min() > 0
    np.testing.assert_array_equal(ds["context_words"].values > 0, words.is_input)
    # hidden(layer, tr) = mean of the words of that TR, by a plain loop
    want = np.zeros((3, N_TR, 32))
    has = np.zeros(N_TR, bool)
    for t in range(N_TR):
        members = np.flatnonzero(words.is_input & (words.tr_index == t))
        if len(members):
            want[:, t] = word_hidden[:, members].mean(axis=1)
            has[t] = True
    np.testing.assert_allclose(ds["hidden"].values, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(ds["has_words"].values, has)
    assert not has[[0, 1, 15, 16, 17]].any()
    attrs = ds.attrs
    assert attrs["n_words_missing"] == 2
    assert attrs["n_words_outside_trs"] == int((words.is_input & (words.tr_index >= N_TR)).sum())
    assert attrs["n_words_outside_trs"] > 0
    assert attrs["n_trs_without_words"] == int((~has).sum())
    assert attrs["n_words_used"] == int(sum(words.is_input & (words.tr_index < N_TR)))
    assert attrs["ctx_words"] == 8 and attrs["pooling"] == "last"
    assert attrs["modality"] == "text" and attrs["layers"] == [0, 1, 2]
    settings = attrs["settings"]
    assert {k: settings[k] for k in ("ctx", "pool", "stride", "batch_size", "dtype")} == {
        "ctx": 8,
        "pool": "last",
        "stride": None,
        "batch_size": 5,
        "dtype": "float32",
    }
    assert settings["to_tr"] == "mean" and attrs["n_words_truncated"] == 0
    assert fs.validate(story_store) == []
    assert not fs.group_exists(story_store, "_work/features/tiny-gpt2/ctx8")


def test_blocks_and_batches_do_not_change_the_result(tmp_path, tiny_bert):
    from .conftest import STORY, write_stimulus_store

    spec = resolve_model(tiny_bert)
    one = write_stimulus_store(tmp_path / "one.zarr", STORY)
    many = write_stimulus_store(tmp_path / "many.zarr", STORY)
    extract_text(one, spec, ctx=6, pool="mean", batch_size=64)
    extract_text(many, spec, ctx=6, pool="mean", batch_size=3, block_words=7)
    a, b = _open(one, "features/tiny-bert/ctx6"), _open(many, "features/tiny-bert/ctx6")
    np.testing.assert_allclose(a["word_hidden"].values, b["word_hidden"].values, atol=1e-5)
    np.testing.assert_allclose(a["hidden"].values, b["hidden"].values, atol=1e-5)


def test_existing_feature_set_needs_overwrite(story_store, tiny_bert):
    spec = resolve_model(tiny_bert)
    extract_text(story_store, spec, ctx=3)
    with pytest.raises(GroupExistsError, match=r"features/tiny-bert/ctx3.*`overwrite`"):
        extract_text(story_store, spec, ctx=3)
    extract_text(story_store, spec, ctx=3, pool="mean", overwrite=True)
    assert fs.group_attrs(story_store, "features/tiny-bert/ctx3")["pooling"] == "mean"


def test_float16_storage_with_progress_lines(story_store, tiny_roberta, caplog):
    caplog.set_level(logging.INFO, logger="featstore")
    spec = resolve_model(tiny_roberta)
    extract_text(story_store, spec, ctx=4, dtype="float16", progress=True)
    # stderr is no terminal under pytest: progress is logged, first and last line
    lines = [r.getMessage() for r in caplog.records if r.name == "featstore.progress"]
    assert lines[0].startswith("extract tiny-roberta/ctx4: 0/")
    assert "words (100 %)" in lines[-1]
    half = _open(story_store, "features/tiny-roberta/ctx4")
    assert half["hidden"].dtype == np.float16 and half["word_hidden"].dtype == np.float16
    extract_text(story_store, spec, ctx=4, overwrite=True)
    full = _open(story_store, "features/tiny-roberta/ctx4")
    np.testing.assert_allclose(
        half["hidden"].values.astype(np.float32), full["hidden"].values, rtol=2e-3, atol=2e-3
    )


def test_bad_options_are_named(story_store, tiny_bert):
    spec = resolve_model(tiny_bert)
    for kwargs, message in [
        ({"ctx": 0}, "window size"),
        ({"ctx": 3, "pool": "max"}, "pool='max'"),
        ({"ctx": 3, "stride": 0}, "`stride`"),
        ({"ctx": 3, "dtype": "int8"}, "dtype='int8'"),
        ({"ctx": 3, "to_tr": "nearest"}, "to_tr='nearest'"),
        ({"ctx": 3, "batch_size": 0}, "`batch_size`"),
    ]:
        with pytest.raises(InputError, match=message):
            extract_text(story_store, spec, **kwargs)


def test_interrupted_extraction_resumes(tmp_path, tiny_gpt2, monkeypatch):
    from .conftest import STORY, write_stimulus_store

    spec = resolve_model(tiny_gpt2)
    whole = write_stimulus_store(tmp_path / "whole.zarr", STORY)
    cut = write_stimulus_store(tmp_path / "cut.zarr", STORY)
    options = {"ctx": 7, "block_words": 10, "batch_size": 4, "threads": 1}
    extract_text(whole, spec, **options)

    real = text_module.word_vectors
    calls = []

    def dies_on_third_block(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    def interrupted(**extra):
        calls.clear()
        monkeypatch.setattr(text_module, "word_vectors", dies_on_third_block)
        with pytest.raises(KeyboardInterrupt):
            extract_text(cut, spec, **options, **extra)
        monkeypatch.undo()

    group = "features/tiny-gpt2/ctx7"
    interrupted()
    assert not fs.is_complete(cut, group)
    # other settings (pooling) start the stage over instead of mixing blocks
    extract_text(cut, spec, **options, pool="mean")
    assert fs.group_attrs(cut, group)["resumed_blocks"] == 0
    interrupted(overwrite=True)
    extract_text(cut, spec, **options, overwrite=True)
    resumed = _open(cut, group)
    assert resumed.attrs["resumed_blocks"] == 2
    reference = _open(whole, group)
    for name in ("hidden", "word_hidden", "has_words", "context_words"):
        np.testing.assert_array_equal(resumed[name].values, reference[name].values)


def test_lanczos_to_tr_filters_the_stored_word_vectors(tmp_path, tiny_gpt2):
    from featstore.extract.resample import lanczos_resample

    from .conftest import STIM_ONSET, STORY, TR_SECONDS, story_timing, write_stimulus_store

    spec = resolve_model(tiny_gpt2)
    mean_store = write_stimulus_store(tmp_path / "mean.zarr", STORY)
    lanczos_store = write_stimulus_store(tmp_path / "lanczos.zarr", STORY)
    extract_text(mean_store, spec, ctx=5, block_words=32)
    extract_text(lanczos_store, spec, ctx=5, block_words=32, to_tr="lanczos", lanczos_window=2)
    mean, lanczos = (
        _open(mean_store, "features/tiny-gpt2/ctx5"),
        _open(lanczos_store, "features/tiny-gpt2/ctx5"),
    )
    # the word vectors are the same; only the TR resampling differs
    np.testing.assert_array_equal(mean["word_hidden"].values, lanczos["word_hidden"].values)
    np.testing.assert_array_equal(mean["has_words"].values, lanczos["has_words"].values)
    words = read_stimulus_words(lanczos_store)
    onset, offset = story_timing(len(STORY))
    times = (onset + offset) / 2 + STIM_ONSET
    np.testing.assert_allclose(words.scan_times, times)
    # ceil rule: TR k holds the words of ((k-1) TR, k TR], sampled at its centre
    tr_times = (np.arange(N_TR) - 0.5) * TR_SECONDS
    for layer in range(3):
        word_hidden = lanczos["word_hidden"].values[layer]
        want = lanczos_resample(
            word_hidden[words.is_input], times[words.is_input], tr_times, window=2
        )
        np.testing.assert_allclose(lanczos["hidden"].values[layer], want, rtol=1e-5, atol=1e-5)
    settings = lanczos.attrs["settings"]
    assert settings["to_tr"] == "lanczos"
    assert (settings["lanczos_window"], settings["lanczos_cutoff"]) == (2, 1.0)
    assert "lanczos_window" not in mean.attrs["settings"]
    with pytest.raises(InputError, match="lanczos_window=0"):
        extract_text(mean_store, spec, ctx=5, to_tr="lanczos", lanczos_window=0)


def test_bfloat16_arithmetic_tracks_float32(story_store, tiny_gpt2):
    spec = resolve_model(tiny_gpt2)
    extract_text(story_store, spec, ctx=4)
    full = _open(story_store, "features/tiny-gpt2/ctx4")
    extract_text(story_store, spec, ctx=4, precision="bfloat16", overwrite=True)
    half = _open(story_store, "features/tiny-gpt2/ctx4")
    assert half["hidden"].dtype == np.float32
    a, b = full["word_hidden"].values, half["word_hidden"].values
    assert np.abs(a - b).max() > 0
    for layer in range(a.shape[0]):
        assert np.corrcoef(a[layer].ravel(), b[layer].ravel())[0, 1] > 0.99
    assert half.attrs["settings"]["precision"] == "bfloat16"
    with pytest.raises(InputError, match="precision=float16 needs a GPU"):
        extract_text(story_store, spec, ctx=4, precision="float16", device="cpu", overwrite=True)


def test_a_one_tr_story_warns_that_every_layer_is_constant(tmp_path, tiny_gpt2):
    # the story starts after the only TR: every layer of hidden is zero, which no
    # encoding model can use; the extraction succeeds but says so, naming the layers
    store = write_stimulus_store(tmp_path / "one-tr.zarr", STORY, n_tr=1)
    spec = resolve_model(tiny_gpt2)
    with pytest.warns(
        FeatstoreWarning, match=r"ctx8: layers 0, 1, 2 \(of 3\) are constant over all 1 TRs"
    ):
        (group,) = extract_text(store, spec, ctx=8, block_words=16)
    assert fs.is_complete(store, group)
