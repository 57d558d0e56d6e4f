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


# ------------------------------------------------------------------------------------------------
# hwsim --version


def test_version_is_the_package_version_and_the_checkout_commit(capsys):
    import re
    import shutil
    import subprocess
    import tomllib
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    version = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["version"]
    m = re.fullmatch(rf"hwsim {re.escape(version)}(?: \(git ([0-9a-f]{{12}})\))?\n", out)
    assert m, out
    if shutil.which("git") and (repo / ".git").exists():
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True)
        if head.returncode == 0:
            assert m.group(1) == head.stdout.strip()[:12]


def test_git_commit_reads_heads_refs_and_worktrees(tmp_path):
    from hwsim.cli import git_commit

    a, b = "a" * 40, "0123456789abcdef" * 2 + "01234567"
    assert git_commit(tmp_path) is None                              # not a checkout
    git = tmp_path / "repo" / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text(f"{a}\n")                              # detached
    assert git_commit(tmp_path / "repo") == a
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text(f"{b}\n")           # a loose ref
    assert git_commit(tmp_path / "repo") == b
    (git / "refs" / "heads" / "main").unlink()
    (git / "packed-refs").write_text(f"# pack-refs with: peeled\n{a} refs/heads/other\n{b} refs/heads/main\n")
    assert git_commit(tmp_path / "repo") == b                        # a packed ref
    wt = git / "worktrees" / "wt"                                    # a worktree: .git is a file
    wt.mkdir(parents=True)
    (wt / "HEAD").write_text("ref: refs/heads/main\n")
    (wt / "commondir").write_text("../..\n")
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / ".git").write_text(f"gitdir: {wt}\n")
    assert git_commit(tmp_path / "wt") == b
    (git / "HEAD").write_text("ref: refs/heads/missing\n")
    assert git_commit(tmp_path / "repo") is None                     # a branch with no commit yet


# ------------------------------------------------------------------------------------------------
# hwsim presets show POLICY --model M


def _columns(out: str, header: str) -> dict[str, list[str]]:
    """The rows of the table under ``header`` (first cell -> cells)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [header]) + 1
    rows = {}
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        cells = line.split()
        rows[cells[0]] = cells[1:]
    return rows


def test_presets_show_policy_for_a_model(capsys):
    from models.params import parameter_table

    assert main(["presets", "show", "int8-encoder", "--model", "tiny"]) == 0
    out = capsys.readouterr().out
    params = parameter_table(load_config("tiny"))
    tensors = _columns(out, "tensor")
    assert list(tensors) == [p.name for p in params]                 # every tensor, once, in order
    total = 0
    for p in params:
        role, shape, precision, _, _, nbytes = tensors[p.name][:6]
        encoder_int = p.name.startswith("rnnt.encoder.") and p.role == "weight"
        want = "int8" if encoder_int else ("fp32" if p.role == "bias" else "int4")
        assert (role, shape, precision) == (p.role, "x".join(map(str, p.shape)), want), p.name
        assert (tensors[p.name][-1] == "rnnt.encoder.layers.*") == encoder_int
        total += int(nbytes.replace(",", ""))
    header = out.splitlines()[0]
    assert header.startswith(f"int8-encoder on tiny: {len(params)} parameter tensors, {total:,} bytes (fp32 "
                             f"{4 * sum(p.numel for p in params):,}")
    acts = _columns(out, "module")
    assert acts["rnnt.encoder.layers.0.fwd"][:6] == ["lstm", "int8", "int8", "fp16", "fp16", "fp16"]
    assert acts["lm_ext.layers.0"][:6] == ["lstm", "int4", "int4", "fp16", "fp16", "fp16"]
    assert acts["rnnt.joint.out"][:7] == ["linear", "int4", "-", "-", "-", "-", "fp16"]


def test_presets_show_model_errors(tmp_path, capsys):
    from models.quant.policy import POLICY_DIR

    bad = tmp_path / "typo.yaml"
    bad.write_text((POLICY_DIR / "int8-encoder.yaml").read_text().replace("rnnt.encoder.layers.*", "rnnt.enc.*"))
    for argv, words in (
        (["presets", "show", str(bad), "--model", "tiny"], ["'rnnt.enc.*'", "matches no module", "'tiny'"]),
        (["presets", "show", "rapid4", "--model", "tiny"], ["'rapid4' is not a precision policy"]),
        (["presets", "show", "int4", "--model", "nope"], ["nope"]),
        (["presets", "--model", "tiny"], ["--model goes with 'show POLICY'"]),
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and all(w in err[0] for w in words), err


def test_readme_presets_show_block(capsys):
    """The README's excerpt of `presets show int8-encoder --model tiny`: its lines, in order."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    command = "$ hwsim presets show int8-encoder --model tiny\n"
    shown = [line for line in readme.split(command, 1)[1].split("```", 1)[0].splitlines() if line.strip() != "..."]
    assert main(command.split()[2:]) == 0
    lines = iter(capsys.readouterr().out.splitlines())
    for line in shown:
        assert any(line == out for out in lines), line          # found after the previous one
