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
    assert "int8" not in hw.core.matrix.macs_per_cycle
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
    return TINY_HW.read_text()


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
    path = _write(tmp_path, _tiny_text().replace("{fp16: 16, int4: 64}", "{fp16: 16, int3: 64}"))
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
    assert hw.replace_path("core.matrix.macs_per_cycle.int8", 4096).engine_precision("int8") == "int8"
    assert hw.replace_path("dram_bw_bytes_per_s", 1e12).dram_bw_bytes_per_s == 1e12
    with pytest.raises(ConfigError, match="dram_bw_bytes_per_s"):
        hw.replace_path("dram_bw_bytes_per_s", -1.0)
    with pytest.raises(ConfigError, match="unknown field"):
        hw.replace_path("core.matrix.row", 64)
    with pytest.raises(ConfigError, match="int3"):
        hw.replace_path("core.matrix.macs_per_cycle.int3", 1)
    with pytest.raises(ConfigError, match="dataflow"):
        hw.replace_path("core.matrix.dataflow", "rs")
