"""Whisper's encoder on audio windows, pooled over the frames that cover real audio.

Whisper's encoder always takes 30 s of log-mel input (3000 frames): the feature
extractor pads every window with zeros to 30 s. Pooling those padding frames would
make a 1-TR window mostly silence, so only the encoder frames that cover the window's
samples are averaged. Their number follows from the front end: one log-mel frame per
``hop_length`` = 160 samples (centred STFT: frame ``i`` is centred on sample
``160·i``), then ``conv1`` (stride 1) and ``conv2`` (stride 2), so encoder frame
``j`` is centred on sample ``320·j`` and the frames whose centre lies inside a window
of ``n`` samples are the first ``ceil(n / 320)`` (≈ 50 per second), capped at the
encoder's 1500 positions. The hop and the conv strides are read from the loaded
extractor and model, not assumed.

Layers: 0 = conv front end + positional embedding (the encoder's input to its first
block), 1..L = the encoder blocks as transformers reports them (the last includes the
encoder's final layer norm). The decoder is not used.

``pad_to_30s=False`` (opt-in) runs the encoder on the window's own frames only: the
log-mel frames of the window (computed exactly as for the padded input, then cut), the
conv front end, the first positional embeddings, the blocks. A 1.5-s window then costs
~1/20 of the padded pass; the features differ because attention no longer sees the
padding frames (``benchmarks/whisper_unpadded.py`` measures the per-layer agreement and
the speed ratio on real speech; ``docs/performance.md`` has the figures).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from featstore.extract.common import (
    check_precision,
    compute_precision,
    load_pretrained,
    resolve_device,
)
from featstore.extract.pooling import frame_mask, last_frames, masked_mean
from featstore.extract.registry import ModelSpec
from featstore.extract.window_run import WindowEncoder


def covered_frames(n_samples: int, samples_per_frame: int, max_frames: int) -> int:
    """Encoder frames whose centre lies in ``n_samples`` of audio: ``ceil(n / spf)``, capped."""
    return min(math.ceil(n_samples / samples_per_frame), max_frames)


def unpadded_hidden_states(encoder, mel: Any, n_frames: int) -> tuple:
    """Hidden states of the encoder run on the first ``n_frames`` encoder frames only.

    ``mel``: log-mel input (batch, n_mels, >= 2 * n_frames frames). Same layers as
    transformers' ``output_hidden_states`` (the last one after the final layer norm),
    with the positional embeddings cut to ``n_frames``.
    """
    from torch.nn import functional

    mel = mel[..., : n_frames * encoder.conv1.stride[0] * encoder.conv2.stride[0]]
    hidden = functional.gelu(encoder.conv1(mel))
    hidden = functional.gelu(encoder.conv2(hidden)).permute(0, 2, 1)
    hidden = hidden + encoder.embed_positions.weight[: hidden.shape[1]]
    states = [hidden]
    for layer in encoder.layers:
        hidden = layer(hidden, None)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        states.append(hidden)
    states[-1] = encoder.layer_norm(states[-1])
    return tuple(states)


def load_whisper_encoder(
    spec: ModelSpec,
    *,
    device: str | None = None,
    revision: str | None = None,
    precision: str = "float32",
    pad_to_30s: bool = True,
) -> WindowEncoder:
    """Load a Whisper model's encoder and feature extractor as a :class:`WindowEncoder`.

    ``pad_to_30s=False`` runs the encoder on the window's frames only (see the module
    docstring); the default keeps Whisper's 30-s input.
    """
    import torch
    from transformers import WhisperFeatureExtractor, WhisperModel

    device = resolve_device(device)
    check_precision(precision, device)
    extractor = load_pretrained(WhisperFeatureExtractor, spec, revision)
    model = load_pretrained(WhisperModel, spec, revision)
    encoder = model.get_encoder().eval().to(device)
    del model  # the decoder is never used
    samples_per_frame = (
        int(extractor.hop_length) * encoder.conv1.stride[0] * encoder.conv2.stride[0]
    )
    max_frames = int(encoder.config.max_source_positions)
    sample_rate = int(extractor.sampling_rate)

    def encode(windows: np.ndarray, pool_samples: int | None = None) -> np.ndarray:
        inputs = extractor(
            list(windows), sampling_rate=sample_rate, return_tensors="pt", device=device
        )
        n_valid = covered_frames(windows.shape[1], samples_per_frame, max_frames)
        mel = inputs["input_features"].to(device)
        with torch.inference_mode():
            with compute_precision(precision, device):  # the model only, not the mel input
                if pad_to_30s:
                    states = encoder(mel, output_hidden_states=True).hidden_states
                else:
                    states = unpadded_hidden_states(encoder, mel, n_valid)
            # pooled in float32, outside autocast
            valid = torch.full((windows.shape[0],), n_valid, device=device)
            mask = frame_mask(valid, states[0].shape[1])
            if pool_samples is not None:  # only the frames of the last pool_samples
                mask = last_frames(
                    mask, covered_frames(pool_samples, samples_per_frame, max_frames)
                )
            return masked_mean(states, mask)

    n_blocks = int(encoder.config.encoder_layers)
    return WindowEncoder(
        encode=encode,
        layer_names=["embeddings"] + [f"block{i}" for i in range(1, n_blocks + 1)],
        dim=int(encoder.config.d_model),
        pooling=(
            f"mean over the encoder frames covering the window: ceil(samples / "
            f"{samples_per_frame}), never the 30 s padding"
        ),
        settings={
            "model_type": "whisper",
            "encoder_only": True,
            "samples_per_frame": samples_per_frame,
            "n_mel_frames": int(extractor.nb_max_frames),
            "padded_to_30s": bool(pad_to_30s),
        },
        model=encoder,
        revision=revision,
        max_window_s=int(extractor.n_samples) / sample_rate,
        frame_samples=samples_per_frame,
    )
