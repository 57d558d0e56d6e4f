"""Cost formulas of aten ops: a registry of small pure functions of shapes and dtypes.

The tracer (``workloads.trace``) and the analytic builder (``workloads.rnnt_graph``) both call
``op_cost(name, in_shapes, in_dtypes, out_shapes, out_dtypes)``, so the two paths cost an op
identically by construction. A formula sees shapes and dtypes only; arguments such as topk's ``k``
or a reduction's ``dim`` are read off the output shape, which is why no formula needs the raw args.

Op families (``Op.kind``) and what their numbers mean:

- ``gemm``: ``macs`` exact; ``flops = 2 * macs``; ``(m, k, n)`` is ``(m x k) @ (k x n)`` with every
  batch dimension of the activation folded into ``m`` (for ``bmm`` the batch ``b`` is folded into
  ``m`` too, so ``macs = m * k * n = b * m' * k * n`` always holds).
- ``eltwise``: element-wise arithmetic and comparisons; ``flops`` = output elements (``addcmul``
  and ``lerp`` count 2 per element).
- ``nonlinear``: transcendental functions for the special-function unit; ``flops`` = output elements.
  ``softmax`` and ``log_softmax`` are classed ``nonlinear`` (their cost is dominated by one ``exp``
  per element; the row max and row sum ride along) with ``flops = 4 * elements`` (max, subtract,
  exp, sum/normalize).
- ``reduce``: ``flops`` = input elements; ``elems`` = output elements.
- ``select``: top-k, sort, arg-max: ``flops`` = input elements (compares; ``sort`` counts
  ``n * ceil(log2 n)`` per row).
- ``move``: copies, gathers, concatenations, embedding lookups, dtype conversion. ``flops = 0``.
  Gathers (``embedding``, ``index_select``, ``index``, ``gather``) read only the selected rows plus
  the indices, not the whole source tensor.
- ``unknown``: no formula. ``macs = flops = 0`` but bytes and ``elems`` are still filled from the
  shapes; ``OpGraph.unknown_ops()`` lists such ops by name so they are never silently free.

Common to all: ``bytes_read`` = bytes of all tensor inputs (except where stated: gathers read
selected rows, ``copy_`` does not read its destination), ``bytes_written`` = bytes of all outputs,
``elems`` = elements of the first output.

View and shape-only ops (``VIEW_OPS``) and tensor factories (``SOURCE_OPS``) have no formula because
the tracer never records them: views alias their input, factories start a new dataflow chain
(they are host-side construction or allocation, e.g. ``torch.tensor(...)`` or initial states).
"""

from __future__ import annotations

from collections.abc import Callable
from math import ceil, log2, prod
from typing import NamedTuple

from workloads.graph import Op

Shape = tuple[int, ...]

#: Bytes per element of the dtypes the tracer meets (name as ``str(torch.dtype)`` minus ``torch.``).
ITEMSIZE: dict[str, int] = {
    "float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "int16": 2,
    "int8": 1, "uint8": 1, "bool": 1, "complex64": 8,
}


class Cost(NamedTuple):
    """What one op costs (the numeric fields of ``workloads.graph.Op``)."""

    kind: str
    macs: int = 0
    flops: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    m: int = 0
    k: int = 0
    n: int = 0
    elems: int = 0


Formula = Callable[[tuple[Shape, ...], tuple[str, ...], tuple[Shape, ...], tuple[str, ...]], Cost]

_REGISTRY: dict[str, Formula] = {}

#: Ops folded away by the tracer: their outputs alias their inputs (no data moves).
VIEW_OPS = frozenset({
    "view", "_unsafe_view", "reshape", "_reshape_alias", "t", "transpose", "permute", "expand",
    "expand_as", "slice", "select", "split", "split_with_sizes", "chunk", "unsqueeze", "squeeze",
    "alias", "detach", "detach_", "unbind", "narrow", "as_strided", "view_as", "flatten",
    "unflatten", "movedim", "numpy_T", "_unsafe_split", "squeeze_", "unsqueeze_", "resolve_conj",
    "resolve_neg", "conj", "_conj", "_neg_view", "positive",
})

#: Tensor factories: not recorded, their outputs have no producer.
SOURCE_OPS = frozenset({
    "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros", "zeros_like",
    "new_zeros", "ones", "ones_like", "new_ones", "full", "full_like", "new_full", "arange",
    "scalar_tensor", "lift_fresh", "lift_fresh_copy", "rand", "randn", "randint", "rand_like", "randn_like",
    "tensor", "linspace",
})


def cost(*names: str) -> Callable[[Formula], Formula]:
    """Register ``formula`` for the aten ops ``names`` (packet names: ``addmm``, ``add_``)."""

    def register(formula: Formula) -> Formula:
        for name in names:
            if name in _REGISTRY:
                raise RuntimeError(f"duplicate cost formula for {name!r}")
            _REGISTRY[name] = formula
        return formula

    return register


def has_formula(name: str) -> bool:
    """Whether ``name`` has a registered cost formula."""
    return name in _REGISTRY


def _numel(shape: Shape) -> int:
    return prod(shape)


def _nbytes(shapes: tuple[Shape, ...], dtypes: tuple[str, ...]) -> int:
    return sum(prod(s) * ITEMSIZE.get(d, 4) for s, d in zip(shapes, dtypes))


def _first_numel(shapes: tuple[Shape, ...]) -> int:
    return prod(shapes[0]) if shapes else 0


def op_cost(
    name: str,
    in_shapes: tuple[Shape, ...],
    in_dtypes: tuple[str, ...],
    out_shapes: tuple[Shape, ...],
    out_dtypes: tuple[str, ...],
) -> Cost:
    """Cost of one call of aten op ``name`` (no namespace, no overload) on tensors of these shapes.

    Args:
        name: op packet name, e.g. ``addmm``, ``sigmoid``, ``add_``.
        in_shapes, in_dtypes: tensor inputs in argument order (tensors inside list arguments, such
            as ``cat``'s, are flattened in place).
        out_shapes, out_dtypes: tensor outputs.

    Returns:
        The op's ``Cost``; ``kind == "unknown"`` (zero MACs and flops) if no formula is registered.
    """
    formula = _REGISTRY.get(name)
    if formula is None:
        return Cost(
            "unknown", 0, 0, _nbytes(in_shapes, in_dtypes), _nbytes(out_shapes, out_dtypes), 0, 0, 0,
            _first_numel(out_shapes),
        )
    return formula(in_shapes, in_dtypes, out_shapes, out_dtypes)


def costed_op(name: str, phase: str, module: str, in_shapes: tuple[Shape, ...], in_dtypes: tuple[str, ...],
              out_shapes: tuple[Shape, ...], out_dtypes: tuple[str, ...], weight: str = "",
              weight_bytes: int = 0) -> Op:
    """The ``workloads.graph.Op`` record of one call (``step`` -1: a template, as ``OpGraph``
    stores it), its numbers from ``op_cost``. The tracer and the analytic builder make their
    records here."""
    c = op_cost(name, in_shapes, in_dtypes, out_shapes, out_dtypes)
    return Op(name, c.kind, phase, -1, module, in_shapes, out_shapes, in_dtypes, out_dtypes, c.macs, c.flops,
              c.bytes_read, c.bytes_written, weight, weight_bytes, c.m, c.k, c.n, c.elems)


# ------------------------------------------------------------------------------------------------
# GEMMs


def _gemm(m: int, k: int, n: int, ins, ind, outs, outd) -> Cost:
    macs = m * k * n
    return Cost("gemm", macs, 2 * macs, _nbytes(ins, ind), _nbytes(outs, outd), m, k, n,
                _first_numel(outs))


@cost("mm")
def _mm(ins, ind, outs, outd):
    (m, k), (_, n) = ins[0], ins[1]
    return _gemm(m, k, n, ins, ind, outs, outd)


@cost("addmm")
def _addmm(ins, ind, outs, outd):
    (m, k), (_, n) = ins[1], ins[2]
    return _gemm(m, k, n, ins, ind, outs, outd)


@cost("bmm")
def _bmm(ins, ind, outs, outd):
    (b, m, k), (_, _, n) = ins[0], ins[1]
    return _gemm(b * m, k, n, ins, ind, outs, outd)


@cost("baddbmm")
def _baddbmm(ins, ind, outs, outd):
    (b, m, k), (_, _, n) = ins[1], ins[2]
    return _gemm(b * m, k, n, ins, ind, outs, outd)


@cost("linear")
def _linear(ins, ind, outs, outd):
    x, w = ins[0], ins[1]
    n, k = w if len(w) == 2 else (1, w[0])
    return _gemm(_numel(x[:-1]), k, n, ins, ind, outs, outd)


@cost("matmul")
def _matmul(ins, ind, outs, outd):
    a, b = ins[0], ins[1]
    k = a[-1]
    if len(b) == 1:  # matrix-vector
        return _gemm(_numel(a[:-1]), k, 1, ins, ind, outs, outd)
    n = b[-1]
    # Batch dimensions of the result (broadcast), rows of a: all folded into m.
    m = _first_numel(outs) // n if len(a) > 1 else 1
    return _gemm(m, k, n, ins, ind, outs, outd)


# ------------------------------------------------------------------------------------------------
# Element-wise, nonlinear, reductions, selection, data movement


def _family(kind: str, flops_per_elem: int = 1) -> Formula:
    def formula(ins, ind, outs, outd):
        elems = _first_numel(outs)
        return Cost(kind, 0, flops_per_elem * elems, _nbytes(ins, ind), _nbytes(outs, outd), 0, 0, 0, elems)

    return formula


_ELTWISE = (
    "add", "sub", "mul", "div", "rsub", "neg", "abs", "maximum", "minimum", "clamp", "clamp_min",
    "clamp_max", "where", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
    "logical_not", "bitwise_and", "bitwise_or", "bitwise_not", "masked_fill", "remainder",
    "floor_divide", "round", "floor", "ceil", "trunc", "sign", "relu", "hardtanh", "pow", "square",
    "reciprocal", "isinf", "isnan", "isfinite", "__and__", "__or__", "__xor__", "__invert__",
    "__lshift__", "__rshift__",
)
cost(*_ELTWISE, *(f"{n}_" for n in _ELTWISE))(_family("eltwise"))
cost("addcmul", "addcmul_", "addcdiv", "addcdiv_", "lerp", "lerp_")(_family("eltwise", 2))


@cost("zero_", "fill_", "fill")
def _fill(ins, ind, outs, outd):
    # Writes every output element; reads only a fill value given as a tensor, if any.
    return Cost("move", 0, 0, _nbytes(ins[1:], ind[1:]), _nbytes(outs, outd), 0, 0, 0, _first_numel(outs))


_NONLINEAR = ("sigmoid", "tanh", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "logaddexp",
              "erf", "gelu", "silu", "softplus", "log_sigmoid_forward", "sin", "cos")
cost(*_NONLINEAR, *(f"{n}_" for n in _NONLINEAR))(_family("nonlinear"))
cost("softmax", "_softmax", "log_softmax", "_log_softmax")(_family("nonlinear", 4))


@cost("sum", "mean", "amax", "amin", "logsumexp", "prod", "any", "all", "norm",
      "linalg_vector_norm", "var", "std", "count_nonzero")
def _reduce(ins, ind, outs, outd):
    return Cost("reduce", 0, _numel(ins[0]), _nbytes(ins, ind), _nbytes(outs, outd), 0, 0, 0,
                _first_numel(outs))


@cost("max", "min")
def _max_min(ins, ind, outs, outd):
    # With a dim: (values, indices); without: a 0-d tensor; both reduce. With two tensor inputs
    # (``max.other``) they are element-wise.
    if len(ins) >= 2:
        elems = _first_numel(outs)
        return Cost("eltwise", 0, elems, _nbytes(ins, ind), _nbytes(outs, outd), 0, 0, 0, elems)
    return _reduce(ins, ind, outs, outd)


@cost("topk", "argmax", "argmin", "kthvalue", "argsort", "nonzero", "unique", "_unique2")
def _select(ins, ind, outs, outd):
    return Cost("select", 0, _numel(ins[0]), _nbytes(ins, ind), _nbytes(outs, outd), 0, 0, 0,
                _first_numel(outs))


@cost("sort")
def _sort(ins, ind, outs, outd):
    x = ins[0]
    n = x[-1] if x else 1
    flops = _numel(x) * max(1, ceil(log2(n))) if n > 1 else _numel(x)
    return Cost("select", 0, flops, _nbytes(ins, ind), _nbytes(outs, outd), 0, 0, 0, _first_numel(outs))


@cost("_local_scalar_dense", "item")
def _item(ins, ind, outs, outd):
    # ``Tensor.item()``: one element read back to the host; the output is a Python number.
    return Cost("move", 0, 0, ITEMSIZE.get(ind[0], 4), 0, 0, 0, 0, 1)


@cost("clone", "_to_copy", "contiguous", "cat", "stack", "reshape_copy", "_reshape_copy",
      "repeat", "expand_copy", "flip", "roll", "tril", "triu", "pad",
      "constant_pad_nd", "masked_select", "cumsum", "cummax")
def _move(ins, ind, outs, outd):
    elems = _first_numel(outs)
    return Cost("move", 0, 0, _nbytes(ins, ind), _nbytes(outs, outd), 0, 0, 0, elems)


@cost("copy_")
def _copy_(ins, ind, outs, outd):
    # Reads the source only; the destination is overwritten.
    return Cost("move", 0, 0, _nbytes(ins[1:], ind[1:]), _nbytes(outs, outd), 0, 0, 0, _first_numel(outs))


@cost("embedding", "index_select", "index", "gather", "take", "take_along_dim")
def _gather(ins, ind, outs, outd):
    # Reads the selected rows (= output bytes at the source dtype) plus the index tensors.
    src_item = ITEMSIZE.get(ind[0], 4)
    elems = _first_numel(outs)
    idx = _nbytes(ins[1:], ind[1:])
    return Cost("move", 0, 0, elems * src_item + idx, _nbytes(outs, outd), 0, 0, 0, elems)


@cost("index_put", "index_put_", "scatter", "scatter_", "index_copy", "index_copy_", "masked_scatter")
def _scatter(ins, ind, outs, outd):
    # Writes the updates into the destination: read updates and indices, write the updated rows.
    upd = _nbytes(ins[1:], ind[1:])
    elems = sum(_numel(s) for s in ins[-1:])
    return Cost("move", 0, 0, upd, elems * ITEMSIZE.get(outd[0], 4), 0, 0, 0, elems)
