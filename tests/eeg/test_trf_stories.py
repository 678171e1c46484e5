"""`evaluate trf --test-stories` / `--cv stories` on a 3-story collection of the synthetic
EEG study: s1 and s2 with both subjects (different noise), s3 with sub-01 only."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from featstore import store as fs
from featstore.cli.evaluate_main import app as evaluate_app
from featstore.datasets.eeg import import_eeg
from featstore.datasets.importer import import_dataset
from featstore.evaluate.eeg.trf_run import TRFSettings
from featstore.evaluate.eeg.trf_stories import run_trf_stories
from featstore.report.html import build_report
from featstore.store.stories import story_store
from tests.datasets.conftest import tree_hash
from tests.eeg.conftest import FEATURE_ATTRS, write_planted_features
from tests.eeg.synthetic import (
    NOISE_CHANNELS,
    PLANTED_CHANNELS,
    PLANTED_LAYER,
    TR,
    word_vectors,
    write_raws,
    write_story,
)

SETTINGS = TRFSettings(lags_ms=(-100.0, 600.0), alphas=(1e1, 1e2, 1e3), pca=4, cv=2)


def _invoke(*args):
    return CliRunner().invoke(evaluate_app, [str(a) for a in args])


@pytest.fixture(scope="module")
def _stories_once(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trf-stories")
    store = folder / "stories.zarr"
    align, audio, seconds = write_story(folder)
    for k, (name, n_subjects) in enumerate((("s1", 2), ("s2", 2), ("s3", 1))):
        import_dataset(store, align=align, audio=audio, tr=TR, story=name)
        target = story_store(store, name)
        write_planted_features(target)
        session = folder / name
        session.mkdir()
        raws = write_raws(session, seconds, seed=10 * (k + 1))
        import_eeg(target, [str(p) for p in raws[:n_subjects]])
    return store, folder, seconds


@pytest.fixture
def stories(_stories_once, tmp_path):
    store, folder, seconds = _stories_once
    target = tmp_path / "stories.zarr"
    shutil.copytree(store, target)
    return target, folder, seconds


def test_test_stories_recover_the_planted_lag_and_leave_out_who_lacks_the_story(stories):
    store = stories[0]
    result = _invoke(
        "trf", "-s", store, "-m", "planted:ctx8", "--lags", "-100:600", "--pca", 4,
        "--alphas", "1e1:1e3:3", "--cv", 2, "--test-stories", "s3", "--run", "across",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("results/across\n")
    assert "split test-stories" in result.stdout and "left out sub-02" in result.stdout
    ds = xr.open_zarr(store, group="results/across", consolidated=False).load()
    assert ds.attrs["split"] == "test-stories" and ds.attrs["test_stories"] == ["s3"]
    assert ds.attrs["stories"] == ["s1", "s2", "s3"]
    assert ds.attrs["subjects_left_out"] == {"s3": ["sub-02"]}
    assert ds.r_story.dims == ("layer", "story", "subject", "channel")
    assert ds.r.sizes == {"layer": 3, "subject": 2, "channel": 6}
    planted = ds.sel(layer=PLANTED_LAYER, subject="sub-01")
    assert (planted.r.sel(channel=PLANTED_CHANNELS) > 0.3).all()
    assert (np.abs(planted.r.sel(channel=NOISE_CHANNELS)) < 0.15).all()
    assert ds.r.sel(subject="sub-02").isnull().all()  # lacks s3: never scored
    np.testing.assert_allclose(planted.r, planted.r_story.sel(story="s3"), rtol=1e-6)
    peak = planted.lag_profile.sel(channel=PLANTED_CHANNELS).idxmax("lag")
    assert ((peak >= 300) & (peak <= 500)).all()
    page = build_report(store, store.parent / "out", embed=True).read_text(encoding="utf-8")
    assert 'alt="TRF r topography across layer 1"' in page
    assert "Across stories (test-stories" in page
    layer_means = ds.r_story.sel(story="s3").mean(("subject", "channel")).values
    assert all(f"{value:.3f}" in page for value in layer_means)


def test_cv_stories_predicts_every_story_once(stories):
    store = stories[0]
    run_id = run_trf_stories(store, "planted:ctx8@1", SETTINGS, test_stories=None, run_id="cv")
    ds = fs.open_group(store, f"results/{run_id}").load()
    assert ds.attrs["split"] == "cv-stories" and list(ds.story.values) == ["s1", "s2", "s3"]
    assert ds.attrs["subjects_left_out"] == {"s1": [], "s2": [], "s3": ["sub-02"]}
    r_story = ds.r_story.sel(layer=PLANTED_LAYER)
    assert r_story.sel(story="s3", subject="sub-02").isnull().all()
    scored = r_story.drop_sel(story="s3").sel(channel=PLANTED_CHANNELS)
    assert (scored > 0.3).all()
    # pooled over more samples than any one story, between the per-story values
    pooled = ds.r.sel(layer=PLANTED_LAYER, subject="sub-02")
    low, high = (
        r_story.sel(subject="sub-02").min("story"),
        r_story.sel(subject="sub-02").max("story"),
    )
    assert ((pooled >= low - 0.02) & (pooled <= high + 0.02)).all()
    # the median over folds: 3 folds for sub-01, 2 (s1, s2) for sub-02
    assert np.isin(ds.alpha.sel(subject="sub-01"), SETTINGS.alphas).all()
    pairs = [(a + b) / 2 for a in SETTINGS.alphas for b in SETTINGS.alphas]
    assert np.isin(ds.alpha.sel(subject="sub-02"), pairs).all()


@pytest.mark.parametrize(
    ("change", "culprit"),
    [({"sfreq": 50.0}, "sampling rate"), ({"n_channels": 5}, "channels")],
)
def test_mismatched_rate_or_channels_is_one_error_and_changes_nothing(
    stories, change, culprit, tmp_path
):
    store, _, seconds = stories
    sfreq = change.get("sfreq")
    raws = write_raws(tmp_path, seconds, n_channels=change.get("n_channels", 6), seed=30)
    import_eeg(story_store(store, "s3"), [str(raws[0])], sfreq=sfreq, overwrite=True)
    before = tree_hash(store)
    result = _invoke("trf", "-s", store, "-m", "planted:ctx8", "--test-stories", "s1")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert culprit in lines[0] and "'s3'" in lines[0] and "'s1'" in lines[0], lines[0]
    assert tree_hash(store) == before


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["--test-stories", "s9"], "s9"),
        (["--story", "s1", "--cv", "stories"], "--story"),
        (["--cv", "many"], "'many'"),
    ],
)
def test_bad_story_options_are_one_line(stories, args, culprit):
    store = stories[0]
    before = tree_hash(store)
    result = _invoke("trf", "-s", store, "-m", "planted:ctx8", *args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and culprit in lines[0], lines[0]
    assert tree_hash(store) == before


def test_the_test_story_teaches_nothing(stories, tmp_path):
    """Another recording and other word vectors in the test story s3 change neither the
    PCA axes, the alphas nor the weights (lag profiles) fitted on s1 and s2."""
    store, _, seconds = stories
    first = fs.open_group(
        store, f"results/{run_trf_stories(store, 'planted:ctx8', SETTINGS, test_stories=['s3'])}"
    ).load()
    s3 = story_store(store, "s3")
    import_eeg(s3, [str(write_raws(tmp_path, seconds, seed=99)[0])], overwrite=True)
    vectors = 3.0 * word_vectors()[:, ::-1] + 1.0
    hidden = fs.open_group(s3, "features/planted/ctx8")["hidden"].values
    fs.write_feature_set(
        s3, "planted", "ctx8", hidden, attrs=FEATURE_ATTRS, word_hidden=vectors, overwrite=True
    )
    second = fs.open_group(
        store, f"results/{run_trf_stories(store, 'planted:ctx8', SETTINGS, test_stories=['s3'])}"
    ).load()
    np.testing.assert_array_equal(first.alpha, second.alpha)
    np.testing.assert_allclose(first.lag_profile, second.lag_profile, rtol=1e-10)
    assert not np.allclose(first.r.sel(subject="sub-01"), second.r.sel(subject="sub-01"))
