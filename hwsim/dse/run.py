"""Running a sweep: plan, skip finished points, chunk by graph, execute, write parts as they come.

The driver (this process) is the only writer: each finished chunk becomes one Parquet part under
``DIR/parts/``, written atomically, so an interruption at any moment (Ctrl-C, a killed worker, a
killed driver) keeps every finished point, and running the same sweep again does only the rest.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hwsim.dse import store
from hwsim.dse.executors import Evaluate, make_executor
from hwsim.dse.loading import load_sweep
from hwsim.dse.sweep import PlannedPoint, Sweep
from models.yamlio import ConfigError

log = logging.getLogger(__name__)

#: Largest default chunk: bounds the work lost when a worker dies mid-chunk (a paper-scale
#: point costs ~5 ms: 128 of them are well under a second), and the driver's writes per point.
MAX_AUTO_CHUNK = 128


class SweepIncomplete(RuntimeError):
    """Some chunks failed outside the evaluation (a killed worker); re-running resumes them."""

    def __init__(self, message: str, summary: SweepSummary) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass(frozen=True)
class SweepSummary:
    """What a ``run_sweep`` call did.

    Attributes:
        out_dir: the results directory.
        planned: design points after sampling and constraints.
        filtered: combinations removed by constraints.
        skipped: points already finished in ``out_dir`` (resumed).
        done: points evaluated now (ok + error).
        errors: of those, points recorded with ``status=error``.
        missing: points not finished because their chunk failed (re-run to do them).
        elapsed_s: wall time of the call, in seconds.
        failed: points of the plan recorded in ``out_dir`` with ``status=error`` after the call
            (this call's errors and those of earlier runs that were not retried).
    """

    out_dir: Path
    planned: int
    filtered: int
    skipped: int
    done: int
    errors: int
    missing: int
    elapsed_s: float
    failed: int = 0

    @property
    def points_per_s(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0


def make_chunks(points: list[PlannedPoint], chunk: int) -> list[list[PlannedPoint]]:
    """Split points into chunks of at most ``chunk`` points that share one graph key each.

    Groups keep the plan's order of first appearance, so workers move through the graphs one by
    one and each worker's graph cache stays small.
    """
    groups: dict[tuple, list[PlannedPoint]] = {}
    for p in points:
        groups.setdefault(p.graph_key, []).append(p)
    out = []
    for group in groups.values():
        out.extend(group[i:i + chunk] for i in range(0, len(group), chunk))
    return out


def auto_chunk(n_points: int, workers: int) -> int:
    """About four chunks per worker, at most ``MAX_AUTO_CHUNK`` points each."""
    return max(1, min(MAX_AUTO_CHUNK, math.ceil(n_points / (4 * max(1, workers)))))


def run_sweep(
    sweep: Sweep | str | Path,
    out_dir: str | Path,
    *,
    evaluate: Evaluate | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    workers: int | None = None,
    chunk: int | None = None,
    force: bool = False,
    retry_errors: bool = False,
    progress: bool = True,
    on_chunk: Callable[[int], None] | None = None,
) -> SweepSummary:
    """Run (or resume) a sweep, writing results under ``out_dir``.

    Args:
        sweep: a loaded ``Sweep`` or the path of its YAML file.
        out_dir: results directory (created; nothing is written outside it).
        evaluate: ``evaluate(point) -> dict`` of figures; default ``hwsim.dse.evaluate.evaluate_point``
            (the simulator). Must be picklable.
        executor: ``local`` (processes on this machine) or ``dask``.
        scheduler: Dask scheduler address; None starts a ``LocalCluster`` on 127.0.0.1.
        workers: worker processes (default: CPU count); ``0`` with ``local`` runs in this process.
        chunk: points per chunk (default: about four chunks per worker, at most ``MAX_AUTO_CHUNK``).
        force: add to a directory that holds a different sweep definition.
        retry_errors: evaluate again the points recorded with ``status=error``.
        progress: show a tqdm progress bar.
        on_chunk: called with the number of chunks written so far after each one (test hook: a
            callback that raises interrupts the sweep like Ctrl-C).

    Returns:
        A ``SweepSummary``.

    Everything the user gave is checked before ``out_dir`` is touched: the definition, then every
    point of the plan (constraints evaluated on each, so a constraint that fails on some point is
    an error before anything is written). ``out_dir`` is then locked for the run: a second sweep
    into the same folder is refused while this one runs.

    Raises:
        ConfigError: invalid sweep, a constraint that fails on a point, ``out_dir`` unusable, held
            by a running sweep, or holding a different sweep (without ``force``).
        SweepIncomplete: some chunks failed outside evaluation; their points were not recorded.
    """
    start = time.perf_counter()
    if executor not in ("local", "dask"):
        raise ConfigError(f"unknown executor {executor!r}; expected local or dask")
    if scheduler and executor != "dask":
        raise ConfigError("a scheduler address needs executor='dask'")
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep)
    if evaluate is None:
        from hwsim.dse.evaluate import evaluate_point as evaluate
    plan = sweep.plan()
    created = not Path(out_dir).exists()
    out = store.create_dir(out_dir)
    with store.lock(out):
        try:
            summary = _run_plan(sweep, plan, out, evaluate, executor, scheduler, workers, chunk, force,
                                retry_errors, progress, on_chunk, start)
        except BaseException:
            if created and not store.part_paths(out):  # nothing finished: leave no folder behind
                shutil.rmtree(out, ignore_errors=True)  # (under the lock: no other run is in it)
            raise
    if summary.missing:
        raise SweepIncomplete(f"{summary.missing} points not finished (a chunk failed outside "
                              "evaluation); run the same command again to do them", summary)
    return summary


def _run_plan(sweep: Sweep, plan, out: Path, evaluate, executor, scheduler, workers, chunk, force,
              retry_errors, progress, on_chunk, start) -> SweepSummary:
    store.prepare(out, sweep, force=force)
    finished = store.finished_keys(out, retry_errors=retry_errors)
    todo = [p for p in plan.points if p.key not in finished]
    skipped = len(plan.points) - len(todo)
    n_workers = 1 if workers == 0 else (workers or os.cpu_count() or 1)
    chunks = make_chunks(todo, chunk or auto_chunk(len(todo), n_workers))
    log.info("%s: %d points (%d filtered by constraints), %d already done, %d to run in %d chunks "
             "on %s", sweep.source, len(plan.points), plan.filtered, skipped, len(todo), len(chunks),
             executor if workers != 0 else "this process")
    done = errors = missing = written = 0
    if chunks:
        scratch = out / ".dask-scratch" if executor == "dask" and not scheduler else None
        bar = _progress(len(todo), progress)
        try:
            with make_executor(executor, workers=workers, scheduler=scheduler, scratch_dir=scratch) as ex:
                payload = [[(p.key, p.point, p.error) for p in c] for c in chunks]
                for i, result in ex.map_unordered(evaluate, payload):
                    if isinstance(result, BaseException):
                        missing += len(chunks[i])
                        log.error("chunk of %d points failed (%s: %s); its points stay to do",
                                  len(chunks[i]), type(result).__name__, result)
                        continue
                    store.write_part(out, result)
                    written += 1
                    done += len(result)
                    errors += sum(r["status"] != "ok" for r in result)
                    bar.update(len(result))
                    bar.set_postfix(errors=errors, refresh=False)
                    if on_chunk is not None:
                        on_chunk(written)
        finally:
            bar.close()
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
    failed = len(store.error_keys(out) & {p.key for p in plan.points})
    summary = SweepSummary(out, len(plan.points), plan.filtered, skipped, done, errors, missing,
                           time.perf_counter() - start, failed)
    if errors:
        log.warning("%d of %d points failed (status=error); see the error column", errors, done)
    return summary


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="pt", desc="sweep", disable=not enabled, dynamic_ncols=True)
