"""The README's streaming and serving section is what the tools print and what the committed report
and benchmark hold."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from hwsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
STREAM = ("hwsim simulate --model swb300-stream --hw edge --precision int4 --beam 8 --lm-fusion dr --audio-s 60 "
          "--streaming")
SERVE = "hwsim serve --model swb300-stream --hw edge --precision int4 --beam 8 --lm-fusion dr --max-streams --p95-ms 40"


def _block(command: str) -> str:
    return README.split(f"$ {command}\n", 1)[1].split("```", 1)[0]


def test_streaming_block_is_the_output(capsys):
    assert main(STREAM.split()[1:]) == 0
    out = capsys.readouterr().out
    assert "".join(out.splitlines(keepends=True)[:4]) == _block(STREAM + " | head -4")
    assert "stream                0.50 of   18.07 MiB resident" in out
    assert "on `edge`, 0.5 of 18 MiB stays on chip" in README


@pytest.fixture(scope="module")
def served():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "hwsim.cli", *SERVE.split()[1:], "--json"], capture_output=True,
                          text=True, check=True, cwd=ROOT)
    return json.loads(proc.stdout)


def test_serve_block_is_the_output(capsys, served):
    assert main(SERVE.split()[1:]) == 0
    assert capsys.readouterr().out == _block(SERVE)
    sv = served["service_s"]
    assert (f"a batch of 16 costs {sv['encoder_b16'] * 1000:.1f} ms of encoder where one stream costs "
            f"{sv['encoder_b1'] * 1000:.1f} ms, so INT4 with DR fusion carries {served['max_streams']} streams "
            "at 40 ms") in " ".join(README.split())
    assert f"# {served['max_streams']}, {{streams: ServeResult}}" in README


def test_serve_sentences_match_the_report_tables(capsys):
    assert main(SERVE.replace("int4", "fp16").split()[1:] + ["--json"]) == 0
    fp16 = json.loads(capsys.readouterr().out)
    text = " ".join(README.split())
    assert fp16["max_streams"] == 0
    assert f"FP16 carries none (one stream's p95 is {fp16['p95_s'] * 1000:.1f} ms)" in text
    cap = pd.read_csv(ROOT / "reports" / "paper" / "serving_capacity.csv")
    r = cap[(cap["hw"] == "rapid4") & (cap["beam"] == 8) & (cap["lm_fusion"] == "dr")].set_index("precision")
    assert (f"(`rapid4` INT4: {r.loc['int4', 'max_streams']} streams, FP16: {r.loc['fp16', 'max_streams']})"
            in text)


def test_cost_sentence_is_the_benchmark():
    res = json.loads((ROOT / "benchmarks" / "results" / "streaming.json").read_text())
    runs = {(r["command"].split(" --hw ")[1].split()[0], r["command"].split()[1]): r for r in res["runs"]}
    text = " ".join(README.split())
    edge_stream = runs["edge", "simulate"]
    m = re.search(r"the 60 s stream above, ([0-9,]+) ops, ([0-9.]+) s of CPU", text)
    assert m and m.group(1) == f"{edge_stream['figures']['ops']:,}" and m.group(2) == f"{edge_stream['cpu_s']:.2f}"
    assert f"on `edge` (limit 64) {runs['edge', 'serve']['cpu_s']:.2f} s" in text
    assert f"on `rapid4` with `--limit 4096` {runs['rapid4', 'serve']['cpu_s']:.1f} s" in text
