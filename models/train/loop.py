"""Shared training machinery: atomic checkpoints, the learning-rate schedule, a wall-clock budget.

A training state file holds everything needed to resume bit-for-bit in data order: the model and
optimizer state, the step, the elapsed wall time and the loss history. It is written every
``checkpoint_every`` steps to ``<path>.tmp`` and renamed over ``<path>`` (``os.replace`` is atomic),
so an interrupted run never leaves a half-written state behind.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch


def save_atomic(obj: object, path: str | Path) -> Path:
    """``torch.save`` to a temporary file, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def load_state(path: str | Path) -> dict | None:
    """A training state written by ``save_atomic``, or None when there is none yet."""
    path = Path(path)
    return torch.load(path, map_location="cpu", weights_only=False) if path.exists() else None


@dataclass(frozen=True)
class Schedule:
    """Linear warm-up to ``peak_lr``, constant, then linear decay to ``final_frac * peak_lr`` over the
    last ``decay_frac`` of training. Progress is the larger of step / ``max_steps`` and the fraction
    of the wall-time budget used, so a run stopped by its budget still ends with a decayed rate."""

    peak_lr: float
    max_steps: int
    warmup_steps: int = 200
    decay_frac: float = 0.4
    final_frac: float = 0.1

    def lr(self, step: int, time_frac: float = 0.0) -> float:
        warm = min(1.0, (step + 1) / max(1, self.warmup_steps))
        progress = max(step / max(1, self.max_steps), time_frac)
        start = 1 - self.decay_frac
        if progress <= start:
            return self.peak_lr * warm
        frac = min(1.0, (progress - start) / self.decay_frac)
        return self.peak_lr * warm * (1 - frac * (1 - self.final_frac))


class Clock:
    """Wall time since ``start``, plus time carried over from earlier (resumed) runs."""

    def __init__(self, carried_s: float = 0.0) -> None:
        self.carried_s, self.t0 = carried_s, time.monotonic()

    @property
    def elapsed_s(self) -> float:
        return self.carried_s + time.monotonic() - self.t0


def grad_norm_clip(params, max_norm: float) -> float:
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return float(norm) if math.isfinite(float(norm)) else float("nan")


def run_steps(state: dict, opt, params, sched: Schedule, clock: Clock, *, max_steps: int,
              time_budget_s: float, clip_norm: float, eval_every: int, checkpoint_every: int,
              stop_at: int | None, loss_at, dev_metric, save, desc: str, progress: bool,
              skip_nonfinite: bool = False, eval_at_max: bool = False, postfix=None, after_eval=None):
    """The training loop shared by the RNN-T and LM trainers, from ``state["step"]`` on.

    Each step: learning rate from ``sched``, ``loss_at(step)`` (the batch of that step and its
    loss), backward, gradient clipping, optimizer step (skipped on a non-finite gradient norm when
    ``skip_nonfinite``); the loss goes to ``state["history"]``, ``dev_metric()`` to
    ``state["dev_history"]`` every ``eval_every`` steps (and at ``max_steps`` if ``eval_at_max``),
    ``save(step, False)`` checkpoints every ``checkpoint_every`` steps.

    Returns:
        ``(step, reason)``: ``reason`` is ``"max_steps"`` or ``"time_budget"`` when training is over
        (the last dev metric appended; the caller saves the final state), None when it stopped at
        ``stop_at`` (already checkpointed, not done).
    """
    from tqdm import tqdm

    params = list(params)
    step = state["step"]
    bar = tqdm(total=max_steps, initial=step, desc=desc, unit="step", disable=not progress)
    reason = "max_steps"
    while step < max_steps:
        extra = postfix(step) if postfix else {}
        for group in opt.param_groups:
            group["lr"] = lr = sched.lr(step, clock.elapsed_s / time_budget_s)
        opt.zero_grad(set_to_none=True)
        loss = loss_at(step)
        loss.backward()
        gnorm = grad_norm_clip(params, clip_norm)
        if not skip_nonfinite or gnorm == gnorm:
            opt.step()
        step += 1
        state["history"].append((step, loss.item(), lr, clock.elapsed_s))
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", **extra)
        if step % eval_every == 0 or (eval_at_max and step == max_steps):
            state["dev_history"].append((step, dev_metric(), clock.elapsed_s))
            if after_eval is not None:
                after_eval(step, loss.item(), state["dev_history"][-1][1], clock.elapsed_s)
        if clock.elapsed_s >= time_budget_s:
            reason = "time_budget"
            break
        if step % checkpoint_every == 0 or step == stop_at:
            save(step, False)
        if step == stop_at:
            bar.close()
            return step, None
    bar.close()
    if not state["dev_history"] or state["dev_history"][-1][0] != step:
        state["dev_history"].append((step, dev_metric(), clock.elapsed_s))
    return step, reason


__all__ = ["save_atomic", "load_state", "Schedule", "Clock", "grad_norm_clip", "run_steps"]
