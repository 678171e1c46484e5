"""``extract --transcript N``: an audio LLM reads each window with the words heard by its end."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from featstore import store as fs
from featstore.errors import InputError
from featstore.extract.audio_llm import PROMPT
from featstore.extract.run import extract
from featstore.extract.transcript import Transcript
from featstore.store import _schema as S

from .conftest import SR, TR, WORDS
from .test_audio_llm import tiny_qwen2_audio  # noqa: F401 (the fixture)

STIM_ONSET = 0.75  # make_store's default
N_WORDS = 3
N_TR = 12  # 12 windows of 2 TRs, the last ending 5.25 s into the 8.9-s story


def heard(store, end_sample: int, n_words: int = N_WORDS) -> str:
    """By hand: non-blank words whose offset sample is <= end_sample, the last n_words."""
    offsets = fs.open_group(store, S.STIMULUS)["offset"].values
    words = [str(w) for w in fs.open_group(store, S.STIMULUS)["word"].values]
    done = [w for w, off in zip(words, offsets, strict=True) if w and round(off * SR) <= end_sample]
    return " ".join(done[-n_words:])


@pytest.fixture
def prompts(monkeypatch):
    """Every text list the Qwen2-Audio processor is called with, in order."""
    from transformers import Qwen2AudioProcessor

    calls: list[list[str]] = []
    original = Qwen2AudioProcessor.__call__

    def spy(self, *args, text=None, **kwargs):
        calls.append(list(text))
        return original(self, *args, text=text, **kwargs)

    monkeypatch.setattr(Qwen2AudioProcessor, "__call__", spy)
    return calls


def test_the_transcript_holds_exactly_the_words_ended_by_the_window_end():
    transcript = Transcript(("a", "b", "c", "d"), np.array([100, 250, 250, 400]))
    assert transcript.before(99, 5) == ""
    assert transcript.before(100, 5) == "a"  # a word ending on the window's end is heard
    assert transcript.before(249, 5) == "a"  # one sample short: "b" is still being spoken
    assert transcript.before(250, 5) == "a b c"
    assert transcript.before(10_000, 2) == "c d"  # the last 2
    assert transcript.before_each([99, 400], 1) == ["", "d"]


def test_tr_windows_read_the_words_heard_so_far_one_window_at_a_time(
    tiny_qwen2_audio,  # noqa: F811
    make_store,
    prompts,
):
    store = make_store(name="transcript", n_tr=N_TR)
    [group] = extract(store, tiny_qwen2_audio, tr_wins=[2], transcript=N_WORDS, threads=1)
    assert group == f"features/qwen2-audio.transcript{N_WORDS}/tr2"
    # window of TR t ends at story sample round((t+1)*TR*sr) - round(stim_onset*sr)
    ends = [round((t + 1) * TR * SR) - round(STIM_ONSET * SR) for t in range(N_TR)]
    expected = [heard(store, end) for end in ends]
    assert prompts == [[f"{text}\n{PROMPT}" if text else PROMPT] for text in expected]
    assert any(expected) and not all(expected)  # early windows have heard nothing yet
    ds = fs.open_group(store, group)
    assert ds.attrs["settings"]["transcript_words"] == N_WORDS
    audio_only = make_store(name="audio-only", n_tr=N_TR)
    [plain] = extract(audio_only, tiny_qwen2_audio, tr_wins=[2], threads=1)
    with_text, without = ds[S.HIDDEN_VAR].values, fs.open_group(audio_only, plain)[S.HIDDEN_VAR]
    for t, text in enumerate(expected):
        gap = np.abs(with_text[1:, t] - without.values[1:, t]).max()
        assert (gap > 1e-4) if text else (gap < 1e-6), (t, text, gap)


def test_a_future_word_never_changes_a_window(tiny_qwen2_audio, make_store):  # noqa: F811
    changed = 3  # "strengths" becomes "apple" in the second store
    stores = [make_store(name="original", n_tr=N_TR), make_store(name="changed", n_tr=N_TR)]
    words = zarr.open_group(str(stores[1]), path=S.STIMULUS, mode="r+")["word"]
    words[changed] = "apple"
    offset = float(fs.open_group(stores[0], S.STIMULUS)["offset"].values[changed])
    hidden = []
    for store in stores:
        [group] = extract(store, tiny_qwen2_audio, tr_wins=[2], transcript=N_WORDS, threads=1)
        hidden.append(fs.open_group(store, group)[S.HIDDEN_VAR].values)
    ends = np.array([round((t + 1) * TR * SR) - round(STIM_ONSET * SR) for t in range(N_TR)])
    before = ends < round(offset * SR)
    assert before.any() and (~before).any()
    np.testing.assert_array_equal(hidden[0][:, before], hidden[1][:, before])
    assert np.abs(hidden[0][1:, ~before] - hidden[1][1:, ~before]).max() > 1e-4


def test_words_with_context_read_the_transcript_up_to_their_own_end(
    tiny_qwen2_audio,  # noqa: F811
    make_store,
    prompts,
):
    store = make_store(name="word-transcript")
    [group] = extract(
        store, tiny_qwen2_audio, words=True, word_context=0.5, transcript=2, threads=1
    )
    assert group == "features/qwen2-audio.transcript2.words/tr1"
    stimulus = fs.open_group(store, S.STIMULUS)
    stops = [round(off * SR) for off in stimulus["offset"].values]  # 200-ms words: not widened
    expected = [heard(store, stop, 2) for w, stop in zip(WORDS, stops, strict=True) if w]
    assert prompts == [[f"{text}\n{PROMPT}"] for text in expected]  # word order, one at a time
    assert [text.split()[-1] for text in expected] == [w for w in WORDS if w]  # itself included


def test_transcript_is_for_audio_llms_and_whole_numbers(
    tiny_models,
    tiny_qwen2_audio,  # noqa: F811
    make_store,
):
    store = make_store(name="bad-transcript")
    with pytest.raises(InputError, match="not an audio LLM"):
        extract(store, tiny_models["wavlm"], tr_wins=[1], transcript=4)
    with pytest.raises(InputError, match="transcript=0"):
        extract(store, tiny_qwen2_audio, tr_wins=[1], transcript=0)
    assert not fs.group_exists(store, "features/qwen2-audio.transcript0/tr1")
