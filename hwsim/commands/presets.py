"""``hwsim presets [show NAME [--model M]]``: list hardware presets, model presets and precision
policies, or print one preset's YAML file; ``show POLICY --model M`` prints the precision that the
policy gives every tensor of model M (overrides applied, and which override decided it)."""

from __future__ import annotations

import argparse

from models.config import PRESET_DIR as MODEL_DIR
from models.config import presets as model_presets
from models.quant.policy import POLICY_DIR, policies
from models.yamlio import ConfigError

from hwsim.spec import PRESET_DIR as HW_DIR
from hwsim.spec import presets as hw_presets

#: Activation roles in the order the table shows them (the parameter roles are in the first table).
_ACT_ROLES = ("input", "hidden", "preact", "act", "cell", "output")


def register(subparsers) -> None:
    p = subparsers.add_parser("presets", help="list hardware/model presets and precision policies",
                              description=__doc__)
    p.add_argument("action", nargs="?", choices=["list", "show"], default="list",
                   help="list (default) or show NAME")
    p.add_argument("name", nargs="?", help="preset or policy name for 'show' (with --model: a policy "
                                           "name or YAML path)")
    p.add_argument("--model", help="with 'show POLICY': print the policy resolved against this model "
                                   "(preset or YAML path): every tensor's precision")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        if args.model:
            raise ConfigError("presets: --model goes with 'show POLICY' (hwsim presets show POLICY --model M)")
        print("hardware:  " + ", ".join(hw_presets()))
        print("models:    " + ", ".join(model_presets()))
        print("policies:  " + ", ".join(policies()))
        return 0
    if not args.name:
        raise ConfigError("presets show: argument NAME is required (a hardware preset, model preset or policy)")
    if args.model:
        return show_resolved(args.name, args.model)
    found = [d / f"{args.name}.yaml" for d in (HW_DIR, MODEL_DIR, POLICY_DIR) if (d / f"{args.name}.yaml").exists()]
    if not found:
        raise ConfigError(f"presets show: unknown name {args.name!r}; hardware: {', '.join(hw_presets())}; "
                          f"models: {', '.join(model_presets())}; policies: {', '.join(policies())}")
    for path in found:
        if len(found) > 1:
            print(f"# --- {path}")
        print(path.read_text(), end="")
    return 0


def show_resolved(policy_name: str, model: str) -> int:
    """Print ``policy_name`` resolved against ``model``: one row per parameter tensor (from
    ``hwsim.compression``'s tensor table), then the activation tensors each module quantizes.

    Raises:
        ConfigError: unknown policy or model; an override pattern that matches no module.
    """
    from models.config import load_config
    from models.quant.policy import check_overrides, load_policy, model_modules
    from models.params import parameter_table
    from models.quant.roles import SLOTS, WEIGHT_SLOTS, module_kind, slot_role

    from hwsim.compression import compression

    if (HW_DIR / f"{policy_name}.yaml").exists() or (MODEL_DIR / f"{policy_name}.yaml").exists():
        raise ConfigError(f"presets show {policy_name} --model {model}: {policy_name!r} is not a precision "
                          f"policy; --model goes with a policy ({', '.join(policies())} or a YAML file)")
    policy = load_policy(policy_name)
    config = load_config(model)
    check_overrides(policy, config)
    comp = compression(config, policy)
    params = {p.name: p for p in parameter_table(config)}

    def decided_by(module: str, role: str) -> str:
        ov = policy.deciding_override(module, role)
        return ov.pattern if ov is not None else ""

    rows = []
    for t in comp.tensors.itertuples(index=False):
        spec = policy.param_spec(params[t.name])
        rows.append((t.name, t.role, t.shape, spec.precision, spec.quantizer,
                     spec.granularity if spec.is_int else "-", f"{t.bytes:,}", decided_by(t.module, t.role)))
    print(f"{policy.name} on {config.name}: {len(rows)} parameter tensors, {comp.weight_bytes:,} bytes "
          f"(fp32 {comp.fp32_weight_bytes:,}, compression_x {comp.compression_x:.3f})")
    _table(("tensor", "role", "shape", "precision", "quantizer", "granularity", "bytes", "override"), rows,
           right={"bytes"})

    act_rows = []
    for module in model_modules(params.values()):
        kind = module_kind(module)
        roles = {slot_role(kind, module, s) for s in SLOTS.get(kind, ()) if s not in WEIGHT_SLOTS}
        if not roles:
            continue
        cells = [policy.spec(module, r).precision if r in roles else "-" for r in _ACT_ROLES]
        patterns = dict.fromkeys(p for r in sorted(roles) if (p := decided_by(module, r)))
        act_rows.append((module, kind, *cells, ", ".join(patterns)))
    print("activations (each module's quantized tensors, by role; '-': the module has none):")
    _table(("module", "kind", *_ACT_ROLES, "override"), act_rows)
    return 0


def _table(header: tuple[str, ...], rows: list[tuple], right: set[str] = frozenset()) -> None:
    widths = [max(len(str(v)) for v in col) for col in zip(header, *rows)]
    for row in (header, *rows):
        cells = [str(v).rjust(w) if h in right else str(v).ljust(w) for h, v, w in zip(header, row, widths)]
        print("  " + "  ".join(cells).rstrip())
