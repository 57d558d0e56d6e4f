"""``hwsim report``: the reference report (reports/paper/ by default)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="simulate the reference grid and write the paper report",
                       description=run.__doc__)
    p.add_argument("--out", default="reports/paper", help="output folder (default: reports/paper)")
    p.add_argument("--sweep", default=None, metavar="DIR",
                   help="also add a design-space-exploration section from a finished `hwsim sweep` folder")
    p.add_argument("--hw", default=None, help="accelerator preset or YAML (default: rapid4)")
    p.add_argument("--audio-s", type=float, default=None, help="seconds of audio per utterance (default: 10)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Simulate every (model, precision, beam, fusion) point of the reference grid and write the
    Markdown report, its tables (CSV, JSON) and figures (PNG) into --out."""
    from dataclasses import replace

    from reports.paper import ReportGrid, build

    grid = ReportGrid()
    if args.hw:
        grid = replace(grid, hw=args.hw)
    if args.audio_s is not None:
        if args.audio_s <= 0:
            raise ValueError(f"--audio-s must be > 0, got {args.audio_s}")
        grid = replace(grid, audio_s=args.audio_s)
    path = build(args.out, grid, sweep_dir=args.sweep)
    print(f"wrote {path}")
    return 0
