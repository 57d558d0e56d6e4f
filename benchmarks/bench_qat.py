"""QAT training-step time / FP32 training-step time on the ``small`` model (goal: <= 1.5x).

Not a test: one run, medians of a few steps, ratios printed. The loss is the surrogate of
``models.quant.surrogate`` (joint + LM cross-entropy) because the RNN-T loss does not exist yet;
it runs the same forward/backward graph shape (RNN-T lattice + both LMs), so the ratio is the
quantizers' overhead. Two FP32 baselines: the cell-level LSTM path (the one QAT must take, same
ops minus the quantizers) and the fused ``torch._VF.lstm`` path (what FP32 training uses).

The FP32-cell and QAT steps are interleaved (one of each per round) so that load from other
processes on the shared cores hits both alike; besides wall time, the thread's CPU time is
reported (less sensitive to being descheduled, still sensitive to cache contention).

    .venv/bin/python benchmarks/bench_qat.py [--model small] [--policy int4] [--steps 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from models.lstm import set_fused
from models.quant import quantize
from models.quant.surrogate import random_batches, surrogate_loss
from models.system import build_system


class _Trainer:
    """One Adam training step of ``system`` on ``batch``, timed (wall and thread CPU seconds)."""

    def __init__(self, system, batch) -> None:
        self.system, self.batch = system, batch
        self.opt = torch.optim.Adam([p for p in system.parameters() if p.requires_grad], lr=1e-4)
        self.wall_s: list[float] = []
        self.cpu_s: list[float] = []

    def step(self, record: bool = True) -> None:
        self.system.train()
        t0, c0 = time.perf_counter(), time.thread_time()
        self.opt.zero_grad(set_to_none=True)
        surrogate_loss(self.system, self.batch).backward()
        self.opt.step()
        if record:
            self.wall_s.append(time.perf_counter() - t0)
            self.cpu_s.append(time.thread_time() - c0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="small")
    ap.add_argument("--policy", default="int4")
    ap.add_argument("--steps", type=int, default=7)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--labels", type=int, default=10)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "qat.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    system = build_system(args.model, 0)
    batch = random_batches(system.config, 1, args.batch, args.frames, args.labels)[0]
    qsys = quantize(system, args.policy, "qat", calib_features=list(batch["feats"][:1]))
    set_fused(system.rnnt, False)
    cell, qat = _Trainer(system, batch), _Trainer(qsys, batch)
    cell.step(record=False)  # warm-up
    qat.step(record=False)
    for _ in range(args.steps):
        cell.step()
        qat.step()
    for m in (system.rnnt, system.lm_ext, system.lm_src):
        set_fused(m, True)
    fused = _Trainer(system, batch)
    fused.step(record=False)
    for _ in range(args.steps):
        fused.step()
    med = statistics.median
    fp32_cell, fp32_fused, qat_s = med(cell.wall_s), med(fused.wall_s), med(qat.wall_s)
    ratios = [q / c for q, c in zip(qat.wall_s, cell.wall_s)]
    print(f"model {args.model}, policy {args.policy}, batch {args.batch} x {args.frames} frames, "
          f"{args.labels} labels, medians of {args.steps} steps, 1 thread")
    print("loss: surrogate (joint + LM cross-entropy; the RNN-T loss does not exist yet)")
    print(f"fp32 step (cell path):  {fp32_cell * 1e3:8.1f} ms wall  {med(cell.cpu_s) * 1e3:8.1f} ms cpu")
    print(f"fp32 step (fused LSTM): {fp32_fused * 1e3:8.1f} ms wall  {med(fused.cpu_s) * 1e3:8.1f} ms cpu")
    print(f"qat  step (cell path):  {qat_s * 1e3:8.1f} ms wall  {med(qat.cpu_s) * 1e3:8.1f} ms cpu")
    print(f"qat / fp32 cell  = {qat_s / fp32_cell:.2f}x wall, {med(qat.cpu_s) / med(cell.cpu_s):.2f}x cpu, "
          f"per-round ratios {min(ratios):.2f}..{max(ratios):.2f}  (goal <= 1.5x)")
    print(f"qat / fp32 fused = {qat_s / fp32_fused:.2f}x wall")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "model": args.model, "policy": args.policy, "batch": args.batch, "frames": args.frames,
        "steps": args.steps, "loss": "surrogate", "fp32_cell_step_s": fp32_cell,
        "fp32_fused_step_s": fp32_fused, "qat_step_s": qat_s, "qat_over_fp32_cell_x": qat_s / fp32_cell,
        "qat_over_fp32_fused_x": qat_s / fp32_fused, "round_ratios": ratios}, indent=1))


if __name__ == "__main__":
    main()
