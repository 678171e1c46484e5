"""Low-level features against direct numpy references."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from featstore import store as fs
from featstore.cli.main import app
from featstore.errors import GroupExistsError, InputError
from featstore.extract import lowlevel as ll
from featstore.extract.run import extract
from featstore.store import _schema as S
from featstore.store.groups import open_group

from .conftest import N_TR, WORDS
from .test_audio_windows import reference_window


def reference_htk_filterbank(n_mels, n_fft, sample_rate, f_min, f_max):
    """Textbook HTK triangles: edges equally spaced in 2595 log10(1 + f / 700), in Hz."""
    mel = 2595.0 * np.log10(1.0 + np.array([f_min, f_max]) / 700.0)
    edges = 700.0 * (10.0 ** (np.linspace(mel[0], mel[1], n_mels + 2) / 2595.0) - 1.0)
    bins = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    filters = np.zeros((n_mels, len(bins)))
    for m in range(n_mels):
        lower, centre, upper = edges[m : m + 3]
        for k, f in enumerate(bins):
            if lower < f <= centre:
                filters[m, k] = (f - lower) / (centre - lower)
            elif centre < f < upper:
                filters[m, k] = (upper - f) / (upper - centre)
    return filters, edges[1:-1]


def test_filterbank_matches_the_htk_formula():
    ours = ll.mel_filterbank(40, 400, 16_000, 20.0, 8000.0)
    reference, centres = reference_htk_filterbank(40, 400, 16_000, 20.0, 8000.0)
    assert ours.shape == (40, 201)
    np.testing.assert_allclose(ours, reference, atol=1e-12)
    np.testing.assert_allclose(ll.mel_centres_hz(40, 20.0, 8000.0), centres, rtol=1e-12)
    assert ours.max(axis=1).min() > 0.5  # every band reaches at least one FFT bin


def reference_log_mel(window: np.ndarray, filterbank: np.ndarray) -> np.ndarray:
    n = np.arange(400)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / 400)  # periodic Hann
    rows = []
    for start in range(0, len(window) - 400 + 1, 160):
        spectrum = np.fft.rfft(window[start : start + 400].astype(np.float64) * hann)
        rows.append(np.log(filterbank @ np.abs(spectrum) ** 2 + 1e-10))
    return np.mean(rows, axis=0)


def test_log_mel_energies_against_a_frame_loop():
    rng = np.random.default_rng(3)
    batch = rng.standard_normal((3, 4321)).astype(np.float32)
    batch[1, :2000] = 0
    fb = ll.mel_filterbank(ll.N_MELS, ll.N_FFT, 16_000, ll.F_MIN, ll.F_MAX)
    ours = ll.log_mel_energies(batch, fb)
    reference = np.stack([reference_log_mel(row, fb) for row in batch])
    assert ours.shape == (3, 40)
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4)
    with pytest.raises(InputError, match="shorter than one frame"):
        ll.log_mel_energies(batch[:, :399], fb)


def test_rms_envelope():
    rng = np.random.default_rng(4)
    batch = rng.standard_normal((4, 777)).astype(np.float32)
    batch[2] = 0
    rms = np.array([np.sqrt(np.mean(row.astype(np.float64) ** 2)) for row in batch])
    np.testing.assert_allclose(ll.rms_envelope(batch), np.stack([rms, np.log(rms + 1e-8)], 1))


@pytest.mark.parametrize(
    ("word", "count"),
    [
        ("the", 1),
        ("little", 2),
        ("make", 1),
        ("strengths", 1),
        ("beautiful", 3),
        ("21", 0),
        ("eye", 1),
        ("apple", 2),
        ("free", 1),
        ("Queue!", 1),
        ("", 0),
        ("rhythm", 1),
    ],
)
def test_syllable_count(word, count):
    assert ll.syllable_count(word) == count


def test_word_rate_counts_by_tr():
    rates, ignored = ll.word_rate(["a", "", "banana", "to", "x"], np.array([0, 0, 2, 2, 5]), 4)
    np.testing.assert_array_equal(rates, [[1, 1], [0, 0], [2, 4], [0, 0]])
    assert ignored == 1


@pytest.mark.parametrize("name", ["spectral", "envelope"])
def test_windowed_lowlevel_end_to_end(make_store, name):
    store = make_store(stim_onset=0.75)
    assert extract(store, name, tr_wins=[2, 1], batch_size=3) == [
        f"features/{name}/tr1",
        f"features/{name}/tr2",
    ]
    audio = open_group(store, S.STIMULUS)["audio"].values
    fb = ll.mel_filterbank(ll.N_MELS, ll.N_FFT, 16_000, ll.F_MIN, ll.F_MAX)
    for w in (1, 2):
        ds = fs.open_feature_set(store, name, f"tr{w}")
        assert ds.attrs["modality"] == "lowlevel" and ds.attrs["layers"] == [0]
        cut = [
            reference_window(audio, (t + 1 - w) * 8000 - 12000, (t + 1) * 8000 - 12000)
            for t in range(N_TR)
        ]
        if name == "spectral":
            reference = np.stack([reference_log_mel(c, fb) for c in cut])
        else:
            reference = ll.rms_envelope(np.stack(cut))
        np.testing.assert_allclose(ds["hidden"].values[0], reference, rtol=1e-4, atol=1e-4)


def test_wordrate_end_to_end(make_store):
    store = make_store()
    assert extract(store, "wordrate") == ["features/wordrate/tr1"]
    ds = fs.open_feature_set(store, "wordrate", "tr1")
    stim = open_group(store, S.STIMULUS)
    rates, ignored = ll.word_rate(list(stim["word"].values), stim["tr_index"].values, N_TR)
    np.testing.assert_array_equal(ds["hidden"].values[0], rates)
    assert ignored == 1 and ds.attrs["settings"]["n_words_outside_trs"] == 1
    assert rates[:, 0].sum() == sum(1 for w in WORDS if w) - 1
    assert ds.attrs["tr_win"] == 1 and ds.attrs["modality"] == "lowlevel"
    with pytest.raises(GroupExistsError, match="already extracted"):
        extract(store, "wordrate")
    extract(store, "wordrate", overwrite=True)
    with pytest.raises(InputError, match="takes no `tr_wins`"):
        extract(store, "wordrate", tr_wins=[2])


def test_silent_audio_warns_of_a_constant_envelope_through_the_cli(make_store):
    # silence: the envelope is the same log floor at every TR, which no encoding model
    # can use; the command succeeds and prints one warning line naming the feature set
    store = make_store(np.zeros(round(8.9 * 16_000), np.float32), name="silent")
    result = CliRunner().invoke(
        app, ["extract", "--model", "envelope", "--tr-win", "2", "-s", str(store), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "wrote features/envelope/tr2" in result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("warning: feature set features/envelope/tr2: layer 0 (of 1) is constant")
    assert "Traceback" not in result.output and "FeatstoreWarning" not in result.output
