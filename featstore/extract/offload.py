"""Offloaded models: which weights are resident, and freed memory handed back between blocks.

With ``device_map`` and weights offloaded to disk (or, next to a GPU, to CPU memory),
Accelerate reads each module's weights just before it runs and drops them after, and
transformers reads disk-offloaded weights straight from the checkpoint's safetensors
files (memory-mapped, never copied). Weights alone thus stay within one module at a time.
What grew instead, measured on a 494 M-parameter model (``benchmarks/extract_lm.py``),
is memory the forward pass had freed: glibc's allocator kept ~0.9 GB of freed
activation buffers in its main heap (1.16 GB held, 0.15 GB in use) rather than hand it
back. Trimming the heap after each block (``malloc_trim``) bounds the process by the
resident layers, one offloaded module and the activations (docs/extraction-text.md).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any


def offloaded_parameters(model: Any) -> list[str]:
    """Names of the parameters not resident in memory (kept on disk or CPU by Accelerate).

    Accelerate leaves an offloaded parameter on the ``meta`` device (shape, no data)
    outside the forward pass of its module.

    Examples
    --------
    >>> import torch
    >>> layer = torch.nn.Linear(3, 2, device="meta")
    >>> offloaded_parameters(layer)
    ['weight', 'bias']
    """
    return [name for name, p in model.named_parameters() if p.device.type == "meta"]


def return_freed_memory(model: Any, trim: Callable[[], Any] | None = None) -> int:
    """After each block of an offloaded model, hand freed heap memory back to the system.

    Does nothing unless some parameters are offloaded (:func:`offloaded_parameters`), or
    where the C library has no ``malloc_trim`` (it is glibc's). Blocks are the modules
    that transformers keeps whole on one device (``model._no_split_modules``, such as
    ``Qwen2DecoderLayer``), else the model itself.

    Parameters
    ----------
    model
        A model dispatched by Accelerate.
    trim
        Called after each block; glibc's ``malloc_trim(0)`` by default.

    Returns
    -------
    int
        Number of modules after whose forward pass ``trim`` runs.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2, device="meta"))
    >>> calls = []
    >>> return_freed_memory(model, trim=lambda: calls.append(1))
    1
    >>> model(torch.zeros(1, 3, device="meta")).shape, len(calls)
    (torch.Size([1, 2]), 1)
    """
    if not offloaded_parameters(model):
        return 0
    trim = trim or _malloc_trim()
    if trim is None:
        return 0
    block_names = set(getattr(model, "_no_split_modules", None) or ())
    blocks = [m for m in model.modules() if type(m).__name__ in block_names] or [model]

    def after_block(module, inputs, output) -> None:
        trim()

    for block in blocks:
        block.register_forward_hook(after_block)
    return len(blocks)


def _malloc_trim() -> Callable[[], Any] | None:
    """glibc's ``malloc_trim(0)``: free pages of every heap go back to the system."""
    try:
        function = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
        return None
    return lambda: function(0)
