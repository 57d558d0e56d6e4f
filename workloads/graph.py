"""The operator graph: what a decode computes, one immutable record per operator.

An ``OpGraph`` is produced by the tracer (``workloads.trace``) from a real decode, or by the
analytic builder (``workloads.rnnt_graph``) from a config and search statistics; the simulator
(``hwsim``) costs and schedules it. Ops are nodes of a networkx DiGraph; edges are tensor dataflow
(producer -> consumer). Node ids are 0..n-1 in program order, so every edge goes from a smaller id
to a larger one and program order is a topological order.

Byte counts are at the dtype the graph was produced with (float32 for a traced FP32 decode);
the simulator re-prices them at the precision policy's widths from shapes and element counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

KINDS = ("gemm", "eltwise", "nonlinear", "reduce", "select", "move", "unknown")
PHASES = ("encoder", "prediction", "joint", "lm_ext", "lm_src", "search")

Shape = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Op:
    """One operator.

    Attributes:
        op: aten op name without namespace or overload (``addmm``, ``sigmoid``, ``topk``).
        kind: one of ``KINDS``. ``unknown`` marks an op with no cost formula: it is kept, never
            silently counted as zero work.
        phase: one of ``PHASES``.
        step: encoder frame index (encoder phase) or search step index (other phases); -1 if none.
        module: dotted module path that ran it (``rnnt.encoder.layers.0.fwd``), '' outside modules.
        in_shapes, out_shapes: tensor shapes of the inputs and outputs.
        in_dtypes, out_dtypes: their dtypes (``float32``, ``int64``, ...).
        macs: multiply-accumulates (GEMMs), exact.
        flops: floating-point operations (2 * macs for GEMMs, elements for element-wise ops, ...).
        bytes_read, bytes_written: bytes of inputs read and outputs written, at the traced dtypes.
        weight: parameter name when a parameter is read (e.g. ``rnnt.joint.out.weight``), else ''.
        weight_bytes: bytes of that parameter at the traced dtype.
        m, k, n: GEMM shape, (m x k) @ (k x n) with n the weight's output features; 0 otherwise.
        elems: output elements (the work of element-wise, nonlinear, reduce and move ops).
    """

    op: str
    kind: str
    phase: str
    step: int = -1
    module: str = ""
    in_shapes: tuple[Shape, ...] = ()
    out_shapes: tuple[Shape, ...] = ()
    in_dtypes: tuple[str, ...] = ()
    out_dtypes: tuple[str, ...] = ()
    macs: int = 0
    flops: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    weight: str = ""
    weight_bytes: int = 0
    m: int = 0
    k: int = 0
    n: int = 0
    elems: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Op {self.op!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.phase not in PHASES:
            raise ValueError(f"Op {self.op!r}: phase must be one of {PHASES}, got {self.phase!r}")


OP_FIELDS = tuple(f.name for f in fields(Op))
_SHAPE_FIELDS = ("in_shapes", "out_shapes")
_STR_TUPLE_FIELDS = ("in_dtypes", "out_dtypes")
_INT_FIELDS = ("step", "macs", "flops", "bytes_read", "bytes_written", "weight_bytes", "m", "k", "n", "elems")


class OpGraph:
    """A dataflow graph of ``Op`` records (networkx DiGraph; node id = program order).

    Attributes:
        graph: the networkx DiGraph; node attribute ``op`` holds the record.
        meta: free-form provenance (model, beam, fusion, frames, ...), saved with the graph.
    """

    def __init__(self, meta: dict | None = None) -> None:
        self.graph = nx.DiGraph()
        self.meta: dict = dict(meta or {})
        self._ops: list[Op] = []
        self._memo: dict = {}

    def add(self, op: Op, deps: Iterable[int] = ()) -> int:
        """Append ``op`` after its producers ``deps`` (ids of earlier ops); returns its id."""
        node = len(self._ops)
        self._memo.clear()
        self._ops.append(op)
        self.graph.add_node(node, op=op)
        for d in deps:
            if not 0 <= d < node:
                raise ValueError(f"op {node} ({op.op}): dependency {d} is not an earlier op")
            self.graph.add_edge(d, node)
        return node

    @classmethod
    def from_records(cls, ops: Sequence[Op], deps: Sequence[Iterable[int]], meta: dict | None = None) -> OpGraph:
        """Bulk constructor: ``ops`` in program order, ``deps[i]`` the producers of op ``i``.

        Equivalent to ``add``-ing each op in turn, several times faster for large graphs.
        """
        if len(deps) != len(ops):
            raise ValueError(f"{len(ops)} ops but {len(deps)} dependency lists")
        g = cls(meta)
        g._ops = list(ops)
        g.graph.add_nodes_from((i, {"op": o}) for i, o in enumerate(g._ops))
        edges = []
        for node, ds in enumerate(deps):
            for d in ds:
                if not 0 <= d < node:
                    raise ValueError(f"op {node} ({g._ops[node].op}): dependency {d} is not an earlier op")
                edges.append((d, node))
        g.graph.add_edges_from(edges)
        return g

    def __len__(self) -> int:
        return len(self._ops)

    def memo(self, key: str, compute):
        """``compute(self)``, cached under ``key`` until an op is added.

        For tables derived from the graph that consumers rebuild for every use (the simulator's
        op table and dependency arrays: a sweep simulates one graph on many accelerators).
        Change the graph only through ``add``; editing ``graph`` directly bypasses the cache.
        """
        if key not in self._memo:
            self._memo[key] = compute(self)
        return self._memo[key]

    def __getitem__(self, node: int) -> Op:
        return self._ops[node]

    @property
    def ops(self) -> Sequence[Op]:
        """All ops in program (= topological) order."""
        return self._ops

    def deps(self, node: int) -> list[int]:
        """Producers of ``node``."""
        return sorted(self.graph.predecessors(node))

    # ----------------------------------------------------------------------------------------
    # Tables

    def to_frame(self) -> pd.DataFrame:
        """One row per op, the ``Op`` fields as columns, indexed by op id."""
        if not self._ops:
            return pd.DataFrame(columns=list(OP_FIELDS)).rename_axis("id")
        cols = {name: [getattr(o, name) for o in self._ops] for name in OP_FIELDS}
        frame = pd.DataFrame(cols)
        for name in _INT_FIELDS:
            frame[name] = frame[name].astype(np.int64)
        frame.index.name = "id"
        return frame

    def edges_frame(self) -> pd.DataFrame:
        """One row per dataflow edge: ``src`` (producer id), ``dst`` (consumer id)."""
        edges = sorted(self.graph.edges())
        return pd.DataFrame(edges, columns=["src", "dst"], dtype=np.int64)

    @classmethod
    def from_frames(cls, ops: pd.DataFrame, edges: pd.DataFrame, meta: dict | None = None) -> OpGraph:
        """Rebuild a graph from ``to_frame()`` and ``edges_frame()`` tables."""
        missing = [c for c in OP_FIELDS if c not in ops.columns]
        if missing:
            raise ValueError(f"op table lacks columns {missing}")
        ops = ops.sort_index()
        if list(ops.index) != list(range(len(ops))):
            raise ValueError("op table index must be the op ids 0..n-1")
        by_dst: dict[int, list[int]] = {}
        for s, d in zip(edges["src"].to_numpy(), edges["dst"].to_numpy()):
            by_dst.setdefault(int(d), []).append(int(s))
        g = cls(meta)
        records = ops[list(OP_FIELDS)].to_dict("records")
        for i, rec in enumerate(records):
            for name in _SHAPE_FIELDS:
                rec[name] = tuple(tuple(int(x) for x in s) for s in rec[name])
            for name in _STR_TUPLE_FIELDS:
                rec[name] = tuple(str(x) for x in rec[name])
            for name in _INT_FIELDS:
                rec[name] = int(rec[name])
            g.add(Op(**rec), by_dst.get(i, ()))
        return g

    # ----------------------------------------------------------------------------------------
    # Files: one Parquet table, one row per op, with a ``deps`` column (producer ids) and the
    # graph's ``meta`` as JSON in the file's key-value metadata.

    def save(self, path: str | Path) -> Path:
        """Write the graph as one Parquet file (columns: ``Op`` fields + ``deps``)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        frame = self.to_frame().reset_index()
        for name in _SHAPE_FIELDS:
            frame[name] = [[list(s) for s in shapes] for shapes in frame[name]]
        for name in _STR_TUPLE_FIELDS:
            frame[name] = [list(v) for v in frame[name]]
        frame["deps"] = [self.deps(i) for i in range(len(self))]
        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"hwsim.meta": json.dumps(self.meta, default=str).encode()}
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> OpGraph:
        """Read a graph written by ``save``."""
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(b"hwsim.meta", b"{}")
        frame = table.to_pandas().set_index("id")
        edges = [(int(s), int(d)) for d, ss in zip(frame.index, frame["deps"]) for s in ss]
        return cls.from_frames(frame, pd.DataFrame(edges, columns=["src", "dst"]), json.loads(raw))

    # ----------------------------------------------------------------------------------------
    # Summaries

    def phase_summary(self) -> pd.DataFrame:
        """Per phase: ``ops``, ``macs``, ``flops``, ``bytes_read``, ``bytes_written``, ``unknown_ops``."""
        frame = self.to_frame()
        frame["unknown_ops"] = (frame["kind"] == "unknown").astype(np.int64)
        out = frame.groupby("phase").agg(
            ops=("op", "size"), macs=("macs", "sum"), flops=("flops", "sum"),
            bytes_read=("bytes_read", "sum"), bytes_written=("bytes_written", "sum"),
            unknown_ops=("unknown_ops", "sum"),
        )
        return out.reindex([p for p in PHASES if p in out.index])

    def unknown_ops(self) -> dict[str, int]:
        """Names of ops without a cost formula, with their counts."""
        counts: dict[str, int] = {}
        for o in self._ops:
            if o.kind == "unknown":
                counts[o.op] = counts.get(o.op, 0) + 1
        return counts

    def totals(self) -> dict[str, int]:
        """Whole-graph ``ops``, ``macs``, ``flops``, ``bytes_read``, ``bytes_written``."""
        return {
            "ops": len(self._ops),
            "macs": sum(o.macs for o in self._ops),
            "flops": sum(o.flops for o in self._ops),
            "bytes_read": sum(o.bytes_read for o in self._ops),
            "bytes_written": sum(o.bytes_written for o in self._ops),
        }
