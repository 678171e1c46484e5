"""Word windows and their tokens: which words a forward pass sees, where its targets are.

Word positions here count the *input* words (missing words already left out). A
window is the half-open word range ``[start, stop)``; its targets are its last words.
Target tokens are found through the fast tokenizer's ``word_ids()`` of the window
itself, never by tokenizing words on their own: how a word is split can depend on
the tokenizer's handling of the words around it and of special tokens.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from featstore.errors import InputError, ModelError


@dataclass(frozen=True)
class Window:
    """Words ``[start, stop)`` run in one pass; ``targets`` are read from that pass."""

    start: int
    stop: int
    targets: tuple[int, ...]


def plan_windows(targets: Sequence[int], ctx: int, stride: int | None = None) -> list[Window]:
    """Windows that give every target word at least ``ctx`` words of context.

    Exact mode (``stride`` None or 1): target ``i`` gets the window of the ``ctx``
    words ending at ``i`` (fewer at the start of the story). Stride mode: runs of up
    to ``stride`` consecutive targets share one window that starts ``ctx - 1`` words
    before the first of them, so its first target sees exactly its exact-mode window
    and the others see up to ``stride - 1`` more words.
    """
    if ctx < 1:
        raise InputError(f"--ctx must be >= 1 word, got {ctx}")
    if stride is not None and stride < 1:
        raise InputError(f"--stride must be >= 1 word, got {stride}")
    group = stride or 1
    runs: list[list[int]] = []
    for target in targets:
        if runs and len(runs[-1]) < group and target == runs[-1][-1] + 1:
            runs[-1].append(int(target))
        else:
            runs.append([int(target)])
    return [Window(max(0, run[0] - ctx + 1), run[-1] + 1, tuple(run)) for run in runs]


def byte_level_without_prefix_space(tokenizer) -> bool:
    """Whether a fast tokenizer is byte-level BPE that glues pre-split words together.

    GPT-2 / RoBERTa tokenizers need ``add_prefix_space=True`` for pre-split input,
    otherwise word 2 of ``["the", "cat"]`` is tokenized as ``cat`` glued to ``the``.
    """

    def walk(node) -> bool:
        if isinstance(node, dict):
            if node.get("type") == "ByteLevel" and not node.get("add_prefix_space", False):
                return True
            return any(walk(value) for value in node.values())
        if isinstance(node, list):
            return any(walk(value) for value in node)
        return False

    state = json.loads(tokenizer.backend_tokenizer.to_str())
    return walk(state.get("pre_tokenizer"))


@dataclass
class EncodedWindows:
    """A padded batch of windows and where their targets' tokens are.

    Attributes
    ----------
    input_ids, attention_mask
        ``(batch, tokens)`` lists, right-padded.
    target_tokens
        Per window, per target: the token positions of that target word (empty if
        the word produced no token).
    dropped
        Per window: how many of its earliest words were dropped to fit the model.
    """

    input_ids: list[list[int]]
    attention_mask: list[list[int]]
    target_tokens: list[list[list[int]]]
    dropped: list[int]


def _words_to_drop(word_ids: Sequence[int | None], n_words: int, n_targets: int, limit: int) -> int:
    """Fewest earliest words to drop so the window's tokens fit in ``limit``."""
    per_word = [0] * n_words
    n_special = 0
    for word in word_ids:
        if word is None:
            n_special += 1
        else:
            per_word[word] += 1
    total = n_special + sum(per_word)
    drop = 0
    while total > limit and drop < n_words - n_targets:
        total -= per_word[drop]
        drop += 1
    if total > limit:
        raise InputError(
            f"the {n_targets} target word(s) of a window need {total} tokens but the model "
            f"takes {limit}; use a smaller --stride"
        )
    return drop


def encode_windows(
    tokenizer,
    words: Sequence[str],
    windows: Sequence[Window],
    *,
    max_tokens: int,
    pool: str,
    pad_id: int,
) -> EncodedWindows:
    """Tokenize windows as pre-split words, truncate from the left, pad on the right.

    Right padding keeps every real token at positions ``0..n-1`` in every model
    (causal models never attend to later pads; bidirectional ones mask them), so a
    padded batch computes what each window computes alone.
    """
    texts = [list(words[w.start : w.stop]) for w in windows]
    encoding = tokenizer(texts, is_split_into_words=True, add_special_tokens=True)
    if not encoding.is_fast:
        raise ModelError("a fast tokenizer is required (its word_ids locate each word's tokens)")
    all_ids, all_word_ids, dropped = [], [], []
    for i, window in enumerate(windows):
        ids, word_ids = encoding["input_ids"][i], encoding.word_ids(i)
        drop = 0
        if len(ids) > max_tokens:
            drop = _words_to_drop(word_ids, len(texts[i]), len(window.targets), max_tokens)
            again = tokenizer([texts[i][drop:]], is_split_into_words=True, add_special_tokens=True)
            ids, word_ids = again["input_ids"][0], again.word_ids(0)
            if len(ids) > max_tokens:
                raise ModelError(
                    f"a window still has {len(ids)} tokens after dropping {drop} words "
                    f"(limit {max_tokens}); the tokenizer splits words depending on context"
                )
        all_ids.append(list(ids))
        all_word_ids.append(word_ids)
        dropped.append(drop)
    width = max(len(ids) for ids in all_ids)
    target_tokens = []
    for window, word_ids, drop in zip(windows, all_word_ids, dropped, strict=True):
        per_target = []
        for target in window.targets:
            position = target - window.start - drop
            tokens = [k for k, word in enumerate(word_ids) if word == position]
            per_target.append(tokens[-1:] if pool == "last" else tokens)
        target_tokens.append(per_target)
    return EncodedWindows(
        input_ids=[ids + [pad_id] * (width - len(ids)) for ids in all_ids],
        attention_mask=[[1] * len(ids) + [0] * (width - len(ids)) for ids in all_ids],
        target_tokens=target_tokens,
        dropped=dropped,
    )
