"""RSA, similarity and low-level impact refuse vertex and voxel fMRI with one line saying how."""

from __future__ import annotations

import numpy as np
import pytest

from featstore import store as fs
from featstore.errors import InputError
from featstore.evaluate.analyses import run_lowlevel, run_rsa, run_similarity
from tests.plot import vertex_synthetic as vs


@pytest.fixture
def vertex_store(tmp_path):
    path = tmp_path / "v.zarr"
    fs.create_store(path, dataset="v", tr_seconds=1.5, n_tr=30)
    vertex = np.arange(0, 10_242, 400)
    hemis = np.array(["L"] * vertex.size, dtype=object)
    bold = vs.shared_bold(3, 30, vertex.size, seed=0)
    fs.write_group(path, "fmri", vs.vertex_fmri(bold, ["a", "b", "c"], hemis, vertex, names=False))
    return path


@pytest.mark.parametrize(
    ("run", "kind"),
    [
        (run_rsa, "rsa"),
        (run_similarity, "similarity"),
        (lambda store, model: run_lowlevel(store, model, ["spectral"]), "lowlevel"),
    ],
)
def test_vertex_fmri_is_refused(vertex_store, run, kind):
    with pytest.raises(InputError) as error:
        run(vertex_store, "toy-speech:tr1")
    message = str(error.value)
    assert "\n" not in message
    assert f"evaluate {kind} compares regions" in message
    assert "vertex targets (fsaverage5)" in message
    assert "parcellate=ATLAS" in message
    assert not fs.group_exists(vertex_store, "results")
