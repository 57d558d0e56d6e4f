"""hwsim.calibrate: the presets it writes carry the numbers it measured (fake timers and hand-made
measurements; nothing here asserts a timing of this machine)."""

import math

import pytest

from hwsim import calibrate as cal_mod
from hwsim.calibrate import Calibration, Item, fit_dispatch, preset_paths, preset_yaml, spec_dict
from hwsim.cli import main
from hwsim.spec import load_spec
from hwsim.validate import gemm_graph

F = 2.0e9


def _fit(rate: float, granule: int = 16, m_tile: int = 0, gemv: float | None = None) -> dict:
    return {"macs_per_cycle": rate, "call_cycles": 2000.0, "n_granule": granule, "m_tile": m_tile,
            "weight_passes": 3.0, "gemv_weight_passes": None if gemv is None else 1.0, "gemv_macs_per_cycle": gemv}


def fake_calibration() -> Calibration:
    """Every item ``preset_yaml`` needs, with distinct round values, and GEMM fits given."""
    cal = Calibration(machine={"cpu_model": "Test CPU 9000", "flags": ["avx512_vnni"], "logical_cpus": 2,
                               "torch": "x", "numpy": "y"}, date="2026-01-02 03:04 UTC")
    it = cal.items
    it["frequency_hz"] = Item(F, "hz", "cpuinfo")
    it["l2_bytes"] = Item(1 << 20, "bytes", "sysfs")
    it["l3_effective_bytes"] = Item(8 << 20, "bytes", "sweep")
    for p, r in {"fp32": 4.0e10, "bf16": 8.0e10, "int8": 1.6e11}.items():
        it[f"gemm.aten.{p}"] = Item(r, "mac_per_s", f"gemm_bench('aten', {p!r}, ...)")
    for p, r in {"int8": 1.2e11, "int4": 1.4e11}.items():
        it[f"gemm.numba.{p}"] = Item(r, "mac_per_s", f"gemm_bench('numba', {p!r}, ...)")
    for exe, base in (("aten", 1.0), ("numba", 2.0)):
        it[f"sfu.{exe}"] = Item(base * 1e9, "elems_per_s", "tanh")
        it[f"vector.{exe}"] = Item(base * 4e9, "elems_per_s", "add")
        it[f"select.{exe}"] = Item(base * 5e8, "elems_per_s", "topk")
    it["read.262144"] = Item(9.0e10, "bytes_per_s", "read_bench(262144)")
    it["read.4194304"] = Item(6.0e10, "bytes_per_s", "read_bench(4194304)")
    it["read.268435456"] = Item(1.5e10, "bytes_per_s", "read_bench(268435456)")
    it["dispatch.aten"] = Item(2e-6, "s", "tiny_op_bench('aten')")
    it["dispatch.numba"] = Item(1e-5, "s", "tiny_op_bench('numba')")
    it["dispatch.torch"] = Item(8e-6, "s", "fit_dispatch")
    cal.gemm = {"aten": {"fp32": _fit(20.0, gemv=6.0), "bf16": _fit(40.0, gemv=5.0), "int8": _fit(80.0, gemv=11.0)},
                "numba": {"int8": _fit(60.0, 64, 6), "int4": _fit(70.0, 64, 6)}}
    return cal


@pytest.mark.parametrize("exe", ["torch", "aten", "numba"])
def test_preset_loads_and_carries_the_measured_numbers(tmp_path, exe):
    cal = fake_calibration()
    path = tmp_path / f"host{exe}.yaml"
    path.write_text(preset_yaml(cal, exe))
    hw = load_spec(path)
    src = "numba" if exe == "numba" else "aten"
    assert hw.frequency_hz == F and hw.cores == 1
    mx = hw.core.matrix
    assert (mx.rows, mx.cols, mx.cycle_model) == (1, 1, "cpu")
    for p in ({"numba": ("int8", "int4")}.get(exe, ("fp32", "bf16", "int8"))):
        fit = cal.gemm[src][p]
        # the rows rate is the one PE's rate; every CpuGemmSpec field is the fit's
        assert hw.peak_macs_per_s(p) == pytest.approx(fit["macs_per_cycle"] * F, rel=1e-12)
        assert {k: getattr(mx.cpu[p], k) for k in fit if k != "macs_per_cycle"} == \
            {k: v for k, v in fit.items() if k != "macs_per_cycle"}
    assert hw.core.dispatch_overhead_cycles / F == pytest.approx(cal.value(f"dispatch.{exe}"), rel=1e-12)
    assert hw.core.scratchpad_bytes == 1 << 20
    assert hw.core.scratchpad_bw_bytes_per_s == 9.0e10
    assert hw.shared_sram_bytes == (8 << 20) - (1 << 20) and hw.shared_bw_bytes_per_s == 6.0e10
    assert hw.dram_bw_bytes_per_s == 1.5e10
    assert hw.core.sfu.elems_per_cycle["fp32"] * F == pytest.approx(cal.value(f"sfu.{src}"))
    assert hw.core.vector.elems_per_cycle["fp32"] * F == pytest.approx(cal.value(f"vector.{src}"))
    assert hw.core.select.elems_per_cycle * F == pytest.approx(cal.value(f"select.{src}"))
    text = path.read_text()
    # the machine, the date and every number that set a field, with its source, are in the file
    assert "Test CPU 9000" in text and "2026-01-02 03:04 UTC" in text and "hwsim calibrate --out" in text
    assert f"dispatch.{exe} = {cal.value(f'dispatch.{exe}'):.4g} s  [{cal.items[f'dispatch.{exe}'].how}]" in text
    assert "read.268435456 = 1.5e+10 bytes_per_s" in text


def _phased_graph(enc: int, search: int, hyps: int):
    """``enc`` encoder-phase then ``search`` search-phase 1 x 16 x 16 GEMMs in a chain, one weight
    each, and search statistics of ``hyps`` hypotheses."""
    from workloads.graph import Op, OpGraph

    def op(phase: str, w: str) -> Op:
        return Op(op="mm", kind="gemm", phase=phase, step=0, module="", in_shapes=((1, 16), (16, 16)),
                  out_shapes=((1, 16),), in_dtypes=("float32", "float32"), out_dtypes=("float32",),
                  macs=256, flops=512, bytes_read=4 * (16 + 256), bytes_written=64, weight=w,
                  weight_bytes=1024, m=1, k=16, n=16, elems=16)
    ops = [op("encoder", "we")] * enc + [op("search", "ws")] * search
    return OpGraph.from_records(ops, [()] + [(i,) for i in range(len(ops) - 1)],
                                meta={"search": {"hyps": hyps}})


def test_fit_dispatch_recovers_the_three_overheads_of_serial_graphs():
    """One core, one op at a time: latency = body + enc * e + other * d + hyps * h. Three graphs
    with independent counts, timed with e, d, h known, give them back; the per-hypothesis cost is
    charged to the search ops (hwsim.spec.CoreSpec.hyp_overhead_cycles)."""
    cal = fake_calibration()

    class System:
        config = None

    from hwsim.simulate import simulate

    e, d, h = 3e-6, 7e-6, 11e-6
    zero = cal_mod._spec(spec_dict(cal, "torch", overheads={"op": 0.0, "encoder_op": 0.0, "hyp": 0.0}))
    cases, expect = [], []
    for enc, other, hyps in ((40, 10, 5), (10, 40, 30), (25, 25, 80)):
        g = _phased_graph(enc, other, hyps)
        body = simulate(g, zero, "fp32", 1.0).latency_s
        t = body + enc * e + other * d + hyps * h
        cases.append((g, System, 1.0, t))
        expect.append((enc, other, hyps, body, t))
    terms, fits = fit_dispatch(cal, cases)
    assert terms == pytest.approx({"op": d, "encoder_op": e, "hyp": h}, rel=1e-6)
    for (enc, other, hyps, body, t), f in zip(expect, fits):
        assert (f["encoder_ops"], f["other_ops"], f["hyps"]) == (enc, other, hyps)
        assert f["sim0_s"] == pytest.approx(body, rel=1e-12)
        assert f["predicted_s"] == pytest.approx(t, rel=1e-6)
    hw = cal_mod._spec(spec_dict(cal, "torch", overheads=terms))
    assert hw.core.dispatch_by_phase == {"encoder": pytest.approx(e * F)}
    assert hw.core.hyp_overhead_cycles == pytest.approx(h * F)
    # the encoder's overhead from its own timing (the first graph's 40 encoder ops alone)
    enc_ops = simulate(cases[0][0], zero, "fp32", 1.0).ops
    enc_body = float(enc_ops[enc_ops["phase"] == "encoder"]["latency_s"].sum())
    terms, _ = fit_dispatch(cal, cases, encoder=(cases[0][0], System, 1.0, enc_body + 40 * e))
    assert terms == pytest.approx({"op": d, "encoder_op": e, "hyp": h}, rel=1e-6)
    # an encoder timed slower than the decodes imply: e follows it, the others refit around it
    terms, _ = fit_dispatch(cal, cases, encoder=(cases[0][0], System, 1.0, enc_body + 40 * 2 * e))
    assert terms["encoder_op"] == pytest.approx(2 * e, rel=1e-6) and terms["op"] < d
    # no hypotheses anywhere: that term is 0, not a negative or a guess
    flat = [(_phased_graph(enc, other, 0), System, 1.0, t - hyps * h) for enc, other, hyps, _, t in expect]
    terms, _ = fit_dispatch(cal, flat)
    assert terms["hyp"] == 0.0 and terms["op"] == pytest.approx(d, rel=1e-6)


def test_cache_hit_curve_places_each_set_between_the_in_cache_and_dram_times():
    """Seconds per GEMM 1.0 at 2 MiB (all in L3), 3.0 for the largest sets (median of 16, 24, 48
    MiB: 2.9, 3.0, 3.2): a set at 2.0 s is half served on chip, one at 1.5 three quarters; the
    noisy 4 MiB point (1.1 after 1.0 at 3 MiB) keeps the curve non-increasing (0.95), 8 MiB at
    0.9 s is not allowed back above the 6 MiB share. Only the torch preset carries the curve."""
    cal = fake_calibration()
    per = {2: 1.0, 3: 1.0, 4: 1.1, 6: 1.5, 8: 0.9, 12: 2.0, 16: 2.9, 24: 3.0, 48: 3.2}
    for mib, t in per.items():
        cal.items[f"cyclic.{mib}"] = Item(t * mib, "s", "cyclic_bench")
    curve = cal_mod.cache_hit_curve(cal)
    assert [b for b, _ in curve] == [float(m << 20) for m in per]
    assert [h for _, h in curve] == pytest.approx([1.0, 1.0, 0.95, 0.75, 0.75, 0.5, 0.05, 0.0, 0.0])
    torch_hw = cal_mod._spec(spec_dict(cal, "torch"))
    assert torch_hw.mapping.residency == "cache"
    assert torch_hw.mapping.cache_hit_curve == tuple(tuple(p) for p in curve)
    # one curve for every executor: it is the machine's cache, whoever reads it
    assert cal_mod._spec(spec_dict(cal, "aten")).mapping.cache_hit_curve == tuple(tuple(p) for p in curve)
    from hwsim.plan import hit_share
    # 5 MiB lies between 4 (0.95) and 6 MiB (0.75), linearly in log bytes
    t = (math.log(5) - math.log(4)) / (math.log(6) - math.log(4))
    assert hit_share(torch_hw.mapping.cache_hit_curve, 5 << 20) == pytest.approx(0.95 + t * (0.75 - 0.95))
    assert hit_share(torch_hw.mapping.cache_hit_curve, 1 << 20) == 1.0
    assert hit_share(torch_hw.mapping.cache_hit_curve, 1 << 30) == 0.0


def test_measure_with_a_fake_timer_writes_what_it_timed(tmp_path, monkeypatch):
    """A timer that says every call took 1 ms: every rate is work / 1 ms, and the presets say so.
    Such GEMM times cannot be fitted (they do not grow with the work): a CalibrationError says so."""
    with pytest.raises(cal_mod.CalibrationError, match="the aten fp32 GEMM model: the ntile GEMM times do not grow"):
        cal_mod.measure(repeats=1, min_sample_s=0.0, decode=False, timer=lambda fn, loops: 1e-3)
    monkeypatch.setattr(cal_mod, "fit_gemms", lambda cal: cal.gemm.update(fake_calibration().gemm))
    cal = cal_mod.measure(repeats=1, min_sample_s=0.0, decode=False, timer=lambda fn, loops: 1e-3)
    m, k, n = cal_mod.PEAK_SHAPE
    assert cal.value("gemm.aten.fp32") == pytest.approx(m * k * n / 1e-3)
    big = cal_mod.READ_SIZES[-1]
    assert cal.value(f"read.{big}") == pytest.approx(big * cal_mod.read_reps(big) / 1e-3)
    assert cal.value("dispatch.numba") == 1e-3
    paths = cal_mod.write_presets(cal, tmp_path / "h.yaml")
    assert set(paths) == {"torch", "aten", "numba"}
    numba_hw = load_spec(paths["numba"])
    assert cal.value("small.numba.int4") == 1e-3 and cal.value("ntile.aten.bf16.n40") == 1e-3
    assert numba_hw.core.matrix.cycle_model == "cpu"
    assert numba_hw.dram_bw_bytes_per_s == pytest.approx(big * cal_mod.read_reps(big) / 1e-3)


def test_calibrate_command_writes_three_loadable_presets(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cal_mod, "measure", lambda **kw: fake_calibration())
    out = tmp_path / "sub" / "mine.yaml"
    assert main(["calibrate", "--out", str(out)]) == 0
    paths = preset_paths(out)
    assert [p.name for p in paths.values()] == ["mine.yaml", "mine-aten.yaml", "mine-numba.yaml"]
    assert load_spec(paths["numba"]).core.dispatch_overhead_cycles == pytest.approx(1e-5 * F)
    assert "mine-numba.yaml" in capsys.readouterr().out


def test_calibrate_command_rejects_a_directory_as_out(tmp_path, capsys):
    assert main(["calibrate", "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
