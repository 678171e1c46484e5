"""Word vectors of every layer: batched passes equal one window at a time."""

import numpy as np
import pytest

from featstore.extract.registry import resolve_model
from featstore.extract.text_model import load_text_model, max_model_tokens, word_vectors

from .conftest import STORY

TOL = 1e-5


def target_tokens(tokenizer, window, lead=""):
    """The reference: the tokens of the window's text (specials included) that the text
    without its last word does not have are the last word's."""
    text = lead + " ".join(window)
    ids = tokenizer(text, split_special_tokens=True)["input_ids"]
    core = tokenizer(text, add_special_tokens=False)["input_ids"]
    before = tokenizer(lead + " ".join(window[:-1]), add_special_tokens=False)["input_ids"]
    before = before if len(window) > 1 else []  # a lead space is the first word's
    shared = next(
        (k for k, (a, b) in enumerate(zip(before, core, strict=False)) if a != b), len(before)
    )
    start = next(k for k in range(len(ids)) if ids[k : k + len(core)] == core)
    return ids, list(range(start + min(shared, len(core)), start + len(core)))


def one_window(text_model, words, target, ctx, pool):
    """The reference: the window of ``ctx`` words ending at ``target``, alone, unpadded."""
    import torch

    window = words[max(0, target - ctx + 1) : target + 1]
    ids, tokens = target_tokens(text_model.tokenizer, window, text_model.lead)
    with torch.inference_mode():
        states = text_model.model(
            input_ids=torch.tensor([ids]), output_hidden_states=True
        ).hidden_states
    picked = torch.stack(states)[:, 0, tokens]
    return (picked[:, -1] if pool == "last" else picked.mean(dim=1)).numpy()


@pytest.mark.parametrize("pool", ["last", "mean"])
def test_batched_equals_one_window_at_a_time(tiny_model, load_model, pool):
    text_model = load_model(tiny_model)
    ctx = 6
    got = word_vectors(text_model, STORY, range(len(STORY)), ctx=ctx, pool=pool, batch_size=7)
    assert got.values.shape == (text_model.n_layers, len(STORY), text_model.dim)
    for target in range(len(STORY)):
        want = one_window(text_model, STORY, target, ctx, pool)
        np.testing.assert_allclose(got.values[:, target], want, atol=TOL, rtol=0)
    np.testing.assert_array_equal(got.context_words, np.minimum(np.arange(len(STORY)) + 1, ctx))
    assert not got.truncated.any()


def test_every_layer_is_returned(tiny_model, load_model):
    text_model = load_model(tiny_model)
    config = text_model.model.config
    assert text_model.n_layers == config.num_hidden_layers + 1
    assert text_model.dim == config.hidden_size


def test_stride_one_equals_exact_and_stride_sees_enough_context(tiny_gpt2, load_model):
    text_model = load_model(tiny_gpt2)
    targets = range(len(STORY))
    exact = word_vectors(text_model, STORY, targets, ctx=5, batch_size=4)
    stride_one = word_vectors(text_model, STORY, targets, ctx=5, stride=1, batch_size=4)
    np.testing.assert_array_equal(stride_one.values, exact.values)
    strided = word_vectors(text_model, STORY, targets, ctx=5, stride=4, batch_size=4)
    assert (strided.context_words >= np.minimum(np.arange(len(STORY)) + 1, 5)).all()
    assert (strided.context_words <= 5 + 4 - 1).all()
    # causal model: the first word of each group of 4 sees exactly its exact-mode window
    first = np.arange(0, len(STORY), 4)
    np.testing.assert_allclose(strided.values[:, first], exact.values[:, first], atol=TOL)


def test_stride_lets_bidirectional_models_see_later_words(tiny_bert, load_model):
    text_model = load_model(tiny_bert)
    targets = range(len(STORY))
    exact = word_vectors(text_model, STORY, targets, ctx=5)
    strided = word_vectors(text_model, STORY, targets, ctx=5, stride=4)
    first = np.arange(0, len(STORY), 4)
    # same window start, so same embeddings (layer 0); but the blocks of a bidirectional
    # model let the first word of a group attend to the 3 words after it
    np.testing.assert_allclose(strided.values[0, first], exact.values[0, first], atol=TOL)
    assert np.abs(strided.values[1:, first] - exact.values[1:, first]).max() > 1e-3


def test_stride_equals_exact_without_a_context_effect(tiny_gpt2):
    import torch

    text_model = load_text_model(resolve_model(tiny_gpt2), revision=None, device="cpu")
    with torch.no_grad():  # attention adds nothing and positions are all alike
        text_model.model.wpe.weight.zero_()
        for block in text_model.model.h:
            block.attn.c_proj.weight.zero_()
            block.attn.c_proj.bias.zero_()
    targets = range(len(STORY))
    exact = word_vectors(text_model, STORY, targets, ctx=6, batch_size=5)
    strided = word_vectors(text_model, STORY, targets, ctx=6, stride=5, batch_size=3)
    np.testing.assert_allclose(strided.values, exact.values, atol=TOL, rtol=0)
    assert (strided.context_words > exact.context_words).any()


def test_truncated_windows_equal_the_window_that_fits(tiny_gpt2, load_model):
    text_model = load_model(tiny_gpt2)
    assert text_model.max_tokens == 64
    got = word_vectors(text_model, STORY, range(len(STORY)), ctx=40, batch_size=8)
    assert got.truncated.sum() > 5
    for target in np.flatnonzero(got.truncated)[:6]:
        kept = int(got.context_words[target])
        assert kept < min(40, target + 1)
        want = one_window(text_model, STORY, int(target), kept, "last")
        np.testing.assert_allclose(got.values[:, target], want, atol=TOL, rtol=0)


def test_a_word_without_tokens_gets_zeros(tiny_bert, load_model):
    text_model = load_model(tiny_bert)
    words = list(STORY[:12])
    words[7] = "\x07"  # a control character: BERT's normalizer removes it
    got = word_vectors(text_model, words, range(12), ctx=4, pool="mean")
    assert got.context_words[7] == 0
    assert not got.values[:, 7].any()
    assert got.values[:, [6, 8]].any(axis=(0, 2)).all()


def test_roberta_limit_excludes_its_position_offset(tiny_roberta, load_model):
    text_model = load_model(tiny_roberta)
    config = text_model.model.config
    assert max_model_tokens(config, text_model.tokenizer) == config.max_position_embeddings - 2
