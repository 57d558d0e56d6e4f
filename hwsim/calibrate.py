"""Measure this CPU and write it as accelerator presets: ``hwsim calibrate --out FILE.yaml``.

A CPU thread is described as a one-core accelerator whose numbers are all measured here, on one
thread (``torch.set_num_threads(1)``; Numba kernels below their threading threshold):

- matrix engine (``matrix.cycle_model: cpu``, ``hwsim.gemm``): per executor and precision, the
  library's GEMM as a call, passes over the weight and the rows' MACs (``fit_cpu_gemm``), fitted
  to GEMMs measured here that are not the validation's: m = 1 ... 64 with a 768 KiB weight in L2
  (``curve.*``) and one large GEMM (``gemm.*``, 256 x 1024 x 1024) for the passes and the rates;
  1 x 256 x 64 (``small.*``) for the call; 64 x 480 x n for n = 16 ... 96 (``ntile.*``) for the
  column granule;
- scratchpad = the L2 of one core (size from sysfs), shared SRAM = the rest of the cache capacity,
  DRAM; the presets treat them as caches (``mapping.residency: cache``). The capacity is
  measured for the reuse each executor makes: a buffer read again and again (the largest read
  size whose bandwidth stays above the geometric mean of the L3 and DRAM plateaus) for the bare
  ops, whose cases reuse one weight back to back; for the torch decode, whose search weights a
  shared L3 keeps far less well (a 1 MiB weight's GEMM ran 2-3x slower inside a decode than
  alone, profiled 2026-12-07), the L3's share of weights reused in turn as a decode's search
  does, with small ops between, as a hit curve over the working set (``cyclic_bench``,
  ``cache_hit_curve``). Each bandwidth from a read stream (``torch.sum`` of
  fp32, what a GEMM does to its weight) at a size that fits that level; copy bandwidths are
  recorded too;
- special-function, vector and select rates from ``tanh``, ``add`` and ``topk`` on in-cache data;
- per-op dispatch overhead of the executor being modelled.

Three executors, three presets from one measurement (they differ in what an op costs to issue,
and the Numba one in its GEMM rates):

``FILE.yaml``
    torch eager as ``models.decode`` runs it: every traced aten op pays the per-op overhead of the
    decode (dispatcher, ``nn.Module`` calls and the search's Python bookkeeping, which is not an op
    of the graph): an overhead per op outside the encoder, another per encoder op (its ops are
    issued by a plain loop, the search's through more Python), and one per hypothesis the search
    expands (its bookkeeping of scores and prefixes, which no traced op carries): the encoder's
    from the encoder of one calibration decode timed alone (``encoder_bench``), the others fitted
    on calibration decodes of ``tiny`` and ``small`` (``CALIB_DECODES``: beams 2 and 4, with and
    without DR fusion, 200 frames, seed 7) as the ones at which the simulator reproduces their
    measured times best (``fit_dispatch``). The validation decodes differ from them in beam
    (greedy and 8), length and input.
``FILE-aten.yaml``
    bare torch ops (one ``F.linear`` / ``torch._int_mm`` call per op): the dispatch of a tiny
    ``torch.add``.
``FILE-numba.yaml``
    the project's Numba integer kernels (``hwsim.kernels``, as ``hwsim funcsim`` calls them): INT8
    and INT4 GEMM rates of ``gemm_int8`` / ``gemm_int4`` with prepacked weights, and the per-call
    overhead of a 1 x 16 x 16 ``gemm_int8``.

Every number is written into the YAML next to the field it sets, with the function call that
measured it, the date and the CPU (``/proc/cpuinfo`` model name and flags). Noise: every item is
the minimum (``stat``; or the median) of ``repeats`` samples taken round-robin over all items,
each sample a loop of calls lasting at least ``min_sample_s`` of the thread's CPU time
(``sample_loop``: time slices taken by other users of a shared machine do not count). What other
users still do to a sample (their traffic in the shared L3 and to DRAM) only ever adds time, and
it comes in bursts that hit a long sample (a 0.3 s decode) more often than a short one: measured
on 2026-12-08 (``benchmarks/bench_interference.py``, ``benchmarks/results/interference.json``) a
``small`` beam-8 DR decode's 25 samples spread 1.8x (2.1x in another run), an L1-resident GEMM's
1.27x, the decode's minimum 0.86 of its median and the GEMM's 0.94. The minimum over rounds is the
machine without them, which is what a preset describes.

API: ``measure(...) -> Calibration``; ``preset_yaml(cal, executor) -> str``; ``write_presets``.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwsim.provenance import utc_stamp
from models.yamlio import UserError

log = logging.getLogger(__name__)

class CalibrationError(UserError):
    """The measurements cannot be turned into a preset (names what was measured and why)."""


EXECUTORS = ("torch", "aten", "numba")
#: Precisions each executor's matrix engine runs (what it has a kernel for).
ENGINE_PRECISIONS = {"torch": ("fp32", "bf16", "int8"), "aten": ("fp32", "bf16", "int8"),
                     "numba": ("int8", "int4")}
#: Preset file suffix per executor (``FILE.yaml``, ``FILE-aten.yaml``, ``FILE-numba.yaml``).
SUFFIX = {"torch": "", "aten": "-aten", "numba": "-numba"}

PEAK_SHAPE = (256, 1024, 1024)          # m, k, n of the peak-rate GEMM
#: Weight (k, n) of the small-m GEMMs per precision: 768 KiB, in a 1 MiB L2.
CURVE_K_N = {"fp32": (256, 768), "bf16": (384, 1024), "int8": (768, 1024), "int4": (1024, 1536)}
CURVE_M = (1, 2, 4, 6, 8, 12, 16, 32, 64)
#: Weight (k, n) of the far GEMMs per precision: 6 MiB, beyond the L2 (where a decode's large
#: weights are), at a few small m: where the passes after the first read the weight from
#: (``CpuGemmSpec.reread``). None of them is a validation shape (``hwsim.validate.K_N``).
FAR_K_N = {"fp32": (1536, 1024), "bf16": (1536, 2048), "int8": (2048, 3072), "int4": (3072, 4096)}
FAR_M = (1, 4, 16)
#: m, k, n of the output-bound GEMM (many outputs, few MACs each): its epilogue per output.
WIDE_SHAPE = (256, 64, 1024)
REREAD_CHOICES = ("home", "near")
SMALL_SHAPE = (1, 256, 64)              # m, k, n of the call-cost GEMM
NTILE_M_K = (64, 480)                   # m, k of the column-granule GEMMs (k: no power-of-two stride)
NTILE_N = (16, 32, 40, 48, 64, 96)
GRANULE_CHOICES = (1, 8, 16, 32, 64)
M_TILE_CHOICES = (0, 4, 6, 8, 16)       # 0: one pass over the weight whatever m
#: Executors whose library has a GEMV path for m = 1 (oneDNN / MKL do; the project's Numba
#: kernels run one row through the same register tile as six).
GEMV_PATH = {"aten": True, "numba": False}
READ_SIZES = (256 << 10, 4 << 20, 8 << 20, 16 << 20, 32 << 20, 256 << 20)
ELTWISE_N = 1 << 16                     # elements of the tanh / add / topk rate items
#: The decodes the torch executor's per-op overhead is fitted on (``fit_dispatch``): beams 2 and 4,
#: 200 frames, seed 7; the validation's decodes (``hwsim.validate.DECODE_CASES``) are greedy and
#: beam 8, of other lengths and inputs.
CALIB_DECODES = tuple({"model": m, "frames": 200, "beam": b, "lm_fusion": f, "seed": 7}
                      for m, b, f in (("tiny", 2, "none"), ("tiny", 4, "none"), ("tiny", 2, "dr"),
                                      ("tiny", 4, "dr"), ("small", 2, "none"), ("small", 4, "none"),
                                      ("small", 4, "dr")))
#: The calibration decode whose encoder is also timed alone (``encoder_bench``): ``tiny``'s GEMMs
#: are negligible, so its encoder's time is its ops' overhead.
ENCODER_DECODE = "tiny-200-b2-none"
#: Working sets (MiB) of the cyclic-reuse probe (``cyclic_bench``), and the small ops after each of
#: its GEMMs: [assumption] the density of a decode's search, where the traced ``small`` beam-8 DR
#: decode runs about 85 ops per step around 5.5 MiB of weight reads (about 16 per MiB).
CYCLIC_MIB = (2, 3, 4, 6, 8, 12, 16, 24, 48)
CYCLIC_OPS = 16


#: How ``round_robin`` reduces a bench's samples (``STATS[stat](samples)``).
STATS: dict[str, Callable[[list[float]], float]] = {"min": min, "median": statistics.median}
DEFAULT_STAT = "min"


@dataclass(frozen=True)
class Item:
    """One measured number.

    Attributes:
        value: the number, in SI units (``unit``).
        unit: ``mac_per_s``, ``bytes_per_s``, ``elems_per_s``, ``s`` or ``bytes``.
        how: the call that measured it (a function of this module with its arguments), or where
            it was read.
    """

    value: float
    unit: str
    how: str


@dataclass
class Calibration:
    """What ``measure`` found: machine facts and measured items by name.

    Item names: ``gemm.<executor>.<precision>`` (MAC/s of the large GEMM),
    ``curve.<executor>.<precision>.m<M>``, ``small.<executor>.<precision>``,
    ``ntile.<executor>.<precision>.n<N>`` (seconds per call), ``read.<bytes>`` / ``copy.<bytes>`` (B/s), ``sfu.<exe>``, ``vector.<exe>``,
    ``select.<exe>`` (elements/s), ``dispatch.aten`` / ``dispatch.numba`` (s per call),
    ``dispatch.torch``, ``dispatch.torch.encoder``, ``hyp.torch`` (s per traced op outside the
    encoder, per encoder op, per hypothesis expanded, fitted on the calibration decodes),
    ``decode.<label>.measured_s`` (``decode_label``), ``cyclic.<MiB>`` (s per call),
    ``l2_bytes``, ``l3_bytes`` (sysfs), ``l3_effective_bytes``,
    ``frequency_hz`` (cpuinfo).
    """

    machine: dict
    date: str
    items: dict[str, Item] = field(default_factory=dict)
    #: Per GEMM executor (aten, numba) and precision: the fitted ``CpuGemmSpec`` fields and the
    #: rows rate ``macs_per_cycle`` (``fit_cpu_gemm``); the torch executor uses aten's.
    gemm: dict[str, dict[str, dict]] = field(default_factory=dict)
    #: How each item reduces its round-robin samples (``STATS``).
    stat: str = DEFAULT_STAT

    def value(self, name: str) -> float:
        return self.items[name].value


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; the platform's processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, val = line.partition(":")
            if key.strip() == "model name":
                return val.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info() -> dict:
    """CPU model name, family and model number (``/proc/cpuinfo``: two machines sold under one
    name, AMD EPYCs of two core generations, differ here), SIMD/matrix flags of
    interest, logical CPUs, torch/numpy versions."""
    model, flags, mhz, family, number = platform.processor() or "unknown", set(), None, None, None
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            key, _, val = line.partition(":")
            key = key.strip()
            if key == "model name" and model in ("unknown", platform.processor()):
                model = val.strip()
            elif key == "flags" and not flags:
                flags = set(val.split())
            elif key == "cpu MHz" and mhz is None:
                mhz = float(val)
            elif key == "cpu family" and family is None:
                family = int(val)
            elif key == "model" and number is None:
                number = int(val)
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")
    import torch

    return {"cpu_model": model, "cpu_family": family, "cpu_model_number": number,
            "flags": [f for f in wanted if f in flags], "cpu_mhz": mhz, "logical_cpus": os.cpu_count(), "torch": torch.__version__,
            "numpy": np.__version__, "platform": platform.platform()}


def machine_name(machine: dict) -> str:
    """``AMD EPYC (family 26, model 2)``: the CPU as ``machine_info`` records it."""
    if machine.get("cpu_family") is None:
        return str(machine.get("cpu_model", "unknown"))
    return f"{machine['cpu_model']} (family {machine['cpu_family']}, model {machine.get('cpu_model_number')})"


def _cache_bytes(index: int) -> int | None:
    path = Path(f"/sys/devices/system/cpu/cpu0/cache/index{index}/size")
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * mult


# ------------------------------------------------------------------------------------------------
# Timing


def sample_loop(fn: Callable[[], object], loops: int) -> float:
    """CPU seconds of the calling thread per call of ``loops`` back-to-back calls of ``fn``.

    Thread CPU time (``time.thread_time``), not wall time: on a shared machine the time slices
    other users take while this thread waits for a core do not count, and the executors modelled
    (torch and Numba on one thread) do all their work on the calling thread. What the other users
    still affect (shared caches, memory bandwidth) is left in, as noise that only adds time
    (the minimum over rounds drops it: module docstring).
    """
    t0 = time.thread_time()
    for _ in range(loops):
        fn()
    return (time.thread_time() - t0) / loops


def round_robin_samples(benches: dict[str, Callable[[], object]], repeats: int, min_sample_s: float,
                        timer: Callable[[Callable[[], object], int], float] = sample_loop) -> dict[str, list[float]]:
    """Seconds per call of each bench, ``repeats`` samples each, taken round-robin (a burst of
    load hits all benches alike).

    Each bench is called once (warm-up), its loop count set so that a sample lasts about
    ``min_sample_s``; then ``repeats`` rounds take one sample of every bench in turn.
    """
    loops = {}
    for name, fn in benches.items():
        fn()
        once = max(timer(fn, 1), 1e-7)
        loops[name] = max(1, int(min_sample_s / once))
    samples: dict[str, list[float]] = {name: [] for name in benches}
    for _ in range(repeats):
        for name, fn in benches.items():
            samples[name].append(timer(fn, loops[name]))
    return samples


def reduce_samples(samples: dict[str, list[float]], stat: str = DEFAULT_STAT) -> dict[str, float]:
    """``STATS[stat]`` of each bench's samples (module docstring: why the minimum by default)."""
    if stat not in STATS:
        raise ValueError(f"unknown sample statistic {stat!r}; known: {', '.join(STATS)}")
    return {name: float(STATS[stat](s)) for name, s in samples.items()}


def round_robin(benches: dict[str, Callable[[], object]], repeats: int, min_sample_s: float,
                timer: Callable[[Callable[[], object], int], float] = sample_loop,
                stat: str = DEFAULT_STAT) -> dict[str, float]:
    """``reduce_samples`` of ``round_robin_samples``: one number per bench."""
    return reduce_samples(round_robin_samples(benches, repeats, min_sample_s, timer), stat)


# ------------------------------------------------------------------------------------------------
# Benchmarks (each returns a zero-argument callable; the arrays are made once)


def gemm_bench(executor: str, precision: str, m: int, k: int, n: int) -> Callable[[], object]:
    """One GEMM ``(m x k) @ (k x n)`` as the executor runs it.

    torch / aten: ``F.linear(x, w)`` (fp32, bf16: ``x (m, k)``, ``w (n, k)``) or
    ``torch._int_mm(x, w)`` (int8, ``w (k, n)``); numba: ``gemm_int8(a, prepack_weights(w))`` or
    ``gemm_int4(pack_int4(a), prepack_weights_int4(pack_int4(w), k), k)``.
    """
    rng = np.random.default_rng(0)
    if executor in ("torch", "aten"):
        import torch
        import torch.nn.functional as F

        if precision in ("fp32", "bf16"):
            dt = torch.float32 if precision == "fp32" else torch.bfloat16
            x = torch.randn(m, k, dtype=dt)
            w = torch.randn(n, k, dtype=dt)
            return lambda: F.linear(x, w)
        if precision == "int8":
            x = torch.randint(-128, 128, (m, k), dtype=torch.int8)
            w = torch.randint(-128, 128, (k, n), dtype=torch.int8)
            return lambda: torch._int_mm(x, w)
    if executor == "numba":
        from hwsim.kernels import gemm_int4, gemm_int8, pack_int4, prepack_weights, prepack_weights_int4

        if precision == "int8":
            a = rng.integers(-128, 128, (m, k), dtype=np.int8)
            pw = prepack_weights(rng.integers(-128, 128, (n, k), dtype=np.int8))
            return lambda: gemm_int8(a, pw)
        if precision == "int4":
            a = pack_int4(rng.integers(-8, 8, (m, k), dtype=np.int8))
            pw = prepack_weights_int4(pack_int4(rng.integers(-8, 8, (n, k), dtype=np.int8)), k)
            return lambda: gemm_int4(a, pw, k)
    raise ValueError(f"no {precision} GEMM for executor {executor!r}")


READ_TOTAL_BYTES = 64 << 20


def read_reps(nbytes: int) -> int:
    """How many times ``read_bench`` reads its buffer per call (at least ``READ_TOTAL_BYTES``)."""
    return max(1, READ_TOTAL_BYTES // nbytes)


def read_bench(nbytes: int) -> Callable[[], object]:
    """``torch.sum`` of an fp32 buffer of ``nbytes`` read ``read_reps(nbytes)`` times in one call
    (a stride-0 ``expand``), so that one op's dispatch does not count against a small buffer."""
    import torch

    x = torch.ones(nbytes // 4)
    xe = x.expand(read_reps(nbytes), x.numel())
    return lambda: xe.sum()


def copy_bench(nbytes: int) -> Callable[[], object]:
    """``np.copyto(y, x)`` of ``nbytes`` (reads and writes ``nbytes`` each)."""
    x = np.ones(nbytes // 8)
    y = np.empty_like(x)
    return lambda: np.copyto(y, x)


def unit_bench(executor: str, unit: str, n: int = ELTWISE_N) -> Callable[[], object]:
    """``tanh`` (sfu), ``add`` (vector) or ``topk(8)`` (select) over ``n`` fp32 elements,
    torch (torch, aten executors) or numpy (numba: the funcsim's float ops are numpy)."""
    if executor == "numba":
        x = np.linspace(-3, 3, n, dtype=np.float32)
        out = np.empty_like(x)
        if unit == "sfu":
            return lambda: np.tanh(x, out=out)
        if unit == "vector":
            return lambda: np.add(x, x, out=out)
        return lambda: np.argpartition(x, -8)[-8:]
    import torch

    x = torch.linspace(-3, 3, n)
    out = torch.empty_like(x)     # out=: a fresh 256 KiB result per call would time page faults
    if unit == "sfu":
        return lambda: torch.tanh(x, out=out)
    if unit == "vector":
        return lambda: torch.add(x, x, out=out)
    return lambda: torch.topk(x, 8)


def tiny_op_bench(executor: str) -> Callable[[], object]:
    """The cheapest op of the executor: ``torch.add`` of 4 elements (aten, called as the GEMM
    cases call ``F.linear``); a 1 x 16 x 16 ``gemm_int8`` with prepacked weights (numba)."""
    if executor == "numba":
        from hwsim.kernels import gemm_int8, prepack_weights

        a = np.ones((1, 16), np.int8)
        pw = prepack_weights(np.ones((16, 16), np.int8))
        return lambda: gemm_int8(a, pw)
    import torch

    a, b = torch.ones(4), torch.ones(4)
    return lambda: torch.add(a, b)


def encoder_bench(system, feats) -> Callable[[], object]:
    """The encoder of ``models.decode`` alone (the same call, under ``torch.inference_mode``)."""
    import torch

    x = torch.as_tensor(feats, dtype=torch.float32).unsqueeze(0)

    def run():
        with torch.inference_mode():
            return system.rnnt.encoder(x)
    return run


def cyclic_bench(mib: int, ops: int = CYCLIC_OPS) -> Callable[[], object]:
    """A decode's reuse of its weights in a cache: ``mib`` distinct fp32 weights of 1 MiB
    (``F.linear`` of 6 x 256 rows with a 1024 x 256 weight, beam-sized), each GEMM followed by
    ``ops`` small element-wise ops on its output, all weights in turn at every call (a search
    step touches its weights in the same order at every step)."""
    import torch
    import torch.nn.functional as F

    ws = [torch.randn(1024, 256) for _ in range(mib)]
    x = torch.randn(6, 256)

    def cycle():
        for w in ws:
            y = F.linear(x, w)
            for _ in range(ops // 2):
                y = torch.sigmoid(y)
                y = y * 0.5
        return y
    return cycle


# ------------------------------------------------------------------------------------------------
# Measurement


def _benches() -> dict[str, tuple[Callable[[], object], str]]:
    """Every micro-benchmark of ``measure``: name -> (callable, the call that builds it)."""
    benches: dict[str, tuple[Callable[[], object], str]] = {}
    m, k, n = PEAK_SHAPE
    for exe in ("aten", "numba"):
        for p in ENGINE_PRECISIONS[exe]:
            benches[f"gemm.{exe}.{p}"] = (gemm_bench(exe, p, m, k, n), f"gemm_bench({exe!r}, {p!r}, {m}, {k}, {n})")
            ck, cn = CURVE_K_N[p]
            for mm in CURVE_M:
                benches[f"curve.{exe}.{p}.m{mm}"] = (gemm_bench(exe, p, mm, ck, cn),
                                                     f"gemm_bench({exe!r}, {p!r}, {mm}, {ck}, {cn})")
            fk, fn = FAR_K_N[p]
            for mm in FAR_M:
                benches[f"far.{exe}.{p}.m{mm}"] = (gemm_bench(exe, p, mm, fk, fn),
                                                   f"gemm_bench({exe!r}, {p!r}, {mm}, {fk}, {fn})")
            wm, wk, wn = WIDE_SHAPE
            benches[f"wide.{exe}.{p}"] = (gemm_bench(exe, p, wm, wk, wn), f"gemm_bench({exe!r}, {p!r}, {wm}, {wk}, {wn})")
            sm, sk, sn = SMALL_SHAPE
            benches[f"small.{exe}.{p}"] = (gemm_bench(exe, p, sm, sk, sn), f"gemm_bench({exe!r}, {p!r}, {sm}, {sk}, {sn})")
            tm, tk = NTILE_M_K
            for tn in NTILE_N:
                benches[f"ntile.{exe}.{p}.n{tn}"] = (gemm_bench(exe, p, tm, tk, tn),
                                                     f"gemm_bench({exe!r}, {p!r}, {tm}, {tk}, {tn})")
        for u in ("sfu", "vector", "select"):
            benches[f"{u}.{exe}"] = (unit_bench(exe, u), f"unit_bench({exe!r}, {u!r}, {ELTWISE_N})")
        benches[f"dispatch.{exe}"] = (tiny_op_bench(exe), f"tiny_op_bench({exe!r})")
    for mib in CYCLIC_MIB:
        benches[f"cyclic.{mib}"] = (cyclic_bench(mib), f"cyclic_bench({mib})")
    for size in READ_SIZES:
        benches[f"read.{size}"] = (read_bench(size), f"read_bench({size})")
    for size in (READ_SIZES[0], READ_SIZES[1], READ_SIZES[-1]):
        benches[f"copy.{size}"] = (copy_bench(size), f"copy_bench({size})")
    return benches


def _work(name: str) -> tuple[float, str]:
    """(work per call, unit) turning seconds per call into a rate (0: keep seconds)."""
    kind, _, rest = name.partition(".")
    if kind == "gemm":
        m, k, n = PEAK_SHAPE
        return float(m * k * n), "mac_per_s"
    if kind == "read":
        return float(int(rest) * read_reps(int(rest))), "bytes_per_s"
    if kind == "copy":
        return 2.0 * float(rest), "bytes_per_s"   # read + write bytes
    if kind in ("sfu", "vector", "select"):
        return float(ELTWISE_N), "elems_per_s"
    return 0.0, "s"


def measure(repeats: int = 5, min_sample_s: float = 0.02, decode: bool = True,
            timer: Callable[[Callable[[], object], int], float] = sample_loop,
            stat: str = DEFAULT_STAT) -> Calibration:
    """Measure this machine on one thread (about half a minute with the defaults).

    Args:
        repeats: samples per item (``stat`` of them kept: ``STATS``).
        min_sample_s: the least duration of one sample.
        decode: also measure the torch decode executor's per-op overhead (``fit_dispatch``).
        timer: ``timer(fn, loops) -> seconds per call`` (tests inject a fake one).
    """
    session = Session(decode)
    log.info("calibrate: %d micro-benchmarks x %d rounds", len(session.benches), repeats)
    seconds = round_robin(session.callables(), repeats, min_sample_s, timer, stat)
    return session.finish(seconds, repeats, stat)


class Session:
    """The benchmarks of one calibration, to be timed (``callables``, possibly in one round-robin
    with other cases: ``hwsim.validate.validate(calibrate_out=...)``), then turned into a
    ``Calibration`` (``finish``)."""

    def __init__(self, decode: bool = True):
        import numba
        import torch

        torch.set_num_threads(1)
        numba.set_num_threads(1)
        self.cal = Calibration(machine_info(), utc_stamp())
        cal = self.cal
        mhz = cal.machine.get("cpu_mhz") or 1000.0
        cal.items["frequency_hz"] = Item(mhz * 1e6, "hz", "'cpu MHz' of /proc/cpuinfo (read, not measured: "
                                         "rates per cycle are measured rates divided by it)")
        for idx, name in ((2, "l2_bytes"), (3, "l3_bytes")):
            size = _cache_bytes(idx)
            if size is not None:
                cal.items[name] = Item(float(size), "bytes", f"/sys/devices/system/cpu/cpu0/cache/index{idx}/size")
        self.benches = _benches()
        self.decodes: dict = {}
        if decode:
            import models

            for c in CALIB_DECODES:
                system, feats, kw, graph, audio_s = decode_graph(c["model"], c["frames"], c["beam"],
                                                                 c["lm_fusion"], c["seed"])
                label = decode_label(c)
                self.decodes[label] = (graph, system, audio_s)
                self.benches[f"decode.{label}"] = ((lambda s=system, f=feats, k=kw: models.decode(s, f, **k)),
                                                   f"models.decode of {c}")
                if label == ENCODER_DECODE:
                    self.benches[f"encoder.{label}"] = (encoder_bench(system, feats),
                                                        f"encoder_bench of the {label} decode's system and features")

    def callables(self) -> dict[str, Callable[[], object]]:
        """Name -> the call to time: every benchmark of the calibration, by item name (the
        decodes as ``decode.<label>``)."""
        return {k: v[0] for k, v in self.benches.items()}

    def finish(self, seconds: dict[str, float], repeats: int, stat: str = DEFAULT_STAT) -> Calibration:
        """The calibration from the measured ``seconds`` per call of every ``callables`` name
        (``stat`` of ``repeats`` round-robin samples each)."""
        cal = self.cal
        cal.stat = stat
        stat_text = {"min": "minimum", "median": "median"}[stat]
        benches = self.benches
        for name in benches:
            sec = seconds[name]
            if name.startswith("decode."):
                cal.items[f"{name}.measured_s"] = Item(sec, "s", f"{benches[name][1]}: {stat_text} of {repeats} "
                                                       "round-robin samples")
                continue
            work, unit = _work(name)
            how = f"hwsim.calibrate.{benches[name][1]}: {stat_text} of {repeats} round-robin samples"
            cal.items[name] = Item(work / sec if work else sec, unit, how)
        cal.items["l3_effective_bytes"] = Item(float(effective_l3(cal)), "bytes",
                                               "largest read_bench size whose bandwidth is above the geometric "
                                               "mean of read_bench(4 MiB) and read_bench(256 MiB)")
        fit_gemms(cal)
        if self.decodes:
            decodes = self.decodes
            cases = [(*decodes[lb], seconds[f"decode.{lb}"]) for lb in decodes]
            enc = ((*decodes[ENCODER_DECODE], seconds[f"encoder.{ENCODER_DECODE}"])
                   if f"encoder.{ENCODER_DECODE}" in seconds else None)
            terms, fits = fit_dispatch(cal, cases, encoder=enc)
            parts = "; ".join(f"{lb}: {meas * 1e3:.1f} ms measured, {f['sim0_s'] * 1e3:.1f} ms + {f['encoder_ops']} "
                              f"encoder ops, {f['other_ops']} other ops, {f['hyps']} hypotheses; predicted / measured "
                              f"{f['predicted_s'] / meas:.2f}"
                              for lb, (*_, meas), f in zip(decodes, cases, fits))
            how = ("hwsim.calibrate.fit_dispatch over the decodes (timed with the others; non-negative least "
                   f"squares, relative; the encoder's per-op overhead from encoder.{ENCODER_DECODE}) {parts}")
            for term, item in (("op", "dispatch.torch"), ("encoder_op", "dispatch.torch.encoder"),
                               ("hyp", "hyp.torch")):
                cal.items[item] = Item(terms[term], "s", how if term == "op" else "fit_dispatch (see dispatch.torch)")
        else:
            cal.items["dispatch.torch"] = cal.items["dispatch.aten"]
        return cal


def decode_label(c: dict) -> str:
    """``tiny-200-b4-dr``: a calibration decode's item label."""
    return f"{c['model']}-{c['frames']}-b{c['beam']}-{c['lm_fusion']}"


def cache_hit_curve(cal: Calibration) -> list[list[float]]:
    """The shared level's hit curve of a decode's cyclic reuse (``mapping.cache_hit_curve``) from
    the ``cyclic.<MiB>`` times per GEMM: the share of a working set's weight bytes served on chip
    is where its time lies between the smallest set's (every weight in the L3) and the largest
    sets' (the median of the three largest: every weight from DRAM), made non-increasing (a
    larger set never hits more, the stack property of LRU). Returns ``[[bytes, share], ...]``."""
    mibs = sorted(int(k.split(".")[1]) for k in cal.items if k.startswith("cyclic."))
    per = [cal.value(f"cyclic.{n}") / n for n in mibs]
    hot, cold = per[0], float(np.median(per[-3:]))
    out, last = [], 1.0
    for n, t in zip(mibs, per):
        share = min(last, float(np.clip((cold - t) / (cold - hot), 0.0, 1.0))) if cold > hot else 0.0
        out.append([float(n << 20), round(share, 4)])
        last = share
    return out


def effective_l3(cal: Calibration) -> int:
    """Largest ``read.<size>`` whose bandwidth is above sqrt(bw(4 MiB) * bw(largest size))."""
    sizes = sorted(int(k.split(".")[1]) for k in cal.items if k.startswith("read."))
    l3, dram = cal.value(f"read.{sizes[1]}"), cal.value(f"read.{sizes[-1]}")
    cut = math.sqrt(l3 * dram)
    keep = [s for s in sizes[1:-1] if cal.value(f"read.{s}") >= cut]
    return max(keep) if keep else sizes[1]


# ------------------------------------------------------------------------------------------------
# Derived model parameters


def level_bandwidths(cal: Calibration) -> dict[str, float]:
    """Bandwidth (B/s) of the scratchpad (L2), shared SRAM (L3) and DRAM as the presets give them."""
    sizes = sorted(int(k.split(".")[1]) for k in cal.items if k.startswith("read."))
    return {"scratchpad": cal.value(f"read.{sizes[0]}"), "shared": cal.value(f"read.{sizes[1]}"),
            "dram": cal.value(f"read.{sizes[-1]}")}


def _l2_bytes(cal: Calibration) -> int:
    if "l2_bytes" in cal.items:
        return int(cal.value("l2_bytes"))
    return min(int(k.split(".")[1]) for k in cal.items if k.startswith("read.")) * 4


def weight_s_per_byte(cal: Calibration, w_bytes: float) -> float:
    """Seconds per byte of one pass over a weight of ``w_bytes`` used again and again, as the
    presets' caches (``mapping.residency: cache``) hold one weight alone: all of it in the L2
    when it fits there, else ``hwsim.plan.shared_share`` of it in the shared level (the hit
    curve's share when ``cyclic.*`` was measured, else all or nothing by ``l3_effective_bytes``)
    and the rest from DRAM."""
    from hwsim.plan import shared_share

    bw = level_bandwidths(cal)
    l2 = _l2_bytes(cal)
    if w_bytes <= l2:
        return 1.0 / bw["scratchpad"]
    h = shared_share(w_bytes, l2, max(cal.value("l3_effective_bytes") - l2, 0.0), _hit_curve(cal))
    return h / bw["shared"] + (1.0 - h) / bw["dram"]


def _hit_curve(cal: Calibration) -> tuple[tuple[float, float], ...] | None:
    """``cache_hit_curve`` as the presets carry it, or None when ``cyclic.*`` was not measured."""
    if not any(k.startswith("cyclic.") for k in cal.items):
        return None
    return tuple((b, h) for b, h in cache_hit_curve(cal))


def _lsq(rows: list[tuple[float, ...]]) -> tuple[list[float], float]:
    """Non-negative least squares of ``y = x @ c`` relative to y, rows (x_1, ..., x_j, y)
    (``_nnls_rel``). Returns (c, sum of squared relative residuals); the residual is infinite
    when the second column, a rate, comes out 0 (the times do not grow with it)."""
    a = np.array(rows, dtype=np.float64)
    x, y = a[:, :-1], a[:, -1]
    c = _nnls_rel(x, y)
    res = (x @ c - y) / np.maximum(np.abs(y), 1e-300)
    return [float(v) for v in c], (float(np.sum(res ** 2)) if c[1] > 0 else math.inf)


def _no_rate(what: str) -> CalibrationError:
    return CalibrationError(f"{what} do not grow with the MACs (least squares gives no positive rate for any "
                            "choice): the timings are not of GEMMs, or noise swamped them")


def fit_gemms(cal: Calibration) -> None:
    """``cal.gemm``: ``fit_cpu_gemm`` of every GEMM executor and precision.

    Raises:
        CalibrationError: a fit fails (named: executor, precision, why).
    """
    for exe in ("aten", "numba"):
        fits = {}
        for p in ENGINE_PRECISIONS[exe]:
            try:
                fits[p] = fit_cpu_gemm(cal, exe, p, kernel_fields(exe))
            except CalibrationError as exc:
                raise CalibrationError(f"the {exe} {p} GEMM model: {exc}") from None
        cal.gemm[exe] = fits


def kernel_fields(executor: str) -> dict:
    """``CpuGemmSpec`` fields known from the code rather than fitted: the project's Numba kernels
    on their VNNI path run a register tile of ``vnni.MR`` rows x ``vnni.NR`` columns over weight
    panels ``NR`` columns wide, and keep a panel's K block in L1 while every row tile reads it
    (``hwsim.kernels.vnni``): ``n_granule``, ``m_tile`` and ``reread: near``. Empty: fit them
    all (``fit_cpu_gemm``)."""
    if executor != "numba":
        return {}
    from hwsim.kernels import kernel_path, vnni

    return {"n_granule": vnni.NR, "m_tile": vnni.MR, "reread": "near"} if kernel_path() == "vnni" else {}


def fit_cpu_gemm(cal: Calibration, executor: str, precision: str, known: dict | None = None) -> dict:
    """``CpuGemmSpec`` fields and the rows rate of one executor's GEMM at one precision.

    From calibrate's own GEMMs (never the validation's), with ``d`` = the executor's dispatch:

    1. ``n_granule``: the choice of ``GRANULE_CHOICES`` whose ``t = c + a * ceil(n/g) * g`` best
       fits the ``ntile.*`` GEMMs (64 x 480 x n), least squares relative to t.
    2. ``call_cycles``: the ``small.*`` GEMM (1 x 256 x 64) less ``d`` and less its own work
       under the fitted model (alternating with 3. until the call settles).
    3. ``weight_passes``, the rows rate, ``out_cycles_per_elem``, ``m_tile`` and ``reread``: for each of
       ``REREAD_CHOICES`` x ``M_TILE_CHOICES``, non-negative least squares of ``t - d - call =
       (weight term of hwsim.gemm, P = passes * ceil(m/m_tile)) + m*k*n_g / rate + m*n*out``,
       linear in passes, 1 / rate and out, over the ``curve.*`` GEMMs (m = 1 ... 64, 768 KiB weight in L2),
       the ``far.*`` GEMMs (m = 1, 4, 16, 6 MiB weight beyond the L2), the ``gemm.*`` GEMM
       (256 x 1024 x 1024) and the ``wide.*`` GEMM (256 x 64 x 1024: many outputs, few MACs;
       with the others it gives ``out_cycles_per_elem``, the third column ``m * n``), m >= 2
       where the library has a GEMV path; the choice with the
       smallest residual wins. The first pass over the weight costs its bytes (n padded to n_g)
       at the bandwidth of its level (``weight_s_per_byte``), the others at that or the L2's
       (``reread``).
    4. GEMV path (``GEMV_PATH``): ``gemv_weight_passes`` and ``gemv_macs_per_cycle`` by
       non-negative least squares over the m = 1 curve and far GEMMs (a GEMV streams its weight
       while it multiplies: a fitted pass count below 1 is the part of the weight's read that
       the MACs do not hide); without the far GEMM, [assumption] one pass and the rest MACs.

    ``known``: fields known from the kernel's code (``kernel_fields``: n_granule, m_tile,
    reread), not fitted.
    """
    known = known or {}
    from models.quant.policy import BITS

    f = cal.value("frequency_hz")
    d = cal.value(f"dispatch.{executor}")
    per = BITS[precision] / 8.0
    tm, tk = NTILE_M_K
    best_g, best_res = GRANULE_CHOICES[0], math.inf
    for g in ((known["n_granule"],) if "n_granule" in known else GRANULE_CHOICES):
        rows = [(1.0, math.ceil(n / g) * g, cal.value(f"ntile.{executor}.{precision}.n{n}")) for n in NTILE_N]
        _, res = _lsq(rows)
        if res < best_res - 1e-12:
            best_g, best_res = g, res
    if not math.isfinite(best_res):
        raise _no_rate("the ntile GEMM times")
    g = best_g
    gemv = GEMV_PATH[executor]
    ck, cn = CURVE_K_N[precision]
    pk, pn = PEAK_SHAPE[1:]

    def ng(n: int) -> int:
        return math.ceil(n / g) * g

    s_l2 = 1.0 / level_bandwidths(cal)["scratchpad"]

    def one_pass(k: int, n: int) -> float:
        return k * ng(n) * per * weight_s_per_byte(cal, k * n * per)

    def again_pass(k: int, n: int, reread: str) -> float:
        """A pass after the first (``hwsim.gemm``: s_again)."""
        home = one_pass(k, n)
        return min(home, k * ng(n) * per * s_l2) if reread == "near" else home

    def passes_s(k: int, n: int, passes: float, reread: str) -> float:
        return min(passes, 1.0) * one_pass(k, n) + max(passes - 1.0, 0.0) * again_pass(k, n, reread)

    points = [(m, ck, cn, cal.value(f"curve.{executor}.{precision}.m{m}")) for m in CURVE_M if m > 1 or not gemv]
    fk, fn = FAR_K_N[precision]
    points += [(m, fk, fn, cal.value(f"far.{executor}.{precision}.m{m}")) for m in FAR_M
               if (m > 1 or not gemv) and f"far.{executor}.{precision}.m{m}" in cal.items]
    points.append((PEAK_SHAPE[0], pk, pn, float(np.prod(PEAK_SHAPE)) / cal.value(f"gemm.{executor}.{precision}")))
    if f"wide.{executor}.{precision}" in cal.items:
        points.append((*WIDE_SHAPE, cal.value(f"wide.{executor}.{precision}")))
    sm, sk, sn = SMALL_SHAPE
    small = cal.value(f"small.{executor}.{precision}")
    call = max(small - d, 0.0)
    for _ in range(50):             # fixed point of (call, fit): converges in a few rounds
        last_call = call
        best = None
        for reread in ((known["reread"],) if "reread" in known else REREAD_CHOICES):
            for mt in ((known["m_tile"],) if "m_tile" in known else M_TILE_CHOICES):
                # weight = first pass + the rest: (one - again) + passes * tiles * again
                rows = [((math.ceil(m / mt) if mt else 1) * again_pass(k, n, reread), m * k * ng(n), m * n,
                         t - d - call - (one_pass(k, n) - again_pass(k, n, reread)))
                        for m, k, n, t in points]
                (a, b, o), res = _lsq(rows)
                if math.isfinite(res) and (best is None or res < best[5] - 1e-12):
                    best = (reread, mt, a, b, o, res)
        if best is None:
            raise _no_rate("the curve, far, wide and large GEMM times")
        reread, mt, passes, s_per_mac, s_per_out, _ = best
        gv_rate, gv_pass = None, None
        if gemv:
            gv_rows = [(one_pass(k, n), k * ng(n), cal.value(name) - d - call - n * s_per_out)
                       for name, k, n in ((f"curve.{executor}.{precision}.m1", ck, cn),
                                          (f"far.{executor}.{precision}.m1", fk, fn)) if name in cal.items]
            (gp, s_gv), res = _lsq(gv_rows) if len(gv_rows) >= 2 else ((1.0, 0.0), math.inf)
            if math.isfinite(res):
                gv_pass, gv_rate = gp, 1.0 / (s_gv * f)
            else:       # [assumption] one pass over the weight, the rest is the GEMV's MACs
                left = gv_rows[0][2] - gv_rows[0][0]
                gv_pass, gv_rate = (1.0, ck * ng(cn) / left / f) if left > 0 else (None, None)
        # the small GEMM's own work under this model, taken out of its time for the call
        if gemv and gv_rate is not None:
            work = gv_pass * one_pass(sk, sn) + sk * ng(sn) / (gv_rate * f) + sn * s_per_out
        else:
            work = (passes_s(sk, sn, passes * (math.ceil(sm / mt) if mt else 1), reread)
                    + sm * sk * ng(sn) * s_per_mac + sm * sn * s_per_out)
        call = max(small - d - work, 0.0)
        if abs(call - last_call) <= 1e-9 * max(small, 1e-12):
            break
    return {"macs_per_cycle": 1.0 / (s_per_mac * f), "call_cycles": call * f, "n_granule": g, "m_tile": mt,
            "weight_passes": passes, "reread": reread, "out_cycles_per_elem": s_per_out * f,
            "gemv_weight_passes": gv_pass if gv_rate is not None else None,
            "gemv_macs_per_cycle": gv_rate}


def spec_dict(cal: Calibration, executor: str, overheads: dict[str, float] | None = None,
              name: str = "host-cpu") -> dict:
    """The preset of ``executor`` as a plain dict (``hwsim.spec.AcceleratorSpec`` fields).

    ``overheads``: the torch executor's ``OVERHEAD_TERMS`` in seconds (default: the measured
    ``dispatch.torch``, ``dispatch.torch.encoder``, ``hyp.torch``); the bare-op executors have
    one dispatch per op, ``dispatch.<executor>``."""
    f = cal.value("frequency_hz")
    src = "numba" if executor == "numba" else "aten"
    fits = cal.gemm.get(src) or {p: fit_cpu_gemm(cal, src, p, kernel_fields(src)) for p in ENGINE_PRECISIONS[src]}
    prec = ENGINE_PRECISIONS[executor]
    rates = {p: fits[p]["macs_per_cycle"] for p in prec}
    cpu = {p: {k: v for k, v in fits[p].items() if k != "macs_per_cycle"} for p in prec}
    if overheads is None:
        overheads = {"op": cal.value(f"dispatch.{executor}")}
        if executor == "torch":
            for term, item in (("encoder_op", "dispatch.torch.encoder"), ("hyp", "hyp.torch")):
                if item in cal.items:
                    overheads[term] = cal.value(item)
    core_overheads = {"dispatch_overhead_cycles": overheads["op"] * f}
    if "encoder_op" in overheads:
        core_overheads["dispatch_by_phase"] = {"encoder": overheads["encoder_op"] * f}
    if "hyp" in overheads:
        core_overheads["hyp_overhead_cycles"] = overheads["hyp"] * f
    bw = level_bandwidths(cal)
    l2 = _l2_bytes(cal)
    l3 = int(cal.value("l3_effective_bytes"))
    float_p = [p for p in ("fp32", "bf16") if p in prec] or ["fp32"]
    return {
        "name": name + SUFFIX[executor],
        "description": (f"{machine_name(cal.machine)}, 1 thread, {EXECUTOR_TEXT[executor]}; "
                        f"measured by hwsim calibrate on {cal.date}"),
        "frequency_hz": f,
        "cores": 1,
        "core": {
            "matrix": {"rows": 1, "cols": 1, "macs_per_pe_per_cycle": rates, "dataflow": "os",
                       "cycle_model": "cpu", "cpu": cpu},
            "sfu": {"elems_per_cycle": {p: cal.value(f"sfu.{src}") / f for p in float_p}},
            "vector": {"elems_per_cycle": {p: cal.value(f"vector.{src}") / f for p in float_p}},
            "select": {"unit": "vector", "elems_per_cycle": cal.value(f"select.{src}") / f},
            "scratchpad_bytes": l2,
            "scratchpad_bw_bytes_per_s": bw["scratchpad"],
            **core_overheads,
            "concurrent_units": False,
        },
        "shared_sram_bytes": max(l3 - l2, 0),
        "shared_bw_bytes_per_s": bw["shared"],
        "dram_bw_bytes_per_s": bw["dram"],
        "dram_latency_s": 0.0,
        "mapping": {"residency": "cache", "prefetch": False, "spatial": False,
                    **({"cache_hit_curve": cache_hit_curve(cal)} if _hit_curve(cal) is not None else {})},
    }


EXECUTOR_TEXT = {"torch": "torch eager as models.decode runs it (per-op overhead of a decode)",
                 "aten": "bare torch ops (per-op overhead of one aten call)",
                 "numba": "hwsim.kernels Numba integer GEMMs (per-call overhead of a kernel call)"}


def _spec(data: dict):
    from hwsim.spec import AcceleratorSpec
    from models.yamlio import from_dict

    return from_dict(AcceleratorSpec, data, source="hwsim.calibrate")


def decode_graph(model: str, frames: int, beam: int, lm_fusion: str, seed: int):
    """(system, features, search kwargs, traced graph, audio seconds) of one decode."""
    import models
    import workloads

    system = models.build_system(model, seed=0)
    feats = models.random_features(system.config, frames, seed=seed)
    kw = {"beam": beam, "lm_fusion": lm_fusion}
    graph, _ = workloads.trace(system, feats, **kw)
    return system, feats, kw, graph, frames * system.config.features.frame_shift_s


#: The torch executor's overhead terms ``fit_dispatch`` fits: per op outside the encoder, per
#: encoder op, per hypothesis the search expands (``hwsim.spec.CoreSpec``: dispatch_overhead_cycles,
#: dispatch_by_phase.encoder, hyp_overhead_cycles).
OVERHEAD_TERMS = ("op", "encoder_op", "hyp")


def _overheads_spec(cal: Calibration, terms: dict[str, float]):
    return _spec(spec_dict(cal, "torch", overheads=terms))


def _nnls_rel(x: np.ndarray, y: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """Non-negative least squares of ``x @ c = y`` relative to ``scale`` (default y), exact for a
    few columns: the best of the unconstrained solutions over every subset of columns whose
    coefficients are all >= 0."""
    w = 1.0 / np.maximum(np.abs(y if scale is None else scale), 1e-300)
    xs, ys = x * w[:, None], y * w
    best, best_res = np.zeros(x.shape[1]), float(np.sum(ys ** 2))
    for mask in range(1, 1 << x.shape[1]):
        cols = [j for j in range(x.shape[1]) if mask >> j & 1]
        sol, *_ = np.linalg.lstsq(xs[:, cols], ys, rcond=None)
        if (sol < 0).any():
            continue
        c = np.zeros(x.shape[1])
        c[cols] = sol
        res = float(np.sum((xs @ c - ys) ** 2))
        if res < best_res - 1e-15 * max(best_res, 1e-300):
            best, best_res = c, res
    return best


def fit_dispatch(cal: Calibration, cases: list[tuple],
                 encoder: tuple | None = None) -> tuple[dict[str, float], list[dict]]:
    """The torch executor's overheads (s; ``OVERHEAD_TERMS``) from measured decodes.

    ``cases``: (graph, system, audio seconds, measured seconds) per decode. On the torch preset
    (one core, one op at a time) the simulated latency is linear in the overheads:
    ``sim0 + other_ops * op + encoder_ops * encoder_op + hyps * hyp``; ``sim0`` and each term's
    slope come from ``hwsim.simulate`` (at zero, and at each term alone), and the terms are
    the non-negative least-squares fit of the measured times (errors relative to them:
    ``_nnls_rel``). ``encoder``: (graph, system, audio seconds, measured seconds of the encoder alone) of one of
    the decodes: ``encoder_op`` is then that measurement less the simulated encoder phase at
    zero overhead, per encoder op, and only ``op`` and ``hyp`` are fitted (the encoder's op count
    hardly varies between decodes of one model, so a joint fit trades it against the others).
    Returns (terms, per case ``{"sim0_s", "other_ops", "encoder_ops", "hyps", "predicted_s"}``, the
    last simulated with the terms).
    """
    from hwsim.simulate import simulate

    def run(graph, system, audio_s, terms: dict[str, float]):
        return simulate(graph, _overheads_spec(cal, terms), "fp32", audio_s,
                        config=getattr(system, "config", None))

    def sim(graph, system, audio_s, terms: dict[str, float]) -> float:
        return run(graph, system, audio_s, terms).latency_s

    probe = 1e-5
    zero = {t: 0.0 for t in OVERHEAD_TERMS}
    rows, base, meas = [], [], []
    for graph, system, audio_s, measured in cases:
        s0 = sim(graph, system, audio_s, zero)
        base.append(s0)
        meas.append(measured)
        rows.append([(sim(graph, system, audio_s, dict(zero, **{t: probe})) - s0) / probe for t in OVERHEAD_TERMS])
    x, y = np.array(rows).reshape(len(cases), len(OVERHEAD_TERMS)), np.array(meas) - np.array(base)
    enc_col = OVERHEAD_TERMS.index("encoder_op")
    if encoder is not None:
        graph, system, audio_s, measured = encoder
        ops = run(graph, system, audio_s, zero).ops
        enc = ops[ops["phase"] == "encoder"]
        d_enc = max((measured - float(enc["latency_s"].sum())) / max(len(enc), 1), 0.0)
        free = [j for j in range(len(OVERHEAD_TERMS)) if j != enc_col]
        coef = np.zeros(len(OVERHEAD_TERMS))
        coef[enc_col] = d_enc
        if len(cases):
            coef[free] = _nnls_rel(x[:, free], y - x[:, enc_col] * d_enc, np.array(meas))
    else:
        coef = _nnls_rel(x, y, np.array(meas)) if len(cases) else np.zeros(len(OVERHEAD_TERMS))
    terms = dict(zip(OVERHEAD_TERMS, (float(c) for c in coef)))
    fits = [{"sim0_s": s0, "other_ops": int(round(r[0])), "encoder_ops": int(round(r[1])), "hyps": int(round(r[2])),
             "predicted_s": sim(g, sy, a, terms)}
            for s0, r, (g, sy, a, _) in zip(base, rows, cases)]
    return terms, fits


# ------------------------------------------------------------------------------------------------
# Writing


def preset_yaml(cal: Calibration, executor: str, name: str = "host-cpu") -> str:
    """The preset of ``executor`` (named ``name`` + its suffix) as YAML text, every measured number
    commented with its source."""
    import yaml

    data = spec_dict(cal, executor, name=name)
    src = "numba" if executor == "numba" else "aten"
    m = cal.machine
    sizes = sorted(int(k.split(".")[1]) for k in cal.items if k.startswith("read."))
    head = [
        f"# Generated by `hwsim calibrate --out FILE.yaml` on {cal.date} (this file: the {executor!r} executor,",
        f"# {EXECUTOR_TEXT[executor]}).",
        f"# Machine: {machine_name(m)}; flags {', '.join(m['flags']) or 'none of interest'}; "
        f"{m['logical_cpus']} logical CPUs; torch {m['torch']}, numpy {m['numpy']}.",
        "# Another machine gets its own presets: run `hwsim calibrate --out FILE.yaml` there (writes FILE.yaml,",
        "# FILE-aten.yaml, FILE-numba.yaml) and check them with `hwsim validate --hw FILE.yaml`.",
        "# One thread is modelled as one core; every rate is measured on one thread (hwsim/calibrate.py says how).",
        "#",
        f"# Measured ({cal.stat}s of round-robin samples; `how` = the hwsim.calibrate call):",
    ]
    for name, it in sorted(cal.items.items()):
        if name.split(".")[0] in ("curve", "far", "wide", "small", "ntile") and name.split(".")[1] != src:
            continue
        if name.split(".")[0] in ("gemm", "sfu", "vector", "select", "dispatch") and name.split(".")[1] not in (src, executor):
            continue
        head.append(item_line(name, it))
    head += [
        "#",
        f"# Derived: matrix.cycle_model cpu (hwsim.gemm) per precision from gemm/curve/far/wide/small/ntile.{src}.<p>",
        "# by hwsim.calibrate.fit_cpu_gemm: n_granule (best fit of the ntile GEMMs), call_cycles (the small GEMM",
        "# less the dispatch and its own work), weight_passes, m_tile, reread, out_cycles_per_elem and the rows",
        "# rate macs_per_pe_per_cycle (least squares over the curve, far, wide and large GEMMs), gemv_macs_per_cycle",
        "# and gemv_weight_passes (least squares over the m = 1 curve and far GEMMs).",
    ]
    known = kernel_fields(src)
    if known:
        head.append("# " + ", ".join(f"{k} {v}" for k, v in known.items()) + ": from the code, not fitted (the VNNI "
                    "kernels' register tile, hwsim.kernels.vnni NR x MR, and a panel's K block kept in L1).")
    head += [
        f"# scratchpad = L2 of one core at read.{sizes[0]}; shared SRAM = l3_effective_bytes - L2",
        f"# at read.{sizes[1]}; DRAM at read.{sizes[-1]}; sfu / vector / select = sfu.{src} / vector.{src} /",
        f"# select.{src} per cycle; dispatch_overhead_cycles = dispatch.{executor} x frequency_hz"
        + ("; dispatch_by_phase.encoder = dispatch.torch.encoder and hyp_overhead_cycles = hyp.torch, x frequency_hz."
           if "dispatch_by_phase" in data["core"] else "."),
        "# mapping.residency cache: L2 and L3 are caches (hwsim.plan: LRU under cyclic reuse, exclusive L3)"
        + ("; cache_hit_curve from cyclic.<MiB> by hwsim.calibrate.cache_hit_curve (the L3's share of a"
           " decode's weights)." if "cache_hit_curve" in data["mapping"] else "."),
        "# [assumption] dram_latency_s 0 (a streaming read hides it). concurrent_units false: one CPU thread",
        "# runs one op at a time.",
        "",
    ]
    return "\n".join(head) + yaml.safe_dump(data, sort_keys=False, width=100)


_ITEM_RE = re.compile(r"^#   ([a-z][\w.-]*) = (\S+) (\w+)  \[(.*)\]$")


def item_line(name: str, it: Item) -> str:
    """A measured item as a preset's header writes it (``recorded_items`` reads it back, to 4
    significant digits)."""
    return f"#   {name} = {it.value:.4g} {it.unit}  [{it.how}]"


def recorded_items(text: str) -> dict[str, Item]:
    """The measured items a preset's header records (``item_line``)."""
    out = {}
    for line in text.splitlines():
        m = _ITEM_RE.match(line)
        if m:
            out[m[1]] = Item(float(m[2]), m[3], m[4])
    return out


def recorded_calibration(hw: str | Path) -> Calibration:
    """The calibration a preset family recorded (the items of ``FILE.yaml`` and its siblings, to 4
    significant digits), refitted with today's code (``fit_gemms``): how a model change moves the
    fit of a machine that is no longer at hand (``benchmarks/bench_refit.py``)."""
    from hwsim.spec import preset_path

    base = preset_path(hw)
    items: dict[str, Item] = {}
    for path in preset_paths(base).values():
        items.update(recorded_items(path.read_text()))
    if not items:
        raise CalibrationError(f"{base}: no measured items in its header (not written by hwsim calibrate)")
    cal = Calibration({"cpu_model": f"recorded in {base.name}"}, "recorded", items)
    fit_gemms(cal)
    return cal


def preset_paths(out: str | Path) -> dict[str, Path]:
    """Where ``write_presets(out)`` writes each executor's preset."""
    out = Path(out)
    return {exe: out.with_name(out.stem + SUFFIX[exe] + out.suffix) for exe in EXECUTORS}


def write_presets(cal: Calibration, out: str | Path) -> dict[str, Path]:
    """Write the three presets (``preset_paths``), each checked by ``hwsim.spec.load_spec`` first."""
    from hwsim.spec import AcceleratorSpec
    from models.yamlio import from_dict, loads_yaml

    paths = preset_paths(out)
    texts = {exe: preset_yaml(cal, exe, name=Path(out).stem) for exe in paths}
    for exe, text in texts.items():
        from_dict(AcceleratorSpec, loads_yaml(text, str(paths[exe])), source=str(paths[exe]))
    from hwsim.outputs import atomic_file

    for exe, path in paths.items():
        with atomic_file(path) as tmp:
            tmp.write_text(texts[exe])
    return paths
