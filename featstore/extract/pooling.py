"""Pooling frames of hidden states into one vector per window (torch, on the model's device)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from featstore.errors import ModelError


def frame_mask(valid_frames: Any, n_frames: int) -> Any:
    """Boolean ``(batch, n_frames)`` mask, true for the first ``valid_frames[b]`` frames of row b."""
    import torch

    valid = torch.as_tensor(valid_frames).reshape(-1, 1)
    return torch.arange(n_frames, device=valid.device).reshape(1, -1) < valid


def last_frames(mask: Any, n_last: Any) -> Any:
    """``mask`` keeping only the last ``n_last`` true frames of each row (``(batch, frames)``).

    The frames of a window's trailing span: a word heard after its context is the end
    of the window, so its frames are the last ones the span alone would have.
    """
    import torch

    from_end = mask.flip(1).long().cumsum(dim=1).flip(1)  # true frames at or after each frame
    return mask & (from_end <= torch.as_tensor(n_last, device=mask.device).reshape(-1, 1))


def masked_mean(hidden_states: Sequence[Any], mask: Any) -> np.ndarray:
    """Mean over frames of each layer, counting only frames where ``mask`` is true.

    Parameters
    ----------
    hidden_states
        One ``(batch, frames, dim)`` tensor per layer.
    mask
        ``(batch, frames)`` boolean tensor; every row must have a true frame.

    Returns
    -------
    numpy.ndarray
        ``(layer, batch, dim)`` float32.
    """
    import torch

    weights = mask.float()
    counts = weights.sum(dim=1, keepdim=True)
    if bool((counts == 0).any()):
        raise ModelError(
            "a window has no valid frame to pool; is the window shorter than one frame?"
        )
    # layer by layer: stacking every layer's frames first would copy all hidden states
    pooled = [
        torch.einsum("bfd,bf->bd", h.float(), weights.to(h.device)) / counts.to(h.device)
        for h in hidden_states
    ]
    return torch.stack(pooled).cpu().numpy().astype(np.float32, copy=False)


def stack_padded(vectors: Sequence[Any]) -> tuple[np.ndarray, list[int]]:
    """Stack per-layer ``(batch, dim_l)`` arrays of unequal widths into ``(layer, batch, max dim)``.

    Narrower layers are zero-filled on the right; the true widths are returned so they
    can be recorded (``layer_dims`` attr) and sliced back.
    """
    arrays = [np.asarray(v, dtype=np.float32) for v in vectors]
    dims = [a.shape[1] for a in arrays]
    out = np.zeros((len(arrays), arrays[0].shape[0], max(dims)), dtype=np.float32)
    for layer, array in enumerate(arrays):
        out[layer, :, : array.shape[1]] = array
    return out, dims
