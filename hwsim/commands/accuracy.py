"""``hwsim accuracy``: the accuracy pipeline (synthetic corpus, training, PTQ/QAT, WER/CER) and its
report. A thin layer over ``models.train.pipeline``, ``reports.accuracy`` and ``reports.ablation``; every stage skips
when its outputs are complete, so an interrupted run resumes."""

from __future__ import annotations

import argparse

STAGES = ("corpus", "train", "assemble", "quantize", "evaluate", "ablate", "report", "all")  # pipeline.STAGES + report


def register(subparsers) -> None:
    p = subparsers.add_parser("accuracy", help="train and evaluate the small model (FP32 / INT4, DR fusion)",
                              description=__doc__)
    p.add_argument("--stage", choices=STAGES, default="all",
                   help="one stage, or all of them followed by the report (default)")
    p.add_argument("--data", default="data", help="corpus, training states, evaluations (default data/)")
    p.add_argument("--checkpoints", default="checkpoints", help="checkpoint directory (default checkpoints/)")
    p.add_argument("--out", default="reports/accuracy", help="report directory (default reports/accuracy/)")
    p.set_defaults(func=run)


#: What the report reads, relative to --data, and the stage that writes it.
REPORT_INPUTS = (("eval/results.json", "evaluate"), ("corpus/corpus.json", "corpus"), ("eval/ablation.json", "ablate"))


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from models.train import pipeline
    from models.yamlio import UserError
    from reports import ablation
    from reports.accuracy import build

    from hwsim.outputs import atomic_dir, check_dir

    check_dir(args.out)
    if args.stage != "report":
        check_dir(args.data, "--data")
        check_dir(args.checkpoints, "--checkpoints")
        code = pipeline.main([args.stage, "--data", args.data, "--checkpoints", args.checkpoints])
        if code:
            return code
    if args.stage in ("report", "all"):
        for rel, stage in REPORT_INPUTS:
            if not (Path(args.data) / rel).is_file():
                raise UserError(f"--data {args.data}: no {rel}; run `hwsim accuracy --stage {stage}` "
                                "(or --stage all) first")
        with atomic_dir(args.out) as tmp:
            build(args.data, args.checkpoints, tmp)
            ablation.build(args.data, tmp, checkpoints=args.checkpoints)
    return 0
