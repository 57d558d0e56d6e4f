"""``hwsim trace``: decode one utterance under the tracer, print a per-phase summary, write the graph.

The output is ``OpGraph.save``'s Parquet file: one row per aten op (``op``, ``kind``, ``phase``,
``step``, ``macs``, ``bytes_read``, ``bytes_written``, ``weight``, shapes, ...) plus a ``deps``
column, with provenance (model, beam, fusion, method, frames, audio seconds, search statistics
summary) as JSON in the file's metadata, and what the decode produced and from what:
``transcript`` (the best hypothesis as text), ``weights`` (``checkpoint`` or ``random``: seeded
initialisation, no ``--checkpoint``), ``checkpoint``, ``features`` (``audio`` or ``random``:
``--frames``, seeded random features, not speech), ``seed``. The command prints the transcript,
and says so when the weights or the features are random.
"""

from __future__ import annotations

import argparse
import json
import logging

from hwsim.commands._args import add_input_args, add_search_args, input_features

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("trace", help="trace a real decode into an op graph (Parquet)",
                              description=__doc__)
    p.add_argument("--model", required=True, help="model preset or YAML path")
    p.add_argument("--checkpoint", help="System.save checkpoint with the weights (default: seeded init)")
    add_search_args(p)
    add_input_args(p)
    p.add_argument("--out", required=True, metavar="FILE.parquet", help="output Parquet file")
    p.set_defaults(func=run)


def format_summary(graph) -> str:
    """Per-phase table (ops, MACs, bytes) and the unknown ops of ``graph``, as text."""
    table = graph.phase_summary()
    lines = [f"{'phase':<11}{'ops':>10}{'macs':>16}{'bytes_read':>16}{'bytes_written':>16}{'unknown':>9}"]
    for phase, row in table.iterrows():
        lines.append(f"{phase:<11}{row['ops']:>10,}{row['macs']:>16,}{row['bytes_read']:>16,}"
                     f"{row['bytes_written']:>16,}{row['unknown_ops']:>9,}")
    t = graph.totals()
    lines.append(f"{'total':<11}{t['ops']:>10,}{t['macs']:>16,}{t['bytes_read']:>16,}"
                 f"{t['bytes_written']:>16,}{sum(graph.unknown_ops().values()):>9,}")
    unknown = graph.unknown_ops()
    lines.append("unknown ops: " + (", ".join(f"{k} x{v}" for k, v in sorted(unknown.items())) or "none"))
    return "\n".join(lines)


def input_provenance(args: argparse.Namespace, transcript: str) -> dict:
    """The graph metadata saying what was decoded and what came out (module docstring)."""
    return {"source": args.audio or f"random features, seed {args.seed}", "transcript": transcript,
            "weights": "checkpoint" if args.checkpoint else "random", "checkpoint": args.checkpoint,
            "features": "audio" if args.audio else "random", "seed": args.seed}


def random_notes(meta: dict) -> list[str]:
    """One sentence per random input of a traced decode (weights, features); none for a real one."""
    notes = []
    if meta.get("weights") == "random":
        notes.append(f"random weights (no --checkpoint; seed {meta.get('seed')}): the transcript "
                     "is not a recognition result")
    if meta.get("features") == "random":
        notes.append(f"random features ({meta.get('frames')} frames, seed {meta.get('seed')}), not speech")
    return notes


def run(args: argparse.Namespace) -> int:
    import models
    import workloads

    from hwsim.outputs import atomic_file, check_file

    check_file(args.out)
    system = models.build_system(args.model, seed=args.seed, checkpoint=args.checkpoint)
    config = system.config
    features = input_features(config, args)
    log.info("tracing %s: %d frames, beam %d, LM fusion %s, %s", config.name, features.shape[0],
             args.beam, args.lm_fusion, args.method)
    graph, decoded = workloads.trace(system, features, beam=args.beam, lm_fusion=args.lm_fusion,
                                     method=args.method)
    graph.meta.update(input_provenance(args, decoded.text))
    print(f"{config.name}: {graph.meta.get('frames')} frames ({graph.meta.get('audio_s', 0):.2f} s), "
          f"beam {args.beam}, LM fusion {args.lm_fusion}, {args.method}")
    print(format_summary(graph))
    print(f"transcript: {json.dumps(decoded.text, ensure_ascii=False)}")
    for note in random_notes(graph.meta):
        print(f"note: {note}")
    with atomic_file(args.out) as tmp:
        graph.save(tmp)
    log.info("wrote %s (%d ops)", args.out, len(graph))
    return 0
