"""The tasks of a run across stories and the stage their results go to.

Two kinds of task, so that the dask graph is over (config × target chunk):

* :func:`prepare_config` — per config: reads its features in every story and builds
  one :class:`~featstore.evaluate.encoding.stories.SharedFit` per training set (designs
  and ridge decompositions);
* :func:`solve_chunk` — per (config, target chunk): streams the chunk's BOLD from Zarr
  one subject × story at a time and scores it with the config's shared fits.

Chunk results are staged one block per (config, chunk) in ``_work/results/<run_id>``
(:class:`StoryRunStage`): a killed run started again recomputes only the missing
chunks; when all are staged, ``results/<run_id>`` is written lazily from the stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from featstore.evaluate.encoding.backend import get_backend
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.encoding.stories import SharedFit, StoryPlan, prepare_fit
from featstore.evaluate.encoding.story_solver import solve_targets
from featstore.evaluate.encoding.threads import blas_threads
from featstore.evaluate.runs.configs import Config
from featstore.evaluate.runs.results import BAND_ALPHA_VAR, BAND_DIM, N_BANDS, stage_attrs
from featstore.evaluate.runs.story_inputs import (
    BoldChunkReader,
    StoriesFmri,
    read_story_features,
)
from featstore.store import _schema as S
from featstore.store.groups import StorePath, write_group
from featstore.store.paths import result_group
from featstore.store.staging import BlockStage, StagedArray

STORY_DIM = "story"
R_STORY_VAR = "r_story"
_CONSTANT = "n_constant"
_EDGES = "edge_counts"
FLOAT = "float32"


def prepare_config(
    store: StorePath,
    config: Config,
    settings: Mapping[str, Any],
    plan: StoryPlan,
    fmri: StoriesFmri,
    n_threads: int | None = None,
) -> dict[tuple[str, ...], SharedFit]:
    """The shared fits of one config: one per training set of ``plan``."""
    encoding = EncodingSettings.from_dict(dict(settings))
    with blas_threads(n_threads):
        features = read_story_features(store, config, fmri, list(plan.stories))
        return {
            train: prepare_fit(features, train, plan.evaluated(train), encoding)
            for train in plan.training_sets
        }


def solve_chunk(
    store: StorePath,
    fits: Mapping[tuple[str, ...], SharedFit],
    settings: Mapping[str, Any],
    plan: StoryPlan,
    fmri: StoriesFmri,
    chunk: int,
    n_threads: int | None = None,
    array_backend: tuple[str, str | None] = ("numpy", None),
) -> dict[str, np.ndarray]:
    """Scores of one target chunk, padded with NaN to the chunk size (a staged block).

    ``array_backend`` (name, device) says where the products with the BOLD run (see
    :mod:`featstore.evaluate.encoding.backend`); names, not a backend, travel to workers.
    """
    targets = fmri.chunk(chunk)
    n = targets.stop - targets.start
    with blas_threads(n_threads):
        scores = solve_targets(
            plan,
            fits,
            BoldChunkReader(store, fmri, targets),
            n,
            EncodingSettings.from_dict(dict(settings)),
            fmri.subjects,
            backend=get_backend(*array_backend),
        )
    band = scores.band_alpha
    if band is None:
        band = np.full((len(fmri.subjects), n, N_BANDS), np.nan, dtype=FLOAT)
    return _block(fmri, scores.r, scores.alpha, band, scores.r_story, scores.n_constant,
                  scores.edge_counts)  # fmt: skip


def excluded_block(plan: StoryPlan, fmri: StoriesFmri, chunk: int) -> dict[str, np.ndarray]:
    """The staged block of a chunk of a config that is not fitted (its features are
    constant): NaN scores, nothing counted."""
    targets = fmri.chunk(chunk)
    shape = (len(fmri.subjects), targets.stop - targets.start)
    nan = np.full(shape, np.nan, dtype=FLOAT)
    return _block(fmri, nan, nan, np.full((*shape, N_BANDS), np.nan, dtype=FLOAT),
                  np.full((len(plan.test_stories), *shape), np.nan, dtype=FLOAT), 0,
                  np.zeros(4, dtype=np.int64))  # fmt: skip


def _block(fmri, r, alpha, band, r_story, n_constant, edge_counts) -> dict[str, np.ndarray]:
    """Scores of ``n`` targets as a staged block, padded with NaN to the chunk size."""
    n, width = r.shape[-1], fmri.target_chunk

    def padded(values: np.ndarray) -> np.ndarray:
        out = np.full((*values.shape[:-1], width), np.nan, dtype=FLOAT)
        out[..., :n] = values
        return out[None]

    return {
        "r": padded(r),
        "alpha": padded(alpha),
        BAND_ALPHA_VAR: padded(np.moveaxis(band, -1, 1)),  # (subject, band, target)
        R_STORY_VAR: padded(r_story),
        _CONSTANT: np.array([n_constant], dtype=np.int64),
        _EDGES: np.asarray(edge_counts).astype(np.int64)[None],
    }


class StoryRunStage:
    """The staged blocks of a run across stories: block ``c * n_chunks + k`` holds
    chunk ``k`` of config ``c``."""

    def __init__(
        self,
        store: StorePath,
        run_id: str,
        n_configs: int,
        plan: StoryPlan,
        fmri: StoriesFmri,
        stage_settings: Mapping[str, Any],
        banded: bool = False,
    ) -> None:
        self.store, self.run_id, self.n_configs, self.fmri = store, run_id, n_configs, fmri
        n_tasks, n_subjects = n_configs * fmri.n_chunks, len(fmri.subjects)
        width = fmri.target_chunk
        arrays = {
            "r": StagedArray((n_tasks, n_subjects, width), FLOAT),
            "alpha": StagedArray((n_tasks, n_subjects, width), FLOAT),
            R_STORY_VAR: StagedArray((n_tasks, len(plan.test_stories), n_subjects, width), FLOAT),
            _CONSTANT: StagedArray((n_tasks,), "int64"),
            _EDGES: StagedArray((n_tasks, 4), "int64"),
        }
        if banded:  # band alphas only when some config is a banded fusion, as one-story runs
            arrays[BAND_ALPHA_VAR] = StagedArray((n_tasks, n_subjects, N_BANDS, width), FLOAT)
        self.stage = BlockStage(
            store,
            result_group(run_id),
            arrays,
            block_size=1,
            settings=stage_settings,
            attrs=stage_attrs(n_configs, fmri.n_chunks),
        )

    def task(self, config: int, chunk: int) -> int:
        """The block index of (config, chunk)."""
        return config * self.fmri.n_chunks + chunk

    def pending(self) -> list[tuple[int, int]]:
        """(config, chunk) pairs not staged yet."""
        return [divmod(i, self.fmri.n_chunks) for i in self.stage.pending_blocks()]

    def write(self, config: int, chunk: int, packed: Mapping[str, np.ndarray]) -> None:
        """Stage one chunk's result (see :func:`solve_chunk`)."""
        staged = {name: values for name, values in packed.items() if name in self.stage.arrays}
        self.stage.write_block(self.task(config, chunk), **staged)

    def n_constant(self) -> np.ndarray:
        """Constant (subject, story, target) series counted by each config's chunks."""
        return self._per_config(_CONSTANT)

    def edge_counts(self) -> np.ndarray:
        """(n_configs, 4) alpha-grid edge counts of each config, summed over its chunks
        (see :class:`~featstore.evaluate.encoding.story_solver.StoryScores`)."""
        return self._per_config(_EDGES)

    def _per_config(self, name: str) -> np.ndarray:
        counts = np.asarray(self.stage.dask_arrays()[name].compute(scheduler="threads"))
        return counts.reshape(self.n_configs, self.fmri.n_chunks, *counts.shape[1:]).sum(axis=1)

    def _assembled(self, blocks: da.Array) -> da.Array:
        """(task, …, width) blocks → (config, …, target), one chunk per config × chunk."""
        n_chunks = self.fmri.n_chunks
        per_config = [
            da.concatenate([blocks[c * n_chunks + k] for k in range(n_chunks)], axis=-1)[
                ..., : self.fmri.n_targets
            ]
            for c in range(self.n_configs)
        ]
        return da.stack(per_config)

    def finalize(self, coords: Mapping[str, Any], attrs: Mapping[str, Any]) -> None:
        """Write ``results/<run_id>`` lazily from the stage, then discard the stage."""
        arrays = self.stage.dask_arrays()
        dims = {
            "r": (S.CONFIG_DIM, S.SUBJECT_DIM, S.ROI_DIM),
            "alpha": (S.CONFIG_DIM, S.SUBJECT_DIM, S.ROI_DIM),
            R_STORY_VAR: (S.CONFIG_DIM, STORY_DIM, S.SUBJECT_DIM, S.ROI_DIM),
        }
        if BAND_ALPHA_VAR in arrays:
            dims[BAND_ALPHA_VAR] = (S.CONFIG_DIM, S.SUBJECT_DIM, S.ROI_DIM, BAND_DIM)
        data_vars, encoding = {}, {}
        for name, names in dims.items():
            values = self._assembled(arrays[name])
            if name == BAND_ALPHA_VAR:  # staged (…, band, target): targets pad the last axis
                values = da.moveaxis(values, -2, -1)
            data_vars[name] = (names, values)
            chunks = [1, *values.shape[1:]]
            chunks[names.index(S.ROI_DIM)] = self.fmri.target_chunk
            encoding[name] = {"chunks": tuple(chunks)}
        ds = xr.Dataset(data_vars, coords=dict(coords), attrs=dict(attrs))
        with dask.config.set(scheduler="threads"):
            write_group(
                self.store, result_group(self.run_id), ds, encoding=encoding, overwrite=True
            )
        self.stage.discard()
