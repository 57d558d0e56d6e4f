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


__all__ = ["save_atomic", "load_state", "Schedule", "Clock", "grad_norm_clip"]
