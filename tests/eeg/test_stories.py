"""EEG in a store of stories: `--story` on `dataset import-eeg`, `evaluate trf` and
`evaluate similarity-eeg`, on a 2-story collection of the synthetic EEG study."""

from __future__ import annotations

from pathlib import Path

import pytest
import xarray as xr
from typer.testing import CliRunner

from featstore import store as fs
from featstore.cli.evaluate_main import app as evaluate_app
from featstore.cli.main import app as featstore_app
from featstore.datasets.importer import import_dataset
from featstore.store.stories import list_stories, story_path, story_store
from tests.datasets.conftest import tree_hash
from tests.eeg.conftest import write_planted_features
from tests.eeg.synthetic import (
    PLANTED_CHANNELS,
    PLANTED_LAYER,
    TR,
    write_raws,
    write_story,
)


def _invoke(app, *args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def _collection_once(tmp_path_factory):
    """Stories s1 and s2 (the synthetic story twice), word features in each, and the
    EEG files of the study (not imported)."""
    folder = tmp_path_factory.mktemp("eeg-stories")
    store = folder / "stories.zarr"
    align, audio, seconds = write_story(folder)
    for name in ("s1", "s2"):
        import_dataset(store, align=align, audio=audio, tr=TR, story=name)
        write_planted_features(story_store(store, name))
    return store, [str(p) for p in write_raws(folder, seconds)]


@pytest.fixture
def collection(_collection_once, tmp_path):
    import shutil

    store, raws = _collection_once
    target = tmp_path / "stories.zarr"
    shutil.copytree(store, target)
    return target, raws


@pytest.fixture(scope="module")
def _imported_once(_collection_once, tmp_path_factory):
    """A copy of the collection with the EEG imported into story s2 by the CLI, and the
    CLI's result."""
    import shutil

    store = tmp_path_factory.mktemp("eeg-imported") / "stories.zarr"
    shutil.copytree(_collection_once[0], store)
    raws = _collection_once[1]
    result = _invoke(
        featstore_app,
        "dataset",
        "import-eeg",
        "-s",
        store,
        "--story",
        "s2",
        "--eeg",
        raws[0],
        "--eeg",
        raws[1],
    )
    return store, result


def test_import_eeg_into_one_story(_imported_once):
    store, result = _imported_once
    assert list_stories(store) == ["s1", "s2"]
    assert result.exit_code == 0, result.output
    assert "2 subject(s) (sub-01, sub-02)" in result.stdout
    eeg = xr.open_zarr(story_path(store, "s2"), group="eeg", consolidated=False)
    assert eeg.data.dims == ("subject", "time", "channel") and eeg.attrs["complete"]
    assert not (Path(story_path(store, "s1")) / "eeg").exists()  # only the story named
    assert fs.validate(story_path(store, "s2")) == []


@pytest.fixture
def imported(_imported_once, tmp_path):
    import shutil

    target = tmp_path / "stories.zarr"
    shutil.copytree(_imported_once[0], target)
    return target


def test_trf_on_one_story(imported):
    store = imported
    result = _invoke(
        evaluate_app,
        "trf",
        "-s",
        store,
        "--story",
        "s2",
        "-m",
        "planted:ctx8",
        "--lags",
        "-100:600",
        "--pca",
        4,
        "--alphas",
        "1e1:1e3:3",
        "--cv",
        2,
        "--run",
        "trf",
    )
    assert result.exit_code == 0, result.output
    assert "stories/s2/results/trf" in result.stdout and "peak lag" in result.stdout
    ds = xr.open_zarr(story_path(store, "s2"), group="results/trf", consolidated=False)
    assert (ds.r.mean("subject").sel(layer=PLANTED_LAYER, channel=PLANTED_CHANNELS) > 0.3).all()


def test_similarity_eeg_on_one_story(imported):
    store = imported
    result = _invoke(
        evaluate_app,
        "similarity-eeg",
        "-s",
        store,
        "--story",
        "s2",
        "-m",
        "planted:ctx8",
        "--epochs",
        "-100:700",
        "--window",
        100,
        "--step",
        100,
        "--metrics",
        "rsa-spearman",
        "--n-perm",
        5,
        "--run",
        "sim",
    )
    assert result.exit_code == 0, result.output
    assert "stories/s2/results/sim" in result.stdout and "rsa-spearman" in result.stdout
    sim = fs.open_group(story_path(store, "s2"), "results/sim")
    assert sim.attrs["analysis"] == "similarity_time"


def test_evaluate_similarity_with_epochs_is_the_eeg_analysis(imported):
    # the command: `evaluate similarity … --epochs …` runs the time-resolved
    # analysis; `--model NAME --ctx N` names the same features as NAME:ctxN
    result = _invoke(evaluate_app, "similarity", "-s", imported, "--story", "s2", "-m", "planted",
                     "--ctx", 8, "--epochs", "-100:700", "--window", 100, "--step", 100,
                     "--metrics", "rsa-spearman", "--run", "sim2")  # fmt: skip
    assert result.exit_code == 0, result.output
    sim = fs.open_group(story_path(imported, "s2"), "results/sim2")
    assert sim.attrs["analysis"] == "similarity_time"
    assert list(sim["metric"].values) == ["rsa-spearman"]


def test_story_errors_are_one_line_and_change_nothing(collection):
    store, raws = collection
    before = tree_hash(store)
    for app, args, culprit in (
        (featstore_app, ["dataset", "import-eeg", "-s", store, "--eeg", raws[0]], "s1, s2"),
        (
            featstore_app,
            ["dataset", "import-eeg", "-s", store, "--story", "s9", "--eeg", raws[0]],
            "s9",
        ),
        (evaluate_app, ["trf", "-s", store, "-m", "planted:ctx8"], "s1, s2"),
        (evaluate_app, ["trf", "-s", store, "--story", "s1", "-m", "planted:ctx8"], "no eeg group"),
        (evaluate_app, ["similarity-eeg", "-s", store, "--story", "s9", "-m", "planted"], "s9"),
    ):
        result = _invoke(app, *args)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert lines[0].startswith("error: ") and culprit in lines[0], lines[0]
    assert tree_hash(store) == before


def test_dataset_import_adds_a_story_and_its_eeg_in_one_command(collection, tmp_path):
    # the first command: a story's alignment and audio, then its EEG, one call
    store, raws = collection
    align, audio, _ = write_story(tmp_path)
    result = _invoke(featstore_app, "dataset", "import", "-s", store, "--story", "s3",
                     "--align", align, "--audio", audio,
                     "--eeg", raws[0], "--eeg", raws[1])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert list_stories(store) == ["s1", "s2", "s3"]
    assert fs.root_attrs(story_path(store, "s3"))["tr_seconds"] == TR  # the store's TR
    eeg = xr.open_zarr(str(store), group="stories/s3/eeg", consolidated=False)
    assert eeg.sizes["subject"] == 2 and eeg.attrs["complete"]
    # a wrong onset event: the story stays (imported), the error says how to add the EEG
    result = _invoke(featstore_app, "dataset", "import", "-s", store, "--story", "s4",
                     "--align", align, "--audio", audio, "--tr", TR,
                     "--eeg", raws[0], "--onset-event", "nope")  # fmt: skip
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert line.startswith("error: ") and "nope" in line and "import-eeg" in line
    assert "s4" in list_stories(store) and not (Path(story_path(store, "s4")) / "eeg").exists()
    assert _invoke(featstore_app, "dataset", "import", "-s", tmp_path / "x.zarr", "--align",
                   align, "--audio", audio, "--tr", TR, "--onset", 1).exit_code == 2  # fmt: skip
    # a new store: without fMRI the TR only sets the TR grid (1 s); with fMRI it is required
    new = tmp_path / "new.zarr"
    result = _invoke(featstore_app, "dataset", "import", "-s", new, "--story", "s1", "--align",
                     align, "--audio", audio, "--eeg", raws[0])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        fs.root_attrs(story_path(new, "s1"))["tr_seconds"] == 1.0
        and "TR         1 s" in result.output
    )
    result = _invoke(featstore_app, "dataset", "import", "-s", tmp_path / "f.zarr", "--align",
                     align, "--audio", audio, "--fmri", tmp_path / "none.npz")  # fmt: skip
    assert result.exit_code == 2 and "--tr" in result.stderr and not (tmp_path / "f.zarr").exists()
