"""Accelerator spec loading, validation, presets and replace_path."""

from __future__ import annotations

import pytest

from hwsim.spec import FALLBACK_CHAIN, fallback_precision, load_spec, presets
from models.yamlio import ConfigError
from hwsim_testgraphs import TINY_HW


def test_presets_load():
    assert {"rapid4", "host-cpu", "edge"} <= set(presets())
    for name in presets():
        spec = load_spec(name)
        assert spec.name == name


def test_rapid4_peaks_and_no_int8():
    hw = load_spec("rapid4")
    # 4 cores x 8192 INT4 MAC/cycle x 2 OP/MAC x 1.6 GHz = 104.9 TOPS (JSSC 2022 peak)
    assert 2 * hw.peak_macs_per_s("int4") == pytest.approx(104.8576e12)
    assert 2 * hw.peak_macs_per_s("fp8") == pytest.approx(26.2144e12)
    assert "int8" not in hw.core.matrix.macs_per_pe_per_cycle
    assert hw.engine_precision("int8") == "fp16"      # not pretended: the next exact format
    assert hw.engine_precision("int4") == "int4"


def test_fallback_chain():
    assert fallback_precision("int8", {"fp16": 1, "fp8": 1}) == "fp16"   # never int8 -> fp8
    assert fallback_precision("int2", {"int4": 1, "fp16": 1}) == "int4"
    assert fallback_precision("fp32", {"fp16": 1, "int4": 1}) == "fp16"  # narrowing, reported
    assert set(FALLBACK_CHAIN) == {"fp32", "fp16", "bf16", "fp8", "int8", "int4", "int2"}


def _write(tmp_path, text, name="hw.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _tiny_text():
    return _Text(TINY_HW.read_text())


class _Text(str):
    """The tiny spec's text whose ``replace`` fails when the text to replace is not there (so an
    edit of tiny_hw.yaml cannot silently turn a test of a bad value into a test of a good one)."""

    def replace(self, old, new, *args):
        assert old in self, f"tiny_hw.yaml no longer contains {old!r}"
        return _Text(str.replace(self, old, new, *args))


def test_unknown_key_names_file_and_field(tmp_path):
    path = _write(tmp_path, _tiny_text().replace("  dispatch_overhead_cycles: 10",
                                                 "  dispatch_overhead_cycles: 10\n  turbo_mode: 3"))
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    assert str(path) in str(err.value) and "turbo_mode" in str(err.value) and "core" in str(err.value)


def test_duplicate_key(tmp_path):
    path = _write(tmp_path, _tiny_text() + "cores: 4\n")
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    assert str(path) in str(err.value) and "cores" in str(err.value)


def test_negative_bandwidth(tmp_path):
    path = _write(tmp_path, _tiny_text().replace("dram_bw_bytes_per_s: 1.0e+8", "dram_bw_bytes_per_s: -1.0e+8"))
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    assert str(path) in str(err.value) and "dram_bw_bytes_per_s" in str(err.value)


def test_unsupported_precision_name(tmp_path):
    path = _write(tmp_path, _tiny_text().replace("{fp16: 1, int4: 4}", "{fp16: 1, int3: 4}"))
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    msg = str(err.value)
    assert str(path) in msg and "core.matrix" in msg and "int3" in msg


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown hardware preset"):
        load_spec("nope")


def test_replace_path():
    hw = load_spec("rapid4")
    hw2 = hw.replace_path("core.matrix.rows", 64)
    assert hw2.core.matrix.rows == 64 and hw.core.matrix.rows == 32
    assert hw.replace_path("core.matrix.macs_per_pe_per_cycle.int8", 4).engine_precision("int8") == "int8"
    assert hw.replace_path("dram_bw_bytes_per_s", 1e12).dram_bw_bytes_per_s == 1e12
    with pytest.raises(ConfigError, match="dram_bw_bytes_per_s"):
        hw.replace_path("dram_bw_bytes_per_s", -1.0)
    with pytest.raises(ConfigError, match="unknown field"):
        hw.replace_path("core.matrix.row", 64)
    with pytest.raises(ConfigError, match="int3"):
        hw.replace_path("core.matrix.macs_per_pe_per_cycle.int3", 1)
    with pytest.raises(ConfigError, match="dataflow"):
        hw.replace_path("core.matrix.dataflow", "rs")


def test_rates_are_per_pe_and_follow_the_array_size():
    hw = load_spec("rapid4")
    # rapid4: 32 x 32 PEs, 8 INT4 MACs per PE per cycle -> 8192 per core per cycle (ISSCC21 peak).
    assert hw.core.matrix.array_macs_per_cycle("int4") == 8192
    assert hw.core.matrix.array_macs_per_cycle("fp16") == 1024
    # The issue-12 trap: a 64 x 64 array copied from rapid4 keeps 1 FP16 MAC per PE per cycle,
    # so the array does 4096 FP16 MACs per cycle and the chip's peak grows 4x.
    big = hw.replace_path("core.matrix.rows", 64).replace_path("core.matrix.cols", 64)
    assert big.core.matrix.array_macs_per_cycle("fp16") == 4096
    assert big.peak_macs_per_s("int4") == 4 * hw.peak_macs_per_s("int4")
    edge = load_spec("edge")   # 16 x 16 PEs, FP16 at half rate: 128 MACs/cycle for the array
    assert edge.core.matrix.array_macs_per_cycle("fp16") == 128


def test_old_whole_array_rate_field_is_rejected_by_name(tmp_path):
    path = _write(tmp_path, _tiny_text().replace("macs_per_pe_per_cycle: {fp16: 1, int4: 4}",
                                                 "macs_per_cycle: {fp16: 16, int4: 64}"))
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    msg = str(err.value)
    assert str(path) in msg and "core.matrix" in msg and "'macs_per_cycle'" in msg
    assert "macs_per_pe_per_cycle" in msg          # the message lists the field to use instead
    with pytest.raises(ConfigError, match="macs_per_cycle is not a section"):
        load_spec("rapid4").replace_path("core.matrix.macs_per_cycle.int4", 8192)


@pytest.mark.parametrize("path, value, field", [
    ("core.matrix.rows", 0, "rows"),
    ("core.matrix.cols", -3, "cols"),
    ("core.matrix.macs_per_pe_per_cycle.fp16", 0, "macs_per_pe_per_cycle.fp16"),
    ("core.matrix.macs_per_pe_per_cycle.int4", -1, "macs_per_pe_per_cycle.int4"),
    ("core.matrix.cycle_model", "exact", "cycle_model"),
])
def test_matrix_section_errors_name_the_field(path, value, field):
    with pytest.raises(ConfigError) as err:
        load_spec("rapid4").replace_path(path, value)
    assert "core.matrix" in str(err.value) and field in str(err.value)


def test_lane_counts_must_be_whole_where_the_formulas_need_it():
    edge = load_spec("edge")    # ws, 16 rows: fp16 0.5 MAC/PE/cycle -> tiles of 16 x 0.5 = 8 k-values
    assert edge.core.matrix.macs_per_pe_per_cycle["fp16"] == 0.5
    with pytest.raises(ConfigError, match=r"macs_per_pe_per_cycle.fp16: with dataflow: ws .* 16 x 0.3 = 4.8"):
        edge.replace_path("core.matrix.macs_per_pe_per_cycle.fp16", 0.3)
    with pytest.raises(ConfigError, match=r"macs_per_pe_per_cycle.fp16: .* 16 x 0.03125 = 0.5"):
        edge.replace_path("core.matrix.macs_per_pe_per_cycle.fp16", 0.03125)
    # Output-stationary: any rate > 0 is defined (a PE does k MACs in ceil(k / rate) cycles).
    rapid = load_spec("rapid4")
    assert rapid.core.matrix.dataflow == "os"
    slow = rapid.replace_path("core.matrix.macs_per_pe_per_cycle.fp16", 0.3)
    assert slow.core.matrix.macs_per_pe_per_cycle["fp16"] == 0.3
    # SCALE-Sim's cycle model needs whole MAC lanes and no overlap/folding.
    ss = load_spec("scalesim-os")
    with pytest.raises(ConfigError, match=r"macs_per_pe_per_cycle.int8 must be a whole number"):
        ss.replace_path("core.matrix.macs_per_pe_per_cycle.int8", 1.5)
    for flag in ("fill_drain_overlap", "weight_preload_overlap", "fold_outputs"):
        with pytest.raises(ConfigError, match=f"{flag} must be false with cycle_model: scalesim"):
            ss.replace_path(f"core.matrix.{flag}", True)


def test_zero_byte_scratchpad_is_a_valid_spec():
    hw = load_spec("rapid4").replace_path("core.scratchpad_bytes", 0)
    assert hw.core.scratchpad_bytes == 0 and hw.onchip_bytes == hw.shared_sram_bytes


def test_core_count_and_clock_are_capped():
    from hwsim import load_spec
    from models.yamlio import ConfigError

    with pytest.raises(ConfigError, match=r"cores must be 1\.\.4096, got 100000000"):
        load_spec("rapid4").replace_path("cores", 100_000_000)
    with pytest.raises(ConfigError, match="frequency_hz must be <= 1e"):
        load_spec("rapid4").replace_path("frequency_hz", 1e15)


def test_replace_paths_checks_every_path_and_validates_once():
    from hwsim import load_spec
    from models.yamlio import ConfigError

    base = load_spec("rapid4")
    # rows and a ws-only constraint change together: valid only as a pair is fine in one call
    s = base.replace_paths({"core.matrix.rows": 64, "core.scratchpad_bytes": 0})
    assert (s.core.matrix.rows, s.core.scratchpad_bytes) == (64, 0)
    assert s.get_path("core.matrix.rows") == 64 and base.get_path("cores") == 4
    # several paths at once still reject an unknown field (the sweep's own copy did not)
    with pytest.raises(ConfigError, match="unknown field 'rowz'"):
        base.replace_paths({"cores": 2, "core.matrix.rowz": 16})
    with pytest.raises(ConfigError, match="no such field"):
        base.get_path("core.nosuch")


def test_phase_dispatch_and_hypothesis_overhead_are_checked_and_charged():
    """``core.dispatch_by_phase`` names phases of workloads.graph.PHASES; ``hyp_overhead_cycles``
    is >= 0. The encoder's ops pay its entry, the others ``dispatch_overhead_cycles``
    (hwsim.cost.dispatch_s)."""
    import numpy as np

    from hwsim.cost import dispatch_s
    from workloads.graph import PHASES

    hw = load_spec(TINY_HW)
    with pytest.raises(ConfigError, match="unknown phase 'decoder'"):
        hw.replace_path("core.dispatch_by_phase", {"decoder": 1.0})
    with pytest.raises(ConfigError, match="hyp_overhead_cycles must be >= 0"):
        hw.replace_path("core.hyp_overhead_cycles", -1.0)
    hw2 = hw.replace_path("core.dispatch_by_phase", {"encoder": 3.0})
    phase = np.array([PHASES.index("encoder"), PHASES.index("search"), PHASES.index("lm_ext")])
    f = hw2.frequency_hz
    assert dispatch_s(hw2, phase, 3, search_extra_s=1e-9).tolist() == pytest.approx(
        [3.0 / f, hw.core.dispatch_overhead_cycles / f + 1e-9, hw.core.dispatch_overhead_cycles / f])


@pytest.mark.parametrize("curve, match", [
    (((2.0, 0.5), (1.0, 0.4)), "bytes must be > 0 and increasing"),
    (((1.0, 0.5), (2.0, 0.6)), "shares must lie in"),
    (((1.0, 1.5),), "shares must lie in"),
])
def test_cache_hit_curve_is_checked(curve, match):
    hw = load_spec(TINY_HW).replace_path("mapping.residency", "cache")
    with pytest.raises(ConfigError, match=match):
        hw.replace_path("mapping.cache_hit_curve", curve)
    with pytest.raises(ConfigError, match="only used with residency: cache"):
        load_spec(TINY_HW).replace_path("mapping.cache_hit_curve", ((1.0, 0.5),))
