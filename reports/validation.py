"""The validation section of the reference report: what the simulator agrees with, and how well.

Three pieces, each computed from its data when the section is built:

- GEMM cycles against SCALE-Sim: ``hwsim.gemm.cost_gemm`` on the SCALE-Sim-compatible presets
  (``scalesim-os``, ``scalesim-ws``), the default hwsim cycle model on the same arrays, and
  SCALE-Sim 3.0's own count where it was measured (``SCALESIM_MEASURED``: two cases).
- The paper's figures and the inverse search over rapid4's assumption-labelled parameters
  (``reports.inverse``; results read from the last saved sweep).
- Predicted vs measured time on a real machine, read from ``benchmarks/results/validate.json``
  (written by ``hwsim validate``) when it exists.

Entry point: ``validation_section(out_dir) -> str`` (Markdown; figures and CSVs go to ``out_dir``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from reports import inverse

ROOT = Path(__file__).resolve().parents[1]
VALIDATE_JSON = ROOT / "benchmarks" / "results" / "validate.json"
VALIDATE_COMMAND = "hwsim validate --hw FILE.yaml --json"

SCALESIM_CSV = "validation_scalesim.csv"
INVERSE_PNG = "validation_inverse.png"
INVERSE_CSV = "validation_inverse.csv"
MEASURED_PNG = "validation_measured.png"
MEASURED_CSV = "validation_measured.csv"

#: SCALE-Sim 3.0's total compute cycles, measured with SCALE-Sim itself (32x32 array, default
#: config, no memory stalls), as given in issue 13 of this project's tracker. (dataflow, M, K, N).
SCALESIM_MEASURED: dict[tuple[str, int, int, int], int] = {
    ("os", 16, 1536, 4096): 204_543,
    ("ws", 1, 1280, 2560): 303_999,
}
#: RNN-T GEMM shapes of the swb300 preset (models/presets/swb300.yaml): M = one frame or
#: hypothesis, a beam of 16, 250 encoder frames; (K, N) with what they are.
RNNT_M = (1, 16, 250)
RNNT_KN: tuple[tuple[int, int, str], ...] = (
    (640, 2560, "encoder LSTM recurrent (640 -> 4 gates x 640)"),
    (1280, 2560, "encoder LSTM input, layers 2-6 (2 x 640 -> 4 x 640)"),
    (1024, 4096, "external LM LSTM (1024 -> 4 x 1024)"),
    (256, 46, "joint output (256 -> 46 labels)"),
)
PRESETS = {"os": "scalesim-os", "ws": "scalesim-ws"}
PRECISION = "int8"  # the SCALE-Sim presets' only precision (1-byte words)

#: Goals for host validation, from issue 13 section 2: GEMMs median |err| <= 15% and p90 <= 35%;
#: whole decodes within 25%.
GOALS = {"gemm": {"median": 0.15, "p90": 0.35}, "decode": {"max": 0.25}}


# ----------------------------------------------------------------------------------------------
# SCALE-Sim


def gemm_cases() -> list[dict]:
    """The GEMM cases of the SCALE-Sim table: the measured points, then RNN-T shapes, both dataflows."""
    shapes = {(k, n): what for k, n, what in RNNT_KN}
    cases = [{"dataflow": d, "m": m, "k": k, "n": n,
              "case": "measured with SCALE-Sim 3.0" + (f"; {shapes[k, n]}" if (k, n) in shapes else "")}
             for (d, m, k, n) in SCALESIM_MEASURED]
    seen = {(c["dataflow"], c["m"], c["k"], c["n"]) for c in cases}
    for d in PRESETS:
        for k, n, what in RNNT_KN:
            for m in RNNT_M:
                if (d, m, k, n) not in seen:
                    cases.append({"dataflow": d, "m": m, "k": k, "n": n, "case": what})
    return cases


def _cycles(hw, m: int, k: int, n: int) -> int:
    from hwsim.gemm import cost_gemm

    return int(round(float(np.asarray(cost_gemm(hw, m, k, n, PRECISION).cycles))))


def scalesim_table(cases: list[dict] | None = None) -> pd.DataFrame:
    """GEMM cycles: SCALE-Sim-compatible mode, default hwsim model, and SCALE-Sim where measured.

    Returns:
        One row per case: ``dataflow``, ``M``, ``K``, ``N``, ``case``,
        ``scalesim_measured_cycles`` (NaN where not measured), ``hwsim_scalesim_cycles``
        (``cycle_model: scalesim``), ``hwsim_default_cycles`` (the same preset with
        ``core.matrix.cycle_model: hwsim``), ``default_vs_scalesim_pct`` (default / compatible - 1,
        in %) and ``scalesim_match`` (compatible == measured; None where not measured).
    """
    from hwsim.spec import load_spec

    specs = {d: load_spec(p) for d, p in PRESETS.items()}
    default = {d: s.replace_path("core.matrix.cycle_model", "hwsim") for d, s in specs.items()}
    rows = []
    for c in cases or gemm_cases():
        d, m, k, n = c["dataflow"], c["m"], c["k"], c["n"]
        compat = _cycles(specs[d], m, k, n)
        dflt = _cycles(default[d], m, k, n)
        measured = SCALESIM_MEASURED.get((d, m, k, n))
        rows.append({
            "dataflow": d, "M": m, "K": k, "N": n, "case": c["case"],
            "scalesim_measured_cycles": float("nan") if measured is None else float(measured),
            "hwsim_scalesim_cycles": compat,
            "hwsim_default_cycles": dflt,
            "default_vs_scalesim_pct": 100.0 * (dflt / compat - 1.0),
            "scalesim_match": None if measured is None else compat == measured,
        })
    return pd.DataFrame(rows)


def scalesim_lines(table: pd.DataFrame) -> list[str]:
    """Markdown for the SCALE-Sim table, with sentences computed from it."""
    from reports.markdown import md_table

    shown = pd.DataFrame({
        "dataflow": table["dataflow"], "M": table["M"], "K": table["K"], "N": table["N"],
        "case": table["case"],
        "SCALE-Sim 3.0 measured (cycles)": [f"{int(v):,}" if np.isfinite(v) else "not measured"
                                            for v in table["scalesim_measured_cycles"]],
        "hwsim, SCALE-Sim mode (cycles)": [f"{v:,}" for v in table["hwsim_scalesim_cycles"]],
        "hwsim, default model (cycles)": [f"{v:,}" for v in table["hwsim_default_cycles"]],
        "default vs SCALE-Sim mode (%)": [f"{v:+.2f}" for v in table["default_vs_scalesim_pct"]],
    })
    measured = table[table["scalesim_measured_cycles"].notna()]
    match = int(measured["scalesim_match"].astype(bool).sum())
    dev = table["default_vs_scalesim_pct"]
    lines = [
        "### GEMM cycles against SCALE-Sim", "",
        f"One GEMM at {PRECISION.upper()} on one 32x32 array (`hwsim.gemm.cost_gemm`, the simulator's own "
        "GEMM model): on the SCALE-Sim-compatible presets `scalesim-os` / `scalesim-ws` "
        "(`core.matrix.cycle_model: scalesim`), and on the same presets with the default cycle model "
        "(`cycle_model: hwsim`). SCALE-Sim 3.0 itself was run on "
        f"{len(measured)} of the {len(table)} cases only; the other rows have no measured value.", "",
        md_table(shown), "",
        (f"SCALE-Sim mode equals SCALE-Sim's measured count in {match} of {len(measured)} measured cases"
         + ("." if match == len(measured) else
            "; it differs in " + ", ".join(
                f"{r.dataflow} ({r.M}, {r.K}, {r.N}): {r.hwsim_scalesim_cycles:,} vs {int(r.scalesim_measured_cycles):,}"
                for r in measured.itertuples(index=False) if not r.scalesim_match) + ".")),
        f"The default cycle model differs from SCALE-Sim mode by {dev.abs().min():.2f}% to "
        f"{dev.abs().max():.2f}% (median {dev.abs().median():.2f}%); it counts more cycles in "
        f"{int((dev > 0).sum())} cases, fewer in {int((dev < 0).sum())}, as many in {int((dev == 0).sum())}.", "",
    ]
    worst = table.loc[dev.abs().idxmax()]
    lines[-2] += (f" The largest gap is {worst['dataflow']} ({worst['M']}, {worst['K']}, {worst['N']}): "
                  f"{worst['hwsim_default_cycles']:,} vs {worst['hwsim_scalesim_cycles']:,} cycles.")
    return lines


# ----------------------------------------------------------------------------------------------
# Predicted vs measured (hwsim validate)


def load_validate(path: str | Path = VALIDATE_JSON) -> dict | None:
    """``benchmarks/results/validate.json`` as a dict, or None when it does not exist."""
    path = Path(path)
    if not path.exists():
        return None
    return json.loads(path.read_text())


def measured_table(data: dict) -> pd.DataFrame:
    """The cases of a ``validate.json`` as a table with ``abs_err`` = |predicted / measured - 1|."""
    df = pd.DataFrame(data.get("cases", []))
    for col in ("name", "kind", "precision", "predicted_s", "measured_s"):
        if col not in df.columns:
            raise ValueError(f"validate.json: cases lack the field {col!r}")
    df["ratio"] = df["predicted_s"] / df["measured_s"]
    df["abs_err"] = (df["ratio"] - 1.0).abs()
    return df


def error_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per kind, executor (when the cases name one) and precision, then per kind and overall:
    cases, median / p90 / max |err|, median predicted / measured."""
    by = ["kind", "executor", "precision"] if "executor" in df.columns else ["kind", "precision"]

    def summarize(g: pd.DataFrame, keys: dict) -> dict:
        return {**keys, "cases": len(g),
                "median |err| (%)": 100 * g["abs_err"].median(),
                "p90 |err| (%)": 100 * g["abs_err"].quantile(0.9),
                "max |err| (%)": 100 * g["abs_err"].max(),
                "median predicted/measured": g["ratio"].median()}

    rows = [summarize(g, dict(zip(by, keys))) for keys, g in df.fillna({c: "-" for c in by}).groupby(by, sort=True)]
    rows += [summarize(g, {"kind": k, **{c: "all" for c in by[1:]}}) for k, g in df.groupby("kind", sort=True)]
    rows.append(summarize(df, {c: "all" for c in by}))
    return pd.DataFrame(rows)


def machine_text(machine) -> str:
    """The ``machine`` field of validate.json (a name, or a mapping of CPU facts) as text."""
    if isinstance(machine, dict):
        parts = [str(machine.get("cpu_model") or machine.get("cpu") or "an unnamed CPU")]
        if machine.get("cpu_family") is not None:
            parts.append(f"family {machine['cpu_family']} model {machine.get('cpu_model_number')}")
        if machine.get("logical_cpus"):
            parts.append(f"{machine['logical_cpus']} logical CPUs")
        if machine.get("cpu_mhz"):
            parts.append(f"{float(machine['cpu_mhz']):.0f} MHz")
        if machine.get("flags"):
            parts.append(" ".join(map(str, machine["flags"])))
        if machine.get("torch"):
            parts.append(f"torch {machine['torch']}")
        return ", ".join(parts)
    return str(machine) if machine else "an unrecorded machine"


def measured_figure(df: pd.DataFrame, path: str | Path) -> Path:
    """Log-log predicted vs measured time, one marker and colour (``precision_colour``, as in every
    report figure) per precision, the y = x line."""
    from reports.figures import plt, precision_colour, precision_order, save_figure  # the Agg backend

    markers = ["o", "s", "^", "D", "v", "P", "X", "*"]
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for i, prec in enumerate(precision_order(df["precision"])):
        g = df[df["precision"].astype(str) == prec]
        colour = precision_colour(prec)
        for kind, fill in (("gemm", True), ("decode", False)):
            gk = g[g["kind"] == kind]
            if len(gk):
                ax.scatter(gk["measured_s"], gk["predicted_s"], marker=markers[i % len(markers)], s=28,
                           facecolors=colour if fill else "none", edgecolors=colour,
                           label=f"{prec} {kind} ({len(gk)})")
    lo = float(min(df["measured_s"].min(), df["predicted_s"].min())) / 1.5
    hi = float(max(df["measured_s"].max(), df["predicted_s"].max())) * 1.5
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8, label="predicted = measured")
    ax.plot([lo, hi], [lo * 1.25, hi * 1.25], "k:", lw=0.6, label="±25%")
    ax.plot([lo, hi], [lo * 0.75, hi * 0.75], "k:", lw=0.6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured (s)")
    ax.set_ylabel("predicted (s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def _goal_sentence(df: pd.DataFrame) -> str:
    parts = []
    g = df[df["kind"] == "gemm"]
    if len(g):
        med, p90 = g["abs_err"].median(), g["abs_err"].quantile(0.9)
        ok = med <= GOALS["gemm"]["median"] and p90 <= GOALS["gemm"]["p90"]
        parts.append(f"GEMMs: median {100 * med:.1f}% and p90 {100 * p90:.1f}% "
                     f"({'meets' if ok else 'misses'} the goal of <= {100 * GOALS['gemm']['median']:.0f}% "
                     f"and <= {100 * GOALS['gemm']['p90']:.0f}%)")
    d = df[df["kind"] == "decode"]
    if len(d):
        worst = d["abs_err"].max()
        within = int((d["abs_err"] <= GOALS["decode"]["max"]).sum())
        parts.append(f"whole decodes: {within} of {len(d)} within {100 * GOALS['decode']['max']:.0f}% "
                     f"(worst {100 * worst:.1f}%)")
    return ("; ".join(parts) + ".") if parts else ""


def measured_lines(data: dict | None, out_dir: Path, source: str) -> list[str]:
    """Markdown for predicted vs measured: figure, error table, sentences from the data."""
    from reports.markdown import md_table

    lines = ["### Predicted vs measured on a real machine", ""]
    if data is None:
        return lines + [f"No measurements: `{source}` does not exist. `{VALIDATE_COMMAND}` measures "
                        "GEMMs and whole decodes on this machine and writes it.", ""]
    df = measured_table(data)
    if df.empty:
        return lines + [f"`{source}` holds no cases.", ""]
    df.to_csv(out_dir / MEASURED_CSV, index=False)
    measured_figure(df, out_dir / MEASURED_PNG)
    kinds = ", ".join(f"{int((df['kind'] == k).sum())} {k}" for k in sorted(df["kind"].unique()))
    hw = data.get("hw")
    presets = (" Predicted with " + ", ".join(f"`{_rel(Path(v))}` ({k})" for k, v in hw.items()) + "."
               if isinstance(hw, dict) and hw else "")
    lines += [f"Measured on {data.get('date', 'an unrecorded date')} on {machine_text(data.get('machine'))} "
              f"by `{data.get('command', VALIDATE_COMMAND)}` ({source}): {len(df)} cases ({kinds}), "
              f"error = |predicted / measured - 1|.{presets}", "",
              f"![Predicted vs measured]({MEASURED_PNG})", "",
              md_table(error_table(df), {"median |err| (%)": ".1f", "p90 |err| (%)": ".1f",
                                         "max |err| (%)": ".1f", "median predicted/measured": ".3f"}), ""]
    goal = _goal_sentence(df)
    if goal:
        lines += [goal]
    stat = data.get("stat")
    if stat and "measured_median_s" in df.columns and df["measured_median_s"].notna().all():
        med_df = df.assign(abs_err=(df["predicted_s"] / df["measured_median_s"] - 1.0).abs())
        what = ("the minimum of the round-robin samples: what other users of the machine add to a sample "
                "(their traffic in the shared L3 and to DRAM) only ever adds time" if stat == "min"
                else "the median of the round-robin samples")
        lines += ["", f"Measured time per case = {what} ({data.get('repeats', '?')} rounds). Against the rounds' "
                  f"medians instead: {_goal_sentence(med_df)}"]
    summary = data.get("summary") or {}
    med, p90 = df["abs_err"].median(), df["abs_err"].quantile(0.9)
    if summary and not (np.isclose(summary.get("median_abs_err", med), med, rtol=1e-6)
                        and np.isclose(summary.get("p90_abs_err", p90), p90, rtol=1e-6)):
        lines += [f"The file's own summary (median {100 * summary.get('median_abs_err', float('nan')):.1f}%, "
                  f"p90 {100 * summary.get('p90_abs_err', float('nan')):.1f}%) differs from the one computed "
                  f"here from its cases (median {100 * med:.1f}%, p90 {100 * p90:.1f}%)."]
    worst = df.loc[df["abs_err"].idxmax()]
    lines += [f"The largest error is {worst['name']} ({worst['kind']}, {worst['precision']}): predicted "
              f"{worst['predicted_s']:.3g} s vs measured {worst['measured_s']:.3g} s.", ""]
    return lines


# ----------------------------------------------------------------------------------------------
# Inverse search


def inverse_section_lines(folder: str | Path, out_dir: Path, tol: inverse.Tolerance | None = None) -> list[str]:
    """Markdown for the inverse search from its last saved results in ``folder``."""
    folder = Path(folder)
    label = _rel(folder)
    lines = ["### What the paper's simulator would have had to assume", ""]
    tol = tol or inverse.paper_tolerance()
    lines += [f"The paper reports a {tol.speedup_x:g}x FP16 -> INT4 speed-up and an INT4 RTF of {tol.rtf:g} "
              "from a hardware simulator whose parameters it does not publish. Which values of rapid4's "
              "assumption-labelled parameters (`hwsim/presets/rapid4.yaml`, `[assumption]`) make this "
              "model give both? This is a statement about the paper's unpublished assumptions; no preset "
              "is changed by it.", ""]
    from hwsim.dse.store import part_paths

    if not folder.is_dir() or not part_paths(folder):
        return lines + [f"No inverse-search results in `{label}`: `python -m reports.inverse --out {label}` "
                        f"runs the sweep (`{_rel(inverse.SWEEP)}`).", ""]
    result = inverse.analyse(folder, tol)
    if result.n_configs == 0:
        return lines + [f"The results in `{label}` hold no configuration finished at both FP16 and INT4.", ""]
    inverse.inverse_figure(result, out_dir / INVERSE_PNG)
    result.paired.to_csv(out_dir / INVERSE_CSV, index=False)
    return lines + inverse.inverse_lines(result, INVERSE_PNG, label)


def _rel(path: Path) -> str:
    path = Path(path)
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def validation_section(out_dir: str | Path, inverse_dir: str | Path = inverse.DEFAULT_DIR,
                       validate_json: str | Path = VALIDATE_JSON) -> str:
    """The report's validation section as Markdown; writes its figures and CSVs into ``out_dir``.

    Args:
        out_dir: the report folder (figures are linked by file name).
        inverse_dir: the inverse-search sweep's results (``reports.inverse``).
        validate_json: ``hwsim validate``'s saved measurements.

    Returns:
        Markdown: the SCALE-Sim GEMM table, the inverse search (ranges, count, figure), and predicted
        vs measured time (figure and error table) or a sentence saying how to produce it.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = scalesim_table()
    table.to_csv(out / SCALESIM_CSV, index=False)
    lines = ["## Validation", ""]
    lines += scalesim_lines(table)
    lines += inverse_section_lines(inverse_dir, out)
    lines += measured_lines(load_validate(validate_json), out, _rel(Path(validate_json)))
    return "\n".join(lines)
