"""The docs' Python examples that read a store run as they are written.

They open ``stores/21styear.zarr``: the tests build a small store at that path (in a
temporary working directory) holding the groups and the run the examples name.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import zarr

from featstore import store as fs
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.runs.grid import run_grid
from tests.evaluate.grid.conftest import AUDIO_KEY, N_TR, TEXT_KEY, build_store

ROOT = Path(__file__).resolve().parents[1]
RUN_ID = "grid-20250101-120000"


def python_block(doc: str, containing: str) -> str:
    """The one ```python block of ``docs/<doc>`` that contains ``containing``."""
    blocks = re.findall(r"```python\n(.+?)```", (ROOT / "docs" / doc).read_text(), flags=re.S)
    (block,) = [b for b in blocks if containing in b]
    return block


@pytest.fixture
def study_store(tmp_path, monkeypatch):
    """``stores/21styear.zarr`` with gpt2/ctx200, wavlm/tr6 (10 layers) and the docs' run."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "stores" / "21styear.zarr"
    build_store(path)
    rng = np.random.default_rng(0)
    sets = ((TEXT_KEY, "ctx200", "gpt2", "text"), (AUDIO_KEY, "tr6", AUDIO_KEY, "audio"))
    for key, window, model_id, modality in sets:
        attrs = {"model_id": model_id, "revision": "test", "modality": modality,
                 "pooling": "mean", "stimulus_sha256": "a" * 64}  # fmt: skip
        hidden = rng.standard_normal((10, N_TR, 8)).astype(np.float32)
        fs.write_feature_set(path, key, window, hidden, attrs=attrs)
    run_grid(
        path,
        models=[("wavlm", ["tr6"])],
        fusions=[(("gpt2", ["ctx200"]), ("wavlm", ["tr6"]))],
        layers=[9],
        settings=EncodingSettings(pca=6, delays=(1, 2, 3), alphas=(0.1, 10.0, 1000.0), cv=3),
        run_id=RUN_ID,
    )
    return path


def test_results_example_selects_models_on_a_lazily_opened_group(study_store):
    namespace: dict = {}
    exec(python_block("evaluate.md", f"results/{RUN_ID}"), namespace)
    assert list(namespace["wavlm"].config.values) == ["wavlm/tr6/layer9"]
    assert list(namespace["fused"].config.values) == ["gpt2/ctx200+wavlm/tr6/9x9"]
    assert namespace["wavlm"].shape[0] == 1 and namespace["fused"].shape[0] == 1


def test_store_spec_example_refuses_an_incomplete_group(study_store):
    block = python_block("store-spec.md", 'attrs.get("complete")')
    exec(block, {})  # a complete group passes
    group = zarr.open_group(str(study_store), path="features/gpt2/ctx200", mode="r+")
    group.attrs["complete"] = False  # as a killed writer leaves it
    with pytest.raises(RuntimeError, match="features/gpt2/ctx200 is incomplete"):
        exec(block, {})


def test_time_coordinate_example_selects_seconds_of_a_story(tmp_path, monkeypatch):
    import shutil

    from featstore.datasets import example_store
    from featstore.store.stories import create_collection, story_path

    monkeypatch.chdir(tmp_path)
    store = create_collection("stores/narr.zarr", dataset="narr", tr_seconds=1.5)
    shutil.copytree(example_store(tmp_path / "example.zarr"), story_path(store, "pieman"))
    namespace: dict = {}
    exec(python_block("store-spec.md", "stories/pieman/fmri"), namespace)
    np.testing.assert_array_equal(namespace["window"].time.values, np.arange(20, 41) * 1.5)
