"""OpGraph: records are validated, ids are program order, tables and Parquet round-trip exactly."""

import pandas as pd
import pytest

from workloads.graph import Op, OpGraph


def _mm(step: int) -> Op:
    return Op("addmm", "gemm", "encoder", step, "rnnt.encoder.layers.0.fwd", ((4,), (1, 3), (3, 4)), ((1, 4),),
              ("float32",) * 3, ("float32",), macs=12, flops=24, bytes_read=76, bytes_written=16,
              weight="rnnt.encoder.layers.0.fwd.weight_ih", weight_bytes=48, m=1, k=3, n=4, elems=4)


def _graph() -> OpGraph:
    g = OpGraph({"model": "hand"})
    a = g.add(_mm(0))
    b = g.add(Op("sigmoid", "nonlinear", "encoder", 0, elems=4, flops=4, bytes_read=16, bytes_written=16), [a])
    g.add(Op("topk", "select", "search", 0, elems=2), [b])
    g.add(Op("cumprod", "unknown", "search", 1), [a, b])
    return g


def test_records_are_validated():
    with pytest.raises(ValueError, match="kind must be one of"):
        Op("mm", "matmul", "encoder")
    with pytest.raises(ValueError, match="phase must be one of"):
        Op("mm", "gemm", "decoder")
    g = OpGraph()
    with pytest.raises(ValueError, match="dependency 0 is not an earlier op"):
        g.add(_mm(0), [0])


def test_tables_and_summaries():
    g = _graph()
    frame = g.to_frame()
    assert list(frame.index) == [0, 1, 2, 3]
    assert frame.loc[0, "macs"] == 12 and frame.loc[0, "weight"].endswith("weight_ih")
    assert g.edges_frame().values.tolist() == [[0, 1], [0, 3], [1, 2], [1, 3]]
    summary = g.phase_summary()
    assert list(summary.index) == ["encoder", "search"]
    assert summary.loc["encoder", "ops"] == 2 and summary.loc["encoder", "macs"] == 12
    assert summary.loc["search", "unknown_ops"] == 1
    assert g.unknown_ops() == {"cumprod": 1}
    assert g.totals()["bytes_read"] == 92


def test_frames_and_parquet_round_trip(tmp_path):
    g = _graph()
    h = OpGraph.from_frames(g.to_frame(), g.edges_frame(), g.meta)
    assert list(h.ops) == list(g.ops) and sorted(h.graph.edges()) == sorted(g.graph.edges())
    path = g.save(tmp_path / "sub" / "g.parquet")
    k = OpGraph.load(path)
    assert list(k.ops) == list(g.ops)
    assert sorted(k.graph.edges()) == sorted(g.graph.edges())
    assert k.meta == {"model": "hand"}
    assert isinstance(k[0].in_shapes[1], tuple) and k[0].in_shapes[1] == (1, 3)
    pd.testing.assert_frame_equal(k.to_frame(), g.to_frame())


def test_parquet_round_trip_in_row_groups(tmp_path, monkeypatch):
    import numpy as np
    import pyarrow.parquet as pq

    import workloads.graph as graph_module
    from models.config import load_config
    from workloads import paper_graph

    g = paper_graph(load_config("tiny"), 2.0, 4, "dr")
    monkeypatch.setattr(graph_module, "SAVE_CHUNK", 1000)
    path = g.save(tmp_path / "g.parquet")
    assert pq.ParquetFile(path).num_row_groups == -(-len(g) // 1000)
    h = OpGraph.load(path)
    assert list(h.ops) == list(g.ops) and h.meta == g.meta
    assert all(np.array_equal(a, b) for a, b in zip(h.edge_arrays(), g.edge_arrays()))
