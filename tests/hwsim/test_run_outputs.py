"""What a run says and writes: ``hwsim.breakdown`` (by hand on a 3-op graph), the run folder's
breakdown, roofline and provenance files, ``hwsim simulate --graph``."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

import models
import workloads
from hwsim import simulate
from hwsim.breakdown import COLUMNS, SECTIONS, breakdown
from hwsim.cli import build_parser, git_commit, main, version_string
from hwsim.commands.simulate import provenance
from hwsim.spec import load_spec
from models.features import random_features
from workloads.graph import OpGraph

from hwsim_testgraphs import TINY_HW, gemm, two_module_graph, unary

NS = 1e-9
# Energy costs on top of tiny_hw.yaml (see test_roofline.py for its timing).
ENERGY = """energy:
  mac_j: {fp16: 1.0e-12}
  dram_byte_j: 1.0e-10
  sfu_elem_j: 1.0e-12
  static_w: 1.0e-3
"""


@pytest.fixture(scope="module")
def hw_with_energy(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hw") / "tiny_energy.yaml"
    path.write_text(TINY_HW.read_text() + ENERGY)
    return path


@pytest.fixture(scope="module")
def tables(hw_with_energy):
    r = simulate(two_module_graph(), hw_with_energy, "fp16", audio_s=1.0)
    return r, breakdown(r)


def test_bound_time_and_energy_by_hand(tables):
    r, b = tables
    bound = b.bound.set_index("name")
    # A waited on DRAM, B on the SFU, C on the engine. Makespan 490 ns: [0, 74] A and C run
    # (37 ns each), [74, 430] A alone, [430, 490] B alone.
    assert list(b.bound["name"]) == ["dram", "sfu", "compute"]          # largest share first
    assert bound["latency_s"].tolist() == pytest.approx([393 * NS, 60 * NS, 37 * NS])
    assert bound["latency_share"].tolist() == pytest.approx([393 / 490, 60 / 490, 37 / 490])
    assert bound["busy_s"].tolist() == pytest.approx([430 * NS, 60 * NS, 74 * NS])
    # energy: A 64 MACs x 1 pJ + 32 DRAM bytes x 0.1 nJ; B 100 SFU elements x 1 pJ; C 512 MACs x 1 pJ
    ea, eb, ec = 64e-12 + 32e-10, 100e-12, 512e-12
    assert bound["energy_j"].tolist() == pytest.approx([ea, eb, ec])
    assert bound["energy_share"].tolist() == pytest.approx([x / (ea + eb + ec) for x in (ea, eb, ec)])
    assert b.static_energy_j == pytest.approx(1e-3 * 490 * NS)
    assert b.energy_j == pytest.approx(ea + eb + ec + 1e-3 * 490 * NS)


def test_phase_and_module_by_hand(tables):
    _, b = tables
    ph = b.phase.set_index("name")
    assert ph.loc["joint", "latency_s"] == pytest.approx(453 * NS)       # 37 + 356 + 60
    assert ph.loc["lm_ext", "latency_s"] == pytest.approx(37 * NS)
    assert ph["latency_s"].sum() == pytest.approx(490 * NS)
    assert ph.loc["joint", "energy_j"] == pytest.approx(64e-12 + 32e-10 + 100e-12)
    mod = b.module.set_index("name")
    assert mod.loc["m.a", "phase"] == "joint" and mod.loc["m.a", "ops"] == 2
    assert mod.loc["m.a", "latency_s"] == pytest.approx(453 * NS)
    assert mod.loc["m.a", "busy_s"] == pytest.approx(490 * NS)
    assert mod.loc["m.b", "busy_s"] == pytest.approx(74 * NS)
    assert mod.loc["m.b", "dram_bytes"] == 0 and mod.loc["m.a", "dram_bytes"] == 32


def test_mac_utilization_next_to_busy_utilization(tables):
    _, b = tables
    # 576 MACs in 490 ns against 2 cores x 16 fp16 MACs/cycle x 1 GHz
    assert b.utilization["mac"] == pytest.approx(576 / (490e-9 * 32e9))
    assert b.precision.set_index("name").loc["fp16", "peak_macs_per_s"] == pytest.approx(32e9)
    # the matrix units are busy 430 + 74 ns of 2 x 490 (A's wait for DRAM counts as busy)
    assert b.utilization["matrix_busy"] == pytest.approx((430 + 74) / (2 * 490))
    assert b.utilization["sfu_busy"] == pytest.approx(60 / (2 * 490))


def test_weights_resident_and_streamed(hw_with_energy):
    # w.once is read by one GEMM (streams); w.many by three (kept on chip, loaded once).
    g = OpGraph()
    g.add(gemm("joint", "m.a", 4, 4, 4, "w.once"))
    prev = None
    for t in range(3):
        prev = g.add(gemm("prediction", "m.p", 4, 4, 8, "w.many", step=t), [prev] if prev is not None else [])
    b = breakdown(simulate(g, hw_with_energy, "fp16", audio_s=1.0))
    w = b.weight.set_index("name")
    assert w.loc["w.once", "residency"] == "streamed" and w.loc["w.once", "uses"] == 1
    assert w.loc["w.once", "bytes"] == 32 and w.loc["w.once", "dram_bytes"] == 32   # 4x4 fp16
    assert w.loc["w.many", "residency"] == "resident" and w.loc["w.many", "uses"] == 3
    assert w.loc["w.many", "onchip_bytes"] == 64 and w.loc["w.many", "dram_bytes"] == 64   # 4x8 fp16, once
    lines = "\n".join(b.lines())
    assert "1 resident, 0 partly, 1 streamed (1 used once)" in lines
    assert "w.once 32 B" in lines


def test_frame_has_every_section(tables):
    _, b = tables
    f = b.frame()
    assert list(f.columns) == list(COLUMNS)
    assert list(dict.fromkeys(f["section"])) == list(SECTIONS)
    util = f[f["section"] == "utilization"].set_index("name")["utilization"]
    assert util["mac"] == pytest.approx(b.utilization["mac"])
    json.dumps(b.to_dict(), allow_nan=False)          # NaN written as null: valid JSON


# ------------------------------------------------------------------------------------------------
# hwsim simulate: printed breakdown, run folder files, provenance

SIM = ["simulate", "--model", "tiny", "--hw", "rapid4", "--precision", "int4", "--beam", "2",
       "--lm-fusion", "dr", "--audio-s", "0.5"]


def test_run_folder_breakdown_roofline_provenance(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    argv = SIM + ["--out", str(out)]
    monkeypatch.setattr(sys, "argv", ["hwsim", *argv])
    assert main(argv) == 0
    text = capsys.readouterr().out
    for name in ("breakdown.csv", "breakdown.json", "roofline.csv", "roofline.png", "provenance.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    bd = pd.read_csv(out / "breakdown.csv")
    for section in ("phase", "module", "bound"):   # each splits the makespan: sums to latency_s
        assert bd.loc[bd["section"] == section, "latency_s"].sum() == pytest.approx(summary["latency_s"], rel=1e-9)
    assert bd.loc[bd["section"] == "module", "energy_j"].sum() + summary["energy_breakdown_j"]["static"] \
        == pytest.approx(summary["energy_j"], rel=1e-9)
    doc = json.loads((out / "breakdown.json").read_text())
    mac = doc["utilization"]["mac"]
    hw = load_spec("rapid4")                     # every GEMM of the int4 policy runs at int4 on rapid4
    m = hw.core.matrix
    peak = hw.cores * m.rows * m.cols * m.macs_per_pe_per_cycle["int4"] * hw.frequency_hz
    assert mac == pytest.approx(summary["macs"] / (summary["latency_s"] * peak), rel=1e-9)
    assert f"mac_utilization  {mac:.2%}" in text and "time by bound" in text and "top modules" in text
    # the worked example's lines come first, unchanged
    assert text.splitlines()[1].startswith("  latency_s ")
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["argv"] == ["hwsim", *argv]
    assert prov["version"] == version_string()
    assert prov["git_commit"] == git_commit(Path(__file__).resolve().parents[2])
    assert prov["args"]["beam"] == 2 and prov["args"]["precision"] == "int4"
    assert prov["inputs"] == {"model": "tiny", "hw": "rapid4", "precision": "int4", "audio_s": 0.5,
                              "graph_meta": json.loads((out / "config.json").read_text())["graph_meta"]}
    assert prov["config_sha256"] == hashlib.sha256((out / "config.json").read_bytes()).hexdigest()


def test_argv_not_recorded_from_python(monkeypatch):
    # main(argv) called from Python: this process's sys.argv is not the command's
    monkeypatch.setattr(sys, "argv", ["pytest", "-q"])
    args = build_parser().parse_args(SIM)
    prov = provenance(args)
    assert prov["argv"] is None and prov["args"]["model"] == "tiny" and "func" not in prov["args"]


# ------------------------------------------------------------------------------------------------
# hwsim simulate --graph


@pytest.fixture(scope="module")
def traced_file(tmp_path_factory) -> Path:
    system = models.build_system("tiny", seed=0)
    graph, _ = workloads.trace(system, random_features(system.config, 30, seed=1), beam=2, lm_fusion="dr")
    return graph.save(tmp_path_factory.mktemp("g") / "g.parquet")


def test_graph_equals_the_python_path(traced_file, capsys):
    assert main(["simulate", "--graph", str(traced_file), "--hw", "rapid4", "--precision", "int4", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    g = OpGraph.load(traced_file)
    ref = simulate(g, "rapid4", "int4", audio_s=g.meta["audio_s"]).summary
    assert rec["audio_s"] == 0.3 == ref["audio_s"]                     # 30 frames of 10 ms
    assert (rec["model"], rec["beam"], rec["lm_fusion"], rec["method"]) == ("tiny", 2, "dr", "alsd")
    assert rec["graph"] == str(traced_file)
    for key in ("latency_s", "rtf", "macs", "ops", "dram_bytes", "energy_j", "weight_bytes", "compression_x",
                "phases", "bound_by", "dram_bytes_by_source"):
        assert rec[key] == ref[key], key


def test_graph_option_agreeing_with_meta_is_accepted(traced_file, capsys):
    assert main(["simulate", "--graph", str(traced_file), "--model", "tiny", "--beam", "2", "--audio-s", "0.3",
                 "--hw", "rapid4", "--precision", "int4"]) == 0
    assert "(graph " in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--beam", "4"], "--beam 4: --graph {p} was made with beam 2"),
    (["--audio-s", "2"], "--audio-s 2: --graph {p} holds 0.3 s of audio"),
    (["--model", "small"], "--model small: {p} was made from model 'tiny'"),
])
def test_graph_contradicting_option_is_an_error(traced_file, capsys, extra, message):
    argv = ["simulate", "--graph", str(traced_file), "--hw", "rapid4", "--precision", "int4", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message.format(p=traced_file) in err and len(err.strip().splitlines()) == 1


def test_bad_graph_file_is_one_line_naming_it(tmp_path, capsys):
    not_parquet = tmp_path / "notes.parquet"
    not_parquet.write_text("hello")
    other = tmp_path / "table.parquet"
    pd.DataFrame({"x": [1, 2]}).to_parquet(other)
    for path, why in ((tmp_path / "missing.parquet", "no such file"), (tmp_path, "is a directory"),
                      (not_parquet, "not an op graph"), (other, "not an op graph")):
        assert main(["simulate", "--graph", str(path), "--hw", "rapid4", "--precision", "int4"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"--graph {path}: {why}" in err, err


def test_graph_without_model_needs_model(tmp_path, capsys, traced_file):
    g = OpGraph.load(traced_file)
    g.meta = {k: v for k, v in g.meta.items() if k != "model"}
    p = g.save(tmp_path / "anon.parquet")
    assert main(["simulate", "--graph", str(p), "--hw", "rapid4", "--precision", "int4"]) == 2
    assert "names no model; give --model" in capsys.readouterr().err
    assert main(["simulate", "--graph", str(p), "--model", "tiny", "--hw", "rapid4", "--precision", "int4"]) == 0


def test_run_folder_of_a_large_graph_leaves_out_the_per_op_files(tmp_path, monkeypatch):
    import importlib

    simulate_module = importlib.import_module("hwsim.simulate")   # the package's name is the function
    res = simulate(two_module_graph(), TINY_HW, "fp16", audio_s=1.0)
    monkeypatch.setattr(simulate_module, "MAX_RUN_FOLDER_OPS", 2)       # the graph has 3 ops
    out = res.save(tmp_path / "run")
    names = {p.name for p in out.iterdir()}
    assert {"summary.json", "phases.csv", "memory.csv", "mapping.csv", "config.json", "provenance.json"} <= names
    assert not names & {"ops.parquet", "ops.csv", "trace.json", "gantt.png", "breakdown.csv", "roofline.png"}
    assert "3 ops > hwsim.limits.MAX_RUN_FOLDER_OPS (2)" in json.loads((out / "provenance.json").read_text())["per_op_files"]
    monkeypatch.setattr(simulate_module, "MAX_RUN_FOLDER_OPS", 3)
    assert (res.save(tmp_path / "run3") / "ops.parquet").is_file()


def test_cli_leaves_out_the_breakdown_of_a_large_graph(capsys, monkeypatch):
    import hwsim.limits

    monkeypatch.setattr(hwsim.limits, "MAX_RUN_FOLDER_OPS", 10)
    assert main(["simulate", "--model", "tiny", "--hw", "rapid4", "--precision", "int4", "--beam", "2",
                 "--lm-fusion", "none", "--audio-s", "1"]) == 0
    out = capsys.readouterr().out
    assert "breakdown        left out:" in out and "> hwsim.limits.MAX_RUN_FOLDER_OPS (10)" in out
    assert "time by bound" not in out
