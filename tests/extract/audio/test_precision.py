"""--precision: the forward pass under autocast, recorded, and refused where it cannot run."""

from __future__ import annotations

import numpy as np
import pytest

from featstore import store as fs
from featstore.errors import InputError
from featstore.extract.run import extract


def _layer_correlations(a: np.ndarray, b: np.ndarray) -> list[float]:
    return [float(np.corrcoef(x.ravel(), y.ravel())[0, 1]) for x, y in zip(a, b, strict=True)]


@pytest.mark.parametrize("family", ["hubert", "whisper"])
def test_bfloat16_features_track_float32_and_are_recorded(tiny_models, make_store, family):
    store = make_store()
    other = make_store(name="bf16")
    extract(store, tiny_models[family], tr_wins=[2], batch_size=4)
    extract(other, tiny_models[family], tr_wins=[2], batch_size=4, precision="bfloat16")
    full = fs.open_feature_set(store, family, "tr2")
    half = fs.open_feature_set(other, family, "tr2")
    assert half["hidden"].dtype == np.float32  # stored as --dtype, whatever the arithmetic
    a, b = full["hidden"].values, half["hidden"].values
    assert np.abs(a - b).max() > 0  # the arithmetic did change
    assert min(_layer_correlations(a, b)) > 0.99
    assert half.attrs["settings"]["precision"] == "bfloat16"
    assert full.attrs["settings"]["precision"] == "float32"


def test_precisions_that_cannot_run_are_refused(tiny_models, make_store):
    store = make_store()
    with pytest.raises(InputError, match="precision=float16 needs a GPU"):
        extract(store, tiny_models["hubert"], tr_wins=[1], precision="float16", device="cpu")
    with pytest.raises(InputError, match="precision='int8': expected one of"):
        extract(store, tiny_models["hubert"], tr_wins=[1], precision="int8")
    with pytest.raises(InputError, match="precision=bfloat16: spectral has no weights"):
        extract(store, "spectral", tr_wins=[1], precision="bfloat16")
    assert not fs.group_exists(store, "features/hubert/tr1")
    assert not fs.group_exists(store, "features/spectral/tr1")
    extract(store, "spectral", tr_wins=[1], precision="float32")  # the default is fine
    assert fs.group_exists(store, "features/spectral/tr1")
