"""The default evaluation of a design point: build (or reuse) its graph, cost it on its hardware.

Everything a point needs is cached per process, so a worker that receives many points sharing a
graph key builds the graph once: graphs (the expensive part) in a small LRU, specs, policies and
model configs by name. The sweep driver groups points by graph key into chunks, so a worker sees
long runs of points with the same graph.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from functools import lru_cache

from hwsim.dse.sweep import GRAPH_FIELDS, SERVE_FIELDS, SERVE_PREFIX, resolve_spec, spec_figures

#: Graphs kept per process. Paper-scale graphs are large; chunks arrive grouped by graph key, so
#: a short LRU is enough.
GRAPH_CACHE_SIZE = 2
_graphs: OrderedDict[tuple, object] = OrderedDict()


@lru_cache(maxsize=32)
def _config(model: str):
    from models.config import load_config

    return load_config(model)


@lru_cache(maxsize=32)
def _policy(precision: str):
    from models.quant.policy import load_policy

    return load_policy(precision)


def graph_for(point: dict):
    """The operator graph of ``point`` (cached per process by ``GRAPH_FIELDS``)."""
    key = tuple(point[f] for f in GRAPH_FIELDS)
    graph = _graphs.get(key)
    if graph is None:
        from workloads import paper_graph

        graph = paper_graph(_config(point["model"]), point["audio_s"], point["beam"],
                            point["lm_fusion"], method=point["method"])
        _graphs[key] = graph
        while len(_graphs) > GRAPH_CACHE_SIZE:
            _graphs.popitem(last=False)
    else:
        _graphs.move_to_end(key)
    return graph


def flatten_summary(summary: dict, skip: set[str] = frozenset()) -> dict:
    """A ``SimResult.summary`` as flat scalar columns: phases become ``phase_<name>_s``,
    utilization ``util_<unit>``, precision fallbacks a JSON string; other nested values are
    dropped; keys in ``skip`` (the point's own fields) are left out."""
    out = {}
    for k, v in summary.items():
        if k in skip:
            continue
        if k == "phases" and isinstance(v, dict):
            for phase, lat in v.items():
                out[f"phase_{phase}_s"] = float(lat["latency_s"] if isinstance(lat, dict) else lat)
        elif k == "utilization" and isinstance(v, dict):
            out.update({f"util_{unit}": float(u) for unit, u in v.items()})
        elif k == "energy_breakdown_j" and isinstance(v, dict):
            out.update({f"energy_{part}_j": float(e) for part, e in v.items()})
        elif k == "dram_bytes_by_source" and isinstance(v, dict):
            out.update({f"dram_{src}_bytes": float(b) for src, b in v.items()})
        elif k == "precision_fallbacks" and isinstance(v, dict):
            out[k] = json.dumps(v, sort_keys=True)
        elif isinstance(v, (bool, int, float, str)) or v is None:
            out[k] = v
    return out


def evaluate_point(point: dict) -> dict:
    """Cost one design point with the simulator.

    Args:
        point: ``POINT_FIELDS`` + ``hw.<path>`` overrides (see ``hwsim.dse.sweep``).

    Returns:
        Flat figures: ``latency_s``, ``rtf``, ``macs``, ``ops``, ``weight_bytes``,
        ``fp32_weight_bytes``, ``compression_x``, ``phase_<name>_s``, ``energy_j`` (when the spec
        has energy costs), ``onchip_bytes``, ``peak_macs_per_s``, ``peak_ops_per_s``, any
        other scalar of the summary, and with ``serve.*`` settings the serving capacity
        (``serving_figures``).
    """
    from hwsim.simulate import simulate

    spec = resolve_spec(point)
    config = _config(point["model"])
    result = simulate(graph_for(point), spec, _policy(point["precision"]), point["audio_s"], config=config)
    figures = flatten_summary(result.summary, skip=set(point))
    figures.update(spec_figures(spec, point["precision"]))
    if any(k.startswith(SERVE_PREFIX) for k in point):
        figures.update(serving_figures(point, spec, config))
    for k, v in figures.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"simulator returned {k}={v}")
    return figures


def serving_figures(point: dict, spec, config) -> dict:
    """``max_streams``, ``serve_p95_s`` (worst stream's p95 delay at ``max_streams``; None at 0),
    ``serve_p95_1_s`` (one stream's) and ``serve_at_limit`` of a point with ``serve.*``
    settings (``hwsim.dse.sweep``), by ``hwsim.serve``."""
    from hwsim import serve

    cfg = {k: point.get(SERVE_PREFIX + k, default) for k, (_, _, _, default) in SERVE_FIELDS.items()}
    limit = int(cfg["limit"])
    batching = serve.BatchPolicy(max_batch=min(int(cfg["max_batch"]), limit), max_wait_s=cfg["max_wait_ms"] / 1000)
    beam = 1 if point["method"] == "greedy" else point["beam"]
    work = serve.workload(config, spec, _policy(point["precision"]), point["audio_s"], beam, point["lm_fusion"],
                          method=point["method"], chunk_ms=cfg["chunk_ms"], max_batch=batching.max_batch)
    best, tried = serve.max_streams(work, cfg["p95_ms"] / 1000, batching, limit=limit)
    return {"max_streams": best, "serve_p95_s": tried[best].summary["p95_s"] if best else None,
            "serve_p95_1_s": tried[1].summary["p95_s"], "serve_at_limit": best == limit}
