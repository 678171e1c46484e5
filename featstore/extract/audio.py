"""Self-supervised speech models (wav2vec 2.0, WavLM, HuBERT and kin) on audio windows.

Every layer comes from one forward pass (``output_hidden_states=True``): layer 0 is
the output of the CNN feature encoder's projection as the model reports it (for the
base models: projection + convolutional positional embedding + layer norm), layers
1..L the transformer blocks. Frames are averaged over the frames that cover the
window's samples: which output frames are valid is computed from the input lengths
with the model's own ``_get_feat_extract_output_lengths`` (the CNN's kernels and
strides). Windows of one size have equal length, so a batch is never padded (models
such as wav2vec2-base take no attention mask); the zeros before the story's start are
real input, as the window rule says. Since no batch is padded, no attention mask is
passed to the model; the pooling mask comes from the input lengths alone. Waveforms are normalised the way the model's
feature extractor does it (zero mean, unit variance per window when ``do_normalize``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from featstore.extract.common import load_for_inference
from featstore.extract.pooling import frame_mask, last_frames, masked_mean
from featstore.extract.registry import ModelSpec
from featstore.extract.window_run import WindowEncoder


def load_audio_encoder(spec: ModelSpec, **options: Any) -> WindowEncoder:
    """Load a wav2vec2-family model and its feature extractor as a :class:`WindowEncoder`.

    ``options`` (``device``, ``revision``, ``precision``) go to :func:`load_for_inference`.
    """
    import torch
    from transformers import AutoFeatureExtractor, AutoModel

    loaded = load_for_inference(AutoFeatureExtractor, AutoModel, spec, **options)
    extractor, model, device = loaded.processor, loaded.model, loaded.device
    sample_rate = int(extractor.sampling_rate)

    def encode(windows: np.ndarray, pool_samples: int | None = None) -> np.ndarray:
        # windows of one size have equal length, so the batch is never padded and no
        # attention mask is passed (an all-ones mask changes nothing; wav2vec2-base
        # models must not get one at all)
        inputs = extractor(list(windows), sampling_rate=sample_rate, return_tensors="pt")
        values = inputs["input_values"].to(device)
        lengths = torch.full((values.shape[0],), windows.shape[1], dtype=torch.long)
        with torch.inference_mode():
            with loaded.forward_precision():
                out = model(values, output_hidden_states=True)
            # pooled in float32, outside autocast
            valid = model._get_feat_extract_output_lengths(lengths).to(device)
            mask = frame_mask(valid, out.hidden_states[0].shape[1])
            if pool_samples is not None:  # only the frames of the last pool_samples
                span = model._get_feat_extract_output_lengths(torch.tensor(pool_samples))
                mask = last_frames(mask, span)
            return masked_mean(out.hidden_states, mask)

    n_blocks = int(model.config.num_hidden_layers)
    return WindowEncoder(
        encode=encode,
        layer_names=["embeddings"] + [f"block{i}" for i in range(1, n_blocks + 1)],
        dim=int(model.config.hidden_size),
        pooling="mean over the frames covering the window (attention mask from input lengths)",
        settings={
            "model_type": model.config.model_type,
            "do_normalize": bool(getattr(extractor, "do_normalize", False)),
        },
        model=model,
        revision=loaded.revision,
        frame_samples=int(np.prod(model.config.conv_stride)),
    )
