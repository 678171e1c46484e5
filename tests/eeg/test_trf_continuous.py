"""``evaluate trf --continuous``: the acoustic envelope and TR-rate features on the EEG grid."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import xarray as xr
from typer.testing import CliRunner

from featstore import store as fs
from featstore.cli.evaluate_main import app
from featstore.datasets.eeg import import_eeg
from featstore.datasets.importer import import_dataset
from featstore.evaluate.eeg import continuous
from featstore.evaluate.eeg.continuous import acoustic_envelope, continuous_features
from featstore.evaluate.eeg.epochs import lag_samples
from featstore.evaluate.encoding.split import chronological_split
from featstore.evaluate.encoding.trf import fit_trf, lag_profile
from featstore.report.html import build_report
from featstore.store import _schema as S
from tests.datasets.conftest import tree_hash
from tests.eeg.synthetic import CHANNELS, ONSETS_S, SFREQ, SUBJECTS, TR, write_story

SR = 16_000
KERNEL_PEAK_S = 0.15  # the envelope drives the planted channels through a bump peaking here
ENVELOPE_CHANNELS = ["Fz", "Pz"]


def reference_envelope(audio: np.ndarray, times: np.ndarray, sfreq: float) -> np.ndarray:
    """RMS of the samples within half an EEG sample of each time, zeros outside: by loop."""
    out = []
    for t in times:
        start = int(np.floor((t - 0.5 / sfreq) * SR + 0.5))
        stop = int(np.floor((t + 0.5 / sfreq) * SR + 0.5))
        window = [audio[i] if 0 <= i < len(audio) else 0.0 for i in range(start, stop)]
        out.append(np.sqrt(np.mean(np.square(window))))
    return np.array(out)


def test_envelope_is_the_rms_of_the_audio_around_each_eeg_sample(monkeypatch):
    monkeypatch.setattr(continuous, "_BLOCK_SAMPLES", 7)  # several reads of the audio
    audio = np.random.default_rng(0).standard_normal(3 * SR // 4).astype(np.float32)
    sfreq = 128.0  # 125 audio samples per EEG sample: windows straddle sample boundaries
    times = -0.1 + np.arange(120) / sfreq  # from before the story to after its end
    ours = acoustic_envelope(audio, times, sfreq, SR)
    np.testing.assert_allclose(ours, reference_envelope(audio, times, sfreq), rtol=1e-6)
    assert ours[0] == 0 and ours[-1] == 0 and ours[50] > 0


def kernel(sfreq: float) -> np.ndarray:
    """A Hann bump from 50 to 250 ms, peaking at KERNEL_PEAK_S."""
    n = round(0.2 * sfreq) + 1
    return np.r_[np.zeros(round(0.05 * sfreq)), np.hanning(n + 2)[1:-1]]


def test_envelope_trf_equals_mne_receptive_field_and_finds_the_kernel_peak():
    from mne.decoding import ReceptiveField
    from sklearn.linear_model import Ridge

    sfreq = 64.0
    rng = np.random.default_rng(1)
    slow = np.repeat(rng.uniform(0.2, 1.0, 400), SR // 20)  # 50-ms loudness steps
    audio = slow * rng.standard_normal(len(slow))
    times = np.arange(round(len(audio) / SR * sfreq)) / sfreq
    envelope = acoustic_envelope(audio, times, sfreq, SR)[:, None]
    response = np.convolve(envelope[:, 0] - envelope.mean(), kernel(sfreq))[: len(times)]
    eeg = np.c_[response, np.zeros(len(times))] + 0.02 * rng.standard_normal((len(times), 2))
    lags = lag_samples(0.0, 0.4, sfreq)
    train, test = chronological_split(len(times), trim=0, test_frac=0.2, gap=len(lags))
    fit = fit_trf(envelope, eeg, lags, [10.0], train_index=train, test_index=test, n_folds=3)

    def z(values):  # z-scored with the train rows' statistics, as fit_trf does
        return (values - values[train].mean(0)) / values[train].std(0)

    rf = ReceptiveField(
        0.0, 0.4, sfreq, estimator=Ridge(alpha=10.0, fit_intercept=False), fit_intercept=False
    ).fit(z(envelope)[train], z(eeg)[train])
    np.testing.assert_allclose(fit.weights, rf.coef_.transpose(2, 1, 0), rtol=1e-8, atol=1e-12)
    peak = lags[lag_profile(fit.weights)[:, 0].argmax()] / sfreq
    assert abs(peak - KERNEL_PEAK_S) <= 1 / sfreq
    assert fit.r[0] > 0.8 and abs(fit.r[1]) < 0.1


def _envelope_raws(folder, audio: np.ndarray, seconds: float) -> list:
    """Recordings whose ENVELOPE_CHANNELS are the story envelope convolved with ``kernel``."""
    import mne

    paths = []
    for k, subject in enumerate(SUBJECTS):
        lead = ONSETS_S[subject]
        n_times = round((lead + seconds + 1.0) * SFREQ)
        story_times = np.arange(n_times) / SFREQ - lead
        envelope = reference_envelope(audio, story_times, SFREQ)
        driven = np.convolve(envelope / envelope.std(), kernel(SFREQ))[:n_times]
        data = 1e-6 * np.random.default_rng(20 + k).standard_normal((n_times, len(CHANNELS)))
        for name in ENVELOPE_CHANNELS:
            data[:, CHANNELS.index(name)] += 2e-6 * driven
        raw = mne.io.RawArray(data.T, mne.create_info(CHANNELS, SFREQ, "eeg"), verbose="error")
        raw.set_montage("standard_1020", verbose="error")
        raw.set_annotations(mne.Annotations([lead], [0.0], ["story_onset"]))
        path = folder / f"{subject}_task-s1_env_eeg.fif"
        raw.save(path, verbose="error")
        paths.append(path)
    return paths


@pytest.fixture
def envelope_store(tmp_path):
    """The synthetic story with loudness changing every 50 ms, and EEG driven by it."""
    align, audio_path, seconds = write_story(tmp_path)
    rng = np.random.default_rng(3)
    n = round(seconds * SR)
    loudness = np.repeat(rng.uniform(0.1, 1.0, n // (SR // 20) + 1), SR // 20)[:n]
    audio = (0.1 * loudness * rng.standard_normal(n)).astype(np.float32)
    sf.write(audio_path, audio, SR)
    store = tmp_path / "envelope.zarr"
    import_dataset(store, align=align, audio=audio_path, tr=TR)
    import_eeg(store, [str(p) for p in _envelope_raws(tmp_path, audio, seconds)])
    return store


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_trf_continuous_envelope_recovers_the_kernel_on_the_driven_channels(
    envelope_store, tmp_path
):
    result = _invoke(
        "trf", "-s", envelope_store, "--continuous", "envelope", "--lags", "-100:400",
        "--alphas", "1e-1:1e5:7", "--cv", 4, "--run", "env",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ds = xr.open_zarr(envelope_store, group="results/env", consolidated=False).load()
    assert ds.attrs["settings"]["predictor"] == "continuous"
    assert ds.attrs["features"]["key"] == "envelope" and list(ds.layer.values) == [0]
    r = ds.r.sel(layer=0).mean("subject")
    noise = [c for c in CHANNELS if c not in ENVELOPE_CHANNELS]
    assert (r.sel(channel=ENVELOPE_CHANNELS) > 0.5).all(), r.values
    assert (abs(r.sel(channel=noise)) < 0.1).all(), r.values
    profile = ds.lag_profile.sel(layer=0, channel=ENVELOPE_CHANNELS).mean("subject")
    np.testing.assert_allclose(profile.idxmax("lag").values, 1e3 * KERNEL_PEAK_S, atol=10)
    assert fs.validate(envelope_store) == []
    page = build_report(envelope_store, tmp_path / "report", embed=True).read_text("utf-8")
    assert "envelope/100Hz" in page


def test_a_tr_rate_feature_set_is_interpolated_from_the_tr_centres(eeg_store):
    eeg = xr.open_zarr(eeg_store, group="eeg", consolidated=False)
    features = continuous_features(eeg_store, "planted:ctx8@1,2", eeg)
    assert features.layers == [1, 2] and features.reducible
    hidden = fs.open_feature_set(eeg_store, "planted", "ctx8")[S.HIDDEN_VAR].values
    times = eeg.time.values
    centres = (np.arange(hidden.shape[1]) + 0.5) * TR  # the story starts with the scan
    series = features.series(2)
    assert series.shape == (len(times), hidden.shape[2])
    inside = (times > centres[0]) & (times < centres[-1])
    for dim in (0, 4):
        expected = np.interp(times, centres, hidden[2, :, dim])
        np.testing.assert_allclose(series[:, dim], expected, rtol=1e-6)
    # between TR centres t and t+1 the value moves linearly from one TR to the next
    t = np.flatnonzero(inside)[0]
    k = int(np.searchsorted(centres, times[t])) - 1
    w = (times[t] - centres[k]) / TR
    np.testing.assert_allclose(
        series[t], (1 - w) * hidden[2, k] + w * hidden[2, k + 1], rtol=1e-5, atol=1e-6
    )


def test_trf_continuous_feature_set_runs_and_bad_requests_are_one_line(eeg_store):
    result = _invoke(
        "trf", "-s", eeg_store, "--continuous", "planted:ctx8@0,1", "--pca", 3,
        "--lags", "0:200", "--cv", 3, "--run", "cont",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ds = xr.open_zarr(eeg_store, group="results/cont", consolidated=False)
    assert list(ds.layer.values) == [0, 1] and ds.attrs["settings"]["pca_applied"]
    assert ds.attrs["features"]["window"] == "ctx8"
    before = tree_hash(eeg_store)
    for args in (
        ["--model", "planted:ctx8", "--continuous", "envelope"],
        [],
        ["--continuous", "planted:ctx8", "--pca", 9],
    ):
        result = _invoke("trf", "-s", eeg_store, *args)
        assert result.exit_code == 2, result.output
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "--model" in result.stderr or "--pca 9" in result.stderr, result.stderr
    assert tree_hash(eeg_store) == before
