"""Shared search machinery: settings, hypotheses, prefix caches, the per-step scorer, fusion.

All scoring math runs on torch tensors so that a ``TorchDispatchMode`` tracer sees the search's
own ops; Python only does bookkeeping (which prefix is where). Every network call goes through a
module's ``__call__`` so forward hooks fire.

Op sequence of ``StepScorer.score`` (one search step; N hyps scored, M new prefixes among them,
L = LSTM layers of the scorer; aten names as a ``TorchDispatchMode`` sees them in inference mode):

1. if M > 0, prediction net: ``lift_fresh, detach_`` (``torch.tensor`` of the M last labels),
   2L x ``cat`` (parent state rows -> (M, H)), ``rnnt.prediction``: ``embedding`` then per layer
   the ``LSTMLayer.step`` sequence (``t, addmm, t, addmm, split, sigmoid, sigmoid, tanh, sigmoid,
   mul, mul, add, tanh, mul``), ``rnnt.joint.pred_proj``: ``t, mm``; then (1 + 2L) x ``split``
   (rows of the projection and of each new state tensor, cached per prefix);
2. under DR fusion, if M > 0: the same for ``lm_ext`` and then ``lm_src`` (same M prefixes):
   ``lift_fresh, detach_``, 2L x ``cat``, ``embedding``, L x step, ``out``: ``t, addmm``,
   ``log_softmax``, (1 + 2L) x ``split``;
3. ``lift_fresh, detach_`` (frame indices), ``index_select`` (encoder projection rows),
   ``cat`` (N cached ``pred_proj`` rows), ``rnnt.joint(.., projected=True)``:
   ``add, tanh, t, addmm, log_softmax``;
4. under DR fusion: ``cat`` (lm_ext rows), ``cat`` (lm_src rows), ``fuse_scores``:
   ``mul, mul, sub, add, mul, add``.

Selection follows in ``models.search.algorithms``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from models.config import ModelConfig
from models.search.stats import StepStats

METHODS = ("greedy", "alsd", "tsd")
FUSIONS = ("none", "dr")


@dataclass(frozen=True)
class SearchConfig:
    """Search settings.

    Attributes:
        method: ``greedy``, ``alsd`` (alignment-length synchronous) or ``tsd`` (time synchronous).
        beam: hypotheses kept per step (ignored by greedy).
        lm_fusion: ``none`` or ``dr`` (density ratio).
        lambda_ext, lambda_src, length_reward: DR weights (score of a non-blank label =
            log p_rnnt + lambda_ext log p_ext - lambda_src log p_src + length_reward).
        alsd_max_target_len: ALSD U_max (labels); None = ceil(alsd_max_symbols_ratio * frames).
        alsd_max_symbols_ratio: U_max per encoder frame when ``alsd_max_target_len`` is None.
        alsd_early_stop: stop ALSD once the best final hypothesis beats every live one (exact
            when label scores are <= 0, i.e. without fusion; a pruning heuristic with it).
        tsd_max_symbols_per_frame: label expansions per frame in TSD.
        greedy_max_symbols_per_frame: labels emitted per frame by greedy before blank is forced.
    """

    method: str = "alsd"
    beam: int = 4
    lm_fusion: str = "none"
    lambda_ext: float = 0.0
    lambda_src: float = 0.0
    length_reward: float = 0.0
    alsd_max_target_len: int | None = None
    alsd_max_symbols_ratio: float = 1.0
    alsd_early_stop: bool = True
    tsd_max_symbols_per_frame: int = 3
    greedy_max_symbols_per_frame: int = 5

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"search method must be one of {METHODS}, got {self.method!r}")
        if self.lm_fusion not in FUSIONS:
            raise ValueError(f"lm_fusion must be one of {FUSIONS}, got {self.lm_fusion!r}")
        if self.beam < 1:
            raise ValueError(f"beam must be >= 1, got {self.beam}")
        if self.tsd_max_symbols_per_frame < 1 or self.greedy_max_symbols_per_frame < 1:
            raise ValueError("max symbols per frame must be >= 1")
        if self.alsd_max_target_len is not None and self.alsd_max_target_len < 0:
            raise ValueError("alsd_max_target_len must be >= 0")
        if self.alsd_max_symbols_ratio < 0:
            raise ValueError("alsd_max_symbols_ratio must be >= 0")

    @property
    def fusion(self) -> bool:
        return self.lm_fusion == "dr"


@dataclass(frozen=True)
class Hyp:
    """A hypothesis, keyed by its label tuple and the encoder frame it sits at.

    Attributes:
        prefix: emitted labels (no blanks, no <sos>).
        score: 0-d tensor, the accumulated log score.
        frame: next encoder frame to consume (== frames when final).
        value: ``float(score)``, for Python-side ordering without extra tensor ops.
    """

    prefix: tuple[int, ...]
    score: Tensor
    frame: int
    value: float

    @property
    def key(self) -> tuple[tuple[int, ...], int]:
        return self.prefix, self.frame


def merge_hypotheses(hyps: Sequence[Hyp]) -> tuple[list[Hyp], int]:
    """Merge hypotheses with equal (prefix, frame): scores combined with ``torch.logaddexp``.

    Returns:
        (merged hyps sorted best first, number of merges performed).
    """
    out: dict[tuple, Hyp] = {}
    merges = 0
    for h in hyps:
        old = out.get(h.key)
        if old is None:
            out[h.key] = h
        else:
            score = torch.logaddexp(old.score, h.score)
            out[h.key] = replace(old, score=score, value=float(score))
            merges += 1
    return sorted(out.values(), key=lambda h: -h.value), merges


def fuse_scores(logp: Tensor, lm_ext: Tensor | None, lm_src: Tensor | None, lambda_ext: float,
                lambda_src: float, length_reward: float, nonblank: Tensor) -> Tensor:
    """Density-ratio fusion of per-label scores.

    Args:
        logp: RNN-T log-probs (N, V), blank = column 0.
        lm_ext, lm_src: LM log-probs (N, V) for the same prefixes (None = no fusion: logp returned).
        lambda_ext, lambda_src, length_reward: DR weights.
        nonblank: (V,) float mask, 0 at blank and 1 elsewhere.

    Returns:
        (N, V): ``logp + nonblank * (lambda_ext lm_ext - lambda_src lm_src + length_reward)``,
        so blank keeps ``log p_rnnt(blank)``.
    """
    if lm_ext is None or lm_src is None:
        return logp
    lm = lm_ext * lambda_ext - lm_src * lambda_src + length_reward
    return logp + lm * nonblank


Prefix = tuple[int, ...]
StepFn = Callable[[Tensor, tuple[Tensor, ...]], tuple[Tensor, tuple[Tensor, ...]]]


class PrefixCache:
    """Per-prefix output rows and recurrent state rows of a stateful scorer.

    The entry of prefix (y1..yu) holds what the scorer produced after being fed <sos>=0, y1..yu:
    an output row (1, D) and the state rows (each (1, H)). ``None`` keys the zero state before
    <sos>. New prefixes are computed in ONE batched call from their parents' cached states.
    """

    def __init__(self, initial_state: tuple[Tensor, ...]) -> None:
        self.rows: dict[Prefix | None, tuple[Tensor | None, tuple[Tensor, ...]]] = {None: (None, initial_state)}

    def misses(self, prefixes: Sequence[Prefix]) -> list[Prefix]:
        """Prefixes (unique, first-occurrence order) not yet cached."""
        seen: dict[Prefix, None] = {}
        for p in prefixes:
            if p not in self.rows:
                seen.setdefault(p, None)
        return list(seen)

    def run(self, misses: Sequence[Prefix], call: StepFn) -> None:
        """Compute and cache ``misses`` with one ``call(labels (M,), state)`` (parents must be cached)."""
        parents = [self.rows[p[:-1] if p else None][1] for p in misses]
        labels = torch.tensor([p[-1] if p else 0 for p in misses], dtype=torch.long)
        state = tuple(torch.cat([ps[j] for ps in parents], 0) for j in range(len(parents[0])))
        out, new_state = call(labels, state)
        outs = out.split(1, 0)
        rows = [s.split(1, 0) for s in new_state]
        for i, p in enumerate(misses):
            self.rows[p] = (outs[i], tuple(r[i] for r in rows))

    def gather(self, prefixes: Sequence[Prefix]) -> Tensor:
        """Output rows of cached prefixes, (N, D), one ``cat``."""
        return torch.cat([self.rows[p][0] for p in prefixes], 0)


class StepScorer:
    """Scores hypotheses for one utterance: caches, one call per network per step, fusion."""

    def __init__(self, system, enc: Tensor, cfg: SearchConfig) -> None:
        """Args: system (``models.system.System``), enc: encoder output (T, Enc), cfg: settings.

        Runs ``rnnt.joint.enc_proj`` once on all T frames (step -1).
        """
        self.system, self.cfg = system, cfg
        model_cfg: ModelConfig = system.config
        rnnt = system.rnnt
        self.enc_proj = rnnt.joint.enc_proj(enc)  # (T, J): once per utterance
        self.pred = PrefixCache(rnnt.prediction.initial_state(1))
        self.lm_ext = PrefixCache(system.lm_ext.initial_state(1)) if cfg.fusion else None
        self.lm_src = PrefixCache(system.lm_src.initial_state(1)) if cfg.fusion else None
        nonblank = torch.ones(model_cfg.num_labels)
        nonblank[model_cfg.blank] = 0.0
        self.nonblank = nonblank

    def _pred_call(self, labels: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        rnnt = self.system.rnnt
        out, new_state = rnnt.prediction(labels, state)
        return rnnt.joint.pred_proj(out), new_state

    def score(self, prefixes: Sequence[Prefix], frames: Sequence[int], row: StepStats) -> Tensor:
        """Fused per-label scores (N, V) of hypotheses (prefix, frame); fills ``row``'s counters."""
        misses = self.pred.misses(prefixes)
        if misses:
            self.pred.run(misses, self._pred_call)
            row.pred_evals, row.pred_calls = len(misses), 1
        if self.lm_ext is not None and self.lm_src is not None:
            lm_misses = self.lm_ext.misses(prefixes)
            if lm_misses:
                self.lm_ext.run(lm_misses, self.system.lm_ext)
                self.lm_src.run(lm_misses, self.system.lm_src)
                row.lm_ext_evals = row.lm_src_evals = len(lm_misses)
                row.lm_calls = 1
        index = torch.tensor(list(frames), dtype=torch.long)
        enc_rows = self.enc_proj.index_select(0, index)
        logp = self.system.rnnt.joint(enc_rows, self.pred.gather(prefixes), projected=True)
        row.hyps = row.joint_evals = len(prefixes)
        if self.lm_ext is None or self.lm_src is None:
            return logp
        c = self.cfg
        return fuse_scores(logp, self.lm_ext.gather(prefixes), self.lm_src.gather(prefixes),
                           c.lambda_ext, c.lambda_src, c.length_reward, self.nonblank)
