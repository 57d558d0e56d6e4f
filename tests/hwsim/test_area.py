"""Area model: a hand-derived small spec, monotonicity, strict loading, the sweep column, and the
preset coefficients recomputed from the published figures they are derived from."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest

from hwsim.area import COMPONENTS, area, area_mm2, area_summary
from hwsim.dse import load, load_sweep, pareto, run_sweep
from hwsim.dse.sweep import DERIVED, constraint_env, resolve_spec, spec_figures
from hwsim.spec import PRESET_DIR, AcceleratorSpec, load_spec
from models.yamlio import ConfigError, from_dict

MIB = 2**20
README = (Path(__file__).resolve().parents[2] / "README.md").read_text()

SMALL = {
    "name": "small-area", "frequency_hz": 1.0e9, "cores": 2, "dram_bw_bytes_per_s": 1.0e10,
    "shared_sram_bytes": MIB // 2, "inter_core_bw_bytes_per_s": 6.4e10,   # 64 B/cycle = 512 bits
    "core": {
        "matrix": {"rows": 4, "cols": 2, "macs_per_pe_per_cycle": {"int8": 2, "int4": 4}},
        "sfu": {"elems_per_cycle": {"fp16": 8}},
        "vector": {"elems_per_cycle": {"fp16": 4, "int8": 8}},
        "select": {"unit": "dedicated", "elems_per_cycle": 2},
        "scratchpad_bytes": MIB, "scratchpad_bw_bytes_per_s": 1.0e11,
    },
    "area": {
        "technology_nm": 16,
        "mac_um2": {"int8": 50, "int4": 20, "fp16": 999},   # fp16 is not in the array: unused
        "pe_overhead_um2": 10,
        "sfu_lane_um2": {"fp16": 100},
        "vector_lane_um2": {"fp16": 30, "int8": 10},
        "select_lane_um2": 5,
        "sram_mm2_per_mib": 0.25,
        "ring_um2_per_link_bit": 2,
        "logic_overhead_fraction": 0.5,
    },
}


def small(**area_changes) -> AcceleratorSpec:
    data = {**SMALL, "area": {**SMALL["area"], **area_changes}}
    return from_dict(AcceleratorSpec, data, source="small")


def test_small_spec_by_hand():
    b = area(small())
    # 2 cores x 4 x 2 PEs = 16 PEs, each 2 x 50 + 4 x 20 + 10 = 190 um^2.
    assert b.matrix_mm2 == pytest.approx(16 * 190e-6)
    assert b.matrix_by_precision_mm2 == pytest.approx({"int8": 16 * 100e-6, "int4": 16 * 80e-6,
                                                       "pe_overhead": 16 * 10e-6})
    assert b.sfu_mm2 == pytest.approx(2 * 8 * 100e-6)                 # 1600 um^2
    assert b.vector_mm2 == pytest.approx(2 * (4 * 30 + 8 * 10) * 1e-6)   # 400 um^2
    assert b.select_mm2 == pytest.approx(2 * 2 * 5e-6)                 # 20 um^2
    assert b.ring_mm2 == pytest.approx(2 * 512 * 2e-6)                 # 2048 um^2
    logic_um2 = 3040 + 1600 + 400 + 20 + 2048
    assert b.overhead_mm2 == pytest.approx(0.5 * logic_um2 * 1e-6)
    assert b.scratchpad_mm2 == pytest.approx(2 * 0.25)
    assert b.shared_sram_mm2 == pytest.approx(0.5 * 0.25)
    assert b.total_mm2 == pytest.approx(0.625 + 1.5 * logic_um2 * 1e-6)   # 0.635662 mm^2
    assert b.total_mm2 == pytest.approx(0.635662, rel=1e-12)
    assert list(b.as_dict()) == list(COMPONENTS) and sum(b.as_dict().values()) == b.total_mm2
    assert area_summary(small()) == {"area_mm2": b.total_mm2, "area_breakdown_mm2": b.as_dict()}


def test_shared_units_and_one_core_cost_no_select_or_ring():
    hw = small().replace_paths({"core.select.unit": "vector", "cores": 1})
    b = area(hw)
    assert b.select_mm2 == 0 and b.ring_mm2 == 0
    assert b.matrix_mm2 == pytest.approx(8 * 190e-6)


@pytest.mark.parametrize("preset", ["rapid4", "edge"])
def test_monotone_in_scratchpad_and_array(preset):
    hw = load_spec(preset)
    sizes = [a.total_mm2 for a in (area(hw.replace_path("core.scratchpad_bytes", s))
                                   for s in (0, MIB // 2, MIB, 4 * MIB))]
    assert all(x < y for x, y in zip(sizes, sizes[1:]))
    arrays = [area(hw.replace_paths({"core.matrix.rows": n, "core.matrix.cols": n})).total_mm2
              for n in (8, 16, 32, 64)]
    assert all(x < y for x, y in zip(arrays, arrays[1:]))
    shared = [area(hw.replace_path("shared_sram_bytes", s)).total_mm2 for s in (0, MIB, 8 * MIB)]
    assert all(x < y for x, y in zip(shared, shared[1:]))


def test_more_precisions_and_more_lanes_cost_more():
    hw = load_spec("edge")                               # fp16 0.5 + int8 1 + int4 2 MACs/PE/cycle
    int4_only = hw.replace_path("core.matrix.macs_per_pe_per_cycle", {"int4": 2})
    assert area(int4_only).matrix_mm2 < area(hw).matrix_mm2
    faster = hw.replace_path("core.matrix.macs_per_pe_per_cycle.int4", 4)
    b, f = area(hw), area(faster)
    assert f.matrix_by_precision_mm2["int4"] == pytest.approx(2 * b.matrix_by_precision_mm2["int4"])
    assert f.matrix_by_precision_mm2["fp16"] == b.matrix_by_precision_mm2["fp16"]


def test_unknown_key_in_the_area_section_names_the_key(tmp_path):
    text = (PRESET_DIR / "rapid4.yaml").read_text()
    assert "\n  sram_mm2_per_mib:" in text
    path = tmp_path / "hw.yaml"
    path.write_text(text.replace("\n  sram_mm2_per_mib:", "\n  sram_mm2_per_mb: 1\n  sram_mm2_per_mib:"))
    with pytest.raises(ConfigError, match=r"hw\.yaml: area unknown key\(s\) 'sram_mm2_per_mb' for AreaSpec"):
        load_spec(path)


@pytest.mark.parametrize("change, field", [
    ({"mac_um2": {"int8": 50}}, r"small-area: area\.mac_um2\.int4: no entry"),
    ({"vector_lane_um2": {"fp16": 30}}, r"small-area: area\.vector_lane_um2\.int8: no entry"),
    ({"select_lane_um2": None}, r"area\.select_lane_um2 is needed"),
    ({"ring_um2_per_link_bit": None}, r"area\.ring_um2_per_link_bit is needed"),
])
def test_a_needed_coefficient_is_an_error_naming_it(change, field):
    with pytest.raises(ConfigError, match=field):
        area(small(**change))


@pytest.mark.parametrize("change, field", [
    ({"mac_um2": {"int8": 0, "int4": 20}}, r"small: area mac_um2\.int8 must be > 0"),
    ({"mac_um2": {"int3": 1}}, r"mac_um2: unsupported precision name 'int3'"),
    ({"sram_mm2_per_mib": -1}, r"sram_mm2_per_mib must be > 0"),
    ({"technology_nm": 0}, r"technology_nm must be > 0"),
])
def test_impossible_values_are_rejected_at_load(change, field):
    with pytest.raises(ConfigError, match=field):
        small(**change)


def test_unbounded_ring_has_no_area():
    data = {**SMALL}
    del data["inter_core_bw_bytes_per_s"]                # the 1e30 "unbounded" default
    with pytest.raises(ConfigError, match="inter_core_bw_bytes_per_s is unbounded"):
        area(from_dict(AcceleratorSpec, data, source="small"))


def test_a_design_without_an_area_is_still_costed_and_says_why():
    spec = small(ring_um2_per_link_bit=None)
    summary = area_summary(spec)
    assert summary["area_mm2"] is None and "ring_um2_per_link_bit is needed" in summary["area_error"]
    figures = spec_figures(spec, "int4")
    assert figures["area_mm2"] is None and figures["area_error"] == summary["area_error"]


def test_a_spec_without_area_has_none():
    hw = load_spec("host-cpu")
    assert hw.area is None and area(hw) is None and area_mm2(hw) is None and area_summary(hw) == {}
    assert spec_figures(hw, "int8")["area_mm2"] is None


def test_sweep_column_and_constraint(tmp_path):
    assert "area_mm2" in DERIVED
    text = ("base: {model: tiny, hw: rapid4, audio_s: 1, precision: int4, beam: 1, lm_fusion: none}\n"
            "vary:\n  hw.core.scratchpad_bytes: [524288, 2097152, 8388608]\n"
            "constraints:\n  - \"area_mm2 <= 12\"\n")
    path = tmp_path / "s.yaml"
    path.write_text(text)
    summary = run_sweep(load_sweep(path), tmp_path / "out", workers=0, progress=False)
    assert (summary.planned, summary.errors) == (2, 0)          # 4 x 8 MiB of scratchpad: 17.9 mm^2 > 12
    df = load(tmp_path / "out")
    assert (df["status"] == "ok").all()
    for _, row in df.iterrows():
        point = {k: row[k] for k in ("model", "hw", "audio_s", "precision", "beam", "lm_fusion", "method")}
        point["hw.core.scratchpad_bytes"] = int(row["hw.core.scratchpad_bytes"])
        assert row["area_mm2"] == area(resolve_spec(point)).total_mm2
        assert constraint_env(point)["area_mm2"] == row["area_mm2"]
    rapid4 = load_spec("rapid4")
    assert sorted(df["area_mm2"]) == sorted(
        area(rapid4.replace_path("core.scratchpad_bytes", s)).total_mm2 for s in (524288, 2097152))


def test_a_constraint_on_area_without_an_area_section_is_an_error(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("base: {model: tiny, hw: host-cpu, audio_s: 1, precision: int8, beam: 1}\n"
                    "vary:\n  beam: [1, 2]\nconstraints:\n  - \"area_mm2 <= 5\"\n")
    with pytest.raises(ConfigError, match=r"constraints\[0\]: 'area_mm2 <= 5' failed"):
        load_sweep(path).plan()


def test_pareto_on_area_leaves_out_points_without_area():
    df = pd.DataFrame({"key": list("abcd"), "status": "ok", "rtf": [0.1, 0.2, 0.3, 0.05],
                       "area_mm2": [5.0, 3.0, 4.0, None]})
    assert list(pareto(df, {"rtf": "min", "area_mm2": "min"})["key"]) == ["a", "b"]


# ----------------------------------------------------------------------------------------------
# The preset coefficients, recomputed from the published figures the YAML comments cite.

#: Shao et al., Aladdin (ISCA 2014), harvard-acc/ALADDIN common/power_func.h, 40 nm at 1 ns (the
#: sin/cos unit at 10 ns); the 32-bit comparator from Accelergy's hwcomponents-library. um^2.
REG_BIT, ADD32, MUL32, FP32_ADD, FP32_MUL, FP_TRIG, CMP32, BIT32 = (
    5.981433, 277.9792, 6351.338, 4361.094, 8967.113, 10586.82, 71.0, 50.36996)
#: Stillmaker & Baas (2017) area factors from 45 nm.
SB17_FROM_45NM = {45: 1.0, 32: 0.46, 20: 0.21, 7: 0.059}
SIGNIFICAND = {"fp32": 24, "fp16": 11, "bf16": 8, "fp8": 4}
ACCUMULATE = {"fp32": "fp32", "fp16": "fp32", "bf16": "fp32", "fp8": "fp16"}
BITS = {"int2": 2, "int4": 4, "int8": 8, "fp8": 8, "fp16": 16, "bf16": 16, "fp32": 32}


def _from_45nm(node: float) -> float:
    nodes = sorted(SB17_FROM_45NM, reverse=True)
    if node in SB17_FROM_45NM:
        return SB17_FROM_45NM[node]
    hi, lo = next((a, b) for a, b in zip(nodes, nodes[1:]) if a > node > b)
    t = math.log(hi / node) / math.log(hi / lo)        # log-log interpolation
    return math.exp((1 - t) * math.log(SB17_FROM_45NM[hi]) + t * math.log(SB17_FROM_45NM[lo]))


def _vector_lane_40nm(p: str) -> float:
    if p.startswith("int"):
        b = BITS[p]
        return b * b * MUL32 / 32**2 + b * ADD32 / 32
    return FP32_MUL * (SIGNIFICAND[p] / 24) ** 2 + FP32_ADD * SIGNIFICAND[p] / 24


def _mac_40nm(p: str) -> float:
    b = BITS[p]
    if p.startswith("int"):
        return b * b * MUL32 / 32**2 + 4 * b * ADD32 / 32 + 2 * b * REG_BIT
    return (FP32_MUL * (SIGNIFICAND[p] / 24) ** 2 + FP32_ADD * SIGNIFICAND[ACCUMULATE[p]] / 24
            + 2 * b * REG_BIT)


@pytest.mark.parametrize("preset, bitcell_um2", [("rapid4", 0.027), ("edge", 0.127)])
def test_preset_coefficients_follow_from_their_sources(preset, bitcell_um2):
    a = load_spec(preset).area
    scale = _from_45nm(a.technology_nm) / _from_45nm(40)
    close = dict(rel=6e-4)                                  # the YAML keeps 4 significant digits
    for p in BITS:
        assert a.mac_um2[p] == pytest.approx(_mac_40nm(p) * scale, **close), p
        assert a.vector_lane_um2[p] == pytest.approx(_vector_lane_40nm(p) * scale, **close), p
        sfu = FP_TRIG * _vector_lane_40nm(p) / _vector_lane_40nm("fp32")
        assert a.sfu_lane_um2[p] == pytest.approx(sfu * scale, **close), p
    assert a.pe_overhead_um2 == pytest.approx(32 * REG_BIT * scale, **close)
    assert a.select_lane_um2 == pytest.approx((CMP32 + 64 * REG_BIT) * scale, **close)
    if a.ring_um2_per_link_bit is not None:
        assert a.ring_um2_per_link_bit == pytest.approx(2 * (REG_BIT + BIT32 / 32) * scale, **close)
    macro_share = 31.8 * 0.021 * MIB / 1e6                 # TSMC N3E: 31.8 Mib/mm^2 at 0.021 um^2
    assert macro_share == pytest.approx(0.700, abs=5e-4)
    assert a.sram_mm2_per_mib == pytest.approx(8 * MIB * bitcell_um2 / 1e6 / macro_share, **close)


def test_readme_totals():
    m = re.search(r"Result: rapid4 ([0-9.]+) mm² \(matrix ([0-9.]+), scratchpad ([0-9.]+), overhead "
                  r"([0-9.]+), vector ([0-9.]+), SFU ([0-9.]+),\nring ([0-9.]+)\), edge ([0-9.]+) mm²",
                  README)
    r, e = area(load_spec("rapid4")), area(load_spec("edge"))
    assert m.group(1) == f"{r.total_mm2:.2f}" and m.group(8) == f"{e.total_mm2:.3f}"
    assert [m.group(i) for i in range(2, 8)] == [
        f"{r.matrix_mm2:.3f}", f"{r.scratchpad_mm2:.3f}", f"{r.overhead_mm2:.3f}", f"{r.vector_mm2:.3f}",
        f"{r.sfu_mm2:.3f}", f"{r.ring_mm2:.3f}"]
    assert f"| `sram_mm2_per_mib` | {load_spec('rapid4').area.sram_mm2_per_mib} mm² | " \
           f"{load_spec('edge').area.sram_mm2_per_mib} mm² |" in README
