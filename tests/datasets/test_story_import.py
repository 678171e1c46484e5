"""``featstore dataset import --story``: stories one at a time into a store of stories."""

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from featstore.cli.main import app
from featstore.store.stories import list_stories
from tests.datasets.conftest import ALIGN_ROWS, bold_arrays, csv_text, tree_hash, write_wav

TR = 1.5


@pytest.fixture
def files(tmp_path):
    (tmp_path / "align.csv").write_text(csv_text(ALIGN_ROWS))
    write_wav(tmp_path / "story.wav")
    np.savez(tmp_path / "bold.npz", **bold_arrays())
    return tmp_path


def _import(files, store, *extra, tr=TR):
    args = ["dataset", "import", "--align", files / "align.csv", "--audio", files / "story.wav",
            "--fmri", files / "bold.npz", "--tr", tr, "--store", store, *extra]  # fmt: skip
    return CliRunner().invoke(app, [str(a) for a in args])


def _one_error_line(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert all(f in lines[0] for f in fragments), lines[0]


def test_stories_one_at_a_time_create_then_grow_the_store(files):
    store = files / "narr.zarr"
    first = _import(files, store, "--story", "pieman")
    assert first.exit_code == 0, first.output
    assert "story 'pieman' of dataset 'narr'" in first.stdout
    assert _import(files, store, "--story", "tunnel").exit_code == 0
    assert list_stories(store) == ["pieman", "tunnel"]
    story = xr.open_zarr(store, group="stories/tunnel/stimulus", consolidated=False)
    assert story.sizes["word"] == len(ALIGN_ROWS)
    root = xr.open_zarr(store, group="stories/tunnel", consolidated=False)
    assert root.attrs["story"] == "tunnel" and root.attrs["featstore_schema"] == 1
    bold = xr.open_zarr(store, group="stories/pieman/fmri", consolidated=False).bold
    np.testing.assert_allclose(bold.values[0], bold_arrays()["sub-01"], rtol=1e-6)
    assert not [p for p in files.iterdir() if p.name.startswith(".")]  # no staging left


def test_a_story_already_there_needs_overwrite_which_replaces_only_it(files):
    store = files / "narr.zarr"
    assert _import(files, store, "--story", "pieman").exit_code == 0
    assert _import(files, store, "--story", "tunnel").exit_code == 0
    tunnel = tree_hash(store / "stories" / "tunnel")
    before = tree_hash(store)
    _one_error_line(
        _import(files, store, "--story", "pieman"), "story 'pieman' of", "already exists",
        "--overwrite",
    )  # fmt: skip
    assert tree_hash(store) == before
    np.savez(files / "bold.npz", **{s: 2 * a for s, a in bold_arrays().items()})
    assert _import(files, store, "--story", "pieman", "--overwrite").exit_code == 0
    assert tree_hash(store / "stories" / "tunnel") == tunnel
    bold = xr.open_zarr(store, group="stories/pieman/fmri", consolidated=False).bold
    np.testing.assert_allclose(bold.values[0], 2 * bold_arrays()["sub-01"], rtol=1e-6)
    assert list_stories(store) == ["pieman", "tunnel"]


def test_a_one_story_store_is_refused_with_the_upgrade_hint(files):
    store = files / "v1.zarr"
    assert _import(files, store).exit_code == 0
    before = tree_hash(store)
    _one_error_line(
        _import(files, store, "--story", "pieman"), "one-story store", "featstore store upgrade"
    )
    assert tree_hash(store) == before


def test_bad_story_input_leaves_no_store_behind(files):
    store = files / "narr.zarr"
    _one_error_line(_import(files, store, "--story", "bad/name"), "invalid story name")
    _one_error_line(_import(files, store, "--story", "x", tr=3.0), "spans", "--tr-tolerance")
    assert not store.exists()
    assert _import(files, store, "--story", "pieman").exit_code == 0
    before = tree_hash(store)
    _one_error_line(_import(files, store, "--story", "x", tr=2.0), "has TR 1.5 s")
    assert tree_hash(store) == before


def test_a_story_of_vertex_targets(files):
    from tests.datasets.brain_fixtures import write_func_gii

    rng = np.random.default_rng(9)
    for subject in ("sub-01", "sub-02"):
        for h, n in (("L", 13), ("R", 11)):
            write_func_gii(files / f"{subject}_hemi-{h}.func.gii", rng.standard_normal((7, n)))
    store = files / "narr.zarr"
    args = ["dataset", "import", "--align", files / "align.csv", "--audio", files / "story.wav",
            "--fmri", files / "sub-*_hemi-L.func.gii", "--space", "native", "--tr", TR,
            "--store", store, "--story", "tale", "--dataset", "mine"]  # fmt: skip
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "2 subjects (sub-01, sub-02); 24 vertices in native (0 dropped" in result.stdout
    fmri = xr.open_zarr(store, group="stories/tale/fmri", consolidated=False)
    assert fmri.vertex.values.tolist() == list(range(13)) + list(range(11))
    root = xr.open_zarr(store, group="stories/tale", consolidated=False)
    assert root.attrs["dataset"] == "mine" and root.attrs["story"] == "tale"
