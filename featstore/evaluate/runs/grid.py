"""Encoding grids: build the configs, resume or reuse what the store holds, run the rest.

:func:`run_grid` turns model and fusion requests into configs, each hashed with its
settings, features and fMRI. Results are staged as they complete
(:mod:`featstore.evaluate.runs.results`): a killed grid resumes, and configs any complete run
already holds (same settings, features and fMRI) are copied instead of recomputed. The
others run as dask tasks that read their features lazily, on the scheduler
:mod:`featstore.evaluate.runs.scheduling` picks (threaded, a local cluster, or an existing
one).

Nothing here imports model code (torch, transformers).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from featstore.errors import GroupExistsError, InputError
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.runs import inputs
from featstore.evaluate.runs.configs import (
    Config,
    GridRequest,
    StoreCatalog,
    self_fusion_notices,
)
from featstore.evaluate.runs.results import EXCLUDED_ATTR, complete_runs, open_run
from featstore.evaluate.runs.scheduling import Execution, run_tasks
from featstore.evaluate.runs.story_grid import run_story_grid
from featstore.evaluate.runs.writing import (
    RunLayout,
    RunStage,
    auto_run_id,
    config_coords,
    config_hash,
    copy_result,
    find_resumable_run,
    find_reusable,
    run_warnings,
)
from featstore.progress import progress_bar
from featstore.store.groups import StorePath, is_complete, open_group
from featstore.store.paths import result_group
from featstore.store.staging import discard_stage, group_lock
from featstore.store.stories import is_collection, story_store

logger = logging.getLogger(__name__)


def _feature_inputs(location: str, configs: Sequence) -> tuple[Any, dict, dict]:
    """The fMRI's summary, and each feature set's info and provenance, checked to have the
    fMRI's number of TRs."""
    catalog = StoreCatalog(location)
    fmri = inputs.inspect_fmri(location)
    infos = {part.group: catalog.info(part.key, part.window) for c in configs for part in c.parts}
    for group, info in infos.items():
        if info.n_tr != fmri.n_tr:
            raise InputError(inputs.tr_mismatch_message(fmri.n_tr, group, info.n_tr))
    provenance = {group: inputs.feature_provenance(info.attrs) for group, info in infos.items()}
    return fmri, infos, provenance


def _reusable_run(location: str, hashes: Sequence[str]) -> str | None:
    """A complete run holding exactly this grid, said on the logger, or None."""
    same = _identical_run(location, hashes)
    if same is not None:
        logger.warning(
            "results/%s already holds this grid (the same configs, settings, features "
            "and fMRI); reusing it instead of adding a copy to the summary (pass "
            "run_id=NAME for another run)",
            same,
        )
    return same


def _one_story(
    store: StorePath, story: str, test_stories: Sequence[str] | None, cv_stories: bool
) -> StorePath:
    """The store of ``story``, refusing a cross-story split asked for at the same time."""
    if test_stories or cv_stories:
        raise InputError(
            f"story={story!r} evaluates one story (chronological split); give it or "
            "`test_stories` / `cv_stories`, not both"
        )
    return story_store(store, story)


def run_grid(
    store: StorePath,
    *,
    settings: EncodingSettings | None = None,
    partition: bool = True,
    run_id: str | None = None,
    workers: int = 1,
    threads_per_worker: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    backend: str = "numpy",
    device: str | None = None,
    story: str | None = None,
    test_stories: Sequence[str] | None = None,
    cv_stories: bool = False,
    target_chunk: int | None = None,
    **request: Any,
) -> str:
    """Evaluate every requested config and write ``results/<run_id>``; return the run id.

    Parameters
    ----------
    store
        Store path (workers of a ``scheduler`` must see it at the same path).
    settings
        Encoding settings; ``settings.method`` is the fusion method. With a negative
        delay the gap is raised to ``-min(delays)`` (``resolved_gap``): the run stores
        the raised gap in its settings and says so first in its warnings.
    partition
        Variance partitioning (unique / shared) for fusion configs.
    run_id
        Name of the run; ``None`` resumes an unfinished run with the same configs and
        settings, else returns a complete run holding exactly these configs (same
        settings, features and fMRI) with a notice on the ``featstore`` logger, else makes
        ``grid-YYYYmmdd-HHMMSS``.
    workers, threads_per_worker, scheduler
        Where tasks run (see :mod:`featstore.evaluate.runs.scheduling`).
    backend, device
        What each task computes with: ``"numpy"`` (CPU) or ``"torch"`` on ``"cpu"``,
        ``"cuda"`` or ``"cuda:N"`` (see :mod:`featstore.evaluate.encoding.backend`). Results agree
        within ~1e-5 in r, so configs computed by either are reused by the other.
    progress
        Show a progress bar on stderr.
    story
        On a store of stories: evaluate this one story with the chronological split
        (results in ``stories/<story>/results/<run_id>``).
    test_stories, cv_stories, target_chunk
        On a store of stories: train on the other stories and test on ``test_stories``,
        or leave each story out in turn (``cv_stories``), ``target_chunk`` targets per
        task (see :func:`featstore.evaluate.runs.story_grid.run_story_grid`).
    **request
        What to evaluate, as :func:`~featstore.evaluate.runs.configs.build_configs` takes
        it (one :class:`~featstore.evaluate.runs.configs.GridRequest`):

        - ``models``: :class:`~featstore.evaluate.runs.configs.ModelRequest` ``(name,
          windows, layers)`` or ``(name, windows)`` (``None``: the defaults), each model
          at each of its windows and layers;
        - ``fusions``: ``(A, B)`` requests, every layer pair of A and B at each window,
          each side with its own layers if it has some;
        - ``windows``: window names applying by kind (``ctx200`` to text, ``tr6`` to
          audio);
        - ``layers``: ``"auto"`` (five evenly spaced depths), ``"all"`` or a list of layer
          labels, for every model and fusion side without layers of its own.

    Returns
    -------
    str
        The run id; the group's attrs say how many configs were computed, resumed and
        reused (``n_computed``, ``n_resumed``, ``n_reused``).

    Examples
    --------
    >>> import featstore as fs
    >>> from featstore.datasets import example_store
    >>> from featstore.evaluate.runs import run_grid
    >>> run_grid(example_store(), models=[("toy-speech", ["tr1"])], run_id="demo", progress=False,
    ...          settings=fs.EncodingSettings(pca=8, cv=3))
    'demo'
    """
    grid = GridRequest(**request)
    execution = Execution(workers, threads_per_worker, scheduler, backend, device)
    if story is not None:
        store = _one_story(store, story, test_stories, cv_stories)
    elif test_stories or cv_stories or is_collection(store):
        return run_story_grid(
            store,
            grid,
            settings,
            test_stories=test_stories,
            cv_stories=cv_stories,
            run_id=run_id,
            execution=execution,
            progress=progress,
            target_chunk=target_chunk,
        )
    settings = settings or EncodingSettings()
    execution.check_backend()
    # the run stores (and hashes) the gap it uses: negative delays raise it
    notices = [settings.gap_notice] if settings.gap_notice else []
    settings = dataclasses.replace(settings, gap=settings.resolved_gap)
    location = inputs.store_location(store)
    configs = grid.configs(location, settings.method)
    notices += self_fusion_notices(configs)
    fmri, infos, provenance = _feature_inputs(location, configs)
    settings_dict = settings.to_dict()
    hashes = tuple(
        config_hash(c, settings_dict, provenance, fmri.fingerprint, partition) for c in configs
    )
    layout = RunLayout(tuple(configs), hashes, fmri.n_subjects, fmri.n_roi)
    if run_id is None:
        run_id = find_resumable_run(location, layout)
        if run_id is None and (same := _reusable_run(location, hashes)) is not None:
            return same
        run_id = run_id or auto_run_id(location)
    group = result_group(run_id)
    if is_complete(location, group):
        with group_lock(location, group):
            discard_stage(location, group)  # left by a run killed after its last write
        raise GroupExistsError(
            f"{group} already exists in {location}; choose another `run_id` (configs already "
            "computed there are reused, not recomputed)"
        )
    with contextlib.ExitStack() as stack:
        client = execution.connect(stack)
        stack.enter_context(group_lock(location, group))
        stage = RunStage(location, run_id, layout)
        try:
            _run_staged(
                stage,
                configs=configs,
                hashes=hashes,
                layout=layout,
                settings_dict=settings_dict,
                partition=partition,
                execution=execution,
                client=client,
                progress=progress,
                finish={
                    "notices": notices,
                    "provenance": provenance,
                    "fmri": fmri,
                    "infos": infos,
                    "request": grid.record(),
                    "execution": execution.record(),
                },
            )
        except BaseException:
            # a run that failed before finishing any config has nothing to resume
            with contextlib.suppress(Exception):
                if len(stage.pending()) == len(configs):
                    stage.stage.discard()
            raise
    return run_id


def _identical_run(store: StorePath, hashes: Sequence[str]) -> str | None:
    """The newest complete run holding exactly the configs of ``hashes`` (in any order)."""
    wanted = sorted(hashes)
    matches = []
    for run_id in complete_runs(store):
        ds = open_group(store, result_group(run_id))
        if "config_hash" in ds.coords and sorted(map(str, ds["config_hash"].values)) == wanted:
            matches.append((str(ds.attrs.get("created", "")), run_id))
    return max(matches)[1] if matches else None


def _run_staged(
    stage: RunStage,
    *,
    configs: Sequence[Config],
    hashes: Sequence[str],
    layout: RunLayout,
    settings_dict: Mapping[str, Any],
    partition: bool,
    execution: Execution,
    client: Any,
    progress: bool,
    finish: Mapping[str, Any],
) -> None:
    """Copy reusable configs, compute the others, then write the results group."""
    location, run_id = stage.store, stage.run_id
    pending = stage.pending()
    resumed = len(configs) - len(pending)
    reusable = find_reusable(location, {hashes[i] for i in pending})
    sources: dict[str, Any] = {}
    for index in [i for i in pending if hashes[i] in reusable]:
        source_run, source_index = reusable[hashes[index]]
        if source_run not in sources:
            sources[source_run] = open_run(location, source_run)
        stage.write(
            index, copy_result(sources[source_run], source_index, variables=layout.variables)
        )
    array_backend = (execution.backend, execution.device)
    jobs = [
        (i, (location, configs[i], settings_dict, partition, array_backend))
        for i in pending
        if hashes[i] not in reusable
    ]
    with progress_bar(
        f"grid {run_id}", len(jobs), enabled=progress and bool(jobs), unit="configs", transient=True
    ) as advance:

        def on_result(index: int, packed: dict[str, Any]) -> None:
            stage.write(index, packed)
            advance(1)

        if jobs:
            run_tasks(jobs, execution, client=client, run_id=run_id, on_result=on_result)
    metas = stage.metas()
    counts = {
        "n_configs": len(configs),
        "n_computed": len(jobs),
        "n_resumed": resumed,
        "n_reused": len(pending) - len(jobs),
    }
    attrs = _run_attrs(
        run_id,
        configs,
        metas,
        settings_dict,
        partition=partition,
        provenance=finish["provenance"],
        fmri=finish["fmri"],
        request=finish["request"],
        execution=finish["execution"],
        counts=counts,
        notices=finish["notices"],
    )
    stage.finalize(config_coords(layout, finish["fmri"], finish["infos"]), attrs)


def _run_attrs(
    run_id: str,
    configs: Sequence[Config],
    metas: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any],
    *,
    partition: bool,
    provenance: Mapping[str, Any],
    fmri: inputs.FmriInfo,
    request: Mapping[str, Any],
    execution: Mapping[str, Any],
    counts: Mapping[str, int],
    notices: Sequence[str] = (),
) -> dict[str, Any]:
    """Attrs of a results group: settings, provenance, split, warnings and counts.

    ``notices`` (run-level warnings, e.g. a raised gap) come first in ``warnings``.
    """
    per_config = {
        c.label: list(m["warnings"]) for c, m in zip(configs, metas, strict=True) if m["warnings"]
    }
    # why a config has no result at all comes before the many edge-alpha warnings
    first = {w for m in metas if m.get("excluded") for w in m["warnings"]}
    return {
        "run_id": run_id,
        "settings": {**settings, "partition": bool(partition)},
        "request": dict(request),
        "execution": dict(execution),
        "features": dict(provenance),
        "fmri": {
            "fingerprint": fmri.fingerprint,
            "n_subjects": fmri.n_subjects,
            "n_tr": fmri.n_tr,
            "n_roi": fmri.n_roi,
        },
        "train_range": list(metas[0]["train"]),
        "test_range": list(metas[0]["test"]),
        "warnings": [*notices, *run_warnings(per_config, first=first)],
        "config_warnings": per_config,
        EXCLUDED_ATTR: {
            c.label: m["excluded"] for c, m in zip(configs, metas, strict=True) if m.get("excluded")
        },
        **counts,
    }
