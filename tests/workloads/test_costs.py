"""Cost formulas: exact GEMM MACs, byte counts by hand, families, unknown ops kept and named."""

import pytest

from workloads.costs import SOURCE_OPS, VIEW_OPS, has_formula, op_cost

F32 = "float32"


def test_addmm_macs_bytes_and_shape():
    # bias (12,), x (3, 5), W^T (5, 12): 3*5*12 MACs; reads 12+15+60 floats, writes 36.
    c = op_cost("addmm", ((12,), (3, 5), (5, 12)), (F32,) * 3, ((3, 12),), (F32,))
    assert (c.kind, c.macs, c.flops, c.m, c.k, c.n) == ("gemm", 180, 360, 3, 5, 12)
    assert (c.bytes_read, c.bytes_written, c.elems) == (4 * 87, 4 * 36, 36)


def test_mm_bmm_linear_matmul_macs():
    assert op_cost("mm", ((7, 3), (3, 2)), (F32,) * 2, ((7, 2),), (F32,)).macs == 42
    c = op_cost("bmm", ((4, 7, 3), (4, 3, 2)), (F32,) * 2, ((4, 7, 2),), (F32,))
    assert (c.macs, c.m, c.k, c.n) == (4 * 7 * 3 * 2, 28, 3, 2)
    # linear on (2, 6, 8) with W (5, 8): batch dims fold into m = 12.
    c = op_cost("linear", ((2, 6, 8), (5, 8), (5,)), (F32,) * 3, ((2, 6, 5),), (F32,))
    assert (c.macs, c.m, c.k, c.n) == (12 * 8 * 5, 12, 8, 5)
    c = op_cost("matmul", ((2, 6, 8), (8, 5)), (F32,) * 2, ((2, 6, 5),), (F32,))
    assert (c.macs, c.m) == (12 * 8 * 5, 12)


@pytest.mark.parametrize(("name", "kind"), [
    ("add", "eltwise"), ("mul_", "eltwise"), ("logaddexp", "nonlinear"), ("sigmoid", "nonlinear"),
    ("tanh", "nonlinear"), ("log_softmax", "nonlinear"), ("sum", "reduce"), ("amax", "reduce"),
    ("logsumexp", "reduce"), ("cat", "move"), ("index_select", "move"), ("embedding", "move"),
    ("copy_", "move"), ("clone", "move"), ("_to_copy", "move"),
])
def test_families(name, kind):
    c = op_cost(name, ((4, 6), (4, 6)), (F32, F32), ((4, 6),), (F32,))
    assert c.kind == kind and c.macs == 0


def test_select_and_reductions_count_input_elements():
    c = op_cost("topk", ((8, 29),), (F32,), ((8, 3), (8, 3)), (F32, "int64"))
    assert (c.kind, c.flops, c.elems) == ("select", 8 * 29, 24)
    assert c.bytes_written == 24 * 4 + 24 * 8
    c = op_cost("max", ((8, 29),), (F32,), ((8,), (8,)), (F32, "int64"))
    assert (c.kind, c.flops) == ("reduce", 8 * 29)
    assert op_cost("max", ((8, 29), (8, 29)), (F32, F32), ((8, 29),), (F32,)).kind == "eltwise"


def test_gathers_read_selected_rows_only():
    # 3 rows of a (1000, 64) table: reads 3*64 floats + 3 int64 indices, not the table.
    c = op_cost("embedding", ((1000, 64), (3,)), (F32, "int64"), ((3, 64),), (F32,))
    assert (c.bytes_read, c.bytes_written) == (3 * 64 * 4 + 3 * 8, 3 * 64 * 4)
    c = op_cost("copy_", ((5, 4), (5, 4)), (F32, F32), ((5, 4),), (F32,))
    assert c.bytes_read == 80


def test_unknown_op_is_kept_with_bytes_but_no_work():
    assert not has_formula("cumprod")
    c = op_cost("cumprod", ((4, 6),), (F32,), ((4, 6),), (F32,))
    assert (c.kind, c.macs, c.flops, c.bytes_read, c.elems) == ("unknown", 0, 0, 96, 24)


def test_views_and_sources_have_no_formula():
    for name in ("view", "t", "transpose", "expand", "split", "unsqueeze", "detach", "zeros", "full"):
        assert name in VIEW_OPS | SOURCE_OPS and not has_formula(name)
