"""Sweep definitions: a base design point, the parameters to vary, sampling and constraints.

A sweep is a YAML file loaded strictly (``models.yamlio``: duplicate keys and unknown keys are
errors that name the file and the field)::

    base: {model: swb300, hw: rapid4, audio_s: 10, precision: int4, beam: 16, lm_fusion: dr}
    vary:
      precision: [fp16, int8, int4]
      beam: [1, 4, 8, 16]
      hw.core.matrix.rows: {range: [32, 160, 32]}     # start, stop (exclusive), step
      hw.dram_bw_bytes_per_s: [50e9, 100e9]
      array:                                           # a group: its members move together
        hw.core.matrix.rows: [16, 32]
        hw.core.matrix.cols: [16, 32]
        hw.core.matrix.macs_per_pe_per_cycle.int4: [4, 8]
    sampling: grid                                     # or {random: N, seed: S}
    constraints:
      - "onchip_bytes <= 64e6"
      - {field: hw.core.matrix.rows, max: 128}

Everything is checked when the file is loaded (``hwsim.dse.loading``), before any work: model,
precision and hardware names against their presets (or YAML paths), ``lm_fusion`` and ``method``
against the known choices, and every ``hw.<dotted path>`` value by building the varied spec
(``AcceleratorSpec.replace_path``) once per distinct value. Combinations of hardware values are
checked when the sweep is planned (if constraints need the spec) or evaluated; a combination the
spec rejects becomes a design point with ``status=error``.

A design point is a flat dict: the base fields (``model``, ``hw``, ``audio_s``, ``precision``,
``beam``, ``lm_fusion``, ``method``), one ``hw.<path>`` entry per hardware override and, for a
sweep of serving capacity, ``serve.<setting>`` entries (``SERVE_FIELDS``; ``serve.p95_ms``
required among them), in base or vary like any field::

    base: {model: swb300-stream, hw: rapid4, audio_s: 20, precision: int4, beam: 8, lm_fusion: dr,
           serve.p95_ms: 40, serve.limit: 256}

Such a point also gets ``max_streams`` (``hwsim.serve.max_streams``: the most live streams whose
worst p95 chunk delay meets ``serve.p95_ms`` while every stream keeps up, at most
``serve.limit``), ``serve_p95_s`` (that worst p95 at ``max_streams``), ``serve_p95_1_s`` (one
stream's) and ``serve_at_limit``; its model must be unidirectional. Its key is
the SHA-256 of its canonical JSON, stable across runs and machines. The key names presets, it
does not hash their contents: after editing a preset, write results to a new directory.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from hwsim.dse.constraints import Constraint
from models.yamlio import ConfigError, to_dict

#: Fields of every design point, in column order.
POINT_FIELDS = ("model", "hw", "audio_s", "precision", "beam", "lm_fusion", "method")
#: The fields that determine the operator graph (points sharing them share one graph).
GRAPH_FIELDS = ("model", "audio_s", "beam", "lm_fusion", "method")
HW_PREFIX = "hw."
SERVE_PREFIX = "serve."
#: Serving settings a point may carry (``hwsim.serve``): name -> (type, minimum, strict, default).
SERVE_FIELDS = {"p95_ms": (float, 0.0, True, None), "limit": (int, 1, False, 64),
                "max_batch": (int, 1, False, 16), "max_wait_ms": (float, 0.0, False, 0.0),
                "chunk_ms": (float, 0.0, True, None)}
LM_FUSIONS = ("none", "dr")
#: Search methods of the analytic graph builder: alignment-length synchronous (ALSD) and
#: time-synchronous decoding, or greedy (beam ignored: width 1).
METHODS = ("alsd", "tsd", "greedy")
#: Names a constraint may use besides the point fields and ``hw.<path>``. ``area_mm2`` is None for
#: a spec without an ``area`` section: a constraint on it is then an error (no silent pass or
#: filter), and the column is empty (NaN) for that point, which a Pareto front leaves out.
DERIVED = ("onchip_bytes", "peak_macs_per_s", "peak_ops_per_s", "area_mm2")


@dataclass(frozen=True)
class BasePoint:
    """The fixed part of every design point (see ``POINT_FIELDS``).

    Attributes:
        model: model preset or YAML path (``models.config``).
        hw: accelerator preset or YAML path (``hwsim.spec``).
        audio_s: utterance length, in seconds.
        precision: precision policy name or YAML path (``models.quant.policy``).
        beam: beam width (1 = greedy).
        lm_fusion: ``none`` or ``dr`` (density-ratio fusion).
        method: search method, one of ``METHODS``.
    """

    model: str
    hw: str
    audio_s: float
    precision: str
    beam: int
    lm_fusion: Literal["none", "dr"] = "dr"
    method: Literal["alsd", "tsd", "greedy"] = "alsd"


@dataclass(frozen=True)
class Sampling:
    """``grid`` (every combination) or ``random`` (``n`` distinct combinations, seeded)."""

    kind: Literal["grid", "random"] = "grid"
    n: int = 0
    seed: int = 0


@dataclass(frozen=True)
class PlannedPoint:
    """A design point ready to run.

    Attributes:
        key: SHA-256 hex of the point's canonical JSON.
        point: the flat point dict (``POINT_FIELDS`` + ``hw.<path>`` overrides).
        error: why the point cannot run (e.g. its hardware combination is invalid), or ''.
    """

    key: str
    point: dict
    error: str = ""

    @property
    def graph_key(self) -> tuple:
        return tuple(self.point[f] for f in GRAPH_FIELDS)


@dataclass(frozen=True)
class Plan:
    """The design points of a sweep after sampling and constraints.

    Attributes:
        points: points to run (constraint-satisfying), in grid order.
        candidates: combinations considered (grid size, or the random sample size).
        filtered: combinations removed by constraints.
    """

    points: tuple[PlannedPoint, ...]
    candidates: int
    filtered: int


@dataclass(frozen=True)
class Sweep:
    """A loaded, validated sweep definition.

    Attributes:
        source: file name (for messages).
        base: the base point (``POINT_FIELDS`` + fixed ``hw.<path>`` overrides).
        vary: (parameter, values) pairs in file order; values are normalized (numbers typed as
            the spec field, ``audio_s`` as float).
        sampling: how combinations are chosen.
        constraints: compiled constraints; a point must satisfy all.
        definition: the parsed YAML mapping (what ``DIR/sweep.yaml`` is compared on).
        text: the file's text (copied to ``DIR/sweep.yaml``).
    """

    source: str
    base: dict
    vary: tuple[tuple[str, tuple], ...]
    sampling: Sampling
    constraints: tuple[Constraint, ...]
    definition: dict = field(compare=False, repr=False)
    text: str = field(compare=False, repr=False, default="")
    groups: frozenset[str] = frozenset()

    def _assign(self, point: dict, name: str, value: Any) -> None:
        if name in self.groups:
            point.update(value)
        else:
            point[name] = value

    @property
    def params(self) -> list[str]:
        """Column names of the point parameters: ``POINT_FIELDS``, the ``hw.*`` overrides, then
        the ``serve.*`` settings."""
        out = list(POINT_FIELDS)
        for prefix in (HW_PREFIX, SERVE_PREFIX):
            extra = [k for k in self.base if k.startswith(prefix)]
            out += extra + [k for k in self.varied if k.startswith(prefix) and k not in extra]
        return out

    @property
    def varied(self) -> list[str]:
        """Names of the varied parameters (group members expanded), in file order."""
        out = []
        for k, values in self.vary:
            out.extend(values[0] if k in self.groups else [k])
        return out

    @property
    def grid_size(self) -> int:
        return math.prod(len(v) for _, v in self.vary)

    def plan(self) -> Plan:
        """Expand the sweep into design points (grid or random sample, then constraints)."""
        sizes = [len(v) for _, v in self.vary]
        total = math.prod(sizes)
        if self.sampling.kind == "random":
            chosen = sorted(random.Random(self.sampling.seed).sample(range(total), min(self.sampling.n, total)))
            combos = (_unrank(i, sizes) for i in chosen)
            candidates = len(chosen)
        else:
            combos = itertools.product(*(range(s) for s in sizes))
            candidates = total
        points, filtered = [], 0
        specs: dict[tuple, Any] = {}   # per (hw, overrides): the spec, or why it is invalid
        envs: dict[tuple, dict] = {}    # per (hw, overrides, precision)
        for combo in combos:
            point = dict(self.base)
            for (name, values), i in zip(self.vary, combo):
                self._assign(point, name, values[i])
            point = {k: point[k] for k in self.params}
            error, ok = "", True
            if self.constraints:
                hw_key = (point["hw"], _overrides(point))
                if hw_key not in specs:
                    try:
                        specs[hw_key] = spec_with(*hw_key)
                    except ConfigError as exc:  # an invalid hardware combination: run nothing
                        specs[hw_key] = exc
                spec = specs[hw_key]
                if isinstance(spec, ConfigError):
                    error = str(spec)
                else:
                    env_key = (hw_key, point["precision"])
                    if env_key not in envs:
                        envs[env_key] = constraint_env(point, spec)
                    ok = self._satisfies({**envs[env_key], **point})
            if not ok:
                filtered += 1
                continue
            points.append(PlannedPoint(point_key(point), point, error))
        return Plan(tuple(points), candidates, filtered)

    def _satisfies(self, env: dict) -> bool:
        for i, c in enumerate(self.constraints):
            try:
                if not c(env):
                    return False
            except (ArithmeticError, TypeError, ValueError) as exc:
                raise ConfigError(f"{self.source}: constraints[{i}]: {c.text!r} failed on a point "
                                  f"({type(exc).__name__}: {exc})") from exc
        return True


# ----------------------------------------------------------------------------------------------
# Keys


def canonical_json(point: dict) -> str:
    """Canonical JSON of a point: sorted keys, no spaces, integral floats kept as floats."""
    return json.dumps(point, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def point_key(point: dict) -> str:
    """Stable key of a design point: SHA-256 hex of its canonical JSON."""
    return hashlib.sha256(canonical_json(point).encode()).hexdigest()


def _unrank(index: int, sizes: list[int]) -> tuple[int, ...]:
    """Mixed-radix digits of ``index`` (last parameter fastest, as ``itertools.product``)."""
    digits = []
    for s in reversed(sizes):
        index, d = divmod(index, s)
        digits.append(d)
    return tuple(reversed(digits))


# ----------------------------------------------------------------------------------------------
# Resolving specs and constraint names (cached per process: sweeps reuse a few specs many times)


@lru_cache(maxsize=16)
def _preset(hw: str):
    from hwsim.spec import load_spec

    return load_spec(hw)


@lru_cache(maxsize=1024)
def spec_with(hw: str, overrides: tuple[tuple[str, Any], ...]):
    """Preset ``hw`` with each (dotted path, value) of ``overrides`` applied (cached).

    All are set together through ``AcceleratorSpec.replace_paths`` (every path checked, the spec
    validated once, so that values valid only together are accepted).

    Raises:
        ConfigError: a path names no field, or the combination is invalid (field named).
    """
    return _preset(hw).replace_paths(dict(overrides))


def _overrides(point: dict) -> tuple[tuple[str, Any], ...]:
    return tuple((k[len(HW_PREFIX):], v) for k, v in point.items() if k.startswith(HW_PREFIX))


def resolve_spec(point: dict):
    """The ``AcceleratorSpec`` of a point: its ``hw`` preset with every ``hw.<path>`` applied.

    Raises:
        ConfigError: the combination of values is invalid (the field is named).
    """
    return spec_with(point["hw"], _overrides(point))


@lru_cache(maxsize=64)
def engine_precision_name(policy: str) -> str:
    """The precision name (``BITS`` key) of a policy's GEMM weights, e.g. ``int4`` for ``int4``."""
    from models.quant.policy import load_policy

    return load_policy(policy).roles["weight"].precision


def flatten_fields(data: Any, prefix: str, out: dict) -> dict:
    """Nested dicts as ``{prefix.a.b: value}`` (None and lists left out), added to ``out``."""
    if isinstance(data, dict):
        for k, v in data.items():
            flatten_fields(v, f"{prefix}.{k}", out)
    elif data is not None and not isinstance(data, list):
        out[prefix] = data
    return out


def spec_figures(spec, precision: str) -> dict[str, float | None]:
    """Figures of the hardware that tables and constraints use (``DERIVED``): ``area_mm2`` as
    ``hwsim.area.area_summary`` gives it (None without an ``area`` section, or when the
    coefficients cannot give this design's area: then ``area_error`` says why, and a
    constraint on ``area_mm2`` is an error)."""
    from hwsim.area import area_summary

    peak_macs = spec.peak_macs_per_s(engine_precision_name(precision))
    area = area_summary(spec)
    out = {"onchip_bytes": spec.onchip_bytes, "peak_macs_per_s": peak_macs,
           "peak_ops_per_s": 2.0 * peak_macs, "area_mm2": area.get("area_mm2")}
    if "area_error" in area:
        out["area_error"] = area["area_error"]
    return out


@lru_cache(maxsize=16)
def _preset_env(hw: str) -> dict[str, Any]:
    return flatten_fields(to_dict(_preset(hw)), "hw", {})


def constraint_env(point: dict, spec=None) -> dict[str, Any]:
    """Names a constraint can read for ``point``: its fields, ``hw.<path>`` of the resolved spec
    (every field, varied or not) and the ``DERIVED`` figures. ``spec``: the point's resolved
    spec, if already known.

    Raises:
        ConfigError: the point's hardware combination is invalid.
    """
    spec = resolve_spec(point) if spec is None else spec
    env = dict(_preset_env(point["hw"]))  # the overrides are the only leaves that differ
    env.update(point)
    env.update(spec_figures(spec, point["precision"]))
    return env
