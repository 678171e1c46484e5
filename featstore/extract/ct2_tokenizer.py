"""A Hugging Face Whisper tokenizer from the files of a CTranslate2 Whisper model, offline.

faster-whisper style directories ship ``tokenizer.json`` (a ``tokenizers`` byte-level BPE
with Whisper's special tokens) and ``vocabulary.txt``/``vocabulary.json`` (one token per
id, timestamp tokens included). The tokenizer file stops at ``<|notimestamps|>``; the
timestamp tokens ``<|0.00|>`` … ``<|30.00|>`` that follow in the model's vocabulary are
added so that ids and the output layer agree. Merges that the vocabulary needs but the
file lacks are restored (one shipped whisper-base ``tokenizer.json`` misses ``Ġ t``, the
first merge, which splits every `` t…`` word into two tokens).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from featstore.errors import ModelError

EOT, SOT = "<|endoftext|>", "<|startoftranscript|>"
NO_TIMESTAMPS, START_OF_PREV = "<|notimestamps|>", "<|startofprev|>"
TRANSCRIBE, TRANSLATE = "<|transcribe|>", "<|translate|>"


def read_vocabulary(directory: Path) -> list[str] | None:
    """Tokens by id from ``vocabulary.json`` or ``vocabulary.txt``, if either exists."""
    if (directory / "vocabulary.json").is_file():
        return list(json.loads((directory / "vocabulary.json").read_text(encoding="utf-8")))
    if (directory / "vocabulary.txt").is_file():
        lines = (directory / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
        return lines[:-1] if lines and lines[-1] == "" else lines
    return None


def _merge_pair(merge: Any) -> tuple[str, str]:
    left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
    return left, right


def restore_missing_merges(tokenizer_json: dict[str, Any]) -> list[tuple[str, str]]:
    """Add the BPE merges that vocabulary tokens need but the file lacks (in place).

    A byte-level BPE token longer than one symbol is reachable only through a merge that
    produces it. For each unreachable token, the split into two known tokens whose later
    part appeared earliest is added, at the rank given by the token's id (Whisper's
    merges are ordered by the id of the token they produce). Added tokens (specials,
    timestamps) are not part of the BPE and are skipped.

    Returns the merges added.
    """
    model = tokenizer_json["model"]
    vocab: dict[str, int] = model["vocab"]
    raw_merges = list(model["merges"])
    pairs = [_merge_pair(m) for m in raw_merges]
    produced = {left + right for left, right in pairs}
    added_tokens = {t["content"] for t in tokenizer_json.get("added_tokens", [])}
    missing = sorted(
        (token_id, token)
        for token, token_id in vocab.items()
        if len(token) > 1 and token not in produced and token not in added_tokens
    )
    result_ids = [vocab.get(left + right, -1) for left, right in pairs]
    ordered = all(a < b for a, b in itertools.pairwise(result_ids))
    restored: list[tuple[str, str]] = []
    for token_id, token in missing:
        splits = [
            (token[:k], token[k:])
            for k in range(1, len(token))
            if token[:k] in vocab and token[k:] in vocab
        ]
        if not splits:
            continue
        pair = min(splits, key=lambda s: max(vocab[s[0]], vocab[s[1]]))
        rank = (
            next((i for i, rid in enumerate(result_ids) if rid > token_id), len(pairs))
            if ordered
            else len(pairs)
        )
        pairs.insert(rank, pair)
        result_ids.insert(rank, token_id)
        raw_merges.insert(rank, " ".join(pair) if isinstance(raw_merges[0], str) else list(pair))
        restored.append(pair)
    model["merges"] = raw_merges
    return restored


def build_whisper_tokenizer(directory: Path, vocab_size: int):
    """A ``WhisperTokenizer`` from ``directory/tokenizer.json``, sized to ``vocab_size``.

    Parameters
    ----------
    directory
        Directory with ``tokenizer.json`` and optionally ``vocabulary.txt``/``.json``.
    vocab_size
        Rows of the model's token embedding; tokens past the file's last id are the
        timestamp tokens (named from the vocabulary file, else ``<|0.00|>`` in 0.02 s steps).

    Returns
    -------
    transformers.WhisperTokenizer
    """
    from tokenizers import AddedToken, Tokenizer
    from transformers import WhisperTokenizer

    path = directory / "tokenizer.json"
    if not path.is_file():
        raise ModelError(f"{directory} has no tokenizer.json; the converter needs it")
    tokenizer_json = json.loads(path.read_text(encoding="utf-8"))
    restore_missing_merges(tokenizer_json)
    backend = Tokenizer.from_str(json.dumps(tokenizer_json))
    n_file = backend.get_vocab_size()
    vocabulary = read_vocabulary(directory)
    if vocabulary is not None:
        if len(vocabulary) != vocab_size:
            raise ModelError(
                f"{directory}: the vocabulary file has {len(vocabulary)} tokens but the model's "
                f"embedding has {vocab_size} rows; expected equal"
            )
        clash = next(
            (i for i in range(n_file) if backend.id_to_token(i) not in (None, vocabulary[i])),
            None,
        )
        if clash is not None:
            raise ModelError(
                f"{directory}: token {clash} is {backend.id_to_token(clash)!r} in tokenizer.json "
                f"but {vocabulary[clash]!r} in the vocabulary file; expected the same ids"
            )
        extra = vocabulary[n_file:]
    else:
        first = n_file - backend.token_to_id(NO_TIMESTAMPS) - 1
        extra = [f"<|{(first + i) * 0.02:.2f}|>" for i in range(vocab_size - n_file)]
    backend.add_tokens([AddedToken(t, special=False, normalized=False) for t in extra])
    if backend.get_vocab_size() != vocab_size:
        raise ModelError(
            f"{path}: tokenizer has {backend.get_vocab_size()} tokens after adding timestamps "
            f"but the model has {vocab_size}"
        )
    for token in (EOT, SOT, NO_TIMESTAMPS):
        if backend.token_to_id(token) is None:
            raise ModelError(f"{path} has no {token} token; is it a Whisper tokenizer?")
    return WhisperTokenizer(tokenizer_object=backend, unk_token=EOT, bos_token=EOT, eos_token=EOT)
