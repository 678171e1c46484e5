"""How featstore encodes what it writes: the compressor of numeric arrays, JSON-safe attrs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from featstore.store import _schema as S

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


def with_tr_time(ds: xr.Dataset, tr_seconds: Any) -> xr.Dataset:
    """``ds`` with a ``time`` coordinate on its ``tr`` dim: seconds on the scan clock at
    each TR's start (``tr * tr_seconds``), so a group opened in plain xarray has time.

    Unchanged if ``ds`` has no ``tr`` dim, already has a ``time`` variable or dim, or
    ``tr_seconds`` is not a number (a store without a TR).
    """
    if S.TR_DIM not in ds.dims or S.TR_TIME_COORD in ds.variables or S.TR_TIME_COORD in ds.dims:
        return ds
    if isinstance(tr_seconds, bool) or not isinstance(tr_seconds, (int, float)):
        return ds
    index = ds[S.TR_DIM].values if S.TR_DIM in ds.coords else np.arange(ds.sizes[S.TR_DIM])
    seconds = np.asarray(index, dtype=np.float64) * float(tr_seconds)
    coord = xr.Variable((S.TR_DIM,), seconds, {"units": "s", "long_name": "TR start, scan clock"})
    return ds.assign_coords({S.TR_TIME_COORD: coord})
