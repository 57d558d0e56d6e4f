"""``hwsim simulate``: build the paper-scale (or traced) graph, or load one (``--graph``), simulate
it, print a summary and where the time and energy go (``hwsim.breakdown``).

With ``--graph G.parquet`` (written by ``hwsim trace``) the graph's own metadata gives the model
(or ``--model``), the audio seconds, beam, LM fusion and search method; an option that
contradicts the graph is an error. The result equals ``hwsim.simulate(OpGraph.load(G), HW,
PRECISION, audio_s=meta["audio_s"])``.

With ``--streaming`` the audio arrives in real time in chunks of ``--chunk-ms`` (default: one
encoder output frame, 40 ms for ``swb300-stream``) and each chunk's work is released when its
audio is there (``workloads.streaming``, ``hwsim.streaming``): the output adds per-chunk delay
statistics, the final-result latency after the end of speech and whether the decoder keeps up;
``--out`` adds ``chunks.csv``. With ``--graph`` or ``--trace`` the stream replays the traced
decode's own per-step search statistics. A bidirectional encoder is rejected.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

from hwsim.commands._args import add_search_args, audio_seconds, positive_float, seed

log = logging.getLogger(__name__)

#: Defaults of the options a graph's metadata may also give (None in the parser: "not given").
DEFAULTS = {"beam": 4, "lm_fusion": "none", "method": "alsd", "audio_s": 10.0}


def register(subparsers) -> None:
    p = subparsers.add_parser("simulate", help="simulate RNN-T decoding (+ LM fusion) on an accelerator",
                              description=__doc__)
    p.add_argument("--model", help="model preset or YAML path (required unless --graph gives it)")
    p.add_argument("--hw", required=True, help="hardware preset or YAML path")
    p.add_argument("--precision", required=True, help="precision policy name or YAML path")
    add_search_args(p, methods=("alsd", "tsd"))
    p.add_argument("--audio-s", type=audio_seconds,
                   help="seconds of audio (default 10, or the graph's; at most hwsim.limits.MAX_AUDIO_S)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--trace", action="store_true",
                     help="trace a real decode of random features instead of the analytic graph")
    src.add_argument("--graph", metavar="G.parquet",
                     help="cost this graph (hwsim trace --out) instead of building one")
    p.add_argument("--seed", type=seed, default=0, help="seed of the random features for --trace")
    p.add_argument("--streaming", action="store_true",
                   help="audio arrives in real time, chunk by chunk (unidirectional models)")
    p.add_argument("--chunk-ms", type=positive_float, default=None,
                   help="chunk length for --streaming, a multiple of the 10 ms frame shift "
                        "(default: one encoder output frame)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", help="write the run folder (tables, summary, breakdown, roofline, provenance, "
                                 "trace.json for Perfetto / chrome://tracing, gantt.png) to this directory")
    p.add_argument("--gantt-window", nargs=2, type=float, metavar=("START_S", "END_S"), default=None,
                   help="time window of gantt.png in seconds (default: the first 1%% of the run after "
                        "the search starts)")
    # "not given" must be told from the default: a graph's metadata fills what was not given
    p.set_defaults(func=run, beam=None, lm_fusion=None, method=None, audio_s=None)


def build_graph(args: argparse.Namespace, config):
    """The op graph to simulate: analytic (default) or traced (``--trace``), for ``--method``.

    Raises:
        UserError: ``--audio-s`` too short to give the model one encoder frame.
    """
    import workloads
    from workloads.stats import input_frames

    from hwsim.commands._args import check_frames

    frames = (max(1, math.ceil(args.audio_s / config.features.frame_shift_s)) if args.trace
              else input_frames(config, args.audio_s))
    check_frames(config, frames, f"--audio-s {args.audio_s:g}")
    if not args.trace:
        if args.streaming:
            from workloads.streaming import paper_streaming_graph
            return paper_streaming_graph(config, args.audio_s, args.beam, args.lm_fusion, method=args.method,
                                         chunk_ms=args.chunk_ms)
        return workloads.paper_graph(config, args.audio_s, args.beam, args.lm_fusion, method=args.method)
    import models
    import models.features

    system = models.build_system(config)
    features = models.features.random_features(config, frames, args.seed)
    graph, _ = workloads.trace(system, features, beam=args.beam, lm_fusion=args.lm_fusion, method=args.method)
    return stream_of(graph, config, args.chunk_ms, "--trace") if args.streaming else graph


def stream_of(graph, config, chunk_ms: float | None, where: str):
    """The streaming graph of a traced decode: its per-step search statistics replayed chunk by
    chunk (``workloads.streaming``)."""
    from hwsim.streaming import stats_of_graph
    from workloads.streaming import chunk_frames_of, streaming_graph

    chunk = chunk_frames_of(config, chunk_ms)
    limits = {}
    if graph.meta.get("max_symbols_per_frame") is not None:
        m = int(graph.meta["max_symbols_per_frame"])
        limits = {"tsd_max_symbols_per_frame": m, "greedy_max_symbols_per_frame": m}
    stream = streaming_graph(config, stats_of_graph(graph.meta, where), int(graph.meta["frames"]), chunk, **limits)
    stream.meta["source"] = f"streamed from the search statistics of {where}"
    return stream


def load_graph(path: str):
    """``OpGraph.load(path)``, with a one-line ``UserError`` naming the file when it is not one."""
    import pyarrow as pa

    from models.yamlio import UserError
    from workloads.graph import OpGraph

    p = Path(path)
    if not p.is_file():
        raise UserError(f"--graph {path}: " + ("is a directory" if p.is_dir() else "no such file")
                        + "; expected a graph written by hwsim trace --out")
    try:
        return OpGraph.load(p)
    except (OSError, ValueError, KeyError, TypeError, pa.lib.ArrowException) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise UserError(f"--graph {path}: not an op graph written by hwsim trace "
                        f"({type(exc).__name__}: {reason})") from None


def resolve_graph_args(args: argparse.Namespace, meta: dict) -> None:
    """Fill ``args`` (beam, lm_fusion, method, audio_s, model) from a loaded graph's ``meta``.

    Raises:
        UserError: an option contradicts the graph; the graph names no model (and no
            ``--model``) or no audio length (and no ``--audio-s``), or an impossible one.
    """
    from models.yamlio import UserError

    where = f"--graph {args.graph}"
    for name in ("beam", "lm_fusion", "method"):
        given, known = getattr(args, name), meta.get(name)
        if given is not None and known is not None and given != known:
            raise UserError(f"--{name.replace('_', '-')} {given}: {where} was made with {name} {known}; "
                            f"drop the option or give the graph's value")
        setattr(args, name, given if given is not None else known)
    audio = meta.get("audio_s")
    if audio is not None:
        if not (isinstance(audio, (int, float)) and math.isfinite(audio) and audio > 0):
            raise UserError(f"{where}: metadata audio_s {audio!r} is not a positive number of seconds")
        if args.audio_s is not None and not math.isclose(args.audio_s, audio, rel_tol=1e-9):
            raise UserError(f"--audio-s {args.audio_s:g}: {where} holds {audio:g} s of audio; drop the option")
        args.audio_s = float(audio)
    elif args.audio_s is None:
        raise UserError(f"{where}: its metadata has no audio_s; give --audio-s")
    if args.model is None:
        if not meta.get("model"):
            raise UserError(f"{where}: its metadata names no model; give --model")
        args.model = meta["model"]


def provenance(args: argparse.Namespace) -> dict:
    """What ``SimResult.save`` records of this command: ``argv`` (``sys.argv`` when this process
    is the command line, i.e. the sub-command is one of its words; null when called from Python),
    ``args`` (the parsed options, defaults and the graph's values filled in), ``version`` and
    ``git_commit`` (``hwsim.provenance``, as ``hwsim --version``)."""
    import sys

    from hwsim import provenance as prov

    argv = list(sys.argv) if getattr(args, "command", "simulate") in sys.argv[1:] else None
    return {"argv": argv, "args": {k: v for k, v in vars(args).items() if k != "func"},
            "version": prov.version_string(), "git_commit": prov.git_commit(prov.PROJECT_ROOT)}


def run(args: argparse.Namespace) -> int:
    from models.config import load_config
    from models.quant.policy import load_policy
    from models.yamlio import UserError

    from hwsim.breakdown import breakdown
    from hwsim.limits import MAX_RUN_FOLDER_OPS
    from hwsim.outputs import atomic_dir, check_dir
    from hwsim.cost import CostError
    from hwsim.simulate import simulate
    from hwsim.spec import load_spec

    if args.out:
        check_dir(args.out)
    if args.chunk_ms is not None and not args.streaming:
        raise UserError("--chunk-ms needs --streaming")
    graph = None
    if args.graph:
        graph = load_graph(args.graph)
        resolve_graph_args(args, graph.meta)
    else:
        if args.model is None:
            raise UserError("--model is required (unless --graph names the model)")
        for name, value in DEFAULTS.items():
            if getattr(args, name) is None:
                setattr(args, name, value)
    config = load_config(args.model)
    if graph is not None and graph.meta.get("model") not in (None, config.name):
        raise UserError(f"--model {args.model}: {args.graph} was made from model {graph.meta['model']!r}, "
                        f"not {config.name!r}")
    hw = load_spec(args.hw)
    policy = load_policy(args.precision)
    if graph is None:
        graph = build_graph(args, config)
        result = simulate(graph, hw, policy, args.audio_s, config=config)
    else:
        if args.streaming:
            graph = stream_of(graph, config, args.chunk_ms, f"--graph {args.graph}")
        try:
            result = simulate(graph, hw, policy, args.audio_s, config=config)
        except CostError as exc:  # e.g. a traced op the cost model has no function for
            raise CostError(f"--graph {args.graph}: cannot be costed on {hw.name} at {policy.name}: {exc}") from None
    if args.out:
        with atomic_dir(args.out) as tmp:
            result.save(tmp, gantt_window=tuple(args.gantt_window) if args.gantt_window else None,
                        provenance=provenance(args))
        log.info("wrote %s", args.out)
    s = result.summary
    record = {"model": config.name, "hw": hw.name, "precision": policy.name, "beam": args.beam,
              "lm_fusion": args.lm_fusion, "method": args.method, "trace": bool(args.trace),
              **({"graph": args.graph} if args.graph else {}),
              **{k: v for k, v in s.items() if k not in ("model", "hw", "precision")}}
    if args.json:
        print(json.dumps(record, default=float))
        return 0
    print(f"{config.name} on {hw.name} at {policy.name}: beam {args.beam}, LM fusion {args.lm_fusion}, "
          f"{args.audio_s:g} s audio" + (f" (graph {args.graph})" if args.graph else ""))
    if "streaming" in s:
        st = s["streaming"]
        d = st["delay_s"]
        print(f"  streaming        {st['chunks']:,} chunks of {st['chunk_s'] * 1000:g} ms; delay after each "
              f"chunk's arrival: mean {d['mean'] * 1000:.3g} ms, p50 {d['p50'] * 1000:.3g}, "
              f"p95 {d['p95'] * 1000:.3g}, max {d['max'] * 1000:.3g}")
        drift = "n/a" if st["drift_s_per_s"] is None else f"{st['drift_s_per_s']:.3g} s/s"
        print(f"  final_latency_s  {st['final_latency_s']:.6g} after the end of speech; keeps up: "
              f"{'yes' if st['keeps_up'] else 'no'} (delay drift {drift})")
        print(f"  latency_s        {s['latency_s']:.6g} (end of the last op, from the start of the audio)")
    else:
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
    if s["ops"] <= MAX_RUN_FOLDER_OPS:
        for line in breakdown(result).lines():
            print(line)
    else:  # the breakdown is built from the per-op table (an hour: 23M rows, ~17 GB)
        print(f"  breakdown        left out: {s['ops']:,} ops > hwsim.limits.MAX_RUN_FOLDER_OPS "
              f"({MAX_RUN_FOLDER_OPS:,}); simulate a shorter utterance for it")
    return 0
