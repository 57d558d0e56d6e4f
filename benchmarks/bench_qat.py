"""QAT training-step time / FP32 training-step time on the ``small`` model (goal: <= 1.5x).

Not a test: one run, medians of a few steps, ratios printed. The loss is the surrogate of
``models.quant.surrogate`` (joint + LM cross-entropy) because the RNN-T loss does not exist yet;
it runs the same forward/backward graph shape (RNN-T lattice + both LMs), so the ratio is the
quantizers' overhead. Two FP32 baselines: the cell-level LSTM path (the one QAT must take, same
ops minus the quantizers) and the fused ``torch._VF.lstm`` path (what FP32 training uses).

    .venv/bin/python benchmarks/bench_qat.py [--model small] [--policy int4] [--steps 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from models.lstm import set_fused
from models.quant import quantize
from models.quant.surrogate import random_batches, surrogate_loss
from models.system import build_system


def _step_times(system, batch, steps: int) -> list[float]:
    system.train()
    params = [p for p in system.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-4)
    times = []
    for i in range(steps + 1):  # the first step warms up
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        surrogate_loss(system, batch).backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="small")
    ap.add_argument("--policy", default="int4")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--labels", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    system = build_system(args.model, 0)
    batch = random_batches(system.config, 1, args.batch, args.frames, args.labels)[0]
    qsys = quantize(system, args.policy, "qat", calib_features=list(batch["feats"][:1]))
    set_fused(system.rnnt, False)
    fp32_cell = statistics.median(_step_times(system, batch, args.steps))
    qat = statistics.median(_step_times(qsys, batch, args.steps))
    for m in (system.rnnt, system.lm_ext, system.lm_src):
        set_fused(m, True)
    fp32_fused = statistics.median(_step_times(system, batch, args.steps))
    print(f"model {args.model}, policy {args.policy}, batch {args.batch} x {args.frames} frames, "
          f"{args.labels} labels, medians of {args.steps} steps, 1 thread")
    print("loss: surrogate (joint + LM cross-entropy; the RNN-T loss does not exist yet)")
    print(f"fp32 step (cell path):  {fp32_cell * 1e3:8.1f} ms")
    print(f"fp32 step (fused LSTM): {fp32_fused * 1e3:8.1f} ms")
    print(f"qat  step (cell path):  {qat * 1e3:8.1f} ms")
    print(f"qat / fp32 cell  = {qat / fp32_cell:.2f}x  (goal <= 1.5x)")
    print(f"qat / fp32 fused = {qat / fp32_fused:.2f}x")


if __name__ == "__main__":
    main()
