"""The operator graph: what a decode computes, one immutable record per operator.

An ``OpGraph`` is produced by the tracer (``workloads.trace``) from a real decode, or by the
analytic builder (``workloads.rnnt_graph``) from a config and search statistics; the simulator
(``hwsim``) costs and schedules it, and ``save``/``load`` write it as one Parquet file. Node ids are
0..n-1 in program order and every edge (tensor dataflow, producer -> consumer) goes from a smaller
id to a larger one, so program order is a topological order.

Representation (one for the tracer, the builder, the simulator and the file): a decode repeats
a few hundred distinct operators (an LSTM cell's sigmoid at every frame), so the graph stores

- ``templates``: the distinct ``Op`` records, each with ``step = -1``;
- per op, ``code`` (int32, index into ``templates``) and ``step`` (int32);
- the producers of every op in CSR form, ``ptr`` (n + 1; int32, or int64 from 2**31 edges on)
  and ``dep_ids`` (int32): the producers of op i are ``dep_ids[ptr[i]:ptr[i + 1]]``, sorted and
  distinct.

That is about 19 bytes per op instead of a Python object and a networkx node (about 1 KiB). The
``Op`` of one node (``graph[i]``, ``graph.ops``) and a networkx ``DiGraph`` (``graph.graph``) are
built on demand for users who ask for them; nothing on the simulator's path does.

Byte counts are at the dtype the graph was produced with (float32 for a traced FP32 decode);
the simulator re-prices them at the precision policy's widths from shapes and element counts.
"""

from __future__ import annotations

import itertools
import json
import operator
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
from numba import njit

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
#: Ops per Parquet row group written by ``OpGraph.save``.
SAVE_CHUNK = 1 << 20
_TEMPLATE_KEY = operator.attrgetter(*(f for f in OP_FIELDS if f != "step"))


def _template(op: Op) -> Op:
    return op if op.step == -1 else replace(op, step=-1)


def _csr(deps: Sequence[Iterable[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Producer lists as CSR (``ptr``, ``dep_ids``), each op's producers sorted and distinct."""
    lists = [sorted(set(ds)) for ds in deps]
    counts = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    ptr = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    flat = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64, count=int(ptr[-1]))
    return ptr, flat


@njit(cache=True, nogil=True)
def _check_deps(ptr, deps):
    """(first op with a producer that is not an earlier op, that producer) or (-1, -1), and
    whether every op's producers are sorted and distinct."""
    ordered = True
    for i in range(len(ptr) - 1):
        for j in range(ptr[i], ptr[i + 1]):
            d = deps[j]
            if d < 0 or d >= i:
                return i, d, ordered
            if j > ptr[i] and d <= deps[j - 1]:
                ordered = False
    return -1, -1, ordered


@njit(cache=True, nogil=True)
def _normalize_deps(ptr, deps):
    out = np.empty(len(deps), dtype=np.int32)
    new_ptr = np.zeros(len(ptr), dtype=np.int64)
    e = 0
    for i in range(len(ptr) - 1):
        seg = np.sort(deps[ptr[i]:ptr[i + 1]])
        for j in range(len(seg)):
            if j == 0 or seg[j] != seg[j - 1]:
                out[e] = seg[j]
                e += 1
        new_ptr[i + 1] = e
    return new_ptr, out[:e].copy()


def _compact(ptr: np.ndarray) -> np.ndarray:
    """Producer offsets as int32 below 2**31 edges (the module docstring's layout)."""
    return ptr.astype(np.int32) if ptr[-1] < 2**31 else ptr.astype(np.int64, copy=False)


class OpColumns:
    """Ops appended in program order as ``OpGraph`` columns (template code, step, producers):
    one by one into array buffers (``append``) or in bulk as numpy chunks (``extend``); ``arrays``
    joins everything once. The tracer, the analytic builder and ``OpGraph.add`` append here.

    ``code``, ``step``, ``ptr`` (producer offsets, relative to the current buffer), ``deps``: the
    one-by-one buffers (``workloads.blocks.record`` reads and truncates them).
    """

    def __init__(self) -> None:
        self.code = array("i")
        self.step = array("i")
        self.ptr = array("q", [0])
        self.deps = array("i")
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.flushed = 0                       # ops in chunks

    def __len__(self) -> int:
        return self.flushed + len(self.code)

    def append(self, code: int, step: int, deps: Sequence[int]) -> int:
        """Append one op with its producers (sorted, distinct); returns its id."""
        node = self.flushed + len(self.code)
        self.code.append(code)
        self.step.append(step)
        self.deps.extend(deps)
        self.ptr.append(len(self.deps))
        return node

    def flush(self) -> None:
        """Move the one-by-one buffers into the chunk list."""
        if len(self.code):
            self.chunks.append((np.frombuffer(self.code, dtype=np.int32).copy(),
                                np.frombuffer(self.step, dtype=np.int32).copy(),
                                np.diff(np.frombuffer(self.ptr, dtype=np.int64)).astype(np.int32),
                                np.frombuffer(self.deps, dtype=np.int32).copy()))
            self.flushed += len(self.code)
            self.code, self.step, self.ptr, self.deps = array("i"), array("i"), array("q", [0]), array("i")

    def extend(self, code: np.ndarray, step: np.ndarray, counts: np.ndarray, deps: np.ndarray) -> None:
        """Append ops in bulk: template codes, steps, producer counts and ids."""
        self.flush()
        self.chunks.append((code, step, counts, deps))
        self.flushed += len(code)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(code int32, step int32, ptr int64 (n + 1), deps int32) of every op so far. The chunks
        are joined one column at a time, each freed as it goes; the result stays the buffer's
        one chunk, so appending may go on."""
        self.flush()
        fields = [[c[f] for c in self.chunks] for f in range(4)]
        self.chunks = []

        def join(f: int) -> np.ndarray:
            parts, fields[f] = fields[f], None
            return np.concatenate(parts).astype(np.int32, copy=False) if parts else np.zeros(0, np.int32)

        code, step, counts = join(0), join(1), join(2)
        ptr = np.zeros(len(code) + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        deps = join(3)
        self.chunks = [(code, step, counts, deps)] if len(code) else []
        return code, step, ptr, deps


class OpGraph:
    """A dataflow graph of ``Op`` records in columnar form (see the module docstring).

    Attributes:
        meta: free-form provenance (model, beam, fusion, frames, ...), saved with the graph.
    """

    def __init__(self, meta: dict | None = None) -> None:
        self.meta: dict = dict(meta or {})
        self._templates: list[Op] = []
        self._index: dict[tuple, int] = {}
        self._buf = OpColumns()
        self._memo: dict = {}
        self._frozen: tuple[np.ndarray, ...] | None = None

    # ----------------------------------------------------------------------------------------
    # Construction

    def intern(self, op: Op) -> int:
        """The template code of ``op`` (its record without the step), added if new."""
        key = _TEMPLATE_KEY(op)
        code = self._index.get(key)
        if code is None:
            code = self._index[key] = len(self._templates)
            self._templates.append(_template(op))
        return code

    def add(self, op: Op, deps: Iterable[int] = ()) -> int:
        """Append ``op`` after its producers ``deps`` (ids of earlier ops); returns its id."""
        self._thaw()
        node = len(self._buf)
        ds = sorted(set(deps))
        for d in ds:
            if not 0 <= d < node:
                raise ValueError(f"op {node} ({op.op}): dependency {d} is not an earlier op")
        return self._buf.append(self.intern(op), op.step, ds)

    @classmethod
    def from_records(cls, ops: Sequence[Op], deps: Sequence[Iterable[int]], meta: dict | None = None) -> OpGraph:
        """Bulk constructor: ``ops`` in program order, ``deps[i]`` the producers of op ``i``.

        Equivalent to ``add``-ing each op in turn, several times faster for large graphs.
        """
        if len(deps) != len(ops):
            raise ValueError(f"{len(ops)} ops but {len(deps)} dependency lists")
        g = cls(meta)
        by_id: dict[int, int] = {}  # records repeat: intern each distinct object once
        codes = np.empty(len(ops), dtype=np.int32)
        for i, o in enumerate(ops):
            c = by_id.get(id(o))
            if c is None:
                c = by_id[id(o)] = g.intern(o)
            codes[i] = c
        steps = np.fromiter((o.step for o in ops), dtype=np.int32, count=len(ops))
        ptr, flat = _csr(deps)
        return cls.from_arrays(g._templates, codes, steps, ptr, flat, meta)

    @classmethod
    def from_arrays(cls, templates: Sequence[Op], code, step, ptr, dep_ids, meta: dict | None = None) -> OpGraph:
        """The graph of columns (see the module docstring); ``templates`` must be distinct.

        Producers of each op are sorted and made distinct here if they are not already.

        Raises:
            ValueError: lengths disagree, a code names no template, or a dependency is not an
                earlier op.
        """
        code = np.ascontiguousarray(code, dtype=np.int32)
        step = np.ascontiguousarray(step, dtype=np.int32)
        ptr = np.ascontiguousarray(ptr, dtype=np.int64)
        dep_ids = np.ascontiguousarray(dep_ids, dtype=np.int32)
        n = len(code)
        if len(step) != n or len(ptr) != n + 1 or ptr[0] != 0 or int(ptr[-1]) != len(dep_ids) \
                or np.any(np.diff(ptr) < 0):
            raise ValueError(f"graph columns disagree: {n} codes, {len(step)} steps, {len(ptr)} row "
                             f"pointers (need n + 1, from 0, non-decreasing) for {len(dep_ids)} deps")
        if n and (code.min() < 0 or code.max() >= len(templates)):
            raise ValueError(f"op codes must be in 0..{len(templates) - 1}")
        node, d, ordered = _check_deps(ptr, dep_ids)
        if node >= 0:
            raise ValueError(f"op {node} ({templates[code[node]].op}): dependency {d} is not an earlier op")
        if not ordered:  # sort each op's producers and drop repeats
            ptr, dep_ids = _normalize_deps(ptr, dep_ids)
        ptr = _compact(ptr)
        g = cls(meta)
        for t in templates:
            g.intern(t)
        if len(g._templates) != len(templates):
            raise ValueError("templates must be distinct records (ignoring the step)")
        g._frozen = (code, step, ptr, dep_ids)
        return g

    def _thaw(self) -> None:
        """Back to appendable columns (``add`` after a bulk construction)."""
        self._memo.clear()
        if self._frozen is not None:
            code, step, ptr, deps = self._frozen
            self._buf = OpColumns()
            self._buf.extend(code, step, np.diff(ptr), deps)
            self._frozen = None

    def _columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self._frozen is None:
            code, step, ptr, deps = self._buf.arrays()
            self._frozen = (code, step, _compact(ptr), deps)
            self._buf = OpColumns()
        return self._frozen

    # ----------------------------------------------------------------------------------------
    # Access

    def __len__(self) -> int:
        return len(self._frozen[0]) if self._frozen is not None else len(self._buf)

    @property
    def templates(self) -> tuple[Op, ...]:
        """The distinct records (``step`` = -1); ``code[i]`` indexes them."""
        return tuple(self._templates)

    @property
    def code(self) -> np.ndarray:
        """Template index of every op (int32, read only)."""
        return self._columns()[0]

    @property
    def step(self) -> np.ndarray:
        """Step of every op (int32, read only)."""
        return self._columns()[1]

    def edge_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Producers in CSR form: ``dep_ids[ptr[i]:ptr[i + 1]]`` are those of op i (sorted)."""
        _, _, ptr, deps = self._columns()
        return ptr, deps

    def memo(self, key: str, compute):
        """``compute(self)``, cached under ``key`` until an op is added.

        For tables derived from the graph that consumers rebuild for every use (the simulator's
        op table: a sweep simulates one graph on many accelerators).
        """
        self._columns()
        if key not in self._memo:
            self._memo[key] = compute(self)
        return self._memo[key]

    def __getitem__(self, node: int) -> Op:
        code, step, _, _ = self._columns()
        t = self._templates[int(code[node])]
        s = int(step[node])
        return t if s == -1 else replace(t, step=s)

    @property
    def ops(self) -> Sequence[Op]:
        """All ops in program (= topological) order, as ``Op`` records (built on first use)."""
        return self.memo("graph.ops", lambda g: [g[i] for i in range(len(g))])

    def deps(self, node: int) -> list[int]:
        """Producers of ``node``, sorted."""
        _, _, ptr, deps = self._columns()
        return deps[ptr[node]:ptr[node + 1]].tolist()

    @property
    def graph(self):
        """The graph as a networkx ``DiGraph`` (node attribute ``op``), built on first use."""
        def build(g: OpGraph):
            import networkx as nx

            dg = nx.DiGraph()
            dg.add_nodes_from((i, {"op": o}) for i, o in enumerate(g.ops))
            dg.add_edges_from(g.edges_frame().itertuples(index=False, name=None))
            return dg

        return self.memo("graph.networkx", build)

    # ----------------------------------------------------------------------------------------
    # Tables

    def templates_frame(self) -> pd.DataFrame:
        """One row per template, the ``Op`` fields as columns (``step`` = -1)."""
        cols = {name: [getattr(o, name) for o in self._templates] for name in OP_FIELDS}
        frame = pd.DataFrame(cols, columns=list(OP_FIELDS))
        for name in _INT_FIELDS:
            frame[name] = frame[name].astype(np.int64)
        return frame

    def to_frame(self) -> pd.DataFrame:
        """One row per op, the ``Op`` fields as columns, indexed by op id."""
        code, step, _, _ = self._columns()
        frame = self.templates_frame().take(code).reset_index(drop=True)
        frame["step"] = step.astype(np.int64)
        frame.index.name = "id"
        return frame

    def edges_frame(self) -> pd.DataFrame:
        """One row per dataflow edge: ``src`` (producer id), ``dst`` (consumer id), sorted."""
        _, _, ptr, deps = self._columns()
        dst = np.repeat(np.arange(len(self), dtype=np.int64), np.diff(ptr))
        order = np.lexsort((dst, deps))
        return pd.DataFrame({"src": deps[order].astype(np.int64), "dst": dst[order]})

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
        records = [_record(rec) for rec in ops[list(OP_FIELDS)].to_dict("records")]
        return cls.from_records(records, [by_dst.get(i, ()) for i in range(len(records))], meta)

    # ----------------------------------------------------------------------------------------
    # Files: one Parquet table, one row per op: the ``Op`` fields, ``id``, ``deps`` (producer
    # ids) and ``template`` (the op's template code, so that loading reads each distinct record
    # once), with the graph's ``meta`` as JSON in the file's key-value metadata.

    def save(self, path: str | Path) -> Path:
        """Write the graph as one Parquet file (columns: ``Op`` fields, ``id``, ``deps``, ``template``)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        code, step, ptr, deps = self._columns()
        tf = self.templates_frame()
        for name in _SHAPE_FIELDS:
            tf[name] = [[list(s) for s in shapes] for shapes in tf[name]]
        for name in _STR_TUPLE_FIELDS:
            tf[name] = [list(v) for v in tf[name]]
        templates = pa.Table.from_pandas(tf, preserve_index=False)
        meta = {b"hwsim.meta": json.dumps(self.meta, default=str).encode()}
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = None
        # One row group per SAVE_CHUNK ops: the nested shape columns of a chunk are all that is
        # materialized at a time (an hour-long graph has 23M ops).
        for a in range(0, max(len(code), 1), SAVE_CHUNK):
            b = min(a + SAVE_CHUNK, len(code))
            c = code[a:b]
            table = templates.take(pa.array(c))
            table = table.set_column(table.schema.get_field_index("step"), "step",
                                     pa.array(step[a:b].astype(np.int64)))
            table = table.add_column(0, "id", pa.array(np.arange(a, b, dtype=np.int64)))
            offsets = (ptr[a:b + 1] - ptr[a]).astype(np.int32)
            table = table.append_column("deps", pa.ListArray.from_arrays(
                pa.array(offsets), pa.array(deps[ptr[a]:ptr[b]].astype(np.int64))))
            table = table.append_column("template", pa.array(c))
            table = table.replace_schema_metadata(meta)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
        writer.close()
        return path

    @classmethod
    def load(cls, path: str | Path) -> OpGraph:
        """Read a graph written by ``save`` (also files without the ``template`` column)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {}).get(b"hwsim.meta", b"{}"))
        names = table.column_names
        if "id" in names:
            ids = table.column("id").to_numpy()
            if not np.array_equal(ids, np.arange(len(ids))):
                table = table.take(pa.array(np.argsort(ids, kind="stable")))
        deps_col = table.column("deps").combine_chunks()
        ptr = deps_col.offsets.to_numpy().astype(np.int64)
        dep_ids = deps_col.flatten().to_numpy()
        step = table.column("step").to_numpy()
        if "template" in names:
            code = table.column("template").to_numpy()
            uniq, first = np.unique(code, return_index=True)
            if not np.array_equal(uniq, np.arange(len(uniq))):
                raise ValueError(f"{path}: template codes are not 0..k-1")
            rows = table.select(list(OP_FIELDS)).take(pa.array(first)).to_pylist()
        else:  # a file without template codes: factorize the rows
            rows_all = table.select([f for f in OP_FIELDS if f != "step"]).to_pylist()
            keys = [json.dumps(r, sort_keys=True) for r in rows_all]
            code, uniq_keys = pd.factorize(pd.Index(keys))
            first = np.unique(code, return_index=True)[1]
            rows = [dict(rows_all[i], step=-1) for i in first]
        templates = [_template(_record(r)) for r in rows]
        return cls.from_arrays(templates, code, step, ptr, dep_ids, meta)

    # ----------------------------------------------------------------------------------------
    # Summaries

    def _per_template(self, name: str) -> np.ndarray:
        return np.asarray([getattr(t, name) for t in self._templates], dtype=np.int64)

    def _counts(self) -> np.ndarray:
        return np.bincount(self.code, minlength=len(self._templates)).astype(np.int64)

    def phase_summary(self) -> pd.DataFrame:
        """Per phase: ``ops``, ``macs``, ``flops``, ``bytes_read``, ``bytes_written``, ``unknown_ops``."""
        counts = self._counts()
        frame = pd.DataFrame({"phase": [t.phase for t in self._templates], "ops": counts})
        for name in ("macs", "flops", "bytes_read", "bytes_written"):
            frame[name] = self._per_template(name) * counts
        frame["unknown_ops"] = np.asarray([t.kind == "unknown" for t in self._templates], dtype=np.int64) * counts
        out = frame[counts > 0].groupby("phase").sum()
        return out.reindex([p for p in PHASES if p in out.index])

    def unknown_ops(self) -> dict[str, int]:
        """Names of ops without a cost formula, with their counts."""
        out: dict[str, int] = {}
        for t, c in zip(self._templates, self._counts()):
            if t.kind == "unknown" and c:
                out[t.op] = out.get(t.op, 0) + int(c)
        return out

    def totals(self) -> dict[str, int]:
        """Whole-graph ``ops``, ``macs``, ``flops``, ``bytes_read``, ``bytes_written``."""
        counts = self._counts()
        out = {"ops": len(self)}
        for name in ("macs", "flops", "bytes_read", "bytes_written"):
            out[name] = int(self._per_template(name) @ counts)
        return out


def _record(rec: dict) -> Op:
    """An ``Op`` from a table row (lists back to tuples, numpy ints to ints)."""
    rec = dict(rec)
    for name in _SHAPE_FIELDS:
        rec[name] = tuple(tuple(int(x) for x in s) for s in rec[name])
    for name in _STR_TUPLE_FIELDS:
        rec[name] = tuple(str(x) for x in rec[name])
    for name in _INT_FIELDS:
        rec[name] = int(rec[name])
    return Op(**rec)
