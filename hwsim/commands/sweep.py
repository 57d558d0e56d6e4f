"""``hwsim sweep SWEEP.yaml --out DIR``: run or resume a design-space sweep (``hwsim.dse``)."""

from __future__ import annotations

import argparse
import logging

from hwsim.commands._args import count, positive_int

log = logging.getLogger("hwsim.sweep")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="run or resume a design-space sweep",
        description="Run the design points of SWEEP.yaml and write one row per point as Parquet "
                    "parts under --out. Re-running the same command resumes: finished points "
                    "are skipped. Exit status 1 when some points failed (status=error), 2 on bad "
                    "input (nothing is written), 130 when interrupted.")
    p.add_argument("sweep", metavar="SWEEP.yaml", help="sweep definition")
    p.add_argument("--out", required=True, metavar="DIR", help="results directory")
    p.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="local processes (default) or a Dask cluster")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address (default: start a LocalCluster on 127.0.0.1)")
    p.add_argument("--workers", type=count, metavar="N",
                   help="worker processes (default: CPU count; 0 = run in this process)")
    p.add_argument("--chunk", type=positive_int, metavar="N",
                   help="design points per chunk (default: ~4 chunks per worker, at most 16)")
    p.add_argument("--force", action="store_true",
                   help="write into DIR even if it holds a different sweep definition")
    p.add_argument("--retry-errors", action="store_true", help="evaluate failed points again")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hwsim.outputs import check_dir
    from hwsim.dse import SweepIncomplete, run_sweep
    from models.yamlio import UserError

    if args.scheduler and args.executor != "dask":
        raise UserError("--scheduler needs --executor dask")
    check_dir(args.out)
    if not getattr(args, "verbose", False):
        logging.getLogger("distributed").setLevel(logging.WARNING)  # cluster chatter at INFO
    try:
        s = run_sweep(args.sweep, args.out, executor=args.executor, scheduler=args.scheduler,
                      workers=args.workers, chunk=args.chunk, force=args.force,
                      retry_errors=args.retry_errors, progress=not args.no_progress)
    except SweepIncomplete as exc:
        log.error("%s", exc)
        return 1
    except (OSError, TimeoutError) as exc:
        if args.executor != "dask":
            raise
        log.error("Dask cluster failed (%s: %s); finished points are kept in %s", type(exc).__name__,
                  exc, args.out)
        return 1
    except KeyboardInterrupt:
        log.warning("interrupted; finished points are kept in %s, run the same command to resume",
                    args.out)
        return 130
    log.info("%s: %d points (%d skipped as done, %d run, %d errors, %d filtered) in %.1f s "
             "(%.1f points/s)", s.out_dir, s.planned, s.skipped, s.done, s.errors, s.filtered,
             s.elapsed_s, s.points_per_s)
    if s.failed:
        log.error("%d of %d points failed (status=error; see the error column of `hwsim.dse.load(%r)`); "
                  "fix the cause and re-run with --retry-errors", s.failed, s.planned, str(s.out_dir))
        return 1
    return 0
