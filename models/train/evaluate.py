"""Word and character error rates of a system under a set of search settings.

The encoder runs once per utterance; every search setting then reuses its output through the
same ``StepScorer`` and search functions that ``models.search.decode`` calls, so a result here is
what ``models.decode`` returns for that utterance and setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from models.search.algorithms import SEARCHES
from models.search.scoring import SearchConfig, StepScorer
from models.search.stats import SearchStats


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


@dataclass
class ErrorCounts:
    """Accumulated errors: ``wer`` = word edits / reference words, ``cer`` = character edits /
    reference characters (spaces included), both in percent."""

    word_errors: int = 0
    words: int = 0
    char_errors: int = 0
    chars: int = 0
    utterances: int = 0

    def add(self, ref: str, hyp: str) -> None:
        self.word_errors += edit_distance(ref.split(), hyp.split())
        self.words += len(ref.split())
        self.char_errors += edit_distance(ref, " ".join(hyp.split()))
        self.chars += len(ref)
        self.utterances += 1

    def merge(self, other: "ErrorCounts") -> None:
        for k in ("word_errors", "words", "char_errors", "chars", "utterances"):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    @property
    def wer(self) -> float:
        return 100.0 * self.word_errors / max(1, self.words)

    @property
    def cer(self) -> float:
        return 100.0 * self.char_errors / max(1, self.chars)


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus WER in percent."""
    c = ErrorCounts()
    for r, h in zip(refs, hyps, strict=True):
        c.add(r, h)
    return c.wer


def pooled_wer(rows: Sequence[dict]) -> dict:
    """WER (percent) of several evaluation rows together (word errors / words over all their
    utterances, ``utt_word_errors`` and ``utt_words`` of each row), with the pooled per-utterance
    lists (for ``paired_bootstrap_rel``)."""
    errors = [e for r in rows for e in r["utt_word_errors"]]
    words = [w for r in rows for w in r["utt_words"]]
    return {"wer": 100.0 * sum(errors) / max(sum(words), 1), "utt_word_errors": errors, "utt_words": words}


def paired_bootstrap_rel(base_errors: Sequence[int], other_errors: Sequence[int], words: Sequence[int],
                         resamples: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Relative WER change of ``other`` over ``base`` (percent) with a paired bootstrap interval.

    Both systems decoded the same utterances; resampling utterances (with replacement) and
    recomputing both corpus WERs on each resample keeps the pairing (Bisani & Ney, ICASSP 2004).

    Args:
        base_errors, other_errors: word errors per utterance of the two systems.
        words: reference words per utterance.

    Returns:
        (point estimate, lower, upper) of 100 * (WER_other / WER_base - 1).

    Raises:
        ValueError: lists of different lengths, or a base WER of 0.
    """
    import numpy as np

    a, b, w = (np.asarray(v, dtype=np.float64) for v in (base_errors, other_errors, words))
    if not (a.shape == b.shape == w.shape) or a.ndim != 1 or a.size == 0:
        raise ValueError(f"paired bootstrap needs three equally long non-empty lists, got {a.shape}, {b.shape}, {w.shape}")
    if a.sum() == 0:
        raise ValueError("paired bootstrap: the base system has no word errors (relative change undefined)")
    idx = np.random.default_rng(seed).integers(0, a.size, size=(resamples, a.size))
    rel = 100.0 * (b[idx].sum(1) / np.maximum(a[idx].sum(1), 1e-12) - 1.0)
    tail = 100.0 * (1 - level) / 2
    lo, hi = np.percentile(rel, [tail, 100.0 - tail])
    return 100.0 * (b.sum() / a.sum() - 1.0), float(lo), float(hi)


@dataclass
class SearchTotals:
    """Search work summed over utterances (for ``search_stats.json``)."""

    audio_s: float = 0.0
    frames: int = 0
    labels: int = 0
    steps: int = 0
    hyps: int = 0
    joint_evals: int = 0
    pred_evals: int = 0
    lm_evals: int = 0

    def add(self, stats: SearchStats, audio_s: float) -> None:
        t = stats.totals()
        self.audio_s += audio_s
        self.frames += stats.frames
        self.labels += stats.labels
        self.steps += len(stats.steps)
        self.hyps += t["hyps"]
        self.joint_evals += t["joint_evals"]
        self.pred_evals += t["pred_evals"]
        self.lm_evals += t["lm_ext_evals"]

    def merge(self, other: "SearchTotals") -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)

    def rates(self) -> dict[str, float]:
        a = max(self.audio_s, 1e-9)
        return {"audio_s": round(self.audio_s, 2), "labels_per_s": self.labels / a,
                "search_steps_per_s": self.steps / a, "hyps_per_step": self.hyps / max(1, self.steps),
                "joint_evals_per_s": self.joint_evals / a, "pred_evals_per_s": self.pred_evals / a,
                "lm_evals_per_s": self.lm_evals / a}


@dataclass
class EvalResult:
    counts: ErrorCounts = field(default_factory=ErrorCounts)
    search: SearchTotals = field(default_factory=SearchTotals)
    examples: list[tuple[str, str]] = field(default_factory=list)
    hyps: list[str] = field(default_factory=list)


def encode(system, feats: Tensor) -> Tensor:
    """Encoder output (T_out, Enc) of one utterance's features (T, D)."""
    with torch.inference_mode():
        return system.rnnt.encoder(feats.float().unsqueeze(0))[0]


def decode_encoded(system, enc: Tensor, cfg: SearchConfig) -> tuple[tuple[int, ...], SearchStats]:
    """Best labels and statistics of one search over a precomputed encoder output."""
    with torch.inference_mode():
        stats = SearchStats(cfg.method, 1 if cfg.method == "greedy" else cfg.beam, cfg.lm_fusion,
                            frames=int(enc.shape[0]))
        hyps = SEARCHES[cfg.method](StepScorer(system, enc, cfg), stats.frames, cfg, stats)
    best = hyps[0].prefix if hyps else ()
    stats.labels = len(best)
    return best, stats


def evaluate(system, feats: Sequence[Tensor], texts: Sequence[str], configs: dict[str, SearchConfig],
             frame_shift_s: float = 0.01, examples: int = 3) -> dict[str, EvalResult]:
    """Errors and search totals of every setting in ``configs`` over the utterances."""
    alphabet = system.config.alphabet
    out = {k: EvalResult() for k in configs}
    for x, ref in zip(feats, texts, strict=True):
        enc = encode(system, x)
        for key, cfg in configs.items():
            labels, stats = decode_encoded(system, enc, cfg)
            hyp = "".join(alphabet[y - 1] for y in labels if 0 < y <= len(alphabet))
            res = out[key]
            res.counts.add(ref, hyp)
            res.search.add(stats, x.shape[0] * frame_shift_s)
            res.hyps.append(hyp)
            if len(res.examples) < examples:
                res.examples.append((ref, hyp))
    return out


__all__ = ["edit_distance", "ErrorCounts", "wer", "paired_bootstrap_rel", "SearchTotals", "EvalResult", "encode", "decode_encoded",
           "evaluate"]
