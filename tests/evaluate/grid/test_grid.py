import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from featstore import store as fs
from featstore.errors import GroupExistsError, InputError
from featstore.evaluate.encoding.pipeline import encode
from featstore.evaluate.runs.grid import run_grid, run_warnings
from featstore.evaluate.runs.labels import parse_config
from featstore.evaluate.runs.results import list_runs
from featstore.evaluate.runs.scheduling import QUIET_SCHEDULER, run_config
from tests.evaluate.grid.conftest import AUDIO_KEY, N_ROI, N_SUBJECTS, TEXT_KEY

ROOT = Path(__file__).resolve().parents[3]


def _open(store, run_id) -> xr.Dataset:
    return xr.open_zarr(str(store), group=f"results/{run_id}", consolidated=False)


def _direct(store, label, settings, **kwargs):
    """What ``encode`` gives for a config when called by hand on arrays read from the store."""
    config = parse_config(label, store)
    bold = xr.open_zarr(str(store), group="fmri", consolidated=False).bold.values
    features = [
        xr.open_zarr(str(store), group=p.group, consolidated=False).hidden.sel(layer=p.layer).values
        for p in config.parts
    ]
    if config.is_fusion:
        settings = dataclasses.replace(settings, method=config.method)
    return encode(features, bold, settings, **kwargs)


def _same(a, b):
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=0, atol=0)


def test_grid_equals_direct_encode_calls(grid_store, settings):
    run_id = run_grid(
        grid_store,
        models=[("wavlm", ["tr3"])],
        fusions=[(("gpt2", None), ("wavlm", ["tr3"]))],
        layers=[3, 4],
        settings=settings,
        run_id="direct",
    )
    assert run_id == "direct"
    ds = _open(grid_store, run_id)
    labels = list(ds.config.values)
    assert labels == [
        "wavlm/tr3/layer3",
        "wavlm/tr3/layer4",
        "gpt2/ctx20+wavlm/tr3/3x3",
        "gpt2/ctx20+wavlm/tr3/3x4",
        "gpt2/ctx20+wavlm/tr3/4x3",
        "gpt2/ctx20+wavlm/tr3/4x4",
    ]
    for label in labels:
        fusion = "+" in label
        expected = _direct(grid_store, label, settings, partition=fusion)
        row = ds.sel(config=label)
        _same(row.r, expected.r)
        _same(row.alpha, expected.alpha)
        _same(row.n_edge_alpha, expected.n_edge_alpha)
        for name in ("unique_a", "unique_b", "shared"):
            if fusion:
                _same(row[name], expected.partition[name])
            else:
                assert np.isnan(row[name].values).all()
    # the planted signal: wavlm tr3 layer 3 drives ROIs 0-2
    best = ds.r.sel(config="wavlm/tr3/layer3").mean("subject").values
    assert best[:3].mean() > 0.3 > best[5:].mean()
    assert fs.validate(grid_store) == []


def test_results_layout(grid_store, settings):
    banded = dataclasses.replace(settings, method="banded")
    run_id = run_grid(
        grid_store,
        models=[("gpt2", None)],
        fusions=[(("gpt2", None), ("wavlm", ["tr2"]))],
        layers=[4],
        settings=banded,
    )
    assert run_id.startswith("grid-")
    ds = _open(grid_store, run_id)
    assert ds.r.dims == ("config", "subject", "roi") and ds.r.dtype == np.float32
    assert ds.r.shape == (2, N_SUBJECTS, N_ROI)
    assert ds.band_alpha.dims == ("config", "subject", "roi", "band")
    assert ds.n_edge_alpha.dims == ("config", "subject")
    single, fused = ds.isel(config=0), ds.isel(config=1)
    assert str(single.config.values) == "gpt2/ctx20/layer4"
    assert str(fused.config.values) == "gpt2/ctx20+wavlm/tr2/4x4/banded"
    assert (str(single.feature.values), str(single.model.values), str(single.kind.values)) == (
        TEXT_KEY,
        "gpt2",
        "text",
    )
    assert int(single.partner_layer) == -1 and str(single.method.values) == "single"
    # a fusion config is named after both models, as in the summary and the CSV
    assert (str(fused.model.values), str(fused.feature.values)) == ("gpt2+wavlm", TEXT_KEY)
    assert (str(fused.partner.values), str(fused.partner_model.values)) == (AUDIO_KEY, "wavlm")
    assert (str(fused.partner_window.values), int(fused.partner_layer)) == ("tr2", 4)
    assert (str(fused.method.values), str(fused.kind.values)) == ("banded", "fusion")
    assert int(single.n_layers) == 6
    assert np.isnan(fused.alpha.values).all() and np.isfinite(fused.band_alpha.values).all()
    assert np.isnan(single.band_alpha.values).all()
    assert list(ds.roi_name.values) == ["A1", "PBelt", "LBelt", "44", "45", "V1", "V2"]
    assert list(ds.hemisphere.values) == ["L"] * 4 + ["R"] * 3
    assert list(ds.subject.values) == ["sub-01", "sub-02", "sub-03"]
    attrs = ds.attrs
    assert attrs["complete"] is True and attrs["settings"]["method"] == "banded"
    assert attrs["settings"]["partition"] is True and attrs["settings"]["pca"] == 6
    assert set(attrs["features"]) == {"features/gpt2/ctx20", f"features/{AUDIO_KEY}/tr2"}
    assert attrs["features"]["features/gpt2/ctx20"]["model_id"] == "gpt2"
    assert len(attrs["fmri"]["fingerprint"]) == 64
    train_start, train_stop, _n_train = attrs["train_range"]
    test_start, test_stop, _n_test = attrs["test_range"]
    assert train_start == 3 and test_stop == 77 and train_stop <= test_start
    assert (attrs["n_configs"], attrs["n_computed"], attrs["n_reused"]) == (2, 2, 0)
    assert fs.validate(grid_store) == []
    assert not fs.group_exists(grid_store, f"_work/results/{run_id}")


def test_identical_configs_are_reused_not_recomputed(grid_store, settings, monkeypatch):
    first = run_grid(grid_store, models=[("wavlm", ["tr3"])], layers=[1, 3], settings=settings)
    computed = []
    import featstore.evaluate.runs.scheduling as scheduling

    original = scheduling._evaluate

    def counting(store, config, *args):
        computed.append(config.label)
        return original(store, config, *args)

    monkeypatch.setattr(scheduling, "_evaluate", counting)
    second = run_grid(
        grid_store, models=[("wavlm", ["tr3"])], layers=[3, 4], settings=settings, run_id="second"
    )
    assert computed == ["wavlm/tr3/layer4"]
    a, b = _open(grid_store, first), _open(grid_store, second)
    assert b.attrs["n_reused"] == 1 and b.attrs["n_computed"] == 1
    for name in ("r", "alpha", "n_edge_alpha"):
        _same(a[name].sel(config="wavlm/tr3/layer3"), b[name].sel(config="wavlm/tr3/layer3"))
    # other settings, or features changed since, are computed again
    computed.clear()
    run_grid(
        grid_store,
        models=[("wavlm", ["tr3"])],
        layers=[3],
        settings=dataclasses.replace(settings, alpha=10.0),
    )
    assert computed == ["wavlm/tr3/layer3"]
    computed.clear()
    fs.update_group_attrs(grid_store, f"features/{AUDIO_KEY}/tr3", {"created": "re-extracted"})
    run_grid(grid_store, models=[("wavlm", ["tr3"])], layers=[3], settings=settings)
    assert computed == ["wavlm/tr3/layer3"]
    with pytest.raises(GroupExistsError, match="results/second already exists"):
        run_grid(grid_store, models=[("wavlm", ["tr3"])], settings=settings, run_id="second")


_KILLED_GRID = """
import sys, time
import featstore.evaluate.runs.grid as grid
import featstore.evaluate.runs.scheduling as scheduling
from featstore.evaluate.encoding.settings import EncodingSettings

original = scheduling._evaluate

def slow(*args):
    time.sleep(0.4)
    return original(*args)

scheduling._evaluate = slow
grid.run_grid(
    sys.argv[1],
    models=[("wavlm", ["tr3"]), ("gpt2", None)],
    layers="all",
    settings=EncodingSettings(pca=6, delays=(1, 2, 3), alphas=(0.1, 10.0, 1000.0), cv=3),
    run_id="killed",
)
"""


def test_killed_grid_resumes(grid_store, settings):
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_KILLED_GRID), str(grid_store)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        done = 0
        while done < 1 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            try:
                done = next((r.n_done for r in list_runs(grid_store) if r.run_id == "killed"), 0)
            except Exception:  # the stage is being written right now; look again
                done = 0
        assert proc.poll() is None, "the grid finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    [info] = list_runs(grid_store)
    assert not info.complete and 1 <= info.n_done < info.n_configs == 12
    assert not fs.group_exists(grid_store, "results/killed")
    # as if the kill had hit the final write: an incomplete group does not block the resume
    fs.write_group(grid_store, "results/killed", xr.Dataset({"r": ("config", [0.0])}))
    fs.update_group_attrs(grid_store, "results/killed", {"complete": False})

    # same request, no run id: the interrupted run is found and resumed
    run_id = run_grid(
        grid_store, models=[("wavlm", ["tr3"]), ("gpt2", None)], layers="all", settings=settings
    )
    assert run_id == "killed"
    ds = _open(grid_store, run_id)
    assert ds.attrs["n_resumed"] >= 1
    assert ds.attrs["n_resumed"] + ds.attrs["n_computed"] == 12
    for label in ds.config.values:
        expected = _direct(grid_store, str(label), settings)
        _same(ds.r.sel(config=label), expected.r)
        _same(ds.alpha.sel(config=label), expected.alpha)
    assert [r.complete for r in list_runs(grid_store)] == [True]


def test_existing_scheduler_gives_identical_results(grid_store, settings):
    distributed = pytest.importorskip("distributed")
    request = {
        "models": [("wavlm", ["tr3"])],
        "fusions": [(("gpt2", None), ("wavlm", ["tr3"]))],
        "layers": [3, 4],
        "settings": settings,
    }
    local = _open(grid_store, run_grid(grid_store, run_id="local", **request))
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, scheduler_kwargs=QUIET_SCHEDULER
    ) as cluster:
        # a fresh store copy so nothing is reused from the local run
        other = grid_store.parent / "other.zarr"
        shutil.copytree(grid_store, other)
        fs.delete_group(other, "results/local")
        remote = _open(other, run_grid(other, scheduler=cluster.scheduler_address, **request))
    assert remote.attrs["n_computed"] == 6 and remote.attrs["execution"]["scheduler"]
    for name in ("r", "alpha", "unique_a", "unique_b", "shared", "n_edge_alpha"):
        _same(local[name], remote[name])
    assert list(local.config.values) == list(remote.config.values)


def test_a_scheduler_that_cannot_be_reached_leaves_no_default_client(grid_store, settings):
    distributed = pytest.importorskip("distributed")
    import dask
    import dask.array as da

    before = dask.config.get("scheduler", None)
    request = {"models": [("wavlm", ["tr3"])], "layers": [3], "settings": settings}
    for address in ("notanaddress", "tcp://127.0.0.1:1"):
        with (
            dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
            pytest.raises(InputError, match=f"scheduler={address!r}: cannot connect"),
        ):
            run_grid(grid_store, scheduler=address, **request)
        # a failed Client stayed dask's default: every later compute in the process
        # (a notebook's, the next grid's) waited on it forever
        assert dask.config.get("scheduler", None) == before
        with pytest.raises(ValueError, match="No clients found"):
            distributed.default_client()
    assert int(da.ones(3).sum().compute()) == 3
    run_id = run_grid(grid_store, run_id="after", **request)
    assert _open(grid_store, run_id).attrs["n_computed"] == 1


@pytest.mark.slow
def test_local_cluster_of_worker_processes(grid_store, settings):
    request = {"models": [("wavlm", ["tr3"])], "layers": [2, 3], "settings": settings}
    threaded = _open(grid_store, run_grid(grid_store, run_id="threaded", **request))
    other = grid_store.parent / "processes.zarr"
    shutil.copytree(grid_store, other)
    fs.delete_group(other, "results/threaded")
    # another cluster's scheduler on distributed's default HTTP port (8787) must not
    # make this one warn or fail (warnings are errors here)
    with contextlib.ExitStack() as stack:
        busy = stack.enter_context(socket.socket())
        with contextlib.suppress(OSError):  # already taken: the point holds as well
            busy.bind(("127.0.0.1", 8787))
            busy.listen()
        processes = _open(other, run_grid(other, workers=2, threads_per_worker=1, **request))
    assert processes.attrs["n_computed"] == 2
    assert processes.attrs["execution"] == {
        "workers": 2,
        "threads_per_worker": 1,
        "scheduler": None,
        "backend": "numpy",
        "device": "cpu",
    }
    for name in ("r", "alpha", "n_edge_alpha"):
        _same(threaded[name], processes[name])


def test_torch_backend_grid_matches_numpy_and_is_recorded(grid_store, settings):
    request = {"models": [("wavlm", ["tr3"])], "fusions": [(("gpt2", None), ("wavlm", ["tr3"]))]}
    request["layers"] = [3]
    numpy_run = _open(grid_store, run_grid(grid_store, settings=settings, **request))
    other = grid_store.parent / "torch.zarr"
    shutil.copytree(grid_store, other)
    fs.delete_group(other, f"results/{numpy_run.attrs['run_id']}")
    torch_run = _open(
        other, run_grid(other, settings=settings, backend="torch", device="cpu", **request)
    )
    assert torch_run.attrs["execution"]["backend"] == "torch"
    assert torch_run.attrs["n_computed"] == numpy_run.attrs["n_computed"] > 1
    np.testing.assert_allclose(torch_run["r"].values, numpy_run["r"].values, atol=1e-4)
    with pytest.raises(InputError, match="numpy runs on the CPU only"):
        run_grid(grid_store, settings=settings, device="cuda", **request)


def test_run_config_accepts_labels_and_returns_predictions(grid_store, settings):
    result = run_config(grid_store, "wavlm/tr3/3", settings, return_predictions=True)
    expected = _direct(grid_store, "wavlm/tr3/layer3", settings, return_predictions=True)
    _same(result.r, expected.r)
    assert result.predictions.shape == (N_SUBJECTS, len(result.test_index), N_ROI)
    fused = run_config(grid_store, "gpt2+wavlm/tr3/4x3", settings)
    assert fused.partition is not None
    assert run_config(grid_store, "gpt2+wavlm/tr3/4x3", settings, partition=False).partition is None


def test_constant_roi_gives_nan_and_one_warning(grid_store, settings):
    bold = xr.open_zarr(str(grid_store), group="fmri", consolidated=False).load()
    bold["bold"][1, :, 6] = 2.5
    fs.write_group(
        grid_store, "fmri", bold, overwrite=True, encoding={"bold": {"chunks": (1, 80, N_ROI)}}
    )
    run_id = run_grid(grid_store, models=[("wavlm", ["tr3"])], layers=[2, 3], settings=settings)
    ds = _open(grid_store, run_id)
    r = ds.r.values
    assert np.isnan(r[:, 1, 6]).all()
    assert np.isfinite(np.delete(r.reshape(2, -1), 1 * N_ROI + 6, axis=1)).all()
    constant = [w for w in ds.attrs["warnings"] if "constant" in w]
    # named as in the store's fmri coords: subject 'sub-02', ROI 6 named V2
    assert len(constant) == 1 and "subject 'sub-02': ROI 6 (V2)" in constant[0]
    assert constant[0].endswith("(2 configs, e.g. wavlm/tr3/layer2)")


def test_evaluation_never_imports_model_code(grid_store):
    script = textwrap.dedent(
        """
        import sys
        from featstore.cli.evaluate_main import app
        from featstore.evaluate.runs.grid import run_grid
        from featstore.evaluate.encoding.settings import EncodingSettings
        from featstore.evaluate.runs.summary import summary_table
        run_grid(
            sys.argv[1],
            models=[("wavlm", ["tr3"])],
            fusions=[(("gpt2", None), ("wavlm", ["tr3"]))],
            layers=[3],
            settings=EncodingSettings(pca=6, delays=(1, 2), alphas=(1.0, 100.0), cv=3),
        )
        summary_table(sys.argv[1])
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers"))
        print("HEAVY", heavy)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(grid_store)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "HEAVY []" in out.stdout


def test_run_warnings_list_each_message_once():
    per_config = {
        "a/tr1/layer1": ["constant", "edge 10%"],
        "a/tr1/layer2": ["constant", "edge 20%"],
        "a/tr1/layer3": ["constant", "edge 30%"],
    }
    assert run_warnings(per_config, limit=2) == [
        "constant (3 configs, e.g. a/tr1/layer1)",
        "edge 10% (a/tr1/layer1)",
        "2 more distinct warning(s) from 2 config(s); see the results attr config_warnings",
    ]
    assert run_warnings({}) == []


def test_the_cached_bold_is_read_only(grid_store):
    from featstore.evaluate.runs.inputs import load_bold

    bold = load_bold(grid_store)
    with pytest.raises(ValueError, match="read-only"):
        bold[0, 0, 0] = 1.0
    assert load_bold(grid_store) is bold  # one copy per process, shared by every config


def test_runs_count_a_config_only_once_its_block_is_marked_done(grid_store, settings, monkeypatch):
    from featstore.evaluate.runs.writing import RunStage

    real_write, calls = RunStage.write, []

    def killed_on_the_third(self, index, packed):
        calls.append(index)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_write(self, index, packed)

    monkeypatch.setattr(RunStage, "write", killed_on_the_third)
    request = {"models": [("wavlm", ["tr3"])], "layers": [1, 2, 3, 4], "settings": settings}
    with pytest.raises(KeyboardInterrupt):
        run_grid(grid_store, run_id="cut", threads_per_worker=1, **request)
    monkeypatch.undo()
    # as if the kill had landed inside the next block: its metadata row is written, its
    # done flag is not (a block's arrays are written before it is marked done)
    work = zarr.open_group(str(grid_store), path="_work/results/cut", mode="r+")
    done = work["_block_done"][:]
    assert int(done.sum()) == 2
    cut = int(np.flatnonzero(done == 0)[0])
    work["meta"][cut, :2] = np.frombuffer(b"{}", "uint8")
    [info] = list_runs(grid_store)
    assert (info.complete, info.n_done, info.n_configs) == (False, 2, 4)
    assert (info.blocks_done, info.n_blocks) == (2, 4)
    # a stage written before stages recorded their configs counts one block a config
    work.attrs.put({k: v for k, v in work.attrs.items() if k != "n_configs"})
    assert list_runs(grid_store) == [info]
    run_grid(grid_store, run_id="cut", **request)
    ds = _open(grid_store, "cut")
    assert (ds.attrs["n_resumed"], ds.attrs["n_computed"]) == (2, 2)
