"""Runs across stories on a tiny store of stories: 3 stories of different lengths, 3
subjects (sub-03 lacks story b), 210 vertex-like targets of which the first 30 follow
layer 1 of the features 2 TRs later."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import xarray as xr

from featstore import store as fs
from featstore.errors import FeatstoreWarning, InputError
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.encoding.story_solver import encode_stories
from featstore.evaluate.runs.grid import run_grid
from featstore.evaluate.runs.story_tasks import StoryRunStage
from featstore.store.stories import create_collection, story_path

STORIES = {"a": 64, "b": 52, "c": 46}
SUBJECTS = ("sub-01", "sub-02", "sub-03")
N_TARGETS, N_PLANTED, N_DIM, LAG = 210, 30, 7, 2
SETTINGS = EncodingSettings(pca=5, delays=(1, 2, 3), alphas=(0.1, 10.0, 1000.0), cv=3)
MODEL = [("gpt2", ["ctx20"], [1])]


def _build(path) -> dict:
    """Write the store; return its arrays (features and bold with NaN for missing)."""
    rng = np.random.default_rng(11)
    create_collection(path, dataset="tiny-narr", tr_seconds=1.5)
    weights = rng.standard_normal((N_DIM, N_PLANTED))
    arrays = {"features": {}, "bold": {}, "hidden": {}}
    for story, n_tr in STORIES.items():
        where = story_path(path, story)
        fs.create_store(
            where, dataset="tiny-narr", tr_seconds=1.5, n_tr=n_tr, extra_attrs={"story": story}
        )
        hidden = rng.standard_normal((2, n_tr, N_DIM)).astype(np.float32)
        subjects = [s for s in SUBJECTS if not (story == "b" and s == "sub-03")]
        bold = rng.standard_normal((len(subjects), n_tr, N_TARGETS)).astype(np.float32) + 3.0
        bold[:, LAG:, :N_PLANTED] += (hidden[1, :-LAG] @ weights).astype(np.float32)
        fmri = xr.Dataset(
            {"bold": (("subject", "tr", "roi"), bold)},
            coords={
                "subject": np.asarray(subjects, dtype=object),
                "roi": np.arange(N_TARGETS, dtype=np.int64),
                "roi_name": ("roi", np.asarray([""] * N_TARGETS, dtype=object)),
                "hemisphere": ("roi", np.asarray(["L"] * 100 + ["R"] * 110, dtype=object)),
                "vertex": ("roi", np.r_[np.arange(100), np.arange(110)].astype(np.int64)),
            },
            attrs={"target_kind": "vertex", "space": "fsaverage5", "source": "synthetic"},
        )
        fs.write_group(where, "fmri", fmri, encoding={"bold": {"chunks": (1, n_tr, 64)}})
        fs.write_feature_set(
            where,
            "gpt2",
            "ctx20",
            hidden,
            attrs={
                "model_id": "gpt2",
                "revision": "test",
                "modality": "text",
                "pooling": "last",
                "stimulus_sha256": story * 64,
            },
        )
        full = np.full((len(SUBJECTS), n_tr, N_TARGETS), np.nan, dtype=np.float32)
        full[[SUBJECTS.index(s) for s in subjects]] = bold
        arrays["features"][story] = [hidden[1]]
        arrays["hidden"][story] = list(hidden)
        arrays["bold"][story] = full
    return arrays


@pytest.fixture(scope="module")
def _template(tmp_path_factory):
    path = tmp_path_factory.mktemp("stories") / "narr.zarr"
    return path, _build(path)


@pytest.fixture
def narr(_template, tmp_path):
    """A fresh copy of the store and its arrays."""
    path = tmp_path / "narr.zarr"
    shutil.copytree(_template[0], path)
    return path, _template[1]


def _run(store, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FeatstoreWarning)
        run_id = run_grid(store, models=MODEL, settings=SETTINGS, **options)
    messages = [str(w.message) for w in caught if issubclass(w.category, FeatstoreWarning)]
    return run_id, fs.open_group(store, f"results/{run_id}").load(), messages


def test_test_stories_recovers_planted_targets_and_matches_in_memory(narr):
    store, arrays = narr
    _, ds, messages = _run(store, test_stories=["b"], run_id="tb", target_chunk=64)
    assert ds.r.dims == ("config", "subject", "roi") and ds.r.shape == (1, 3, N_TARGETS)
    assert ds.r_story.dims == ("config", "story", "subject", "roi")
    assert list(ds.story.values) == ["b"] and list(ds.subject.values) == list(SUBJECTS)
    assert ds.attrs["split"] == "test-stories" and ds.attrs["test_stories"] == ["b"]
    assert ds.attrs["subjects_left_out"] == {"b": ["sub-03"]}
    assert ds.attrs["target_kind"] == "vertex" and ds.attrs["space"] == "fsaverage5"
    assert (ds.vertex.values[100:] == np.arange(110)).all()
    assert any("sub-03" in m and "'b'" in m for m in messages)
    # sub-03 lacks the test story: NaN, and named (above); never silently
    assert np.isnan(ds.r.values[0, 2]).all()
    for r in ds.r.values[0, :2]:
        assert np.median(r[:N_PLANTED]) > 0.5 and np.median(np.abs(r[N_PLANTED:])) < 0.15
        assert (np.argsort(r)[-N_PLANTED:] < N_PLANTED).sum() >= 25
    _, scores = encode_stories(arrays["features"], arrays["bold"], SETTINGS, ["b"])
    np.testing.assert_allclose(ds.r.values[0], scores.r, atol=1e-5)
    np.testing.assert_allclose(ds.alpha.values[0], scores.alpha, atol=1e-5)


def test_cv_stories_and_chunk_size_do_not_change_results(narr):
    store, arrays = narr
    _, small, _ = _run(store, cv_stories=True, run_id="cv-small", target_chunk=37)
    _, whole, _ = _run(store, cv_stories=True, run_id="cv-whole", target_chunk=N_TARGETS)
    assert small.attrs["split"] == "cv-stories" and list(small.story.values) == ["a", "b", "c"]
    for name in ("r", "alpha", "r_story"):
        np.testing.assert_allclose(small[name].values, whole[name].values, atol=1e-5)
    # sub-03 is scored on a and c, pooled over them
    assert np.isnan(small.r_story.values[0, 1, 2]).all()
    assert np.isfinite(small.r.values[0, 2]).all()
    _, scores = encode_stories(arrays["features"], arrays["bold"], SETTINGS, None)
    np.testing.assert_allclose(small.r_story.values[0], scores.r_story, atol=1e-5)


def test_resume_recomputes_only_missing_chunks(narr, monkeypatch):
    from featstore.evaluate.runs import story_tasks

    store, _ = narr
    calls, killed = [], []
    real = story_tasks.solve_chunk

    def failing(*args, **kwargs):
        calls.append(args[5])
        if len(calls) == 3 and not killed:
            killed.append(True)
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr("featstore.evaluate.runs.story_grid.solve_chunk", failing)
    with pytest.raises(RuntimeError, match="killed"):
        _run(store, test_stories=["c"], target_chunk=50)
    assert len(fs.list_staged(store)) == 1 and fs.list_staged(store)[0].blocks_done == 2
    staged = set(calls[:2])
    calls.clear()
    _, resumed, _ = _run(store, test_stories=["c"], target_chunk=50)
    assert sorted(calls) == sorted(set(range(5)) - staged)  # only the unstaged chunks
    monkeypatch.undo()
    _, fresh, _ = _run(store, test_stories=["c"], target_chunk=50, run_id="fresh")
    np.testing.assert_array_equal(resumed.r.values, fresh.r.values)
    assert fs.list_staged(store) == []


def test_errors_name_the_story(narr):
    store, _ = narr
    with pytest.raises(InputError, match="test story 'z' is not among"):
        run_grid(store, models=MODEL, settings=SETTINGS, test_stories=["z"])
    with pytest.raises(InputError, match="give `test_stories` or `cv_stories`"):
        run_grid(store, models=MODEL, settings=SETTINGS)
    with pytest.raises(InputError, match="backend='jax'"):
        run_grid(store, models=MODEL, settings=SETTINGS, cv_stories=True, backend="jax")


def test_test_story_without_subjects_is_an_error(narr):
    store, _ = narr
    ds = fs.open_group(story_path(store, "c"), "fmri").load()
    fs.write_group(story_path(store, "c"), "fmri", ds.isel(subject=[]), overwrite=True)
    with pytest.raises(InputError, match="test story 'c': no subject has it"):
        run_grid(store, models=MODEL, settings=SETTINGS, test_stories=["c"])


def test_one_story_of_a_collection_runs_the_chronological_split(narr, tmp_path):
    store, _ = narr
    run_id = run_grid(store, models=MODEL, settings=SETTINGS, story="a", run_id="one")
    ds = fs.open_group(story_path(store, "a"), f"results/{run_id}")
    assert ds.r.shape == (1, 3, N_TARGETS) and "train_range" in ds.attrs
    with pytest.raises(InputError, match="holds one story"):
        run_grid(story_path(store, "a"), models=MODEL, settings=SETTINGS, test_stories=["a"])


def test_local_cluster_equals_threads(narr):
    store, _ = narr
    _, threads, _ = _run(store, test_stories=["a"], run_id="t", threads_per_worker=1)
    _, cluster, _ = _run(store, test_stories=["a"], run_id="c", workers=2, threads_per_worker=1)
    for name in ("r", "alpha", "r_story"):
        np.testing.assert_array_equal(threads[name].values, cluster[name].values)


def test_stage_blocks_map_to_config_and_chunk(narr):
    from featstore.evaluate.encoding.stories import plan_story_split
    from featstore.evaluate.runs.story_inputs import inspect_stories

    store, _ = narr
    fmri = inspect_stories(store, target_chunk=100)
    assert fmri.n_chunks == 3 and fmri.chunk(2) == slice(200, 210)
    plan = plan_story_split(fmri.has_story, fmri.stories, ["a"])
    stage = StoryRunStage(store, "x", 2, plan, fmri, {"k": 1})
    assert stage.task(1, 2) == 5 and stage.pending()[4] == (1, 1)


def test_cli_test_stories_cv_stories_and_errors(narr):
    from typer.testing import CliRunner

    from featstore.cli.evaluate_main import app

    store, _ = narr
    common = ["grid", "-s", str(store), "--model", "gpt2:ctx20@1", "--pca", "5"]
    common += ["--delays", "1,2,3", "--alphas", "0.1,10,1000"]
    result = CliRunner().invoke(app, [*common, "--test-stories", "b", "--run", "cli-b"])
    assert result.exit_code == 0, result.output
    assert "split test-stories" in result.output and "sub-03" in result.output
    ds = fs.open_group(store, "results/cli-b")
    assert ds.attrs["settings"]["cv"] == 5 and ds.attrs["test_stories"] == ["b"]
    result = CliRunner().invoke(app, [*common, "--cv", "stories", "--run", "cli-cv"])
    assert result.exit_code == 0, result.output
    assert fs.open_group(store, "results/cli-cv").attrs["split"] == "cv-stories"
    result = CliRunner().invoke(app, [*common, "--story", "a", "--cv", "3", "--run", "one"])
    assert result.exit_code == 0, result.output
    assert fs.open_group(story_path(store, "a"), "results/one").attrs["settings"]["cv"] == 3
    result = CliRunner().invoke(app, [*common, "--cv", "many"])
    assert result.exit_code == 2 and "error: --cv 'many'" in result.output
    result = CliRunner().invoke(app, [*common, "--test-stories", "nope"])
    assert result.exit_code == 2 and "test story 'nope'" in result.output


def test_concat_and_banded_fusions_run_and_match_in_memory(narr):
    store, arrays = narr
    pair = (("gpt2", ["ctx20"], [0]), ("gpt2", ["ctx20"], [1]))
    run_id = run_grid(store, fusions=[pair], settings=SETTINGS, test_stories=["c"], run_id="f")
    ds = fs.open_group(store, f"results/{run_id}")
    assert list(ds.method.values) == ["concat"] and ds.r.shape == (1, 3, N_TARGETS)
    assert "band_alpha" not in ds
    # layer 1 carries the signal: the fused model (5 PCs of 14 dims) still finds it
    r = ds.r.values[0]
    assert np.nanmedian(r[:, :N_PLANTED]) > np.nanmedian(np.abs(r[:, N_PLANTED:])) + 0.15
    banded = EncodingSettings(**{**SETTINGS.to_dict(), "method": "banded"})
    with pytest.warns(FeatstoreWarning, match="sub-03"):
        run_grid(
            store,
            models=MODEL,
            fusions=[pair],
            settings=banded,
            cv_stories=True,
            run_id="b",
            target_chunk=64,
        )
    ds = fs.open_group(store, "results/b").load()
    assert list(ds.method.values) == ["single", "banded"]
    assert ds.band_alpha.dims == ("config", "subject", "roi", "band")
    assert list(ds.band.values) == ["a", "b"]
    assert np.isnan(ds.band_alpha.values[0]).all() and np.isnan(ds.alpha.values[1]).all()
    _, scores = encode_stories(arrays["hidden"], arrays["bold"], banded, None)
    np.testing.assert_allclose(ds.r.values[1], scores.r, atol=1e-5)
    np.testing.assert_allclose(ds.r_story.values[1], scores.r_story, atol=1e-5)
    np.testing.assert_array_equal(ds.band_alpha.values[1], scores.band_alpha)
    # a pca that leaves a space without a component: refused before any work
    one_pc = EncodingSettings(**{**banded.to_dict(), "pca": 1})
    with pytest.raises(InputError, match=r"pca=1 with method='banded'"):
        run_grid(store, fusions=[pair], settings=one_pc, test_stories=["c"], run_id="p1")
    assert fs.list_staged(store) == []
    # the planted targets follow layer 1 (band b): layer 0 is shrunk at least as much
    planted = ds.band_alpha.values[1, :, :N_PLANTED]
    assert (planted[..., 0] >= planted[..., 1]).mean() > 0.9


def test_alpha_at_grid_edge_is_warned_stored_and_printed(narr):
    from typer.testing import CliRunner

    from featstore.cli.evaluate_main import app

    store, _ = narr
    narrow = EncodingSettings(**{**SETTINGS.to_dict(), "alphas": (1e4, 1e5)})
    run_id = run_grid(store, models=MODEL, settings=narrow, test_stories=["c"], run_id="edge")
    attrs = fs.open_group(store, f"results/{run_id}").attrs
    (label,) = attrs["config_warnings"]
    (message,) = attrs["config_warnings"][label]
    assert message.startswith("the chosen alpha is the smallest of the grid (10000) for ")
    assert "subject x fold x target fits" in message and "add smaller alphas" in message
    assert f"{message} ({label})" in attrs["warnings"]
    # a fixed alpha has no grid, hence no edge
    fixed = EncodingSettings(**{**SETTINGS.to_dict(), "alpha": 10.0})
    run_grid(store, models=MODEL, settings=fixed, test_stories=["c"], run_id="fixed")
    attrs = fs.open_group(store, "results/fixed").attrs
    assert attrs["config_warnings"] == {}
    assert not any("of the grid" in m for m in attrs["warnings"])
    common = ["grid", "-s", str(store), "--model", "gpt2:ctx20@1", "--pca", "5"]
    common += ["--delays", "1,2,3", "--alphas", "1e4,1e5", "--test-stories", "c", "--run", "cli"]
    result = CliRunner().invoke(app, common)
    assert result.exit_code == 0, result.output
    assert "smallest of the grid (10000)" in " ".join(result.output.split())


def test_torch_backend_equals_numpy(narr):
    pytest.importorskip("torch")
    store, _ = narr
    pair = (("gpt2", ["ctx20"], [0]), ("gpt2", ["ctx20"], [1]))
    banded = EncodingSettings(**{**SETTINGS.to_dict(), "method": "banded"})
    for run_id, backend in (("np", "numpy"), ("pt", "torch")):
        run_grid(
            store,
            fusions=[pair],
            settings=banded,
            test_stories=["a"],
            run_id=run_id,
            backend=backend,
            device="cpu",
            target_chunk=128,
        )
    numpy_run, torch_run = (fs.open_group(store, f"results/{r}").load() for r in ("np", "pt"))
    assert torch_run.attrs["execution"]["backend"] == "torch"
    for name in ("r", "r_story", "alpha", "band_alpha"):
        np.testing.assert_allclose(torch_run[name].values, numpy_run[name].values, atol=1e-5)


def test_summary_roi_csv_per_parcel(narr, tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    from featstore.cli.evaluate_main import app

    store, _ = narr
    # parcels of 30, 30, 40 left and 55, 55 right vertices; P0 is the planted one
    index = np.repeat(np.arange(5), [30, 30, 40, 55, 55])
    parcels = np.asarray([f"P{i}" for i in index], dtype=object)
    for story in STORIES:
        fmri = fs.open_group(story_path(store, story), "fmri").load()
        fmri = fmri.assign_coords(roi_name=("roi", parcels))
        fs.write_group(story_path(store, story), "fmri", fmri, overwrite=True)
    _, ds, _ = _run(store, test_stories=["c"], run_id="vx")
    out = tmp_path / "roi.csv"
    args = ["summary", "-s", str(store), "--run", "vx", "--roi-csv", str(out)]
    result = CliRunner().invoke(app, [*args, "--parcels", "names"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, keep_default_na=False)
    assert table["roi_name"].tolist() == [f"P{i}" for i in range(5)]
    assert table["hemisphere"].tolist() == ["L", "L", "L", "R", "R"]
    r = ds.r.values[0]  # subject x vertex; the mean over a parcel's vertices, then subjects
    by_parcel = np.stack([r[:, index == i].mean(axis=1) for i in range(5)], axis=1)
    np.testing.assert_allclose(table["r"], by_parcel.mean(axis=0), atol=1e-5)
    assert table["r"].idxmax() == 0
    # without --parcels: one row per vertex; an atlas that does not exist: one error line
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0 and len(pd.read_csv(out)) == N_TARGETS
    result = CliRunner().invoke(app, [*args, "--parcels", str(tmp_path / "none.annot")])
    assert result.exit_code == 2 and result.stderr.startswith("error: "), result.output
    result = CliRunner().invoke(app, ["summary", "-s", str(store), "--parcels", "names"])
    assert result.exit_code == 2 and "give --roi-csv" in result.stderr


def test_a_feature_set_constant_in_every_story_is_excluded_not_fitted(narr):
    # the one-story rule across stories: an all-zero layer is not fitted (r NaN), named in
    # `excluded` and in a warning, and a fusion with it is excluded too; others unchanged
    store, _ = narr
    for story, n_tr in STORIES.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FeatstoreWarning)  # the writer's constant-layer note
            fs.write_feature_set(
                story_path(store, story), "zeros", "ctx20",
                np.zeros((2, n_tr, N_DIM), np.float32),
                attrs={"model_id": "zeros", "revision": "test", "modality": "text",
                       "pooling": "last", "stimulus_sha256": story * 64},
            )  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FeatstoreWarning)
        run_id = run_grid(
            store, models=[*MODEL, ("zeros", ["ctx20"], [1])], settings=SETTINGS,
            fusions=[(MODEL[0], ("zeros", ["ctx20"], [1]))], test_stories=["b"], run_id="z",
        )  # fmt: skip
    ds = fs.open_group(store, f"results/{run_id}").load()
    labels = [str(c) for c in ds.config.values]
    excluded = ds.attrs["excluded"]
    assert sorted(excluded) == sorted(label for label in labels if "zeros" in label)
    assert all("constant over the 162 TRs of 3 stories" in why for why in excluded.values())
    for label in labels:
        r = ds.r.sel(config=label).values
        assert np.isnan(r).all() == (label in excluded)
    messages = [str(w.message) for w in caught if issubclass(w.category, FeatstoreWarning)]
    assert sum("not evaluated" in m for m in messages) == 2
    for label in excluded:  # said once, and no alpha warning from fits never made
        assert [m[:14] for m in ds.attrs["config_warnings"][label]] == ["not evaluated "]
    _, alone, _ = _run(store, test_stories=["b"], run_id="alone")
    np.testing.assert_array_equal(ds.r.sel(config=labels[0]).values, alone.r.values[0])


def test_an_interrupted_run_across_stories_is_listed_with_its_chunks(narr, monkeypatch):
    from featstore.evaluate.runs import story_tasks
    from featstore.evaluate.runs.results import list_runs

    store, _ = narr
    real, calls = story_tasks.solve_chunk, []

    def failing(*args, **kwargs):
        calls.append(args[5])
        if len(calls) == 8:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr("featstore.evaluate.runs.story_grid.solve_chunk", failing)
    two_layers = [("gpt2", ["ctx20"], [0, 1])]
    with pytest.raises(RuntimeError, match="killed"):
        run_grid(store, models=two_layers, settings=SETTINGS, test_stories=["c"],
                 target_chunk=50, run_id="cut", threads_per_worker=1)  # fmt: skip
    [info] = list_runs(store)
    # 2 configs × 5 target chunks: the first config's 5 chunks and 2 of the second's
    assert (info.run_id, info.complete, info.n_done, info.n_configs) == ("cut", False, 1, 2)
    assert (info.blocks_done, info.n_blocks) == (7, 10)
    from typer.testing import CliRunner

    from featstore.cli.evaluate_main import app

    result = CliRunner().invoke(app, ["runs", "-s", str(store)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "interrupted (1/2), chunks 7/10" in result.output
