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


def test_fit_dispatch_solves_the_per_op_overhead_of_serial_graphs():
    """N GEMMs on one core run one after another: latency = N * (body + d). Two graphs measured
    with the same d give it back exactly; with noise, the relative least squares lies between
    the two per-graph solutions."""
    cal = fake_calibration()

    class System:
        config = None

    hw0 = cal_mod._spec(spec_dict(cal, "torch", dispatch_s=0.0))
    from hwsim.simulate import simulate

    graphs = {n: gemm_graph(1, 16, 16, uses=n) for n in (20, 50)}
    body = {n: simulate(g, hw0, "fp32", 1.0).latency_s / n for n, g in graphs.items()}
    cases = [(g, System, 1.0, n * (body[n] + 3.5e-6)) for n, g in graphs.items()]
    d, fits = fit_dispatch(cal, cases)
    assert d == pytest.approx(3.5e-6, rel=1e-6)
    assert [f["ops"] for f in fits] == [20, 50]
    for (n, _), f in zip(graphs.items(), fits):
        assert f["sim0_s"] == pytest.approx(n * body[n], rel=1e-12)
        assert f["predicted_s"] == pytest.approx(n * (body[n] + 3.5e-6), rel=1e-6)
    noisy = [(g, System, 1.0, n * (body[n] + dd)) for (n, g), dd in zip(graphs.items(), (2e-6, 5e-6))]
    d, _ = fit_dispatch(cal, noisy)
    assert 2e-6 < d < 5e-6


def test_cyclic_capacity_is_where_a_two_level_step_fits_best():
    """Seconds per GEMM about 1 up to 8 MiB, about 3 from 12 MiB: the step between 8 and 12 fits
    the log times best, so the capacity is 8 MiB. One slow sample at 4 MiB (2.5) does not move it
    to 3 MiB: the split there leaves the in-cache sizes 6 and 8 among the slow ones (sums of
    squared log errors 1.37 there, 0.66 for the split after 8, 1.30 for the next best)."""
    cal = fake_calibration()
    for outlier in (1.1, 2.5):
        per = {2: 1.0, 3: 1.0, 4: outlier, 6: 1.0, 8: 1.2, 12: 3.0, 16: 2.6, 24: 3.0, 48: 3.2}
        for mib, t in per.items():
            cal.items[f"cyclic.{mib}"] = Item(t * mib, "s", "cyclic_bench")
        assert cal_mod.cyclic_capacity(cal) == 8 << 20, outlier
    cal.items["cyclic_capacity_bytes"] = Item(8 << 20, "bytes", "cyclic_capacity")
    # the torch executor's caches hold what a decode keeps; the bare-op executors keep l3_effective
    torch_hw = cal_mod._spec(spec_dict(cal, "torch"))
    aten_hw = cal_mod._spec(spec_dict(cal, "aten"))
    assert torch_hw.shared_sram_bytes == (8 << 20) - (1 << 20)
    assert aten_hw.shared_sram_bytes == (8 << 20) - (1 << 20)
    cal.items["cyclic_capacity_bytes"] = Item(4 << 20, "bytes", "cyclic_capacity")
    assert cal_mod._spec(spec_dict(cal, "torch")).shared_sram_bytes == 3 << 20
    assert cal_mod._spec(spec_dict(cal, "aten")).shared_sram_bytes == 7 << 20
    assert torch_hw.mapping.residency == "cache"


def test_measure_with_a_fake_timer_writes_what_it_timed(tmp_path, monkeypatch):
    """A timer that says every call took 1 ms: every rate is work / 1 ms, and the presets say so.
    Such GEMM times cannot be fitted (they do not grow with the work): a CalibrationError says so."""
    with pytest.raises(cal_mod.CalibrationError, match="the aten fp32 GEMM model: GEMM times do not grow"):
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
