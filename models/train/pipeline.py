"""The accuracy pipeline, stage by stage; every stage skips when its outputs are complete.

Stages (``python -m models.train.pipeline STAGE [--data DIR]``; ``all`` runs them in order):

1. ``corpus``     synthesize the corpus and cache features        -> DATA/corpus/
2. ``train``      FP32 RNN-T (this process; 1 thread while the LM process runs, then
                  ``--rnnt-threads``) and both LMs, then INT4 QAT of the LMs (a second
                  process), resumable                              -> DATA/runs/*.state.pt
3. ``assemble``   fold feature normalization, save the FP32 system -> checkpoints/small-fp32.pt
4. ``quantize``   PTQ int4-naive, PTQ int4, QAT int4 (RNN-T loss; LMs from the train stage)
                                                                    -> checkpoints/small-*.pt
5. ``evaluate``   WER/CER per precision x test set x search x beam x fusion, DR weights tuned
                  on the Bible dev book                             -> DATA/eval/*.json
6. ``ablate``     per-role ablation of INT4 PTQ (``models.quant.ablation``) and every
                  checkpoint, WER on the dev sets, ALSD with and without DR fusion
                                                                    -> DATA/eval/ablation.json

The report (``reports/accuracy/``) is built from DATA/eval/results.json by ``python -m
reports.accuracy`` (reports sit above models, so models never imports them).
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch

from models.data.corpus import CorpusSpec, build_corpus, is_complete
from models.data.features import build_features, features_complete, load_features

log = logging.getLogger("models.train.pipeline")

STAGES = ("corpus", "train", "assemble", "quantize", "evaluate", "ablate")


@dataclass(frozen=True)
class Settings:
    """Everything the pipeline's outcome depends on (recorded in the checkpoint manifest)."""

    data: str = "data"
    checkpoints: str = "checkpoints"
    preset: str = "small"
    engine: str = "tts"
    seed: int = 0
    train_hours: float = 8.0
    fortunes_dev: int = 200
    fortunes_test: int = 300
    bible_dev: int = 200
    bible_test: int = 300
    rnnt_budget_s: float = 5400.0
    rnnt_max_steps: int = 6000
    rnnt_max_frames: int = 4000
    rnnt_augment: str = "default"
    rnnt_dropout: float = 0.1
    rnnt_threads: int = 2
    lm_ext_budget_s: float = 1200.0
    lm_ext_steps: int = 4000
    lm_src_budget_s: float = 600.0
    lm_src_steps: int = 3000
    qat_steps: int = 150
    qat_budget_s: float = 600.0
    qat_lr: float = 1e-4
    qat_schedule: str = "constant"
    qat_warmup_steps: int = 20
    qat_augment: str = "none"
    qat_select_every: int = 0
    qat_lm_steps: int = 300
    qat_lm_lr: float = 2e-4
    qat_max_frames: int = 2000
    tune_beam: int = 4
    tune_utts: int = 40
    eval_utts: int = 160
    beams: str = "1,4,8,16"
    precisions: str = "fp32,int4-naive-ptq,int4-ptq,int4-qat"
    ablate_utts: int = 100
    ablate_beam: int = 4
    jobs: int = 2

    def corpus_spec(self) -> CorpusSpec:
        """The corpus these settings ask for: every ``CorpusSpec`` field that Settings also has
        (seed, hours, split sizes, engine), the rest at their defaults."""
        return CorpusSpec(**{f.name: getattr(self, f.name) for f in fields(CorpusSpec) if hasattr(self, f.name)})

    @property
    def corpus(self) -> Path:
        return Path(self.data) / "corpus"

    @property
    def runs(self) -> Path:
        return Path(self.data) / "runs"


def stage_corpus(s: Settings) -> None:
    from models.config import load_config

    spec = s.corpus_spec()
    if not is_complete(s.corpus):
        if s.engine == "tones":
            from models.data.text import builtin_sentences

            fortunes, bible = builtin_sentences()
            build_corpus(s.corpus, spec, jobs=s.jobs, fortunes=fortunes, bible=bible)
        else:
            build_corpus(s.corpus, spec, jobs=s.jobs)
    if not features_complete(s.corpus):
        build_features(s.corpus, load_config(s.preset), jobs=s.jobs)


def _text_labels(cfg, path: Path) -> list[list[int]]:
    from models.train.batching import labels_of

    return [labels_of(cfg, line) for line in path.read_text().splitlines() if line]


def stage_train_lms(s: Settings) -> None:
    """Both LMs, one after the other (source LM first: it is the smaller job)."""
    import models
    from models.train.lm_trainer import LMTrainConfig, train_lm

    cfg = models.load_config(s.preset)
    system = models.build_system(cfg, seed=s.seed)
    text = s.corpus / "text"
    src_train = _text_labels(cfg, text / "lm_src.txt")
    ext_train = _text_labels(cfg, text / "lm_ext.txt")
    src_dev = _text_labels(cfg, text / "fortunes_dev.txt")
    ext_dev = _text_labels(cfg, text / "bible_dev.txt")
    train_lm(system.lm_src, src_train, src_dev, s.runs / "lm_src.state.pt",
             LMTrainConfig(max_steps=s.lm_src_steps, time_budget_s=s.lm_src_budget_s, seed=s.seed), name="lm_src")
    train_lm(system.lm_ext, ext_train, ext_dev, s.runs / "lm_ext.state.pt",
             LMTrainConfig(max_steps=s.lm_ext_steps, time_budget_s=s.lm_ext_budget_s, seed=s.seed), name="lm_ext")
    from models.train.stages import stage_qat_lms

    stage_qat_lms(s)  # needs only the LMs: runs while the RNN-T still trains


def stage_train_rnnt(s: Settings, sharing_with: subprocess.Popen | None = None) -> None:
    """The FP32 RNN-T; with ``sharing_with`` (the LM job), one thread until that job ends, then
    ``s.rnnt_threads`` (2 threads measured 1.5x faster per step than 1 on this 2-core machine
    when nothing else runs: 1.06 vs 1.58 s)."""
    import models
    from models.train.rnnt_trainer import RNNTTrainConfig, train_rnnt

    cfg = models.load_config(s.preset)
    system = models.build_system(cfg, seed=s.seed)
    threads_now = None
    if sharing_with is not None:
        def threads_now() -> int:
            return 1 if sharing_with.poll() is None else s.rnnt_threads

    train_rnnt(system.rnnt, cfg, load_features(s.corpus, "train"), load_features(s.corpus, "fortunes_dev"),
               s.runs / "rnnt.state.pt",
               RNNTTrainConfig(max_steps=s.rnnt_max_steps, time_budget_s=s.rnnt_budget_s,
                               max_frames=s.rnnt_max_frames, seed=s.seed, augment=s.rnnt_augment,
                               dropout=s.rnnt_dropout, threads=s.rnnt_threads), threads_now=threads_now)


def _done(path: Path) -> bool:
    from models.train.loop import load_state

    st = load_state(path) if path.exists() else None
    return bool(st and st.get("done"))


def stage_train(s: Settings, argv_settings: list[str]) -> None:
    """RNN-T here, LMs in a child process at the same time (two cores)."""
    child = None
    if not (_done(s.runs / "lm_src.state.pt") and _done(s.runs / "lm_ext.state.pt")
            and (s.runs / "qat_lms.pt").exists()):
        child = subprocess.Popen([sys.executable, "-m", "models.train.pipeline", "train-lms", *argv_settings])
    if not _done(s.runs / "rnnt.state.pt"):
        stage_train_rnnt(s, sharing_with=child)
    if child is not None and child.wait() != 0:
        raise RuntimeError("LM training failed")


def run_stage(name: str, s: Settings, argv_settings: list[str]) -> None:
    if name == "corpus":
        stage_corpus(s)
    elif name == "train":
        stage_train(s, argv_settings)
    elif name == "train-lms":
        stage_train_lms(s)
    elif name == "train-rnnt":
        stage_train_rnnt(s)
    else:
        from models.train import stages

        getattr(stages, f"stage_{name.replace('-', '_')}")(s)


def _settings_args(args: argparse.Namespace) -> list[str]:
    out = []
    for k, v in vars(args).items():
        if k != "stage" and v is not None:
            out += [f"--{k.replace('_', '-')}", str(v)]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.train.pipeline", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=(*STAGES, "all", "train-lms", "train-rnnt", "ptq", "qat", "qat-lms", "tune"))
    for f, default in asdict(Settings()).items():
        ap.add_argument(f"--{f.replace('_', '-')}", type=type(default), default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    s = replace(Settings(), **{k: v for k, v in vars(args).items() if k != "stage" and v is not None})
    for name in (STAGES if args.stage == "all" else (args.stage,)):
        log.info("stage %s", name)
        run_stage(name, s, _settings_args(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
