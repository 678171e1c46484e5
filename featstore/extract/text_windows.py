"""Word windows and their tokens: which words a forward pass sees, where its targets are.

Word positions here count the *input* words (missing words already left out). A
window is the half-open word range ``[start, stop)``; its targets are its last words.
Target tokens are found by their characters in the window's own text
(:mod:`featstore.extract.text_tokens`), never by tokenizing words on their own: how a
word is split can depend on the words around it and on special tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from featstore.errors import InputError, ModelError
from featstore.extract.text_tokens import TokenizedWindow, tokenize_windows


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
        raise InputError(f"`ctx` must be >= 1 word, got {ctx}")
    if stride is not None and stride < 1:
        raise InputError(f"`stride` must be >= 1 word, got {stride}")
    group = stride or 1
    runs: list[list[int]] = []
    for target in targets:
        if runs and len(runs[-1]) < group and target == runs[-1][-1] + 1:
            runs[-1].append(int(target))
        else:
            runs.append([int(target)])
    return [Window(max(0, run[0] - ctx + 1), run[-1] + 1, tuple(run)) for run in runs]


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


def _words_to_drop(tokenized: TokenizedWindow, n_targets: int, limit: int) -> int:
    """Fewest earliest words to drop so the window's tokens fit in ``limit``."""
    total = len(tokenized.input_ids)
    n_words = len(tokenized.word_tokens)
    seen: set[int] = set()
    drop = 0
    while total > limit and drop < n_words - n_targets:
        fresh = set(tokenized.word_tokens[drop]) - seen
        total -= len(fresh)
        seen |= fresh
        drop += 1
    if total > limit:
        raise InputError(
            f"the {n_targets} target word(s) of a window need {total} tokens but the model "
            f"takes {limit}; use a smaller `stride`"
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
    lead: str = "",
) -> EncodedWindows:
    """Tokenize windows as running text, truncate from the left, pad on the right.

    Each word's tokens are found by their characters in the window's text
    (:func:`featstore.extract.text_tokens.tokenize_windows`). Right padding keeps every
    real token at positions ``0..n-1`` in every model (causal models never attend to
    later pads; bidirectional ones mask them), so a padded batch computes what each
    window computes alone. ``lead`` goes before each window's text (see
    :func:`~featstore.extract.text_tokens.tokenize_windows`).
    """
    texts = [list(words[w.start : w.stop]) for w in windows]
    tokenized, dropped = [], []
    for window, text, encoded in zip(
        windows, texts, tokenize_windows(tokenizer, texts, lead=lead), strict=True
    ):
        drop = 0
        if len(encoded.input_ids) > max_tokens:
            drop = _words_to_drop(encoded, len(window.targets), max_tokens)
            encoded = tokenize_windows(tokenizer, [text[drop:]], lead=lead)[0]
            if len(encoded.input_ids) > max_tokens:
                raise ModelError(
                    f"a window still has {len(encoded.input_ids)} tokens after dropping {drop} "
                    f"words (limit {max_tokens}); the tokenizer splits words depending on context"
                )
        tokenized.append(encoded)
        dropped.append(drop)
    width = max(len(t.input_ids) for t in tokenized)
    target_tokens = []
    for window, encoded, drop in zip(windows, tokenized, dropped, strict=True):
        per_target = []
        for target in window.targets:
            tokens = encoded.word_tokens[target - window.start - drop]
            per_target.append(tokens[-1:] if pool == "last" else list(tokens))
        target_tokens.append(per_target)
    return EncodedWindows(
        input_ids=[t.input_ids + [pad_id] * (width - len(t.input_ids)) for t in tokenized],
        attention_mask=[
            [1] * len(t.input_ids) + [0] * (width - len(t.input_ids)) for t in tokenized
        ],
        target_tokens=target_tokens,
        dropped=dropped,
    )
