"""Numba integer kernels that execute the quantized model bit-exactly.

Public API:

* INT4 packing: :func:`pack_int4`, :func:`unpack_int4` (two nibbles per byte, low first).
* GEMMs ``a (M, K) x w (N, K) -> (M, N)`` with exact INT32 accumulation, accumulator-width
  checks and fused epilogues: :func:`gemm_int8`, :func:`gemm_w4a8`, :func:`gemm_int4`;
  weights can be prepared once with :func:`prepack_weights` / :func:`prepack_weights_int4`.
* Epilogues: :class:`Requant` (integer out, round half to even), :class:`Dequant` (float32 out).
* Zero points (asymmetric operands): :func:`gemm_zp` on :func:`prepare_zp_weights` output,
  exact correction terms (:mod:`.zeropoint`); reference :func:`gemm_zp_ref`.
* Special-function unit: :func:`sfu_sigmoid`, :func:`sfu_tanh`, :class:`SfuLut`.
* Numpy references: :func:`gemm_ref`, :func:`gemm_int4_ref`, :func:`gemm_w4a8_ref`,
  :func:`sfu_lut_ref`.

Path selection: AVX512-VNNI when available, else portable; ``HWSIM_KERNELS=portable`` forces the
portable path (see :func:`kernel_path`).
"""

from hwsim.kernels.epilogue import Dequant, Requant, acc_range
from hwsim.kernels.gemm import (PackedWeights, gemm_int4, gemm_int8, gemm_w4a8, kernel_path,
                                prepack_weights, prepack_weights_int4)
from hwsim.kernels.pack import pack_int4, unpack_int4
from hwsim.kernels.reference import gemm_int4_ref, gemm_ref, gemm_w4a8_ref
from hwsim.kernels.sfu import SfuLut, round_bf16, sfu_lut_ref, sfu_sigmoid, sfu_tanh
from hwsim.kernels.zeropoint import ZeroPointWeights, gemm_zp, gemm_zp_ref, prepare_zp_weights

__all__ = [
    "Dequant", "PackedWeights", "Requant", "SfuLut", "acc_range", "gemm_int4", "gemm_int4_ref",
    "gemm_int8", "gemm_ref", "gemm_w4a8", "gemm_w4a8_ref", "kernel_path", "pack_int4",
    "prepack_weights", "prepack_weights_int4", "round_bf16", "sfu_lut_ref", "sfu_sigmoid",
    "sfu_tanh", "unpack_int4", "ZeroPointWeights", "gemm_zp", "gemm_zp_ref", "prepare_zp_weights",
]
