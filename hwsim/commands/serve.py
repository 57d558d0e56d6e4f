"""``hwsim serve``: S live streams share one chip (``hwsim.serve``): the per-stream delay
distribution, or (``--max-streams``) the largest number of streams whose worst p95 chunk delay
meets ``--p95-ms`` while every stream keeps up.

Every stream decodes ``--audio-s`` seconds (default 60) of the same kind of utterance
(parametric search statistics), in chunks of ``--chunk-ms`` (default one encoder output frame);
streams start at staggered times within a chunk period. The chip batches the ready streams'
chunks, up to ``--max-batch``, waiting at most ``--max-wait-ms`` for a fuller batch; a batch's
time comes from the op-level simulator (weights read once per batch).
"""

from __future__ import annotations

import argparse
import json
import logging

from hwsim.commands._args import add_search_args, audio_seconds, positive_float, positive_int

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="how many live streams one chip serves at a latency target",
                              description=__doc__)
    p.add_argument("--model", required=True, help="model preset or YAML path (unidirectional encoder)")
    p.add_argument("--hw", required=True, help="hardware preset or YAML path")
    p.add_argument("--precision", required=True, help="precision policy name or YAML path")
    add_search_args(p, methods=("alsd", "tsd", "greedy"))
    p.add_argument("--audio-s", type=audio_seconds, default=60.0, help="seconds of audio per stream (default 60)")
    p.add_argument("--chunk-ms", type=positive_float, default=None,
                   help="chunk length, a whole number of encoder output frames (default one)")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--streams", type=positive_int, help="simulate this many streams")
    mode.add_argument("--max-streams", action="store_true",
                      help="find the most streams meeting --p95-ms (doubling, then bisection)")
    p.add_argument("--p95-ms", type=positive_float, help="target of the worst stream's p95 chunk delay (ms)")
    p.add_argument("--limit", type=positive_int, default=64, help="largest number of streams tried (default 64)")
    p.add_argument("--max-batch", type=positive_int, default=16, help="most streams per batch (default 16)")
    p.add_argument("--max-wait-ms", type=_nonneg_float, default=0.0,
                   help="longest wait for a fuller batch (ms, default 0: take what is ready)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", help="write summary.json and streams.csv (one row per stream) to this directory")
    p.set_defaults(func=run)


def _nonneg_float(text: str) -> float:
    from hwsim.commands._args import _number

    return _number(text, float, 0.0, strict=False)


def run(args: argparse.Namespace) -> int:
    from models.yamlio import UserError

    from hwsim import serve
    from hwsim.outputs import atomic_dir, check_dir

    if args.max_streams and args.p95_ms is None:
        raise UserError("--max-streams needs --p95-ms (the latency target)")
    if args.streams is not None and args.p95_ms is not None:
        log.info("--p95-ms %g: reported as met or not for --streams %d", args.p95_ms, args.streams)
    if args.out:
        check_dir(args.out)
    n = args.streams if args.streams is not None else args.limit
    batching = serve.BatchPolicy(max_batch=min(args.max_batch, n), max_wait_s=args.max_wait_ms / 1000.0)
    work = serve.workload(args.model, args.hw, args.precision, args.audio_s, args.beam if args.method != "greedy"
                          else 1, args.lm_fusion, method=args.method, chunk_ms=args.chunk_ms,
                          max_batch=batching.max_batch)
    target = args.p95_ms / 1000.0 if args.p95_ms is not None else None
    if args.max_streams:
        best, tried = serve.max_streams(work, target, batching, limit=args.limit)
        result = tried[best] if best else tried[1]
        record = {**result.summary, "max_streams": best, "p95_target_s": target, "limit": args.limit,
                  "at_limit": best == args.limit,
                  "tried": {str(s): {"p95_s": r.summary["p95_s"], "keeps_up": r.summary["keeps_up"],
                                     "meets": serve.meets(r, target)} for s, r in sorted(tried.items())}}
    else:
        result = serve.serve(work, args.streams, batching)
        record = dict(result.summary)
        if target is not None:
            record.update(p95_target_s=target, meets=serve.meets(result, target))
    if args.out:
        with atomic_dir(args.out) as tmp:
            (tmp / "summary.json").write_text(json.dumps(record, indent=2, default=float))
            result.streams.to_csv(tmp / "streams.csv", index=False)
        log.info("wrote %s", args.out)
    if args.json:
        print(json.dumps(record, default=float))
        return 0
    s = record
    print(f"{s['model']} on {s['hw']} at {s['precision']}: beam {s['beam']}, LM fusion {s['lm_fusion']}, "
          f"{s['audio_s']:g} s per stream in {s['chunk_s'] * 1000:g} ms chunks; batches of up to "
          f"{s['max_batch']}, wait {s['max_wait_s'] * 1000:g} ms")
    if args.max_streams:
        lim = " (the --limit: try a larger one)" if s["at_limit"] else ""
        print(f"  max_streams      {s['max_streams']} with worst p95 delay <= {target * 1000:g} ms and "
              f"every stream keeping up{lim}")
        print("  tried            " + ", ".join(
            f"{k}: p95 {v['p95_s'] * 1000:.3g} ms{'' if v['keeps_up'] else ' (falls behind)'}"
            for k, v in s["tried"].items()))
        if not s["max_streams"]:
            print("  (even one stream misses the target; the line below is for 1 stream)")
    print(f"  streams          {s['streams']}: p95 delay worst {s['p95_s'] * 1000:.4g} ms, median "
          f"{s['p95_median_s'] * 1000:.4g} ms; max {s['delay_max_s'] * 1000:.4g} ms; final latency "
          f"<= {s['final_latency_max_s'] * 1000:.4g} ms; keeps up: {'yes' if s['keeps_up'] else 'no'}")
    print(f"  chip             busy {s['busy']:.1%}, {s['batches']:,} batches of {s['mean_batch']:.2f} "
          f"streams on average")
    sv = s["service_s"]
    print("  service_s        " + ", ".join(f"{k} {v * 1000:.4g} ms" for k, v in sv.items()))
    if "meets" in s:
        print(f"  target           p95 <= {target * 1000:g} ms: {'met' if s['meets'] else 'missed'}")
    return 0
