"""README's two commands are what a newcomer runs; CI must run the same test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text, flags=re.S)[:2]


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.+?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_opens_with_demo_and_test_commands():
    demo, tests = _readme_commands()
    assert "pip install torch==2.13.0" in demo and demo.endswith("featstore demo")
    assert "pip install torch==2.13.0" in tests and tests.endswith("python -m pytest")


def test_ci_runs_the_readme_test_command():
    _, tests = _readme_commands()
    assert tests in (ROOT / ".ci" / "run").read_text()


def test_readme_python_example_runs(tmp_path):
    # the README's plain-xarray example must name real groups: a feature set extracted as
    # `wavlm` is stored under its key, microsoft--wavlm-base-plus
    import numpy as np
    import xarray as xr

    from featstore import store as fs

    store = tmp_path / "21styear.zarr"
    fs.create_store(store, dataset="21styear", tr_seconds=1.5, n_tr=37)
    hidden = np.random.default_rng(0).standard_normal((13, 37, 8)).astype("f4")
    attrs = {
        "model_id": "microsoft/wavlm-base-plus",
        "model_alias": "wavlm",
        "revision": "main",
        "modality": "audio",
        "pooling": "mean",
        "stimulus_sha256": "0" * 64,
    }
    fs.write_feature_set(store, "microsoft--wavlm-base-plus", "tr6", hidden, attrs=attrs)
    r = xr.Dataset({"r": (("config", "subject", "roi"), np.zeros((2, 3, 5), "f4"))})
    fs.write_group(store, "results/grid-1", r)
    example = _python_blocks()[0]  # the plain-xarray one, under "A study in six commands"
    example = example.replace("stores/21styear.zarr", str(store)).replace("<run>", "grid-1")
    namespace: dict = {}
    exec(example, namespace)
    np.testing.assert_array_equal(namespace["hidden"].values, hidden)
    assert namespace["r"].dims == ("config", "subject", "roi")


def test_readme_api_example_runs_verbatim(demo_store, tmp_path, monkeypatch, capsys):
    """The "In Python" section, as written, on a copy of the demo's store."""
    import shutil

    import numpy as np

    import featstore as fs

    store, _, _ = demo_store
    shutil.copytree(store, tmp_path / "stores" / "demo.zarr")
    monkeypatch.chdir(tmp_path)
    example = _python_blocks()[1]
    assert example.startswith("import featstore as fs")
    namespace: dict = {}
    exec(example, namespace)
    run, model = namespace["run"], namespace["model"]
    assert isinstance(namespace["store"], fs.Store) and isinstance(run, fs.Run)
    assert run.configs == ["minilm/ctx16/layer2", "minilm/ctx16/layer4", "spectral/tr1/layer0"]
    assert run.r.dims == ("config", "subject", "roi")
    assert (tmp_path / "stores" / "demo-api-report" / "index.html").is_file()
    assert model.coef_.shape[:2] == (360, 4) and np.isfinite(model.alpha_).all()
    printed = capsys.readouterr().out
    assert "('config', 'subject', 'roi')" in printed and "minilm/ctx16/layer4" in printed
