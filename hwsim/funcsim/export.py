"""Preparing a ``models.quant.qexport`` file (``.npz`` + JSON manifest) for integer execution,
with numpy alone (the file is opened and checked by ``models.quant.exportfile.read_export``).

The integer execution needs, per module: the weight codes (unpacked once to int8 and prepared
for the kernels; the packed INT4 bytes are what is stored), one float32 scale per output row
(expanded from per-tensor / per-gate / per-channel groups), float biases, and the parameters of
every activation quantizer slot (``q_input``, ``q_hidden``, ...) from the manifest.

Asymmetric quantizers (zero points) run on ``hwsim.kernels.gemm_zp``; integer cell state, gate
signals, pre-activations and outputs (the ``int4-naive`` policy) are quantizer slots like the
others (:meth:`Export.stage`). Quantizers the functional simulation does not execute raise
``NotImplementedError`` naming the tensor or slot: float GEMM weights or inputs, packed zero
points, bf16-stored scales.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.quant.exportfile import read_export
from models.yamlio import UserError

from hwsim.kernels import (PackedWeights, ZeroPointWeights, prepack_weights, prepack_weights_int4,
                           unpack_int4)

_FLOAT_LAYOUTS = ("float32", "float16", "bfloat16", "float8_e4m3")
#: float precisions the cell / gate / output roles may have (the SFU and vector-unit precisions).
FLOAT_PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class ActQuant:
    """One activation quantizer slot.

    Attributes:
        module, slot: where it sits (``rnnt.encoder.layers.0.fwd``, ``q_input``).
        precision: ``int4``, ``int8``, ``fp16``, ``fp32``, ...
        scale: float32 step (integer slots; 1.0 for float slots).
        zero_point, qmin, qmax: integer grid (0, 0, 0 for float slots).
    """

    module: str
    slot: str
    precision: str
    scale: np.float32 = np.float32(1.0)
    zero_point: int = 0
    qmin: int = 0
    qmax: int = 0

    @property
    def is_int(self) -> bool:
        return self.precision.startswith("int")

    @property
    def bits(self) -> int:
        return int(self.precision[3:]) if self.is_int else 0

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Float values -> int8 codes: ``rint(clamp(fl32(fl32(x / scale) + zp), qmin, qmax))``.

        The fake quantizer's formula and order (``models.quant.quantizers``): IEEE float32
        division (not a reciprocal multiply), the zero point added in float32 before rounding
        (``rint(v) + zp`` differs at ties when zp is odd), so the codes are the torch model's
        codes bit for bit.
        """
        v = np.asarray(x, np.float32) / self.scale + np.float32(self.zero_point)
        return np.rint(np.clip(v, self.qmin, self.qmax)).astype(np.int8)

    def dequantize(self, codes: np.ndarray) -> np.ndarray:
        """Codes -> float32 values ``fl32(fl32(code - zp) * scale)``."""
        return (np.asarray(codes, np.float32) - np.float32(self.zero_point)) * self.scale

    def fake(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(codes, their float32 values) of float values: the fake quantizer's output."""
        codes = self.quantize(x)
        return codes, self.dequantize(codes)

    def lut_from(self, src: "ActQuant") -> np.ndarray:
        """Code-to-code requantization table from ``src``'s grid to this one.

        ``table[c - src.qmin]`` is the code this quantizer gives the value that ``src``'s code
        ``c`` stands for: exactly what the torch model computes when one quantizer's output
        feeds the next, done by a 16- or 256-entry table instead of float arithmetic.
        """
        codes = np.arange(src.qmin, src.qmax + 1)
        return self.quantize(src.dequantize(codes))


@dataclass(frozen=True)
class IntWeight:
    """An integer weight matrix ready for the kernels.

    Attributes:
        name: parameter name.
        codes: int8 (N, K) codes (unpacked from the stored INT4 bytes for INT4).
        packed: the :class:`hwsim.kernels.PackedWeights` the GEMMs use.
        row_scale: float32 (N,) scale of each output row.
        bits: 4 or 8.
        zero_point: int64 (N,) zero point of each row (zeros for symmetric quantizers).
    """

    name: str
    codes: np.ndarray
    packed: PackedWeights
    row_scale: np.ndarray
    bits: int
    zero_point: np.ndarray | None = None

    @property
    def zp_weights(self) -> ZeroPointWeights:
        """The same packed codes with zero points and row sums, for ``gemm_zp``."""
        zp = np.zeros(self.codes.shape[0], np.int64) if self.zero_point is None else self.zero_point
        cached = self.__dict__.get("_zp")
        if cached is None:
            cached = ZeroPointWeights(self.packed, self.bits, zp, self.codes.astype(np.int64).sum(axis=1))
            object.__setattr__(self, "_zp", cached)
        return cached

    @property
    def asymmetric(self) -> bool:
        return self.zero_point is not None and bool(np.any(self.zero_point))

    def with_codes(self, codes: np.ndarray) -> "IntWeight":
        """A copy holding other codes (same scales and zero points), prepared for the kernels."""
        codes = np.ascontiguousarray(codes, np.int8)
        return IntWeight(self.name, codes, prepack_weights(codes), self.row_scale, self.bits, self.zero_point)


class Export:
    """An opened export: the manifest and its arrays.

    Attributes:
        path: the file. manifest: the JSON manifest (dict). config: the model config dict.
        arrays: name -> numpy array.
    """

    def __init__(self, path: str | Path) -> None:
        ex = read_export(path)  # checks the file, its manifest and its arrays (UserError)
        self.path, self.arrays, self.manifest = ex.path, ex.arrays, ex.manifest
        self.config = self.manifest["config"]
        self.policy_name = self.manifest["policy"].get("name", "?")
        self.tensors = {t["name"]: t for t in self.manifest["tensors"]}
        self.acts = {(a["module"], a["slot"]): a for a in self.manifest["activations"]}
        scale_precision = self.manifest["policy"].get("scale_precision", "fp32")
        if scale_precision == "bf16":
            raise NotImplementedError(f"{self.path}: bf16-stored scales are not supported by funcsim")

    def _entry(self, name: str) -> dict:
        try:
            return self.tensors[name]
        except KeyError:
            raise UserError(f"{self.path}: no tensor {name!r} in the export") from None

    def weight(self, name: str) -> IntWeight:
        """The integer weight ``name`` (N, K) with one float32 scale per row.

        Raises:
            NotImplementedError: float weights, or packed zero points.
        """
        e = self._entry(name)
        if e["layout"] not in ("int8", "int4x2"):
            raise NotImplementedError(f"{name}: weight layout {e['layout']!r} ({e['precision']}); funcsim "
                                      "runs integer GEMMs with int4 / int8 weights only")
        n, k = e["shape"]
        zero_point = None
        if f"{name}:zero_point" in self.arrays:
            if self.manifest["policy"].get("zero_point_bits", 8) < 8:
                raise NotImplementedError(f"{name}: packed zero points are not supported by funcsim")
            zp = self.arrays[f"{name}:zero_point"].astype(np.int64).reshape(-1)
            zero_point = np.repeat(zp, n // zp.size)
        data = self.arrays[f"{name}:data"]
        if e["layout"] == "int4x2":
            codes, packed, bits = unpack_int4(data, k), prepack_weights_int4(data, k), 4
        else:
            codes, bits = np.ascontiguousarray(data.astype(np.int8)), 8
            packed = prepack_weights(codes)
        scale = self.arrays[f"{name}:scale"].astype(np.float32).reshape(-1)
        return IntWeight(name, codes, packed, np.repeat(scale, n // scale.size), bits, zero_point)

    def float_param(self, name: str) -> np.ndarray:
        """A parameter's float32 value: stored floats, or dequantized integer codes
        ``fl32(fl32(code - zp) * scale)`` per row (integer biases / embeddings)."""
        e = self._entry(name)
        data = self.arrays[f"{name}:data"]
        layout, shape = e["layout"], tuple(e["shape"])
        if layout in ("float32", "float16"):
            return data.astype(np.float32).reshape(shape)
        if layout in _FLOAT_LAYOUTS:
            raise NotImplementedError(f"{name}: {layout} parameters are not supported by funcsim")
        k = shape[-1] if shape else 1
        codes = (unpack_int4(data, k) if layout == "int4x2" else data.astype(np.int8)).reshape(shape)
        scale = self.arrays[f"{name}:scale"].astype(np.float32).reshape(-1)
        zp = np.zeros(scale.size, np.float32)
        if f"{name}:zero_point" in self.arrays:
            if self.manifest["policy"].get("zero_point_bits", 8) < 8:
                raise NotImplementedError(f"{name}: packed zero points are not supported by funcsim")
            zp = self.arrays[f"{name}:zero_point"].astype(np.float32).reshape(-1)
        rows = shape[0] if shape else 1
        rep = rows // scale.size
        s = np.repeat(scale, rep).reshape((rows,) + (1,) * (len(shape) - 1))
        z = np.repeat(zp, rep).reshape(s.shape)
        return ((codes.astype(np.float32) - z) * s).reshape(shape)

    def act(self, module: str, slot: str) -> ActQuant:
        """The activation quantizer of ``module``'s ``slot``."""
        try:
            a = self.acts[(module, slot)]
        except KeyError:
            raise UserError(f"{self.path}: no activation slot {module}.{slot} in the export") from None
        if not a["precision"].startswith("int"):
            return ActQuant(module, slot, a["precision"])
        return ActQuant(module, slot, a["precision"], np.float32(a["scale"]), int(a["zero_point"]),
                        int(a["qmin"]), int(a["qmax"]))

    def int_act(self, module: str, slot: str) -> ActQuant:
        """An activation slot that feeds a GEMM: must be an integer quantizer (any zero point)."""
        q = self.act(module, slot)
        a = self.acts[(module, slot)]
        if not q.is_int:
            raise NotImplementedError(f"{module}.{slot}: {q.precision} GEMM input ({a['role']}); funcsim "
                                      "runs integer GEMMs only")
        return q

    def stage(self, module: str, slot: str) -> str | ActQuant:
        """A slot between the GEMMs (pre-activations, gates, cell state, outputs): its float
        precision (:meth:`float_act`), or the ``ActQuant`` of an integer quantizer."""
        q = self.act(module, slot)
        return q if q.is_int else self.float_act(module, slot)

    def float_act(self, module: str, slot: str) -> str:
        """The precision of a float slot (cell state, gate signals, outputs)."""
        q = self.act(module, slot)
        if q.precision not in FLOAT_PRECISIONS:
            a = self.acts[(module, slot)]
            raise NotImplementedError(f"{module}.{slot}: role {a['role']!r} at {q.precision} "
                                      f"({a['quantizer']}) is not supported by funcsim (it executes "
                                      f"this role in {', '.join(FLOAT_PRECISIONS)} only)")
        return q.precision
