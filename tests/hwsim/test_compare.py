"""``hwsim compare``: run folders and sweep points side by side (hwsim.compare, hwsim.commands.compare).

Expected numbers come from the inputs themselves: the summaries and tables the run folders hold
(read here with json / pandas, not through hwsim.compare), hand-made run folders whose every
number is chosen here, and sweep parts written with chosen figures.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from hwsim.cli import main
from hwsim.compare import PHASES, RunInputError, compare
from hwsim.dse import store

SIM = ["simulate", "--model", "tiny", "--hw", "rapid4", "--audio-s", "1"]


def run_cli(argv, capsys) -> tuple[int, str, list[str]]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err.splitlines()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Three real run folders of `tiny`: int4 and fp16 without fusion, int4 with DR fusion."""
    root = tmp_path_factory.mktemp("runs")
    cases = {"int4": ["--precision", "int4", "--beam", "2"],
             "fp16": ["--precision", "fp16", "--beam", "2"],
             "int4_dr": ["--precision", "int4", "--beam", "2", "--lm-fusion", "dr"]}
    for name, args in cases.items():
        assert main(SIM + args + ["--out", str(root / name)]) == 0
    return {name: root / name for name in cases}


def summary_of(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


# ------------------------------------------------------------------------------------------------
# Real run folders


def test_summary_values_and_ratios_are_the_summaries_divided(runs):
    a, b = summary_of(runs["int4"]), summary_of(runs["fp16"])
    rec = compare([str(runs["int4"]), str(runs["fp16"])]).to_json()
    for metric in ("latency_s", "rtf", "energy_j", "dram_bytes", "weight_bytes", "compression_x", "macs", "ops"):
        entry = rec["summary"][metric]
        assert entry["values"] == [a[metric], b[metric]], metric
        assert entry["ratios"] == [1.0, b[metric] / a[metric]], metric
    # the same model and graph: only the precision differs
    assert rec["summary"]["macs"]["ratios"][1] == 1.0
    assert rec["summary"]["compression_x"]["values"] == [a["compression_x"], 2.0]   # fp16 stores half of fp32
    assert [r["precision"] for r in rec["runs"]] == ["int4", "fp16"]
    assert [(r["beam"], r["lm_fusion"], r["method"]) for r in rec["runs"]] == [(2, "none", "alsd")] * 2


def test_phases_come_from_phases_csv_largest_difference_first(runs):
    pa, pb = (pd.read_csv(runs[k] / "phases.csv").set_index("phase") for k in ("int4", "fp16"))
    rec = compare([str(runs["int4"]), str(runs["fp16"])]).to_json()
    for metric in ("latency_s", "energy_j"):
        entries = rec["phases"][metric]
        assert sorted(e["phase"] for e in entries) == sorted(PHASES)
        for e in entries:
            va, vb = pa.loc[e["phase"], metric], pb.loc[e["phase"], metric]
            assert e["values"] == [va, vb]
            assert e["ratios"] == ([1.0, vb / va] if va else [None, None])
        diffs = [abs(e["values"][1] - e["values"][0]) for e in entries]
        assert diffs == sorted(diffs, reverse=True)
    # the phases' latencies sum to the run's latency (they are shares of the makespan)
    assert sum(e["values"][1] for e in rec["phases"]["latency_s"]) == pytest.approx(summary_of(runs["fp16"])["latency_s"])


def test_modules_add_up_to_the_phase_tables(runs):
    """Per-module busy time and energy, summed, equal phases.csv's busy_s and energy_j totals,
    and the summary's energy minus its static part (two tables the simulator writes itself)."""
    rec = compare([str(runs["int4"]), str(runs["int4_dr"])]).to_json()
    for i, key in enumerate(("int4", "int4_dr")):
        phases = pd.read_csv(runs[key] / "phases.csv")
        s = summary_of(runs[key])
        busy = sum(e["values"][i] for e in rec["modules"]["busy_s"])
        energy = sum(e["values"][i] for e in rec["modules"]["energy_j"])
        assert busy == pytest.approx(phases["busy_s"].sum(), rel=1e-12)
        assert energy == pytest.approx(phases["energy_j"].sum(), rel=1e-12)
        assert energy == pytest.approx(s["energy_j"] - s["energy_breakdown_j"]["static"], rel=1e-9)
    # the LMs run only with fusion: in the first run they ran no op (0), so no ratio
    lm = {e["module"]: e for e in rec["modules"]["busy_s"] if e["module"].startswith("lm_ext")}
    assert lm and all(e["values"][0] == 0 and e["values"][1] > 0 and e["ratios"][1] is None for e in lm.values())
    ops = pd.read_parquet(runs["int4_dr"] / "ops.parquet", columns=["module", "latency_s"])
    assert {e["module"] for e in rec["modules"]["busy_s"]} == set(ops["module"].astype(str))


def test_cli_text_json_and_csv(runs, tmp_path, capsys):
    a, b = summary_of(runs["int4"]), summary_of(runs["fp16"])
    code, out, err = run_cli(["compare", runs["int4"], runs["fp16"]], capsys)
    assert code == 0 and err == []
    lines = out.splitlines()
    assert lines[1].split()[:2] == ["A", str(runs["int4"])] and "fp16" in lines[2]
    dram = next(line for line in lines if line.strip().startswith("dram_bytes"))
    assert dram.split() == ["dram_bytes", f"{a['dram_bytes']:,.0f}", f"{b['dram_bytes']:,.0f}",
                            f"{b['dram_bytes'] / a['dram_bytes']:.3f}"]
    assert "per module: busy_s" in out and "(search)" in out

    csv = tmp_path / "out" / "cmp.csv"
    code, out, _ = run_cli(["compare", runs["int4"], runs["fp16"], "--json", "--out", csv], capsys)
    assert code == 0
    rec = json.loads(out)                      # one object
    assert rec["summary"]["latency_s"]["ratios"][1] == b["latency_s"] / a["latency_s"]
    table = pd.read_csv(csv, keep_default_na=False, na_values=[""])
    assert list(table.columns) == ["section", "item", "metric", "run", "source", "value", "ratio"]
    row = table[(table["section"] == "summary") & (table["metric"] == "energy_j") & (table["run"] == 1)].iloc[0]
    assert row["source"] == str(runs["fp16"])
    assert row["value"] == pytest.approx(b["energy_j"], rel=1e-15)
    assert row["ratio"] == pytest.approx(b["energy_j"] / a["energy_j"], rel=1e-15)

    code, out, _ = run_cli(["compare", runs["int4"], runs["fp16"], "--top", "2"], capsys)
    assert code == 0 and "(top 2 of 6)" in out


# ------------------------------------------------------------------------------------------------
# Hand-made run folders: every number chosen here


def make_run(folder: Path, latency_s: float, phases: dict[str, tuple[float, float]],
             ops: list[tuple[str, float, float]], **summary) -> Path:
    folder.mkdir(parents=True)
    s = {"model": "m", "hw": "h", "precision": "p", "audio_s": 2.0, "latency_s": latency_s,
         "rtf": latency_s / 2.0, **summary}
    (folder / "summary.json").write_text(json.dumps(s))
    rows = [{"phase": p, "latency_s": phases.get(p, (0.0, 0.0))[0], "busy_s": 0.0,
             "energy_j": phases.get(p, (0.0, 0.0))[1]} for p in PHASES]
    pd.DataFrame(rows).to_csv(folder / "phases.csv", index=False)
    pd.DataFrame(ops, columns=["module", "latency_s", "energy_j"]).to_parquet(folder / "ops.parquet")
    return folder


def test_hand_made_runs_order_ratios_and_gaps(tmp_path):
    a = make_run(tmp_path / "a", 10.0, {"encoder": (6.0, 1.0), "joint": (4.0, 2.0)},
                 [("enc", 1.0, 0.5), ("enc", 2.0, 0.5), ("joint", 4.0, 2.0)], energy_j=5.0, macs=100)
    b = make_run(tmp_path / "b", 8.0, {"encoder": (3.0, 1.0), "joint": (4.5, 2.0), "lm_ext": (0.5, 0.25)},
                 [("enc", 1.5, 0.5), ("joint", 4.5, 2.0), ("lm", 0.5, 0.25)], energy_j=4.0, macs=100)
    result = compare([str(a), str(b)])
    rec = result.to_json()
    assert rec["summary"]["latency_s"] == {"values": [10.0, 8.0], "ratios": [1.0, 0.8]}
    assert rec["summary"]["energy_j"] == {"values": [5.0, 4.0], "ratios": [1.0, 0.8]}
    assert rec["summary"]["dram_bytes"] == {"values": [None, None], "ratios": [None, None]}   # not in the summary
    lat = rec["phases"]["latency_s"]
    # |diff|: encoder 3, lm_ext 0.5, joint 0.5 (ties keep the phase order), then the rest (0)
    assert [e["phase"] for e in lat] == ["encoder", "joint", "lm_ext", "prediction", "lm_src", "search"]
    assert lat[0] == {"phase": "encoder", "values": [6.0, 3.0], "ratios": [1.0, 0.5]}
    assert lat[2] == {"phase": "lm_ext", "values": [0.0, 0.5], "ratios": [None, None]}   # 0 in the reference
    busy = {e["module"]: e for e in rec["modules"]["busy_s"]}
    assert [e["module"] for e in rec["modules"]["busy_s"]] == ["enc", "joint", "lm"]    # 1.5, 0.5, 0.5
    assert busy["enc"]["values"] == [3.0, 1.5] and busy["enc"]["ratios"] == [1.0, 0.5]
    assert busy["lm"]["values"] == [0.0, 0.5]                   # absent from a: it ran no op there
    energy = {e["module"]: e["values"] for e in rec["modules"]["energy_j"]}
    assert energy == {"enc": [1.0, 0.5], "joint": [2.0, 2.0], "lm": [0.0, 0.25]}
    wide = result.block("phase", "latency_s")
    assert list(wide.columns) == ["value_0", "value_1", "ratio_0", "ratio_1"]
    assert math.isnan(wide.loc["lm_ext", "ratio_1"])


def test_missing_tables_and_energy_are_notes_not_errors(tmp_path):
    a = make_run(tmp_path / "a", 1.0, {"encoder": (1.0, 0.1)}, [("enc", 1.0, 0.1)])
    b = make_run(tmp_path / "b", 2.0, {"encoder": (2.0, 0.2)}, [("enc", 2.0, 0.2)])
    (b / "ops.parquet").unlink()
    (b / "phases.csv").unlink()   # phase latencies then come from the summary
    summary = json.loads((b / "summary.json").read_text())
    (b / "summary.json").write_text(json.dumps({**summary, "phases": {p: (2.0 if p == "encoder" else 0.0) for p in PHASES}}))
    rec = compare([str(a), str(b)]).to_json()
    assert rec["modules"] is None
    assert rec["phases"]["latency_s"][0] == {"phase": "encoder", "values": [1.0, 2.0], "ratios": [1.0, 2.0]}
    assert "energy_j" not in rec["phases"]
    assert any("per-phase energy_j" in n and str(b) in n for n in rec["notes"])
    assert any("per-module" in n and "ops.parquet" in n for n in rec["notes"])


# ------------------------------------------------------------------------------------------------
# Sweep points


@pytest.fixture()
def sweep_dir(tmp_path) -> Path:
    out = tmp_path / "sweep"
    base = {"status": "ok", "model": "tiny", "hw": "rapid4", "audio_s": 1.0, "beam": 4, "lm_fusion": "dr",
            "method": "alsd", "hw.core.matrix.rows": 16, "macs": 1000, "ops": 10, "weight_bytes": 200,
            "fp32_weight_bytes": 800, "dram_bytes": 50.0, "energy_j": 1e-3, "error": None, "elapsed_s": 0.1}
    phases = {f"phase_{p}_s": 0.0 for p in PHASES}
    rows = [
        {**base, **phases, "key": "aa11", "precision": "int4", "latency_s": 2e-3, "rtf": 2e-3,
         "compression_x": 4.0, "phase_encoder_s": 1.5e-3, "phase_lm_ext_s": 0.5e-3},
        {**base, **phases, "key": "aa22", "precision": "fp16", "latency_s": 5e-3, "rtf": 5e-3,
         "compression_x": 2.0, "phase_encoder_s": 3e-3, "phase_lm_ext_s": 2.5e-3, "dram_bytes": 125.0},
        {**base, **phases, "key": "bb33", "status": "error", "precision": "int2", "latency_s": None,
         "rtf": None, "compression_x": None, "error": "ValueError: boom"},
    ]
    store.write_part(out, rows)
    return out


def test_sweep_points_by_key_prefix(sweep_dir, runs):
    rec = compare([f"{sweep_dir}@aa1", f"{sweep_dir}@aa22"]).to_json()
    assert [r["kind"] for r in rec["runs"]] == ["sweep point"] * 2
    assert [r["key"] for r in rec["runs"]] == ["aa11", "aa22"]
    assert [r["precision"] for r in rec["runs"]] == ["int4", "fp16"] and rec["runs"][0]["hw.core.matrix.rows"] == 16
    assert rec["summary"]["latency_s"] == {"values": [2e-3, 5e-3], "ratios": [1.0, 2.5]}
    assert rec["summary"]["dram_bytes"]["ratios"] == [1.0, 2.5]
    assert rec["summary"]["compression_x"]["ratios"] == [1.0, 0.5]
    phases = rec["phases"]["latency_s"]
    assert [e["phase"] for e in phases][:2] == ["lm_ext", "encoder"]    # differences 2e-3, 1.5e-3
    assert phases[0]["ratios"] == [1.0, 5.0] and phases[1]["ratios"] == [1.0, 2.0]
    assert rec["modules"] is None and any("sweep point" in n for n in rec["notes"])
    # a run folder against a sweep point: summary and phase latencies
    mixed = compare([str(runs["int4"]), f"{sweep_dir}@aa22"]).to_json()
    lat = summary_of(runs["int4"])["latency_s"]
    assert mixed["summary"]["latency_s"]["ratios"] == [1.0, 5e-3 / lat]


@pytest.mark.parametrize("suffix, message", [
    ("@a", "2 design points of"), ("@zz", "no design point of"), ("@", "empty point key"),
    ("@bb33", "failed in the sweep (ValueError: boom)"), ("", "is a sweep folder"),
])
def test_bad_sweep_points(sweep_dir, runs, capsys, suffix, message):
    code, out, err = run_cli(["compare", runs["int4"], f"{sweep_dir}{suffix}"], capsys)
    assert code == 2 and out == "" and len(err) == 1
    assert f"{sweep_dir}{suffix}" in err[0] and message in err[0]


# ------------------------------------------------------------------------------------------------
# Bad input: one line naming the path, exit 2, nothing written


def test_bad_inputs_name_the_path(runs, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    a_file = tmp_path / "a.txt"
    a_file.write_text("x")
    bad_json = make_run(tmp_path / "badjson", 1.0, {}, [])
    (bad_json / "summary.json").write_text("{not json")
    bad_ops = make_run(tmp_path / "badops", 1.0, {}, [])
    (bad_ops / "ops.parquet").write_text("not parquet")
    cases = [
        (tmp_path / "nope", "no such directory"),
        (empty, "no summary.json"),
        (a_file, "is a file"),
        (bad_json, "summary.json: not a JSON file"),
        (bad_ops, "ops.parquet: not a Parquet file"),
        (tmp_path / "nodir@abc", "no such directory"),
    ]
    csv = tmp_path / "cmp.csv"
    for path, message in cases:
        code, out, err = run_cli(["compare", runs["int4"], path, "--out", csv], capsys)
        assert code == 2 and out == "" and len(err) == 1, (path, err)
        assert err[0].startswith("hwsim compare: error: ") and str(path) in err[0] and message in err[0], err
        assert not csv.exists()
    code, _, err = run_cli(["compare", runs["int4"]], capsys)
    assert code == 2 and "at least two runs" in err[0] and str(runs["int4"]) in err[0]
    code, _, err = run_cli(["compare", runs["int4"], runs["fp16"], "--out", tmp_path], capsys)
    assert code == 2 and "--out" in err[0] and str(tmp_path) in err[0]
    with pytest.raises(RunInputError):
        compare([str(runs["int4"]), str(empty)])


# ------------------------------------------------------------------------------------------------
# In memory, and the README's example


def test_a_result_in_memory_compares_as_its_run_folder(runs):
    import workloads
    from hwsim import simulate
    from hwsim.compare import source_from_result
    from models.config import load_config

    cfg = load_config("tiny")
    graph = workloads.paper_graph(cfg, 1.0, 2, "none")
    result = simulate(graph, "rapid4", "fp16", 1.0, config=cfg)
    from_disk = compare([str(runs["int4"]), str(runs["fp16"])]).table
    in_memory = compare([str(runs["int4"]), source_from_result(result, str(runs["fp16"]))]).table
    pd.testing.assert_frame_equal(in_memory, from_disk)


def test_readme_compare_block(capsys):
    """The README's int4 vs int8-encoder comparison at the worked example's point (swb300,
    simulated in memory rather than written as run folders) and the sentence under it."""
    import re

    import workloads
    from hwsim import simulate
    from hwsim.commands.compare import print_comparison
    from hwsim.compare import source_from_result
    from models.config import load_config
    from models.quant.policy import load_policy, storage_bytes
    from models.params import parameter_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    command = "$ hwsim compare runs/int4 runs/int8-encoder --top 2\n"
    block = readme.split(command, 1)[1].split("```", 1)[0]
    cfg = load_config("swb300")
    graph = workloads.paper_graph(cfg, 10.0, 16, "dr")
    results = {p: simulate(graph, "rapid4", p, 10.0, config=cfg) for p in ("int4", "int8-encoder")}
    print_comparison(compare([source_from_result(r, f"runs/{p}") for p, r in results.items()]), top=2)
    assert capsys.readouterr().out == block

    a, b = results["int4"], results["int8-encoder"]
    m = re.search(r"compresses less \(([0-9.]+)x\n-> ([0-9.]+)x\)", readme)
    assert m.groups() == (f"{a.summary['compression_x']:.3f}", f"{b.summary['compression_x']:.3f}")
    enc = [p for p in parameter_table(cfg) if p.name.startswith("rnnt.encoder.") and p.role == "weight"]
    assert 1.9 < storage_bytes(enc, load_policy("int8-encoder")) / storage_bytes(enc, load_policy("int4")) <= 2.0
    added = b.summary["latency_s"] - a.summary["latency_s"]
    assert b.summary["phases"]["encoder"] - a.summary["phases"]["encoder"] > 0.95 * added   # nearly all
    rates = a.hw.core.matrix.macs_per_pe_per_cycle
    assert "int8" not in rates and rates["fp16"] / rates["int4"] == 1 / 8
    assert "matrix:int8->fp16" in b.summary["precision_fallbacks"]
    assert not any(k.startswith("matrix:") for k in a.summary["precision_fallbacks"])
