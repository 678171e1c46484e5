"""``featstore dataset import --bids``: every story of a Narratives-style tree in one command.

All or nothing: every story is read and checked, then written to a staging directory
beside the store; only when all are written are they renamed into ``stories/``. One
story failing (a vertex count, an alignment that does not fit its audio) publishes
none, naming the story's file; the store is unchanged. Targets are shared: a vertex
or voxel is kept only if it is usable in every subject of every story imported, so
all stories of one import have the same target axis (cross-story models need it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from featstore.datasets._publish import (
    check_new_stories,
    make_parent,
    new_staging,
    publish,
    removed_on_failure,
    target_path,
)
from featstore.datasets.bids import BidsStory, scan_bids
from featstore.datasets.import_report import ImportReport
from featstore.datasets.importer import StoryData, prepare_story, write_story
from featstore.datasets.targets import TargetSource, scan_targets
from featstore.datasets.timeline import check_timing
from featstore.errors import InputError
from featstore.store import _schema as S
from featstore.store.groups import StorePath, open_root
from featstore.store.stories import ensure_collection


def _story_targets(
    story: BidsStory, kind: str, space: str, mask: Path | None, trim_to_shortest: bool
) -> TargetSource:
    masks = (
        [mask] if mask is not None else [story.masks[s] for s in story.scans if s in story.masks]
    )
    return scan_targets(
        list(story.scans.values()),
        kind="gifti" if kind == "GIfTI" else "nifti",
        space=space,
        pattern=f"{story.name}: {next(iter(story.scans.values()))} …",
        mask=(masks or None) if kind == "NIfTI" else None,
        trim_to_shortest=trim_to_shortest,
    )


def shared_targets(sources: dict[str, TargetSource]) -> dict[str, TargetSource]:
    """Every story's targets cut to those usable in all of them (one target axis)."""
    first_story, first = next(iter(sources.items()))
    keep = {h: mask.copy() for h, mask in first.keep.items()}
    for story, source in sources.items():
        same_grid = source.grid == first.grid and np.allclose(source.affine, first.affine)
        sizes = {h: m.size for h, m in source.keep.items()}
        if sizes != {h: m.size for h, m in keep.items()} or (first.grid and not same_grid):
            raise InputError(
                f"fmri {source.pattern}: story {story!r} is on another mesh or grid than "
                f"story {first_story!r}; import them into different stores"
            )
        for h in keep:
            keep[h] &= source.keep[h]
    if not any(mask.any() for mask in keep.values()):
        raise InputError("no vertex or voxel is usable in every story; import them separately")
    return {story: source.restricted(keep) for story, source in sources.items()}


def _stage_story(
    story: BidsStory, staging: Path, targets: TargetSource, dataset: str, options: dict
) -> StoryData:
    """Read and check a story's stimulus (its fMRI already scanned) and write it to ``staging``."""
    data = prepare_story(
        align=story.align,
        audio=story.audio,
        targets=targets,
        stim_onset=story.onset,
        space=None,
        parcellate=None,
        mask=None,
        allow_pickle=False,
        roi_names=None,
        **options,
    )
    write_story(staging, data, dataset=dataset, story=story.name)
    return data


def import_bids(
    root: str | os.PathLike,
    *,
    pipeline: str | None,
    space: str | None,
    tasks: list[str],
    tr: float,
    store: StorePath,
    subjects: list[str] | None = None,
    mask: str | os.PathLike | None = None,
    tr_assign: str = "ceil",
    tr_tolerance: float = 2.0,
    trim_to_shortest: bool = False,
    overwrite: bool = False,
    echo: Callable[[str], None] | None = None,
) -> list[ImportReport]:
    """Import stories of a Narratives-style BIDS tree into a store of stories.

    Parameters
    ----------
    root
        The BIDS root; the layout recognised is in :mod:`featstore.datasets.bids`.
    pipeline, space
        The derivatives folder and the ``space-`` of the scans (see
        :func:`featstore.datasets.bids.scan_bids`).
    tasks
        The stories to import.
    tr
        Repetition time in seconds.
    store
        The store of stories (created if absent; a one-story store is refused).
    subjects
        Only these subjects (default: all).
    mask
        Brain mask for NIfTI scans (default: the tree's ``desc-brain_mask`` files,
        intersected, else nilearn's mask of the first subject's run).
    tr_assign, tr_tolerance, trim_to_shortest
        As for :func:`featstore.datasets.import_dataset`, per story.
    overwrite
        Replace stories already in the store (only those imported).
    echo
        Called with each line of the report (what was found, then each story).

    Returns
    -------
    list of ImportReport
        One per story, in ``tasks`` order.

    Raises
    ------
    InputError
        Any bad input (see :func:`~featstore.datasets.bids.scan_bids`, and each story's
        checks as in ``import_dataset``); nothing is published then.

    Examples
    --------
    >>> import tempfile
    >>> from featstore.datasets.bids_import import import_bids
    >>> try:
    ...     import_bids(tempfile.mkdtemp(), pipeline="p", space="fsaverage7", tasks=["a"],
    ...                 tr=1.5, store=tempfile.mkdtemp() + "/n.zarr")
    ... except Exception as exc:
    ...     print(str(exc).split(";")[0])
    space='fsaverage7': unknown space
    """
    say = echo or (lambda line: None)
    check_timing(tr, 0.0, tr_assign)
    options = dict(tr=tr, tr_assign=tr_assign, tr_tolerance=tr_tolerance,
                   trim_to_shortest=trim_to_shortest)  # fmt: skip
    for name, value in (("pipeline", pipeline), ("space", space)):
        if not value:
            raise InputError(f"bids={root}: give `{name}` too")
    collection = target_path(store)
    tree = scan_bids(root, pipeline=pipeline, space=space, tasks=tasks, subjects=subjects)
    for line in tree.lines():
        say(line)
    stories_dir = collection / S.STORIES
    check_new_stories(collection, [story.name for story in tree.stories], overwrite, tr)
    sources = {
        story.name: _story_targets(
            story, tree.kind, space, Path(mask) if mask else None, trim_to_shortest
        )
        for story in tree.stories
    }
    sources = shared_targets(sources)
    make_parent(collection)
    created = None if collection.exists() else collection
    dataset = collection.name.removesuffix(".zarr")
    if created is None:
        dataset = str(open_root(collection).attrs.get("dataset") or dataset)
    stagings: list[Path] = []
    reports = []
    with removed_on_failure(stagings, created, collection, "the new stories"):
        for story in tree.stories:
            target = stories_dir / story.name
            stagings.append(new_staging(target, collection))
            reports.append(
                (target, _stage_story(story, stagings[-1], sources[story.name], dataset, options))
            )
        ensure_collection(collection, dataset=dataset, tr_seconds=tr)
        for staging, story in zip(stagings, tree.stories, strict=True):
            publish(
                staging,
                stories_dir / story.name,
                overwrite,
                f"story {story.name!r} of {collection}",
            )
    out = []
    for (target, data), story in zip(reports, tree.stories, strict=True):
        report = ImportReport(store=target, dataset=dataset, story=story.name, **data.fields)
        for line in report.lines():
            say(line)
        out.append(report)
    return out
