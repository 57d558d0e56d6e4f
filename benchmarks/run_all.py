"""Run every benchmark (``make bench``): each ``benchmarks/bench_*.py`` in its own process.

Benchmarks time things on this shared 2-core machine, so they report medians and ratios measured
side by side in one run; they assert nothing. A benchmark that fails is reported and the others
still run; the exit status is non-zero if any failed.

Results: into ``benchmarks/results/latest/`` (git-ignored), so that a run leaves the work tree
clean; with ``--save`` (``make bench-save``) into the committed ``benchmarks/results/``, which the
README and the report quote. ``--save-latest`` copies the last run's results there without
running anything. Each script gets the folder as ``$HWSIM_BENCH_RESULTS`` (read by
``_timing.results_path``) and, when it takes ``--out``, its file as ``--out``. A script that
writes into the committed folder when not asked to save counts as failed.

    python benchmarks/run_all.py [--save | --save-latest] [NAME ...]   # NAME: kernels, dse, ...
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _timing import LATEST_DIR, RESULTS_ENV, SAVED_DIR  # noqa: E402


def takes_out(script: Path) -> bool:
    """Whether the script has an ``--out`` option (read from its source: no import, no run)."""
    return re.search(r"""add_argument\(\s*["']--out["']""", script.read_text()) is not None


def _saved_mtimes() -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in SAVED_DIR.glob("*.json")}


def run(script: Path, dest: Path, save: bool) -> int:
    cmd = [sys.executable, str(script)]
    if takes_out(script):
        cmd += ["--out", str(dest / f"{script.stem.removeprefix('bench_')}.json")]
    env = {**os.environ, RESULTS_ENV: str(dest)}
    before = _saved_mtimes()
    rc = subprocess.call(cmd, cwd=HERE.parent, env=env)
    written = sorted(p.name for p, t in _saved_mtimes().items() if before.get(p) != t)
    if written and not save:
        print(f"{script.name} wrote {', '.join(written)} into {SAVED_DIR.relative_to(HERE.parent)}/ "
              "without --save: it should write to _timing.results_path(name)", file=sys.stderr)
        return rc or 1
    return rc


def save_latest() -> int:
    files = sorted(LATEST_DIR.glob("*.json"))
    if not files:
        print(f"no results in {LATEST_DIR}: run `make bench` first", file=sys.stderr)
        return 2
    for p in files:
        shutil.copyfile(p, SAVED_DIR / p.name)
        print(f"saved {SAVED_DIR.relative_to(HERE.parent) / p.name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="benchmarks to run (bench_NAME.py); default: all")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--save", action="store_true",
                      help=f"write the committed results ({SAVED_DIR.relative_to(HERE.parent)}/) "
                           f"instead of {LATEST_DIR.relative_to(HERE.parent)}/")
    mode.add_argument("--save-latest", action="store_true",
                      help="copy the last run's results into the committed folder; run nothing")
    args = ap.parse_args(argv)
    if args.save_latest:
        return save_latest()
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.names:
        known = {s.stem.removeprefix("bench_") for s in scripts}
        unknown = sorted(set(args.names) - known)
        if unknown:
            print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}", file=sys.stderr)
            return 2
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.names]
    dest = SAVED_DIR if args.save else LATEST_DIR
    dest.mkdir(parents=True, exist_ok=True)
    failed = []
    for script in scripts:
        print(f"\n=== {script.name}", flush=True)
        t0 = time.perf_counter()
        rc = run(script, dest, args.save)
        print(f"=== {script.name}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(script.name)
    print(f"\nresults in {dest.relative_to(HERE.parent)}/"
          + ("" if args.save else " (not committed; `make bench-save` runs and saves, "
                                  "`python benchmarks/run_all.py --save-latest` keeps this run's)"))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
