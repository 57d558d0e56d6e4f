"""OpGraph files and unknown ops: Parquet round trip, ops without a formula kept and listed."""

import torch

from workloads.graph import OpGraph
from workloads.tracer import record

torch.set_num_threads(1)


class _Toy(torch.nn.Module):
    """``rnnt.joint.out`` (a Linear) then a rare op (cumprod) and a custom op in the search."""

    def __init__(self):
        super().__init__()
        self.rnnt = torch.nn.Module()
        self.rnnt.joint = torch.nn.Module()
        self.rnnt.joint.out = torch.nn.Linear(6, 4)


@torch.library.custom_op("hwsim_test::double", mutates_args=())
def _double(x: torch.Tensor) -> torch.Tensor:
    return x * 2


def _trace_toy():
    toy = _Toy()
    x = torch.randn(3, 6)

    def run():
        with torch.inference_mode():
            y = toy.rnnt.joint.out(x)
            return _double(torch.cumprod(y, 1)).sum()

    return record(toy, run, step_fn=lambda: 7, meta={"model": "toy", "beam": 2})


def test_unknown_ops_are_listed_with_kind_unknown():
    g, _ = _trace_toy()
    assert g.unknown_ops() == {"cumprod": 1, "double": 1}
    by_name = {o.op: o for o in g.ops}
    assert by_name["cumprod"].kind == "unknown" and by_name["cumprod"].phase == "search"
    assert by_name["cumprod"].bytes_read == 3 * 4 * 4  # bytes still known from shapes
    lin = by_name["linear"] if "linear" in by_name else by_name["addmm"]
    assert (lin.kind, lin.phase, lin.macs, lin.weight) == ("gemm", "joint", 3 * 6 * 4, "rnnt.joint.out.weight")
    assert lin.weight_bytes == 4 * 6 * 4
    assert g.phase_summary().loc["search", "unknown_ops"] == 2


def test_edges_follow_dataflow():
    g, _ = _trace_toy()
    names = [o.op for o in g.ops]
    # linear/addmm -> cumprod -> double (the custom op's own mul runs inside it) -> sum
    chain = [names.index(n) for n in ("cumprod", "double", "sum")]
    for a, b in zip(chain, chain[1:]):
        assert a in g.deps(b)
    assert names.index("cumprod") - 1 in g.deps(names.index("cumprod"))


def test_parquet_round_trip(tmp_path):
    g, _ = _trace_toy()
    path = g.save(tmp_path / "g.parquet")
    h = OpGraph.load(path)
    assert h.meta == {"model": "toy", "beam": 2}
    assert list(h.ops) == list(g.ops)
    assert sorted(h.graph.edges()) == sorted(g.graph.edges())
    assert h.unknown_ops() == g.unknown_ops()


def test_from_records_matches_add():
    g, _ = _trace_toy()
    h = OpGraph()
    for i, op in enumerate(g.ops):
        h.add(op, g.deps(i))
    assert list(h.ops) == list(g.ops) and sorted(h.graph.edges()) == sorted(g.graph.edges())
