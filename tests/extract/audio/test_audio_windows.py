"""Window rule: sample-exact bounds, zero padding, a click train, and one read of the audio."""

from __future__ import annotations

from fractions import Fraction
from math import floor

import numpy as np
import pytest

from featstore.errors import InputError
from featstore.extract.audio_windows import (
    AudioStream,
    WindowGrid,
    block_windows,
    exact_seconds,
    round_half_up,
)
from featstore.store import _schema as S
from featstore.store.groups import open_root

SR = 16_000


def exact_round(value: Fraction) -> int:
    return floor(value + Fraction(1, 2))


def test_round_half_up_rounds_ties_up_unlike_numpy():
    halves = [Fraction(1, 2), Fraction(3, 2), Fraction(5, 2), Fraction(-1, 2)]
    assert [round_half_up(x) for x in halves] == [1, 2, 3, 0]
    assert np.round([0.5, 2.5]).tolist() == [0.0, 2.0]
    assert exact_seconds(0.70003125) == Fraction(70003125, 10**8)


@pytest.mark.parametrize(
    ("tr", "onset"),
    [
        (Fraction(1, 2), Fraction(3, 4)),
        (Fraction(3, 2), Fraction(0)),
        # TR·sr = 11200.5 and onset·sr = 0.5: both ties, rounded up
        (Fraction(70003125, 10**8), Fraction(1, 32000)),
        (Fraction(7, 10) + Fraction(1, 3 * 16000), Fraction(13, 10)),
    ],
)
def test_grid_matches_exact_arithmetic(tr, onset):
    n_tr = 23
    grid = WindowGrid(tr_seconds=float(tr), n_tr=n_tr, stim_onset=float(onset), sample_rate=SR)
    expected_ends = [exact_round((t + 1) * tr * SR) - exact_round(onset * SR) for t in range(n_tr)]
    assert grid.ends().tolist() == expected_ends
    for w in (1, 2, 5):
        starts, ends = grid.bounds(w)
        assert grid.length(w) == exact_round(w * tr * SR)
        assert (ends - starts == grid.length(w)).all()


def test_grid_rejects_bad_windows():
    grid = WindowGrid(tr_seconds=0.5, n_tr=3)
    for bad in (0, -1, 1.5):
        with pytest.raises(InputError, match="tr_wins="):
            grid.length(bad)
    with pytest.raises(InputError, match="TR must be positive"):
        WindowGrid(tr_seconds=0.0, n_tr=3)


def click_train(n_samples: int, positions: list[int]) -> np.ndarray:
    audio = np.zeros(n_samples, dtype=np.float32)
    audio[positions] = np.arange(1, len(positions) + 1, dtype=np.float32)
    return audio


def reference_window(audio: np.ndarray, start: int, end: int) -> np.ndarray:
    """The window cut from a zero-padded copy of the audio (no library code)."""
    pad = 10 * len(audio)
    padded = np.concatenate([np.zeros(pad, np.float32), audio, np.zeros(pad, np.float32)])
    return padded[start + pad : end + pad]


@pytest.mark.parametrize("stim_onset", [0.0, 0.75])
@pytest.mark.parametrize(("block", "batch_size"), [(20, 20), (6, 4), (1, 1)])
def test_click_train_lands_sample_exactly(make_store, stim_onset, block, batch_size):
    # TR = 0.5 s = 8000 samples, onset 0.75 s = 12000 samples; the audio (7 s) ends
    # before the last TR (10 s of scan), so windows are zero-padded at both ends
    clicks = [0, 1, 3999, 4000, 7999, 8000, 11999, 12000, 40_000, 111_999]
    audio = click_train(112_000, clicks)
    store = make_store(audio, stim_onset=stim_onset)
    grid = WindowGrid(tr_seconds=0.5, n_tr=20, stim_onset=stim_onset)
    stream = AudioStream(open_root(store)[f"{S.STIMULUS}/{S.STIMULUS_AUDIO_VAR}"])
    seen = {}
    for first in range(0, 20, block):
        trs = range(first, min(first + block, 20))
        for batch in block_windows(stream, grid, [3, 1, 2], trs, batch_size):
            assert len(batch.trs) <= batch_size
            for tr, window in zip(batch.trs, batch.samples, strict=True):
                seen[(batch.tr_win, int(tr))] = window
    assert len(seen) == 3 * 20
    onset = round(stim_onset * SR)
    for (w, t), window in seen.items():
        end = (t + 1) * 8000 - onset
        expected = reference_window(audio, end - w * 8000, end)
        np.testing.assert_array_equal(window, expected)
    if stim_onset:
        # TR 2, w = 1: story time [0.25 s, 0.75 s) = samples [4000, 12000)
        window = seen[(1, 2)]
        assert window[0] == 4 and window[7999] == 7  # clicks at 4000 and 11999
        assert np.count_nonzero(window) == 4  # 4000, 7999, 8000, 11999
        # TR 1, w = 2: story time [-0.75 s, 0.25 s): 12000 zeros, then samples 0..3999
        window = seen[(2, 1)]
        assert not window[:12000].any() and window[12000] == 1 and window[12001] == 2
        assert window[-1] == 3  # click at 3999
        # TR 0: the whole window precedes the story
        assert not seen[(3, 0)].any()


class CountingSource:
    """A 1-D array that records every slice read from it."""

    def __init__(self, array):
        self.array, self.shape, self.reads = array, array.shape, []

    def __getitem__(self, key):
        self.reads.append((key.start, key.stop))
        return self.array[key]


def test_stream_reads_each_sample_once_for_all_windows():
    audio = np.arange(90_000, dtype=np.float32)
    source = CountingSource(audio)
    stream = AudioStream(source)
    grid = WindowGrid(tr_seconds=0.5, n_tr=20, stim_onset=0.3)
    for first in range(0, 20, 3):
        for batch in block_windows(stream, grid, [1, 2, 6], range(first, min(first + 3, 20)), 2):
            starts, _ = grid.bounds(batch.tr_win)
            for tr, window in zip(batch.trs, batch.samples, strict=True):
                expected = reference_window(
                    audio, starts[tr], starts[tr] + grid.length(batch.tr_win)
                )
                np.testing.assert_array_equal(window, expected)
    covered = np.zeros(audio.size, dtype=int)
    for start, stop in source.reads:
        covered[start:stop] += 1
    assert covered.max() == 1  # never a sample twice
    assert covered.all()  # the story (shorter than the scan) is read entirely


def test_stream_spans_outside_the_audio_are_zeros():
    stream = AudioStream(np.arange(1, 11, dtype=np.float32))
    np.testing.assert_array_equal(stream.span(-3, 2), [0, 0, 0, 1, 2])
    np.testing.assert_array_equal(stream.span(8, 13), [9, 10, 0, 0, 0])
    np.testing.assert_array_equal(stream.span(20, 22), [0, 0])
    np.testing.assert_array_equal(stream.span(4, 6), [5, 6])  # a step back re-reads


def test_stream_rejects_non_1d_audio():
    with pytest.raises(InputError, match="1-D"):
        AudioStream(np.zeros((2, 3)))
