"""``hwsim trace``: writes the Parquet graph with its metadata and prints the phase table."""

from hwsim.cli import main
from workloads.graph import OpGraph


def test_trace_command(tmp_path, capsys):
    out = tmp_path / "g.parquet"
    rc = main(["trace", "--model", "tiny", "--beam", "3", "--lm-fusion", "dr", "--frames", "40",
               "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "lm_ext" in text and "unknown ops: none" in text
    g = OpGraph.load(out)
    assert g.meta["model"] == "tiny" and g.meta["beam"] == 3 and g.meta["lm_fusion"] == "dr"
    assert g.meta["frames"] == 40 and g.meta["search"]["search_steps"] > 0
    frame = g.to_frame()
    assert {"op", "kind", "phase", "step", "macs", "bytes_read", "bytes_written", "weight"} <= set(frame.columns)


def _notes(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("note: ")]


def test_trace_prints_and_stores_the_transcript_and_says_what_is_random(tmp_path, capsys):
    import json

    import models
    from models.features import random_features

    out = tmp_path / "g.parquet"
    assert main(["trace", "--model", "tiny", "--beam", "3", "--lm-fusion", "dr", "--frames", "40",
                 "--seed", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    # the same decode without the tracer: seeded weights, seeded random features
    system = models.build_system("tiny", seed=2)
    expected = models.decode(system, random_features(system.config, 40, seed=2), beam=3, lm_fusion="dr").text
    assert f"transcript: {json.dumps(expected)}" in text.splitlines()
    assert _notes(text) == [
        "note: random weights (no --checkpoint; seed 2): the transcript is not a recognition result",
        "note: random features (40 frames, seed 2), not speech"]
    meta = OpGraph.load(out).meta
    assert meta["transcript"] == expected
    assert (meta["weights"], meta["checkpoint"], meta["features"], meta["seed"]) == ("random", None, "random", 2)


def test_trace_with_checkpoint_and_audio_has_no_random_notes(tmp_path, capsys):
    import wave

    import numpy as np

    import models
    from models.features import SAMPLE_RATE_HZ, features_for, load_wav

    ckpt = models.build_system("tiny", seed=7).save(tmp_path / "tiny.pt")
    wav = tmp_path / "a.wav"
    samples = (np.random.default_rng(0).normal(0, 0.1, SAMPLE_RATE_HZ // 2) * 32767).astype("<i2")
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(SAMPLE_RATE_HZ), w.writeframes(samples.tobytes())
    out = tmp_path / "g.parquet"
    assert main(["trace", "--model", "tiny", "--checkpoint", str(ckpt), "--beam", "2", "--audio", str(wav),
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert _notes(text) == []
    system = models.build_system("tiny", checkpoint=ckpt)
    wave_t, rate = load_wav(wav)
    expected = models.decode(system, features_for(system.config, wave_t, rate), beam=2).text
    meta = OpGraph.load(out).meta
    assert meta["transcript"] == expected
    assert (meta["weights"], meta["checkpoint"], meta["features"]) == ("checkpoint", str(ckpt), "audio")
