"""``hwsim report``: the reference report (reports/paper/ by default)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hwsim.commands._args import audio_seconds


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="simulate the reference grid and write the paper report",
                       description=run.__doc__)
    p.add_argument("--out", default="reports/paper", metavar="DIR",
                   help="output folder (default: reports/paper)")
    p.add_argument("--sweep", default=None, metavar="DIR",
                   help="also add a design-space-exploration section from a finished `hwsim sweep` folder")
    p.add_argument("--hw", default=None, help="accelerator preset or YAML (default: rapid4)")
    p.add_argument("--audio-s", type=audio_seconds, default=None,
                   help="seconds of audio per utterance (default: 10)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Simulate every (model, precision, beam, fusion) point of the reference grid and write the
    Markdown report, its tables (CSV, JSON) and figures (PNG) into --out, and the same report as
    one self-contained HTML page (report.html: figures embedded, interactive Pareto plot)."""
    from dataclasses import replace

    from hwsim.outputs import atomic_dir, check_dir
    from hwsim.dse.store import check_sweep_dir
    from hwsim.spec import load_spec
    from reports.html import HTML_NAME
    from reports.paper import ReportGrid, build

    check_dir(args.out)
    if args.sweep is not None:
        check_sweep_dir(args.sweep, arg="--sweep")
    grid = ReportGrid()
    if args.hw:
        load_spec(args.hw)  # a bad name or file fails here, before the grid is simulated
        grid = replace(grid, hw=args.hw)
    if args.audio_s is not None:
        grid = replace(grid, audio_s=args.audio_s)
    with atomic_dir(args.out) as tmp:
        name = build(tmp, grid, sweep_dir=args.sweep).name
    print(f"wrote {Path(args.out) / name}")
    print(f"wrote {Path(args.out) / HTML_NAME}")
    return 0
