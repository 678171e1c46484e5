"""Audio large language models (Qwen2-Audio) on audio windows: every LLM layer.

An audio LLM encodes a window of audio with its Whisper-like audio tower, projects the
encoder frames into the language model's embedding space, and reads them as a run of
``<|AUDIO|>`` tokens between ``<|audio_bos|>`` and ``<|audio_eos|>``. The stored layers
are the **language model's**: layer 0 = its input embeddings (the projected audio at
the audio positions), 1..L = its decoder blocks as transformers reports them (the last
after the final norm). Each layer is averaged over the audio-token positions, i.e. the
LLM's states for the window's audio; the frames of the feature extractor's 30-s padding
never become tokens (the processor counts the tokens from the valid mel frames, 25 per
second of audio for Qwen2-Audio: mel hop 10 ms, conv stride 2, average pooling 2).

The prompt is the processor's audio placeholder only (no instruction text, no chat
template), so every window is read the same way. Windows of one size give the same
number of audio tokens, so a batch is never padded. The audio tower is limited to 30 s
of audio (``--tr-win`` × TR must not exceed it).
"""

from __future__ import annotations

import numpy as np

from featstore.errors import ModelError
from featstore.extract.common import (
    check_precision,
    compute_precision,
    load_pretrained,
    resolve_device,
)
from featstore.extract.pooling import masked_mean
from featstore.extract.registry import ModelSpec
from featstore.extract.window_run import WindowEncoder

#: What each window is given to read: the audio placeholder of Qwen2-Audio's processor.
PROMPT = "<|audio_bos|><|AUDIO|><|audio_eos|>"


def load_audio_llm(
    spec: ModelSpec,
    *,
    device: str | None = None,
    revision: str | None = None,
    precision: str = "float32",
) -> WindowEncoder:
    """Load a Qwen2-Audio model and its processor as a :class:`WindowEncoder`."""
    import torch
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    device = resolve_device(device)
    check_precision(precision, device)
    processor = load_pretrained(AutoProcessor, spec, revision)
    model = load_pretrained(Qwen2AudioForConditionalGeneration, spec, revision).eval().to(device)
    audio_token_id = int(model.config.audio_token_id)
    sample_rate = int(processor.feature_extractor.sampling_rate)

    def encode(windows: np.ndarray) -> np.ndarray:
        inputs = processor(
            text=[PROMPT] * len(windows),
            audio=list(windows),
            sampling_rate=sample_rate,
            return_tensors="pt",
        ).to(device)
        audio_positions = inputs["input_ids"] == audio_token_id
        if not bool(audio_positions.any(dim=1).all()):
            raise ModelError(
                f"{spec.name}: a window of {windows.shape[1]} samples gives no audio token; "
                "use a longer `tr_wins`"
            )
        with torch.inference_mode():
            with compute_precision(precision, device):
                states = model(**inputs, output_hidden_states=True).hidden_states
            # pooled in float32, outside autocast
            return masked_mean(states, audio_positions)

    text_config = model.config.text_config
    n_blocks = int(text_config.num_hidden_layers)
    return WindowEncoder(
        encode=encode,
        layer_names=["embeddings"] + [f"block{i}" for i in range(1, n_blocks + 1)],
        dim=int(text_config.hidden_size),
        pooling="mean over the language model's audio-token positions (no padding frames)",
        settings={
            "model_type": model.config.model_type,
            "prompt": PROMPT,
            "layers_of": "language model",
        },
        model=model,
        revision=revision,
        max_window_s=int(processor.feature_extractor.n_samples) / sample_rate,
    )
