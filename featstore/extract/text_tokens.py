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
(sentencepiece or Python BPE without ``tokenizer.json``) does not: there, the text up to
each word is tokenized too, and the tokens it shares with the whole window are the tokens
up to that word.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass


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


def _word_starts(words: Sequence[str], lead: str) -> list[int]:
    """Start of the region each word owns in ``lead + " ".join(words)``: the space before
    it (the whole lead for the first word)."""
    starts, position = [], len(lead)
    for j, word in enumerate(words):
        starts.append(position - 1 if j else 0)
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
        for word in range(max(first, 0), last + 1):
            word_tokens[word].append(k)
    return word_tokens


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _slow_word_tokens(tokenizer, words: Sequence[str], lead: str, ids, special) -> list[list[int]]:
    """Tokens of each word for a tokenizer without offsets, from the window's prefixes.

    The tokens of the text up to word ``j`` that the whole text shares (their common
    prefix) end at word ``j``; a token that differs (merged across the space) belongs to
    both words around it.
    """
    positions = [k for k, flag in enumerate(special) if not flag]
    core = [ids[k] for k in positions]
    prefixes = [lead + " ".join(words[: j + 1]) for j in range(len(words))]
    encoded = tokenizer(prefixes, add_special_tokens=False)["input_ids"]
    word_tokens, done = [], 0
    for prefix_ids in encoded:
        shared = _common_prefix(prefix_ids, core)
        # the first token that differs spans the space after this word: it is both words'
        stop = min(shared + 1 if shared < len(prefix_ids) else shared, len(core))
        word_tokens.append([positions[k] for k in range(done, stop)])
        done = shared
    return word_tokens


def tokenize_windows(
    tokenizer, windows: Sequence[Sequence[str]], *, lead: str = ""
) -> list[TokenizedWindow]:
    """Tokenize each window's words as running text and find each word's tokens.

    ``lead`` is put before the first word: ``" "`` for tokenizers that read the start of
    a text unlike a word after a space (byte-level BPE without a prefix space, Gemma), so
    the first word of a window is tokenized as it is everywhere else in the story.
    """
    texts = [lead + " ".join(words) for words in windows]
    options = {
        "add_special_tokens": True,
        "return_special_tokens_mask": True,
        "split_special_tokens": True,
    }
    if tokenizer.is_fast:
        encoding = tokenizer(texts, return_offsets_mapping=True, **options)
        return [
            TokenizedWindow(
                list(encoding["input_ids"][b]),
                _fast_word_tokens(encoding, b, _word_starts(words, lead)),
            )
            for b, words in enumerate(windows)
        ]
    encoding = tokenizer(texts, **options)
    return [
        TokenizedWindow(
            list(encoding["input_ids"][b]),
            _slow_word_tokens(
                tokenizer,
                words,
                lead,
                encoding["input_ids"][b],
                encoding["special_tokens_mask"][b],
            ),
        )
        for b, words in enumerate(windows)
    ]


def reads_start_as_a_word(tokenizer) -> bool:
    """Whether the tokenizer reads the first word of a text as it reads a word after a
    space (sentencepiece's dummy prefix, WordPiece); if not, windows get a leading space.

    Probed on a made-up word: its tokens at the start of a text are compared with its
    tokens after another word and a space.
    """
    probe = "ltwa"
    alone = tokenizer(probe, add_special_tokens=False)["input_ids"]
    after = tokenizer(f"ltwa {probe}", add_special_tokens=False)["input_ids"]
    return after[len(after) - len(alone) :] == alone
