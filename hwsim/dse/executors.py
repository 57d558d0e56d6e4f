"""Where chunks of design points run: in process, on local processes, or on a Dask cluster.

Every executor runs the same function, ``run_chunk(evaluate, chunk)``, and yields results as chunks
complete, in any order. ``evaluate(point) -> dict`` is the only thing that knows what a design
point costs; it must be picklable (a module-level function or a picklable object), since it is
sent to the workers. A point whose evaluation raises becomes a row with ``status=error``; an
executor-level failure (a killed worker) is yielded as an exception for that chunk, and the driver
leaves those points for the next run.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

log = logging.getLogger(__name__)

Evaluate = Callable[[dict], dict]
#: Modules the local fork server imports before forking workers.
FORKSERVER_PRELOAD = ("hwsim.dse.evaluate",)
#: One unit of work: (key, point, known error) triples, as ``PlannedPoint`` fields.
Chunk = Sequence[tuple[str, dict, str]]


def run_chunk(evaluate: Evaluate, chunk: Chunk) -> list[dict]:
    """Evaluate a chunk of points; one row per point, errors caught per point.

    Returns:
        Rows with ``key``, ``status`` (``ok``/``error``), the point's fields, the figures
        ``evaluate`` returned, ``error`` (message, '' if ok) and ``elapsed_s`` (wall time of the
        evaluation, in seconds).
    """
    rows = []
    for key, point, known_error in chunk:
        start = time.perf_counter()
        figures: dict = {}
        error = known_error
        if not error:
            try:
                figures = dict(evaluate(dict(point)))
            except Exception as exc:  # noqa: BLE001 - a failing point is data, the sweep goes on
                error = f"{type(exc).__name__}: {exc}"
                log.debug("point %s failed:\n%s", key[:12], traceback.format_exc())
        rows.append({"key": key, "status": "error" if error else "ok", **point, **figures,
                     "error": error, "elapsed_s": time.perf_counter() - start})
    return rows


class InlineExecutor:
    """Runs chunks one after the other in this process (``--workers 0``; debugging, benchmarks)."""

    name = "inline"

    def __enter__(self) -> InlineExecutor:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def map_unordered(self, evaluate: Evaluate, chunks: Sequence[Chunk]) -> Iterator[tuple[int, object]]:
        for i, chunk in enumerate(chunks):
            try:
                yield i, run_chunk(evaluate, chunk)
            except Exception as exc:  # noqa: BLE001
                yield i, exc


class LocalExecutor:
    """A pool of local worker processes (``forkserver`` on Linux, else ``spawn``).

    Args:
        workers: number of processes (default: CPU count).
        context: multiprocessing start method; ``fork`` is not offered (threads in the parent).
    """

    name = "local"

    def __init__(self, workers: int | None = None, context: str | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        if context is None:
            context = "forkserver" if sys.platform.startswith("linux") else "spawn"
        if context not in ("forkserver", "spawn"):
            raise ValueError(f"start method must be forkserver or spawn, got {context!r}")
        self.context = context
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalExecutor:
        ctx = multiprocessing.get_context(self.context)
        if self.context == "forkserver":
            # The fork server imports the simulator once; workers fork from it warm, and later
            # pools of this process start without paying the import again.
            ctx.set_forkserver_preload(list(FORKSERVER_PRELOAD))
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def map_unordered(self, evaluate: Evaluate, chunks: Sequence[Chunk]) -> Iterator[tuple[int, object]]:
        futures = {self._pool.submit(run_chunk, evaluate, list(c)): i for i, c in enumerate(chunks)}
        try:
            for fut in as_completed(futures):
                exc = fut.exception()
                yield futures[fut], (exc if exc is not None else fut.result())
        finally:
            for fut in futures:
                fut.cancel()


@contextlib.contextmanager
def _sigint_ignored_by_children() -> Iterator[None]:
    """Start processes that ignore SIGINT (Ctrl-C), then restore this process's handler.

    Ctrl-C at a terminal reaches every process of the foreground group: without this, each local
    Dask worker dies printing its own ``KeyboardInterrupt`` traceback. An ignored signal stays
    ignored across fork and exec (and Python keeps it ignored at start-up), so the workers leave
    Ctrl-C to the driver, which cancels the work and closes the cluster.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class DaskExecutor:
    """A ``dask.distributed`` cluster: the one at ``scheduler``, or a ``LocalCluster`` of
    ``workers`` single-threaded processes on 127.0.0.1 (no dashboard) started and stopped here.

    Args:
        scheduler: scheduler address (``tcp://host:8786``), or None for a local cluster.
        workers: workers of the local cluster (default: CPU count).
        local_directory: scratch directory of the local cluster's workers (kept inside the sweep's
            output directory, so that nothing is written elsewhere).
        processes: local cluster of processes (true) or of threads in this process.
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 local_directory: str | Path | None = None, processes: bool = True) -> None:
        self.scheduler = scheduler
        self.workers = workers or os.cpu_count() or 1
        self.local_directory = local_directory
        self.processes = processes
        self._cluster = None
        self._client = None

    def __enter__(self) -> DaskExecutor:
        from distributed import Client, LocalCluster

        if self.scheduler:
            self._client = Client(self.scheduler, set_as_default=False)
        else:
            with _sigint_ignored_by_children():
                self._cluster = LocalCluster(
                    n_workers=self.workers, threads_per_worker=1, processes=self.processes,
                    protocol="tcp://", host="127.0.0.1", dashboard_address="127.0.0.1:0",
                    local_directory=self.local_directory, silence_logs=logging.WARNING)
            self._client = Client(self._cluster, set_as_default=False)
        log.info("dask: %s", self._client)
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self._client is not None:
                self._client.close()
        finally:
            if self._cluster is not None:
                self._cluster.close()
            self._client = self._cluster = None

    def map_unordered(self, evaluate: Evaluate, chunks: Sequence[Chunk]) -> Iterator[tuple[int, object]]:
        from distributed import as_completed as dask_completed

        run_id = uuid.uuid4().hex[:8]
        futures = {}
        for i, c in enumerate(chunks):
            fut = self._client.submit(run_chunk, evaluate, list(c), key=f"hwsim-dse-{run_id}-{i}",
                                      pure=False, retries=0)
            futures[fut] = i
        try:
            for fut in dask_completed(list(futures), loop=self._client.loop):
                if fut.status == "finished":
                    yield futures[fut], fut.result()
                else:
                    yield futures[fut], fut.exception() or RuntimeError(f"chunk {fut.status}")
        finally:
            self._client.cancel(list(futures))


def make_executor(kind: str = "local", *, workers: int | None = None, scheduler: str | None = None,
                  scratch_dir: str | Path | None = None):
    """The executor named ``kind`` (``local`` or ``dask``); ``workers=0`` with ``local`` runs inline."""
    if kind == "local":
        if scheduler:
            raise ValueError("--scheduler needs --executor dask")
        return InlineExecutor() if workers == 0 else LocalExecutor(workers)
    if kind == "dask":
        return DaskExecutor(scheduler, workers, local_directory=scratch_dir)
    raise ValueError(f"unknown executor {kind!r}; expected local or dask")
