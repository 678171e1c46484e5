"""Window planning, byte-level detection, and locating words through word_ids."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from featstore.errors import InputError
from featstore.extract.text_windows import Window, encode_windows, plan_windows

from .conftest import STORY


def test_exact_windows_are_the_ctx_words_ending_at_each_word():
    windows = plan_windows(range(7), ctx=3)
    assert windows == [Window(max(0, i - 2), i + 1, (i,)) for i in range(7)]


def test_stride_windows_group_consecutive_targets():
    windows = plan_windows([0, 1, 2, 3, 4, 5, 6, 9, 10], ctx=4, stride=3)
    assert [w.targets for w in windows] == [(0, 1, 2), (3, 4, 5), (6,), (9, 10)]
    assert windows[1] == Window(0, 6, (3, 4, 5))
    assert windows[3] == Window(6, 11, (9, 10))


def test_stride_one_is_exact_mode():
    assert plan_windows(range(11), ctx=4, stride=1) == plan_windows(range(11), ctx=4)


@given(
    targets=st.lists(st.integers(0, 300), min_size=1, max_size=60, unique=True).map(sorted),
    ctx=st.integers(1, 40),
    stride=st.integers(1, 12),
)
def test_every_target_sees_at_least_ctx_words(targets, ctx, stride):
    windows = plan_windows(targets, ctx, stride)
    assert [t for w in windows for t in w.targets] == targets
    for window in windows:
        assert window.stop - window.start <= ctx + stride - 1
        assert window.targets[-1] == window.stop - 1
        for target in window.targets:
            assert target - window.start + 1 >= min(ctx, target + 1)


def test_bad_plans_are_refused():
    with pytest.raises(InputError, match="`ctx`"):
        plan_windows([0], ctx=0)
    with pytest.raises(InputError, match="`stride`"):
        plan_windows([0], ctx=2, stride=0)


def test_byte_level_tokenizers_get_a_leading_space(tiny_gpt2, tiny_roberta, tiny_bert, load_model):
    # every word, the first of a window included, is read as a word after a space
    assert [load_model(p).lead for p in (tiny_gpt2, tiny_roberta, tiny_bert)] == [" ", " ", ""]
    tokenizer = load_model(tiny_gpt2).tokenizer
    encoded = encode_windows(
        tokenizer,
        STORY,
        plan_windows([3, 4], ctx=2),
        max_tokens=99,
        pool="mean",
        pad_id=0,
        lead=" ",
    )
    first_of_second_window = encoded.input_ids[1][: len(encoded.target_tokens[0][0])]
    assert first_of_second_window == [encoded.input_ids[0][k] for k in encoded.target_tokens[0][0]]
    assert tokenizer.convert_ids_to_tokens(first_of_second_window)[0].startswith("Ġ")


def _spelled(tokenizer, ids):
    # BERT splits punctuation off ("grandmother ' s"); spaces are not part of a word
    text = tokenizer.convert_tokens_to_string(tokenizer.convert_ids_to_tokens(ids))
    return text.replace(" ", "")


@pytest.mark.parametrize("pool", ["mean", "last"])
def test_target_tokens_spell_the_target_word(tiny_model, load_model, pool):
    model = load_model(tiny_model)
    windows = plan_windows(range(len(STORY)), ctx=6, stride=4)
    encoded = encode_windows(
        model.tokenizer,
        STORY,
        windows,
        max_tokens=1000,
        pool=pool,
        pad_id=model.pad_id,
        lead=model.lead,
    )
    is_bert = "bert" in tiny_model.rsplit("/", 1)[-1] and "roberta" not in tiny_model
    width = len(encoded.input_ids[0])
    for b, window in enumerate(windows):
        ids = encoded.input_ids[b]
        assert len(ids) == len(encoded.attention_mask[b]) == width
        n_real = sum(encoded.attention_mask[b])
        assert encoded.attention_mask[b] == [1] * n_real + [0] * (width - n_real)
        for target, tokens in zip(window.targets, encoded.target_tokens[b], strict=True):
            assert tokens and max(tokens) < n_real
            if pool == "mean":
                assert tokens == list(range(tokens[0], tokens[-1] + 1))
                word = STORY[target].lower() if is_bert else STORY[target]
                assert _spelled(model.tokenizer, [ids[k] for k in tokens]) == word
            else:
                assert len(tokens) == 1


def test_last_token_is_the_end_of_the_mean_tokens(tiny_gpt2, load_model):
    model = load_model(tiny_gpt2)
    windows = plan_windows(range(len(STORY)), ctx=5)
    kwargs = {"max_tokens": 1000, "pad_id": model.pad_id}
    last = encode_windows(model.tokenizer, STORY, windows, pool="last", **kwargs)
    mean = encode_windows(model.tokenizer, STORY, windows, pool="mean", **kwargs)
    assert [[t[-1:] for t in w] for w in mean.target_tokens] == last.target_tokens
    assert any(len(t) > 1 for w in mean.target_tokens for t in w), "no multi-token word"


def test_too_long_windows_lose_their_earliest_words(tiny_bert, load_model):
    model = load_model(tiny_bert)
    windows = plan_windows(range(20, 40), ctx=15, stride=3)
    full = encode_windows(
        model.tokenizer, STORY, windows, max_tokens=1000, pool="mean", pad_id=model.pad_id
    )
    limit = 30
    cut = encode_windows(
        model.tokenizer, STORY, windows, max_tokens=limit, pool="mean", pad_id=model.pad_id
    )
    assert any(cut.dropped)
    for b, window in enumerate(windows):
        n_real = sum(cut.attention_mask[b])
        assert n_real <= limit
        if cut.dropped[b]:
            # the fewest words were dropped: one word fewer would not fit
            kept_one_more = STORY[window.start + cut.dropped[b] - 1 : window.stop]
            again = model.tokenizer([kept_one_more], is_split_into_words=True)
            assert len(again["input_ids"][0]) > limit
        spelled = [
            _spelled(model.tokenizer, [cut.input_ids[b][k] for k in tokens])
            for tokens in cut.target_tokens[b]
        ]
        assert spelled == [STORY[t].lower() for t in window.targets]
        assert [len(t) for t in cut.target_tokens[b]] == [len(t) for t in full.target_tokens[b]]


def test_targets_that_cannot_fit_are_an_error(tiny_bert, load_model):
    model = load_model(tiny_bert)
    windows = plan_windows(range(10, 30), ctx=2, stride=20)
    with pytest.raises(InputError, match="smaller `stride`"):
        encode_windows(
            model.tokenizer, STORY, windows, max_tokens=12, pool="last", pad_id=model.pad_id
        )
