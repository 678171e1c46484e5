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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from featstore.extract.common import (
    check_precision,
    compute_precision,
    load_pretrained,
    resolve_device,
)
from featstore.extract.pooling import frame_mask, masked_mean
from featstore.extract.registry import ModelSpec
from featstore.extract.window_run import WindowEncoder, extract_model_windows
from featstore.store.groups import StorePath


def covered_frames(n_samples: int, samples_per_frame: int, max_frames: int) -> int:
    """Encoder frames whose centre lies in ``n_samples`` of audio: ``ceil(n / spf)``, capped."""
    return min(math.ceil(n_samples / samples_per_frame), max_frames)


def load_whisper_encoder(
    spec: ModelSpec,
    *,
    device: str | None = None,
    revision: str | None = None,
    precision: str = "float32",
) -> WindowEncoder:
    """Load a Whisper model's encoder and feature extractor as a :class:`WindowEncoder`."""
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

    def encode(windows: np.ndarray) -> np.ndarray:
        inputs = extractor(
            list(windows), sampling_rate=sample_rate, return_tensors="pt", device=device
        )
        n_valid = covered_frames(windows.shape[1], samples_per_frame, max_frames)
        with torch.inference_mode():
            with compute_precision(precision, device):  # the model only, not the mel input
                out = encoder(inputs["input_features"].to(device), output_hidden_states=True)
            # pooled in float32, outside autocast
            valid = torch.full((windows.shape[0],), n_valid, device=device)
            return masked_mean(out.hidden_states, frame_mask(valid, max_frames))

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
        },
        model=encoder,
        revision=revision,
        max_window_s=int(extractor.n_samples) / sample_rate,
    )


def extract_whisper(
    store: StorePath,
    spec: ModelSpec,
    *,
    tr_wins: Sequence[int],
    batch_size: int = 8,
    device: str | None = None,
    dtype: str = "float32",
    precision: str = "float32",
    revision: str | None = None,
    overwrite: bool = False,
    progress: bool = False,
    threads: int | None = None,
) -> list[str]:
    """Extract every encoder layer of a Whisper model for each window in ``tr_wins``.

    Writes ``features/<key>/tr<w>`` per window and returns the groups written.
    Example: ``extract_whisper("s.zarr", resolve_model("whisper-base"), tr_wins=[6])``.
    """
    return extract_model_windows(
        store,
        spec,
        load_whisper_encoder,
        tr_wins=tr_wins,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        precision=precision,
        revision=revision,
        overwrite=overwrite,
        progress=progress,
        threads=threads,
    )
