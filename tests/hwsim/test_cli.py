"""The presets and simulate commands (thin layers over the API)."""

from __future__ import annotations

import json

import pytest

import workloads
from hwsim.cli import main
from models.config import load_config
from hwsim_testgraphs import lstm_decode_graph


def test_presets_list(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "rapid4" in out and "swb300" in out and "int4" in out


def test_presets_show(capsys):
    assert main(["presets", "show", "rapid4"]) == 0
    assert "frequency_hz" in capsys.readouterr().out
    assert main(["presets", "show", "nope"]) == 2


def test_simulate_json(monkeypatch, capsys, tmp_path):
    calls = {}

    def fake_paper_graph(config, audio_s, beam, lm_fusion, method="alsd"):
        calls.update(beam=beam, lm_fusion=lm_fusion, method=method, audio_s=audio_s)
        return lstm_decode_graph(config, frames=4, steps=3, beam=beam, lm=lm_fusion == "dr")

    monkeypatch.setattr(workloads, "paper_graph", fake_paper_graph, raising=False)
    argv = ["simulate", "--model", "swb300", "--hw", "rapid4", "--precision", "int4", "--beam", "4",
            "--lm-fusion", "dr", "--audio-s", "2", "--json", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    rec = json.loads(capsys.readouterr().out)
    for key in ("model", "hw", "precision", "beam", "lm_fusion", "audio_s", "latency_s", "rtf", "macs",
                "ops", "weight_bytes", "fp32_weight_bytes", "compression_x", "phases"):
        assert key in rec, key
    assert rec["rtf"] == rec["latency_s"] / 2.0
    assert calls == {"beam": 4, "lm_fusion": "dr", "method": "alsd", "audio_s": 2.0}
    assert (tmp_path / "run" / "summary.json").exists()
    assert main(argv[:-3]) == 0           # the table form
    assert "latency_s" in capsys.readouterr().out


def test_simulate_bad_argument_named(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "--model", "swb300", "--hw", "rapid4", "--precision", "int4", "--audio-s", "-1"])
    assert "--audio-s" in capsys.readouterr().err


def test_simulate_unknown_hw(capsys):
    assert main(["simulate", "--model", "swb300", "--hw", "nope", "--precision", "int4"]) == 2
    assert "unknown hardware preset" in capsys.readouterr().err
