"""List what a store holds without reading any array data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import zarr

from featstore._docs import fill_doc
from featstore.store import _schema as S
from featstore.store.groups import (
    StorePath,
    child_names,
    open_root,
)
from featstore.store.io_errors import reading_metadata


@dataclass(frozen=True)
class VariableInfo:
    """Name, dims, shape and dtype of one array in a group."""

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class GroupInfo:
    """One schema group: its path, kind, arrays and attrs.

    Attributes
    ----------
    path, kind : str
        Group path; ``stimulus``, ``fmri``, ``features`` or ``results``.
    complete : bool
        Whether its write finished.
    variables : tuple of VariableInfo
        Name, dims, shape and dtype of each array.
    attrs : dict
        The group's attrs.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import list_groups
    >>> info = list_groups(example_store())[0]
    >>> info.path, info.variable("bold").shape
    ('fmri', (2, 120, 360))
    """

    path: str
    kind: str
    complete: bool
    variables: tuple[VariableInfo, ...]
    attrs: dict[str, Any] = field(default_factory=dict)

    def variable(self, name: str) -> VariableInfo | None:
        """The variable called ``name``, or None."""
        return next((v for v in self.variables if v.name == name), None)


def _variables(store: StorePath, path: str, node: zarr.Group) -> tuple[VariableInfo, ...]:
    out = []
    with reading_metadata(store, path):
        names = sorted(node.array_keys())
    for name in names:
        with reading_metadata(store, f"{path}/{name}"):
            array = node[name]
            dims = tuple(array.metadata.dimension_names or ())
            out.append(VariableInfo(name, dims, tuple(array.shape), str(array.dtype)))
    return tuple(out)


def group_paths(store: StorePath) -> list[tuple[str, str]]:
    """``(path, kind)`` of every schema group present, in a stable order."""
    root = open_root(store)
    paths: list[tuple[str, str]] = []
    for name, kind in ((S.STIMULUS, "stimulus"), (S.FMRI, "fmri")):
        with reading_metadata(store, name):
            present = name in root
        if present:
            paths.append((name, kind))
    for key in child_names(store, S.FEATURES):
        for window in child_names(store, f"{S.FEATURES}/{key}"):
            paths.append((f"{S.FEATURES}/{key}/{window}", "features"))
    for run in child_names(store, S.RESULTS):
        paths.append((f"{S.RESULTS}/{run}", "results"))
    return paths


def group_info(store: StorePath, path: str, kind: str) -> GroupInfo:
    """One group's arrays and attrs (:class:`StoreError` naming the node if damaged)."""
    with reading_metadata(store, path):
        node = open_root(store)[path]
        attrs = dict(node.attrs)
    complete = bool(attrs.get(S.COMPLETE_ATTR, False))
    return GroupInfo(path, kind, complete, _variables(store, path, node), attrs)


@fill_doc
def list_groups(store: StorePath) -> list[GroupInfo]:
    """Every schema group with its arrays' shapes and its attrs.

    Parameters
    ----------
    %(store)s

    Returns
    -------
    list of GroupInfo
        stimulus, fmri, each feature set, each run: those present, in that order.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import list_groups
    >>> [group.path for group in list_groups(example_store())]
    ['fmri', 'features/toy-lm/ctx8', 'features/toy-speech/tr1']
    """
    return [group_info(store, path, kind) for path, kind in group_paths(store)]
