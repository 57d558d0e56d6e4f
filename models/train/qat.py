"""Calibration and quantization-aware training on real data: the one implementation of both,
used by the accuracy pipeline (``models.train.stages``) and ``hwsim quantize``.

An *item* is a dict with any of the keys

- ``"acoustic"``: an ``AcousticBatch`` of raw ``models.features.features_for`` features (the
  trained model has the feature normalization folded into its first layer), labels, lengths;
- ``"lm_ext"``, ``"lm_src"``: label sequences (lists of ints) for the external / source LM.

:func:`calibration_pass` runs every quantized path an item reaches (``calib_fn`` of
``models.quant.quantize``); :func:`rnnt_qat_loss` (RNN-T loss, nats per label) and
:func:`lm_qat_loss` (both LMs' cross-entropy, nats per character) are the QAT objectives, one
``models.quant.qsystem.qat_step`` per batch.

Data come from a corpus directory written by ``models.data.corpus.build_corpus`` (manifest, WAVs,
LM text: :func:`corpus_data`) or a WAV list (``path<TAB>transcript`` lines: :func:`wav_list_data`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from models.config import ModelConfig
from models.features import SAMPLE_RATE_HZ, features_for, load_wav
from models.train.batching import (AcousticBatch, collate, epoch_batches, labels_of, lm_batch, lm_batches,
                                   make_acoustic_batches)
from models.yamlio import UserError

log = logging.getLogger(__name__)

#: Calibration settings of the accuracy pipeline (``stage_ptq``, ``stage_qat``).
CALIB_BATCHES, CALIB_MAX_FRAMES, MAX_BATCH, LM_SENTENCES = 8, 3000, 16, 32


@dataclass(frozen=True)
class QuantData:
    """Utterances (features and transcripts) and LM text for calibration and QAT.

    Attributes:
        source: ``"corpus"`` or ``"wav-list"``.
        path: the corpus directory or WAV-list file.
        feats: (T, input_dim) float32 features of each utterance (``features_for``).
        texts: transcript of each utterance.
        lm_ext, lm_src: label sequences of the external / source LM's text.
        lm_text: where the LM text came from (for messages).
    """

    source: str
    path: Path
    feats: list[Tensor]
    texts: list[str]
    lm_ext: list[list[int]]
    lm_src: list[list[int]]
    lm_text: str


# ----------------------------------------------------------------------------------------------
# data


def _labels(cfg: ModelConfig, text: str, where: str) -> list[int]:
    try:
        return labels_of(cfg, text)
    except ValueError as exc:
        raise UserError(f"{where}: {exc}") from None


def read_lm_text(root: str | Path, cfg: ModelConfig) -> tuple[list[list[int]], list[list[int]]]:
    """Label sequences of ``text/lm_ext.txt`` and ``text/lm_src.txt`` of a corpus directory."""
    out = []
    for name in ("lm_ext", "lm_src"):
        path = Path(root) / "text" / f"{name}.txt"
        if not path.is_file():
            raise UserError(f"{path}: missing; a corpus directory (models.data.corpus.build_corpus) "
                            "has the LM text under text/")
        out.append([_labels(cfg, t, f"{path}:{i + 1}") for i, t in enumerate(path.read_text().splitlines())])
    return out[0], out[1]


def _utterance_features(cfg: ModelConfig, wav: Path) -> Tensor:
    wave, sr = load_wav(wav, expected_rate_hz=SAMPLE_RATE_HZ)
    return features_for(cfg, wave, sr)


def corpus_data(root: str | Path, cfg: ModelConfig, split: str = "train", max_utts: int | None = None,
                seed: int = 0) -> QuantData:
    """Utterances of one split of a corpus directory (features computed from its WAVs).

    Args:
        root: directory with ``manifest.tsv``, ``wav/<split>/<id>.wav`` and ``text/lm_*.txt``, or
            a pipeline data folder holding it as ``corpus/`` (``make accuracy`` writes ``data/corpus``).
        cfg: the model config (its front end).
        split: manifest split.
        max_utts: at most this many utterances, a seeded draw (None: all).
        seed: seed of the draw.

    Raises:
        UserError: not a corpus directory, no utterance in ``split``, a missing or bad WAV.
    """
    from models.data.corpus import read_manifest

    root = Path(root)
    if not (root / "manifest.tsv").is_file() and (root / "corpus" / "manifest.tsv").is_file():
        root = root / "corpus"  # a pipeline data folder (``hwsim accuracy --data``, make accuracy's data/)
    if not (root / "manifest.tsv").is_file():
        raise UserError(f"--data {root}: no manifest.tsv; expected a corpus directory written by "
                        "models.data.corpus.build_corpus (make accuracy writes data/corpus)")
    rows = read_manifest(root, split)
    if not rows:
        raise UserError(f"--data {root}: no utterance of split {split!r} in manifest.tsv")
    if max_utts is not None and len(rows) > max_utts:
        pick = np.random.default_rng(seed).choice(len(rows), max_utts, replace=False)
        rows = [rows[i] for i in sorted(pick)]
    texts = [r["text"] for r in rows]
    for r in rows:
        _labels(cfg, r["text"], f"{root / 'manifest.tsv'} ({r['id']})")
    feats = [_utterance_features(cfg, root / "wav" / split / f"{r['id']}.wav") for r in rows]
    ext, src = read_lm_text(root, cfg)
    return QuantData("corpus", root, feats, texts, ext, src, f"{root}/text/lm_ext.txt, lm_src.txt")


def read_wav_list(path: str | Path) -> list[tuple[Path, str, int]]:
    """(WAV path, transcript, line number) of each ``path<TAB>transcript`` line; relative paths
    are relative to the list's folder; blank lines and lines starting with ``#`` are skipped."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--wav-list {path}: {'is a directory' if path.is_dir() else 'no such file'}; "
                        "expected a text file of path<TAB>transcript lines")
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise UserError(f"--wav-list {path}: not a UTF-8 text file of path<TAB>transcript lines") from None
    out = []
    for i, line in enumerate(lines):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip():
            raise UserError(f"--wav-list {path}:{i + 1}: expected path<TAB>transcript, got {line[:60]!r}")
        wav = Path(parts[0].strip())
        out.append((wav if wav.is_absolute() else path.parent / wav, parts[1].strip(), i + 1))
    if not out:
        raise UserError(f"--wav-list {path}: no path<TAB>transcript line")
    return out


def wav_list_data(path: str | Path, cfg: ModelConfig) -> QuantData:
    """Utterances of a WAV list; both LMs get the transcripts as their text (a WAV list has no
    separate LM text; the source LM's text is the acoustic transcripts in the pipeline too)."""
    path = Path(path)
    entries = read_wav_list(path)
    texts = [t for _, t, _ in entries]
    labels = [_labels(cfg, t, f"--wav-list {path}:{line}: transcript") for _, t, line in entries]
    feats = []
    for wav, _, line in entries:
        try:
            feats.append(_utterance_features(cfg, wav))
        except UserError as exc:
            raise UserError(f"--wav-list {path}:{line}: {exc}") from None
    return QuantData("wav-list", path, feats, texts, labels, labels, f"the transcripts of {path}")


# ----------------------------------------------------------------------------------------------
# items


def calibration_items(cfg: ModelConfig, encoder, feats: Sequence[Tensor], texts: Sequence[str],
                      lm_ext: Sequence[Sequence[int]], lm_src: Sequence[Sequence[int]],
                      n_batches: int = CALIB_BATCHES, max_frames: int = CALIB_MAX_FRAMES,
                      max_batch: int = MAX_BATCH, lm_sentences: int = LM_SENTENCES, seed: int = 0) -> list[dict]:
    """``n_batches`` seeded acoustic batches (length-bucketed, at most ``max_frames`` padded input
    frames and ``max_batch`` utterances each), each with ``lm_sentences`` sentences per LM.

    ``encoder`` gives the encoder output length (``output_frames``) of each utterance.
    """
    batches = make_acoustic_batches(cfg, feats, texts, max_frames, max_batch)
    rng = np.random.default_rng(seed)
    items = []
    for i in rng.choice(len(batches), min(n_batches, len(batches)), replace=False):
        idx = batches[i]
        b = collate(cfg, encoder, [feats[j] for j in idx], [labels_of(cfg, texts[j]) for j in idx], None)
        pick_e = rng.choice(len(lm_ext), min(lm_sentences, len(lm_ext)), replace=False)
        pick_s = rng.choice(len(lm_src), min(lm_sentences, len(lm_src)), replace=False)
        items.append({"acoustic": b, "lm_ext": [lm_ext[j] for j in pick_e], "lm_src": [lm_src[j] for j in pick_s]})
    return items


def acoustic_stream(cfg: ModelConfig, encoder, feats: Sequence[Tensor], texts: Sequence[str],
                    batches: list[list[int]], seed: int, start: int = 0,
                    transform=None) -> Iterator[AcousticBatch]:
    """The collated batch of every step from ``start`` on: epoch after epoch of a seeded shuffle of
    ``batches`` (index lists from ``make_acoustic_batches``). ``transform(features, step)``, when
    given, perturbs the batch's raw features first (``augment_transform``)."""
    for step in itertools.count(start):
        epoch, pos = divmod(step, len(batches))
        idx = epoch_batches(batches, seed, epoch)[pos]
        xs = [feats[j] for j in idx]
        if transform is not None:
            xs = transform(xs, step)
        yield collate(cfg, encoder, xs, [labels_of(cfg, texts[j]) for j in idx], None)


def augment_transform(spec: str, feats: Sequence[Tensor], seed: int):
    """The FP32 training's feature augmentation (``models.train.augment``, spec as
    ``AugmentConfig.parse``) for QAT batches: masks filled with the training features' mean
    (``FeatureNorm.estimate`` with the FP32 training's seed), draws seeded by (seed, step) so that
    a resumed run repeats them. None for ``"none"``."""
    from models.train.augment import AugmentConfig, augment
    from models.train.batching import FeatureNorm

    aug = AugmentConfig.parse(spec)
    if aug is None:
        return None
    fill = FeatureNorm.estimate(feats, seed=seed).mean

    def transform(xs: list[Tensor], step: int) -> list[Tensor]:
        rng = np.random.default_rng([seed, 2, step])
        return [augment(x, rng, aug, fill) for x in xs]
    return transform


def lm_stream(lm_ext: Sequence[Sequence[int]], lm_src: Sequence[Sequence[int]], batch: int,
              seed: int) -> Iterator[dict]:
    """Endless LM items ``{"lm_ext": ..., "lm_src": ...}`` of ``batch`` sentences of similar length
    each (seeds ``seed + 1`` and ``seed + 2``)."""
    ext, src = lm_batches(lm_ext, batch, seed + 1), lm_batches(lm_src, batch, seed + 2)
    while True:
        yield {"lm_ext": [lm_ext[j] for j in next(ext)], "lm_src": [lm_src[j] for j in next(src)]}


# ----------------------------------------------------------------------------------------------
# passes and losses


def calibration_pass(qsys, item: dict) -> None:
    """One calibration pass: the RNN-T lattice forward of the item's acoustic batch, each LM over
    its sentences (whichever the item has). ``calib_fn`` of ``models.quant.quantize``."""
    b = item.get("acoustic")
    if b is not None:
        qsys.rnnt(b.feats, b.labels, fused=False)
    for name in ("lm_ext", "lm_src"):
        if item.get(name):
            getattr(qsys, name).forward_sequence(lm_batch(item[name])[0], fused=False)


def rnnt_qat_loss(qsys, item: dict, fused: bool | None = False) -> Tensor:
    """RNN-T loss (nats per label) of the item's acoustic batch.

    ``fused``: LSTM path (``models.lstm``); quantized layers need the cell path (False), an FP32
    baseline may take the fused one.
    """
    from models.train.rnnt_loss import rnnt_loss

    b = item["acoustic"]
    logp = qsys.rnnt(b.feats, b.labels, fused=fused)
    return rnnt_loss(logp, b.labels, b.T_out, b.U_len, reduction="mean_label")


def lm_qat_loss(qsys, item: dict) -> Tensor:
    """Cross-entropy (nats per character) of both LMs on the item's sentences, summed (each LM's
    LSTM layers take their default path: the cell path once quantized)."""
    from models.train.lm_trainer import lm_loss

    return lm_loss(qsys.lm_ext, item["lm_ext"]) + lm_loss(qsys.lm_src, item["lm_src"])


class SystemQATLoss:
    """RNN-T loss + both LMs' cross-entropy of an item, the parts of the last call kept in
    ``last`` (``{"rnnt": nats/label, "lm": nats/char}``). The RNN-T and the LMs share no
    parameter, so one Adam step on the sum updates each exactly as separate Adam steps on each
    loss would (the pipeline trains the LMs in a stage of their own)."""

    def __init__(self, fused: bool | None = False) -> None:  # fused: as in rnnt_qat_loss
        self.fused = fused
        self.last: dict[str, float] = {}

    def __call__(self, qsys, item: dict) -> Tensor:
        rnnt = rnnt_qat_loss(qsys, item, self.fused)
        lm = lm_qat_loss(qsys, item)
        self.last = {"rnnt": float(rnnt.detach()), "lm": float(lm.detach())}
        return rnnt + lm


def qat_items(cfg: ModelConfig, encoder, data: QuantData, max_frames: int, max_batch: int = MAX_BATCH,
              lm_sentences: int = LM_SENTENCES, seed: int = 0) -> Iterator[dict]:
    """Endless QAT items of ``data``: the acoustic stream of :func:`acoustic_stream` (seed
    ``seed + 7``, as ``stage_qat``) with LM sentences of :func:`lm_stream`."""
    batches = make_acoustic_batches(cfg, data.feats, data.texts, max_frames, max_batch)
    if not batches:
        raise UserError(f"{data.path}: no utterance long enough for a training batch")
    acoustic = acoustic_stream(cfg, encoder, data.feats, data.texts, batches, seed + 7)
    for b, lm in zip(acoustic, lm_stream(data.lm_ext, data.lm_src, lm_sentences, seed)):
        yield {"acoustic": b, **lm}


def run_qat(qsys, items: Iterator[dict], steps: int, lr: float) -> list[dict[str, float]]:
    """``steps`` QAT steps (one Adam optimizer over every trainable parameter: weights, PACT clips,
    LSQ steps) of the RNN-T loss + both LM cross-entropies; leaves the system in train mode.

    Returns:
        Per step ``{"loss", "rnnt", "lm"}``: the total and its parts, measured before the step's
        update (nats per label / per character).
    """
    from models.quant.qsystem import qat_step

    qsys.train()
    opt = torch.optim.Adam([p for p in qsys.parameters() if p.requires_grad], lr=lr)
    loss_fn = SystemQATLoss()
    history = []
    for item in itertools.islice(items, steps):
        total = qat_step(qsys, item, loss_fn, opt)
        history.append({"loss": total, **loss_fn.last})
    return history


__all__ = ["QuantData", "corpus_data", "wav_list_data", "read_wav_list", "read_lm_text", "calibration_items",
           "acoustic_stream", "lm_stream", "qat_items", "calibration_pass", "rnnt_qat_loss", "lm_qat_loss",
           "SystemQATLoss", "run_qat", "CALIB_BATCHES", "CALIB_MAX_FRAMES", "MAX_BATCH", "LM_SENTENCES"]
