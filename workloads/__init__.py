"""Workloads: the operator graph of a decode, traced from a real run or built analytically.

- ``trace(system, features, **search_kwargs)``: trace ``models.decode`` into an ``OpGraph``.
- ``rnnt_graph(config, stats, frames)``: the same graph from a config and ``SearchStats``.
- ``parametric_stats(config, audio_s, beam, lm_fusion, method)``: ``SearchStats`` from a small
  stated model of the search (paper scale, no decode needed).
- ``paper_graph(config, audio_s, beam, lm_fusion, method)``: ``rnnt_graph`` of ``parametric_stats``.
- ``op_cost`` and the ``cost`` decorator: the per-op cost-formula registry.
"""

from workloads.costs import Cost, cost, op_cost
from workloads.graph import KINDS, PHASES, Op, OpGraph
from workloads.rnnt import paper_graph, rnnt_graph
from workloads.stats import parametric_stats


def __getattr__(name: str):
    # The tracer needs torch; the rest of workloads (and hwsim, which reads graphs) must not.
    if name == "trace":
        from workloads.tracer import trace

        return trace
    raise AttributeError(f"module 'workloads' has no attribute {name!r}")

__all__ = ["Cost", "KINDS", "PHASES", "Op", "OpGraph", "cost", "op_cost", "paper_graph",
           "parametric_stats", "rnnt_graph", "trace"]
