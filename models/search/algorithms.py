"""Greedy, ALSD and TSD searches over one utterance.

Each search step is one ``StepScorer.score`` call (at most one prediction-net, one ``lm_ext``,
one ``lm_src`` and one joint call) followed by selection, all inside ``step_scope(step)``:

- ALSD: step = alignment step i (a hyp with u labels sits at frame t = i - u);
- TSD and greedy: step = a running counter over (frame, sub-step) pairs; ``StepStats.frame``
  and ``.substep`` give the pair.

Selection ops after scoring (N hyps, V labels, K = min(beam, pool); 1 for greedy):
``stack`` (N hyp scores), ``unsqueeze``, ``add`` -> (N, V) totals, [ALSD with hyps at U_max:
``lift_fresh, detach_, unsqueeze, bitwise_and, masked_fill``], ``view(-1)`` (ALSD; greedy/TSD
below the symbol limit) or ``select(1, 0)`` (blank column only, at the limit), [TSD with hyps that
already ended this frame: ``stack`` of their scores, ``cat`` in front of the pool], ``topk(K)``,
``unbind``, ``resolve_conj, resolve_neg`` twice (``tolist`` of values and indices), then
``logaddexp, item`` per merged duplicate (``StepStats.merges``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from models.hooks import step_scope
from models.search.scoring import Hyp, SearchConfig, StepScorer, merge_hypotheses
from models.search.stats import SearchStats


def _totals(hyps: list[Hyp], scores: Tensor) -> Tensor:
    """Candidate scores (N, V): hypothesis score + per-label score."""
    return torch.stack([h.score for h in hyps]).unsqueeze(1) + scores


def _topk(pool: Tensor, k: int) -> tuple[list[Tensor], list[float], list[int]]:
    values, index = pool.topk(min(k, pool.numel()))
    return list(values.unbind(0)), values.tolist(), index.tolist()


def _root() -> Hyp:
    return Hyp((), torch.zeros(()), 0, 0.0)


def greedy_search(scorer: StepScorer, frames: int, cfg: SearchConfig, stats: SearchStats) -> list[Hyp]:
    """Best label per step; after ``greedy_max_symbols_per_frame`` labels at a frame, blank is forced."""
    hyp, step = _root(), 0
    for t in range(frames):
        emitted = 0
        while True:
            with step_scope(step):
                row = stats.add_step(step=step, frame=t, substep=emitted)
                scores = scorer.score([hyp.prefix], [t], row)
                totals = _totals([hyp], scores)
                forced = emitted == cfg.greedy_max_symbols_per_frame
                pool = totals.select(1, 0) if forced else totals.view(-1)
                vals, floats, index = _topk(pool, 1)
            step += 1
            label = 0 if forced else index[0]
            if label == 0:
                hyp = Hyp(hyp.prefix, vals[0], t + 1, floats[0])
                break
            hyp = Hyp(hyp.prefix + (label,), vals[0], t, floats[0])
            emitted += 1
    return [hyp]


def alsd_search(scorer: StepScorer, frames: int, cfg: SearchConfig, stats: SearchStats) -> list[Hyp]:
    """Alignment-length synchronous decoding (Saon et al., ICASSP 2020).

    At alignment step i every live hyp with u labels sits at frame t = i - u; blank moves it to
    t + 1, a label to u + 1. All N x V extensions compete for ``beam`` places (topk), duplicates
    are then merged with logaddexp; hyps reaching t == frames become final. A hyp with U_max
    labels may only emit blank (its label columns are masked to -inf: ``tensor``, ``unsqueeze``,
    ``bitwise_and``, ``masked_fill``, only at steps where such a hyp exists; ``StepStats.capped``), so after
    at most frames + U_max steps every surviving hyp is final.
    """
    u_max = cfg.alsd_max_target_len
    if u_max is None:
        u_max = math.ceil(cfg.alsd_max_symbols_ratio * frames)
    live, final = [_root()], []
    V = scorer.system.config.num_labels
    label_columns = torch.arange(V) != 0  # (V,) True at labels
    for i in range(frames + u_max):
        if not live:
            break
        with step_scope(i):
            row = stats.add_step(step=i, frame=max(h.frame for h in live))
            scores = scorer.score([h.prefix for h in live], [h.frame for h in live], row)
            totals = _totals(live, scores)
            capped = [len(h.prefix) >= u_max for h in live]
            if any(capped):
                row.capped = sum(capped)
                mask = torch.tensor(capped).unsqueeze(1) & label_columns
                totals = totals.masked_fill(mask, -math.inf)
            vals, floats, index = _topk(totals.view(-1), cfg.beam)
            cands = []
            for val, value, ix in zip(vals, floats, index):
                if value == -math.inf:
                    continue
                parent, label = live[ix // V], ix % V
                if label == 0:
                    cands.append(Hyp(parent.prefix, val, parent.frame + 1, value))
                else:
                    cands.append(Hyp(parent.prefix + (label,), val, parent.frame, value))
            merged, row.merges = merge_hypotheses(cands)
        new_final = [h for h in merged if h.frame >= frames]
        row.finals = len(new_final)
        final += new_final
        live = [h for h in merged if h.frame < frames]
        if cfg.alsd_early_stop and final and live and max(h.value for h in final) >= live[0].value:
            break
    result = final if final else live
    return sorted(result, key=lambda h: -h.value)[: cfg.beam]


def tsd_search(scorer: StepScorer, frames: int, cfg: SearchConfig, stats: SearchStats) -> list[Hyp]:
    """Time-synchronous decoding: per frame up to ``tsd_max_symbols_per_frame`` label expansions.

    At frame t, the hyps still at t (initially all) are scored; their blank extensions (which end
    the frame) and label extensions (which stay at t) compete together with the hyps that already
    ended the frame for ``beam`` places; duplicates are merged with logaddexp. At the last
    sub-step only blank extensions are allowed. This joint pruning of ended and continuing
    hyps makes beam 1 identical to greedy search with the same symbol limit.
    """
    live, step = [_root()], 0
    V = scorer.system.config.num_labels
    M = cfg.tsd_max_symbols_per_frame
    for t in range(frames):
        ended: list[Hyp] = []
        expand = live
        for v in range(M + 1):
            if not expand:
                break
            with step_scope(step):
                row = stats.add_step(step=step, frame=t, substep=v)
                totals = _totals(expand, scorer.score([h.prefix for h in expand], [t] * len(expand), row))
                width = V if v < M else 1
                pool = totals.view(-1) if v < M else totals.select(1, 0)
                if ended:
                    pool = torch.cat([torch.stack([h.score for h in ended]), pool])
                vals, floats, index = _topk(pool, cfg.beam)
                cands = []
                for val, value, ix in zip(vals, floats, index):
                    if ix < len(ended):
                        cands.append(Hyp(ended[ix].prefix, val, t + 1, value))
                        continue
                    ix -= len(ended)
                    parent, label = expand[ix // width], ix % width
                    if label == 0:
                        cands.append(Hyp(parent.prefix, val, t + 1, value))
                    else:
                        cands.append(Hyp(parent.prefix + (label,), val, t, value))
                merged, row.merges = merge_hypotheses(cands)
            step += 1
            ended = [h for h in merged if h.frame == t + 1]
            expand = [h for h in merged if h.frame == t]
        live = ended
    return sorted(live, key=lambda h: -h.value)[: cfg.beam]


SEARCHES = {"greedy": greedy_search, "alsd": alsd_search, "tsd": tsd_search}
