"""Train a character LSTM LM (``models.lm.CharLM``) with cross-entropy (resumable).

Sentences are modelled as ``<s> y_1 .. y_U </s>`` with <s> = </s> = label 0, exactly as
``CharLM.score`` and the density-ratio search use them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from models.lstm import set_fused
from models.train.batching import lm_batch, lm_batches
from models.train.loop import Clock, Schedule, load_state, run_steps, save_atomic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LMTrainConfig:
    """Settings of one LM training run (see ``RNNTTrainConfig`` for the shared fields)."""

    max_steps: int = 2000
    time_budget_s: float = 900.0
    batch: int = 64
    lr: float = 2e-3
    warmup_steps: int = 100
    clip_norm: float = 1.0
    checkpoint_every: int = 100
    eval_every: int = 200
    seed: int = 0
    threads: int = 1


def lm_loss(lm, label_seqs: Sequence[Sequence[int]], reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy in nats per predicted symbol (labels and </s>), or summed."""
    inputs, targets, mask = lm_batch(label_seqs)
    logp = lm.forward_sequence(inputs)
    nll = F.nll_loss(logp.reshape(-1, logp.shape[-1]), targets.reshape(-1), reduction="none")
    nll = nll.view(mask.shape)[mask]
    return nll.mean() if reduction == "mean" else nll.sum()


def lm_perplexity(lm, label_seqs: Sequence[Sequence[int]], batch: int = 128) -> float:
    """Per-character perplexity (``</s>`` counted as a symbol)."""
    total, count = 0.0, 0
    was = lm.training
    lm.eval()
    with torch.no_grad():
        for k in range(0, len(label_seqs), batch):
            chunk = label_seqs[k : k + batch]
            total += float(lm_loss(lm, chunk, reduction="sum"))
            count += sum(len(y) + 1 for y in chunk)
    lm.train(was)
    return math.exp(total / max(1, count))


def train_lm(lm, train: Sequence[Sequence[int]], dev: Sequence[Sequence[int]], state_path: str | Path,
             tc: LMTrainConfig = LMTrainConfig(), name: str = "lm", progress: bool = True,
             steps_this_run: int | None = None) -> dict:
    """Train ``lm`` in place (resuming from ``state_path``); returns the final state dict with
    ``history`` (step, loss, lr, elapsed_s) and ``dev_history`` (step, dev perplexity, elapsed_s)."""
    torch.set_num_threads(tc.threads)
    state = load_state(state_path)
    if state is not None and state.get("done"):
        lm.load_state_dict(state["model"])
        return state
    lm.train()
    set_fused(lm, True)
    opt = torch.optim.Adam(lm.parameters(), lr=tc.lr)
    if state is None:
        state = {"step": 0, "elapsed_s": 0.0, "history": [], "dev_history": [], "done": False,
                 "config": asdict(tc), "train_sentences": len(train)}
    else:
        lm.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if state["config"] != asdict(tc):  # e.g. a budget raised on resumption: keep both on record
            state.setdefault("config_history", []).append((state["step"], state["config"]))
            state["config"] = asdict(tc)
    sched = Schedule(tc.lr, tc.max_steps, tc.warmup_steps)
    clock = Clock(state["elapsed_s"])
    step = state["step"]
    stop_at = None if steps_this_run is None else step + steps_this_run
    stream = lm_batches(train, tc.batch, tc.seed)
    for _ in range(step):  # replay the data order up to the resumed step
        next(stream)

    def save(at: int, done: bool, reason: str = "") -> None:
        state.update(model=lm.state_dict(), optimizer=opt.state_dict(), step=at,
                     elapsed_s=clock.elapsed_s, done=done, stop_reason=reason)
        save_atomic(state, state_path)

    step, reason = run_steps(
        state, opt, lm.parameters(), sched, clock, max_steps=tc.max_steps, time_budget_s=tc.time_budget_s,
        clip_norm=tc.clip_norm, eval_every=tc.eval_every, checkpoint_every=tc.checkpoint_every,
        stop_at=stop_at, loss_at=lambda _step: lm_loss(lm, [train[i] for i in next(stream)]),
        dev_metric=lambda: lm_perplexity(lm, dev), save=save, desc=f"train {name}", progress=progress)
    if reason is None:
        return state
    set_fused(lm, False)
    lm.eval()
    save(step, True, reason)
    return state


__all__ = ["LMTrainConfig", "train_lm", "lm_loss", "lm_perplexity"]
