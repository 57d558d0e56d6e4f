"""Nonlinear ops as a special-function unit (SFU) computes them.

Float SFU (``sfu_sigmoid`` / ``sfu_tanh``) at precision p in {"fp32", "fp16", "bf16"}::

    tanh:     y = round_p(fl32(tanh(float64(round_p(x)))))
    sigmoid:  e = fl32(exp(-float64(round_p(x))));  y = round_p(fl32(1 / fl32(1 + e)))

the input is rounded to p; tanh and exp are evaluated in float64 and rounded to float32 (so the
result does not depend on numpy's SIMD float32 ``exp``/``tanh`` of the day); the sigmoid's add and
divide are float32 operations, then the result is rounded to p. Every rounding is
round-to-nearest-even; bf16 keeps the top 16 bits of float32 (NaN stays NaN). Results are returned
as float32 arrays whose values are representable in p.

Why sigmoid is ``1 / (1 + e)`` in float32 and not a correctly rounded sigmoid: that is how a
float32 datapath (and torch's float32 ``sigmoid``, which the fake-quantized model uses) computes
it, and the two differ after rounding to fp16. Evaluated in float64 and rounded twice
(float64 -> fp32 -> fp16) the sigmoid of 6 of the 63,488 finite fp16 inputs (-0.0015, -0.0034,
... : true values just above an fp16 rounding tie that land on the tie in float32) lost one ulp16
against torch; with this formula the fp16 and bf16 results equal ``torch.sigmoid`` /
``torch.tanh`` rounded to fp16 / bf16 for every finite fp16 / bf16 input
(``tests/hwsim/funcsim/test_funcsim_sfu_torch.py``). At fp32 they may differ from torch by one
ulp32 (torch's float32 ``exp`` / ``tanh`` are not correctly rounded).

Integer SFU (:class:`SfuLut`): a quantized activation (INT8 or INT4, any zero point) goes
through a lookup table of 2**in_bits entries, built once with the float SFU::

    lut[x - in_qmin] = clamp(rint(float64(sfu_f(in_scale * (x - in_zero_point), p))
                                  / float64(out_scale)) + out_zero_point, out_qmin, out_qmax)

with ``in_scale * (x - zp)`` computed in float64. :func:`sfu_lut_ref` evaluates the same formula
element by element, without the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwsim.kernels.pack import check_int_range

PRECISIONS = ("fp32", "fp16", "bf16")

def _sigmoid32(x64: np.ndarray) -> np.ndarray:
    """``fl32(1 / fl32(1 + fl32(exp(-x))))`` of float64 inputs: float32 out."""
    e = np.exp(-x64).astype(np.float32)
    return np.float32(1.0) / (np.float32(1.0) + e)


_FUNCS = {"sigmoid": _sigmoid32, "tanh": lambda x: np.tanh(x).astype(np.float32)}


def round_bf16(x: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 (round to nearest even), returned as float32."""
    x = np.asarray(x, np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    out = rounded.view(np.float32)
    return np.where(np.isnan(x), x, out).astype(np.float32)


def round_to(x: np.ndarray, precision: str) -> np.ndarray:
    """Round to ``precision`` ("fp32", "fp16", "bf16"); float32 output."""
    x32 = np.asarray(x, dtype=np.float32)
    if precision == "fp32":
        return x32
    if precision == "fp16":
        return np.asarray(x, dtype=np.float16).astype(np.float32)
    if precision == "bf16":
        return round_bf16(x32)
    raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")


def _sfu(name: str, x: np.ndarray, precision: str) -> np.ndarray:
    xin = round_to(x, precision).astype(np.float64)
    with np.errstate(over="ignore"):
        y = _FUNCS[name](xin)
    return round_to(y, precision)


def sfu_sigmoid(x: np.ndarray, precision: str = "fp32") -> np.ndarray:
    """Sigmoid as the SFU computes it at ``precision`` (see the module docstring).

    Args:
        x: float array, any shape.
        precision: "fp32", "fp16" or "bf16".

    Returns:
        float32 array of x's shape.
    """
    return _sfu("sigmoid", x, precision)


def sfu_tanh(x: np.ndarray, precision: str = "fp32") -> np.ndarray:
    """Tanh as the SFU computes it at ``precision`` (see :func:`sfu_sigmoid`)."""
    return _sfu("tanh", x, precision)


_SFU = {"sigmoid": sfu_sigmoid, "tanh": sfu_tanh}


def _qrange(bits: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def sfu_lut_ref(x: np.ndarray, func: str, *, in_bits: int, in_scale: float,
                out_scale: float, out_bits: int = 8, in_zero_point: int = 0,
                out_zero_point: int = 0, in_signed: bool = True, out_signed: bool = True,
                precision: str = "fp32") -> np.ndarray:
    """Direct (table-free) integer SFU: the formula of the module docstring, per element.

    Returns:
        int64 array of x's shape.
    """
    x = np.asarray(x)
    real = np.float64(in_scale) * (x.astype(np.float64) - in_zero_point)
    y = _SFU[func](real, precision).astype(np.float64)
    qmin, qmax = _qrange(out_bits, out_signed)
    return np.clip(np.rint(y / np.float64(out_scale)) + out_zero_point, qmin, qmax).astype(np.int64)


@dataclass(frozen=True)
class SfuLut:
    """Integer-in, integer-out SFU through a lookup table of 2**in_bits entries.

    Attributes:
        func: "sigmoid" or "tanh".
        in_bits: input bit width (4 or 8 typically; at most 16).
        in_scale: real value of one input step.
        out_scale: real value of one output step.
        out_bits: output bit width.
        in_zero_point, out_zero_point: integer zero points.
        in_signed, out_signed: signed (two's complement) or unsigned ranges.
        precision: float precision of the SFU the table is built with.
        table: the table (built on construction), indexed by ``x - in_qmin``.
    """

    func: str
    in_bits: int
    in_scale: float
    out_scale: float
    out_bits: int = 8
    in_zero_point: int = 0
    out_zero_point: int = 0
    in_signed: bool = True
    out_signed: bool = True
    precision: str = "fp32"
    table: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        if self.func not in _SFU:
            raise ValueError(f"func: expected one of {sorted(_SFU)}, got {self.func!r}")
        if not 1 <= self.in_bits <= 16:
            raise ValueError(f"in_bits: must be within 1..16, got {self.in_bits}")
        lo, hi = _qrange(self.in_bits, self.in_signed)
        xs = np.arange(lo, hi + 1, dtype=np.int64)
        q = sfu_lut_ref(xs, self.func, in_bits=self.in_bits, in_scale=self.in_scale,
                        out_scale=self.out_scale, out_bits=self.out_bits,
                        in_zero_point=self.in_zero_point, out_zero_point=self.out_zero_point,
                        in_signed=self.in_signed, out_signed=self.out_signed,
                        precision=self.precision)
        dtype = np.int8 if self.out_bits <= 8 and self.out_signed else (
            np.uint8 if self.out_bits <= 8 else np.int32)
        object.__setattr__(self, "table", q.astype(dtype))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Look up integer inputs (any shape, values in the input range); output of table dtype."""
        x = np.asarray(x)
        lo, hi = _qrange(self.in_bits, self.in_signed)
        check_int_range(x, lo, hi, "x")
        return self.table[x.astype(np.int64) - lo]
