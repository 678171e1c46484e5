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
from featstore.store.staging import list_staged
from featstore.store.stories import is_collection, list_stories, story_store


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

    %(parameters_store)s

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


@dataclass(frozen=True)
class StoryInfo:
    """One story of a store: its size and the state of its groups.

    Attributes
    ----------
    name : str
        The story.
    n_tr : int or None
        Its ``n_tr`` root attr.
    n_subjects, n_targets : int or None
        Sizes of its ``fmri`` bold (None without fMRI).
    target_kind : str or None
        ``parcel``, ``vertex`` or ``voxel`` (None without fMRI).
    groups : tuple of GroupInfo
        Its groups (:func:`list_groups`).
    staged : tuple of str
        Groups with a staged write (running or interrupted) and no group yet.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store.listing import list_story_infos
    >>> story = list_story_infos(example_store())[0]
    >>> story.name, story.n_tr, story.state("features/toy-lm/ctx8")
    ('example', 120, 'complete')
    """

    name: str
    n_tr: int | None
    n_subjects: int | None
    n_targets: int | None
    target_kind: str | None
    groups: tuple[GroupInfo, ...]
    staged: tuple[str, ...] = ()

    def state(self, group: str) -> str:
        """``complete``, ``incomplete`` (written in part, or staged) or ``missing``."""
        info = next((g for g in self.groups if g.path == group), None)
        if info is not None:
            return "complete" if info.complete else "incomplete"
        return "incomplete" if group in self.staged else "missing"


@fill_doc
def list_story_infos(store: StorePath) -> list[StoryInfo]:
    """Every story of a store (one for a one-story store) with its groups' states.

    %(parameters_store)s

    Returns
    -------
    list of StoryInfo
        One per story, in the order of :func:`featstore.store.stories.list_stories`.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store.listing import list_story_infos
    >>> [(s.name, s.n_subjects, s.n_targets) for s in list_story_infos(example_store())]
    [('example', 2, 360)]
    """
    infos = []
    for name in list_stories(store):
        story = story_store(store, name) if is_collection(store) else store
        groups = tuple(list_groups(story))
        paths = {g.path for g in groups}
        staged = tuple(s.group for s in list_staged(story) if s.group not in paths)
        fmri = next((g for g in groups if g.kind == "fmri"), None)
        bold = fmri.variable(S.BOLD_VAR) if fmri is not None else None
        n_tr = open_root(story).attrs.get("n_tr")
        infos.append(
            StoryInfo(
                name,
                n_tr if isinstance(n_tr, int) else None,
                bold.shape[0] if bold is not None else None,
                bold.shape[-1] if bold is not None else None,
                str(fmri.attrs.get("target_kind", "parcel")) if fmri is not None else None,
                groups,
                staged,
            )
        )
    return infos
