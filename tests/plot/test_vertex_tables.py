"""Tables, parcels, noise ceiling and significance of vertex runs and runs across stories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import wilcoxon

from featstore import store as fs
from featstore.errors import InputError
from featstore.evaluate.metrics.noise_ceiling import loso_isc
from featstore.evaluate.runs import ceiling as ceiling_mod
from featstore.evaluate.runs import summary, tables
from featstore.evaluate.runs.significance import run_significance, subjects_above_zero
from featstore.evaluate.runs.targets import group_by_parcels, parcel_grouping
from featstore.store.stories import story_store
from tests.plot import vertex_synthetic as vs


@pytest.fixture(scope="module")
def fs5_results():
    hemis, vertex = vs.fsaverage5_targets()
    return vs.vertex_results(hemis, vertex)


def _reference_parcel_means(ds):
    """Parcel means by pandas groupby over (hemisphere, parcel), background dropped."""
    parcel = vs.parcel_of(ds["vertex"].values)
    frame = pd.DataFrame(
        ds["r"].isel(config=0).values.T.astype(np.float64),
        index=pd.MultiIndex.from_arrays([ds["hemisphere"].values, parcel]),
    )
    frame = frame[parcel > 0]
    return frame.groupby(level=[0, 1]).mean()


def test_fsaverage5_vertices_grouped_by_annot_parcels(tmp_path, fs5_results):
    assert fs5_results.sizes["roi"] == 18_434  # 20,484 - 2,050 dropped
    annot = vs.write_annot(tmp_path)
    grouping = parcel_grouping(fs5_results, parcels=str(annot))
    grouped = group_by_parcels(fs5_results, grouping)
    labels = tables.roi_labels(grouped)
    assert sorted(labels) == sorted(f"{h}_{n}" for h in "LR" for n in vs.PARCELS[1:])
    reference = _reference_parcel_means(fs5_results)
    for i, (hemi, name) in enumerate(
        zip(grouped["hemisphere"].values, grouped["roi_name"].values, strict=True)
    ):
        expected = reference.loc[(hemi, vs.PARCELS.index(name))].to_numpy()
        np.testing.assert_allclose(grouped["r"].isel(config=0, roi=i).values, expected, rtol=1e-5)
    counts = dict(zip(labels, grouped["n_targets"].values.tolist(), strict=True))
    parcel = vs.parcel_of(fs5_results["vertex"].values)
    assert counts["L_auditory"] == int(((parcel == 1) & (fs5_results["hemisphere"] == "L")).sum())
    assert grouped.attrs["target_kind"] == "parcel"
    assert grouped.attrs["grouped_from"] == "vertex"
    top = tables.ranked_roi_table(grouped, vs.CONFIGS[0])
    assert set(top["label"].head(2)) == {"L_auditory", "R_auditory"}


def test_targets_named_by_import_group_like_the_atlas(tmp_path, fs5_results):
    hemis, vertex = vs.fsaverage5_targets()
    named = vs.vertex_results(hemis, vertex, names=True)
    by_names = group_by_parcels(named, parcel_grouping(named))
    by_atlas = group_by_parcels(
        fs5_results, parcel_grouping(fs5_results, parcels=str(vs.write_annot(tmp_path)))
    )
    left = by_names.set_index(roi=["hemisphere", "roi_name"]).sortby("roi")
    right = by_atlas.set_index(roi=["hemisphere", "roi_name"])
    np.testing.assert_allclose(left["r"].values, right["r"].sel(roi=left["roi"].values).values)


def test_unnamed_vertices_without_atlas_are_refused(fs5_results):
    with pytest.raises(InputError, match=r"18434 vertex targets \(fsaverage5\).*parcels=ATLAS"):
        parcel_grouping(fs5_results)


def test_atlas_of_another_mesh_is_refused(tmp_path, fs5_results):
    bigger = fs5_results.assign_coords(vertex=fs5_results["vertex"] * 4)
    with pytest.raises(InputError, match="labels 10242 vertices per hemisphere"):
        parcel_grouping(bigger, parcels=str(vs.write_annot(tmp_path)))


def test_summary_and_roi_table_of_a_vertex_run(tmp_path, fs5_results):
    path = tmp_path / "v.zarr"
    fs.create_store(path, dataset="v", tr_seconds=1.5, n_tr=30)
    fs.write_group(path, fs.result_group("vertex-run"), fs5_results)
    table = summary.summary_table(path)
    expected = np.nanmean(fs5_results["r"].values.astype(np.float64), axis=2)
    np.testing.assert_allclose(table["mean"], expected.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(table["std"], expected.std(axis=1), rtol=1e-6)
    (result_set,) = tables.load_result_sets(path)
    rois = tables.ranked_roi_table(result_set.results, vs.CONFIGS[0])
    assert len(rois) == 18_434
    assert rois["label"].iloc[0].startswith(("L_v", "R_v"))
    planted = vs.parcel_of(fs5_results["vertex"].values) == 1
    assert set(rois["roi"].head(100)) <= set(np.flatnonzero(planted))


@pytest.fixture
def collection(tmp_path):
    return vs.make_collection(tmp_path / "narr.zarr")


def test_cross_story_tables(collection):
    table = summary.summary_table(collection)
    assert table["config"].tolist() == list(vs.CONFIGS)
    ds = fs.open_group(collection, fs.result_group("cross-test")).load()
    stories = summary.story_summary(ds)
    assert stories["story"].tolist() == ["pieman", "tunnel"] * 3
    assert stories.set_index(["config", "story"]).loc[(vs.CONFIGS[0], "tunnel"), "n_subjects"] == 3
    per_subject = np.nanmean(ds["r_story"].values[0, 1, :3].astype(np.float64), axis=1)
    row = stories.set_index(["config", "story"]).loc[(vs.CONFIGS[0], "tunnel")]
    assert row["mean"] == pytest.approx(per_subject.mean())
    (result_set,) = tables.load_result_sets(collection)
    assert result_set.results.attrs["split"] == "test-stories"
    rois = tables.ranked_roi_table(result_set.results, vs.CONFIGS[0])
    expected = np.nanmean(ds["r_story"].values[0, 0].astype(np.float64), axis=0)
    np.testing.assert_allclose(rois.sort_values("roi")["r_pieman"], expected, rtol=1e-6)
    assert {"r_pieman", "r_tunnel"} <= set(rois.columns)


def test_story_ceilings_pooled_by_trs(collection, monkeypatch):
    monkeypatch.setattr(ceiling_mod, "TARGET_CHUNK", 16)  # 74 targets: 5 chunks
    written = ceiling_mod.write_collection_ceiling(collection, run_id="cross-test")
    assert written.attrs["stories"] == ["pieman", "tunnel"]
    trim = written.attrs["trim"]
    weighted, weights = 0.0, 0.0
    for k, story in enumerate(["pieman", "tunnel"]):
        bold = fs.open_group(story_store(collection, story), "fmri")["bold"].values
        isc = loso_isc(bold[:, trim : bold.shape[1] - trim].astype(np.float64))
        np.testing.assert_allclose(written["ceiling_story"][k], isc.mean(axis=0), rtol=1e-5)
        n = bold.shape[1] - 2 * trim
        full = np.zeros((4, isc.shape[1]))
        full[: isc.shape[0]] = isc
        weighted = weighted + full * n
        weights = weights + np.where(np.arange(4) < isc.shape[0], n, 0)[:, None]
    pooled = weighted / weights
    np.testing.assert_allclose(written["per_subject"], pooled, rtol=1e-5)
    np.testing.assert_allclose(written["ceiling"], pooled.mean(axis=0), rtol=1e-5)
    stored = fs.open_group(collection, ceiling_mod.COLLECTION_CEILING_GROUP)
    assert stored["ceiling"].sizes["roi"] == 74
    assert (
        ceiling_mod.collection_ceiling_for(
            collection, written.attrs["source"] | {"test_stories": ["pieman", "tunnel"]}
        )
        is not None
    )


def test_story_with_other_targets_is_refused(collection):
    fmri = fs.open_group(story_store(collection, "tunnel"), "fmri").load()
    fs.write_group(
        story_store(collection, "tunnel"),
        "fmri",
        fmri.assign_coords(vertex=fmri["vertex"] + 1),
        overwrite=True,
    )
    with pytest.raises(InputError, match="story 'tunnel' has other targets \\(vertex\\)"):
        ceiling_mod.compute_story_ceilings(collection, trim=2)


def test_subjects_above_zero_matches_scipy_per_column():
    rng = np.random.default_rng(3)
    r = 0.05 + 0.1 * rng.standard_normal((7, 40))
    r[6, :] = np.nan  # a subject without the story
    r[0, :5] = np.nan  # and a few missing values
    p = subjects_above_zero(r)
    for column in range(r.shape[1]):
        values = r[:, column][np.isfinite(r[:, column])]
        expected = wilcoxon(values, alternative="greater").pvalue
        assert p[column] == pytest.approx(expected)


def test_significance_of_a_cross_story_run_is_a_subject_test(collection):
    stats = run_significance(collection, "cross-test", [vs.CONFIGS[0]])
    assert str(stats["perm_method"].values[0]) == "wilcoxon-subjects"
    assert "Wilcoxon" in stats.attrs["statistic"]
    r = fs.open_group(collection, fs.result_group("cross-test"))["r"].values[0]
    np.testing.assert_allclose(stats["p"].values[0], subjects_above_zero(r))
    np.testing.assert_allclose(stats["r_mean"].values[0], r.mean(axis=0), rtol=1e-6)
    assert "vertex" in stats.coords


def test_fs_lr_vertices_default_to_hcp_mmp_parcels():
    from featstore.datasets.parcellate import load_atlas

    vertex = np.concatenate([np.arange(32_492), np.arange(32_492)])
    hemis = np.repeat(np.array(["L", "R"], dtype=object), 32_492)
    ds = xr.Dataset(
        {"r": (("subject", "roi"), np.arange(vertex.size, dtype=np.float32)[None, :])},
        coords={
            "roi": np.arange(vertex.size),
            "hemisphere": ("roi", hemis),
            "vertex": ("roi", vertex),
        },
        attrs={"target_kind": "vertex", "space": "fsLR32k"},
    )
    grouping = parcel_grouping(ds)
    assert grouping.atlas == "HCP-MMP1.0"
    grouped = group_by_parcels(ds, grouping)
    assert grouped.sizes["roi"] == 360
    atlas = load_atlas("hcp-mmp")
    position = tables.roi_labels(grouped).index("L_A1")
    key = next(k for h, k, n in atlas.parcels if (h, n) == ("L", "A1"))
    members = np.flatnonzero(atlas.labels["L"] == key)
    assert grouped["r"].values[0, position] == pytest.approx(members.mean(), rel=1e-6)
    assert (grouping.index[:32_492] == -1).sum() > 2_000  # the medial wall


def test_voxels_grouped_by_a_nifti_label_image(tmp_path):
    import nibabel as nib

    shape = (4, 5, 6)
    labels = np.zeros(shape, dtype=np.int16)
    labels[:2] = 3
    labels[2:, :2] = 7
    nib.save(nib.Nifti1Image(labels, np.eye(4)), tmp_path / "atlas.nii.gz")
    (tmp_path / "atlas.tsv").write_text("index\tname\n3\tL_front\n7\tback\n")
    voxel = np.arange(0, labels.size, 2)
    r = np.linspace(0, 1, voxel.size)[None, :]
    ds = xr.Dataset(
        {"r": (("subject", "roi"), r)},
        coords={"roi": np.arange(voxel.size), "voxel": ("roi", voxel)},
        attrs={"target_kind": "voxel", "grid_shape": list(shape), "affine": np.eye(4).tolist()},
    )
    grouped = group_by_parcels(ds, parcel_grouping(ds, parcels=str(tmp_path / "atlas.nii.gz")))
    assert tables.roi_labels(grouped) == ["L_front", "back"]
    flat = labels.ravel()[voxel]
    np.testing.assert_allclose(
        grouped["r"].values[0], [r[0, flat == 3].mean(), r[0, flat == 7].mean()]
    )
    with pytest.raises(
        InputError, match=r"the atlas grid \(4, 5, 6\) is not the fMRI's \(4, 5, 7\)"
    ):
        parcel_grouping(
            ds.assign_attrs(grid_shape=[4, 5, 7]), parcels=str(tmp_path / "atlas.nii.gz")
        )


def test_one_story_vertex_ceiling_is_streamed_by_target_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(ceiling_mod, "TARGET_CHUNK", 7)  # 40 targets: 6 chunks
    path = tmp_path / "v.zarr"
    fs.create_store(path, dataset="v", tr_seconds=1.5, n_tr=31)
    vertex = np.arange(40) * 3
    hemis = np.array(["L"] * 20 + ["R"] * 20, dtype=object)
    bold = vs.shared_bold(4, 31, 40, seed=5)
    fs.write_group(path, "fmri", vs.vertex_fmri(bold, list("abcd"), hemis, vertex, names=False))
    index = np.arange(20, 31)
    ds = ceiling_mod.compute_noise_ceiling(path, index)
    expected = loso_isc(bold[:, index].astype(np.float64))
    np.testing.assert_allclose(ds["per_subject"], expected, rtol=1e-5)
    np.testing.assert_allclose(ds["ceiling"], expected.mean(axis=0), rtol=1e-5)
    assert ds.attrs["target_kind"] == "vertex"
    np.testing.assert_array_equal(ds["vertex"], vertex)
