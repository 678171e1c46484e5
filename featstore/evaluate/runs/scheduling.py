"""The task of one config and the schedulers that run a grid's tasks.

A task gets the store location, a :class:`~featstore.evaluate.runs.configs.Config` and the
settings — never arrays. It reads its feature layer(s) from the store (one chunk per
layer) and the bold once per worker process (:func:`featstore.evaluate.runs.inputs.load_bold`),
so peak memory is bounded by the tasks in flight, not by the size of the grid. Each
packed result is handed back to the calling process as it completes.

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from featstore.errors import InputError
from featstore.evaluate.encoding.backend import get_backend
from featstore.evaluate.encoding.pipeline import encode
from featstore.evaluate.encoding.result import EncodingResult
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.encoding.threads import blas_threads
from featstore.evaluate.runs import inputs
from featstore.evaluate.runs.configs import Config
from featstore.evaluate.runs.labels import parse_config
from featstore.evaluate.runs.writing import pack_result
from featstore.store.groups import StorePath

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
    """The task of one config: its packed result (see :func:`writing.pack_result`)."""
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

    tasks = {}
    for index, args in jobs:
        key = f"featstore-config-{index}"
        tasks[key] = (
            (index,),
            dask.delayed(_evaluate, pure=False)(*args, n_threads, dask_key_name=key),
        )
    compute_threaded(tasks, on_result)


def compute_threaded(tasks: Mapping[str, tuple[tuple, Any]], on_result: Callable) -> None:
    """Compute ``tasks`` on dask's threaded scheduler in this process, one at a time.

    ``tasks`` maps a task's key (its ``dask_key_name``) to ``(tag, delayed task)``;
    ``on_result(*tag, result)`` is called on the scheduler thread as each completes.
    Each task feeds a tiny task returning None, so dask drops a result as soon as it is
    staged instead of holding every result to the end.
    """
    import dask
    from dask.callbacks import Callback

    class _Stage(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            if key in tasks:
                on_result(*tasks[key][0], result)

    done = [
        dask.delayed(_discard)(task, dask_key_name=f"{key}-staged")
        for key, (_, task) in tasks.items()
    ]
    with _Stage():
        dask.compute(*done, scheduler="threads", num_workers=1)


def _discard(_: Any) -> None:
    return None


@dataclasses.dataclass(frozen=True)
class Execution:
    """Where a grid's tasks run and what they compute with: the ``workers``,
    ``threads_per_worker``, ``scheduler``, ``backend`` and ``device`` of
    :func:`~featstore.evaluate.runs.grid.run_grid`, which travel together."""

    workers: int = 1
    threads_per_worker: int | None = None
    scheduler: str | None = None
    backend: str = "numpy"
    device: str | None = None

    def record(self) -> dict[str, Any]:
        """The run's ``execution`` attr."""
        return {**dataclasses.asdict(self), "device": self.device or "cpu"}

    def check_backend(self) -> None:
        """A bad backend or a missing GPU fails here, before any work."""
        get_backend(self.backend, self.device)

    def connect(self, stack: contextlib.ExitStack) -> Any:
        """A client of ``scheduler``, closed with ``stack`` (None without a scheduler): an
        unreachable scheduler fails here, before anything is written."""
        return stack.enter_context(connect(self.scheduler)) if self.scheduler else None

    def threaded(self, client: Any) -> bool:
        """Whether tasks run on dask's threaded scheduler in this process."""
        return client is None and self.workers <= 1

    def open_cluster(self, client: Any) -> contextlib.AbstractContextManager[Cluster]:
        """``client``'s cluster, or a new local one (see :func:`open_cluster`)."""
        return open_cluster(client, self.workers, self.threads_per_worker)


def run_tasks(
    jobs: Sequence[tuple[int, tuple]],
    execution: Execution,
    *,
    client: Any,
    run_id: str,
    on_result: OnResult,
) -> None:
    """Run the config tasks ``jobs`` (``(index, task arguments)``), calling
    ``on_result(index, packed)`` as each completes (see the module docstring).

    A distributed cluster: ``client``'s, or a local one of ``execution.workers``
    processes; with neither (``workers <= 1``), dask's threaded scheduler in this process.
    """
    if execution.threaded(client):
        _run_threaded(jobs, execution.threads_per_worker, on_result)
        return
    with execution.open_cluster(client) as cluster:
        futures = {
            cluster.client.submit(
                _evaluate, *args, cluster.n_threads, key=f"featstore-{run_id}-{index}", pure=False
            ): (index,)
            for index, args in jobs
        }
        cluster.gather(futures, on_result)


@dataclasses.dataclass(frozen=True)
class Cluster:
    """A distributed ``client`` to submit tasks to, with the BLAS threads of each of its
    tasks (``n_threads``); ``own_cluster`` when the cluster is a local one of this process."""

    client: Any
    n_threads: int | None
    stack: contextlib.ExitStack
    own_cluster: bool

    def gather(
        self, futures: Mapping[Any, tuple], on_result: Callable, also_cancel: Sequence[Any] = ()
    ) -> None:
        """Call ``on_result(*tag, result)`` as each of ``futures`` (future: tag) completes.

        On an error (or Ctrl-C) every future and ``also_cancel`` are cancelled and the error
        is raised again, with the teardown of the cluster silenced (:func:`silence_teardown`).
        """
        from distributed import as_completed

        try:
            # this client's loop: it need not be the process's default client
            for future in as_completed(futures, loop=self.client.loop):
                on_result(*futures[future], future.result())
                future.release()
        except BaseException:
            # the error (or Ctrl-C) is what the user needs; the teardown of the cluster
            # that follows logs warnings and tracebacks of its closed connections
            silence_teardown(self.stack, self.client, self.own_cluster)
            self.client.cancel([*futures, *also_cancel])
            raise


@contextlib.contextmanager
def open_cluster(client: Any, workers: int, n_threads: int | None) -> Iterator[Cluster]:
    """``client``'s cluster, or (``client`` None) a new local one of ``workers`` processes
    (see :func:`open_local_cluster`), closed on exit."""
    with contextlib.ExitStack() as stack:
        own_cluster = client is None
        if own_cluster:
            client, n_threads = open_local_cluster(stack, workers, n_threads)
        yield Cluster(client, n_threads, stack, own_cluster)


def open_local_cluster(
    stack: contextlib.ExitStack, workers: int, n_threads: int | None
) -> tuple[Any, int]:
    """A ``Client`` of a new local cluster of ``workers`` processes, closed with ``stack``,
    and the BLAS threads of each worker (``n_threads``, default its share of the cores).

    Each worker runs one task at a time with that many BLAS threads, so cores are never
    oversubscribed; its processes never see SIGINT (see ``_sigint_blocked_for_children``).
    """
    import dask
    from distributed import Client, LocalCluster

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
    return stack.enter_context(Client(cluster)), n_threads


def silence_teardown(stack: contextlib.ExitStack, client: Any, own_cluster: bool) -> None:
    """Before a cluster is closed on an error: its shutdown chatter is not news."""
    stack.enter_context(_silenced("distributed"))
    if own_cluster:
        with contextlib.suppress(Exception):
            client.run(_silence_distributed_logs)


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
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def connect(scheduler: str) -> Iterator[Any]:
    """A distributed ``Client`` of the scheduler at ``scheduler``, dask's scheduler inside
    the block, closed after it.

    An address that does not parse or a scheduler that does not answer (within dask's
    ``distributed.comm.timeouts.connect``) is an :class:`InputError` naming the address.
    The client becomes dask's scheduler only once connected: a ``Client`` that fails to
    connect would otherwise stay the process's default, and every later computation in
    the process (a notebook's) would wait on it forever.
    """
    import dask
    from distributed import Client

    try:
        client = Client(scheduler, set_as_default=False)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"scheduler={scheduler!r}: cannot connect ({reason}); expected the address of "
            "a running dask scheduler, e.g. tcp://10.0.0.5:8786"
        ) from None
    with client, dask.config.set(scheduler=client):
        yield client
