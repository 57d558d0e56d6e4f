"""``hwsim presets [show NAME]``: list hardware presets, model presets and precision policies,
or print one preset's YAML file."""

from __future__ import annotations

import argparse

from models.config import PRESET_DIR as MODEL_DIR
from models.config import presets as model_presets
from models.quant.policy import POLICY_DIR, policies
from models.yamlio import ConfigError

from hwsim.spec import PRESET_DIR as HW_DIR
from hwsim.spec import presets as hw_presets


def register(subparsers) -> None:
    p = subparsers.add_parser("presets", help="list hardware/model presets and precision policies",
                              description=__doc__)
    p.add_argument("action", nargs="?", choices=["list", "show"], default="list",
                   help="list (default) or show NAME")
    p.add_argument("name", nargs="?", help="preset or policy name for 'show'")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        print("hardware:  " + ", ".join(hw_presets()))
        print("models:    " + ", ".join(model_presets()))
        print("policies:  " + ", ".join(policies()))
        return 0
    if not args.name:
        raise ConfigError("presets show: argument NAME is required (a hardware preset, model preset or policy)")
    found = [d / f"{args.name}.yaml" for d in (HW_DIR, MODEL_DIR, POLICY_DIR) if (d / f"{args.name}.yaml").exists()]
    if not found:
        raise ConfigError(f"presets show: unknown name {args.name!r}; hardware: {', '.join(hw_presets())}; "
                          f"models: {', '.join(model_presets())}; policies: {', '.join(policies())}")
    for path in found:
        if len(found) > 1:
            print(f"# --- {path}")
        print(path.read_text(), end="")
    return 0
