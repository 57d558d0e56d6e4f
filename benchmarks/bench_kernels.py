"""Benchmark the hwsim integer GEMM kernels against numpy, torch and the VNNI peak.

Run:  OMP_WAIT_POLICY=passive NUMBA_CACHE_DIR=.cache/numba \\
      python benchmarks/bench_kernels.py [--out benchmarks/results/latest/kernels.json] [--threads 1 2]

All numbers are medians of ``--repeats`` timed samples taken in this run; each sample loops a call
until it lasts at least ``--min-sample-s``. GOPS = 2 * M * N * K / s. Columns:

* ``int8 GOPS``: gemm_int8 with prepacked weights (weights are static in inference).
* ``int8 raw-w GOPS``: gemm_int8 given raw (N, K) weights, i.e. including the per-call repack
  (or, for M < 16 in auto mode, the portable kernel).
* ``int4 GOPS``: gemm_int4 (W4A4, both packed; A unpacked per call) with prepacked weights.
  On the VNNI path the prepacked INT4 weights stay two per byte (expanded in registers), so
  they move half the weight bytes of INT8; at M = 1 this column is the memory-bound GEMV.
* VNNI calls below 2**22 MACs (here M = 1) run the kernel on one thread whatever ``--threads``
  says (waking the thread team costs more than the work).
* ``portable GOPS``: gemm_int8 forced to the portable path.
* ``numpy GOPS``: ``a32 @ w32.T`` on int32 copies of the int8 inputs (numpy has no BLAS for
  integers). Big shapes are timed on a slice of rows of W and scaled (noted in ``numpy note``).
* ``torch._int_mm GOPS`` (int8 x int8 -> int32; "n/a" when it rejects the shape) and
  ``torch fp32 GOPS`` (``F.linear``), with ``torch.set_num_threads`` = threads.
* ``VNNI peak GOPS`` / ``% VNNI peak``: the peak measured here by 24 independent ``vpdpbusd``
  chains per thread, re-measured next to each shape (the machine may be shared).
* ``requant overhead %``: gemm_int8 with a per-channel Requant epilogue (int8 out, int32 bias)
  vs raw int32 output, as the median ratio of interleaved samples.

Second table, raw vs prepacked INT4 weights, for RNN-T weight shapes (K, N) at M = 1, 16, 64:
``gemm_w4a8`` / ``gemm_int4`` given the packed (N, ceil(K/2)) weights as stored (re-prepared
every call) vs :func:`prepack_weights_int4` output. ``raw / prepacked`` is the median ratio of
interleaved samples (its worst case per M is printed and stored too); ``convert ms`` is the
per-call conversion alone (VNNI: nibble panels; portable: the int8 unpack).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numba
import numpy as np

from hwsim.kernels import Requant, gemm_int4, gemm_int8, gemm_w4a8, kernel_path, pack_int4
from hwsim.kernels import prepack_weights, prepack_weights_int4, vnni
from hwsim.kernels.pack import unpack_int4_weights
from _timing import results_path

SHAPES = [(1, 1280, 2560), (16, 1536, 4096), (64, 2048, 8192), (300, 640, 2560), (1024, 1024, 1024)]
# (K, N, layer): encoder LSTM input (2 x 640 bidirectional) and recurrent weights, source LM
RAW_INT4_SHAPES = [(1280, 2560, "encoder W_ih"), (640, 2560, "encoder W_hh"),
                   (512, 2048, "source LM W_hh")]
RAW_INT4_M = (1, 16, 64)
NUMPY_MAX_OPS = 3e8  # above this, numpy is timed on a slice of W's rows and scaled


def median_time_s(fn, repeats: int, min_sample_s: float) -> float:
    """Median seconds per call over ``repeats`` samples of >= ``min_sample_s`` each."""
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    loops = max(1, int(min_sample_s / once))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        samples.append((time.perf_counter() - t0) / loops)
    return float(np.median(samples))


def paired_ratio(fn_a, fn_b, repeats: int, min_sample_s: float) -> float:
    """Median over interleaved samples of time(fn_b) / time(fn_a): shared-machine noise hits
    both sides of each pair alike."""
    fn_a(), fn_b()
    t0 = time.perf_counter()
    fn_a()
    loops = max(1, int(min_sample_s / max(time.perf_counter() - t0, 1e-7)))
    ratios = []
    for _ in range(repeats):
        times = []
        for fn in (fn_a, fn_b):
            t0 = time.perf_counter()
            for _ in range(loops):
                fn()
            times.append(time.perf_counter() - t0)
        ratios.append(times[1] / times[0])
    return float(np.median(ratios))


@numba.njit(parallel=True, cache=True)
def _peak_parallel(n_iter, n_threads):
    total = 0
    for t in numba.prange(n_threads):
        total += vnni.vnni_peak_loop(n_iter, t + 1)
    return total


def vnni_peak_gops(threads: int, repeats: int) -> float | None:
    """Measured int8 VNNI peak: 24 independent vpdpbusd chains on each of ``threads`` threads."""
    if not vnni.vnni_available():
        return None
    n_iter = 2_000_000
    dt = median_time_s(lambda: _peak_parallel(n_iter, threads), repeats, 0.0)
    return vnni.OPS_PER_PEAK_ITER * n_iter * threads / dt / 1e9


def bench_shape(m: int, k: int, n: int, torch, repeats: int, min_sample_s: float) -> dict:
    rng = np.random.default_rng(0)
    ops = 2.0 * m * n * k
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    w = rng.integers(-128, 128, (n, k), dtype=np.int8)
    a4, w4 = rng.integers(-8, 8, (m, k), dtype=np.int8), rng.integers(-8, 8, (n, k), dtype=np.int8)
    a4p, w4p = pack_int4(a4), pack_int4(w4)
    pw, pw4 = prepack_weights(w), prepack_weights_int4(w4p, k)
    rq = Requant(scale=(rng.random(n) * 1e-4).astype(np.float32), bits=8,
                 bias=rng.integers(-1000, 1000, n))
    row = {"M": m, "K": k, "N": n}

    def gops(fn):
        return ops / median_time_s(fn, repeats, min_sample_s) / 1e9

    row["int8 GOPS"] = gops(lambda: gemm_int8(a, pw))
    row["requant overhead %"] = 100.0 * (paired_ratio(
        lambda: gemm_int8(a, pw), lambda: gemm_int8(a, pw, requant=rq), repeats,
        min_sample_s) - 1.0)
    row["int8 raw-w GOPS"] = gops(lambda: gemm_int8(a, w))
    row["int4 GOPS"] = gops(lambda: gemm_int4(a4p, pw4, k))
    row["portable GOPS"] = gops(lambda: gemm_int8(a, pw, path="portable"))

    a32, w32 = a.astype(np.int32), w.astype(np.int32)
    n_np = n if ops <= NUMPY_MAX_OPS else max(1, int(n * NUMPY_MAX_OPS / ops))
    w32s = np.ascontiguousarray(w32[:n_np])
    t_np = median_time_s(lambda: a32 @ w32s.T, max(1, repeats // 2), 0.0) * n / n_np
    row["numpy GOPS"] = ops / t_np / 1e9
    row["numpy note"] = "" if n_np == n else f"timed on N={n_np} of {n}, scaled"
    row["x numpy"] = row["int8 GOPS"] / row["numpy GOPS"]

    ta, tw_kn = torch.from_numpy(a), torch.from_numpy(w).t().contiguous()
    try:
        row["torch._int_mm GOPS"] = gops(lambda: torch._int_mm(ta, tw_kn))
        ref = torch._int_mm(ta, tw_kn).numpy()
        assert np.array_equal(ref, gemm_int8(a, pw)), "torch._int_mm disagrees with gemm_int8"
    except RuntimeError as err:
        row["torch._int_mm GOPS"] = None
        row["torch._int_mm note"] = str(err).splitlines()[0][:80]
    fa, fw = torch.from_numpy(a.astype(np.float32)), torch.from_numpy(w.astype(np.float32))
    row["torch fp32 GOPS"] = gops(lambda: torch.nn.functional.linear(fa, fw))
    return row


def bench_raw_int4(k: int, n: int, repeats: int, min_sample_s: float) -> tuple[float, list[dict]]:
    """Conversion time (ms) and raw vs prepacked INT4 weight rows at each M of RAW_INT4_M."""
    rng = np.random.default_rng(0)
    wp = pack_int4(rng.integers(-8, 8, (n, k), dtype=np.int8))
    pw = prepack_weights_int4(wp, k)
    convert = (lambda: vnni.nibble_panels(wp, k)) if pw.panels is not None else (
        lambda: unpack_int4_weights(wp, k))
    convert_ms = 1e3 * median_time_s(convert, repeats, min_sample_s)
    rows = []
    for m in RAW_INT4_M:
        a = rng.integers(-128, 128, (m, k), dtype=np.int8)
        a4p = pack_int4(rng.integers(-8, 8, (m, k), dtype=np.int8))
        for kernel, call in (("gemm_w4a8", lambda w: gemm_w4a8(a, w)),
                             ("gemm_int4", lambda w: gemm_int4(a4p, w, k))):
            assert np.array_equal(call(wp), call(pw)), f"{kernel}: raw and prepacked disagree"
            rows.append({
                "kernel": kernel, "M": m, "K": k, "N": n,
                "prepacked ms": 1e3 * median_time_s(lambda: call(pw), repeats, min_sample_s),
                "raw ms": 1e3 * median_time_s(lambda: call(wp), repeats, min_sample_s),
                "raw / prepacked": paired_ratio(lambda: call(pw), lambda: call(wp), repeats,
                                                min_sample_s)})
    return convert_ms, rows


def fmt(x, digits=1):
    if x is None:
        return "n/a"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


COLUMNS = ["threads", "M", "K", "N", "int8 GOPS", "VNNI peak GOPS", "% VNNI peak", "int8 raw-w GOPS", "int4 GOPS",
           "portable GOPS", "numpy GOPS", "x numpy", "torch._int_mm GOPS", "x torch._int_mm",
           "torch fp32 GOPS", "requant overhead %"]
RAW_COLUMNS = ["threads", "layer", "K", "N", "convert ms", "kernel", "M", "prepacked ms", "raw ms",
               "raw / prepacked"]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=results_path("kernels"))
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-sample-s", type=float, default=0.05)
    args = parser.parse_args(argv)

    import torch

    rows, peaks = [], {}
    for threads in args.threads:
        numba.set_num_threads(threads)
        torch.set_num_threads(threads)
        peaks[threads] = []
        for m, k, n in SHAPES:
            # The peak is re-measured next to each shape, so both see the same machine load.
            peak = vnni_peak_gops(threads, args.repeats)
            peaks[threads].append(peak)
            row = {"threads": threads, **bench_shape(m, k, n, torch, args.repeats,
                                                     args.min_sample_s)}
            row["VNNI peak GOPS"] = peak
            row["% VNNI peak"] = None if peak is None else 100.0 * row["int8 GOPS"] / peak
            tm = row["torch._int_mm GOPS"]
            row["x torch._int_mm"] = None if tm is None else row["int8 GOPS"] / tm
            rows.append(row)
    raw_rows = []
    for threads in args.threads:
        numba.set_num_threads(threads)
        for k, n, layer in RAW_INT4_SHAPES:
            convert_ms, shape_rows = bench_raw_int4(k, n, args.repeats, args.min_sample_s)
            raw_rows += [{"threads": threads, "layer": layer, "convert ms": convert_ms, **r}
                         for r in shape_rows]

    print(f"kernel path: {kernel_path()}; CPU: {platform.processor() or platform.machine()}; "
          f"numba {numba.__version__}, numpy {np.__version__}, torch {torch.__version__}")
    for threads, ps in peaks.items():
        print(f"measured VNNI peak, {threads} thread(s), per shape: "
              + ", ".join(fmt(p) for p in ps) + " GOPS")
    print()
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(fmt(row.get(c), 2 if c.startswith("x ") else 1)
                                for c in COLUMNS) + " |")
    notes = [f"{r['M']}x{r['K']}x{r['N']} t{r['threads']}: {r[key]}" for r in rows
             for key in ("numpy note", "torch._int_mm note") if r.get(key)]
    if notes:
        print("\nnotes:\n" + "\n".join(notes))
    print("\nraw (re-prepared every call) vs prepacked INT4 weights:\n")
    print("| " + " | ".join(RAW_COLUMNS) + " |")
    print("|" + "---|" * len(RAW_COLUMNS))
    for row in raw_rows:
        print("| " + " | ".join(fmt(row[c], 2 if c == "raw / prepacked" else 3)
                                for c in RAW_COLUMNS) + " |")
    worst = {m: max(r["raw / prepacked"] for r in raw_rows if r["M"] == m) for m in RAW_INT4_M}
    print("\nworst raw / prepacked: " + ", ".join(f"M={m}: {x:.2f}" for m, x in worst.items()))
    result = {"kernel_path": kernel_path(), "vnni_peak_gops": peaks, "rows": rows,
              "raw_int4_rows": raw_rows, "raw_int4_worst_ratio": worst,
              "numba": numba.__version__, "numpy": np.__version__, "torch": torch.__version__}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
