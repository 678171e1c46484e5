"""A text model and its fast tokenizer, and word vectors of every layer from word windows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from featstore.errors import InputError, ModelError
from featstore.extract.common import (
    compute_precision,
    load_error,
    load_errors,
    quiet_loading,
    resolved_revision,
)
from featstore.extract.registry import ModelSpec
from featstore.extract.text_windows import (
    byte_level_without_prefix_space,
    encode_windows,
    plan_windows,
)

POOLINGS = ("last", "mean")

# Models whose position ids start after the padding index (RoBERTa and its kin), so
# they take ``padding_idx + 1`` fewer tokens than they have position embeddings.
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "longformer")


@dataclass
class TextModel:
    """A loaded model, ready to run word windows.

    Attributes
    ----------
    n_layers
        Number of hidden states returned (embeddings + blocks).
    dim
        Width of each hidden state.
    max_tokens
        Most tokens one window may have (special tokens included).
    precision
        Arithmetic of the forward pass (:data:`featstore.extract.common.PRECISIONS`).
    """

    tokenizer: Any
    model: Any
    device: str
    revision: str
    n_layers: int
    dim: int
    max_tokens: int
    pad_id: int
    precision: str = "float32"


def max_model_tokens(config: Any, tokenizer: Any) -> int:
    """The most tokens the model takes in one sequence (tokenizer and position limits)."""
    limits = []
    if 0 < (tokenizer.model_max_length or 0) < 1_000_000:
        limits.append(int(tokenizer.model_max_length))
    positions = getattr(config, "max_position_embeddings", None) or getattr(
        config, "n_positions", None
    )
    if positions:
        offset = 0
        if getattr(config, "model_type", "") in _OFFSET_POSITIONS:
            offset = int(getattr(config, "pad_token_id", 1) or 0) + 1
        limits.append(int(positions) - offset)
    return min(limits) if limits else 1_000_000


def load_text_model(spec: ModelSpec, *, revision: str | None, device: str) -> TextModel:
    """Load a model and its fast tokenizer with ``from_pretrained``.

    Byte-level BPE tokenizers (GPT-2, RoBERTa) are loaded with
    ``add_prefix_space=True`` so that pre-split words stay separate words.
    Raises :class:`ModelError` when the model cannot be loaded or has no fast tokenizer.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    options = {"revision": revision, "local_files_only": spec.local_files_only}
    try:
        with quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(spec.model_id, **options)
            if tokenizer.is_fast and byte_level_without_prefix_space(tokenizer):
                tokenizer = AutoTokenizer.from_pretrained(
                    spec.model_id, add_prefix_space=True, **options
                )
            model = AutoModel.from_pretrained(spec.model_id, **options)
    except load_errors() as exc:
        raise load_error(spec, exc) from exc
    if not tokenizer.is_fast:
        raise ModelError(
            f"{spec.model_id}: no fast tokenizer (tokenizer.json); word_ids() needs one"
        )
    model.eval().to(device)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:  # GPT-2 has no pad token; right pads are never attended to
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    probe = tokenizer([["the"]], is_split_into_words=True, return_tensors="pt")
    with torch.inference_mode():
        states = model(**{k: v.to(device) for k, v in probe.items()}, output_hidden_states=True)
    if getattr(states, "hidden_states", None) is None:
        raise ModelError(f"{spec.model_id}: the model returns no hidden states")
    return TextModel(
        tokenizer=tokenizer,
        model=model,
        device=device,
        revision=resolved_revision(model, revision),
        n_layers=len(states.hidden_states),
        dim=int(states.hidden_states[-1].shape[-1]),
        max_tokens=max_model_tokens(model.config, tokenizer),
        pad_id=int(pad_id),
    )


@dataclass
class WordVectors:
    """Pooled vectors of target words.

    Attributes
    ----------
    values
        ``(layer, target, dim)`` float32; zeros for a word that produced no token.
    context_words
        ``(target,)`` words the vector saw, the word itself included (0: no token).
    truncated
        ``(target,)`` the window was cut at the start to fit the model.
    """

    values: np.ndarray
    context_words: np.ndarray
    truncated: np.ndarray


def word_vectors(
    text_model: TextModel,
    words: Sequence[str],
    targets: Sequence[int],
    *,
    ctx: int,
    pool: str = "last",
    stride: int | None = None,
    batch_size: int = 16,
    on_batch: Callable[[int], None] | None = None,
) -> WordVectors:
    """Every layer's vector of each target word, from windows of ``ctx`` words.

    Parameters
    ----------
    text_model
        From :func:`load_text_model`.
    words
        The input words (no missing ones); targets index into it.
    targets
        Positions of the words wanted, increasing.
    ctx
        Words per window, the target included.
    pool
        ``last`` (the target's last token) or ``mean`` (mean of its tokens).
    stride
        Stride mode: up to ``stride`` consecutive targets read from one window.
    batch_size
        Windows per forward pass.
    on_batch
        Called with the number of targets done after each forward pass.
    """
    import torch

    if pool not in POOLINGS:
        raise InputError(f"--pool {pool!r}: expected one of {', '.join(POOLINGS)}")
    if batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {batch_size}")
    slot_of = {int(t): k for k, t in enumerate(targets)}
    values = np.zeros((text_model.n_layers, len(slot_of), text_model.dim), np.float32)
    context_words = np.zeros(len(slot_of), np.int64)
    truncated = np.zeros(len(slot_of), bool)
    windows = plan_windows(list(slot_of), ctx, stride)
    for first in range(0, len(windows), batch_size):
        batch = windows[first : first + batch_size]
        encoded = encode_windows(
            text_model.tokenizer,
            words,
            batch,
            max_tokens=text_model.max_tokens,
            pool=pool,
            pad_id=text_model.pad_id,
        )
        rows, cols, segments, slots, counts = [], [], [], [], []
        for b, window in enumerate(batch):
            drop = encoded.dropped[b]
            for target, tokens in zip(window.targets, encoded.target_tokens[b], strict=True):
                slot = slot_of[target]
                context_words[slot] = target - window.start - drop + 1 if tokens else 0
                truncated[slot] = drop > 0
                rows += [b] * len(tokens)
                cols += tokens
                segments += [len(slots)] * len(tokens)
                slots.append(slot)
                counts.append(max(len(tokens), 1))
        device = text_model.device
        with torch.inference_mode():
            with compute_precision(text_model.precision, device):
                output = text_model.model(
                    input_ids=torch.tensor(encoded.input_ids, device=device),
                    attention_mask=torch.tensor(encoded.attention_mask, device=device),
                    output_hidden_states=True,
                )
            # pooled in float32, outside autocast
            index = torch.tensor(segments, dtype=torch.long, device=device)
            gathered = torch.stack([h[rows, cols] for h in output.hidden_states]).float()
            pooled = torch.zeros(
                (gathered.shape[0], len(slots), gathered.shape[-1]), device=device
            ).index_add_(1, index, gathered)
            pooled /= torch.tensor(counts, dtype=pooled.dtype, device=device)[None, :, None]
        values[:, slots] = pooled.cpu().numpy()
        if on_batch is not None:
            on_batch(len(slots))
    return WordVectors(values=values, context_words=context_words, truncated=truncated)
