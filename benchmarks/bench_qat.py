"""QAT training-step time / FP32 training-step time on the ``small`` model, against two FP32 baselines.

Not a test: one run, medians of a few steps, ratios printed. The step is the real QAT objective of
``models.train.qat`` (RNN-T loss + both LMs' cross-entropy, one Adam step over every trainable
parameter) on one fixed batch of random features and random labels (the data's content does not
change the time of a step; ``--loss surrogate`` times the surrogate of ``models.quant.surrogate``
instead, the loss this benchmark used before the RNN-T loss existed). Two ratios, named for what they
divide by:

- ``qat_over_fp32_cell_x``: QAT step / FP32 step on the cell-level LSTM path, the same Python cell
  code minus the quantizers: the quantizers' own overhead (goal <= 1.5x);
- ``qat_over_fp32_fused_x``: QAT step / FP32 step on the fused ``torch._VF.lstm`` path, which is what
  FP32 training runs: what QAT costs over FP32 training end to end (QAT must take the cell path).

The three steps are interleaved (FP32 cell, QAT, FP32 fused in every round) so that load from
other processes on the shared cores hits all alike; besides wall time, the thread's CPU time is
reported (less sensitive to being descheduled, still sensitive to cache contention).

    .venv/bin/python benchmarks/bench_qat.py [--model small] [--policy int4] [--steps 7] [--loss rnnt]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

from hwsim.calibrate import cpu_model
from models.lstm import set_fused
from models.quant import quantize
from models.quant.surrogate import random_batches, surrogate_loss
from models.system import build_system
from models.train.batching import collate
from models.train.qat import SystemQATLoss, calibration_pass
from _timing import results_path


class _Trainer:
    """One Adam training step of ``system`` on ``batch`` with ``loss_fn``, timed (wall and thread
    CPU seconds)."""

    def __init__(self, system, batch, loss_fn) -> None:
        self.system, self.batch, self.loss_fn = system, batch, loss_fn
        self.opt = torch.optim.Adam([p for p in system.parameters() if p.requires_grad], lr=1e-4)
        self.wall_s: list[float] = []
        self.cpu_s: list[float] = []

    def step(self, record: bool = True) -> None:
        self.system.train()
        t0, c0 = time.perf_counter(), time.thread_time()
        self.opt.zero_grad(set_to_none=True)
        self.loss_fn(self.system, self.batch).backward()
        self.opt.step()
        if record:
            self.wall_s.append(time.perf_counter() - t0)
            self.cpu_s.append(time.thread_time() - c0)


def _rnnt_item(system, feats: torch.Tensor, labels: torch.Tensor) -> dict:
    """A ``models.train.qat`` item: acoustic batch + the same label sequences for both LMs."""
    seqs = [row.tolist() for row in labels]
    b = collate(system.config, system.rnnt.encoder, list(feats), seqs, None)
    return {"acoustic": b, "lm_ext": seqs, "lm_src": seqs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="small")
    ap.add_argument("--policy", default="int4")
    ap.add_argument("--steps", type=int, default=7)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--labels", type=int, default=10)
    ap.add_argument("--loss", choices=["rnnt", "surrogate"], default="rnnt",
                    help="rnnt: the QAT objective of models.train.qat (default); surrogate: models.quant.surrogate")
    ap.add_argument("--out", type=Path, default=results_path("qat"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    system = build_system(args.model, 0)
    raw = random_batches(system.config, 1, args.batch, args.frames, args.labels)[0]
    if args.loss == "rnnt":
        batch = _rnnt_item(system, raw["feats"], raw["labels"])
        qsys = quantize(system, args.policy, "qat", calib_features=[batch], calib_fn=calibration_pass)
        cell_loss, qat_loss, fused_loss = SystemQATLoss(fused=False), SystemQATLoss(fused=False), SystemQATLoss(None)
        loss_name = "RNN-T loss + LM cross-entropy (models.train.qat)"
    else:
        batch = raw
        qsys = quantize(system, args.policy, "qat", calib_features=list(batch["feats"][:1]))
        cell_loss = qat_loss = fused_loss = surrogate_loss
        loss_name = "surrogate (joint + LM cross-entropy, models.quant.surrogate)"
    cell_sys, fused_sys = system, copy.deepcopy(system)
    for m in cell_sys.submodels().values():
        set_fused(m, False)
    for m in fused_sys.submodels().values():
        set_fused(m, True)
    cell, qat, fused = (_Trainer(cell_sys, batch, cell_loss), _Trainer(qsys, batch, qat_loss),
                        _Trainer(fused_sys, batch, fused_loss))
    trainers = (cell, qat, fused)
    for t in trainers:  # warm-up
        t.step(record=False)
    for _ in range(args.steps):
        for t in trainers:
            t.step()
    med = statistics.median
    fp32_cell, fp32_fused, qat_s = med(cell.wall_s), med(fused.wall_s), med(qat.wall_s)
    cell_ratios = [q / c for q, c in zip(qat.wall_s, cell.wall_s)]
    fused_ratios = [q / f for q, f in zip(qat.wall_s, fused.wall_s)]
    cpu = cpu_model()
    print(f"model {args.model}, policy {args.policy}, batch {args.batch} x {args.frames} frames, "
          f"{args.labels} labels, medians of {args.steps} interleaved rounds, 1 thread, CPU {cpu}")
    print(f"loss: {loss_name}")
    print(f"fp32 step (cell path):  {fp32_cell * 1e3:8.1f} ms wall  {med(cell.cpu_s) * 1e3:8.1f} ms cpu")
    print(f"fp32 step (fused LSTM): {fp32_fused * 1e3:8.1f} ms wall  {med(fused.cpu_s) * 1e3:8.1f} ms cpu")
    print(f"qat  step (cell path):  {qat_s * 1e3:8.1f} ms wall  {med(qat.cpu_s) * 1e3:8.1f} ms cpu")
    print(f"qat / fp32 cell path  (quantizer overhead)       = {qat_s / fp32_cell:.2f}x wall, "
          f"{med(qat.cpu_s) / med(cell.cpu_s):.2f}x cpu, rounds {min(cell_ratios):.2f}..{max(cell_ratios):.2f}"
          "  (goal <= 1.5x)")
    print(f"qat / fp32 fused path (over FP32 training as run) = {qat_s / fp32_fused:.2f}x wall, "
          f"{med(qat.cpu_s) / med(fused.cpu_s):.2f}x cpu, rounds {min(fused_ratios):.2f}..{max(fused_ratios):.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "model": args.model, "policy": args.policy, "batch": args.batch, "frames": args.frames,
        "labels": args.labels, "steps": args.steps, "loss": args.loss, "cpu": cpu, "threads": 1,
        "fp32_cell_step_s": fp32_cell, "fp32_fused_step_s": fp32_fused, "qat_step_s": qat_s,
        "qat_over_fp32_cell_x": qat_s / fp32_cell, "qat_over_fp32_fused_x": qat_s / fp32_fused,
        "qat_over_fp32_cell_cpu_x": med(qat.cpu_s) / med(cell.cpu_s),
        "qat_over_fp32_fused_cpu_x": med(qat.cpu_s) / med(fused.cpu_s),
        "round_ratios_cell": cell_ratios, "round_ratios_fused": fused_ratios}, indent=1) + "\n")


if __name__ == "__main__":
    main()
