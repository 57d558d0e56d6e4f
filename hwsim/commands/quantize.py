"""``hwsim quantize``: fake-quantize a model under a precision policy (PTQ or QAT) and export
its integer weights (format: ``models.quant.qexport``).

Calibration and QAT run on real speech: a corpus directory (``--data``, as written by
``models.data.corpus.build_corpus``; ``make accuracy`` writes ``data/corpus``) or a WAV list
(``--wav-list``, ``path<TAB>transcript`` lines), features from ``models.features.features_for``,
the RNN-T loss for the acoustic model and the LMs' cross-entropy for the LMs
(``models.train.qat``, the code the accuracy pipeline runs). ``--synthetic`` instead calibrates on
random features and trains a surrogate loss on random labels (``models.quant.surrogate``): a
plumbing check, not a speech recognition objective; the output says so.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from hwsim.commands._args import count, positive_float, positive_int, seed

log = logging.getLogger(__name__)

DATA_OPTIONS = "--data DIR (a corpus directory), --wav-list FILE (path<TAB>transcript lines) or --synthetic"


def register(subparsers) -> None:
    p = subparsers.add_parser("quantize", help="quantize a model (PTQ or QAT) and export integer weights",
                              description=__doc__)
    p.add_argument("--model", required=True, help="model preset or YAML path")
    p.add_argument("--checkpoint", default=None, help="System.save checkpoint (default: random weights)")
    p.add_argument("--seed", type=seed, default=0,
                   help="seed of random weights and of the data draws (default 0)")
    p.add_argument("--precision", required=True, help="precision policy name or YAML path")
    p.add_argument("--mode", choices=["ptq", "qat"], default="ptq",
                   help="ptq: calibrate the quantizers, no training (default); qat: calibrate, then "
                        "fine-tune with the quantizers in the loop (--steps, --lr)")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--data", metavar="DIR", default=None,
                      help="corpus directory (manifest.tsv, wav/, text/lm_*.txt, as written by "
                           "models.data.corpus.build_corpus), or a folder holding one as corpus/ "
                           "(make accuracy: data): its train split and LM text")
    data.add_argument("--wav-list", metavar="FILE", default=None,
                      help="text file of path<TAB>transcript lines (16 kHz 16-bit mono WAVs; paths "
                           "relative to the file); both LMs use the transcripts as text")
    data.add_argument("--synthetic", action="store_true",
                      help="random features and labels, surrogate QAT loss (plumbing check only)")
    p.add_argument("--max-utts", type=positive_int, default=256,
                   help="--data: at most this many training utterances, a seeded draw (default 256)")
    p.add_argument("--max-frames", type=positive_int, default=2000,
                   help="padded input frames per acoustic batch (default 2000)")
    p.add_argument("--calib", type=count, default=4,
                   help="calibration batches (--synthetic: random utterances; default 4)")
    p.add_argument("--calib-frames", type=count, default=200,
                   help="--synthetic: frames per random calibration utterance (default 200)")
    p.add_argument("--steps", type=count, default=20, help="QAT steps (qat only; default 20)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="QAT Adam learning rate (default 1e-3)")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="export file (.npz)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _load_data(args, cfg):
    from models.train.qat import corpus_data, wav_list_data

    if args.data is not None:
        return corpus_data(args.data, cfg, "train", args.max_utts, seed=args.seed)
    return wav_list_data(args.wav_list, cfg)


def _calibrate_and_train(args, system, policy, notes: list[str]) -> tuple[object, dict]:
    """The quantized system and what was done (data, calibration, per-step QAT losses)."""
    import torch

    from models.features import random_features
    from models.quant import freeze, qat_finetune, quantize
    from models.quant.surrogate import random_batches, surrogate_loss
    from models.train.qat import calibration_items, calibration_pass, qat_items, run_qat
    from models.yamlio import UserError

    cfg = system.config
    info: dict = {}
    if args.synthetic:
        info.update(data="synthetic", data_path=None, utterances=args.calib, loss="surrogate")
        calib = [random_features(cfg, args.calib_frames, seed=args.seed + i) for i in range(args.calib)]
        calib_fn = None
        notes.append(f"synthetic data: calibration on {args.calib} random feature tensors of "
                     f"{args.calib_frames} frames (not speech)")
    else:
        data = _load_data(args, cfg)
        calib = calibration_items(cfg, system.rnnt.encoder, data.feats, data.texts, data.lm_ext, data.lm_src,
                                  n_batches=args.calib, max_frames=args.max_frames, seed=args.seed)
        if args.calib and not calib:
            raise UserError(f"{data.path}: no utterance long enough for a calibration batch")
        calib_fn = calibration_pass
        info.update(data=data.source, data_path=str(data.path), utterances=len(data.feats),
                    loss="rnnt+lm_ce")
        notes.append(f"data: {data.source} {data.path}, {len(data.feats)} utterances; "
                     f"calibration on {len(calib)} batches ({sum(it['acoustic'].size for it in calib)} "
                     f"utterances); LM text: {data.lm_text}")
    info["calib_batches"] = len(calib)
    history: list[dict] = []
    with torch.random.fork_rng():
        torch.manual_seed(args.seed)
        try:
            qsys = quantize(system, policy, args.mode, calib_features=calib, calib_fn=calib_fn, seed=args.seed)
        except RuntimeError as exc:  # an observer without data: --calib 0 with an integer policy
            if args.calib:
                raise  # calibrated: not the user's doing
            raise UserError(f"--calib 0: {exc}; use --calib N > 0") from None
        if args.mode == "qat":
            if args.synthetic and args.steps:
                notes.append("QAT loss: SURROGATE (joint + LM cross-entropy on random labels and "
                             "random features), not the RNN-T loss: a plumbing check")
                batches = random_batches(cfg, 4, batch=2, frames=min(args.calib_frames or 100, 100), labels=8,
                                         seed=args.seed)
                history = [{"loss": v} for v in qat_finetune(qsys, batches, args.steps, args.lr, surrogate_loss,
                                                             freeze_after=False)]
            elif args.steps:
                notes.append("QAT loss: RNN-T loss (nats/label) + external and source LM cross-entropy "
                             "(nats/char)")
                items = qat_items(cfg, qsys.rnnt.encoder, data, args.max_frames, seed=args.seed)
                history = run_qat(qsys, items, args.steps, args.lr)
            freeze(qsys)
            qsys.eval()
    info["history"] = history
    return qsys, info


def run(args: argparse.Namespace) -> int:
    from models.params import parameter_table
    from models.quant import export
    from models.quant.policy import check_overrides, load_policy, storage_bytes
    from models.system import build_system
    from models.yamlio import UserError

    from hwsim.outputs import atomic_file, check_file

    check_file(args.out)
    if not (args.synthetic or args.data or args.wav_list):
        here = " (make accuracy's corpus is here: --data data)" if Path("data/corpus/manifest.tsv").is_file() else ""
        raise UserError(f"no calibration / training data: give {DATA_OPTIONS} (random features, "
                        f"surrogate loss){here}")
    policy = load_policy(args.precision)
    system = build_system(args.model, args.seed, checkpoint=args.checkpoint)
    cfg = system.config
    check_overrides(policy, cfg)
    notes = []
    if args.checkpoint is None:
        notes.append(f"no checkpoint: random weights (seed {args.seed})")
    qsys, info = _calibrate_and_train(args, system, policy, notes)
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
    hist = info.pop("history")

    def ends(key: str) -> tuple:
        vals = [h[key] for h in hist if key in h]
        return (vals[0], vals[-1]) if vals else (None, None)

    result = {
        "model": cfg.name, "precision": policy.name, "mode": args.mode, "out": str(args.out),
        "weight_bytes": weight_bytes, "fp32_weight_bytes": fp32_bytes,
        "compression_x": fp32_bytes / weight_bytes,
        "random_weights": args.checkpoint is None, "calib": args.calib, **info,
        "qat_steps": len(hist), "qat_loss_first": ends("loss")[0], "qat_loss_last": ends("loss")[1],
        "qat_rnnt_loss_first": ends("rnnt")[0], "qat_rnnt_loss_last": ends("rnnt")[1],
        "qat_lm_loss_first": ends("lm")[0], "qat_lm_loss_last": ends("lm")[1],
        "qat_history": hist, "notes": notes,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{cfg.name} @ {policy.name} ({args.mode}): {weight_bytes:,} bytes "
              f"(fp32 {fp32_bytes:,}), compression {result['compression_x']:.2f}x -> {args.out}")
        where = "SYNTHETIC (random features, no speech)" if args.synthetic else \
            f"{info['data']} {info['data_path']} ({info['utterances']} utterances)"
        print(f"data: {where}; calibration batches: {info['calib_batches']}")
        if hist and args.synthetic:
            print(f"QAT: {len(hist)} steps, SURROGATE loss {hist[0]['loss']:.4f} -> {hist[-1]['loss']:.4f} "
                  "(not the RNN-T loss)")
        elif hist:
            print(f"QAT: {len(hist)} steps, RNN-T loss {hist[0]['rnnt']:.4f} -> {hist[-1]['rnnt']:.4f} "
                  f"nats/label, LM cross-entropy {hist[0]['lm']:.4f} -> {hist[-1]['lm']:.4f} nats/char "
                  "(each measured before its step's update)")
    return 0
