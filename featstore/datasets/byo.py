"""Bring-your-own features: store features computed elsewhere as a feature set.

An imported feature set is like any other (``features/<name>/<window>``, hidden
``(layer, tr, dim)``), so the evaluator reads it without knowing where it came from.
Arrays are read with ``allow_pickle=False`` and ``.npy`` files memory-mapped, then
written one layer per chunk.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import dask.array as da
import numpy as np

from featstore._docs import fill_doc
from featstore.datasets._files import existing_file, files_sha256, numpy_load_errors
from featstore.errors import GroupExistsError, InputError
from featstore.extract.common import stimulus_identity
from featstore.store import _schema as S
from featstore.store.features import window_mismatch, write_feature_set
from featstore.store.groups import StorePath, group_exists, now_iso, store_n_tr
from featstore.store.paths import check_key, feature_group, parse_window
from featstore.store.staging import group_lock


def _load(file: Path) -> np.ndarray:
    suffix = file.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise InputError(f"features {file}: expected a .npy or .npz file")
    with numpy_load_errors(file, "features"):
        if suffix == ".npy":
            return np.load(file, mmap_mode="r", allow_pickle=False)
        # An open handle of our own: np.load leaves its file open when the zip is corrupt.
        with open(file, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            keys = list(archive.files)
            if len(keys) != 1 and S.HIDDEN_VAR not in keys:
                raise InputError(
                    f"features {file}: holds arrays {keys}; expected one array, or one "
                    f"named {S.HIDDEN_VAR!r}"
                )
            return archive[S.HIDDEN_VAR if S.HIDDEN_VAR in keys else keys[0]]


def _storage_dtype(dtype: np.dtype) -> np.dtype:
    """float16 and float32 are stored as they are; other numbers as float32."""
    return np.dtype(dtype) if np.dtype(dtype).name in S.FEATURE_DTYPES else np.dtype(np.float32)


def _check_values(file: Path, array: np.ndarray, layer: int | None) -> None:
    where = f"features {file}" + (f" layer {layer}" if layer is not None else "")
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise InputError(f"{where}: dtype {array.dtype}; expected real numbers")
    if 0 in array.shape:
        raise InputError(f"{where}: shape {array.shape} has no values")
    # Checked as stored: a float64 of 1e39 is finite but becomes inf in float32.
    with np.errstate(over="ignore"):
        stored = np.asarray(array).astype(_storage_dtype(array.dtype), copy=False)
    bad = ~np.isfinite(stored)
    if bad.any():
        tr, dim = (int(i[0]) for i in np.nonzero(bad))
        raise InputError(
            f"{where}: {int(bad.sum())} NaN/inf value(s); first at TR {tr}, dim {dim} "
            f"(value {array[tr, dim].item()!r}, stored as {stored.dtype})"
        )


def _as_storable(array: np.ndarray | da.Array) -> np.ndarray | da.Array:
    return array.astype(_storage_dtype(array.dtype), copy=False)


def _read_layers(files: list[Path], n_tr: int) -> da.Array:
    """The (layer, tr, dim) array of the files, lazily, after checking every value."""
    arrays = [_load(file) for file in files]
    if len(files) == 1 and arrays[0].ndim == 3:
        (file,), (array,) = files, arrays
        if array.shape[1] != n_tr:
            raise InputError(
                f"features {file} has {array.shape[1]} TRs (shape {array.shape} = layer, tr, dim) "
                f"but the store has n_tr={n_tr}"
            )
        if array.shape[0] == 0:
            raise InputError(f"features {file} has shape {array.shape}: no layers")
        for layer in range(array.shape[0]):
            _check_values(file, array[layer], layer)
        return _as_storable(da.from_array(array, chunks=(1, *array.shape[1:])))
    for file, array in zip(files, arrays, strict=True):
        if array.ndim != 2:
            expected = "(tr, dim) per layer, or one (layer, tr, dim) file"
            raise InputError(f"features {file} has shape {array.shape}; expected {expected}")
        if array.shape[0] != n_tr:
            raise InputError(
                f"features {file} has {array.shape[0]} TRs (shape {array.shape} = tr, dim) "
                f"but the store has n_tr={n_tr}"
            )
        if array.shape[1] != arrays[0].shape[1]:
            raise InputError(
                f"features {file} has dim {array.shape[1]} but {files[0]} has dim "
                f"{arrays[0].shape[1]}; every layer needs the same dim"
            )
        _check_values(file, array, None)
    layers = [_as_storable(da.from_array(a, chunks=a.shape)) for a in arrays]
    return da.stack(layers)


def _layer_labels(layers: Sequence[int] | None, n_layers: int) -> list[int]:
    """``layers`` checked against ``n_layers``, or the default labels ``1..n_layers``."""
    if layers is None:
        return list(range(1, n_layers + 1))
    labels = [int(x) for x in layers]
    if len(labels) != n_layers:
        raise InputError(f"`layers` names {len(labels)} layer(s) but the files hold {n_layers}")
    if len(set(labels)) != len(labels) or min(labels) < 0:
        raise InputError(
            f"layers={','.join(map(str, labels))}: expected distinct labels >= 0, one per layer"
        )
    return labels


@fill_doc
def import_features(
    store: StorePath,
    *,
    name: str,
    window: str,
    modality: str,
    files: Sequence[str | os.PathLike],
    overwrite: bool = False,
    layers: Sequence[int] | None = None,
) -> str:
    """Store features computed elsewhere as ``features/<name>/<window>``.

    Parameters
    ----------
    store
        A store with a stimulus group (``featstore dataset import``).
    name
        Feature key: letters, digits, ``.``, ``_`` and ``-``.
    window
        ``ctxN`` (text, N words of context) or ``trN`` (audio, N TRs).
    modality
        ``text``, ``audio``, ``multimodal`` or ``lowlevel``.
    files
        Either one ``.npy``/``.npz`` per layer, each ``(tr, dim)``, in layer order,
        or a single ``.npy``/``.npz`` holding ``(layer, tr, dim)``. The TR axis must
        have the store's ``n_tr`` entries. float16 stays float16; other numbers are
        stored as float32.
    overwrite
        Replace an existing feature set of that name and window.
    layers
        Layer labels, distinct integers >= 0, one per layer. Default ``1..n``: an
        imported set has no embedding layer (label 0 in extracted sets, which
        ``--layers auto`` skips), so every imported layer counts as a block and the
        n-th file (or slice) is layer n.

    Returns
    -------
    str
        The group path written.

    Raises
    ------
    InputError
        Naming the file: unreadable file, wrong ndim, a TR count other than the store's
        (both numbers), different dims across layer files, NaN/inf, non-numeric data,
        an invalid name, window or modality. Nothing is written then.
    GroupExistsError
        The feature set exists and ``overwrite`` is false.

    Examples
    --------
    %(example_import)s
    >>> import numpy as np
    >>> from featstore.datasets import import_features
    >>> path = tempfile.mkdtemp() + "/my-features.npy"
    >>> np.save(path, np.random.default_rng(0).standard_normal((2, report.n_tr, 8)))
    >>> import_features(store, name="my-lm", window="ctx16", modality="text", files=[path])
    'features/my-lm/ctx16'
    """
    check_key(name)
    group = feature_group(name, window)
    if modality not in S.MODALITIES:
        raise InputError(f"modality={modality!r}: expected one of {', '.join(S.MODALITIES)}")
    if parse_window(window)[0] != S.MODALITY_WINDOW_KIND[modality]:
        raise InputError(window_mismatch(f"feature set {group!r}", modality, window))
    if not files:
        raise InputError("no feature files given")
    if group_exists(store, group) and not overwrite:
        raise GroupExistsError(
            f"feature set {group!r} already exists in {os.fspath(store)}; pass `overwrite` "
            "to replace it"
        )
    paths = [existing_file(f, "features") for f in files]
    stimulus = stimulus_identity(store)
    n_tr = store_n_tr(store)
    hidden = _read_layers(paths, n_tr)
    labels = _layer_labels(layers, hidden.shape[0])
    attrs = {
        "model_id": f"imported:{name}",
        "revision": files_sha256(paths),
        "modality": modality,
        "pooling": "imported",
        "stimulus_sha256": stimulus["stimulus_sha256"],
        "source_files": [str(p) for p in paths],
        "imported": now_iso(),
    }
    with group_lock(store, group):
        return write_feature_set(
            store, name, window, hidden, attrs=attrs, layers=labels, overwrite=overwrite
        )
