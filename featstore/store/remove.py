"""Delete feature sets and runs from a store, by the store's own conventions.

A group is removed under its write lock (never while a writer holds it), with its
``complete`` flag cleared first: a removal killed half-way leaves an incomplete group,
which every reader refuses and ``featstore ls`` marks, never a complete-looking group
with chunks missing. The group's stage in ``_work/`` (an interrupted write) goes too.
"""

from __future__ import annotations

import os

from featstore._docs import fill_doc
from featstore.errors import GroupNotFoundError
from featstore.store import _schema as S
from featstore.store.features import list_feature_sets, resolve_feature_key
from featstore.store.groups import (
    StorePath,
    child_names,
    delete_group,
    group_exists,
    mark_complete,
)
from featstore.store.paths import check_key, feature_group, result_group
from featstore.store.staging import discard_stage, group_lock, list_staged


def remove_group(store: StorePath, group: str) -> bool:
    """Remove ``group`` and its stage; return whether either was there.

    Raises :class:`featstore.errors.GroupLockedError` while another process writes it.
    """
    with group_lock(store, group):
        present = group_exists(store, group)
        if present:
            mark_complete(store, group, False)
            delete_group(store, group)
        staged = discard_stage(store, group)
    return present or staged


def _staged_windows(store: StorePath, key: str) -> list[str]:
    prefix = f"{S.FEATURES}/{key}/"
    return [s.group.removeprefix(prefix) for s in list_staged(store) if s.group.startswith(prefix)]


def feature_groups_of(store: StorePath, name: str, window: str | None = None) -> list[str]:
    """The feature groups (complete, incomplete or only staged) that ``name`` (a key or
    an alias) and ``window`` (every window when None) designate; error if none."""
    key = check_key(resolve_feature_key(store, name))
    windows = child_names(store, f"{S.FEATURES}/{key}") + _staged_windows(store, key)
    if window is not None:
        windows = [w for w in windows if w == window]
    if not windows:
        what = f"{name}/{window}" if window else name
        present = [f"{i.key}/{i.window}" for i in list_feature_sets(store)]
        raise GroupNotFoundError(
            f"no feature set {what} in {os.fspath(store)}; present: {', '.join(present) or 'none'}"
        )
    return [feature_group(key, w) for w in sorted(set(windows))]


@fill_doc
def remove_feature_sets(store: StorePath, name: str, window: str | None = None) -> list[str]:
    """Remove the feature set ``name``/``window`` (every window of ``name`` when None).

    Returns the groups removed. Results computed from them stay: a run holds its own r.

    Parameters
    ----------
    %(store)s
    name : str
        Feature key or model alias.
    window : str, optional
        One window (default: every window of ``name``).

    Returns
    -------
    list of str
        The groups removed.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import remove_feature_sets
    >>> remove_feature_sets(example_store(), "toy-lm")
    ['features/toy-lm/ctx8']
    """
    groups = feature_groups_of(store, name, window)
    removed = [group for group in groups if remove_group(store, group)]
    key = groups[0].split("/")[1]
    parent = f"{S.FEATURES}/{key}"
    if group_exists(store, parent) and not child_names(store, parent):
        delete_group(store, parent)
    return removed


def run_group_of(store: StorePath, run_id: str) -> str:
    """``results/<run_id>`` if the run exists (complete, incomplete or only staged)."""
    group = result_group(run_id)
    if not (group_exists(store, group) or any(s.group == group for s in list_staged(store))):
        runs = child_names(store, S.RESULTS)
        raise GroupNotFoundError(
            f"no run {run_id!r} in {os.fspath(store)}; runs: {', '.join(runs) or 'none'}"
        )
    return group


@fill_doc
def remove_run(store: StorePath, run_id: str) -> str:
    """Remove ``results/<run_id>`` (an encoding run or an analysis, with its stats and its
    stage); return the group path.

    Parameters
    ----------
    %(store)s
    run_id : str
        Name of the run.

    Returns
    -------
    str
        The group removed.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> import featstore as fs
    >>> from featstore.store import remove_run
    >>> store = fs.open_store(example_store())
    >>> run = store.grid(models=["toy-lm:ctx8@2"], run_id="r1", progress=False,
    ...                  settings=fs.EncodingSettings(pca=8, cv=3))
    >>> remove_run(store, "r1")
    'results/r1'
    """
    group = run_group_of(store, run_id)
    remove_group(store, group)
    return group
