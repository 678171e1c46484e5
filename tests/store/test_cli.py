"""``featstore ls``, ``info`` and ``rm`` through the real CLI app."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from featstore import store as fs
from featstore.cli._common import console
from featstore.cli.main import app

MINILM_KEY = "sentence-transformers--all-MiniLM-L6-v2"


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def alias_store(empty_store, feature_attrs):
    """A store with a feature set extracted under the alias ``minilm`` and an imported one."""
    hidden = np.random.default_rng(0).standard_normal((3, 37, 5)).astype("f4")
    attrs = {**feature_attrs, "modality": "text", "model_alias": "minilm"}
    fs.write_feature_set(empty_store, MINILM_KEY, "ctx32", hidden, attrs=attrs)
    fs.write_feature_set(empty_store, "mine", "tr2", hidden[:2], attrs=feature_attrs)
    return empty_store


def test_readers_take_the_alias_of_a_feature_key(alias_store):
    assert fs.resolve_feature_key(alias_store, "minilm") == MINILM_KEY
    assert fs.resolve_feature_key(alias_store, "mine") == "mine"
    by_alias = fs.open_feature_set(alias_store, "minilm", "ctx32", layers=[2])
    by_key = xr.open_zarr(
        str(alias_store), group=f"features/{MINILM_KEY}/ctx32", consolidated=False
    )
    np.testing.assert_array_equal(by_alias.hidden.values[0], by_key.hidden.values[2])
    assert fs.feature_set_attrs(alias_store, "minilm", "ctx32")["model_alias"] == "minilm"
    info = _invoke("info", alias_store, "features/minilm/ctx32")
    assert info.exit_code == 0, info.output
    assert "hidden" in info.stdout and '"model_alias": "minilm"' in info.stdout


def test_ls_shows_key_and_alias(alias_store, monkeypatch):
    monkeypatch.setattr(console, "width", 200)  # no folded cells
    result = _invoke("ls", alias_store)
    assert result.exit_code == 0, result.output
    assert "(alias minilm)" in result.stdout
    assert f"features/{MINILM_KEY}/ctx32" in result.stdout and "features/mine/tr2" in result.stdout
    assert result.stdout.count("(alias") == 1  # an imported set has no alias
