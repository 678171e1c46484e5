"""The shared window loop: stored values, provenance, one read, locks, overwrite, limits."""

from __future__ import annotations

import numpy as np
import pytest

from featstore import store as fs
from featstore.errors import GroupExistsError, GroupLockedError, InputError
from featstore.extract import audio_windows, window_run
from featstore.extract.registry import ModelSpec
from featstore.extract.window_run import WindowEncoder, plan_windows, run_windows
from featstore.store import _schema as S
from featstore.store.groups import open_group

from .conftest import N_TR, SR
from .test_audio_windows import reference_window

SPEC = ModelSpec(
    name="fake",
    model_id="org/fake",
    key="org--fake",
    modality="audio",
    extractor="audio",
    family="fake",
)


def summary(windows: np.ndarray) -> np.ndarray:
    """(layer=2, batch, dim=3): sum, first, last sample; then their squares."""
    first = np.stack([windows.sum(axis=1), windows[:, 0], windows[:, -1]], axis=1)
    return np.stack([first, first**2]).astype(np.float32)


def fake_encoder(**kwargs) -> WindowEncoder:
    return WindowEncoder(
        encode=summary,
        layer_names=["a", "b"],
        dim=3,
        pooling="sum/first/last",
        settings={"kind": "fake"},
        revision="v1",
        **kwargs,
    )


def expected(audio: np.ndarray, w: int, onset_samples: int) -> np.ndarray:
    windows = []
    for t in range(N_TR):
        end = (t + 1) * 8000 - onset_samples
        windows.append(reference_window(audio, end - w * 8000, end))
    return summary(np.stack(windows))


def test_values_attrs_and_stage_cleanup(make_store):
    store = make_store(stim_onset=0.75)
    audio = open_group(store, S.STIMULUS)["audio"].values
    groups = run_windows(plan_windows(store, SPEC, [3, 1]), fake_encoder(), batch_size=3)
    assert groups == ["features/org--fake/tr1", "features/org--fake/tr3"]
    for w in (1, 3):
        ds = fs.open_feature_set(store, "org--fake", f"tr{w}")
        np.testing.assert_allclose(ds["hidden"].values, expected(audio, w, 12000), rtol=1e-5)
        attrs = ds.attrs
        assert attrs["model_id"] == "org/fake" and attrs["revision"] == "v1"
        assert attrs["modality"] == "audio" and attrs["tr_win"] == w
        assert attrs["layer_names"] == ["a", "b"] and attrs["layers"] == [0, 1]
        assert attrs["window_samples"] == w * 8000 and attrs["stim_onset"] == 0.75
        assert attrs["settings"]["kind"] == "fake"
        assert attrs["stimulus_sha256"] == fs.group_attrs(store, S.STIMULUS)["stimulus_sha256"]
        assert ds["hidden"].encoding["chunks"] == (1, N_TR, 3)
    assert not fs.group_exists(store, "_work/features/org--fake/tr1")
    assert fs.validate(store) == []


def test_a_window_longer_than_the_story_is_refused(make_store):
    store = make_store()
    assert plan_windows(store, SPEC, [N_TR]).tr_wins == (N_TR,)  # the whole story: allowed
    with pytest.raises(
        InputError,
        match=rf"^tr_wins={N_TR + 1}: longer than the story \({N_TR} TRs of 0.5 s\); expected at most {N_TR}$",
    ):
        plan_windows(store, SPEC, [1, N_TR + 1])


def test_float16_storage_with_progress_bar(make_store):
    store = make_store()
    plan = plan_windows(store, SPEC, [2], dtype="float16")
    run_windows(plan, fake_encoder(), batch_size=4, progress=True)
    assert fs.open_feature_set(store, "org--fake", "tr2")["hidden"].dtype == np.float16


def test_all_windows_from_one_read(make_store, monkeypatch):
    store = make_store(stim_onset=0.25)
    reads = []
    original = audio_windows.AudioStream._read

    def spy(self, start, stop):
        reads.append((start, stop))
        return original(self, start, stop)

    monkeypatch.setattr(audio_windows.AudioStream, "_read", spy)
    run_windows(plan_windows(store, SPEC, [1, 2, 3, 6]), fake_encoder(), batch_size=2)
    n_samples = open_group(store, S.STIMULUS)["audio"].size
    covered = np.zeros(n_samples, dtype=int)
    for start, stop in reads:
        covered[start:stop] += 1
    assert covered.max() == 1 and covered.all()


def test_existing_group_needs_overwrite(make_store):
    store = make_store()
    run_windows(plan_windows(store, SPEC, [1]), fake_encoder(), batch_size=8)
    with pytest.raises(GroupExistsError, match="tr1 already extracted"):
        plan_windows(store, SPEC, [1])
    # with other windows, the complete one is left alone (a rerun after a kill between
    # two windows' final writes resumes the rest)
    assert plan_windows(store, SPEC, [2, 1]).tr_wins == (2,)
    replaced = fake_encoder()
    replaced.encode = lambda w: summary(w) + 1
    run_windows(plan_windows(store, SPEC, [1], overwrite=True), replaced, batch_size=8)
    hidden = fs.open_feature_set(store, "org--fake", "tr1")["hidden"].values
    audio = open_group(store, S.STIMULUS)["audio"].values
    np.testing.assert_allclose(hidden, expected(audio, 1, 12000) + 1, rtol=1e-5)


def test_group_locked_by_another_writer(make_store):
    store = make_store()
    plan = plan_windows(store, SPEC, [1])
    with fs.group_lock(store, "features/org--fake/tr1"):
        with pytest.raises(GroupLockedError):
            run_windows(plan, fake_encoder(), batch_size=8)


def test_window_longer_than_the_model_takes(make_store):
    store = make_store()
    plan = plan_windows(store, SPEC, [2, 5])
    with pytest.raises(InputError, match=r"tr_wins=5 is 2.5 s .* at most 2 s; use tr_wins=4"):
        run_windows(plan, fake_encoder(max_window_s=2.0), batch_size=8)


def test_bad_requests(make_store, empty_store):
    store = make_store()
    with pytest.raises(InputError, match="needs `tr_wins`"):
        plan_windows(store, SPEC, [])
    with pytest.raises(InputError, match="dtype"):
        plan_windows(store, SPEC, [1], dtype="int8")
    with pytest.raises(InputError, match="no complete stimulus"):
        plan_windows(empty_store, SPEC, [1])
    with pytest.raises(InputError, match="`batch_size`"):
        run_windows(plan_windows(store, SPEC, [1]), fake_encoder(), batch_size=0)


def test_wrong_encoder_shape_is_a_model_error(make_store):
    store = make_store()
    broken = fake_encoder()
    broken.dim = 4
    with pytest.raises(window_run.ModelError, match=r"shape \(2, 8, 3\), expected \(2, 8, 4\)"):
        run_windows(plan_windows(store, SPEC, [1]), broken, batch_size=8)


def test_sample_rate_must_be_16k(make_store):
    store = make_store()
    fs.update_group_attrs(store, S.STIMULUS, {"sample_rate": SR // 2})
    with pytest.raises(InputError, match="8000 Hz; expected 16000"):
        plan_windows(store, SPEC, [1])
