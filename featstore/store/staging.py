"""Resumable, block-by-block writes, staged before one atomic group write.

Long jobs (extraction, evaluation grids) produce their output a block at a time. Each
block is written to ``_work/<group>`` inside the store, then marked done; a killed
job that is started again with the same settings skips the blocks already done. When
every block is done, the writer turns the staged arrays into the final group with
:func:`featstore.store.groups.write_group` (lazily, one output chunk at a time) and
discards the stage. Memory is bounded by one block, never by the whole output.

A stage remembers the hash of the settings that produced it: starting again with other
settings discards it, so blocks from two different runs are never mixed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import dask.array as da
import numpy as np
import zarr

from featstore._docs import fill_doc
from featstore.errors import GroupLockedError, InputError
from featstore.store import _schema as S
from featstore.store.encoding import array_compressors, to_json_safe
from featstore.store.groups import StorePath, _local_path, open_root
from featstore.store.io_errors import reading_metadata, write_failure, writing

_DONE = "_block_done"


def settings_hash(settings: Mapping[str, Any]) -> str:
    """A stable sha256 of a JSON-able settings mapping.

    Parameters
    ----------
    settings : mapping
        JSON-able settings.

    Returns
    -------
    str
        64 hex digits: the sha256 of the settings as JSON with sorted keys, so that
        the order of the mapping does not change it.

    Examples
    --------
    >>> from featstore.store import settings_hash
    >>> settings_hash({"pca": 250, "cv": 5}) == settings_hash({"cv": 5, "pca": 250})
    True
    """
    text = json.dumps(to_json_safe(dict(settings)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class StagedArray:
    """Shape of one staged array: ``block_axis`` is cut into blocks of ``block_size``.

    Attributes
    ----------
    shape : tuple of int
        Shape of the whole array.
    dtype : str
        Its dtype.
    block_axis : int
        The axis written block by block.

    Examples
    --------
    >>> from featstore.store import StagedArray
    >>> StagedArray((2, 10, 3), "float32", block_axis=1).chunks(4)
    (1, 4, 3)
    """

    shape: tuple[int, ...]
    dtype: str
    block_axis: int = 0

    def chunks(self, block_size: int) -> tuple[int, ...]:
        # one chunk per block and per index of the axes before the block axis, so the
        # final rechunk reads one leading index (e.g. one layer) at a time
        return tuple(
            1 if ax < self.block_axis else (block_size if ax == self.block_axis else max(n, 1))
            for ax, n in enumerate(self.shape)
        )


class BlockStage:
    """Arrays staged in ``_work/<group>``, written one block at a time.

    Parameters
    ----------
    store
        Store path.
    group
        The final group these arrays are for (e.g. ``features/gpt2/ctx200``).
    arrays
        Name → :class:`StagedArray`. All arrays have the same length along their block
        axis.
    block_size
        Length of a block along the block axis.
    settings
        Everything that determines the output; a stage made with other settings is
        discarded instead of resumed.
    attrs
        Written on the stage when it is created, for listings (e.g. how many blocks make
        one config of a run).

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> import numpy as np
    >>> from featstore.store import BlockStage, StagedArray, list_staged
    >>> store = example_store()
    >>> stage = BlockStage(store, "features/mine/tr1", {"hidden": StagedArray((4, 2), "float32")},
    ...                    block_size=2, settings={"model": "mine"})
    >>> stage.write_block(0, hidden=np.ones((2, 2), "float32"))
    >>> list_staged(store), stage.pending_blocks()
    ([StagedGroup(group='features/mine/tr1', blocks_done=1, n_blocks=2)], [1])
    """

    def __init__(
        self,
        store: StorePath,
        group: str,
        arrays: Mapping[str, StagedArray],
        *,
        block_size: int,
        settings: Mapping[str, Any],
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        if block_size < 1:
            raise InputError(f"block size must be >= 1, got {block_size}")
        lengths = {spec.shape[spec.block_axis] for spec in arrays.values()}
        if len(lengths) != 1:
            raise InputError(f"staged arrays disagree on the blocked length: {sorted(lengths)}")
        self.store = os.fspath(store)
        self.group = group.strip("/")
        self.path = f"{S.WORK}/{self.group}"
        self.arrays = dict(arrays)
        self.block_size = int(block_size)
        self.length = lengths.pop()
        self.n_blocks = max(1, -(-self.length // self.block_size))
        self.settings_hash = settings_hash(settings)
        self.resumed_blocks = 0
        self._node = self._open_or_create(dict(attrs or {}))

    def _open_or_create(self, attrs: dict[str, Any]) -> zarr.Group:
        open_root(self.store)
        try:
            node = zarr.open_group(self.store, path=self.path, mode="r+", zarr_format=S.ZARR_FORMAT)
            same = node.attrs.get("settings_hash") == self.settings_hash and all(
                name in node and tuple(node[name].shape) == spec.shape
                for name, spec in self.arrays.items()
            )
        except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError):
            node, same = None, False
        if node is not None and same and _DONE in node:
            self.resumed_blocks = int(np.count_nonzero(node[_DONE][:]))
            return node
        with writing(self.store, f"the stage {self.path!r}"):
            node = zarr.open_group(self.store, path=self.path, mode="w", zarr_format=S.ZARR_FORMAT)
            for name, spec in self.arrays.items():
                node.create_array(
                    name,
                    shape=spec.shape,
                    chunks=spec.chunks(self.block_size),
                    dtype=spec.dtype,
                    fill_value=0,
                    compressors=array_compressors(),
                )
            node.create_array(
                _DONE, shape=(self.n_blocks,), chunks=(1,), dtype="uint8", fill_value=0
            )
            node.attrs.update(
                {
                    **to_json_safe(attrs),
                    "settings_hash": self.settings_hash,
                    "block_size": self.block_size,
                }
            )
        return node

    def block_slice(self, index: int) -> slice:
        """The range of the blocked axis that block ``index`` covers."""
        if not 0 <= index < self.n_blocks:
            raise IndexError(f"block {index} out of range 0..{self.n_blocks - 1}")
        start = index * self.block_size
        return slice(start, min(start + self.block_size, self.length))

    def pending_blocks(self) -> list[int]:
        """Indices of blocks not yet written, in order."""
        return [int(i) for i in np.flatnonzero(self._node[_DONE][:] == 0)]

    def is_done(self) -> bool:
        """Whether every block has been written."""
        return not self.pending_blocks()

    def write_block(self, index: int, **values: np.ndarray) -> None:
        """Write block ``index`` of every staged array, then mark it done."""
        missing = set(self.arrays) - set(values)
        if missing:
            raise InputError(f"block {index} lacks staged arrays {sorted(missing)}")
        block = self.block_slice(index)
        for name, value in values.items():
            spec = self.arrays[name]
            selection = tuple(
                block if ax == spec.block_axis else slice(None) for ax in range(len(spec.shape))
            )
            expected = list(spec.shape)
            expected[spec.block_axis] = block.stop - block.start
            if tuple(np.shape(value)) != tuple(expected):
                raise InputError(
                    f"block {index} of {name!r} has shape {np.shape(value)}, expected {tuple(expected)}"
                )
            with writing(self.store, f"block {index} of {self.path}/{name}"):
                self._node[name][selection] = np.asarray(value, dtype=spec.dtype)
        with writing(self.store, f"block {index} of {self.path}"):
            self._node[_DONE][index : index + 1] = np.ones(1, "uint8")

    def dask_arrays(self) -> dict[str, da.Array]:
        """Lazy views of the staged arrays (read chunk by chunk)."""
        return {name: da.from_zarr(self._node[name]) for name in self.arrays}

    def discard(self) -> None:
        """Remove the stage from the store."""
        root = zarr.open_group(self.store, mode="r+", zarr_format=S.ZARR_FORMAT)
        with (
            contextlib.suppress(KeyError),
            writing(self.store, f"(delete) the stage {self.path!r}"),
        ):
            del root[self.path]


def discard_stage(store: StorePath, group: str) -> bool:
    """Remove the stage of ``group`` if one is left; return whether there was one.

    A writer killed after setting a group's ``complete`` flag but before discarding its
    stage leaves the stage behind; a writer that finds the group complete calls this so
    the space is not held forever.
    """
    path = f"{S.WORK}/{group.strip('/')}"
    root = open_root(store, mode="r+")
    with writing(store, f"(delete) the stage {path!r}"):
        if path in root:
            del root[path]
            return True
    return False


def block_flags(node: zarr.Group) -> np.ndarray | None:
    """Whether each block of the stage ``node`` is written (None: ``node`` is no stage).

    A block counts once it is marked done, which happens after all its arrays are
    written: a block cut off half-way is not done.
    """
    return np.asarray(node[_DONE][:]) != 0 if _DONE in node else None


@fill_doc
@dataclass(frozen=True)
class StagedGroup:
    """A group whose resumable write is staged in ``_work/`` (running or interrupted).

    Attributes
    ----------
    group : str
        The final group.
    blocks_done, n_blocks : int
        Blocks written, of how many.

    Examples
    --------
    >>> from featstore.store import StagedGroup
    >>> StagedGroup("features/mine/tr1", blocks_done=1, n_blocks=2).group
    'features/mine/tr1'
    """

    group: str
    blocks_done: int
    n_blocks: int


@fill_doc
def list_staged(store: StorePath) -> list[StagedGroup]:
    """Every staged feature set and run, with how many of its blocks are written.

    %(parameters_store)s

    Returns
    -------
    list of StagedGroup
        Empty when no write is under way or was interrupted.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import list_staged
    >>> list_staged(example_store())
    []
    """
    found = []
    root = open_root(store)
    for top, depth in ((S.FEATURES, 2), (S.RESULTS, 1)):
        base = f"{S.WORK}/{top}"
        paths = [base]
        with reading_metadata(store, base):
            for _ in range(depth):
                paths = [
                    f"{path}/{name}"
                    for path in paths
                    if path in root and isinstance(root[path], zarr.Group)
                    for name in sorted(root[path].group_keys())
                ]
            for path in paths:
                node = root[path]
                done = block_flags(node) if isinstance(node, zarr.Group) else None
                if done is not None:
                    group = path.removeprefix(f"{S.WORK}/")
                    found.append(StagedGroup(group, int(np.count_nonzero(done)), int(done.size)))
    return found


def _acquire(path: Path, group: str) -> TextIO:
    """Open and flock ``path``; retry if its holder unlinked it meanwhile."""
    import fcntl

    while True:
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise GroupLockedError(
                f"group {group!r} is being written by {owner}; wait for it to finish"
            ) from None
        # The previous holder unlinks the file before releasing it: a lock taken on a
        # file no longer at ``path`` excludes nobody, so take the new file's instead.
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(handle.fileno()).st_ino:
            return handle
        handle.close()


@fill_doc
@contextlib.contextmanager
def group_lock(store: StorePath, group: str) -> Iterator[None]:
    """Hold an exclusive, non-blocking lock on writing ``group`` (local stores only).

    Raises :class:`GroupLockedError` when another process holds it. The lock is an
    ``flock`` on a file under ``_work/locks``, released when the process dies; the file
    is removed when the lock is released, so a finished write leaves no trace.

    %(parameters_store_group)s

    Returns
    -------
    contextlib.AbstractContextManager
        Holds the lock while its block runs.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import group_lock
    >>> with group_lock(example_store(), "features/mine/tr1"):
    ...     pass  # write the group here
    """
    local = _local_path(store)
    if local is None:
        yield
        return
    lock_dir = local / S.WORK / "locks"
    path = lock_dir / (group.strip("/").replace("/", "__") + ".lock")
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
        handle = _acquire(path, group)
    except OSError as exc:
        raise write_failure(local, f"the lock of group {group!r}", exc) from exc
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still holding the lock: see _acquire
        handle.close()
