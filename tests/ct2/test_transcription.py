"""The converted real whisper tiny.en transcribes the demo story; WER and chunking helpers."""

from __future__ import annotations

import numpy as np
import pytest

from featstore.errors import InputError
from featstore.extract.ct2_check import check_transcription, pause_chunks, word_error_rate


def test_word_error_rate_counts_edits():
    reference = "the cat sat on the mat".split()
    assert word_error_rate(reference, reference) == 0.0
    # one substitution (sat → sit), one deletion (the), one insertion (down)
    hypothesis = "the cat sit down on mat".split()
    assert word_error_rate(reference, hypothesis) == pytest.approx(3 / 6)
    assert word_error_rate(reference, []) == 1.0
    assert word_error_rate(["a"], ["b", "c", "d"]) == 3.0
    with pytest.raises(InputError):
        word_error_rate([], ["a"])


def test_pause_chunks_cut_between_words_within_the_limit():
    rng = np.random.default_rng(3)
    durations = rng.uniform(0.1, 0.6, size=97)
    gaps = rng.uniform(0.0, 0.4, size=97)
    onsets = np.cumsum(gaps + np.r_[0, durations[:-1]])
    offsets = onsets + durations
    chunks = pause_chunks(onsets, offsets, max_seconds=5.0)
    covered = [i for _, _, words in chunks for i in range(words.start, words.stop)]
    assert covered == list(range(97))
    for start, stop, words in chunks:
        assert stop - start <= 5.0
        assert stop == offsets[words.stop - 1]
        assert start == (0.0 if words.start == 0 else onsets[words.start])
    # each chunk is as long as it can be: adding the next word would pass the limit
    for start, _, words in chunks[:-1]:
        assert offsets[words.stop] - start > 5.0
    with pytest.raises(InputError, match=r"more than 1\.0 s"):
        pause_chunks(np.array([0.0]), np.array([1.5]), max_seconds=1.0)


@pytest.mark.slow
def test_converted_tiny_en_transcribes_the_demo_story(tiny_en_hf):
    # 10 s of the story (~26 words); a broken conversion scores near 1.0,
    # tiny.en scores ~0.15 here (the synthetic name "Elena" is heard as "the Leena")
    result = check_transcription(tiny_en_hf, max_seconds=10)
    assert result.n_words >= 20
    assert result.wer < 0.3, (result.reference, result.hypothesis)
