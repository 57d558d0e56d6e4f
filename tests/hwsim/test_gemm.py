"""GEMM cycles in the SCALE-Sim-compatible mode (``cycle_model: scalesim``) and ``hwsim gemm``.

The expected values do not come from ``hwsim.gemm``. They come from:

- two cycle counts measured with SCALE-Sim 3.0 itself (32 x 32 array, default setting, compute
  cycles without memory stalls; numbers given in the project's tracker, issue 13):
  output-stationary (M, K, N) = (16, 1536, 4096) -> 204,543 cycles, weight-stationary
  (1, 1280, 2560) -> 303,999 cycles;
- a cycle-by-cycle simulation of a systolic array, written here, that follows SCALE-Sim's schedule
  (scalesim/compute/systolic_compute_{os,ws}.py and memory/double_buffered_scratchpad_mem.py):
  the GEMM is cut into folds of the array's size (ragged folds padded to the full array); folds
  run one after another; operands enter skewed (row r and column c of the array one cycle later
  per index); a ws fold first loads its weights, one array row per cycle; the count SCALE-Sim
  reports is the index, from 0, of the cycle of the last MAC. The simulation really multiplies,
  and checks its product against numpy, so the schedule it times is one that computes the GEMM;
- a fold-by-fold counter (a loop over folds) using the per-fold lengths that simulation gives,
  for shapes too big to simulate cycle by cycle.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import cost_gemm, load_spec
from hwsim.cli import main
from models.yamlio import ConfigError
from hwsim_testgraphs import TINY_HW

# ---------------------------------------------------------------- independent reference


def systolic_os(a: np.ndarray, b: np.ndarray, R: int, C: int) -> tuple[np.ndarray, int]:
    """Output-stationary R x C array, cycle by cycle: (a @ b, index of the last MAC's cycle).

    Fold (i, j) holds outputs rows i*R.., cols j*C..; row r receives a[row, t] at fold cycle
    t + r from the left, column c receives b[t, col] at fold cycle t + c from the top; operands
    move one PE per cycle (right, down); padded rows/columns carry zeros.
    """
    m, k = a.shape
    n = b.shape[1]
    out = np.zeros((m, n))
    t0 = 0          # first cycle of the current fold
    last = -1
    for i in range(0, m, R):
        for j in range(0, n, C):
            A = np.zeros((R, k))
            A[: min(R, m - i)] = a[i:i + R]
            B = np.zeros((k, C))
            B[:, : min(C, n - j)] = b[:, j:j + C]
            a_reg = np.full((R, C), np.nan)
            b_reg = np.full((R, C), np.nan)
            acc = np.zeros((R, C))
            t = 0
            while True:
                a_reg[:, 1:] = a_reg[:, :-1].copy()
                b_reg[1:, :] = b_reg[:-1, :].copy()
                for r in range(R):
                    a_reg[r, 0] = A[r, t - r] if 0 <= t - r < k else np.nan
                for c in range(C):
                    b_reg[0, c] = B[t - c, c] if 0 <= t - c < k else np.nan
                busy = ~np.isnan(a_reg) & ~np.isnan(b_reg)
                if not busy.any() and t > 0:
                    break
                acc[busy] += a_reg[busy] * b_reg[busy]
                if busy.any():
                    last = t0 + t
                t += 1
            out[i:i + R, j:j + C] = acc[: min(R, m - i), : min(C, n - j)]
            t0 = last + 1
    return out, last


def systolic_ws(a: np.ndarray, w: np.ndarray, R: int, C: int) -> tuple[np.ndarray, int]:
    """Weight-stationary R x C array, cycle by cycle: (a @ w, index of the last MAC's cycle).

    Fold (i, j) holds weights w[i*R.., j*C..]: loading them takes R cycles (one row per cycle);
    then input row q of a enters array row r at fold cycle R + q + r and moves right one PE per
    cycle; partial sums move down one PE per cycle and leave the bottom row; padded PEs hold 0.
    """
    m, k = a.shape
    n = w.shape[1]
    out = np.zeros((m, n))
    t0 = 0
    last = -1
    for i in range(0, k, R):
        for j in range(0, n, C):
            W = np.zeros((R, C))
            W[: min(R, k - i), : min(C, n - j)] = w[i:i + R, j:j + C]
            A = np.zeros((m, R))
            A[:, : min(R, k - i)] = a[:, i:i + R]
            x_reg = np.full((R, C), np.nan)
            q_reg = np.full((R, C), -1)            # which input row each x belongs to
            psum = np.zeros((R, C))
            t = R                                   # cycles 0 .. R-1 load the weights
            while True:
                x_reg[:, 1:] = x_reg[:, :-1].copy()
                q_reg[:, 1:] = q_reg[:, :-1].copy()
                for r in range(R):
                    q = t - R - r
                    x_reg[r, 0], q_reg[r, 0] = (A[q, r], q) if 0 <= q < m else (np.nan, -1)
                busy = ~np.isnan(x_reg)
                if not busy.any() and t > R:
                    break
                new = np.zeros((R, C))
                new[1:] = psum[:-1]
                new[busy] += x_reg[busy] * W[busy]
                psum = new
                for c in range(min(C, n - j)):      # bottom row: a finished output
                    if busy[R - 1, c]:
                        out[q_reg[R - 1, c], j + c] += psum[R - 1, c]
                if busy.any():
                    last = t0 + t
                t += 1
            t0 = last + 1
    return out[:, :n], last


def folds_os(m: int, k: int, n: int, R: int, C: int) -> int:
    """SCALE-Sim's count, fold by fold: each fold lasts until its last MAC (cycle k-1 + R-1 + C-1)."""
    total = 0
    for _ in range(math.ceil(m / R)):
        for _ in range(math.ceil(n / C)):
            total += (k - 1) + (R - 1) + (C - 1) + 1
    return total - 1


def folds_ws(m: int, k: int, n: int, R: int, C: int) -> int:
    """Same for ws: R cycles of weight load, then the last MAC at R + (m-1) + (R-1) + (C-1)."""
    total = 0
    for _ in range(math.ceil(k / R)):
        for _ in range(math.ceil(n / C)):
            total += R + (m - 1) + (R - 1) + (C - 1) + 1
    return total - 1


def _array(preset: str, R: int, C: int):
    return load_spec(preset).replace_path("core.matrix.rows", R).replace_path("core.matrix.cols", C)


def _cycles(hw, m, k, n, precision="int8"):
    return float(cost_gemm(hw, m, k, n, precision).cycles)


def _engine(hw, m, k, n, precision="int8"):
    """Engine cycles only: on a 1 x 1 array a GEMM can take 0 engine cycles (SCALE-Sim: index 0),
    where the presets' finite (1e30 B/s) bandwidths leave ~1e-20 memory cycles in ``cycles``."""
    c = cost_gemm(hw, m, k, n, precision)
    engine = float(c.compute + c.fill_drain + c.preload)
    assert float(c.cycles) == max(engine, float(c.sram), float(c.dram))
    return engine


# ---------------------------------------------------------------- the reference itself


@pytest.mark.parametrize("R, C", [(1, 1), (2, 3), (3, 2), (4, 4)])
@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (5, 3, 7), (4, 9, 2), (7, 1, 5)])
def test_cycle_level_reference_computes_the_gemm_and_matches_the_fold_counter(R, C, m, k, n):
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a, b = rng.integers(-3, 4, (m, k)).astype(float), rng.integers(-3, 4, (k, n)).astype(float)
    out, last = systolic_os(a, b, R, C)
    np.testing.assert_array_equal(out, a @ b)
    assert last == folds_os(m, k, n, R, C)
    out, last = systolic_ws(a, b, R, C)
    np.testing.assert_array_equal(out, a @ b)
    assert last == folds_ws(m, k, n, R, C)


def test_fold_counter_reproduces_the_scalesim_measurements():
    assert folds_os(16, 1536, 4096, 32, 32) == 204_543
    assert folds_ws(1, 1280, 2560, 32, 32) == 303_999


# ---------------------------------------------------------------- hwsim against the reference


def test_scalesim_presets_give_the_measured_cycles():
    os_, ws = load_spec("scalesim-os"), load_spec("scalesim-ws")
    c = cost_gemm(os_, 16, 1536, 4096, "int8")
    assert float(c.cycles) == 204_543
    assert float(c.latency_s) == pytest.approx(204_543e-9, rel=1e-12)   # 1 GHz [assumption]
    # split: 128 folds x 1536 compute; fill/drain 128 x (32 + 32 - 2) - 1; no preload
    assert (float(c.compute), float(c.fill_drain), float(c.preload)) == (196_608, 7_935, 0)
    c = cost_gemm(ws, 1, 1280, 2560, "int8")
    assert float(c.cycles) == 303_999
    # 3200 folds x m = 1 compute, 3200 x 32 weight preload, 3200 x 62 - 1 fill/drain
    assert (float(c.compute), float(c.preload), float(c.fill_drain)) == (3_200, 102_400, 198_399)


def test_the_same_arrays_with_hwsim_per_tile_timing():
    # hwsim's own model: fill/drain rows + cols = 64 per tile, ws preload rows = 32 per tile.
    # os: 128 tiles x (1536 + 64) = 204,800; ws: 3200 tiles x (1 + 32 + 64) = 310,400.
    os_ = load_spec("scalesim-os").replace_path("core.matrix.cycle_model", "hwsim")
    ws = load_spec("scalesim-ws").replace_path("core.matrix.cycle_model", "hwsim")
    assert _cycles(os_, 16, 1536, 4096) == 204_800
    assert _cycles(ws, 1, 1280, 2560) == 310_400


@pytest.mark.parametrize("preset, m, k, n, expected", [
    # os 32 x 32: one fold of k + 62 cycles, minus 1
    ("scalesim-os", 1, 1, 1, 62),
    ("scalesim-os", 32, 32, 32, 93),
    ("scalesim-os", 33, 1, 1, 2 * 63 - 1),          # a ragged fold costs a full one
    ("scalesim-os", 1, 1, 33, 2 * 63 - 1),
    ("scalesim-os", 1, 1000, 1, 1061),               # k is streamed, never folded
    # ws 32 x 32: one fold of m + 2*32 + 32 - 2 cycles, minus 1
    ("scalesim-ws", 1, 1, 1, 94),
    ("scalesim-ws", 1000, 1, 1, 1093),               # m is streamed, never folded
    ("scalesim-ws", 5, 64, 33, 4 * 99 - 1),          # 2 x 2 folds
    ("scalesim-ws", 5, 33, 1, 2 * 99 - 1),
])
def test_hand_derived_cycles(preset, m, k, n, expected):
    assert _cycles(load_spec(preset), m, k, n) == expected


@pytest.mark.parametrize("preset", ["scalesim-os", "scalesim-ws"])
@pytest.mark.parametrize("R, C", [(1, 1), (2, 3), (3, 2), (4, 4)])
@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (5, 3, 7), (4, 9, 2), (7, 1, 5)])
def test_small_arrays_match_the_cycle_level_reference(preset, R, C, m, k, n):
    a, b = np.ones((m, k)), np.ones((k, n))
    _, last = (systolic_os if preset == "scalesim-os" else systolic_ws)(a, b, R, C)
    assert _engine(_array(preset, R, C), m, k, n) == last


@settings(max_examples=150, deadline=None)
@given(m=st.integers(1, 3000), k=st.integers(1, 3000), n=st.integers(1, 3000),
       R=st.sampled_from([1, 2, 7, 32]), C=st.sampled_from([1, 3, 16, 32]))
def test_property_cycles_equal_scalesim_fold_counter(m, k, n, R, C):
    if math.ceil(m / R) * math.ceil(n / C) <= 20_000:
        assert _engine(_array("scalesim-os", R, C), m, k, n) == folds_os(m, k, n, R, C)
    if math.ceil(k / R) * math.ceil(n / C) <= 20_000:
        assert _engine(_array("scalesim-ws", R, C), m, k, n) == folds_ws(m, k, n, R, C)


def test_vectorized_over_shapes():
    hw = load_spec("scalesim-os")
    m, k, n = np.array([16, 1, 33]), np.array([1536, 1, 1]), np.array([4096, 1, 1])
    assert cost_gemm(hw, m, k, n, "int8").cycles.tolist() == [204_543, 62, 125]


def test_lanes_per_pe_extend_the_scalesim_schedule():
    # Not a SCALE-Sim setting (it has 1 MAC per PE per cycle): with L = 2 lanes a PE consumes 2
    # values of k per cycle (os: k -> ceil(k/2)) and a ws fold holds 2 x 32 values of k.
    os2 = load_spec("scalesim-os").replace_path("core.matrix.macs_per_pe_per_cycle.int8", 2)
    assert _cycles(os2, 1, 64, 1) == 32 + 62 - 1
    assert _cycles(os2, 1, 65, 1) == 33 + 62 - 1
    ws2 = load_spec("scalesim-ws").replace_path("core.matrix.macs_per_pe_per_cycle.int8", 2)
    assert _cycles(ws2, 1, 64, 1) == 94
    assert _cycles(ws2, 1, 65, 1) == 2 * 95 - 1


def test_other_precisions_fall_back_to_int8():
    hw = load_spec("scalesim-os")
    assert hw.engine_precision("int4") == "int8" and hw.engine_precision("fp16") == "int8"
    assert _cycles(hw, 16, 1536, 4096, "int4") == 204_543


def test_unknown_precision_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown precision 'int3'"):
        cost_gemm(load_spec("scalesim-os"), 1, 1, 1, "int3")


def test_zero_byte_scratchpad_still_costs_gemms():
    hw = load_spec(TINY_HW).replace_path("core.scratchpad_bytes", 0)
    # tiny: 4 x 4 os, fp16 1 lane, fill/drain 8 per tile, dispatch 10: (5, 8, 6) -> 4 tiles,
    # compute 32 + fill 32 = 64 engine; scratchpad (40 + 30) x 2 B / 10 B/ns = 14 -> 74 cycles.
    assert float(cost_gemm(hw, 5, 8, 6, "fp16", w_bits=0).cycles) == 74


# ---------------------------------------------------------------- hwsim gemm


def test_gemm_command_json(capsys):
    assert main(["gemm", "--hw", "scalesim-os", "--m", "16", "--k", "1536", "--n", "4096",
                 "--precision", "int8", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["cycles"] == 204_543 and r["latency_s"] == pytest.approx(204_543e-9, rel=1e-12)
    assert (r["compute_cycles"], r["fill_drain_cycles"], r["preload_cycles"]) == (196_608, 7_935, 0)
    assert r["dispatch_cycles"] == 0 and r["bound_by"] == "engine"
    # utilization: 16*1536*4096 MACs / (204,543 cycles x 1024 MAC slots)
    assert r["utilization"] == pytest.approx(16 * 1536 * 4096 / (204_543 * 1024))
    assert main(["gemm", "--hw", "scalesim-ws", "--m", "1", "--k", "1280", "--n", "2560",
                 "--precision", "int8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cycles"] == 303_999


def test_gemm_command_text(capsys):
    assert main(["gemm", "--hw", "scalesim-ws", "--m", "1", "--k", "1280", "--n", "2560",
                 "--precision", "int4"]) == 0
    out = capsys.readouterr().out
    assert "(runs at int8)" in out
    lines = dict(line.split(None, 1) for line in out.splitlines()[1:])
    assert lines["cycles"].strip() == "303999" and lines["preload_cycles"].strip() == "102400"


@pytest.mark.parametrize("argv, message", [
    (["--m", "0"], "argument --m: must be >= 1, got 0"),
    (["--k", "-4"], "argument --k: must be >= 1, got -4"),
    (["--n", "2.5"], "argument --n: expected an integer"),
    (["--precision", "int3"], "argument --precision: invalid choice: 'int3'"),
])
def test_gemm_command_bad_input_is_one_line_exit_2(capsys, argv, message):
    base = {"--hw": "scalesim-os", "--m": "1", "--k": "1", "--n": "1", "--precision": "int8"}
    base.update(dict(zip(argv[::2], argv[1::2])))
    with pytest.raises(SystemExit) as exit_:
        main(["gemm", *[x for kv in base.items() for x in kv]])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err


def test_gemm_command_unknown_preset_exit_2(capsys):
    assert main(["gemm", "--hw", "nope", "--m", "1", "--k", "1", "--n", "1", "--precision", "int8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown hardware preset" in err[0]
