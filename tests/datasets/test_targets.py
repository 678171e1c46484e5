"""Vertex and voxel targets: GIfTI, CIFTI-2 and NIfTI imported without parcellating."""

import nibabel as nib
import numpy as np
import pytest
import xarray as xr

from featstore.datasets import import_dataset
from featstore.datasets.targets import CHUNK_TARGETS, scan_targets, target_dataset
from featstore.errors import InputError
from tests.datasets.brain_fixtures import N_LEFT, N_RIGHT, write_cifti, write_func_gii, write_nifti
from tests.datasets.conftest import ALIGN_ROWS, csv_text, tree_hash, write_wav

TR, N_TR = 1.5, 7  # the conftest story spans 7 TRs of 1.5 s
SUBJECTS = ("sub-01", "sub-02", "sub-03")


@pytest.fixture
def story(tmp_path):
    (tmp_path / "align.csv").write_text(csv_text(ALIGN_ROWS))
    write_wav(tmp_path / "story.wav")
    return tmp_path


def _gifti_subjects(folder, rng, *, per_tr=True, n_left=N_LEFT, n_right=N_RIGHT, space=""):
    """Per subject (L, R) series; L vertex 0 NaN everywhere, R vertex 3 constant in sub-02,
    L vertex 5 NaN at one TR of sub-03: all three dropped for every subject."""
    data = {}
    for subject in SUBJECTS:
        left = rng.standard_normal((N_TR, n_left)).astype(np.float32)
        right = rng.standard_normal((N_TR, n_right)).astype(np.float32)
        left[:, 0] = np.nan
        if subject == "sub-02":
            right[:, 3] = 2.5
        if subject == "sub-03":
            left[4, 5] = np.nan
        name = f"{subject}_task-story{space}"
        write_func_gii(folder / f"{name}_hemi-L.func.gii", left, per_tr=per_tr)
        write_func_gii(folder / f"{name}_hemi-R.func.gii", right, per_tr=per_tr)
        data[subject] = (left, right)
    return data


def _import(story, store, **kwargs):
    return import_dataset(
        store, align=story / "align.csv", audio=story / "story.wav", tr=TR, **kwargs
    )


@pytest.mark.parametrize("per_tr", [True, False])
def test_gifti_vertices_keep_those_usable_in_every_subject(story, per_tr):
    data = _gifti_subjects(story, np.random.default_rng(1), per_tr=per_tr)
    report = _import(story, story / "s.zarr", fmri=story / "sub-*_hemi-L.func.gii", space="native")
    fmri = xr.open_zarr(story / "s.zarr", group="fmri", consolidated=False)
    kept_left = [v for v in range(N_LEFT) if v not in (0, 5)]
    kept_right = [v for v in range(N_RIGHT) if v != 3]
    assert fmri.vertex.values.tolist() == kept_left + kept_right
    assert fmri.hemisphere.values.tolist() == ["L"] * len(kept_left) + ["R"] * len(kept_right)
    assert set(fmri.roi_name.values.tolist()) == {""}
    assert fmri.vertex.dtype == np.int64
    for i, subject in enumerate(SUBJECTS):
        left, right = data[subject]
        expected = np.concatenate([left[:, kept_left], right[:, kept_right]], axis=1)
        np.testing.assert_array_equal(fmri.bold.values[i], expected)
    assert fmri.attrs["target_kind"] == "vertex" and fmri.attrs["space"] == "native"
    assert fmri.attrs["dropped_targets"] == report.dropped_targets == 3
    assert "3 dropped" in "\n".join(report.lines())


def test_bold_is_chunked_one_subject_all_trs_at_most_8192_targets(tmp_path):
    n_vertices = CHUNK_TARGETS + 1000
    rng = np.random.default_rng(2)
    for subject in SUBJECTS[:2]:
        for h in "LR":
            series = rng.standard_normal((5, n_vertices)).astype(np.float32)
            write_func_gii(tmp_path / f"{subject}_hemi-{h}.func.gii", series, per_tr=False)
    source = scan_targets(sorted(tmp_path.glob("*_hemi-L.func.gii")), kind="gifti", space="native")
    bold = target_dataset(source).bold
    assert bold.shape == (2, 5, 2 * n_vertices)
    assert bold.data.chunks == (
        (1, 1),
        (5,),
        (CHUNK_TARGETS,) * 2 + (2 * n_vertices - 2 * CHUNK_TARGETS,),
    )


def test_wrong_vertex_count_for_the_space_names_file_hemisphere_and_counts(story):
    _gifti_subjects(story, np.random.default_rng(3))
    before = tree_hash(story)
    with pytest.raises(InputError, match=r"sub-01_task-story_hemi-L.func.gii: hemisphere L has "
                       r"23 vertices but space fsaverage5 has 10242"):  # fmt: skip
        _import(story, story / "s.zarr", fmri=story / "sub-*_hemi-L.func.gii", space="fsaverage5")
    assert tree_hash(story) == before


def test_space_checks(story):
    _gifti_subjects(story, np.random.default_rng(3))
    pattern = story / "sub-*_hemi-L.func.gii"
    with pytest.raises(InputError, match="space='fsaverage7': unknown space"):
        _import(story, story / "s.zarr", fmri=pattern, space="fsaverage7")
    with pytest.raises(InputError, match="a volume space, but the fMRI files are gifti"):
        _import(story, story / "s.zarr", fmri=pattern, space="MNI152NLin6Asym")
    with pytest.raises(InputError, match="no known space in the file name; pass `space`"):
        _import(story, story / "s.zarr", fmri=pattern)
    assert not (story / "s.zarr").exists()


def test_hemispheres_with_different_tr_counts_are_refused(story):
    write_func_gii(story / "sub-01_hemi-L.func.gii", np.ones((N_TR, N_LEFT)))
    write_func_gii(story / "sub-01_hemi-R.func.gii", np.ones((N_TR - 1, N_RIGHT)))
    with pytest.raises(InputError, match=r"sub-01_hemi-L.func.gii has 7 TRs but its right "
                       r"hemisphere .*sub-01_hemi-R.func.gii has 6"):  # fmt: skip
        _import(story, story / "s.zarr", fmri=story / "sub-01_hemi-L.func.gii", space="native")


def _volumes(folder, rng, grid=(7, 8, 6), box=(slice(1, 6), slice(2, 7), slice(1, 5))):
    mask = np.zeros(grid, dtype=bool)
    mask[box] = True
    data = {}
    for subject in SUBJECTS:
        series = np.zeros((*grid, N_TR), dtype=np.float32)
        series[mask] = 500 + rng.standard_normal((int(mask.sum()), N_TR))
        if subject == "sub-02":
            constant = tuple(b.start + i for b, i in zip(box, (1, 1, 1), strict=True))
            series[constant] = 500.0  # constant in one subject: dropped
        write_nifti(folder / f"{subject}_bold.nii.gz", series)
        data[subject] = series
    write_nifti(folder / "mask.nii.gz", mask.astype(np.uint8))
    return data, mask


def test_nifti_voxels_within_a_given_mask(story):
    data, mask = _volumes(story, np.random.default_rng(4))
    _import(story, story / "s.zarr", fmri=story / "sub-*_bold.nii.gz", mask=story / "mask.nii.gz",
            space="MNI152NLin2009cAsym")  # fmt: skip
    fmri = xr.open_zarr(story / "s.zarr", group="fmri", consolidated=False)
    keep = mask.copy()
    keep[2, 3, 2] = False  # box start + 1
    flat = np.flatnonzero(keep.reshape(-1))
    assert fmri.voxel.values.tolist() == flat.tolist()
    assert set(fmri.hemisphere.values.tolist()) == {""}
    for i, subject in enumerate(SUBJECTS):
        np.testing.assert_array_equal(fmri.bold.values[i], data[subject][keep].T)
    assert fmri.attrs["target_kind"] == "voxel"
    assert fmri.attrs["grid_shape"] == [7, 8, 6]
    assert np.allclose(fmri.attrs["affine"], np.diag([2.0, 2.0, 2.0, 1.0]))
    assert fmri.attrs["mask_source"].startswith(str(story / "mask.nii.gz"))
    assert fmri.attrs["dropped_targets"] == 1


def test_nifti_voxels_without_mask_use_nilearn_on_the_first_subject(story):
    from nilearn.masking import compute_epi_mask

    box = (slice(4, 12), slice(4, 11), slice(4, 10))  # nilearn needs room to find a brain
    _, mask = _volumes(story, np.random.default_rng(5), grid=(16, 15, 14), box=box)
    _import(story, story / "s.zarr", fmri=story / "sub-*_bold.nii.gz", space="native")
    fmri = xr.open_zarr(story / "s.zarr", group="fmri", consolidated=False)
    computed = np.asarray(compute_epi_mask(str(story / "sub-01_bold.nii.gz")).dataobj) > 0
    assert computed.sum() > mask.sum()  # nilearn's mask reaches outside the box…
    expected = computed & mask  # …where every voxel is constant (zero), so dropped
    expected[5, 5, 5] = False  # box start + 1
    assert fmri.voxel.values.tolist() == np.flatnonzero(expected.reshape(-1)).tolist()
    assert fmri.attrs["mask_source"].startswith("computed with nilearn.masking.compute_epi_mask")
    assert "sub-01_bold.nii.gz" in fmri.attrs["mask_source"]


def test_nifti_without_mask_and_none_computable_is_refused(story):
    rng = np.random.default_rng(7)
    for subject in SUBJECTS:  # noise without a brain: nilearn's EPI mask is empty
        write_nifti(story / f"{subject}_bold.nii.gz", rng.standard_normal((7, 8, 6, N_TR)))
    with pytest.raises(InputError, match=r"sub-01_bold.nii.gz: no `mask` given and nilearn "
                       r"cannot compute one"):  # fmt: skip
        _import(story, story / "s.zarr", fmri=story / "sub-*_bold.nii.gz", space="native")
    assert not (story / "s.zarr").exists()


def test_cifti_keeps_cortex_vertices_and_drops_subcortical_with_a_note(story):
    rng = np.random.default_rng(6)
    n_mesh = 32_492
    vertices = {"L": np.arange(0, 32_492, 1500), "R": np.arange(7, 32_492, 2000)}
    series = {}
    for subject in SUBJECTS:
        series[subject] = {h: rng.standard_normal((N_TR, v.size)) for h, v in vertices.items()}
        path = story / f"{subject}_task-story.dtseries.nii"
        write_cifti(path, series[subject], vertices, n_mesh, tr=TR)
        _add_subcortical(path)
    report = _import(story, story / "s.zarr", fmri=story / "sub-*.dtseries.nii")
    fmri = xr.open_zarr(story / "s.zarr", group="fmri", consolidated=False)
    assert fmri.attrs["space"] == "fsLR32k"
    assert fmri.vertex.values.tolist() == vertices["L"].tolist() + vertices["R"].tolist()
    expected = np.concatenate([series["sub-02"]["L"], series["sub-02"]["R"]], axis=1)
    np.testing.assert_allclose(fmri.bold.values[1], expected, rtol=1e-6)
    assert fmri.attrs["dropped_subcortical"] == 4
    assert "4 subcortical grayordinates" in "\n".join(report.lines())


def _add_subcortical(path):
    """Append 4 grayordinates of a subcortical voxel structure to a dense series."""
    image = nib.load(path)
    time, models = image.header.get_axis(0), image.header.get_axis(1)
    voxels = np.array([[1, 1, 1], [1, 2, 1], [2, 1, 1], [2, 2, 2]])
    sub = nib.cifti2.BrainModelAxis.from_mask(
        np.isin(np.arange(27).reshape(3, 3, 3), np.ravel_multi_index(voxels.T, (3, 3, 3))),
        name="thalamus_left",
        affine=np.eye(4),
    )
    data = np.concatenate([np.asarray(image.dataobj), np.ones((time.size, 4))], axis=1)
    nib.save(nib.Cifti2Image(data.astype(np.float32), header=(time, models + sub)), path)


def test_writing_holds_one_subject_at_a_time(story, monkeypatch):
    """The second pass reads a subject only once the previous one's array is released."""
    import gc
    import weakref

    from featstore.datasets.targets import TargetSource

    _gifti_subjects(story, np.random.default_rng(8))
    read = TargetSource.read_subject
    alive_at_read, reads = [], []

    def tracked(self, index):
        gc.collect()
        alive_at_read.append(sum(ref() is not None for ref in reads))
        block = read(self, index)
        reads.append(weakref.ref(block))
        return block

    monkeypatch.setattr(TargetSource, "read_subject", tracked)
    _import(story, story / "s.zarr", fmri=story / "sub-*_hemi-L.func.gii", space="native")
    assert alive_at_read == [0, 0, 0]


def test_values_too_large_for_float32_statistics_are_refused(story):
    data = _gifti_subjects(story, np.random.default_rng(10))
    left = data["sub-02"][0].copy()
    left[3, 9] = 1e20
    write_func_gii(story / "sub-02_task-story_hemi-L.func.gii", left)
    with pytest.raises(InputError, match=r"sub-02_task-story_hemi-L.func.gii: subject 'sub-02' "
                       r"has 1 target\(s\) with values beyond ±1e\+15; first at TR 3, target 9"):  # fmt: skip
        _import(story, story / "s.zarr", fmri=story / "sub-*_hemi-L.func.gii", space="native")
