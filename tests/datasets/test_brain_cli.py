"""``featstore dataset import --fmri … --parcellate``: brain files end to end, and refusals."""

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from featstore.cli.evaluate_main import app as evaluate_app
from featstore.cli.main import app
from featstore.datasets import open_fmri
from tests.datasets.brain_fixtures import (
    LEFT_LABELS,
    LEFT_TABLE,
    N_LEFT,
    N_RIGHT,
    RIGHT_LABELS,
    RIGHT_TABLE,
    write_func_gii,
    write_label_gii,
    write_nifti,
)
from tests.datasets.conftest import ALIGN_ROWS, csv_text, tree_hash, write_wav

TR, N_TR, N_DIM, LAG = 1.0, 120, 4, 2
SUBJECTS = ("sub-01", "sub-02", "sub-03")
# (hemisphere, label key) of the parcels the features drive: L_B and R_A
PLANTED = {("L", 2), ("R", 1)}
FAST = ["--pca", "4", "--delays", "1,2,3", "--alphas", "0.1,10,1000", "--cv", "3", "--quiet"]


def _invoke(application, *args):
    return CliRunner().invoke(application, [str(a) for a in args])


@pytest.fixture
def story(tmp_path):
    """120 s of audio, features, and GIfTI fMRI whose parcels L_B and R_A follow them."""
    rng = np.random.default_rng(11)
    align = tmp_path / "align.csv"
    align.write_text(csv_text(ALIGN_ROWS))
    write_wav(tmp_path / "story.wav", seconds=N_TR * TR, rate=8000, channels=1)
    features = rng.standard_normal((N_TR, N_DIM))
    np.save(tmp_path / "layer0.npy", features)
    lagged = np.zeros_like(features)
    lagged[LAG:] = features[:-LAG]
    for subject in SUBJECTS:
        for hemisphere, labels, n in (("L", LEFT_LABELS, N_LEFT), ("R", RIGHT_LABELS, N_RIGHT)):
            series = rng.standard_normal((N_TR, n))
            for key in {k for h, k in PLANTED if h == hemisphere}:
                drive = lagged @ rng.standard_normal(N_DIM)
                series[:, labels == key] += drive[:, None]
            series[:, 0] = np.nan  # a vertex without data, left out of its parcel
            write_func_gii(tmp_path / f"{subject}_task-story_hemi-{hemisphere}.func.gii", series)
    write_label_gii(tmp_path / "toy_hemi-L.label.gii", LEFT_LABELS, LEFT_TABLE)
    write_label_gii(tmp_path / "toy_hemi-R.label.gii", RIGHT_LABELS, RIGHT_TABLE)
    return tmp_path


def _import(directory, store, *extra):
    return _invoke(
        app, "dataset", "import", "--align", directory / "align.csv", "--audio",
        directory / "story.wav", "--tr", TR, "--store", store, *extra,
    )  # fmt: skip


def test_gifti_import_then_grid_recovers_planted_parcels(story):
    store = story / "s.zarr"
    result = _import(
        story, store, "--fmri", story / "sub-*_hemi-L.func.gii",
        "--parcellate", story / "toy_hemi-L.label.gii",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 subjects (sub-01, sub-02, sub-03); 5 ROIs" in result.stdout
    fmri = open_fmri(store)
    assert fmri.roi_name.values.tolist() == ["A", "B", "C", "A", "B"]
    assert fmri.hemisphere.values.tolist() == ["L", "L", "L", "R", "R"]
    masked = int(LEFT_LABELS[0] != 0) + int(RIGHT_LABELS[0] != 0)  # vertex 0 is NaN
    assert fmri.attrs["masked_vertices"] == dict.fromkeys(SUBJECTS, masked)
    features = _invoke(
        app, "features", "import", "--store", store, "--name", "planted", "--window", "tr1",
        "--modality", "audio", story / "layer0.npy",
    )  # fmt: skip
    assert features.exit_code == 0, features.output
    grid = _invoke(evaluate_app, "grid", "-s", store, "--model", "planted:tr1", "--run", "p", *FAST)
    assert grid.exit_code == 0, grid.output
    r = xr.open_zarr(str(store), group="results/p", consolidated=False).r.load()
    mean_r = r.mean([d for d in r.dims if d != "roi"]).values
    planted = np.array(
        [(h, k) in PLANTED for h, k in [("L", 1), ("L", 2), ("L", 3), ("R", 1), ("R", 2)]]
    )
    assert mean_r[planted].min() > 0.5 > 0.2 > mean_r[~planted].max(), mean_r


def _bad_cases(story):
    pattern, atlas = story / "sub-*_hemi-L.func.gii", story / "toy_hemi-L.label.gii"
    short = story / "short"
    short.mkdir()
    write_func_gii(short / "sub-09_hemi-L.func.gii", np.ones((N_TR, N_LEFT)))
    write_func_gii(short / "sub-09_hemi-R.func.gii", np.ones((N_TR - 1, N_RIGHT)))
    rng = np.random.default_rng(0)
    noise = write_nifti(story / "sub-04_bold.nii.gz", rng.standard_normal((14, 13, 12, N_TR)))
    labels = write_nifti(story / "labels.nii.gz", np.ones((14, 13, 12), dtype=np.int16))
    empty = story / "empty"
    empty.mkdir()
    nan_b = np.ones((N_TR, N_RIGHT))
    nan_b[:, RIGHT_LABELS == 2] = np.nan
    write_func_gii(empty / "sub-08_hemi-L.func.gii", np.ones((N_TR, N_LEFT)))
    write_func_gii(empty / "sub-08_hemi-R.func.gii", nan_b)
    np.savez(story / "bold.npz", **{"sub-01": np.ones((N_TR, 5))})
    return [
        (["--fmri", pattern, "--parcellate", "hcp-mmp"], ["hemisphere L has 23 vertices", "32492"]),
        (["--fmri", pattern, "--parcellate", "yeo99"], ["--parcellate yeo99: unknown atlas"]),
        (["--fmri", pattern], ["no known space in the file name; pass --space"]),
        (
            ["--fmri", short / "sub-*_hemi-L.func.gii", "--parcellate", atlas],
            ["sub-09_hemi-L.func.gii has 120 TRs", "sub-09_hemi-R.func.gii has 119"],
        ),
        (["--fmri", noise, "--parcellate", labels], ["sub-04_bold.nii.gz", "no --mask given"]),
        (
            ["--fmri", empty / "sub-08_hemi-L.func.gii", "--parcellate", atlas],
            ["sub-08_hemi-L.func.gii", "parcel 'B'", "no finite vertex"],
        ),
        (["--fmri", story / "bold.npz", "--parcellate", atlas], ["--parcellate and --mask apply"]),
    ]


def test_bad_brain_input_is_one_error_line_and_leaves_the_store(story):
    store = story / "kept.zarr"
    assert _import(story, store).exit_code == 0
    before = tree_hash(store)
    for extra, fragments in _bad_cases(story):
        for target, flags in ((store, ["--overwrite"]), (story / "fresh.zarr", [])):
            result = _import(story, target, *extra, *flags)
            assert result.exit_code == 2, (extra, result.output)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
            assert all(f in lines[0] for f in fragments), (fragments, lines[0])
        assert tree_hash(store) == before and not (story / "fresh.zarr").exists()
