"""Encoding grids across the stories of a store of stories (schema 2).

:func:`run_story_grid` trains on some stories and tests on others (``test_stories``), or
leaves each story out in turn (``cv_stories``), for every config, at any number of
targets (parcels, vertices, voxels). The dask graph is over (config × target chunk):
one task per config builds the shared fits (:func:`~.story_tasks.prepare_config`),
one task per chunk of targets streams that chunk's BOLD from Zarr and scores it
(:func:`~.story_tasks.solve_chunk`), so memory is bounded by a chunk, not by the
targets. Chunks are staged as they complete, and the run resumes after a kill. The
results group ``results/<run_id>`` at the collection root follows the cross-story
results contract (``docs/evaluate.md``, "Many stories").

Nothing here imports model code (torch, transformers).
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from featstore.errors import FeatstoreWarning, GroupExistsError, InputError
from featstore.evaluate.encoding.alpha_edges import edge_alpha_warnings
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.encoding.stories import (
    StoryPlan,
    check_banded_pca,
    constant_feature_reason,
    plan_story_split,
)
from featstore.evaluate.runs import inputs
from featstore.evaluate.runs.configs import (
    Config,
    GridRequest,
    StoreCatalog,
)
from featstore.evaluate.runs.results import EXCLUDED_ATTR
from featstore.evaluate.runs.scheduling import (
    Execution,
    compute_threaded,
)
from featstore.evaluate.runs.story_inputs import (
    StoriesFmri,
    check_features,
    inspect_stories,
    read_story_features,
)
from featstore.evaluate.runs.story_tasks import (
    STORY_DIM,
    StoryRunStage,
    excluded_block,
    prepare_config,
    solve_chunk,
)
from featstore.evaluate.runs.writing import (
    RunLayout,
    auto_run_id,
    config_coords,
    find_staged_run,
    run_warnings,
)
from featstore.progress import progress_bar
from featstore.store import _schema as S
from featstore.store.groups import StorePath, is_complete
from featstore.store.paths import result_group
from featstore.store.staging import discard_stage, group_lock, settings_hash
from featstore.store.stories import is_collection, list_stories, story_store


def run_story_grid(
    store: StorePath,
    request: GridRequest,
    settings: EncodingSettings | None = None,
    *,
    test_stories: Sequence[str] | None = None,
    cv_stories: bool = False,
    run_id: str | None = None,
    execution: Execution,
    progress: bool = False,
    target_chunk: int | None = None,
) -> str:
    """Evaluate every config across the stories of ``store``; return the run id.

    Parameters
    ----------
    store
        A store of stories.
    request
        The models, fusions, windows and layers, as :func:`featstore.evaluate.runs.grid.run_grid`
        takes them; ``settings.method="banded"`` fits a fusion's two spaces with one alpha
        each (``band_alpha`` in the results).
    settings
        Encoding settings; ``test_frac`` is unused (stories are the split), ``cv`` folds
        apply when a subject has one training story.
    test_stories
        Stories held out for testing (train on the others).
    cv_stories
        Leave each story out in turn instead (every story predicted once).
    run_id, progress
        As :func:`~featstore.evaluate.runs.grid.run_grid`.
    execution
        Where tasks run (``workers``, ``threads_per_worker``, ``scheduler`` of
        :func:`~featstore.evaluate.runs.grid.run_grid`) and where the products with the
        BOLD run: ``backend`` ``"numpy"``, or ``"torch"`` on ``device`` ``"cpu"``,
        ``"cuda"`` or ``"cuda:N"``. Designs, PCA and the shared ridge decompositions are
        computed with numpy once per config (float64) and moved to the device per task.
    target_chunk
        Targets per task (default: the bold's chunking, at most 8192).

    Returns
    -------
    str
    """
    location = inputs.store_location(store)
    _check_split(location, test_stories, cv_stories)
    execution.check_backend()
    array_backend = (execution.backend, execution.device or "cpu")
    settings = settings or EncodingSettings()
    notices = [settings.gap_notice] if settings.gap_notice else []
    settings = dataclasses.replace(settings, gap=settings.resolved_gap)
    planned = _plan_run(
        location,
        settings,
        request,
        None if cv_stories else test_stories,
        target_chunk,
    )
    fmri, plan, configs = planned.fmri, planned.plan, planned.configs
    settings_dict = settings.to_dict()
    stage_settings = planned.stage_settings
    left_out = _left_out_warnings(plan, fmri)
    for message in left_out:  # never a silent NaN
        warnings.warn(message, FeatstoreWarning, stacklevel=2)
    notices += left_out
    run_id = run_id or find_staged_run(location, stage_settings) or auto_run_id(location)
    group = result_group(run_id)
    if is_complete(location, group):
        with group_lock(location, group):
            discard_stage(location, group)
        raise GroupExistsError(f"{group} already exists in {location}; choose another `run_id`")
    with contextlib.ExitStack() as stack:
        client = execution.connect(stack)
        stack.enter_context(group_lock(location, group))
        banded = any(c.method == "banded" for c in configs)
        stage = StoryRunStage(
            location, run_id, len(configs), plan, fmri, stage_settings, banded=banded
        )
        excluded = _excluded_configs(location, configs, plan, fmri)
        pending = []
        for config, chunk in stage.pending():
            if config in excluded:  # not fitted: its scores are NaN, said in `excluded`
                stage.write(config, chunk, excluded_block(plan, fmri, chunk))
            else:
                pending.append((config, chunk))
        with progress_bar(
            f"grid {run_id}",
            len(pending),
            enabled=progress and bool(pending),
            unit="chunks",
            transient=True,
        ) as advance:

            def on_result(config: int, chunk: int, packed: dict[str, Any]) -> None:
                stage.write(config, chunk, packed)
                advance(1)

            _run_tasks(
                _TaskInputs(location, settings_dict, plan, fmri, array_backend),
                configs,
                pending,
                execution,
                client=client,
                run_id=run_id,
                on_result=on_result,
            )
        n_constant = stage.n_constant()
        per_config = _edge_warnings(configs, stage.edge_counts(), settings)
        attrs = _run_attrs(run_id, settings_dict, plan, fmri, planned.provenance)
        reasons = {configs[c].label: reason for c, reason in excluded.items()}
        for label, reason in reasons.items():
            per_config.setdefault(label, []).insert(0, f"not evaluated (r = NaN): {reason}")
        attrs.update(
            {EXCLUDED_ATTR: reasons},
            warnings=notices + _constant_warnings(n_constant) + run_warnings(per_config),
            config_warnings=per_config,
            execution=execution.record(),
            n_configs=len(configs),
            n_computed=len({c for c, _ in pending}),
            n_resumed=len(configs) - len({c for c, _ in pending}),
            n_reused=0,
        )
        stage.finalize(_coords(planned.first, configs, planned.hashes, plan, fmri), attrs)
    return run_id


def _excluded_configs(
    location: str, configs: Sequence[Config], plan: StoryPlan, fmri: StoriesFmri
) -> dict[int, str]:
    """Configs with a feature set constant over every story, and why (one read of each
    config's layers; they are not fitted)."""
    excluded = {}
    for index, config in enumerate(configs):
        features = read_story_features(location, config, fmri, list(plan.stories))
        names = [f"{part.group} layer {part.layer}" for part in config.parts]
        reason = constant_feature_reason(features, names)
        if reason is not None:
            warnings.warn(
                f"{config.label}: {reason}; not evaluated", FeatstoreWarning, stacklevel=3
            )
            excluded[index] = reason
    return excluded


@dataclasses.dataclass(frozen=True)
class _RunPlan:
    """What a run across stories evaluates, read from the store's metadata."""

    fmri: StoriesFmri
    plan: StoryPlan
    first: str  # the first story's location: its catalog names the configs
    configs: list[Config]
    provenance: dict[str, Any]
    hashes: tuple[str, ...]
    stage_settings: dict[str, Any]


def _plan_run(
    location: str,
    settings: EncodingSettings,
    request: GridRequest,
    test_stories: Sequence[str] | None,
    target_chunk: int | None,
) -> _RunPlan:
    """The stories' fMRI, the split plan, the configs (checked in every story) and hashes."""
    fmri = inspect_stories(location, target_chunk)
    plan = plan_story_split(fmri.has_story, fmri.stories, test_stories)
    first = inputs.store_location(story_store(location, fmri.stories[0]))
    configs = request.configs(first, settings.method)
    for config in configs:  # before any work: a task would fail after the stage exists
        check_banded_pca(settings, len(config.parts))
    provenance = check_features(location, configs, fmri)
    settings_dict = settings.to_dict()
    hashes = tuple(
        settings_hash(
            {
                "settings": settings_dict,
                "config": c.label,
                "features": {
                    s: {p.group: g[p.group] for p in c.parts} for s, g in provenance.items()
                },
                "fmri": fmri.fingerprint,
                "split": plan.split,
                "test_stories": list(plan.test_stories),
            }
        )
        for c in configs
    )
    stage_settings = {
        "kind": "stories",
        "configs": list(hashes),
        "subjects": list(fmri.subjects),
        "target_chunk": fmri.target_chunk,
    }
    return _RunPlan(fmri, plan, first, configs, provenance, hashes, stage_settings)


def _check_split(store: str, test_stories: Sequence[str] | None, cv_stories: bool) -> None:
    if not is_collection(store):
        raise InputError(
            f"{store} holds one story ({list_stories(store)[0]!r}); `test_stories` and "
            "`cv_stories` need a store of stories (evaluate it without them)"
        )
    if bool(test_stories) == bool(cv_stories):
        stories = list_stories(store)
        raise InputError(
            f"{store} holds {len(stories)} stories ({', '.join(stories)}): give "
            "`test_stories` or `cv_stories` (not both), or one `story`"
        )


def _left_out(plan: StoryPlan, fmri: StoriesFmri) -> dict[str, list[str]]:
    return {
        story: [fmri.subjects[i] for i in subjects] for story, subjects in plan.left_out.items()
    }


def _left_out_warnings(plan: StoryPlan, fmri: StoriesFmri) -> list[str]:
    """One warning per test story some subjects are not scored on."""
    return [
        f"{len(names)} subject(s) left out of test story {story!r} (r NaN there): "
        f"{', '.join(names)} (they lack it, or have no other story to train on)"
        for story, names in _left_out(plan, fmri).items()
        if names
    ]


def _edge_warnings(
    configs: Sequence[Config], edge_counts: np.ndarray, settings: EncodingSettings
) -> dict[str, list[str]]:
    """Per config, the one-story grid's warnings of alphas piling up at a grid edge."""
    if settings.alpha is not None:
        return {}
    per_config = {
        config.label: edge_alpha_warnings(counts, settings.alphas, "subject x fold x target fits")
        for config, counts in zip(configs, edge_counts.tolist(), strict=True)
    }
    return {label: messages for label, messages in per_config.items() if messages}


def _constant_warnings(n_constant: np.ndarray) -> list[str]:
    worst = int(n_constant.max()) if len(n_constant) else 0
    if not worst:
        return []
    return [
        f"{worst} (subject, story, target) BOLD series are constant over a story's kept TRs "
        "(z-scored to zeros; r NaN in that story)"
    ]


def _run_attrs(
    run_id: str,
    settings: dict[str, Any],
    plan: StoryPlan,
    fmri: StoriesFmri,
    provenance: dict[str, Any],
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "settings": {**settings, "partition": False},
        "features": provenance,
        "fmri": {
            "fingerprint": fmri.fingerprint,
            "n_subjects": len(fmri.subjects),
            "n_roi": fmri.n_targets,
            "n_tr": dict(fmri.n_tr),
        },
        "split": plan.split,
        "stories": list(plan.stories),
        "test_stories": list(plan.test_stories),
        "subjects_left_out": _left_out(plan, fmri),
        "target_chunk": fmri.target_chunk,
        EXCLUDED_ATTR: {},
        **fmri.attrs,
    }


def _coords(
    first_story: str,
    configs: Sequence[Config],
    hashes: Sequence[str],
    plan: StoryPlan,
    fmri: StoriesFmri,
) -> dict[str, Any]:
    roi_coords = {
        name: (values if name == S.ROI_DIM else (S.ROI_DIM, values))
        for name, values in fmri.coords.items()
    }
    info = inputs.FmriInfo(
        fmri.fingerprint,
        len(fmri.subjects),
        0,
        fmri.n_targets,
        {S.SUBJECT_DIM: np.asarray(fmri.subjects, dtype=object), **roi_coords},
    )
    catalog = StoreCatalog(first_story)
    infos = {p.group: catalog.info(p.key, p.window) for c in configs for p in c.parts}
    layout = RunLayout(tuple(configs), tuple(hashes), len(fmri.subjects), fmri.n_targets)
    coords = config_coords(layout, info, infos)
    coords[STORY_DIM] = np.asarray(plan.test_stories, dtype=object)
    return coords


@dataclasses.dataclass(frozen=True)
class _TaskInputs:
    """What every task of a run across stories gets (never arrays)."""

    store: str
    settings: dict[str, Any]
    plan: StoryPlan
    fmri: StoriesFmri
    array_backend: tuple[str, str]

    def prepare_args(self, config: Config, n_threads: int | None) -> tuple:
        """The arguments of :func:`~.story_tasks.prepare_config`."""
        return (self.store, config, self.settings, self.plan, self.fmri, n_threads)

    def solve_args(self, fits: Any, chunk: int, n_threads: int | None) -> tuple:
        """The arguments of :func:`~.story_tasks.solve_chunk`."""
        return (
            *(self.store, fits, self.settings, self.plan, self.fmri),
            *(chunk, n_threads, self.array_backend),
        )


def _run_tasks(
    task_inputs: _TaskInputs,
    configs: Sequence[Config],
    pending: Sequence[tuple[int, int]],
    execution: Execution,
    *,
    client: Any,
    run_id: str,
    on_result: Any,
) -> None:
    """Run the (config, chunk) tasks of ``pending`` (see the module docstring)."""
    by_config: dict[int, list[int]] = {}
    for config, chunk in pending:
        by_config.setdefault(config, []).append(chunk)
    if not by_config:
        return
    if execution.threaded(client):
        _run_threaded(task_inputs, configs, by_config, execution.threads_per_worker, on_result)
        return
    with execution.open_cluster(client) as cluster:
        fits = {
            c: cluster.client.submit(
                prepare_config,
                *task_inputs.prepare_args(configs[c], cluster.n_threads),
                key=f"featstore-{run_id}-prepare-{c}",
                pure=False,
            )
            for c in by_config
        }
        futures = {
            cluster.client.submit(
                solve_chunk,
                *task_inputs.solve_args(fits[c], k, cluster.n_threads),
                key=f"featstore-{run_id}-{c}-{k}",
                pure=False,
            ): (c, k)
            for c, chunks in by_config.items()
            for k in chunks
        }
        cluster.gather(futures, on_result, also_cancel=list(fits.values()))


def _run_threaded(
    task_inputs: _TaskInputs,
    configs: Sequence[Config],
    by_config: dict[int, list[int]],
    n_threads: int | None,
    on_result: Any,
) -> None:
    """dask's threaded scheduler, one task at a time (BLAS uses ``n_threads``); each
    chunk's result is staged by ``on_result``, then dropped."""
    import dask

    tasks = {}
    for c, chunks in by_config.items():
        fits = dask.delayed(prepare_config, pure=False)(
            *task_inputs.prepare_args(configs[c], n_threads),
            dask_key_name=f"featstore-prepare-{c}",
        )
        for k in chunks:
            key = f"featstore-chunk-{c}-{k}"
            solve = dask.delayed(solve_chunk, pure=False)
            tasks[key] = (
                (c, k),
                solve(*task_inputs.solve_args(fits, k, n_threads), dask_key_name=key),
            )
    compute_threaded(tasks, on_result)
