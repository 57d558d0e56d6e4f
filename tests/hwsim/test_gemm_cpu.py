"""``matrix.cycle_model: cpu``: a CPU thread's GEMM library as a call, passes over the weight and
the rows' MACs (``hwsim.gemm.cpu_gemm_cycles``), through the simulator and ``hwsim gemm``, and
its calibration (``hwsim.calibrate.fit_cpu_gemm``) recovering known parameters.

Expected values are written out from the closed form in ``hwsim.gemm``'s docstring with the
numbers of the spec below, not taken from a run.
"""

from __future__ import annotations

import math

import pytest

from hwsim import cost_gemm, simulate
from hwsim import calibrate as cal_mod
from hwsim.calibrate import Calibration, Item, fit_cpu_gemm, spec_dict
from hwsim.spec import AcceleratorSpec
from hwsim.validate import gemm_graph, predict_gemm, uniform_policy
from models.yamlio import ConfigError, from_dict

F = 1.0e9
L2_BW, L3_BW, DRAM_BW = 100e9, 50e9, 10e9


def cpu_spec(residency: str = "plan", **fp32) -> AcceleratorSpec:
    cpu = {"call_cycles": 1000.0, "n_granule": 16, "m_tile": 0, "weight_passes": 3.0,
           "gemv_weight_passes": 1.0, "gemv_macs_per_cycle": 4.0}
    cpu.update(fp32)
    data = {"name": "cpu-test", "frequency_hz": F, "cores": 1,
            "core": {"matrix": {"rows": 1, "cols": 1, "macs_per_pe_per_cycle": {"fp32": 16.0, "int8": 64.0},
                                "cycle_model": "cpu",
                                "cpu": {"fp32": cpu, "int8": {"n_granule": 64, "m_tile": 6, "weight_passes": 1.0}}},
                     "sfu": {"elems_per_cycle": {"fp32": 1.0}}, "vector": {"elems_per_cycle": {"fp32": 8.0}},
                     "select": {"unit": "vector", "elems_per_cycle": 1.0},
                     "scratchpad_bytes": 1 << 20, "scratchpad_bw_bytes_per_s": L2_BW,
                     "dispatch_overhead_cycles": 500.0},
            "shared_sram_bytes": 8 << 20, "shared_bw_bytes_per_s": L3_BW, "dram_bw_bytes_per_s": DRAM_BW,
            "mapping": {"residency": residency, "prefetch": False, "spatial": False}}
    return from_dict(AcceleratorSpec, data, source="test")


def test_closed_form_gemv_and_rows():
    hw = cpu_spec()
    # m = 8, k = 100, n = 40 (n_g = 48), fp32 weight 16 kB resident: passes 3 at the L2 bandwidth
    c = cost_gemm(hw, 8, 100, 40, "fp32", weight_resident=True)
    w_bytes = 100 * 40 * 4
    assert float(c.compute) == pytest.approx(8 * 100 * 48 / 16.0)
    assert float(c.fill_drain) == 1000.0                            # the call
    assert float(c.preload) == pytest.approx(3.0 * w_bytes * 48 / 40 / L2_BW * F)
    assert float(c.cycles) == pytest.approx(8 * 100 * 48 / 16.0 + 1000 + 3 * w_bytes * 1.2 / L2_BW * F + 500)
    # m = 1: the GEMV path, one pass, its own rate
    g = cost_gemm(hw, 1, 100, 40, "fp32", weight_resident=True)
    assert float(g.compute) == pytest.approx(100 * 48 / 4.0)
    assert float(g.preload) == pytest.approx(1.0 * w_bytes * 1.2 / L2_BW * F)
    # int8: m_tile 6 -> ceil(13 / 6) = 3 passes over a 64-column panel
    i = cost_gemm(hw, 13, 64, 100, "int8", weight_resident=True)
    assert float(i.preload) == pytest.approx(3 * 64 * 128 / L2_BW * F)
    assert float(i.compute) == pytest.approx(13 * 64 * 128 / 64.0)


def test_weight_passes_take_the_bandwidth_of_the_level_that_holds_the_weight():
    """Four uses of one weight (the last is timed). The plan keeps what fits: 0.5 MiB in the
    scratchpad; of 4 MiB, 1 MiB in the scratchpad and 3 MiB in the shared SRAM; of 16 MiB, 1 MiB
    and 8 MiB, the rest from DRAM at every use. Each part is read at its level's bandwidth."""
    hw = cpu_spec(gemv_weight_passes=None, gemv_macs_per_cycle=None, call_cycles=0.0)
    mib = 1 << 20
    for (k, n), parts in (((256, 512), (0.5 * mib, 0, 0)), ((1024, 1024), (mib, 3 * mib, 0)),
                          ((2048, 2048), (mib, 8 * mib, 7 * mib))):
        res = simulate(gemm_graph(4, k, n), hw, uniform_policy("fp32"), audio_s=1.0)
        last = float(res.ops["latency_s"].iloc[-1])
        one_pass = parts[0] / L2_BW + parts[1] / L3_BW + parts[2] / DRAM_BW
        expect = (500 + 4 * k * n / 16.0) / F + 3.0 * one_pass
        assert last == pytest.approx(expect, rel=1e-9), (k, n)


def test_caches_hold_a_weight_whole_at_one_level_as_calibrate_assumes():
    """``mapping.residency: cache``: the weight goes whole to the smallest level that holds it:
    0.5 MiB to the 1 MiB L2; 2 MiB and 8 MiB to the shared level (1 + 8 MiB of capacity in all);
    16 MiB streams from DRAM. calibrate's ``weight_s_per_byte`` prices a pass the same way."""
    hw = cpu_spec("cache", gemv_weight_passes=None, gemv_macs_per_cycle=None, call_cycles=0.0)
    cal = _calibration()
    mib = 1 << 20
    cal.items["l3_effective_bytes"] = Item(9 * mib, "bytes", "sweep")
    for (k, n), bw in (((256, 512), L2_BW), ((512, 1024), L3_BW), ((1024, 2048), L3_BW), ((2048, 2048), DRAM_BW)):
        res = simulate(gemm_graph(4, k, n), hw, uniform_policy("fp32"), audio_s=1.0)
        last = float(res.ops["latency_s"].iloc[-1])
        expect = (500 + 4 * k * n / 16.0) / F + 3.0 * 4 * k * n / bw
        assert last == pytest.approx(expect, rel=1e-9), (k, n)
        assert cal_mod.weight_s_per_byte(cal, 4 * k * n) == 1.0 / bw


def test_cpu_model_demands_a_one_by_one_array_and_an_entry_per_precision():
    base = cpu_spec().to_dict()
    bad = dict(base, core=dict(base["core"], matrix=dict(base["core"]["matrix"], rows=8)))
    with pytest.raises(ConfigError, match="1 x 1"):
        from_dict(AcceleratorSpec, bad, source="x.yaml")
    cpu = dict(base["core"]["matrix"]["cpu"])
    cpu.pop("int8")
    bad = dict(base, core=dict(base["core"], matrix=dict(base["core"]["matrix"], cpu=cpu)))
    with pytest.raises(ConfigError, match="missing: int8"):
        from_dict(AcceleratorSpec, bad, source="x.yaml")
    bad = dict(base, core=dict(base["core"], matrix=dict(base["core"]["matrix"], cycle_model="hwsim")))
    with pytest.raises(ConfigError, match="only with cycle_model: cpu"):
        from_dict(AcceleratorSpec, bad, source="x.yaml")


# ------------------------------------------------------------------------------- calibration


def _times_from_model(cal: Calibration, exe: str, p: str, *, call_s, passes, rate, gv_rate, g, mt, d,
                      reread="home", out_s=0.0, gv_passes=1.0):
    """Every GEMM ``fit_cpu_gemm`` reads, timed with the closed form (no noise)."""
    from models.quant.policy import BITS

    per = BITS[p] / 8

    def t(m, k, n):
        n_g = math.ceil(n / g) * g
        home = k * n_g * per * cal_mod.weight_s_per_byte(cal, k * n * per)
        again = min(home, k * n_g * per / L2_BW) if reread == "near" else home
        if m == 1 and gv_rate is not None:
            return d + call_s + gv_passes * home + k * n_g / (gv_rate * F) + n * out_s
        p_all = (math.ceil(m / mt) if mt else 1) * passes
        weight = min(p_all, 1.0) * home + max(p_all - 1.0, 0.0) * again
        return d + call_s + weight + m * k * n_g / (rate * F) + m * n * out_s

    ck, cn = cal_mod.CURVE_K_N[p]
    for m in cal_mod.CURVE_M:
        cal.items[f"curve.{exe}.{p}.m{m}"] = Item(t(m, ck, cn), "s", "model")
    fk, fn = cal_mod.FAR_K_N[p]
    for m in cal_mod.FAR_M:
        cal.items[f"far.{exe}.{p}.m{m}"] = Item(t(m, fk, fn), "s", "model")
    cal.items[f"wide.{exe}.{p}"] = Item(t(*cal_mod.WIDE_SHAPE), "s", "model")
    cal.items[f"small.{exe}.{p}"] = Item(t(*cal_mod.SMALL_SHAPE), "s", "model")
    tm, tk = cal_mod.NTILE_M_K
    for n in cal_mod.NTILE_N:
        cal.items[f"ntile.{exe}.{p}.n{n}"] = Item(t(tm, tk, n), "s", "model")
    m, k, n = cal_mod.PEAK_SHAPE
    cal.items[f"gemm.{exe}.{p}"] = Item(m * k * n / t(m, k, n), "mac_per_s", "model")


def _calibration() -> Calibration:
    cal = Calibration(machine={"cpu_model": "Test CPU", "flags": [], "logical_cpus": 2, "torch": "x",
                               "numpy": "y"}, date="2026-01-02 03:04 UTC")
    it = cal.items
    it["frequency_hz"] = Item(F, "hz", "cpuinfo")
    it["l2_bytes"] = Item(1 << 20, "bytes", "sysfs")
    it["l3_effective_bytes"] = Item(16 << 20, "bytes", "sweep")
    it["read.262144"] = Item(L2_BW, "bytes_per_s", "read")
    it["read.4194304"] = Item(L3_BW, "bytes_per_s", "read")
    it["read.268435456"] = Item(DRAM_BW, "bytes_per_s", "read")
    it["dispatch.aten"] = Item(2e-6, "s", "tiny")
    it["dispatch.numba"] = Item(5e-6, "s", "tiny")
    return cal


def test_fit_recovers_a_library_with_a_gemv_path():
    cal = _calibration()
    _times_from_model(cal, "aten", "fp32", call_s=3e-6, passes=2.5, rate=20.0, gv_rate=6.0, g=16, mt=0, d=2e-6)
    fit = fit_cpu_gemm(cal, "aten", "fp32")
    assert fit["n_granule"] == 16 and fit["m_tile"] == 0
    assert fit["macs_per_cycle"] == pytest.approx(20.0, rel=1e-6)
    assert fit["weight_passes"] == pytest.approx(2.5, rel=1e-6)
    assert fit["call_cycles"] == pytest.approx(3e-6 * F, rel=1e-6)
    assert fit["gemv_macs_per_cycle"] == pytest.approx(6.0, rel=1e-6)
    assert fit["gemv_weight_passes"] == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("reread", ["home", "near"])
def test_fit_recovers_where_the_weight_is_read_again_and_the_epilogue(reread):
    """A library that re-reads its weight from the core's cache (or from where it lives), with an
    epilogue per output and a GEMV that hides part of its weight read: every field recovered
    from calibrate's own GEMMs (the far ones tell the two re-read levels apart)."""
    cal = _calibration()
    _times_from_model(cal, "aten", "fp32", call_s=3e-6, passes=2.5, rate=20.0, gv_rate=6.0, g=16, mt=4, d=2e-6,
                      reread=reread, out_s=2e-9, gv_passes=0.4)
    fit = fit_cpu_gemm(cal, "aten", "fp32")
    assert (fit["reread"], fit["n_granule"], fit["m_tile"]) == (reread, 16, 4)
    assert fit["macs_per_cycle"] == pytest.approx(20.0, rel=1e-6)
    assert fit["weight_passes"] == pytest.approx(2.5, rel=1e-6)
    assert fit["out_cycles_per_elem"] == pytest.approx(2e-9 * F, rel=1e-6)
    assert fit["call_cycles"] == pytest.approx(3e-6 * F, rel=1e-6)
    assert fit["gemv_macs_per_cycle"] == pytest.approx(6.0, rel=1e-6)
    assert fit["gemv_weight_passes"] == pytest.approx(0.4, rel=1e-6)
    # the preset written from it prices the far GEMMs (weight beyond the L2) as they were timed
    for p in ("bf16", "int8"):
        _times_from_model(cal, "aten", p, call_s=3e-6, passes=2.5, rate=40.0, gv_rate=6.0, g=16, mt=4, d=2e-6,
                          reread=reread, out_s=2e-9, gv_passes=0.4)
    for u in ("sfu", "vector", "select"):
        cal.items[f"{u}.aten"] = Item(1e9, "elems_per_s", "x")
    hw = cal_mod._spec(spec_dict(cal, "aten"))
    fk, fn = cal_mod.FAR_K_N["fp32"]
    assert fk * fn * 4 > cal.value("l2_bytes")
    for m in cal_mod.FAR_M:
        assert predict_gemm(hw, m, fk, fn, "fp32") == pytest.approx(cal.value(f"far.aten.fp32.m{m}"), rel=1e-6), m


def test_near_rereads_and_the_epilogue_in_the_closed_form():
    """``reread: near``: of P = ceil(m / m_tile) * passes, the first pass reads the weight where it
    lives (16 MiB: DRAM under cache residency), the other P - 1 the L2; ``out_cycles_per_elem``
    adds m * n cycles to the compute."""
    hw = cpu_spec("cache", gemv_weight_passes=None, gemv_macs_per_cycle=None, call_cycles=0.0, m_tile=4,
                  reread="near", out_cycles_per_elem=2.0)
    k = n = 2048
    res = simulate(gemm_graph(6, k, n), hw, uniform_policy("fp32"), audio_s=1.0)
    last = float(res.ops["latency_s"].iloc[-1])
    w = 4 * k * n
    passes = 2 * 3.0                                   # ceil(6 / 4) tiles x 3 passes
    expect = (500 + 6 * k * n / 16.0 + 6 * n * 2.0) / F + w / DRAM_BW + (passes - 1) * w / L2_BW
    assert last == pytest.approx(expect, rel=1e-9)
    hw_home = cpu_spec("cache", gemv_weight_passes=None, gemv_macs_per_cycle=None, call_cycles=0.0, m_tile=4,
                       reread="home", out_cycles_per_elem=2.0)
    home = simulate(gemm_graph(6, k, n), hw_home, uniform_policy("fp32"), audio_s=1.0)
    assert float(home.ops["latency_s"].iloc[-1]) == pytest.approx(
        (500 + 6 * k * n / 16.0 + 6 * n * 2.0) / F + passes * w / DRAM_BW, rel=1e-9)


def test_fit_recovers_a_kernel_with_a_row_tile():
    cal = _calibration()
    _times_from_model(cal, "numba", "int8", call_s=1e-6, passes=1.2, rate=60.0, gv_rate=None, g=64, mt=6, d=5e-6)
    fit = fit_cpu_gemm(cal, "numba", "int8")
    assert (fit["n_granule"], fit["m_tile"]) == (64, 6)
    assert fit["macs_per_cycle"] == pytest.approx(60.0, rel=1e-6)
    assert fit["weight_passes"] == pytest.approx(1.2, rel=1e-6)
    assert fit["call_cycles"] == pytest.approx(1e-6 * F, rel=1e-6)
    assert fit["gemv_macs_per_cycle"] is None
    # with the tile given (the kernel's code), the same numbers
    known = fit_cpu_gemm(cal, "numba", "int8", {"n_granule": 64, "m_tile": 6, "reread": fit["reread"]})
    assert known == pytest.approx(fit)


def test_preset_from_the_fit_reproduces_the_timed_gemms():
    """The preset written from a calibration prices calibrate's GEMMs as they were timed."""
    cal = _calibration()
    for p, rate in (("fp32", 20.0), ("bf16", 40.0), ("int8", 80.0)):
        _times_from_model(cal, "aten", p, call_s=3e-6, passes=3.0, rate=rate, gv_rate=rate / 3, g=16, mt=0, d=2e-6)
    for p in ("sfu", "vector", "select"):
        cal.items[f"{p}.aten"] = Item(1e9, "elems_per_s", "x")
    hw = cal_mod._spec(spec_dict(cal, "aten"))
    ck, cn = cal_mod.CURVE_K_N["bf16"]
    for m in cal_mod.CURVE_M:
        pred = float(cost_gemm(hw, m, ck, cn, "bf16", weight_resident=True).latency_s)
        assert pred == pytest.approx(cal.value(f"curve.aten.bf16.m{m}"), rel=1e-6), m


def test_a_core_without_concurrent_units_runs_one_op_at_a_time():
    """A GEMM and an independent tanh: concurrently the makespan is the longer of the two; with
    ``core.concurrent_units: false`` (one CPU thread) it is their sum."""
    from workloads.graph import Op, OpGraph

    gemm = Op(op="mm", kind="gemm", phase="search", step=0, module="", in_shapes=((8, 256), (256, 256)),
              out_shapes=((8, 256),), in_dtypes=("float32", "float32"), out_dtypes=("float32",),
              macs=8 * 256 * 256, flops=2 * 8 * 256 * 256, bytes_read=4 * (8 * 256 + 256 * 256),
              bytes_written=4 * 8 * 256, weight="w", weight_bytes=4 * 256 * 256, m=8, k=256, n=256, elems=8 * 256)
    tanh = Op(op="tanh", kind="nonlinear", phase="search", step=0, module="", in_shapes=((4096,),),
              out_shapes=((4096,),), in_dtypes=("float32",), out_dtypes=("float32",), macs=0, flops=4096,
              bytes_read=4 * 4096, bytes_written=4 * 4096, weight="", weight_bytes=0, m=0, k=0, n=0, elems=4096)
    graph = OpGraph.from_records([gemm, tanh], [(), ()], meta={})
    hw = cpu_spec()
    both = simulate(graph, hw, uniform_policy("fp32"), audio_s=1.0)
    one = simulate(graph, hw.replace_path("core.concurrent_units", False), uniform_policy("fp32"), audio_s=1.0)
    lat = both.ops["latency_s"].to_numpy()
    assert both.latency_s == pytest.approx(lat.max(), rel=1e-12)
    assert one.latency_s == pytest.approx(lat.sum(), rel=1e-12)


def test_calibrate_prices_a_weight_with_the_plans_hit_curve():
    """With a measured hit curve, ``weight_s_per_byte`` and the simulator agree (one rule,
    ``hwsim.plan.shared_share``): a 4 MiB weight misses the 1 MiB L2, the curve's share at 4 MiB
    is served by the shared level, the rest by DRAM."""
    from hwsim.plan import hit_share

    cal = _calibration()
    for mib, per in {2: 1.0, 3: 1.2, 4: 1.5, 6: 2.0, 8: 3.0, 12: 3.0, 16: 3.0, 24: 3.0, 48: 3.0}.items():
        cal.items[f"cyclic.{mib}"] = Item(per * mib, "s", "cyclic_bench")
    curve = tuple(tuple(p) for p in cal_mod.cache_hit_curve(cal))
    hw = cpu_spec("cache", gemv_weight_passes=None, gemv_macs_per_cycle=None, call_cycles=0.0)
    hw = hw.replace_path("mapping.cache_hit_curve", curve)
    k, n = 1024, 1024
    w = 4 * k * n
    h = hit_share(curve, w)
    assert 0.0 < h < 1.0
    assert cal_mod.weight_s_per_byte(cal, w) == pytest.approx(h / L3_BW + (1 - h) / DRAM_BW, rel=1e-12)
    res = simulate(gemm_graph(4, k, n), hw, uniform_policy("fp32"), audio_s=1.0)
    expect = (500 + 4 * k * n / 16.0) / F + 3.0 * w * cal_mod.weight_s_per_byte(cal, w)
    assert float(res.ops["latency_s"].iloc[-1]) == pytest.approx(expect, rel=1e-9)


def test_a_written_preset_family_refits_to_the_same_model(tmp_path):
    """``recorded_calibration`` reads back the items a preset family's headers record (4
    significant digits) and refits them: the same fields, to that precision."""
    cal = _calibration()
    for p, rate in (("fp32", 20.0), ("bf16", 40.0), ("int8", 80.0)):
        _times_from_model(cal, "aten", p, call_s=3e-6, passes=3.0, rate=rate, gv_rate=rate / 3, g=16, mt=0, d=2e-6,
                          reread="near", out_s=1e-9, gv_passes=0.5)
    for p, rate in (("int8", 60.0), ("int4", 50.0)):
        _times_from_model(cal, "numba", p, call_s=1e-6, passes=1.2, rate=rate, gv_rate=None, g=64, mt=6, d=5e-6,
                          reread="near", out_s=2e-9)
    for exe in ("aten", "numba"):
        for u in ("sfu", "vector", "select"):
            cal.items[f"{u}.{exe}"] = Item(1e9, "elems_per_s", "x")
    cal.items["dispatch.torch"] = Item(4e-6, "s", "fit_dispatch")
    cal_mod.fit_gemms(cal)
    cal_mod.write_presets(cal, tmp_path / "r.yaml")
    rec = cal_mod.recorded_calibration(tmp_path / "r.yaml")
    assert set(rec.items) == set(cal.items)
    for name, it in cal.items.items():
        assert rec.value(name) == pytest.approx(it.value, rel=5e-4), name
    for exe, fits in cal.gemm.items():
        for p, fit in fits.items():
            got = rec.gemm[exe][p]
            assert (got["reread"], got["m_tile"], got["n_granule"]) == (fit["reread"], fit["m_tile"], fit["n_granule"])
            assert got["macs_per_cycle"] == pytest.approx(fit["macs_per_cycle"], rel=1e-2), (exe, p)
            assert got["weight_passes"] == pytest.approx(fit["weight_passes"], rel=2e-2), (exe, p)
    with pytest.raises(cal_mod.CalibrationError, match="no measured items"):
        (tmp_path / "bare.yaml").write_text("name: bare\n")
        for suffix in ("-aten", "-numba"):
            (tmp_path / f"bare{suffix}.yaml").write_text("name: bare\n")
        cal_mod.recorded_calibration(tmp_path / "bare.yaml")
