"""The op graph as flat arrays for the cost model, from its templates (no per-op Python).

``op_table`` gives the fields the cost model needs as a DataFrame: the graph's distinct records
(``OpGraph.templates``, a few hundred) made into columns once and indexed by every op's template
code, string fields as categoricals. ``hwsim.simulate`` caches it per graph (``OpGraph.memo``);
the producers in CSR form come from ``OpGraph.edge_arrays``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workloads.graph import OpGraph

_FIELDS = ("op", "kind", "phase", "step", "module", "weight", "m", "k", "n", "elems", "macs",
           "bytes_read", "bytes_written")


_STR_FIELDS = ("op", "kind", "phase", "module", "weight")


def categorical(values) -> pd.Categorical:
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    return pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype=object))


def template_table(graph: OpGraph) -> pd.DataFrame:
    """The graph's templates (``OpGraph.templates``) as a DataFrame of the fields the cost model
    needs, one row per template (``step`` -1); string columns are categoricals."""
    templates = graph.templates
    data = {}
    for f in _FIELDS:
        if f in _STR_FIELDS:
            data[f] = categorical([getattr(t, f) for t in templates])
        else:
            data[f] = np.asarray([getattr(t, f) for t in templates], dtype=np.int64)
    return pd.DataFrame(data)


def op_table(graph: OpGraph) -> pd.DataFrame:
    """The graph's ops as a DataFrame of the fields the cost model needs, plus ``template``
    (the op's template code)."""
    return expand_templates(template_table(graph), graph.code, graph.step)


def expand_templates(tt: pd.DataFrame, code: np.ndarray, step: np.ndarray) -> pd.DataFrame:
    """``template_table`` rows indexed by every op's ``code``, with its ``step`` and ``template``."""
    data = {}
    for f in _FIELDS:
        if f == "step":
            data[f] = np.asarray(step, dtype=np.int64)
        elif f in _STR_FIELDS:
            data[f] = pd.Categorical.from_codes(tt[f].cat.codes.to_numpy()[code], categories=tt[f].cat.categories)
        else:
            data[f] = tt[f].to_numpy()[code]
    data["template"] = np.asarray(code)
    frame = pd.DataFrame(data)
    frame.index.name = "id"
    return frame
