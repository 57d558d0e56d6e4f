"""``hwsim simulate``: build the paper-scale (or traced) graph, simulate it, print a summary."""

from __future__ import annotations

import argparse
import json
import logging

from hwsim.commands._args import add_search_args, audio_seconds, seed

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("simulate", help="simulate RNN-T decoding (+ LM fusion) on an accelerator",
                              description=__doc__)
    p.add_argument("--model", required=True, help="model preset or YAML path")
    p.add_argument("--hw", required=True, help="hardware preset or YAML path")
    p.add_argument("--precision", required=True, help="precision policy name or YAML path")
    add_search_args(p, methods=("alsd", "tsd"))
    p.add_argument("--audio-s", type=audio_seconds, default=10.0,
                   help="seconds of audio (default 10; at most hwsim.limits.MAX_AUDIO_S)")
    p.add_argument("--trace", action="store_true",
                   help="trace a real decode of random features instead of the analytic graph")
    p.add_argument("--seed", type=seed, default=0, help="seed of the random features for --trace")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", help="write the run folder (tables, summary, trace.json for Perfetto / "
                                 "chrome://tracing, gantt.png) to this directory")
    p.add_argument("--gantt-window", nargs=2, type=float, metavar=("START_S", "END_S"), default=None,
                   help="time window of gantt.png in seconds (default: the first 1%% of the run after "
                        "the search starts)")
    p.set_defaults(func=run)


def build_graph(args: argparse.Namespace, config):
    """The op graph to simulate: analytic (default) or traced (``--trace``), for ``--method``.

    Raises:
        UserError: ``--audio-s`` too short to give the model one encoder frame.
    """
    import math

    import workloads
    from workloads.stats import input_frames

    from hwsim.commands._args import check_frames

    frames = (max(1, math.ceil(args.audio_s / config.features.frame_shift_s)) if args.trace
              else input_frames(config, args.audio_s))
    check_frames(config, frames, f"--audio-s {args.audio_s:g}")
    if not args.trace:
        return workloads.paper_graph(config, args.audio_s, args.beam, args.lm_fusion, method=args.method)
    import models
    import models.features

    system = models.build_system(config)
    features = models.features.random_features(config, frames, args.seed)
    graph, _ = workloads.trace(system, features, beam=args.beam, lm_fusion=args.lm_fusion, method=args.method)
    return graph


def run(args: argparse.Namespace) -> int:
    from models.config import load_config
    from models.quant.policy import load_policy

    from hwsim.commands._output import atomic_dir, check_dir
    from hwsim.simulate import simulate
    from hwsim.spec import load_spec

    if args.out:
        check_dir(args.out)
    config = load_config(args.model)
    hw = load_spec(args.hw)
    policy = load_policy(args.precision)
    graph = build_graph(args, config)
    result = simulate(graph, hw, policy, args.audio_s, config=config)
    if args.out:
        with atomic_dir(args.out) as tmp:
            result.save(tmp, gantt_window=tuple(args.gantt_window) if args.gantt_window else None)
        log.info("wrote %s", args.out)
    s = result.summary
    record = {"model": config.name, "hw": hw.name, "precision": policy.name, "beam": args.beam,
              "lm_fusion": args.lm_fusion, "method": args.method, "trace": bool(args.trace),
              **{k: v for k, v in s.items() if k not in ("model", "hw", "precision")}}
    if args.json:
        print(json.dumps(record, default=float))
        return 0
    print(f"{config.name} on {hw.name} at {policy.name}: beam {args.beam}, LM fusion {args.lm_fusion}, "
          f"{args.audio_s:g} s audio")
    print(f"  latency_s        {s['latency_s']:.6g}")
    print(f"  rtf              {s['rtf']:.4g}")
    print(f"  macs             {s['macs']:,}")
    print(f"  ops              {s['ops']:,}")
    if s["compression_x"] is not None:
        print(f"  weight_bytes     {s['weight_bytes']:,} (fp32 {s['fp32_weight_bytes']:,}, "
              f"compression_x {s['compression_x']:.3f})")
    src = s["dram_bytes_by_source"]
    print(f"  dram_bytes       {s['dram_bytes']:,.0f} (" + ", ".join(
        f"{k.replace('weight_', '')} {v / 1e6:.1f} MB" for k, v in src.items()) + ")")
    if "energy_j" in s:
        parts = s["energy_breakdown_j"]
        print(f"  energy_j         {s['energy_j']:.4g} (" + ", ".join(
            f"{k} {v / s['energy_j']:.0%}" for k, v in parts.items() if v > 0) + ")")
    mem = result.memory
    if len(mem):
        w = mem[mem["kind"] == "weight"]
        print("  on chip per segment (weights used more than once; the rest streams at each use):")
        for label, seg in w.groupby("segment_label", sort=False):
            multi = seg[seg["uses"] > 1]
            onchip = float((multi["local_bytes"] + multi["shared_bytes"] + multi["remote_bytes"]).sum())
            print(f"    {label:<18} {onchip / 2**20:7.2f} of {multi['bytes'].sum() / 2**20:7.2f} MiB resident, "
                  f"{multi['streamed_bytes_per_use'].sum() / 2**20:6.2f} MiB streamed per use, "
                  f"{seg['prefetched_bytes'].sum() / 2**20:6.2f} MiB prefetched")
    if s["precision_fallbacks"]:
        print(f"  fallbacks        {s['precision_fallbacks']}")
    print("  phase        latency_s   share")
    for phase, lat in s["phases"].items():
        share = lat / s["latency_s"] if s["latency_s"] else 0.0
        print(f"  {phase:<12} {lat:10.4g}  {share:6.1%}")
    return 0
