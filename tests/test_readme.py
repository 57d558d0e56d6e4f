"""The README's worked example is what the tool prints: a change that moves a headline number is a
visible diff in the README, not a silent drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import workloads
from hwsim import simulate
from hwsim.cli import main
from models.config import load_config

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
EXAMPLE = "hwsim simulate --model swb300 --hw rapid4 --precision int4 --beam 16 --lm-fusion dr --audio-s 10"


def test_worked_example_output_is_the_readme_block(capsys):
    block = README.split(f"$ {EXAMPLE}\n", 1)[1].split("```", 1)[0]
    assert main(EXAMPLE.split()[1:]) == 0
    assert capsys.readouterr().out == block


@pytest.fixture(scope="module")
def paper_point():
    cfg = load_config("swb300")
    graph = workloads.paper_graph(cfg, 10.0, 16, "dr")
    return {p: simulate(graph, "rapid4", p, 10.0, config=cfg) for p in ("fp16", "int4")}


def test_fp16_sentence(paper_point):
    m = re.search(r"same at FP16 takes ([0-9.]+) s: a ([0-9.]+)x speed-up", README)
    fp16, int4 = (paper_point[p].summary["latency_s"] for p in ("fp16", "int4"))
    assert m.group(1) == f"{fp16:.3f}"
    assert m.group(2) == f"{fp16 / int4:.1f}"


def test_residency_sentences(paper_point):
    m = re.search(r"search's\n([0-9.]+) MiB of reused weights fill the ([0-9]+) MiB of scratchpads", README)
    r = paper_point["int4"]
    w = r.memory[(r.memory["kind"] == "weight") & (r.memory["segment_label"] == "search") & (r.memory["uses"] > 1)]
    assert m.group(1) == f"{w['bytes'].sum() / 2**20:.2f}"
    assert int(m.group(2)) * 2**20 == r.hw.cores * r.hw.core.scratchpad_bytes
    onchip = (w["local_bytes"] + w["shared_bytes"] + w["remote_bytes"]).sum()
    assert onchip == pytest.approx(r.hw.cores * r.hw.core.scratchpad_bytes)       # they fill it
    f = paper_point["fp16"]
    wf = f.memory[(f.memory["kind"] == "weight") & (f.memory["segment_label"] == "search") & (f.memory["uses"] > 1)]
    assert "more than four times the chip's 8 MiB" in README
    assert wf["bytes"].sum() > 4 * f.hw.cores * f.hw.core.scratchpad_bytes
    assert f.summary["dram_bytes"] / f.hw.dram_bw_bytes_per_s > 0.9 * f.summary["latency_s"]   # DRAM-bound
