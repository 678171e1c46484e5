"""The transcript heard so far: the words of the story that end before an audio window ends.

An audio LLM may read, with each window of audio, the words already heard
(``transcript``, :mod:`featstore.extract.audio_llm`). Rule: word ``i`` is heard by the
end of a window ending at story sample ``e`` (exclusive) when it has text and its
offset sample ``round(offset_i * sr)`` (ties up) is at most ``e``; the transcript is the
last ``max_words`` such words, in story order, joined by single spaces. A word still
being spoken at the window's end, and every later word, is left out: no future word
reaches the model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from featstore.errors import InputError
from featstore.extract.audio_windows import exact_seconds, round_half_up
from featstore.extract.text import read_stimulus_words
from featstore.store import _schema as S
from featstore.store.groups import StorePath, open_group

TRANSCRIPT_RULE = (
    "the words with text whose offset sample round(offset*sr) is at most the window's end "
    "sample, the last transcript_words of them in story order, joined by spaces"
)


def check_transcript_words(value: int | None) -> int | None:
    """``transcript`` as given: None (audio only) or a whole number of words >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"transcript={value!r}: expected a whole number of words >= 1, e.g. 32")
    return int(value)


@dataclass(frozen=True)
class Transcript:
    """The story's words with text and the sample at which each ends (story order)."""

    words: tuple[str, ...]
    end_samples: np.ndarray

    @classmethod
    def from_store(cls, store: StorePath, sample_rate: int) -> Transcript:
        """The words of the store's stimulus (missing and blank words left out)."""
        words = read_stimulus_words(store)
        offsets = open_group(store, S.STIMULUS)["offset"].values.astype(np.float64)
        keep = np.flatnonzero(words.is_input)
        bad = [i for i in keep if not np.isfinite(offsets[i])]
        if bad:
            raise InputError(
                f"stimulus word {bad[0]} of {os.fspath(store)} has no offset; the transcript "
                "needs when every word ends"
            )
        ends = [round_half_up(exact_seconds(offsets[i]) * sample_rate) for i in keep]
        return cls(tuple(words.words[i] for i in keep), np.array(ends, dtype=np.int64))

    def before(self, end_sample: int, max_words: int) -> str:
        """The last ``max_words`` words ending at or before ``end_sample``, space-joined."""
        heard = np.flatnonzero(self.end_samples <= end_sample)
        return " ".join(self.words[i] for i in heard[-max_words:])

    def before_each(self, end_samples, max_words: int) -> list[str]:
        """:meth:`before` of every window end."""
        return [self.before(int(end), max_words) for end in np.asarray(end_samples)]
