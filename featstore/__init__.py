"""featstore: extract once, evaluate many.

A Zarr feature store for brain-encoding research on naturalistic stimuli: model hidden
states of every layer are extracted once into one store, and encoding models are
evaluated lazily from it.

The public objects are imported on first use, so that ``import featstore`` (and the
command line's start-up) stays light.

Notices and progress lines go to the ``featstore`` logger (one child logger per module);
route them with :mod:`logging` as ``docs/logging.md`` shows.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

__version__ = "0.1.0"

# The library convention: records go nowhere until the application routes them (the
# command line does; a notebook calls logging.basicConfig or adds its own handler).
logging.getLogger(__name__).addHandler(logging.NullHandler())

#: Public name -> module that defines it (imported when the name is first used).
_LAZY = {
    "Run": "featstore.api",
    "Store": "featstore.api",
    "create_collection": "featstore.api",
    "create_store": "featstore.api",
    "import_dataset": "featstore.api",
    "open_store": "featstore.api",
    "EncodingModel": "featstore.evaluate.encoding.estimator",
    "EncodingSettings": "featstore.evaluate.encoding.settings",
    "EncodingResult": "featstore.evaluate.encoding.result",
    "encode": "featstore.evaluate.encoding.pipeline",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'featstore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
