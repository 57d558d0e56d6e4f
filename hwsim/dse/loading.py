"""Loading sweep definitions: strict YAML, every value validated before any work.

Checks, each error naming the file and the field (``sweep.yaml: vary.hw.core.matrix.rows[1]: ...``):
unknown and duplicate keys (``models.yamlio``); model, precision and hardware names against their
presets or YAML paths; ``lm_fusion`` and ``method`` against their choices; beams and durations;
every ``hw.<dotted path>`` value by building the varied spec (``AcceleratorSpec.replace_path``)
once per distinct value and hardware preset; groups (equal lengths, no parameter varied twice);
sampling; constraints (syntax, whitelist, and every name they read). See ``hwsim.dse.sweep`` for
the format.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from hwsim.dse.constraints import compile_constraint
from hwsim.limits import MAX_AUDIO_S, MAX_BEAM
from hwsim.dse.sweep import (DERIVED, HW_PREFIX, LM_FUSIONS, METHODS, POINT_FIELDS, SERVE_FIELDS, SERVE_PREFIX,
                             BasePoint, Sampling, Sweep, constraint_env, flatten_fields, spec_with)
from models.yamlio import ConfigError, from_dict, loads_yaml, read_config_text, to_dict

_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def load_sweep(path: str | Path) -> Sweep:
    """Load and validate a sweep YAML file.

    Raises:
        ConfigError: any invalid key or value; the message names the file and the field.
    """
    return loads_sweep(read_config_text(path), source=str(path))


def loads_sweep(text: str, source: str = "<sweep>") -> Sweep:
    """Load a sweep from YAML text; ``source`` names it in errors (see ``load_sweep``)."""
    data = loads_yaml(text, source=source)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with base, vary, sampling, constraints")
    unknown = sorted(set(data) - {"base", "vary", "sampling", "constraints", "description"})
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(map(repr, unknown))}; "
                          "expected some of: base, constraints, description, sampling, vary")
    if "base" not in data:
        raise ConfigError(f"{source}: base: required key is missing")
    base = _load_base(data["base"], source)
    vary, groups = _load_vary(data.get("vary") or {}, base, source)
    _check_serving(base, vary, groups, source)
    sampling = _load_sampling(data.get("sampling", "grid"), source)
    raw_constraints = data.get("constraints") or []
    if not isinstance(raw_constraints, list):
        raise ConfigError(f"{source}: constraints: expected a list, got {type(raw_constraints).__name__}")
    constraints = tuple(compile_constraint(c, f"{source}: constraints[{i}]") for i, c in enumerate(raw_constraints))
    if constraints:
        env = constraint_env(base)
        for i, c in enumerate(constraints):
            missing = sorted(c.names - set(env))
            if missing:
                raise ConfigError(
                    f"{source}: constraints[{i}]: unknown name(s) {missing}; use point fields "
                    f"({', '.join(POINT_FIELDS)}), {', '.join(DERIVED)} or hw.<spec field path>")
    return Sweep(source, base, vary, sampling, constraints, definition=data, text=text, groups=groups)


def _load_base(raw: Any, source: str) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: base: expected a mapping, got {type(raw).__name__}")
    plain = {k: v for k, v in raw.items() if not str(k).startswith((HW_PREFIX, SERVE_PREFIX))}
    if "audio_s" in plain:
        plain["audio_s"] = _coerce_number(plain["audio_s"])
    bp = from_dict(BasePoint, plain, source=source, path="base")
    base = to_dict(bp)
    for name in POINT_FIELDS:
        base[name] = _check_field(name, base[name], f"{source}: base.{name}")
    for key, value in raw.items():
        if str(key).startswith(HW_PREFIX):
            base[key] = _check_hw(key, value, [base["hw"]], {}, f"{source}: base.{key}")
        elif str(key).startswith(SERVE_PREFIX):
            base[key] = _check_serve(key, value, f"{source}: base.{key}")
    return base


def _check_serve(key: str, value: Any, where: str) -> Any:
    """Validate ``serve.<setting> = value`` (``SERVE_FIELDS``); returns it typed."""
    name = key[len(SERVE_PREFIX):]
    if name not in SERVE_FIELDS:
        raise ConfigError(f"{where}: unknown serving setting {name!r}; expected one of "
                          f"{', '.join(SERVE_PREFIX + k for k in SERVE_FIELDS)}")
    kind, minimum, strict, _ = SERVE_FIELDS[name]
    value = _coerce_number(value)
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if kind is int:
        ok = ok and isinstance(value, int)
    if not ok or value < minimum or (strict and value == minimum):
        raise ConfigError(f"{where}: expected {'an integer' if kind is int else 'a number'} "
                          f"{'>' if strict else '>='} {minimum:g}, got {value!r}")
    return kind(value)


def _check_serving(base: dict, vary, groups, source: str) -> None:
    """A sweep with ``serve.*`` settings needs ``serve.p95_ms`` and unidirectional models."""
    names = set(base)
    models = [base["model"]]
    for key, values in vary:
        if key in groups:
            for v in values:
                names |= set(v)
                models += [v["model"]] if "model" in v else []
        else:
            names.add(key)
            models += list(values) if key == "model" else []
    if not any(str(n).startswith(SERVE_PREFIX) for n in names):
        return
    if SERVE_PREFIX + "p95_ms" not in names:
        raise ConfigError(f"{source}: serve.p95_ms: required with serving settings (the p95 chunk-delay "
                          "target in ms, in base or vary)")
    from models.config import load_config

    for m in dict.fromkeys(models):
        if load_config(m).encoder.bidirectional:
            raise ConfigError(f"{source}: model {m!r}: serving needs a unidirectional encoder (streaming); "
                              "use e.g. swb300-stream")


def _check_field(name: str, value: Any, where: str) -> Any:
    """Validate one non-hardware point field; returns the normalized value."""
    try:
        if name == "model":
            from models.config import load_config

            _require_str(value, where)
            load_config(value)
        elif name == "precision":
            from models.quant.policy import load_policy

            _require_str(value, where)
            load_policy(value)
        elif name == "hw":
            from hwsim.spec import load_spec

            _require_str(value, where)
            load_spec(value)
        elif name == "audio_s":
            value = _coerce_number(value)
            if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                    or not 0 < value <= MAX_AUDIO_S):
                raise ConfigError(f"expected a duration in seconds > 0 and <= {MAX_AUDIO_S:g}, got {value!r}")
            value = float(value)
        elif name == "beam":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BEAM:
                raise ConfigError(f"expected an integer from 1 to {MAX_BEAM}, got {value!r}")
        elif name == "lm_fusion":
            if value not in LM_FUSIONS:
                raise ConfigError(f"expected one of {list(LM_FUSIONS)}, got {value!r}")
        elif name == "method":
            if value not in METHODS:
                raise ConfigError(f"expected one of {list(METHODS)}, got {value!r}")
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(where) else f"{where}: {msg}") from exc
    return value


def _require_str(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"expected a name or a path, got {value!r}")


def _coerce_number(value: Any) -> Any:
    """YAML 1.1 reads ``64e6`` (no dot) as a string; accept it as the number it means."""
    if isinstance(value, str) and _NUMBER_RE.match(value.strip()):
        f = float(value)
        return int(f) if f.is_integer() and not re.search(r"[.eE]", value) else f
    return value


def _check_hw(key: str, value: Any, hws: list[str], fixed: dict, where: str) -> Any:
    """Validate ``hw.<path> = value`` on every hardware preset of the sweep.

    Returns the value as the spec stores it (e.g. 100e9 for a float field, 64 for an int field).
    """
    path = key[len(HW_PREFIX):]
    if not path:
        raise ConfigError(f"{where}: empty hardware path (write hw.<field>.<field>)")
    value = _coerce_number(value)
    stored = value
    for hw in hws:
        try:
            spec = spec_with(hw, tuple(fixed.items())).replace_path(path, value)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        stored = flatten_fields(to_dict(spec), "", {}).get("." + path, value)
    return stored


def _expand_values(name: str, raw: Any, where: str) -> list:
    if isinstance(raw, dict):
        if set(raw) != {"range"}:
            raise ConfigError(f"{where}: expected a list of values or {{range: [start, stop, step]}}, "
                              f"got keys {sorted(raw)}")
        r = raw["range"]
        if not isinstance(r, list) or len(r) != 3:
            raise ConfigError(f"{where}.range: expected [start, stop, step], got {r!r}")
        start, stop, step = (_coerce_number(v) for v in r)
        for v in (start, stop, step):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"{where}.range: expected numbers, got {r!r}")
        if step <= 0 or stop <= start:
            raise ConfigError(f"{where}.range: need step > 0 and stop > start (stop is exclusive), got {r!r}")
        if all(isinstance(v, int) for v in (start, stop, step)):
            return list(range(start, stop, step))
        n = math.ceil((stop - start) / step - 1e-9)
        return [round(start + i * step, 12) for i in range(n)]
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: expected a non-empty list of values or {{range: [start, stop, step]}}")
    return list(raw)


def _load_vary(raw: Any, base: dict, source: str) -> tuple[tuple[tuple[str, tuple], ...], frozenset[str]]:
    """Validate ``vary``; returns (name, values) pairs in file order and the names of groups.

    A plain entry maps a point field or ``hw.<path>`` to a list (or a range). A *group* maps a
    free name to a mapping of members -> equally long lists; its members move together (zip), so
    linked fields (array rows, cols and MACs/cycle) vary as one. Group values are dicts.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: vary: expected a mapping, got {type(raw).__name__}")
    hws = [base["hw"]]
    if "hw" in raw:  # hardware paths are checked against every hw preset the sweep uses
        hws = [_check_field("hw", v, f"{source}: vary.hw[{i}]")
               for i, v in enumerate(_expand_values("hw", raw["hw"], f"{source}: vary.hw"))]
    fixed = {k[len(HW_PREFIX):]: v for k, v in base.items() if k.startswith(HW_PREFIX)}
    out: list[tuple[str, tuple]] = []
    groups: set[str] = set()
    members_seen: dict[str, str] = {}
    for key, spec in raw.items():
        where = f"{source}: vary.{key}"
        if not isinstance(key, str):
            raise ConfigError(f"{where}: parameter names must be strings")
        if key not in POINT_FIELDS and not key.startswith((HW_PREFIX, SERVE_PREFIX)):
            if not isinstance(spec, dict) or "range" in spec:
                raise ConfigError(f"{source}: vary: unknown parameter {key!r}; vary any of "
                                  f"{', '.join(POINT_FIELDS)}, hw.<dotted spec field path> or serve.<setting>, "
                                  "or give a group (name: {member: [values], ...}) of parameters varied together")
            columns = {}
            for member, values in spec.items():
                if (member not in POINT_FIELDS and not str(member).startswith((HW_PREFIX, SERVE_PREFIX))
                        or member == "hw"):
                    raise ConfigError(f"{where}: unknown member {member!r}; members are point fields "
                                      "(not hw), hw.<dotted spec field path> or serve.<setting>")
                columns[member] = _check_values(member, values, hws, fixed, f"{where}.{member}")
            lengths = {m: len(v) for m, v in columns.items()}
            if not columns or len(set(lengths.values())) != 1:
                raise ConfigError(f"{where}: members of a group need equally long value lists, got {lengths}")
            n = next(iter(lengths.values()))
            values = tuple({m: columns[m][i] for m in columns} for i in range(n))
            _no_repeats([json.dumps(v, sort_keys=True) for v in values], values, where)
            groups.add(key)
            names = list(columns)
        else:
            values = tuple(hws) if key == "hw" else _check_values(key, spec, hws, fixed, where)
            names = [key]
        for name in names:
            if name in members_seen:
                raise ConfigError(f"{where}: {name} is already varied by vary.{members_seen[name]}")
            members_seen[name] = key
        out.append((key, values))
    return tuple(out), frozenset(groups)


def _check_values(key: str, raw: Any, hws: list[str], fixed: dict, where: str) -> tuple:
    values = _expand_values(key, raw, where)
    fixed = {k: v for k, v in fixed.items() if HW_PREFIX + k != key}
    normalized = []
    for i, v in enumerate(values):
        w = f"{where}[{i}]"
        normalized.append(_check_hw(key, v, hws, fixed, w) if key.startswith(HW_PREFIX)
                          else _check_serve(key, v, w) if key.startswith(SERVE_PREFIX)
                          else _check_field(key, v, w))
    _no_repeats([json.dumps(v, sort_keys=True) for v in normalized], normalized, where)
    return tuple(normalized)


def _no_repeats(markers: list[str], values, where: str) -> None:
    seen = set()
    for m, v in zip(markers, values):
        if m in seen:
            raise ConfigError(f"{where}: value {v!r} appears twice (each point must be distinct)")
        seen.add(m)


def _load_sampling(raw: Any, source: str) -> Sampling:
    where = f"{source}: sampling"
    if raw == "grid":
        return Sampling("grid")
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - {"random", "seed"})
        if unknown or "random" not in raw:
            raise ConfigError(f"{where}: expected grid or {{random: N, seed: S}}, got keys {sorted(raw)}")
        n, seed = raw["random"], raw.get("seed", 0)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"{where}.random: expected an integer >= 1, got {n!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"{where}.seed: expected an integer, got {seed!r}")
        return Sampling("random", n, seed)
    raise ConfigError(f"{where}: expected grid or {{random: N, seed: S}}, got {raw!r}")
