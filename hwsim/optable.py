"""The op graph as flat arrays for the cost model: one pass over the ``Op`` records.

``op_table`` gives the fields the cost model needs as a DataFrame (string fields as categoricals,
since few distinct values repeat over ~1e5 ops); ``edge_arrays`` the producers of every op in
CSR form, for the scheduler. ``hwsim.simulate`` caches both per graph (``OpGraph.memo``).
"""

from __future__ import annotations

import itertools
import operator

import numpy as np
import pandas as pd

from workloads.graph import OpGraph

_FIELDS = ("op", "kind", "phase", "step", "module", "weight", "m", "k", "n", "elems", "macs",
           "bytes_read", "bytes_written")


_STR_FIELDS = ("op", "kind", "phase", "module", "weight")


def categorical(values) -> pd.Categorical:
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    return pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype=object))


def op_table(graph: OpGraph) -> pd.DataFrame:
    """The graph's ops as a DataFrame of the fields the cost model needs (one pass, no to_frame).

    String columns (op, kind, phase, module, weight) are categoricals: few distinct values.
    """
    get = operator.attrgetter(*_FIELDS)
    rows = list(map(get, graph.ops))
    if not rows:
        return pd.DataFrame({f: pd.Categorical([]) if f in _STR_FIELDS else np.zeros(0, np.int64)
                             for f in _FIELDS})
    cols = list(zip(*rows))
    data = {}
    for i, f in enumerate(_FIELDS):
        data[f] = categorical(cols[i]) if f in _STR_FIELDS else np.asarray(cols[i], dtype=np.int64)
    frame = pd.DataFrame(data)
    frame.index.name = "id"
    return frame


def edge_arrays(graph: OpGraph) -> tuple[np.ndarray, np.ndarray]:
    """Producers of each op in CSR form: ``deps[ptr[i]:ptr[i+1]]`` are the producers of op i."""
    n = len(graph)
    pred = graph.graph._pred  # networkx adjacency {node: {producer: attrs}}, read only
    lists = [list(pred[i]) for i in range(n)]
    counts = np.fromiter(map(len, lists), dtype=np.int64, count=n)
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    deps = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64, count=int(ptr[-1]))
    return ptr, deps
