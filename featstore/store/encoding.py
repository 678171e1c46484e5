"""How featstore encodes what it writes: the compressor of numeric arrays, JSON-safe attrs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

#: zstd level of every numeric array featstore writes (see array_compressors).
ZSTD_LEVEL = 3


def array_compressors() -> tuple:
    """The compressor of every numeric array featstore writes: zstd, with its checksum.

    The level is Zarr's own default, written out so stores do not change when that
    default does; ``benchmarks/scale.py`` found no codec Zarr ships clearly smaller or
    faster to read for features (docs/store-spec.md, "Compression and chunking"). The
    checksum (4 bytes a chunk) turns a flipped bit on disk into a read error instead of a
    silently wrong value.

    Returns
    -------
    tuple
        Zarr codecs.

    Examples
    --------
    >>> from featstore.store import array_compressors
    >>> array_compressors()
    (ZstdCodec(level=3, checksum=True),)
    """
    from zarr.codecs import ZstdCodec

    return (ZstdCodec(level=ZSTD_LEVEL, checksum=True),)


def with_compressors(
    ds: xr.Dataset, encoding: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, dict[str, Any]]:
    """``encoding`` plus :func:`array_compressors` for numeric variables that name none."""
    full = {name: dict(spec) for name, spec in (encoding or {}).items()}
    for name, variable in ds.variables.items():
        if variable.dtype.kind in "biuf" and variable.ndim > 0:
            full.setdefault(str(name), {}).setdefault("compressors", array_compressors())
    return full


def to_json_safe(value: Any) -> Any:
    """Convert numpy scalars/arrays and tuples in attrs to plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json_safe(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value
