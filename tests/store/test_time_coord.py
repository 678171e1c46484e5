"""Every group with a ``tr`` dim gets a ``time`` coordinate (seconds at each TR's start)."""

from __future__ import annotations

import numpy as np
import xarray as xr
import zarr

from featstore import store as fs
from featstore.store.encoding import with_tr_time

N_TR = 37  # the empty_store fixture's n_tr (tr_seconds 1.5)


def test_feature_set_opens_in_plain_xarray_with_time_in_seconds(empty_store, feature_attrs):
    hidden = np.random.default_rng(0).standard_normal((2, N_TR, 5)).astype(np.float32)
    fs.write_feature_set(empty_store, "m", "tr1", hidden, attrs=feature_attrs)
    ds = xr.open_zarr(empty_store, group="features/m/tr1", consolidated=False)
    np.testing.assert_array_equal(ds["time"].values, np.arange(N_TR) * 1.5)
    assert ds["time"].dims == ("tr",) and ds["time"].attrs["units"] == "s"
    assert fs.validate(empty_store) == []


def test_time_follows_the_tr_coordinate_and_keeps_an_existing_time():
    ds = xr.Dataset({"x": (("tr", "roi"), np.zeros((4, 3)))}, coords={"tr": [10, 11, 12, 13]})
    np.testing.assert_array_equal(with_tr_time(ds, 2.0)["time"].values, [20.0, 22.0, 24.0, 26.0])
    timed = ds.assign_coords(time=("tr", [1.0, 2.0, 3.0, 4.0]))
    assert with_tr_time(timed, 2.0)["time"].values.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert "time" not in with_tr_time(ds, None).coords  # a store without a TR
    no_tr = xr.Dataset({"y": (("word",), np.zeros(5))})
    assert "time" not in with_tr_time(no_tr, 2.0).coords


def test_group_written_without_time_still_reads_and_validates(empty_store, feature_attrs):
    """A store written before the time coordinate existed: same reads, no new problems."""
    hidden = np.random.default_rng(1).standard_normal((2, N_TR, 3)).astype(np.float32)
    fs.write_feature_set(empty_store, "m", "tr1", hidden, attrs=feature_attrs)
    group = zarr.open_group(str(empty_store), path="features/m/tr1", mode="r+")
    del group["time"]
    ds = fs.open_feature_set(empty_store, "m", "tr1")
    assert "time" not in ds.coords and ds.hidden.shape == (2, N_TR, 3)
    assert fs.validate(empty_store) == []
