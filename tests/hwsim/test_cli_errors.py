"""Bad input at the command line: one line naming the culprit, exit status 2, nothing written.

Each case builds one malformed input (checkpoint, export, audio, output path, number, YAML,
sweep) under ``tmp_path/in`` and runs ``hwsim.cli.main`` in process. Every case must: exit with
status 2, print exactly one line on stderr, name the file / field / argument in it, and leave the
folder as it was (no partial output file or folder). A bug (any other exception) must instead
surface with its traceback and exit status 1.
"""

from __future__ import annotations

import json
import os
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

import models
from hwsim.cli import build_parser, main

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[2]
TINY_SWEEP = REPO / "workloads" / "sweeps" / "tiny.yaml"
SIM = ["simulate", "--model", "tiny", "--hw", "rapid4", "--precision", "int4", "--audio-s", "1"]


def run_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    return code, capsys.readouterr().err.splitlines()


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# ------------------------------------------------------------------------------------------------
# Inputs (module-scoped: built once)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Valid files to break: a tiny checkpoint, a tiny int8 export, a 16 kHz WAV."""
    from models.features import random_features
    from models.quant import export, quantize

    root = tmp_path_factory.mktemp("valid")
    system = models.build_system("tiny", seed=0)
    ckpt = system.save(root / "tiny.pt")
    qsys = quantize(system, "int8", mode="ptq", calib_features=[random_features(system.config, 40, seed=1)])
    npz = root / "tiny_int8.npz"
    export(qsys, npz)
    wav = root / "a.wav"
    write_wav(wav, 16000, 0.5)
    return {"pt": ckpt, "npz": npz, "wav": wav}


def write_wav(path: Path, rate: int, seconds: float) -> Path:
    samples = (np.sin(np.arange(int(rate * seconds)) * 0.05) * 8000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def rewrite_npz(src: Path, dst: Path, edit) -> Path:
    """Copy an export, letting ``edit(arrays, manifest)`` change it (manifest None = drop it)."""
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files}
    manifest = json.loads(arrays.pop("manifest").tobytes().decode())
    manifest = edit(arrays, manifest)
    if manifest is not None:
        raw = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
        arrays["manifest"] = np.frombuffer(raw, np.uint8)
    with open(dst, "wb") as f:
        np.savez(f, **arrays)
    return dst


def tiny_yaml(d: Path, name: str, **changes) -> Path:
    """models/presets/tiny.yaml with ``section.field`` lines replaced (text edit, keeps YAML)."""
    text = (REPO / "models" / "presets" / "tiny.yaml").read_text()
    for key, value in changes.items():
        section, field = key.split("__")
        head, _, rest = text.partition(f"\n{section}:\n")
        lines = rest.split("\n")
        for i, line in enumerate(lines):
            if line.strip().startswith(f"{field}:"):
                lines[i] = f"  {field}: {value}"
                break
        text = head + f"\n{section}:\n" + "\n".join(lines)
    path = d / name
    path.write_text(text)
    return path


def sweep_yaml(d: Path, extra: str) -> Path:
    path = d / "sweep.yaml"
    path.write_text(TINY_SWEEP.read_text() + extra)
    return path


# ------------------------------------------------------------------------------------------------
# The cases: name -> builder(d: input folder, out: an unused output path, inputs) -> (argv, names)
# where ``names`` are the strings the one error line must contain.


def _pt_truncated(d, out, i):
    data = i["pt"].read_bytes()
    (d / "t.pt").write_bytes(data[: len(data) // 2])
    return ["trace", "--model", "tiny", "--checkpoint", d / "t.pt", "--frames", "20", "--out", out], ["t.pt"]


def _pt_empty(d, out, i):
    (d / "e.pt").write_bytes(b"")
    return ["trace", "--model", "tiny", "--checkpoint", d / "e.pt", "--frames", "20", "--out", out], ["e.pt"]


def _pt_random(d, out, i):
    (d / "r.pt").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return ["trace", "--model", "tiny", "--checkpoint", d / "r.pt", "--frames", "20", "--out", out], ["r.pt"]


def _pt_directory(d, out, i):
    (d / "ck").mkdir()
    return (["trace", "--model", "tiny", "--checkpoint", d / "ck", "--frames", "20", "--out", out],
            ["ck", "directory"])


def _pt_given_npz(d, out, i):
    return (["trace", "--model", "tiny", "--checkpoint", i["npz"], "--frames", "20", "--out", out],
            ["tiny_int8.npz", ".npz export"])


def _pt_tensors_mismatch(d, out, i):
    data = torch.load(i["pt"], weights_only=True)
    data["lm_ext"] = {k: v[:-1] if v.dim() else v for k, v in data["lm_ext"].items()}
    torch.save(data, d / "m.pt")
    return (["trace", "--model", "tiny", "--checkpoint", d / "m.pt", "--frames", "20", "--out", out],
            ["m.pt", "lm_ext", "do not match"])


def _pt_no_config(d, out, i):
    data = torch.load(i["pt"], weights_only=True)
    del data["config"]
    torch.save(data, d / "n.pt")
    return (["trace", "--model", "tiny", "--checkpoint", d / "n.pt", "--frames", "20", "--out", out],
            ["n.pt", "config"])


def _pt_other_model(d, out, i):
    return (["trace", "--model", "small", "--checkpoint", i["pt"], "--frames", "20", "--out", out],
            ["tiny.pt", "'tiny'"])


FUNCSIM = ["funcsim", "--model", "tiny", "--frames", "20", "--checkpoint"]


def _npz_truncated(d, out, i):
    data = i["npz"].read_bytes()
    (d / "t.npz").write_bytes(data[: len(data) // 2])
    return FUNCSIM + [d / "t.npz"], ["t.npz"]


def _npz_empty(d, out, i):
    (d / "e.npz").write_bytes(b"")
    return FUNCSIM + [d / "e.npz"], ["e.npz"]


def _npz_directory(d, out, i):
    (d / "x.npz").mkdir()
    return FUNCSIM + [d / "x.npz"], ["x.npz", "directory"]


def _npz_random(d, out, i):
    (d / "r.npz").write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return FUNCSIM + [d / "r.npz"], ["r.npz"]


def _npz_given_pt(d, out, i):
    return FUNCSIM + [i["pt"]], ["tiny.pt", "torch checkpoint"]


def _npz_no_manifest(d, out, i):
    return FUNCSIM + [rewrite_npz(i["npz"], d / "nm.npz", lambda a, m: None)], ["nm.npz", "manifest"]


def _npz_bad_json(d, out, i):
    return FUNCSIM + [rewrite_npz(i["npz"], d / "bj.npz", lambda a, m: b'{"format": ')], ["bj.npz", "JSON"]


def _npz_arrays_disagree(d, out, i):
    def edit(arrays, manifest):
        name = manifest["tensors"][0]["name"]
        arrays[f"{name}:data"] = arrays[f"{name}:data"][:-1]
        return manifest
    return FUNCSIM + [rewrite_npz(i["npz"], d / "ad.npz", edit)], ["ad.npz", ":data"]


def _npz_config_disagrees(d, out, i):
    def edit(arrays, manifest):
        manifest["config"]["lm_src"]["hidden"] += 1
        return manifest
    return FUNCSIM + [rewrite_npz(i["npz"], d / "cd.npz", edit)], ["cd.npz", "lm_src"]


def _audio_directory(d, out, i):
    (d / "wavs").mkdir()
    return ["trace", "--model", "tiny", "--audio", d / "wavs", "--out", out], ["wavs", "directory"]


def _audio_8khz(d, out, i):
    return (["trace", "--model", "tiny", "--audio", write_wav(d / "n.wav", 8000, 0.5), "--out", out],
            ["n.wav", "8000 Hz", "16000 Hz"])


def _audio_not_wav(d, out, i):
    (d / "x.wav").write_text("not a wave file")
    return ["trace", "--model", "tiny", "--audio", d / "x.wav", "--out", out], ["x.wav"]


def _frames_too_few(d, out, i):
    return ["trace", "--model", "tiny", "--frames", "1", "--out", out], ["--frames 1"]


def _simulate_out_is_file(d, out, i):
    (d / "f").write_text("keep")
    return SIM + ["--out", d / "f"], ["--out", "existing file"]


def _simulate_out_parent_is_file(d, out, i):
    (d / "f").write_text("keep")
    return SIM + ["--out", d / "f" / "run"], ["--out", "is a file"]


def _trace_out_is_directory(d, out, i):
    return ["trace", "--model", "tiny", "--frames", "20", "--out", d], ["--out", "directory"]


def _trace_out_parent_is_file(d, out, i):
    (d / "f").write_text("keep")
    return ["trace", "--model", "tiny", "--frames", "20", "--out", d / "f" / "g.parquet"], ["--out", "is a file"]


def _quantize_out_parent_is_file(d, out, i):
    (d / "f").write_text("keep")
    return (["quantize", "--model", "tiny", "--precision", "int8", "--out", d / "f" / "q.npz"],
            ["--out", "is a file"])


def _quantize_policy_override_matches_nothing(d, out, i):
    policy = (REPO / "models" / "quant" / "policies" / "int8-encoder.yaml").read_text()
    (d / "typo.yaml").write_text(policy.replace("rnnt.encoder.layers.*", "rnnt.encoder.layer.*"))
    return (["quantize", "--model", "tiny", "--precision", d / "typo.yaml", "--synthetic", "--out", out / "q.npz"],
            ["rnnt.encoder.layer.*", "matches no module", "tiny"])


def _sweep_out_is_file(d, out, i):
    (d / "f").write_text("keep")
    return ["sweep", TINY_SWEEP, "--out", d / "f", "--workers", "0", "--no-progress"], ["--out", "existing file"]


def _sweep_out_parent_is_file(d, out, i):
    (d / "f").write_text("keep")
    return ["sweep", TINY_SWEEP, "--out", d / "f" / "s", "--workers", "0", "--no-progress"], ["--out", "is a file"]


def _report_out_parent_is_file(d, out, i):
    (d / "f").write_text("keep")
    return ["report", "--out", d / "f" / "r"], ["--out", "is a file"]


def _report_out_is_file(d, out, i):
    (d / "f").write_text("keep")
    return ["report", "--out", d / "f"], ["--out", "existing file"]


def _audio_s_inf(d, out, i):
    return SIM[:-1] + ["inf", "--out", out], ["--audio-s", "finite"]


def _audio_s_huge(d, out, i):
    return SIM[:-1] + ["1e6", "--out", out], ["--audio-s", "<= 3600"]


def _beam_huge(d, out, i):
    return SIM + ["--beam", "100000000", "--out", out], ["--beam", "<= 1024"]


def _seed_overflow(d, out, i):
    return ["trace", "--model", "tiny", "--frames", "20", "--seed", str(10**23), "--out", out], ["--seed"]


def _model_too_large_trace(d, out, i):
    path = tiny_yaml(d, "huge.yaml", encoder__hidden=2000000000)
    return ["trace", "--model", path, "--frames", "20", "--out", out], ["huge.yaml", "too large"]


def _model_too_large_simulate(d, out, i):
    path = tiny_yaml(d, "huge.yaml", lm_ext__hidden=2000000000)
    return ["simulate", "--model", path] + SIM[3:] + ["--out", out], ["huge.yaml", "too large"]


def _hw_frequency_inf(d, out, i):
    text = (REPO / "hwsim" / "presets" / "rapid4.yaml").read_text()
    lines = [("frequency_hz: .inf" if ln.startswith("frequency_hz:") else ln) for ln in text.splitlines()]
    assert any(ln == "frequency_hz: .inf" for ln in lines)
    (d / "hw.yaml").write_text("\n".join(lines) + "\n")
    return SIM[:4] + [d / "hw.yaml"] + SIM[5:] + ["--out", out], ["hw.yaml", "frequency_hz", "finite"]


def _hw_energy_missing_precision(d, out, i):
    import yaml

    data = yaml.safe_load((REPO / "hwsim" / "presets" / "rapid4.yaml").read_text())
    del data["energy"]["mac_j"]["int4"]
    (d / "hw.yaml").write_text(yaml.safe_dump(data))
    return SIM[:4] + [d / "hw.yaml"] + SIM[5:] + ["--out", out], ["rapid4", "energy.mac_j", "int4", "GEMMs"]


def _graph_op_without_cost_function(d, out, i):
    # what a trace holds when torch hands the dispatcher an op no cost function covers (an LSTM
    # that reaches it as one opaque mkldnn_rnn_layer on CPU)
    from workloads.graph import Op, OpGraph

    g = OpGraph({"model": "tiny", "audio_s": 1.0, "beam": 2, "lm_fusion": "none", "method": "alsd"})
    g.add(Op("mkldnn_rnn_layer", "unknown", "encoder"))
    g.add(Op("mkldnn_rnn_layer", "unknown", "encoder"))
    g.add(Op("mul", "eltwise", "search", elems=8, bytes_read=64, bytes_written=32))
    g.save(d / "g.parquet")
    return (["simulate", "--graph", d / "g.parquet", "--hw", "rapid4", "--precision", "int4", "--out", out],
            ["--graph", "g.parquet", "rapid4", "int4", "no cost function", "mkldnn_rnn_layer (unknown) x2"])


def _model_frame_shift_inf(d, out, i):
    path = tiny_yaml(d, "m.yaml", features__frame_shift_s=".inf")
    return ["simulate", "--model", path] + SIM[3:] + ["--out", out], ["m.yaml", "frame_shift_s", "finite"]


def _yaml_syntax(d, out, i):
    (d / "bad.yaml").write_text("name: tiny\nfeatures: {input_dim: 16\n")
    return ["simulate", "--model", d / "bad.yaml"] + SIM[3:] + ["--out", out], ["bad.yaml:", "invalid YAML"]


def _yaml_binary(d, out, i):
    return SIM[:6] + [i["npz"]] + SIM[7:] + ["--out", out], ["tiny_int8.npz", "not a UTF-8 text"]


def _unknown_hw(d, out, i):
    return SIM[:4] + ["nosuch"] + SIM[5:] + ["--out", out], ["nosuch"]


def _sweep_nested_power(d, out, i):
    path = sweep_yaml(d, 'constraints:\n  - "((beam ** 64) ** 64) ** 64 > 0"\n')
    return ["sweep", path, "--out", out, "--workers", "0", "--no-progress"], ["sweep.yaml", "constraints[0]"]


def _sweep_divide_by_zero(d, out, i):
    path = sweep_yaml(d, 'constraints:\n  - "beam / (beam - 4) > 0"\n')
    return ["sweep", path, "--out", out, "--workers", "0", "--no-progress"], ["sweep.yaml", "constraints[0]"]


def _sweep_audio_inf(d, out, i):
    path = d / "sweep.yaml"
    path.write_text(TINY_SWEEP.read_text().replace("audio_s: 1,", "audio_s: .inf,"))
    return ["sweep", path, "--out", out, "--workers", "0", "--no-progress"], ["sweep.yaml", "audio_s"]


def _report_sweep_missing(d, out, i):
    return ["report", "--out", out, "--sweep", d / "nonexistent"], ["--sweep", "nonexistent"]


def _accuracy_report_without_data(d, out, i):
    return ["accuracy", "--stage", "report", "--data", d / "data", "--out", out], ["--data", "eval/results.json"]


def _report_hw_unknown(d, out, i):
    return ["report", "--out", out, "--hw", "nosuch"], ["nosuch"]


CASES = {name[1:]: fn for name, fn in globals().items()
         if name.startswith("_") and name[1:2].isalpha() and callable(fn)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, inputs, tmp_path, capsys):
    d = tmp_path / "in"
    d.mkdir()
    argv, names = CASES[case](d, tmp_path / "out", inputs)
    before = tree(tmp_path)
    code, err = run_cli(argv, capsys)
    assert code == 2, err
    assert len(err) == 1, err
    assert err[0].startswith("hwsim "), err
    for name in names:
        assert name in err[0], (name, err[0])
    assert "Traceback" not in err[0]
    assert tree(tmp_path) == before  # no partial output file or folder


@pytest.mark.parametrize("command", ["simulate", "trace"])
def test_read_only_output_folder(command, tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root may write anyway: make the check see what a user would
        import hwsim.outputs as output

        real = os.access
        monkeypatch.setattr(output.os, "access", lambda p, mode: Path(p) != ro and real(p, mode))
    argv = {"simulate": SIM + ["--out", ro / "run"],
            "trace": ["trace", "--model", "tiny", "--frames", "20", "--out", ro / "g.parquet"]}[command]
    try:
        code, err = run_cli(argv, capsys)
    finally:
        ro.chmod(0o755)
    assert code == 2 and len(err) == 1 and f"directory {ro} is not writable" in err[0]
    assert list(ro.iterdir()) == []


# ------------------------------------------------------------------------------------------------
# Not bad input: bugs, and the sweep's own outcomes


def test_a_bug_shows_its_traceback_and_exits_1(monkeypatch, tmp_path, capsys):
    import hwsim.commands.simulate as cmd

    def broken(args, config):
        raise ValueError("an internal invariant broke")

    monkeypatch.setattr(cmd, "build_graph", broken)
    code, err = run_cli(SIM + ["--out", tmp_path / "run"], capsys)
    assert code == 1
    text = "\n".join(err)
    assert "Traceback (most recent call last)" in text and "ValueError: an internal invariant broke" in text
    assert "internal error" in err[-1]
    assert not (tmp_path / "run").exists()


def test_failed_points_exit_non_zero_and_are_counted(monkeypatch, tmp_path, capsys, caplog):
    import hwsim.dse.evaluate as ev

    def broken(point):
        raise RuntimeError("no figures")

    monkeypatch.setattr(ev, "evaluate_point", broken)
    code, _ = run_cli(["sweep", TINY_SWEEP, "--out", tmp_path / "s", "--workers", "0", "--no-progress"], capsys)
    assert code == 1
    assert "16 of 16 points failed" in caplog.text


def test_corrected_sweep_runs_into_the_folder_of_a_rejected_one(tmp_path, capsys):
    bad = sweep_yaml(tmp_path, 'constraints:\n  - "beam / (beam - 4) > 0"\n')
    out = tmp_path / "s"
    assert run_cli(["sweep", bad, "--out", out, "--workers", "0", "--no-progress"], capsys)[0] == 2
    assert not out.exists()
    good = sweep_yaml(tmp_path, 'constraints:\n  - "beam / (beam + 4) > 0"\n')
    assert run_cli(["sweep", good, "--out", out, "--workers", "0", "--no-progress"], capsys)[0] == 0
    assert (out / "sweep.yaml").exists() and list((out / "parts").glob("part-*.parquet"))


def test_second_sweep_into_a_locked_folder_is_refused(tmp_path, capsys):
    from hwsim.dse import store

    out = tmp_path / "s"
    out.mkdir()
    with store.lock(out):  # as a running sweep holds it
        code, err = run_cli(["sweep", TINY_SWEEP, "--out", out, "--workers", "0", "--no-progress"], capsys)
    assert code == 2 and len(err) == 1
    assert "another sweep" in err[0] and f"pid {os.getpid()}" in err[0]
    assert not store.part_paths(out)
    assert run_cli(["sweep", TINY_SWEEP, "--out", out, "--workers", "0", "--no-progress"], capsys)[0] == 0


def test_simulate_trace_uses_the_method_it_reports(monkeypatch, capsys):
    import workloads

    seen = []
    real = workloads.trace

    def spy(*args, **kwargs):
        seen.append(kwargs.get("method"))
        return real(*args, **kwargs)

    monkeypatch.setattr(workloads, "trace", spy)
    code, _ = run_cli(SIM[:-1] + ["0.3", "--trace", "--method", "tsd", "--beam", "2", "--json"], capsys)
    assert code == 0 and seen == ["tsd"]


def test_help_texts_have_no_rst_markup_and_every_option_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        text = p.format_help()
        assert "``" not in text, name
        for action in p._actions:
            assert action.help, (name, action.option_strings)


def test_a_failed_write_leaves_an_existing_output_folder_as_it_was(monkeypatch, tmp_path, capsys):
    from hwsim.simulate import SimResult

    out = tmp_path / "run"
    out.mkdir()
    (out / "summary.json").write_text("old")
    (out / "notes.txt").write_text("mine")

    def half_save(self, out_dir, **kwargs):
        Path(out_dir, "summary.json").write_text("new, half written")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(SimResult, "save", half_save)
    code, err = run_cli(SIM + ["--out", out], capsys)
    assert code == 1 and "OSError" in "\n".join(err)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "summary.json"]
    assert (out / "summary.json").read_text() == "old"
    monkeypatch.undo()
    assert run_cli(SIM + ["--out", out], capsys)[0] == 0  # a complete write replaces, keeps the rest
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "summary.json").read_text())["model"] == "tiny"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_processes_started_for_a_dask_cluster_leave_ctrl_c_to_the_driver():
    import signal
    import subprocess
    import sys

    from hwsim.dse.executors import _sigint_ignored_by_children

    probe = [sys.executable, "-c", "import signal, sys; sys.exit(3 if signal.getsignal(signal.SIGINT) "
             "is signal.SIG_IGN else 4)"]
    before = signal.getsignal(signal.SIGINT)
    with _sigint_ignored_by_children():
        assert subprocess.run(probe).returncode == 3  # ignored across fork + exec, kept by Python
    assert signal.getsignal(signal.SIGINT) is before
    assert subprocess.run(probe).returncode == 4


def test_the_readme_states_the_limits_the_code_applies():
    import re

    from hwsim.limits import MAX_AUDIO_S, MAX_BEAM
    from models.config import MAX_PARAMETERS

    text = " ".join((REPO / "README.md").read_text().split())
    m = re.search(r"at most (\d+) s of audio, beams up to (\d+); models up to 10\^(\d+) parameters", text)
    assert m, "README: the sentence stating the input limits"
    assert (float(m[1]), int(m[2]), 10 ** int(m[3])) == (MAX_AUDIO_S, MAX_BEAM, MAX_PARAMETERS)


def test_negative_seed_is_bad_input_not_a_crash(capsys, tmp_path):
    # numpy's generators reject negative seeds: the CLI says so instead of failing inside
    code, err = run_cli(["quantize", "--model", "tiny", "--precision", "int4", "--synthetic",
                         "--seed", "-1", "--out", tmp_path / "q.npz"], capsys)
    assert code == 2 and len(err) == 1 and "--seed" in err[0] and ">= 0" in err[0]
    assert not (tmp_path / "q.npz").exists()
