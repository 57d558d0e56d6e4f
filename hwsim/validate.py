"""Predicted vs measured time on this CPU: ``hwsim validate --hw FILE.yaml [--json]``.

Cases (``gemm_cases``, ``DECODE_CASES``):

- GEMMs ``(m x k) @ (k x n)``: the RNN-T's own weight shapes (``K_N``: ``swb300`` and ``small``
  encoder, prediction, LM and joint layers) at m = 1 (one hypothesis), 4, 8, 16 (beams) and 250
  (frames of an utterance), for each executor and precision: torch ``F.linear`` at fp32 and bf16,
  ``torch._int_mm`` at int8 (executor ``aten``: preset ``FILE-aten.yaml``), and the project's Numba
  kernels ``gemm_int8`` / ``gemm_int4`` with prepacked weights (``numba``: ``FILE-numba.yaml``).
  Measured: seconds per call of a loop of calls on one thread (the minimum over rounds; below), the same weight every call
  (so it sits in whatever cache level holds it). Predicted: ``hwsim.simulate`` of a graph of
  ``GEMM_USES`` uses of that GEMM with one weight (``gemm_graph``), the latency of the last
  (steady-state) use: the execution plan keeps the weight in the scratchpad (L2) or the shared
  SRAM (the measured part of the L3) when it fits, else streams it from DRAM, as the cache does.
- Whole decodes of ``tiny`` and ``small`` (random weights and features; greedy, and beam 8 with DR
  fusion), run by ``models.decode`` in torch eager on one thread (executor ``torch``: preset
  ``FILE.yaml``, whose per-op dispatch ``hwsim calibrate`` measured on another decode). Predicted:
  ``hwsim.simulate`` of the graph traced from the same call (``decode_case``), FP32.

With ``calibrate=True`` (``hwsim validate --calibrate``) the presets are measured in the same
session: ``hwsim.calibrate``'s benchmarks join the cases' round-robin and the presets are written
to ``hw`` before the predictions are made; no case is a calibration benchmark.

All timed cases are sampled round-robin (``hwsim.calibrate.round_robin_samples``): a burst of load
from other users of the machine hits every case alike. ``measured_s`` is the minimum over the rounds
(``stat``: what other users add to a sample only ever adds time, and more often to a long sample;
``hwsim.calibrate``'s docstring), the calibration's items likewise; ``measured_median_s`` is
the median, and ``summary_median`` the summary with it, for a reader who wants the loaded machine.

Output (``validate(...)``, ``--json``, ``benchmarks/results/validate.json``); fields are stable::

    {"machine": {"cpu_model", "flags", "logical_cpus", "torch", "numpy", "platform", ...},
     "date": "YYYY-MM-DD HH:MM UTC", "command": the command line that produced it,
     "hw": {"torch": path, "aten": path, "numba": path},
     "calibrated_with_cases": bool,                                # presets measured in this session
     "stat": "min" | "median", "repeats": int,                     # what measured_s is, of how many
     "cases": [{"name", "kind": "gemm" | "decode", "executor", "precision", "m", "k", "n",
                "predicted_s", "measured_s", "ratio",              # ratio = predicted / measured
                "measured_median_s", "measured_max_s",             # the rounds' median and maximum
                # decodes only: "model", "frames", "beam", "lm_fusion", "ops"
               }, ...],                                            # m, k, n: None for decodes
     "summary": {"median_abs_err", "p90_abs_err", "n",             # over every case
                 "by_kind": {kind: {"median_abs_err", "p90_abs_err", "n", "worst"}},
                 "by_precision": {"<kind>.<executor>.<precision>": {...the same...}}},
     "summary_median": {...the same, of predicted_s / measured_median_s...}}

``abs_err`` of a case is ``|predicted / measured - 1|``; ``median_abs_err`` and ``p90_abs_err`` are
the median and the 90th percentile (numpy's linear interpolation) of it; ``worst`` names the case
with the largest error.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hwsim.calibrate import (DEFAULT_STAT, machine_info, preset_paths, reduce_samples, round_robin_samples,
                             sample_loop)
from hwsim.provenance import utc_stamp

log = logging.getLogger(__name__)

#: Weight shapes (k, n) of the RNN-T presets, and where they come from.
K_N = {
    "swb300 encoder layer >= 1 input (2 x 640 -> 4 x 640)": (1280, 2560),
    "swb300 encoder recurrent (640 -> 4 x 640)": (640, 2560),
    "swb300 prediction recurrent (768 -> 4 x 768)": (768, 3072),
    "swb300 external LM recurrent (1024 -> 4 x 1024)": (1024, 4096),
    "swb300 joint output (256 -> 46 labels)": (256, 46),
    "small encoder layer >= 1 input (2 x 256 -> 4 x 256)": (512, 1024),
    "small external LM recurrent (512 -> 4 x 512)": (512, 2048),
}
GEMM_M = (1, 8, 250)
BEAM_M = (4, 16)        # extra rows for the shapes the search runs per hypothesis batch
BEAM_SHAPES = ((768, 3072), (1024, 4096), (512, 2048))
PRECISIONS = {"aten": ("fp32", "bf16", "int8"), "numba": ("int8", "int4")}
GEMM_USES = 4

#: (model, input frames, beam, lm_fusion) of the decode cases.
DECODE_CASES = (("tiny", 400, 1, "none"), ("tiny", 400, 8, "dr"), ("small", 300, 1, "none"),
                ("small", 300, 8, "dr"))
DECODE_SEED = 1


@dataclass
class Case:
    """One validation case (see the module docstring for the fields)."""

    name: str
    kind: str
    executor: str
    precision: str
    m: int | None
    k: int | None
    n: int | None
    predicted_s: float = math.nan
    measured_s: float = math.nan
    ratio: float = math.nan
    measured_median_s: float = math.nan
    measured_max_s: float = math.nan
    model: str | None = None
    frames: int | None = None
    beam: int | None = None
    lm_fusion: str | None = None
    ops: int | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.kind == "gemm":
            for key in ("model", "frames", "beam", "lm_fusion", "ops"):
                d.pop(key)
        return d


def gemm_cases() -> list[Case]:
    """Every GEMM case: ``K_N`` x ``GEMM_M`` (plus ``BEAM_M`` for ``BEAM_SHAPES``) x executor
    precisions."""
    cases = []
    for exe, precs in PRECISIONS.items():
        for p in precs:
            for (k, n) in K_N.values():
                ms = GEMM_M + (BEAM_M if (k, n) in BEAM_SHAPES else ())
                for m in sorted(ms):
                    cases.append(Case(f"{exe} {p} {m}x{k}x{n}", "gemm", exe, p, m, k, n))
    return cases


def error_stats(cases: list[Case] | list[dict], measured: str = "measured_s") -> dict:
    """``median_abs_err``, ``p90_abs_err``, ``n`` and the ``worst`` case of |predicted/measured - 1|
    (``measured``: the field of the measured time)."""
    rows = [c if isinstance(c, dict) else c.to_dict() for c in cases]
    if not rows:
        return {"median_abs_err": None, "p90_abs_err": None, "n": 0, "worst": None}
    err = np.abs(np.array([r["predicted_s"] / r[measured] for r in rows]) - 1.0)
    worst = rows[int(np.argmax(err))]
    return {"median_abs_err": float(np.median(err)), "p90_abs_err": float(np.percentile(err, 90)),
            "n": len(rows), "worst": worst["name"]}


def summarize(cases: list[Case], measured: str = "measured_s") -> dict:
    """The ``summary`` object: overall, by kind, by (kind, executor, precision)."""
    by_kind: dict[str, list[Case]] = {}
    by_prec: dict[str, list[Case]] = {}
    for c in cases:
        by_kind.setdefault(c.kind, []).append(c)
        by_prec.setdefault(f"{c.kind}.{c.executor}.{c.precision}", []).append(c)
    out = {k: v for k, v in error_stats(cases, measured).items() if k != "worst"}
    out["by_kind"] = {k: error_stats(v, measured) for k, v in by_kind.items()}
    out["by_precision"] = {k: error_stats(v, measured) for k, v in sorted(by_prec.items())}
    return out


# ------------------------------------------------------------------------------------------------
# Predictions


def uniform_policy(precision: str):
    """A policy with every tensor role at ``precision`` (integer roles: symmetric max quantizer)."""
    from models.quant.policy import ROLES, PrecisionPolicy, QuantSpec

    is_int = precision.startswith("int")
    spec = QuantSpec(precision=precision, quantizer="max" if is_int else "none",
                     granularity="channel" if is_int else "tensor")
    return PrecisionPolicy(name=f"all-{precision}", roles={r: spec for r in ROLES})


def gemm_graph(m: int, k: int, n: int, uses: int = GEMM_USES):
    """``uses`` independent GEMMs ``(m x k) @ (k x n)`` reading one weight ``w`` (FP32 bytes, as a
    traced graph has them; the simulator re-prices them at the policy's widths)."""
    from workloads.graph import Op, OpGraph

    op = Op(op="mm", kind="gemm", phase="search", step=0, module="", in_shapes=((m, k), (k, n)),
            out_shapes=((m, n),), in_dtypes=("float32", "float32"), out_dtypes=("float32",),
            macs=m * k * n, flops=2 * m * k * n, bytes_read=4 * (m * k + k * n), bytes_written=4 * m * n,
            weight="w", weight_bytes=4 * k * n, m=m, k=k, n=n, elems=m * n)
    return OpGraph.from_records([op] * uses, [()] * uses, meta={"validate": f"{m}x{k}x{n}"})


def predict_gemm(hw, m: int, k: int, n: int, precision: str, uses: int = GEMM_USES) -> float:
    """Seconds of the last of ``uses`` uses of one GEMM, simulated (``hwsim.simulate``)."""
    from hwsim.simulate import simulate

    res = simulate(gemm_graph(m, k, n, uses), hw, uniform_policy(precision), audio_s=1.0)
    return float(res.ops["latency_s"].iloc[-1])


def decode_case(model: str, frames: int, beam: int, lm_fusion: str, seed: int = DECODE_SEED):
    """The decode that a decode case times, and the op graph traced from that same call.

    Returns:
        (run, graph, system, audio_s, result): ``run()`` performs the timed decode
        (``models.decode(system, features, beam=..., lm_fusion=...)``) and returns its
        ``DecodeResult``; ``graph`` is ``workloads.trace`` of the same system, features and
        search settings; ``result`` the traced decode's result (its hypotheses equal ``run()``'s).
    """
    import models
    import workloads

    system = models.build_system(model, seed=0)
    feats = models.random_features(system.config, frames, seed=seed)
    kw = {"beam": beam, "lm_fusion": lm_fusion}
    graph, result = workloads.trace(system, feats, **kw)
    return (lambda: models.decode(system, feats, **kw)), graph, system, \
        frames * system.config.features.frame_shift_s, result


# ------------------------------------------------------------------------------------------------
# The run


def resolve_presets(hw: str | Path) -> dict[str, Path]:
    """The executor presets of ``hw`` (``FILE.yaml``, ``FILE-aten.yaml``, ``FILE-numba.yaml``).

    A preset name (``host-cpu``) is looked up in ``hwsim/presets``.

    Raises:
        UserError: a sibling preset is missing (named, with the command that writes it).
    """
    from models.yamlio import UserError

    from hwsim.spec import preset_path

    base = preset_path(hw)
    paths = preset_paths(base)
    for exe, p in paths.items():
        if not p.is_file():
            raise UserError(f"--hw {hw}: the {exe} executor's preset {p} is missing; "
                            f"`hwsim calibrate --out {base}` writes all three")
    return paths


def validate(hw: str | Path, repeats: int = 5, min_sample_s: float = 0.02, gemms: bool = True,
             decodes: bool = True, command: str = "", timer=sample_loop,
             calibrate: bool = False, stat: str = DEFAULT_STAT) -> dict:
    """Run every case (about 2 minutes here) and return the result object (module docstring).

    ``calibrate``: measure the presets in the same session, ``hwsim.calibrate``'s benchmarks in
    one round-robin with the cases (none of the cases is a calibration benchmark), and write
    them to ``hw`` (a path: ``FILE.yaml`` and its siblings) before predicting. A shared machine
    whose speed drifts over minutes (the per-op time of a decode moved by up to 1.7x between
    a calibration and a validation run a minute apart, 2026-12-07) then drifts alike for both.
    """
    import numba
    import torch

    from hwsim.calibrate import Session, gemm_bench, write_presets
    from hwsim.simulate import simulate
    from hwsim.spec import load_spec

    torch.set_num_threads(1)
    numba.set_num_threads(1)
    session = Session(decode=decodes) if calibrate else None
    cases: list[Case] = []
    benches = {}
    traced = {}
    if gemms:
        for c in gemm_cases():
            benches[c.name] = gemm_bench(c.executor, c.precision, c.m, c.k, c.n)
            cases.append(c)
    if decodes:
        for model, frames, beam, fusion in DECODE_CASES:
            run, graph, system, audio_s, _ = decode_case(model, frames, beam, fusion)
            c = Case(f"torch decode {model} {frames} frames beam {beam} {fusion}", "decode", "torch", "fp32",
                     None, None, None, model=model, frames=frames, beam=beam, lm_fusion=fusion, ops=len(graph))
            traced[c.name] = (graph, system, audio_s)
            benches[c.name] = run
            cases.append(c)
    if session is not None:
        benches.update({f"calibrate:{k}": fn for k, fn in session.callables().items()})
    # Shuffled once (fixed seed) so that neighbours in the round differ in size and executor.
    order = list(benches)
    random.Random(0).shuffle(order)
    log.info("validate: %d cases x %d rounds", len(order), repeats)
    samples = round_robin_samples({name: benches[name] for name in order}, repeats, min_sample_s, timer)
    measured = reduce_samples(samples, stat)
    medians = reduce_samples(samples, "median")
    if session is not None:
        cal = session.finish({k.split(":", 1)[1]: v for k, v in measured.items() if k.startswith("calibrate:")},
                             repeats, stat)
        write_presets(cal, Path(hw))
    paths = resolve_presets(hw)
    specs = {exe: load_spec(p) for exe, p in paths.items()}
    for c in cases:
        if c.kind == "gemm":
            c.predicted_s = predict_gemm(specs[c.executor], c.m, c.k, c.n, c.precision)
        else:
            graph, system, audio_s = traced[c.name]
            c.predicted_s = simulate(graph, specs["torch"], "fp32", audio_s, config=system.config).latency_s
        c.measured_s = measured[c.name]
        c.measured_median_s = medians[c.name]
        c.measured_max_s = float(max(samples[c.name]))
        c.ratio = c.predicted_s / c.measured_s
    return {"machine": machine_info(),
            "date": utc_stamp(),
            "command": command, "hw": {exe: _shown(p) for exe, p in paths.items()},
            "calibrated_with_cases": bool(calibrate), "stat": stat, "repeats": repeats,
            "cases": [c.to_dict() for c in cases], "summary": summarize(cases),
            "summary_median": summarize(cases, "measured_median_s")}


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (stable across checkouts)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
