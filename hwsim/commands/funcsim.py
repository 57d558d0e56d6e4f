"""``hwsim funcsim``: decode one utterance with the integer functional simulation of a quantized
export (``hwsim quantize`` / ``models.quant.export``) and compare it with the fake-quantized torch
model: per module, activation codes and INT32 accumulators compared and mismatching, the largest
float difference, and whether the n-best lists are identical."""

from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger(__name__)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser("funcsim", help="bit-exact integer simulation of a quantized export",
                              description=__doc__)
    p.add_argument("--model", required=True, help="model preset or YAML path (must match the export)")
    p.add_argument("--checkpoint", required=True, help="quantized export (.npz from `hwsim quantize`)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--audio", help="16-bit PCM mono WAV file to decode")
    src.add_argument("--frames", type=_positive_int, help="decode N frames of random features")
    p.add_argument("--seed", type=int, default=0, help="seed of the random features (default 0)")
    p.add_argument("--beam", type=_positive_int, default=4, help="beam width (default 4)")
    p.add_argument("--lm-fusion", choices=["none", "dr"], default="none", help="LM fusion (default none)")
    p.add_argument("--method", choices=["alsd", "tsd", "greedy"], default="alsd",
                   help="search method (default alsd)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import models
    import models.features as feats
    from hwsim.funcsim import funcsim
    from hwsim.funcsim.export import Export

    config = models.load_config(args.model)
    ex_config = Export(args.checkpoint).config
    if ex_config.get("name") != config.name:
        raise ValueError(f"{args.checkpoint}: export of model {ex_config.get('name')!r}, not {config.name!r}")
    if args.audio:
        wave, rate = feats.load_wav(args.audio)
        features = feats.features_for(config, wave, rate)
    else:
        features = feats.random_features(config, args.frames, args.seed)
    features = features.numpy()
    log.info("funcsim %s: %d frames, beam %d, LM fusion %s, %s", config.name, features.shape[0],
             args.beam, args.lm_fusion, args.method)
    try:
        result, report = funcsim(args.checkpoint, features, beam=args.beam, method=args.method,
                                 lm_fusion=args.lm_fusion)
    except NotImplementedError as exc:  # a quantizer the integer simulation does not execute
        raise ValueError(f"unsupported by funcsim: {exc}") from None
    if args.json:
        print(json.dumps({"model": config.name, "export": str(args.checkpoint), "beam": args.beam,
                          "lm_fusion": args.lm_fusion, "method": args.method,
                          "frames": result.stats.frames, "text": result.text,
                          "nbest": [[list(l), s] for l, s in result.hyps], "equality": report.to_dict()}))
        return 0
    print(f"{config.name} ({args.checkpoint}): {result.stats.frames} encoder frames, beam {args.beam}, "
          f"LM fusion {args.lm_fusion}, {args.method}")
    for rank, (labels, score) in enumerate(result.hyps):
        print(f"  {rank + 1}. {score:10.4f}  {result.to_text(labels)!r}  {list(labels)}")
    print(report.format())
    return 0
