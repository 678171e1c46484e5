"""Encoding grids as a dask graph: one task per config, features read lazily inside it.

A task gets the store location, a :class:`~featstore.evaluate.runs.configs.Config` and the
settings — never arrays. It reads its feature layer(s) from the store (one chunk per
layer) and the bold once per worker process (:func:`featstore.evaluate.runs.inputs.load_bold`),
so peak memory is bounded by the tasks in flight, not by the size of the grid. Results
come back to the calling process, which stages each one as it completes
(:mod:`featstore.evaluate.runs.results`): a killed grid resumes, and configs any complete run
already holds (same settings, features and fMRI) are copied instead of recomputed.

Schedulers:

* ``workers <= 1``: dask's threaded scheduler in this process, one config at a time,
  BLAS pinned to ``threads_per_worker`` threads;
* ``workers > 1``: a local ``distributed`` cluster of ``workers`` processes, each
  evaluating one config at a time with ``threads_per_worker`` BLAS threads (default:
  its share of the cores; set in the worker environment and with threadpoolctl), so
  cores are never oversubscribed;
* ``scheduler="tcp://host:8786"``: an existing distributed cluster; its workers must
  see the store at the same path.

Nothing here imports model code (torch, transformers).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from featstore.errors import GroupExistsError, InputError
from featstore.evaluate.encoding.backend import get_backend
from featstore.evaluate.encoding.pipeline import EncodingResult, encode
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.encoding.threads import blas_threads
from featstore.evaluate.runs import inputs
from featstore.evaluate.runs.configs import (
    Config,
    LayerSpec,
    ModelRequest,
    StoreCatalog,
    build_configs,
    parse_config,
    self_fusion_notices,
)
from featstore.evaluate.runs.results import (
    EXCLUDED_ATTR,
    RunLayout,
    RunStage,
    auto_run_id,
    complete_runs,
    config_coords,
    config_hash,
    copy_result,
    find_resumable_run,
    find_reusable,
    open_run,
    pack_result,
)
from featstore.progress import progress_bar
from featstore.store.groups import StorePath, is_complete, open_group
from featstore.store.paths import result_group
from featstore.store.staging import discard_stage, group_lock

logger = logging.getLogger(__name__)

# distinct warnings a run lists before pointing to the per-config ones
MAX_RUN_WARNINGS = 5
_BLAS_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: A local cluster's scheduler without dashboard, its HTTP server on any free port.
QUIET_SCHEDULER = {"dashboard": False, "dashboard_address": ":0"}


def settings_for(config: Config, settings: EncodingSettings) -> EncodingSettings:
    """The settings a config is evaluated with: a fusion config's own method wins."""
    if config.is_fusion and settings.method != config.method:
        return dataclasses.replace(settings, method=config.method)
    return settings


def run_config(
    store: StorePath,
    config: Config | str,
    settings: EncodingSettings,
    *,
    return_predictions: bool = False,
    partition: bool | None = None,
    backend: str = "numpy",
    device: str | None = None,
) -> EncodingResult:
    """Evaluate one config (an object or a label such as ``wavlm/tr6/layer9``).

    Reads the config's feature layer(s) and the bold from the store and calls
    :func:`featstore.evaluate.encoding.pipeline.encode` (on ``backend``/``device``). ``partition``
    (variance partitioning) defaults to on for fusion configs.
    """
    if isinstance(config, str):
        config = parse_config(config, store)
    bold = inputs.load_bold(store)
    subject_names, roi_names = inputs.fmri_names(store)
    features = [inputs.read_layer(store, part, bold.shape[1]) for part in config.parts]
    return encode(
        features,
        bold,
        settings_for(config, settings),
        return_predictions=return_predictions,
        partition=config.is_fusion if partition is None else bool(partition) and config.is_fusion,
        names=[f"{part.group} layer {part.layer}" for part in config.parts],
        subject_names=subject_names,
        roi_names=roi_names,
        backend=backend,
        device=device,
    )


def _evaluate(
    store: str,
    config: Config,
    settings: Mapping[str, Any],
    partition: bool,
    array_backend: tuple[str, str | None],
    n_threads: int | None,
) -> dict[str, Any]:
    """The task of one config: its packed result (see :func:`results.pack_result`)."""
    backend, device = array_backend
    with blas_threads(n_threads):
        result = run_config(
            store,
            config,
            EncodingSettings.from_dict(dict(settings)),
            partition=partition,
            backend=backend,
            device=device,
        )
    return pack_result(result, config, partition=partition)


OnResult = Callable[[int, dict[str, Any]], None]


def _run_threaded(
    jobs: Sequence[tuple[int, tuple]], n_threads: int | None, on_result: OnResult
) -> None:
    """Threaded scheduler in this process; results are staged by the scheduler thread."""
    import dask
    from dask.callbacks import Callback

    index_of = {f"featstore-config-{index}": index for index, _ in jobs}

    class _Stage(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            if key in index_of:
                on_result(index_of[key], result)

    # each config task feeds a tiny task returning None, so dask drops the config's
    # result as soon as it is staged instead of holding every result to the end
    done = [
        dask.delayed(_discard)(
            dask.delayed(_evaluate, pure=False)(*args, n_threads, dask_key_name=key),
            dask_key_name=f"{key}-staged",
        )
        for key, (_, args) in zip(index_of, jobs, strict=True)
    ]
    with _Stage():
        dask.compute(*done, scheduler="threads", num_workers=1)


def _discard(_: Any) -> None:
    return None


def _run_distributed(
    jobs: Sequence[tuple[int, tuple]],
    *,
    workers: int,
    n_threads: int | None,
    client: Any,
    run_id: str,
    on_result: OnResult,
) -> None:
    """A distributed cluster: ``client``'s, or a local one of ``workers`` processes."""
    import dask
    from distributed import Client, LocalCluster, as_completed

    with contextlib.ExitStack() as stack:
        own_cluster = client is None
        if own_cluster:
            # each worker evaluates one config at a time with its share of the cores
            n_threads = n_threads or max(1, (os.cpu_count() or 1) // workers)
            env = {name: str(n_threads) for name in _BLAS_ENV}
            with (
                dask.config.set({"distributed.nanny.pre-spawn-environ": env}),
                _sigint_blocked_for_children(),
            ):
                cluster = stack.enter_context(
                    LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        # no dashboard, and the scheduler's HTTP routes on a free port:
                        # its default 8787 collides with any other cluster on the machine
                        scheduler_kwargs=QUIET_SCHEDULER,
                    )
                )
            client = stack.enter_context(Client(cluster))
        futures = {
            client.submit(
                _evaluate, *args, n_threads, key=f"featstore-{run_id}-{index}", pure=False
            ): index
            for index, args in jobs
        }
        try:
            for future in as_completed(futures):
                on_result(futures[future], future.result())
                future.release()
        except BaseException:
            # the error (or Ctrl-C) is what the user needs; the teardown of the cluster
            # that follows logs warnings and tracebacks of its closed connections
            stack.enter_context(_silenced("distributed"))
            if own_cluster:
                with contextlib.suppress(Exception):
                    client.run(_silence_distributed_logs)
            client.cancel(list(futures))
            raise


def _silence_distributed_logs() -> None:
    """Run on each worker of a cluster about to be closed: its shutdown is not news."""
    logging.getLogger("distributed").setLevel(logging.CRITICAL + 1)


@contextlib.contextmanager
def _sigint_blocked_for_children() -> Iterator[None]:
    """Worker processes started inside never see SIGINT; this process still does.

    Ctrl-C in a terminal reaches the whole process group: each worker would print its
    own ``KeyboardInterrupt`` traceback while this process, which owns them, stops the
    cluster anyway. SIGINT is blocked (not ignored) here while the cluster starts: the
    threads it starts and the workers they spawn inherit the blocked mask, and a Ctrl-C
    pressed meanwhile stays pending and interrupts this thread once unblocked.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # multiprocessing starts its resource tracker from the first thread that spawns a
    # process and unblocks SIGINT in that thread afterwards: start it now, unblocked
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def _silenced(name: str) -> Iterator[None]:
    """Logger ``name`` and its children drop every record inside."""
    silenced = logging.getLogger(name)
    level = silenced.level
    silenced.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        silenced.setLevel(level)


def connect(scheduler: str):
    """A distributed ``Client`` of the scheduler at ``scheduler``.

    An address that does not parse or a scheduler that does not answer (within dask's
    ``distributed.comm.timeouts.connect``) is an :class:`InputError` naming the address.
    """
    from distributed import Client

    try:
        return Client(scheduler)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"scheduler={scheduler!r}: cannot connect ({reason}); expected the address of "
            "a running dask scheduler, e.g. tcp://10.0.0.5:8786"
        ) from None


def run_grid(
    store: StorePath,
    *,
    models: Sequence[ModelRequest] = (),
    fusions: Sequence[tuple[ModelRequest, ModelRequest]] = (),
    windows: Sequence[str] = (),
    layers: LayerSpec | None = "auto",
    settings: EncodingSettings | None = None,
    partition: bool = True,
    run_id: str | None = None,
    workers: int = 1,
    threads_per_worker: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    backend: str = "numpy",
    device: str | None = None,
) -> str:
    """Evaluate every requested config and write ``results/<run_id>``; return the run id.

    Parameters
    ----------
    store
        Store path (workers of a ``scheduler`` must see it at the same path).
    models
        :class:`~featstore.evaluate.runs.configs.ModelRequest` ``(name, windows, layers)`` or
        ``(name, windows)`` (``None``: the defaults): each model at each of its windows
        and layers.
    fusions
        ``(A, B)`` requests: every layer pair of A and B at each window, each side with
        its own layers if it has some (see :func:`featstore.evaluate.runs.configs.build_configs`).
    windows
        Window names applying by kind (``ctx200`` to text, ``tr6`` to audio).
    layers
        ``"auto"`` (five evenly spaced depths), ``"all"`` or a list of layer labels, for
        every model and fusion side without layers of its own.
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
        Where tasks run (see the module docstring).
    backend, device
        What each task computes with: ``"numpy"`` (CPU) or ``"torch"`` on ``"cpu"``,
        ``"cuda"`` or ``"cuda:N"`` (see :mod:`featstore.evaluate.encoding.backend`). Results agree
        within ~1e-5 in r, so configs computed by either are reused by the other.
    progress
        Show a progress bar on stderr.

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
    settings = settings or EncodingSettings()
    get_backend(backend, device)  # a bad backend or a missing GPU fails before any work
    # the run stores (and hashes) the gap it uses: negative delays raise it
    notices = [settings.gap_notice] if settings.gap_notice else []
    settings = dataclasses.replace(settings, gap=settings.resolved_gap)
    location = inputs.store_location(store)
    configs = build_configs(
        location,
        models=models,
        fusions=fusions,
        windows=windows,
        layers=layers,
        method=settings.method,
    )
    notices += self_fusion_notices(configs)
    catalog = StoreCatalog(location)
    fmri = inputs.inspect_fmri(location)
    infos = {part.group: catalog.info(part.key, part.window) for c in configs for part in c.parts}
    for group, info in infos.items():
        if info.n_tr != fmri.n_tr:
            raise InputError(inputs.tr_mismatch_message(fmri.n_tr, group, info.n_tr))
    provenance = {group: inputs.feature_provenance(info.attrs) for group, info in infos.items()}
    settings_dict = settings.to_dict()
    hashes = tuple(
        config_hash(c, settings_dict, provenance, fmri.fingerprint, partition) for c in configs
    )
    layout = RunLayout(tuple(configs), hashes, fmri.n_subjects, fmri.n_roi)
    if run_id is None:
        run_id = find_resumable_run(location, layout)
        if run_id is None and (same := _identical_run(location, hashes)) is not None:
            logger.warning(
                "results/%s already holds this grid (the same configs, settings, features "
                "and fMRI); reusing it instead of adding a copy to the summary (pass "
                "run_id=NAME for another run)",
                same,
            )
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
        # an unreachable scheduler fails here, before anything is written
        client = stack.enter_context(connect(scheduler)) if scheduler else None
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
                workers=workers,
                threads_per_worker=threads_per_worker,
                client=client,
                progress=progress,
                array_backend=(backend, device),
                finish={
                    "notices": notices,
                    "provenance": provenance,
                    "fmri": fmri,
                    "infos": infos,
                    "request": {
                        "models": [list(m) for m in models],
                        "fusions": [[list(a), list(b)] for a, b in fusions],
                        "windows": list(windows),
                        "layers": (
                            layers if isinstance(layers, str) or layers is None else list(layers)
                        ),
                    },
                    "execution": {
                        "workers": workers,
                        "threads_per_worker": threads_per_worker,
                        "scheduler": scheduler,
                        "backend": backend,
                        "device": device or "cpu",
                    },
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
    workers: int,
    threads_per_worker: int | None,
    client: Any,
    progress: bool,
    array_backend: tuple[str, str | None],
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

        if jobs and (client is not None or workers > 1):
            _run_distributed(
                jobs,
                workers=workers,
                n_threads=threads_per_worker,
                client=client,
                run_id=run_id,
                on_result=on_result,
            )
        elif jobs:
            _run_threaded(jobs, threads_per_worker, on_result)
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


def run_warnings(
    per_config: Mapping[str, Sequence[str]],
    limit: int = MAX_RUN_WARNINGS,
    *,
    first: Collection[str] = (),
) -> list[str]:
    """The warnings of a run: each distinct message once, most frequent first.

    ``encode``'s warnings (constant ROIs, alphas at a grid edge) often repeat across
    configs; each is listed once with how many configs gave it, and past ``limit``
    distinct messages one line points to the per-config list. Messages in ``first``
    (why a config was excluded) come before all others.
    """
    seen: dict[str, list[str]] = {}
    for label, messages in per_config.items():
        for message in messages:
            seen.setdefault(message, []).append(label)
    ranked = sorted(seen.items(), key=lambda item: (item[0] not in first, -len(item[1])))
    lines = []
    for message, labels in ranked[:limit]:
        where = labels[0] if len(labels) == 1 else f"{len(labels)} configs, e.g. {labels[0]}"
        lines.append(f"{message} ({where})")
    if len(ranked) > limit:
        rest = {label for _, labels in ranked[limit:] for label in labels}
        lines.append(
            f"{len(ranked) - limit} more distinct warning(s) from {len(rest)} config(s); "
            "see the results attr config_warnings"
        )
    return lines
