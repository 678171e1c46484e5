"""``featstore dataset import --bids``: the Narratives-style fixture end to end, and refusals."""

import shutil

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from featstore.cli.main import app
from featstore.datasets.bids import events_onset, scan_bids
from featstore.errors import InputError
from featstore.store.stories import list_stories
from tests.datasets.brain_fixtures import write_func_gii
from tests.datasets.conftest import tree_hash
from tests.fixtures.narratives import N_VERTICES, make_narratives_tree

STORIES = "pieman,tunnel,lucy"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make_narratives_tree(tmp_path_factory.mktemp("narratives"))


@pytest.fixture
def tree(made, tmp_path):
    """A private copy of the tree, for tests that break it."""
    copy = shutil.copytree(made["root"], tmp_path / "ds")
    return made | {"root": copy}


def _bids(root, store, *extra, tasks=STORIES, space="fsaverage5"):
    args = ["dataset", "import", "--bids", root, "--pipeline", "afni-nosmooth", "--space", space,
            "--tasks", tasks, "--tr", "1.5", "--store", store, *extra]  # fmt: skip
    return CliRunner().invoke(app, [str(a) for a in args])


def _one_error_line(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert all(f in lines[0] for f in fragments), lines[0]


def test_bids_import_of_the_fixture_end_to_end(made, tmp_path):
    store = tmp_path / "narr.zarr"
    result = _bids(made["root"], store)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "3 stories × 3 subjects" in out
    assert "tunnel of sub-003 (no scan" in out
    assert "3 s (events.tsv, trial_type 'pieman')" in out
    assert "0 s (events.tsv, first row)" in out
    assert list_stories(store) == ["lucy", "pieman", "tunnel"]
    dropped = made["dropped_vertices"]
    kept = {h: [v for v in range(N_VERTICES) if v not in dropped[h]] for h in "LR"}
    for story, info in made["stories"].items():
        fmri = xr.open_zarr(store, group=f"stories/{story}/fmri", consolidated=False)
        assert fmri.subject.values.tolist() == info["subjects"]
        assert fmri.sizes["tr"] == info["n_tr"]
        assert fmri.vertex.values.tolist() == kept["L"] + kept["R"]  # one axis for all stories
        assert (fmri.hemisphere.values == "L").sum() == len(kept["L"])
        assert fmri.attrs["space"] == "fsaverage5" and fmri.attrs["target_kind"] == "vertex"
        assert fmri.attrs["dropped_targets"] == sum(len(d) for d in dropped.values())
        assert np.isfinite(fmri.bold.values).all()
        stimulus = xr.open_zarr(store, group=f"stories/{story}/stimulus", consolidated=False)
        assert stimulus.attrs["stim_onset"] == info["onset"]
        assert int(stimulus.time_filled.sum()) == 1  # the not-found-in-audio word
        rate = np.bincount(stimulus.tr_index.values, minlength=info["n_tr"])[: info["n_tr"]]
        np.testing.assert_array_equal(rate, info["word_rate"])
    # the planted vertices follow the word rate, 2 TRs late
    fmri = xr.open_zarr(store, group="stories/lucy/fmri", consolidated=False)
    regressor = made["stories"]["lucy"]["regressor"]
    for h, vertices in made["planted_vertices"].items():
        for vertex in vertices:
            column = int(np.flatnonzero((fmri.vertex.values == vertex) & (fmri.hemisphere == h))[0])
            assert np.corrcoef(fmri.bold.values[0, :, column], regressor)[0, 1] > 0.6


def test_bids_volumes_with_the_trees_masks(made, tmp_path):
    store = tmp_path / "vol.zarr"
    result = _bids(made["root"], store, tasks="pieman,lucy", space="MNI152NLin2009cAsym")
    assert result.exit_code == 0, result.output
    fmri = xr.open_zarr(store, group="stories/pieman/fmri", consolidated=False)
    assert fmri.voxel.values.tolist() == np.flatnonzero(made["mask"].reshape(-1)).tolist()
    assert fmri.attrs["grid_shape"] == list(made["grid"])
    np.testing.assert_allclose(fmri.attrs["affine"], made["affine"])
    assert "desc-brain_mask.nii.gz" in fmri.attrs["mask_source"]


def test_subjects_option_and_a_story_missing_for_a_subject(made):
    found = scan_bids(made["root"], pipeline="afni-nosmooth", space="fsaverage5",
                      tasks=["tunnel", "lucy"], subjects=["sub-003", "sub-002"])  # fmt: skip
    assert found.subjects == ["sub-002", "sub-003"]
    assert {s.name: list(s.scans) for s in found.stories} == {
        "tunnel": ["sub-002"],
        "lucy": ["sub-002", "sub-003"],
    }
    assert found.missing == [("tunnel", "sub-003")]
    with pytest.raises(InputError, match=r"story 'tunnel' has an alignment .* of the subjects"):
        scan_bids(made["root"], pipeline="afni-nosmooth", space="fsaverage5", tasks=["tunnel"],
                  subjects=["sub-003"])  # fmt: skip
    with pytest.raises(InputError, match="subjects: 'sub-009' has no scan"):
        scan_bids(made["root"], pipeline="afni-nosmooth", space="fsaverage5", tasks=["lucy"],
                  subjects=["sub-009"])  # fmt: skip


def test_onset_rule_first_row_naming_the_story_else_the_first_row(tmp_path):
    events = tmp_path / "events.tsv"
    events.write_text("onset\tduration\ttrial_type\n0\t2\tnoise\n8.5\t300\tPieman_story\n")
    assert events_onset(events, "pieman") == (8.5, "trial_type 'Pieman_story'")
    assert events_onset(events, "tunnel") == (0.0, "first row")


def test_existing_story_needs_overwrite_and_overwrite_replaces_only_those(made, tmp_path):
    store = tmp_path / "narr.zarr"
    assert _bids(made["root"], store, tasks="pieman,lucy").exit_code == 0
    lucy = tree_hash(store / "stories" / "lucy")
    before = tree_hash(store)
    _one_error_line(_bids(made["root"], store, tasks="tunnel,pieman"), "story 'pieman'",
                    "already exists", "--overwrite")  # fmt: skip
    assert tree_hash(store) == before
    result = _bids(made["root"], store, "--overwrite", tasks="tunnel,pieman")
    assert result.exit_code == 0, result.output
    assert list_stories(store) == ["lucy", "pieman", "tunnel"]
    assert tree_hash(store / "stories" / "lucy") == lucy


def _break_vertex_count(tree):
    func = tree["root"] / "derivatives" / "afni-nosmooth" / "sub-002" / "func"
    bad = func / "sub-002_task-lucy_space-fsaverage5_hemi-R_desc-clean.func.gii"
    write_func_gii(bad, np.ones((46, 10_000)))
    return ["sub-002_task-lucy_space-fsaverage5_hemi-R", "hemisphere R has 10000 vertices",
            "space fsaverage5 has 10242"]  # fmt: skip


def _break_hemisphere_trs(tree):
    func = tree["root"] / "derivatives" / "afni-nosmooth" / "sub-001" / "func"
    bad = func / "sub-001_task-lucy_space-fsaverage5_hemi-R_desc-clean.func.gii"
    write_func_gii(bad, np.random.default_rng(0).standard_normal((45, N_VERTICES)), per_tr=False)
    return ["sub-001_task-lucy_space-fsaverage5_hemi-L", "has 46 TRs", "hemi-R", "has 45"]


def _break_alignment(tree):
    (tree["root"] / "stimuli" / "gentle" / "lucy" / "align.json").unlink()
    return ["story 'lucy' has fMRI scans but no word alignment"]


def _break_audio_length(tree):
    import soundfile as sf

    path = tree["root"] / "stimuli" / "lucy_audio.wav"
    sf.write(path, np.zeros(8000 * 100, dtype=np.float32), 8000)  # 100 s, not 67.5
    return ["fmri lucy:", "has 46 TRs but audio", "lucy_audio.wav", "--tr-tolerance"]


def _break_scans(tree):
    shutil.rmtree(tree["root"] / "derivatives" / "afni-nosmooth")
    (tree["root"] / "derivatives" / "afni-nosmooth" / "sub-001" / "func").mkdir(parents=True)
    return ["story 'pieman' has an alignment", "but no GIfTI scan"]


def _break_onsets(tree):
    raw = tree["root"] / "sub-002" / "func" / "sub-002_task-pieman_events.tsv"
    raw.write_text("onset\tduration\ttrial_type\n4.5\t55\tpieman\n")
    return ["sub-002_task-pieman_events.tsv", "starts at 4.5 s for sub-002", "3 s for sub-001"]


@pytest.mark.parametrize(
    "breaker",
    [
        _break_vertex_count,
        _break_hemisphere_trs,
        _break_alignment,
        _break_audio_length,
        _break_scans,
        _break_onsets,
    ],
)
def test_a_bad_story_publishes_nothing(tree, tmp_path, breaker):
    store = tmp_path / "narr.zarr"
    assert _bids(tree["root"], store, tasks="tunnel").exit_code == 0
    before = tree_hash(store)
    fragments = breaker(tree)
    _one_error_line(_bids(tree["root"], store, tasks="pieman,lucy"), *fragments)
    assert tree_hash(store) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    _one_error_line(_bids(tree["root"], tmp_path / "new.zarr", tasks="pieman,lucy"), *fragments)
    assert not (tmp_path / "new.zarr").exists()


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (
            {"tasks": "pieman,lucy,pieman"},
            ["--tasks pieman,lucy,pieman", "'pieman' is listed twice"],
        ),
        ({"tasks": "pieman,odyssey"}, ["story 'odyssey' has no GIfTI scan", "pieman, tunnel"]),
        ({"space": "fsaverage7"}, ["--space 'fsaverage7': unknown space", "fsaverage6"]),
        ({"space": "fsaverage6"}, ["story 'pieman' has an alignment", "no GIfTI scan"]),
    ],
)
def test_bad_bids_arguments_are_one_error_line(made, tmp_path, extra, fragments):
    _one_error_line(_bids(made["root"], tmp_path / "s.zarr", **extra), *fragments)
    assert not (tmp_path / "s.zarr").exists()


def test_bids_refuses_a_one_story_store(made, tmp_path):
    from featstore.datasets import example_store

    store = shutil.copytree(example_store(), tmp_path / "v1.zarr")
    before = tree_hash(store)
    _one_error_line(_bids(made["root"], store), "one-story store", "featstore store upgrade")
    assert tree_hash(store) == before


def test_bids_options_that_do_not_fit(made, tmp_path):
    store = tmp_path / "s.zarr"
    _one_error_line(_bids(made["root"], store, "--story", "x"), "--story does not go with --bids")
    args = ["dataset", "import", "--bids", made["root"], "--space", "fsaverage5", "--tasks",
            "lucy", "--tr", "1.5", "--store", store]  # fmt: skip
    result = CliRunner().invoke(app, [str(a) for a in args])
    _one_error_line(result, f"--bids {made['root']}: give --pipeline too")
    assert not store.exists()
