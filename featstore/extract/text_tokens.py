"""Which tokens belong to which word: tokens located by their characters in the window's text.

A window of words is given to the tokenizer as running text, the words joined by single
spaces, exactly as the model would read the story. Each token is then placed by the
characters it covers:

- word ``j`` owns its own characters and the space before it, so a token that merges
  the space into the next word (``Ġwalked``, ``▁walked``, or a lone ``▁``) belongs to
  that next word;
- a token that spans several words (tokenizers that do not split at spaces) belongs to
  each of them;
- special tokens the tokenizer adds (BOS, EOS, ``[CLS]``) belong to no word, and text
  that spells a special or chat token (``<|im_start|>``) in the story is tokenized as
  ordinary text (``split_special_tokens``), never as a control token.

A fast tokenizer reports the characters of each token (``offset_mapping``). A slow one
(sentencepiece or Python BPE without ``tokenizer.json``) does not: there, the tokens'
words are counted in the text that the tokens before them spell
(``convert_tokens_to_string``), which a tokenizer that keeps whitespace reproduces.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from featstore.errors import ModelError


@dataclass
class TokenizedWindow:
    """One window's tokens and the tokens of each of its words.

    Attributes
    ----------
    input_ids
        Every token, special tokens included.
    word_tokens
        Per word of the window, the positions of its tokens in ``input_ids``, in order
        (empty for a word the tokenizer dropped, e.g. only control characters).
    """

    input_ids: list[int]
    word_tokens: list[list[int]]

    @property
    def n_free_tokens(self) -> int:
        """Tokens that belong to no word (special tokens)."""
        owned = {k for tokens in self.word_tokens for k in tokens}
        return len(self.input_ids) - len(owned)


def _word_starts(words: Sequence[str]) -> list[int]:
    """Start of the region each word owns in ``" ".join(words)``: the space before it."""
    starts, position = [], 0
    for j, word in enumerate(words):
        starts.append(max(0, position - 1) if j else 0)
        position += len(word) + 1
    return starts


def _fast_word_tokens(encoding, b: int, starts: list[int]) -> list[list[int]]:
    word_tokens: list[list[int]] = [[] for _ in starts]
    offsets = encoding["offset_mapping"][b]
    special = encoding["special_tokens_mask"][b]
    for k, ((begin, end), is_special) in enumerate(zip(offsets, special, strict=True)):
        if is_special:
            continue
        # a lone space token may report no characters (trimmed offsets): it is the
        # space merged into the word at ``begin``
        first = bisect.bisect_right(starts, begin) - 1
        last = bisect.bisect_right(starts, max(begin, end - 1)) - 1
        for word in range(first, last + 1):
            word_tokens[word].append(k)
    return word_tokens


def _slow_word_tokens(tokenizer, ids: list[int], special: list[int], n_words: int, text: str):
    """Words of each token of a slow tokenizer, from the words its prefix spells."""
    pieces = tokenizer.convert_ids_to_tokens(ids)
    word_tokens: list[list[int]] = [[] for _ in range(n_words)]
    spelled: list[str] = []
    pending: list[int] = []  # whitespace-only tokens: they belong to the next word
    for k, piece in enumerate(pieces):
        if special[k]:
            continue
        spelled.append(piece)
        n_now = len(tokenizer.convert_tokens_to_string(spelled).split())
        n_own = len(tokenizer.convert_tokens_to_string([piece]).split())
        if n_own == 0:
            pending.append(k)
            continue
        for word in range(max(0, n_now - n_own), min(n_now, n_words)):
            word_tokens[word].extend([*pending, k] if word == n_now - n_own else [k])
        pending = []
    n_spelled = len(tokenizer.convert_tokens_to_string(spelled).split())
    if n_spelled != n_words:
        raise ModelError(
            f"the slow tokenizer {type(tokenizer).__name__} spells the window {text[:40]!r}… "
            f"as {n_spelled} words, not {n_words}; its tokens cannot be matched to words "
            "(a fast tokenizer, tokenizer.json, can)"
        )
    return [sorted(set(tokens)) for tokens in word_tokens]


def tokenize_windows(tokenizer, windows: Sequence[Sequence[str]]) -> list[TokenizedWindow]:
    """Tokenize each window's words as running text and find each word's tokens."""
    texts = [" ".join(words) for words in windows]
    options = {"add_special_tokens": True, "return_special_tokens_mask": True}
    if tokenizer.is_fast:
        encoding = tokenizer(
            texts, return_offsets_mapping=True, split_special_tokens=True, **options
        )
        return [
            TokenizedWindow(
                list(encoding["input_ids"][b]),
                _fast_word_tokens(encoding, b, _word_starts(words)),
            )
            for b, words in enumerate(windows)
        ]
    encoding = tokenizer(texts, split_special_tokens=True, **options)
    return [
        TokenizedWindow(
            list(encoding["input_ids"][b]),
            _slow_word_tokens(
                tokenizer,
                list(encoding["input_ids"][b]),
                encoding["special_tokens_mask"][b],
                len(words),
                texts[b],
            ),
        )
        for b, words in enumerate(windows)
    ]
