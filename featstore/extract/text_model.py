"""A language model and its tokenizer, and word vectors of every layer from word windows."""

from __future__ import annotations

import logging
import re
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
from featstore.extract.offload import return_freed_memory
from featstore.extract.registry import KNOWN_TEXT_FAMILIES, ModelSpec
from featstore.extract.text_tokens import reads_start_as_a_word
from featstore.extract.text_windows import encode_windows, plan_windows

POOLINGS = ("last", "mean")

logger = logging.getLogger(__name__)

# Models whose position ids start after the padding index (RoBERTa and its kin), so
# they take ``padding_idx + 1`` fewer tokens than they have position embeddings.
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "longformer")


@dataclass
class TextModel:
    """A loaded model, ready to run word windows.

    Attributes
    ----------
    n_layers
        Number of hidden states the model returns (embeddings + blocks).
    dim
        Width of each hidden state.
    max_tokens
        Most tokens one window may have (special tokens included).
    layers
        Labels of the hidden states kept (0 = embeddings), all by default.
    lead
        Text put before each window (``" "`` where the tokenizer would read the first
        word unlike a word after a space).
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
    layers: tuple[int, ...] = ()
    lead: str = ""

    def __post_init__(self) -> None:
        if not self.layers:
            self.layers = tuple(range(self.n_layers))


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


@dataclass(frozen=True)
class LoadOptions:
    """How to place a model: precision of its weights, device, offloading, layers to keep.

    Attributes
    ----------
    precision
        Dtype the weights are loaded in (``float32``, ``bfloat16``, ``float16``): half
        widths halve the memory a model takes.
    device_map
        ``None`` (the whole model on ``device``) or an Accelerate device map such as
        ``auto``: layers spread over GPUs, then CPU memory, then ``offload_folder`` on
        disk, each moved onto the GPU (or read from disk) only while it runs.
    max_memory
        With ``device_map``: the most memory per device, ``{"0": "20GiB", "cpu": "8GiB"}``.
    offload_folder
        With ``device_map``: where layers that fit nowhere in memory are kept.
    layers
        Labels of the hidden states to keep (``None``: all of them).
    """

    precision: str = "float32"
    device_map: str | None = None
    max_memory: dict[str, str] | None = None
    offload_folder: str | None = None
    layers: tuple[int, ...] | None = None


def load_text_model(
    spec: ModelSpec,
    *,
    revision: str | None,
    device: str,
    options: LoadOptions | None = None,
) -> TextModel:
    """Load a language model (or the encoder of an encoder-decoder) and its tokenizer.

    Any model ``transformers`` loads as a base model works; see :func:`load_base_model`.
    Tokenizers that read the start of a text unlike a word after a space (byte-level BPE
    of GPT-2, RoBERTa, Qwen; Gemma) get a space before each window, so that every word,
    the first of a window included, is read as a word after a space. Raises :class:`ModelError` when the model cannot be loaded or
    returns no hidden states, and :class:`InputError` for layers it does not have.
    """
    import torch

    options = options or LoadOptions()
    if spec.family not in KNOWN_TEXT_FAMILIES:
        logger.warning(
            "%s: model type %r is not among the tested text families; extracting it the "
            "generic way (AutoModel, hidden states of every layer)",
            spec.model_id,
            spec.family,
        )
    tokenizer = load_tokenizer(spec, revision)
    model = load_base_model(spec, revision, device, options)
    if options.device_map is None:
        model.to(device)
    device = _input_device(model, device)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:  # GPT-2 has no pad token; right pads are never attended to
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    probe = tokenizer(["the"], return_tensors="pt")
    with torch.inference_mode():
        states = model(
            input_ids=probe["input_ids"].to(device),
            attention_mask=probe["attention_mask"].to(device),
            output_hidden_states=True,
        )
    if getattr(states, "hidden_states", None) is None:
        raise ModelError(
            f"{spec.model_id}: the model ({type(model).__name__}) returns no hidden states, "
            "so it has no layers to extract"
        )
    n_layers = len(states.hidden_states)
    return TextModel(
        tokenizer=tokenizer,
        model=model,
        device=device,
        revision=resolved_revision(model, revision),
        n_layers=n_layers,
        dim=int(states.hidden_states[-1].shape[-1]),
        max_tokens=max_model_tokens(model.config, tokenizer),
        pad_id=int(pad_id),
        precision=options.precision,
        layers=check_layers(options.layers, n_layers, spec.model_id),
        lead="" if reads_start_as_a_word(tokenizer) else " ",
    )


def check_layers(layers: Sequence[int] | None, n_layers: int, model_id: str) -> tuple[int, ...]:
    """Sorted, distinct layer labels, all of them in ``0..n_layers-1`` (``None``: all)."""
    if layers is None:
        return tuple(range(n_layers))
    wanted = sorted({int(x) for x in layers})
    absent = [x for x in wanted if not 0 <= x < n_layers]
    if not wanted or absent:
        raise InputError(
            f"layers={','.join(map(str, layers))}: {model_id} has layers 0..{n_layers - 1} "
            "(0 = embeddings)"
        )
    return tuple(wanted)


def load_tokenizer(spec: ModelSpec, revision: str | None) -> Any:
    """The model's tokenizer: ``tokenizer.json`` when there is one, else its slow one."""
    from transformers import AutoTokenizer

    try:
        with quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(
                spec.model_id, revision=revision, local_files_only=spec.local_files_only
            )
    except load_errors() as exc:
        raise load_error(spec, exc) from exc
    return tokenizer


def load_base_model(spec: ModelSpec, revision: str | None, device: str, options: LoadOptions):
    """The base model (no head) in eval mode, its weights in ``options.precision``.

    ``AutoModel`` first; a model type registered only with a head
    (``AutoModelForCausalLM`` / ``AutoModelForMaskedLM``) is loaded with it and its
    ``base_model`` kept. Encoder-decoder models (T5, Flan-T5, BART) load their encoder
    alone: ``T5EncoderModel`` where transformers has such a class, else the encoder
    of the whole model. With weights offloaded by ``device_map``, freed memory goes back
    to the system after each block (:func:`featstore.extract.offload.return_freed_memory`).
    """
    import torch
    import transformers
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    kwargs: dict[str, Any] = {
        "revision": revision,
        "local_files_only": spec.local_files_only,
        "dtype": getattr(torch, options.precision),  # never the checkpoint's own ("auto")
    }
    if options.device_map is not None:
        check_accelerate()
        kwargs.update(device_map=options.device_map, offload_folder=options.offload_folder)
        if options.max_memory:
            kwargs["max_memory"] = {_device_key(k): v for k, v in options.max_memory.items()}
    try:
        with quiet_loading(report=False):  # a causal LM's unused lm_head is expected
            config = AutoConfig.from_pretrained(
                spec.model_id, revision=revision, local_files_only=spec.local_files_only
            )
            if getattr(config, "is_encoder_decoder", False):
                name = MODEL_MAPPING_NAMES.get(config.model_type)
                encoder = isinstance(name, str) and getattr(
                    transformers, name.replace("Model", "EncoderModel"), None
                )
                if encoder:
                    model = encoder.from_pretrained(spec.model_id, **kwargs)
                else:
                    model = AutoModel.from_pretrained(spec.model_id, **kwargs).get_encoder()
            elif type(config) in AutoModel._model_mapping:
                model = AutoModel.from_pretrained(spec.model_id, **kwargs)
            else:
                heads = (AutoModelForCausalLM, AutoModelForMaskedLM)
                head = next((h for h in heads if type(config) in h._model_mapping), AutoModel)
                model = head.from_pretrained(spec.model_id, **kwargs).base_model
    except load_errors() as exc:
        raise load_error(spec, exc) from exc
    if options.device_map is not None:
        return_freed_memory(model)
    return model.eval()


def check_accelerate() -> None:
    """``device_map`` needs Accelerate; say how to install it when it is missing."""
    from transformers.utils import is_accelerate_available

    if not is_accelerate_available():
        raise ModelError(
            "`device_map` needs the accelerate package: pip install 'featstore[big]' "
            "(or pip install accelerate)"
        )


def parse_max_memory(text: str | None) -> dict[str, str] | None:
    """``"0=20GiB,cpu=30GiB"`` → ``{"0": "20GiB", "cpu": "30GiB"}`` (Accelerate's sizes)."""
    if text is None:
        return None
    limits = {}
    for part in text.split(","):
        device, _, size = part.strip().partition("=")
        if not (
            re.fullmatch(r"\d+|cpu|disk|mps", device.strip())
            and re.fullmatch(r"\d+(\.\d+)?\s*([KMGT]i?B)?", size.strip(), re.I)
        ):
            raise InputError(
                f"max_memory={text!r}: {part.strip()!r} is not DEVICE=SIZE; expected e.g. "
                "0=20GiB,cpu=30GiB (GPU number or cpu, then a size)"
            )
        limits[device.strip()] = size.strip()
    return limits


def _device_key(name: str) -> int | str:
    """``"0"`` → GPU 0, ``"cpu"``/``"disk"`` as they are (keys of ``max_memory``)."""
    return int(name) if str(name).isdigit() else str(name)


def _input_device(model: Any, device: str) -> str:
    """Where inputs go: the device of the embeddings (the first device of a device map)."""
    device_map = getattr(model, "hf_device_map", None)
    if not device_map:
        return device
    first = next(iter(device_map.values()))
    if first in ("cpu", "disk"):
        return "cpu"
    return f"cuda:{first}" if isinstance(first, int) else str(first)


@dataclass
class WordVectors:
    """Pooled vectors of target words.

    Attributes
    ----------
    values
        ``(layer, target, dim)`` float32, the layers of ``TextModel.layers``; zeros for a
        word that produced no token.
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
        raise InputError(f"pool={pool!r}: expected one of {', '.join(POOLINGS)}")
    if batch_size < 1:
        raise InputError(f"`batch_size` must be >= 1, got {batch_size}")
    slot_of = {int(t): k for k, t in enumerate(targets)}
    layers = list(text_model.layers)
    values = np.zeros((len(layers), len(slot_of), text_model.dim), np.float32)
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
            lead=text_model.lead,
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
            states = output.hidden_states
            gathered = torch.stack([states[k][rows, cols].to(device) for k in layers]).float()
            pooled = torch.zeros(
                (gathered.shape[0], len(slots), gathered.shape[-1]), device=device
            ).index_add_(1, index, gathered)
            pooled /= torch.tensor(counts, dtype=pooled.dtype, device=device)[None, :, None]
        values[:, slots] = pooled.cpu().numpy()
        if on_batch is not None:
            on_batch(len(slots))
    return WordVectors(values=values, context_words=context_words, truncated=truncated)
