"""CLAP's audio encoder (HTS-AT) on audio windows, at 48 kHz, through the unfused path.

Input: each 16 kHz window is resampled to the extractor's rate (48 kHz) with soxr
(each window on its own, as the model sees it), then turned into one log-mel
spectrogram by the feature extractor set for the *unfused* path:
``truncation="rand_trunc"`` with windows never longer than the extractor's 10 s (so no
random crop ever happens) and ``padding="repeatpad"``, CLAP's training-time filling:
the window is repeated to fill 10 s and the remainder (shorter than one window) is
zeros. The extractor's default ``truncation="fusion"`` stacks four copies of the mel
(a 4-channel input) that an unfused model rejects. Fused checkpoints
(``enable_fusion``) get the 4-channel input with ``is_longer`` false for every
window, which is what they see for clips up to 10 s.

A CLAP "layer": layer 0 is the patch embedding, layers 1..S the output of each
HTS-AT stage (before its patch merging), each averaged over all time × frequency
positions, as HTS-AT's own pooling averages its last stage (the 10 s input is
folded into a square image, so positions are not separable by time); the last
layer is the projected audio embedding (``audio_embeds``, before normalisation).
Widths differ (e.g. 96, 96, 192, 384, 768, 512 for clap-htsat-unfused); the stored
``dim`` is the widest and narrower layers are zero-filled on the right, with each
layer's true width in the ``layer_dims`` attr: slice ``hidden[layer, :, :layer_dims[layer]]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from featstore.errors import ModelError
from featstore.extract.common import load_for_inference
from featstore.extract.pooling import stack_padded
from featstore.extract.registry import ModelSpec
from featstore.extract.window_run import WindowEncoder
from featstore.store import _schema as S


def resample(windows: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample each row of ``(batch, samples)`` from ``rate_in`` to ``rate_out`` Hz (soxr HQ)."""
    import soxr

    if rate_in == rate_out:
        return windows
    # soxr treats the columns of a 2-D input as independent channels
    out = soxr.resample(np.ascontiguousarray(windows.T), rate_in, rate_out, quality="HQ")
    return np.ascontiguousarray(out.T, dtype=np.float32)


def load_clap_encoder(spec: ModelSpec, **options: Any) -> WindowEncoder:
    """Load CLAP's audio tower with its projection as a :class:`WindowEncoder`.

    ``options`` (``device``, ``revision``, ``precision``) go to :func:`load_for_inference`.
    """
    import torch
    from transformers import ClapAudioModelWithProjection, ClapFeatureExtractor

    loaded = load_for_inference(ClapFeatureExtractor, ClapAudioModelWithProjection, spec, **options)
    extractor, model, device = loaded.processor, loaded.model, loaded.device
    fused = bool(model.config.enable_fusion)
    channels = 4 if fused else 1
    rate = int(extractor.sampling_rate)
    config = model.config
    stage_dims = [int(config.patch_embeds_hidden_size * 2**i) for i in range(len(config.depths))]
    layer_dims = [stage_dims[0], *stage_dims, int(config.projection_dim)]

    def encode(windows: np.ndarray) -> np.ndarray:
        inputs = extractor(
            list(resample(windows, S.AUDIO_SAMPLE_RATE, rate)),
            sampling_rate=rate,
            truncation="fusion" if fused else "rand_trunc",
            padding="repeatpad",
            return_tensors="pt",
        )
        features = inputs["input_features"]
        if features.shape[1] != channels:
            raise ModelError(
                f"CLAP feature extractor gave {features.shape[1]}-channel input for a "
                f"{'fused' if fused else 'unfused'} model; expected {channels}"
            )
        # windows never exceed max_length_s, so none is "longer" (fusion would pick one at random)
        is_longer = torch.zeros((features.shape[0], 1), dtype=torch.bool)
        with torch.inference_mode():
            with loaded.forward_precision():
                out = model(
                    input_features=features.to(device),
                    is_longer=is_longer.to(device),
                    output_hidden_states=True,
                    output_hidden_states_before_downsampling=True,
                )
            # pooled in float32, outside autocast
            stages = [h.float().mean(dim=(2, 3)).cpu().numpy() for h in out.hidden_states]
            embeds = out.audio_embeds.float().cpu().numpy()
        pooled, dims = stack_padded([*stages, embeds])
        if dims != layer_dims:
            raise ModelError(f"CLAP layer widths {dims} differ from the config's {layer_dims}")
        return pooled

    return WindowEncoder(
        encode=encode,
        layer_names=[
            "patch_embed",
            *(f"stage{i}" for i in range(1, len(stage_dims) + 1)),
            "projection",
        ],
        dim=max(layer_dims),
        pooling="mean over time x frequency of each HTS-AT stage; projected audio embedding",
        settings={
            "model_type": "clap",
            "sample_rate_model": rate,
            "resampler": "soxr HQ",
            "truncation": "fusion" if fused else "rand_trunc",
            "padding": "repeatpad",
            "enable_fusion": fused,
        },
        model=model,
        revision=loaded.revision,
        layer_dims=layer_dims,
        max_window_s=float(extractor.max_length_s),
    )
