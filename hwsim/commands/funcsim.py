"""``hwsim funcsim``: decode one utterance with the integer functional simulation of a quantized
export (``hwsim quantize`` / ``models.quant.qexport``) and compare it with the fake-quantized torch
model: per module, activation codes and INT32 accumulators compared and mismatching, the largest
float difference, and whether the n-best lists are identical."""

from __future__ import annotations

import argparse
import json
import logging

from hwsim.commands._args import add_input_args, add_search_args, input_features

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("funcsim", help="integer simulation of a quantized export on the Numba "
                                              "kernels, compared with the fake-quantized torch model",
                              description=__doc__)
    p.add_argument("--model", required=True, help="model preset or YAML path (must match the export)")
    p.add_argument("--checkpoint", required=True, help="quantized export (.npz from `hwsim quantize`)")
    add_input_args(p)
    add_search_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import models
    from hwsim.funcsim import funcsim

    from models.quant.exportfile import read_export
    from models.yamlio import UserError

    config = models.load_config(args.model)
    ex_config = read_export(args.checkpoint).config
    if ex_config != config:
        raise UserError(f"--checkpoint {args.checkpoint}: export of model {ex_config.name!r}, whose config "
                        f"differs from --model {args.model!r} ({config.name!r})")
    features = input_features(config, args).numpy()
    log.info("funcsim %s: %d frames, beam %d, LM fusion %s, %s", config.name, features.shape[0],
             args.beam, args.lm_fusion, args.method)
    try:
        result, report = funcsim(args.checkpoint, features, beam=args.beam, method=args.method,
                                 lm_fusion=args.lm_fusion)
    except NotImplementedError as exc:  # a quantizer the integer simulation does not execute
        raise UserError(f"--checkpoint {args.checkpoint}: unsupported by funcsim: {exc}") from None
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
