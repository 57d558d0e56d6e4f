"""``hwsim quantize``: fake-quantize a model under a precision policy (PTQ or QAT) and export
its integer weights (format: ``models.quant.qexport``)."""

from __future__ import annotations

import argparse
import json
import logging

from hwsim.commands._args import count, positive_float, seed

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("quantize", help="quantize a model (PTQ or QAT) and export integer weights",
                              description=__doc__)
    p.add_argument("--model", required=True, help="model preset or YAML path")
    p.add_argument("--checkpoint", default=None, help="System.save checkpoint (default: random weights)")
    p.add_argument("--seed", type=seed, default=0, help="seed of random weights and data (default 0)")
    p.add_argument("--precision", required=True, help="precision policy name or YAML path")
    p.add_argument("--mode", choices=["ptq", "qat"], default="ptq",
                   help="ptq: calibrate the quantizers, no training (default); qat: calibrate, then "
                        "fine-tune with the quantizers in the loop (--steps, --lr)")
    p.add_argument("--calib", type=count, default=4, help="calibration utterances (default 4)")
    p.add_argument("--calib-frames", type=count, default=200, help="frames per calibration utterance")
    p.add_argument("--steps", type=count, default=20, help="QAT steps (qat only; default 20)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="QAT Adam learning rate (default 1e-3)")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="export file (.npz)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from models.features import random_features
    from models.params import parameter_table
    from models.quant import export, qat_finetune, quantize
    from models.quant.policy import load_policy, storage_bytes
    from models.quant.surrogate import random_batches, surrogate_loss
    from models.system import build_system
    from models.yamlio import UserError

    from hwsim.commands._output import atomic_file, check_file

    check_file(args.out)
    policy = load_policy(args.precision)
    system = build_system(args.model, args.seed, checkpoint=args.checkpoint)
    cfg = system.config
    notes = []
    if args.checkpoint is None:
        notes.append(f"no checkpoint: random weights (seed {args.seed})")
    if args.calib:
        notes.append(f"calibration data: {args.calib} random feature tensors of {args.calib_frames} frames")
    feats = [random_features(cfg, args.calib_frames, seed=args.seed + i) for i in range(args.calib)]
    losses: list[float] = []
    with torch.random.fork_rng():
        torch.manual_seed(args.seed)
        try:
            qsys = quantize(system, policy, args.mode, calib_features=feats, seed=args.seed)
        except RuntimeError as exc:  # an observer without data: --calib 0 with an integer policy
            if args.calib:
                raise  # calibrated: not the user's doing
            raise UserError(f"--calib 0: {exc}; use --calib N > 0") from None
        if args.mode == "qat" and args.steps:
            notes.append("QAT loss: surrogate (joint + LM cross-entropy on random labels); "
                         "the RNN-T loss is not available yet")
            batches = random_batches(cfg, 4, batch=2, frames=min(args.calib_frames or 100, 100), labels=8,
                                     seed=args.seed)
            losses = qat_finetune(qsys, batches, args.steps, args.lr, surrogate_loss)
    for n in notes:
        log.info(n)
    params = parameter_table(cfg)
    weight_bytes = storage_bytes(params, policy)
    fp32_bytes = sum(4 * p.numel for p in params)
    with atomic_file(args.out) as tmp:
        manifest = export(qsys, tmp)
        if manifest["weight_bytes"] != weight_bytes:  # the export is the policy's storage, byte for byte
            raise RuntimeError(f"export holds {manifest['weight_bytes']} bytes but the policy counts "
                               f"{weight_bytes}")
    result = {
        "model": cfg.name, "precision": policy.name, "mode": args.mode, "out": str(args.out),
        "weight_bytes": weight_bytes, "fp32_weight_bytes": fp32_bytes,
        "compression_x": fp32_bytes / weight_bytes,
        "random_weights": args.checkpoint is None, "calib": args.calib,
        "qat_steps": len(losses), "qat_loss_first": losses[0] if losses else None,
        "qat_loss_last": losses[-1] if losses else None, "notes": notes,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{cfg.name} @ {policy.name} ({args.mode}): {weight_bytes:,} bytes "
              f"(fp32 {fp32_bytes:,}), compression {result['compression_x']:.2f}x -> {args.out}")
        if losses:
            print(f"QAT: {len(losses)} steps, loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return 0
