"""Bit rot is detected, never read as data: every numeric chunk carries a zstd checksum."""

from __future__ import annotations

import numpy as np
import pytest

from featstore import store as fs
from featstore.errors import StoreError

GROUP = "features/rot/tr2"


@pytest.fixture
def store_with_features(empty_store, feature_attrs):
    hidden = np.random.default_rng(3).standard_normal((3, 37, 11)).astype(np.float32)
    fs.write_feature_set(empty_store, "rot", "tr2", hidden, attrs=feature_attrs)
    return empty_store, hidden


@pytest.mark.parametrize("offset", [0.25, 0.5, 0.9])
def test_flipped_bit_in_a_layer_is_an_error(store_with_features, offset):
    store, hidden = store_with_features
    chunk = store / GROUP / "hidden" / "c" / "1" / "0" / "0"
    raw = bytearray(chunk.read_bytes())
    raw[int(len(raw) * offset)] ^= 0x04
    chunk.write_bytes(bytes(raw))
    ds = fs.open_feature_set(store, "rot", "tr2")
    with pytest.raises(StoreError, match=rf"{GROUP}.*corrupt"), fs.reading_data(store, GROUP):
        ds.hidden.sel(layer=1).load()
    for layer in (0, 2):  # the other layers are intact and still read
        np.testing.assert_array_equal(ds.hidden.sel(layer=layer).values, hidden[layer])


def test_every_numeric_array_is_checksummed(store_with_features):
    store, _ = store_with_features
    import zarr

    group = zarr.open_group(store, path=GROUP, mode="r")
    for name, array in group.arrays():
        if array.dtype.kind in "biuf":
            codecs = [c.to_dict() for c in array.metadata.codecs]
            assert {"name": "zstd", "configuration": {"level": 3, "checksum": True}} in codecs, name
