"""Benchmark the functional simulation's decode against the fake-quantized torch model's decode.

Run:  OMP_WAIT_POLICY=passive NUMBA_CACHE_DIR=.cache/numba \\
      python benchmarks/bench_funcsim.py [--model small] [--audio-s 2] [--repeats 3]

Setup: the model preset with random weights (seed 0), PTQ under ``--precision`` (default int4)
calibrated on 2 random utterances, exported and loaded back (``models.quant.load``, the torch
reference) and as an ``IntSystem``; one random utterance of ``--audio-s`` seconds; ALSD beam 4
with DR fusion. Both decodes run single-threaded (torch and Numba) after one warm-up decode each
(Numba compilation, torch caches); the figures are medians of ``--repeats`` timed decodes,
interleaved. Also recorded: whether the n-best lists were identical, and the search work
(prediction-net / LM / joint evaluations) so that the per-call cost can be read off.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import torch

import models
from hwsim.funcsim import IntSystem, decode
from hwsim.kernels import kernel_path
from models.features import random_features
from models.quant import export, load, quantize
from _timing import results_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="small")
    ap.add_argument("--precision", default="int4")
    ap.add_argument("--audio-s", type=float, default=2.0)
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=results_path("funcsim"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    numba.set_num_threads(1)

    system = models.build_system(args.model, seed=0)
    cfg = system.config
    frames = int(round(args.audio_s / cfg.features.frame_shift_s))
    calib = [random_features(cfg, 200, seed=100 + i) for i in range(2)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.npz"
        export(quantize(system, args.precision, mode="ptq", calib_features=calib), path)
        ref, sim = load(path), IntSystem.from_export(path)
    feats = random_features(cfg, frames, seed=1)
    kw = dict(beam=args.beam, lm_fusion="dr")

    def run_torch():
        return models.decode(ref, feats, **kw)

    def run_sim():
        return decode(sim, feats.numpy(), **kw)

    a, b = run_torch(), run_sim()  # warm-up (Numba compilation, caches)
    t_torch, t_sim = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        a = run_torch()
        t_torch.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        b = run_sim()
        t_sim.append(time.perf_counter() - t0)
    torch_s, sim_s = statistics.median(t_torch), statistics.median(t_sim)
    summary = a.stats.summary()
    result = {
        "model": cfg.name, "precision": args.precision, "audio_s": args.audio_s, "feature_frames": frames,
        "encoder_frames": summary["frames"], "beam": args.beam, "lm_fusion": "dr", "method": "alsd",
        "repeats": args.repeats, "torch_decode_s": torch_s, "funcsim_decode_s": sim_s,
        "funcsim_over_torch_x": sim_s / torch_s, "torch_rtf": torch_s / args.audio_s,
        "funcsim_rtf": sim_s / args.audio_s, "torch_decode_samples_s": t_torch,
        "funcsim_decode_samples_s": t_sim,
        "nbest_identical": [h[0] for h in a.hyps] == [h[0] for h in b.hyps],
        "search": {k: summary[k] for k in ("search_steps", "joint_evals", "pred_evals", "lm_ext_evals")},
        "kernel_path": kernel_path(), "threads": 1, "numpy": np.__version__, "torch": torch.__version__,
        "numba": numba.__version__, "machine": platform.machine(), "processor": platform.processor(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{cfg.name} {args.precision}, {args.audio_s} s, beam {args.beam}, DR: torch {torch_s:.3f} s, "
          f"funcsim {sim_s:.3f} s ({sim_s / torch_s:.2f}x), n-best identical {result['nbest_identical']}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
