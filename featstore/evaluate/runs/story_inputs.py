"""What a run across stories reads: each story's fMRI layout and features, lazily.

:func:`inspect_stories` reads metadata only (no BOLD values): the subjects of every
story, their TR counts, the target axis (which must be the same in every story) and a
fingerprint of the fMRI from its attrs and coordinates, so opening a vertex store of
gigabytes costs nothing. The BOLD itself is read by the chunk tasks, one subject × one
story × one chunk of targets at a time (:func:`read_bold_chunk`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featstore.errors import InputError
from featstore.evaluate.runs.configs import Config, StoreCatalog
from featstore.evaluate.runs.inputs import feature_provenance, read_array, read_layer
from featstore.store import _schema as S
from featstore.store.groups import StorePath, group_exists, open_group
from featstore.store.io_errors import reading_data
from featstore.store.stories import list_stories, story_store

#: Most targets per chunk task (the bold chunking of vertex stores).
MAX_TARGET_CHUNK = 8192
#: fmri attrs that describe the target axis, copied to the results.
TARGET_ATTRS = ("target_kind", "space", "atlas", "affine", "grid_shape")
#: Target coordinates copied to the results when present.
TARGET_COORDS = (S.ROI_NAME_COORD, S.HEMISPHERE_COORD, "vertex", "voxel")


@dataclass(frozen=True)
class StoriesFmri:
    """The fMRI of every story, as metadata.

    Attributes
    ----------
    stories : tuple of str
    subjects : tuple of str
        Every subject of any story, in order of first appearance.
    positions : dict of str to tuple of int
        Per story, each subject's index in that story's bold (-1: not there).
    n_tr : dict of str to int
    n_targets : int
    target_chunk : int
        Targets per chunk task.
    coords : dict
        Target coordinates (on ``roi``) for the results.
    attrs : dict
        Target attrs (``target_kind``, ``space`` …) for the results.
    fingerprint : str
    """

    stories: tuple[str, ...]
    subjects: tuple[str, ...]
    positions: dict[str, tuple[int, ...]]
    n_tr: dict[str, int]
    n_targets: int
    target_chunk: int
    coords: dict[str, Any] = field(repr=False)
    attrs: dict[str, Any]
    fingerprint: str

    @property
    def has_story(self) -> np.ndarray:
        """Which subject has which story: bool (n_subjects, n_stories)."""
        return np.stack([np.asarray(self.positions[s]) >= 0 for s in self.stories], axis=1)

    @property
    def n_chunks(self) -> int:
        """Chunk tasks per config."""
        return -(-self.n_targets // self.target_chunk)

    def chunk(self, index: int) -> slice:
        """The targets of chunk ``index``."""
        start = index * self.target_chunk
        return slice(start, min(start + self.target_chunk, self.n_targets))


def _target_coords(ds) -> dict[str, np.ndarray]:
    coords = {S.ROI_DIM: np.asarray(ds[S.ROI_DIM].values)}
    for name in TARGET_COORDS:
        if name in ds.coords:
            coords[name] = np.asarray(ds[name].values)
    return coords


def _same_targets(first: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> bool:
    return first.keys() == other.keys() and all(np.array_equal(first[k], other[k]) for k in first)


def inspect_stories(store: StorePath, target_chunk: int | None = None) -> StoriesFmri:
    """The fMRI layout of every story with fMRI (metadata only, see the module docstring).

    Raises :class:`InputError` when the stories' targets differ (count, coordinates or
    target attrs) or no story has fMRI.
    """
    stories, per_story = [], {}
    for story in list_stories(store):
        handle = story_store(store, story)
        if group_exists(handle, S.FMRI):
            stories.append(story)
            per_story[story] = open_group(handle, S.FMRI)
    if not stories:
        raise InputError(f"no story of {store} has fMRI; import some first")
    subjects: dict[str, None] = {}
    for ds in per_story.values():
        subjects.update(dict.fromkeys(str(s) for s in ds[S.SUBJECT_DIM].values))
    first = stories[0]
    reference = per_story[first]
    coords = _target_coords(reference)
    attrs = {k: reference.attrs[k] for k in TARGET_ATTRS if k in reference.attrs}
    digest = hashlib.sha256()
    positions, n_tr = {}, {}
    for story, ds in per_story.items():
        bold = ds[S.BOLD_VAR]
        if bold.dims != S.BOLD_DIMS:
            raise InputError(
                f"story {story!r}: fmri bold has dims {bold.dims}, expected {S.BOLD_DIMS}"
            )
        theirs = {k: ds.attrs[k] for k in TARGET_ATTRS if k in ds.attrs}
        if not _same_targets(coords, _target_coords(ds)) or theirs != attrs:
            raise InputError(
                f"story {story!r} has other targets than story {first!r} ({bold.shape[2]} vs "
                f"{reference.sizes[S.ROI_DIM]}, or other coordinates / {', '.join(TARGET_ATTRS)}); "
                "every story of a run needs the same target axis"
            )
        names = [str(s) for s in ds[S.SUBJECT_DIM].values]
        positions[story] = tuple(names.index(s) if s in names else -1 for s in subjects)
        n_tr[story] = int(bold.shape[1])
        digest.update(
            repr(
                (story, bold.shape, names, ds.attrs.get("created"), ds.attrs.get("source"))
            ).encode()
        )
    n_targets = len(coords[S.ROI_DIM])
    digest.update(repr({k: v.tolist() for k, v in coords.items()}).encode())
    chunk = target_chunk or _bold_chunk(reference) or MAX_TARGET_CHUNK
    return StoriesFmri(
        stories=tuple(stories),
        subjects=tuple(subjects),
        positions=positions,
        n_tr=n_tr,
        n_targets=n_targets,
        target_chunk=max(1, min(int(chunk), MAX_TARGET_CHUNK, n_targets)),
        coords=coords,
        attrs=attrs,
        fingerprint=digest.hexdigest(),
    )


def _bold_chunk(ds) -> int | None:
    chunks = ds[S.BOLD_VAR].encoding.get("chunks")
    return int(chunks[2]) if chunks else None


def check_features(
    store: StorePath, configs: list[Config], fmri: StoriesFmri
) -> dict[str, dict[str, Any]]:
    """Check every config's feature sets exist in every story with the story's TR count;
    return their provenance per story and group (for the config hashes)."""
    provenance: dict[str, dict[str, Any]] = {}
    groups = {(part.key, part.window): part.group for c in configs for part in c.parts}
    for story in fmri.stories:
        catalog = StoreCatalog(story_store(store, story))
        for (key, window), group in groups.items():
            try:
                info = catalog.info(key, window)
            except InputError as exc:
                raise InputError(f"story {story!r}: {exc}") from None
            if info.n_tr != fmri.n_tr[story]:
                raise InputError(
                    f"story {story!r}: fmri bold has {fmri.n_tr[story]} TRs but {group} has "
                    f"{info.n_tr}; expected equal TR counts"
                )
            provenance.setdefault(story, {})[group] = feature_provenance(info.attrs)
    return provenance


def read_story_features(
    store: StorePath, config: Config, fmri: StoriesFmri, stories: list[str]
) -> dict[str, list[np.ndarray]]:
    """The config's feature layer(s) of each story: story → [(n_tr, dim), …]."""
    return {
        story: [read_layer(story_store(store, story), p, fmri.n_tr[story]) for p in config.parts]
        for story in stories
    }


class BoldChunkReader:
    """Reads one subject × one story × one chunk of targets, opening each story once."""

    def __init__(self, store: StorePath, fmri: StoriesFmri, targets: slice) -> None:
        self.store, self.fmri, self.targets = store, fmri, targets
        self._bold: dict[str, Any] = {}

    def __call__(self, story: str, subject: int) -> np.ndarray:
        """The (n_tr, n_chunk) float32 BOLD of global subject index ``subject``."""
        if story not in self._bold:
            self._bold[story] = open_group(story_store(self.store, story), S.FMRI)[S.BOLD_VAR]
        position = self.fmri.positions[story][subject]
        with reading_data(self.store, f"stories/{story}/fmri"):
            values = read_array(self._bold[story][position, :, self.targets])
        return values.astype(np.float32, copy=False)
