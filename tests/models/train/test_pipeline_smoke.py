"""End-to-end smoke of the accuracy pipeline on a toy corpus (tone synthesizer, ``tiny`` model):
corpus -> features -> training (RNN-T + both LMs) -> assemble -> PTQ/QAT -> tuning -> evaluation ->
report. Needs no espeak-ng, fortune or Bible package; a few seconds of training, not a usable model."""

from __future__ import annotations

import json

import pytest
import torch

import models
from models.data.corpus import read_manifest, verify
from models.train import pipeline

torch.set_num_threads(1)

FLAGS = ["--preset", "tiny", "--engine", "tones", "--train-hours", "0.01", "--fortunes-dev", "3",
         "--fortunes-test", "3", "--bible-dev", "3", "--bible-test", "3", "--rnnt-max-steps", "3",
         "--rnnt-max-frames", "2000", "--lm-src-steps", "3", "--lm-ext-steps", "3", "--qat-steps", "2",
         "--qat-max-frames", "1000", "--qat-lm-steps", "2", "--rnnt-threads", "1", "--tune-utts", "2", "--eval-utts", "2", "--beams", "1,2", "--ablate-utts", "2",
         "--ablate-beam", "2", "--qat-select-every", "1", "--qat-schedule", "decay",
         "--qat-augment", "rnnt", "--jobs", "1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("acc")
    flags = FLAGS + ["--data", str(root / "data"), "--checkpoints", str(root / "ckpt")]
    assert pipeline.main(["all", *flags]) == 0
    return root, flags


def test_corpus_is_reproducible(run):
    root, _ = run
    corpus = root / "data" / "corpus"
    rows = read_manifest(corpus)
    assert {r["split"] for r in rows} == {"train", "fortunes_dev", "fortunes_test", "bible_dev", "bible_test"}
    assert verify(corpus) == []
    # heldout voices never appear in train
    assert all(r["heldout_voice"] == "0" for r in rows if r["split"] == "train")
    assert (corpus / "text" / "lm_ext.txt").read_text().strip()


def test_checkpoints_load_and_decode(run):
    root, _ = run
    ck = root / "ckpt"
    manifest = json.loads((ck / "MANIFEST.json").read_text())["checkpoints"]
    assert set(manifest) == {"fp32", "int4-naive-ptq", "int4-ptq", "int4-qat"}
    assert manifest["fp32"]["rnnt"]["steps"] == 3
    # QAT's step count chosen on the dev sets among its snapshots (every step here: 1 and 2)
    sel = manifest["int4-qat"]["selection"]
    assert [r["steps"] for r in sel] == [1, 2] and manifest["int4-qat"]["steps_run"] == 2
    best = min(sel, key=lambda r: (r["dev_wer_mean"], r["steps"]))
    assert manifest["int4-qat"]["steps"] == best["steps"]
    assert all(r["dev_wer_mean"] == pytest.approx((r["dev_wer_none"] + r["dev_wer_dr"]) / 2, abs=0.01) for r in sel)
    fp32 = models.load_system(ck / "tiny-fp32.pt")
    from models.quant import load

    qat = load(ck / "tiny-int4-qat.npz")
    x = torch.randn(60, 16)
    for system in (fp32, qat):
        r = models.decode(system, x, beam=2, method="alsd", lm_fusion="dr")
        from models.config import encoder_frames

        assert r.stats.frames == encoder_frames(system.config, 60)
        assert len(r.hyps) >= 1 and all(torch.isfinite(torch.tensor(score)) for _, score in r.hyps)


def test_results_rows_and_rerun_skips(run, tmp_path):
    root, flags = run
    res = json.loads((root / "data" / "eval" / "results.json").read_text())
    rows = res["rows"]
    keys = {(r["precision"], r["test"], r["search"], r["beam"], r["lm_fusion"]) for r in rows}
    assert len(keys) == 4 * 2 * 3 * 2  # precisions x tests x (greedy, alsd 1, alsd 2) x fusion
    assert all(0 <= r["cer"] and 0 <= r["wer"] for r in rows)
    for r in rows:  # per-utterance errors and voice groups add up to the corpus figures
        assert len(r["utt_word_errors"]) == r["utterances"] == sum(g["utterances"] for g in r["voice_groups"].values())
        assert sum(r["utt_words"]) == r["words"]
        assert 100 * sum(r["utt_word_errors"]) / r["words"] == pytest.approx(r["wer"], abs=0.006)
        held = sum(g["utterances"] for k, g in r["voice_groups"].items() if k != "training")
        assert held == r["heldout_voices"]["utterances"]
    before = (root / "ckpt" / "tiny-fp32.pt").stat().st_mtime_ns
    assert pipeline.main(["all", *flags]) == 0  # every stage complete: nothing is redone
    assert (root / "ckpt" / "tiny-fp32.pt").stat().st_mtime_ns == before
    from reports.accuracy import build

    out = build(root / "data", root / "ckpt", tmp_path / "report")
    table = json.loads((out / "results.json").read_text())["rows"]
    assert {"precision", "test", "search", "beam", "lm_fusion", "wer", "cer"} <= set(table[0])
    text = (out / "README.md").read_text()
    assert (out / "wer_vs_beam.png").stat().st_size > 0 and "| precision |" in text
    assert "By voice group" in text and "feature augmentation `default`" in text


def test_ablation_rows_and_report(run, tmp_path):
    """``ablate``: every checkpoint and every ``ABLATIONS`` variant on both dev sets, ALSD without
    and with DR; the report simulates each policy and pools the dev sets as the rows say."""
    from models.quant.ablation import ABLATIONS
    from reports import ablation as report

    root, _ = run
    ev = json.loads((root / "data" / "eval" / "ablation.json").read_text())
    systems = {r["system"] for r in ev["rows"]}
    assert systems == {"fp32", "int4-naive-ptq", "int4-ptq", "int4-qat"} | {f"ablation:{a.name}" for a in ABLATIONS}
    assert len(ev["rows"]) == len(systems) * 2 * 2 and ev["preset"] == "tiny" and ev["beam"] == 2
    assert ev["utterances"] == {"fortunes_dev": 2, "bible_dev": 2}
    for r in ev["rows"]:
        assert (r["search"], r["beam"]) == ("alsd", 2) and len(r["utt_word_errors"]) == r["utterances"] == 2
    out = report.build(root / "data", tmp_path / "report", checkpoints=root / "ckpt")
    saved = json.loads((out / "ablation.json").read_text())
    costs = saved["simulated"]["costs"]
    assert set(costs) == {r["policy"] for r in ev["rows"]}
    # int4 weights: more compression than fp32; a variant of int4 keeps int4's weight bytes unless it
    # changes a weight role
    assert costs["int4"]["dr"]["compression_x"] > costs["fp32"]["dr"]["compression_x"]
    assert costs["int4-cell-int4"]["dr"]["compression_x"] == costs["int4"]["dr"]["compression_x"]
    p = report.pooled(ev, "int4-ptq", "dr")
    errors = [e for r in ev["rows"] if r["system"] == "int4-ptq" and r["lm_fusion"] == "dr" for e in r["utt_word_errors"]]
    words = [w for r in ev["rows"] if r["system"] == "int4-ptq" and r["lm_fusion"] == "dr" for w in r["utt_words"]]
    assert p["wer"] == pytest.approx(100 * sum(errors) / sum(words))
    text = (out / "ablation.md").read_text()
    assert "## One role at a time" in text and "weights-minmax" in text
    assert (out / "wer_vs_rtf.png").stat().st_size > 0 and (out / "wer_vs_compression.png").stat().st_size > 0


def test_lm_qat_starts_from_the_fp32_checkpoint_without_training_states(run, tmp_path, monkeypatch):
    """A later session's DATA has the corpus but no training state: the LMs' QAT starts from the
    assembled FP32 checkpoint's LMs (exactly their weights go into the quantizer)."""
    import dataclasses

    import models.quant
    from models.train import stages

    root, _ = run
    data = tmp_path / "data"
    data.mkdir()
    (data / "corpus").symlink_to(root / "data" / "corpus")
    s = dataclasses.replace(pipeline.Settings(), data=str(data), checkpoints=str(root / "ckpt"), preset="tiny",
                            qat_lm_steps=1)
    seen = {}
    real = models.quant.quantize

    def spy(system, *args, **kwargs):
        seen.update({name: {k: v.clone() for k, v in system.submodels()[name].state_dict().items()}
                     for name in ("lm_ext", "lm_src")})
        return real(system, *args, **kwargs)

    monkeypatch.setattr(models.quant, "quantize", spy)
    stages.stage_qat_lms(s)
    out = torch.load(data / "runs" / "qat_lms.pt", weights_only=False)
    assert out["steps"] == 1 and set(out) >= {"lm_ext", "lm_src"}
    fp32 = models.load_system(root / "ckpt" / "tiny-fp32.pt")
    for name in ("lm_ext", "lm_src"):
        want = fp32.submodels()[name].state_dict()
        assert set(seen[name]) == set(want)
        assert all(torch.equal(seen[name][k], want[k]) for k in want), name


def test_accuracy_report_without_training_states_uses_the_manifest(run, tmp_path):
    """A later session's DATA (corpus and evaluations, no training state): the report still
    builds, the generalization note takes the final losses the manifest recorded."""
    from reports.accuracy import build

    root, _ = run
    data = tmp_path / "data"
    data.mkdir()
    for sub in ("corpus", "eval"):
        (data / sub).symlink_to(root / "data" / sub)
    out = build(data, root / "ckpt", tmp_path / "report")
    rnnt = json.loads((root / "ckpt" / "MANIFEST.json").read_text())["checkpoints"]["fp32"]["rnnt"]
    text = (out / "README.md").read_text()
    assert (f"final RNN-T training loss {rnnt['final_train_loss_nats']:.2f} vs dev {rnnt['final_dev']:.2f} "
            "nats/label") in text
    assert (out / "learning_curves.png").stat().st_size > 0
