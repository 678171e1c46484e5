"""Check a store against the schema (a one-story store, or a store of stories story by
story); every problem names its group and field."""

from __future__ import annotations

from dataclasses import dataclass

import zarr

from featstore._docs import fill_doc
from featstore.errors import StoreError
from featstore.store import _schema as S
from featstore.store.groups import StorePath, open_root
from featstore.store.listing import GroupInfo, group_info, group_paths
from featstore.store.paths import parse_window
from featstore.store.root import StoreHandle, collection_story_names
from featstore.store.stories import story_path


@dataclass(frozen=True)
class Problem:
    """One way a store departs from the schema.

    Attributes
    ----------
    group, field, message : str
        The group (``''``: the root), the attr or variable at fault, and what is wrong.

    Examples
    --------
    >>> from featstore.store import Problem
    >>> print(Problem("fmri", "bold", "expected dims (subject, tr, roi)"))
    fmri: bold: expected dims (subject, tr, roi)
    """

    group: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.group or '/'}: {self.field}: {self.message}"


def _need_var(info: GroupInfo, name: str, dims: tuple[str, ...]) -> list[Problem]:
    var = info.variable(name)
    if var is None:
        return [Problem(info.path, name, "variable missing")]
    if var.dims != dims:
        return [Problem(info.path, name, f"dims are {var.dims}, expected {dims}")]
    return []


def _need_attrs(info: GroupInfo, names: tuple[str, ...]) -> list[Problem]:
    return [Problem(info.path, name, "attr missing") for name in names if name not in info.attrs]


def _check_length(info: GroupInfo, name: str, axis: int, expected: int, what: str) -> list[Problem]:
    var = info.variable(name)
    if var is not None and len(var.shape) > axis and var.shape[axis] != expected:
        return [Problem(info.path, name, f"has {var.shape[axis]} {what}, expected {expected}")]
    return []


def _check_group(info: GroupInfo, n_tr: int | None) -> list[Problem]:
    problems = []
    if not info.complete:
        problems.append(
            Problem(info.path, S.COMPLETE_ATTR, "group is incomplete (write interrupted)")
        )
    if info.kind == "stimulus":
        for name in S.STIMULUS_WORD_VARS:
            problems += _need_var(info, name, (S.WORD_DIM,))
        problems += _need_var(info, S.STIMULUS_AUDIO_VAR, (S.SAMPLE_DIM,))
        problems += _need_attrs(info, S.STIMULUS_ATTRS)
    elif info.kind == "fmri":
        problems += _need_var(info, S.BOLD_VAR, S.BOLD_DIMS)
        problems += _need_var(info, S.ROI_NAME_COORD, (S.ROI_DIM,))
        problems += _need_var(info, S.HEMISPHERE_COORD, (S.ROI_DIM,))
        problems += _need_attrs(info, S.FMRI_ATTRS)
        if n_tr is not None:
            problems += _check_length(info, S.BOLD_VAR, 1, n_tr, "TRs (root n_tr)")
    elif info.kind == "features":
        problems += _need_var(info, S.HIDDEN_VAR, S.HIDDEN_DIMS)
        problems += _need_attrs(info, S.FEATURE_ATTRS)
        window = info.path.rsplit("/", 1)[-1]
        try:
            kind, size = parse_window(window)
        except ValueError as exc:
            problems.append(Problem(info.path, "window", str(exc)))
        else:
            attr = "ctx_words" if kind == "ctx" else "tr_win"
            if info.attrs.get(attr) != size:
                problems.append(
                    Problem(info.path, attr, f"is {info.attrs.get(attr)!r}, expected {size}")
                )
            expected = S.MODALITY_WINDOW_KIND.get(info.attrs.get("modality"), kind)
            if kind != expected:
                problems.append(
                    Problem(
                        info.path,
                        "modality",
                        f"{info.attrs['modality']!r} takes {expected}N windows, not {window!r}",
                    )
                )
        if info.attrs.get("modality") not in S.MODALITIES and "modality" in info.attrs:
            problems.append(
                Problem(info.path, "modality", f"{info.attrs['modality']!r} not in {S.MODALITIES}")
            )
        if n_tr is not None:
            problems += _check_length(info, S.HIDDEN_VAR, 1, n_tr, "TRs (root n_tr)")
        hidden = info.variable(S.HIDDEN_VAR)
        layers = info.attrs.get("layers")
        if hidden is not None and isinstance(layers, list) and len(layers) != hidden.shape[0]:
            problems.append(
                Problem(
                    info.path, "layers", f"lists {len(layers)} layers, hidden has {hidden.shape[0]}"
                )
            )
    elif info.kind == "results" and S.ANALYSIS_ATTR in info.attrs:
        kind = info.attrs[S.ANALYSIS_ATTR]
        if kind not in S.ANALYSIS_VARS:
            problems.append(
                Problem(info.path, S.ANALYSIS_ATTR, f"{kind!r} not in {tuple(S.ANALYSIS_VARS)}")
            )
        for name, dims in S.ANALYSIS_VARS.get(kind, {}).items():
            problems += _need_var(info, name, dims)
        problems += _need_attrs(info, S.ANALYSIS_ATTRS)
    elif info.kind == "results":
        for name in S.RESULT_VARS:
            problems += _need_var(info, name, S.RESULT_DIMS)
        problems += _need_attrs(info, S.RESULT_ATTRS)
    return problems


@fill_doc
def validate(store: StorePath) -> list[Problem]:
    """Every departure from the schema, as a list (empty when the store is valid).

    A store that cannot be opened or listed at all, or has a newer schema version,
    raises :class:`featstore.errors.StoreError` instead.

    %(parameters_store)s

    Returns
    -------
    list of Problem
        Empty for a store that follows the schema.

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.store import validate
    >>> validate(example_store())
    []

    A store of stories is checked story by story (each problem's group starts with
    ``stories/<story>``), then its own root attrs and cross-story results.
    """
    root = open_root(store)
    if root.attrs.get(S.SCHEMA_ATTR) == S.COLLECTION_SCHEMA:
        return _validate_collection(store, root)
    problems = [
        Problem("", name, "root attr missing") for name in S.ROOT_ATTRS if name not in root.attrs
    ]
    n_tr = root.attrs.get("n_tr")
    if n_tr is not None and (not isinstance(n_tr, int) or n_tr < 1):
        problems.append(Problem("", "n_tr", f"must be a positive integer, got {n_tr!r}"))
        n_tr = None
    for path, kind in group_paths(store):
        try:
            info = group_info(store, path, kind)
        except StoreError as exc:  # a damaged group is a problem; the others still count
            problems.append(Problem(path, "metadata", str(exc)))
            continue
        problems += _check_group(info, n_tr)
    return problems


def _validate_collection(store: StorePath, root: zarr.Group) -> list[Problem]:
    """Every story of a store of stories as a one-story store, then its root and results."""
    problems = [
        Problem("", name, "root attr missing")
        for name in S.COLLECTION_ROOT_ATTRS
        if name not in root.attrs
    ]
    tr_seconds = root.attrs.get("tr_seconds")
    for name in collection_story_names(root):
        prefix = f"{S.STORIES}/{name}"
        story = StoreHandle(story_path(store, name))
        try:
            found = validate(story)
            attrs = dict(open_root(story).attrs)
        except StoreError as exc:  # a damaged story is a problem; the others still count
            problems.append(Problem(prefix, "metadata", str(exc)))
            continue
        problems += [Problem(f"{prefix}/{p.group}".rstrip("/"), p.field, p.message) for p in found]
        if attrs.get(S.SCHEMA_ATTR) != S.STORY_SCHEMA:
            message = f"is {attrs.get(S.SCHEMA_ATTR)!r}, expected {S.STORY_SCHEMA} (a story)"
            problems.append(Problem(prefix, S.SCHEMA_ATTR, message))
        if attrs.get(S.STORY_ATTR) != name:
            message = f"is {attrs.get(S.STORY_ATTR)!r}, expected {name!r} (its folder)"
            problems.append(Problem(prefix, S.STORY_ATTR, message))
        tr = attrs.get("tr_seconds")
        if isinstance(tr, (int, float)) and isinstance(tr_seconds, (int, float)):
            if abs(float(tr) - float(tr_seconds)) > 1e-9:
                message = f"is {tr} s but the store's TR is {tr_seconds} s"
                problems.append(Problem(prefix, "tr_seconds", message))
    for path, kind in group_paths(store):  # the collection root holds only results
        try:
            info = group_info(store, path, kind)
        except StoreError as exc:
            problems.append(Problem(path, "metadata", str(exc)))
            continue
        problems += _check_group(info, None)
    return problems
