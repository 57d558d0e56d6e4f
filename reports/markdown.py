"""Markdown for the reports: small table formatter, assumption collection, the paper report text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

NOTES = Path(__file__).with_name("paper_notes.md")
#: Search statistics of real decodes by the trained ``small`` model (written by ``make accuracy``).
MEASURED_STATS = Path(__file__).with_name("accuracy") / "search_stats.json"


def md_table(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> str:
    """A GitHub Markdown table; ``formats`` maps column -> format spec (e.g. ``".3f"``). A ``|``
    in a header or cell is escaped (``\\|``): unescaped, it would split the cell, and a header
    with more cells than the delimiter row is no table at all."""
    formats = formats or {}
    cols = list(frame.columns)

    def esc(text) -> str:
        return re.sub(r"(?<!\\)\|", r"\\|", str(text))

    def cell(col, value):
        if col in formats and isinstance(value, (int, float)):
            return format(value, formats[col])
        return esc(value)

    lines = ["| " + " | ".join(map(esc, cols)) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(c, v) for c, v in zip(cols, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def collect_assumptions(paths: Iterable[Path]) -> list[tuple[str, str]]:
    """Every statement tagged ``[assumption`` in the given files, as (file name, text) pairs.

    YAML files: each tagged line, with the key in front of the comment so that the reader sees
    which number it labels. Python files: each tagged bullet (``- ...``, continuation lines
    joined) of the module docstring.
    """
    found = []
    for path in map(Path, paths):
        text = path.read_text()
        if path.suffix == ".py":
            import ast

            doc = ast.get_docstring(ast.parse(text)) or ""
            items = re.split(r"\n(?=- )", doc)
            found += [(path.name, re.sub(r"\s+", " ", i.lstrip("- ").strip()))
                      for i in items if "[assumption" in i and i.startswith("- ")]
            continue
        for line in text.splitlines():
            if "[assumption" in line and "[assumption] =" not in line:
                found.append((path.name, re.sub(r"\s+", " ", line.replace("#", " ", 1).strip())))
    return found


def search_stats_check(path: Path) -> list[str]:
    """Report lines comparing the parametric search model with the statistics of real decodes.

    ``workloads.stats.parametric_stats`` assumes a full beam after the first step and new
    prefixes (prediction-net and LM rows) at the share ``U / (T + U)`` of the hypotheses scored.
    The trained ``small`` model's ALSD decodes give both measured, per beam and fusion setting.
    """
    import json

    if not path.exists():
        return []
    rows = [r for r in json.loads(path.read_text())["rows"] if r["search"] == "alsd" and r["beam"] > 1]
    table = pd.DataFrame([{
        "test": r["test"], "fusion": r["lm_fusion"], "beam": r["beam"],
        "labels/s": r["labels_per_s"],
        "hyps per step / beam (model: 1)": r["hyps_per_step"] / r["beam"],
        "new prefixes / hyps scored": r["pred_evals_per_s"] / r["joint_evals_per_s"],
        "model: U/(T+U)": r["labels_per_s"] / r["search_steps_per_s"],
    } for r in rows])
    ratio = table["new prefixes / hyps scored"] / table["model: U/(T+U)"]
    full = table["hyps per step / beam (model: 1)"]
    # LM and prediction-net rows per step: modelled beam * U/(T+U); measured hyps * measured share.
    work = ratio * full
    if work.max() < 1:
        verdict = (f"the model over-counts LM and prediction-net rows per step (measured "
                   f"{_fmt_range(list(work), '.2f')} of the modelled count), so in this respect the paper-scale "
                   "graphs hold more search work than these decodes")
    elif work.min() > 1:
        verdict = (f"the model under-counts LM and prediction-net rows per step (measured "
                   f"{_fmt_range(list(work), '.2f')} of the modelled count), so in this respect the paper-scale "
                   "graphs hold less search work than these decodes")
    else:
        verdict = (f"measured LM and prediction-net rows per step are {_fmt_range(list(work), '.2f')} of the "
                   "modelled count, above it for some settings and below for others")
    import workloads.stats

    return [
        "### The parametric search model against real decodes", "",
        "Paper-scale graphs use modelled search statistics (`workloads/stats.py`). The trained `small` "
        f"model's decodes ({path.relative_to(path.parents[2])}, written by `make accuracy`) measure what "
        "the model assumes:", "",
        md_table(table, {"labels/s": ".1f", "hyps per step / beam (model: 1)": ".2f",
                         "new prefixes / hyps scored": ".3f", "model: U/(T+U)": ".3f"}), "",
        f"Measured new prefixes are {_fmt_range(list(ratio), '.2f')} of the modelled share, and the beam "
        f"is {_fmt_range(list(full), '.2f')} full on average: {verdict}. (These decodes emit "
        f"{_fmt_range(list(table['labels/s']), '.1f')} labels/s on a synthetic-speech corpus; the "
        f"paper-scale runs assume {workloads.stats.LABELS_PER_S:g} labels/s.)", "",
    ]


def _fmt_range(values: Sequence[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    return format(lo, fmt) if lo == hi else f"{format(lo, fmt)}-{format(hi, fmt)}"


def paper_report(data, figs: dict[str, Path], paper: dict[str, float], dse_section: str | None = None,
                 v1: dict | None = None) -> str:
    """The reference report's Markdown text (``data``: ``reports.paper.ReportData``; ``v1``: the
    historical figures of the previous execution model, ``reports.paper.V1``)."""
    from hwsim.spec import preset_path
    from models.config import PRESET_DIR
    from reports import paper_text as pt

    g, res = data.grid, data.results
    beam = max(g.beams)
    point = f"`{g.models[0]}`, beam {beam}, DR fusion, {g.audio_s:g} s of audio, on `{g.hw}`"
    out = [
        "# Reference report: RNN-T with density-ratio LM fusion, FP16 vs INT8 vs INT4",
        "",
        "Generated by `hwsim report` (`make report`); every number below is computed by this repository "
        "(simulated, or measured from its own decodes in the search-statistics check), except the "
        "column marked *paper* and the historical v1 column in (d).",
        "",
        f"- models: {', '.join(f'`{m}`' for m in g.models)} ({g.audio_s:g} s of audio, {g.method.upper()} "
        f"beam search, beams {', '.join(map(str, g.beams))}, fusion none / density ratio)",
        f"- accelerator: `{g.hw}` (`hwsim presets show {g.hw}`)",
        f"- precision policies: {', '.join(f'`{p}`' for p in g.precisions)} (`models/quant/policies/`)",
        "- graphs: the analytic builder with parametric search statistics (`workloads.paper_graph`)",
        f"- the *paper point*: {point} (the paper's operating point)",
        "",
        "## (a) Latency, RTF, speed-up and compression",
        "",
    ]
    for model in g.models:
        sel = res[res.model == model].sort_values(["lm_fusion", "beam", "precision"])
        table = pd.DataFrame({
            "fusion": sel.lm_fusion, "beam": sel.beam, "precision": sel.precision,
            "latency_ms": 1e3 * sel.latency_s, "RTF": sel.rtf,
            "speed-up vs FP16 (x)": sel.speedup_vs_fp16_x, "compression (x)": sel.compression_x,
            "GMACs": sel.macs / 1e9,
        })
        out += [f"### `{model}`", "", md_table(table, {"latency_ms": ".2f", "RTF": ".4f",
                "speed-up vs FP16 (x)": ".2f", "compression (x)": ".2f", "GMACs": ".2f"}), ""]
    fallbacks = sorted({f for f in res.precision_fallbacks if f not in ("{}", "")})
    if fallbacks:
        out += ["Precision fallbacks (a precision the accelerator lacks runs at the next wider one it has): "
                + "; ".join(f"`{f}`" for f in fallbacks), ""]
    ph = data.phases[(data.phases.beam == beam) & (data.phases.lm_fusion == "dr")]
    pivot = ph.pivot_table(index=["model", "precision"], columns="phase", values="latency_s", aggfunc="sum") * 1e3
    pivot = pivot.reset_index()
    out += [
        "## (b) Where the time goes",
        "",
        f"Per-phase latency in ms, beam {beam}, DR fusion (phases share the makespan; they sum to the latency):",
        "",
        md_table(pivot, {c: ".2f" for c in pivot.columns if c not in ("model", "precision")}),
        "",
        f"![phase breakdown]({figs['phase_breakdown'].name})",
        "",
    ]
    fp16, int4 = data.point.get("fp16"), data.point.get("int4")
    if fp16 is not None and int4 is not None:
        out += [f"### What is on chip at the paper point ({point})", ""] + pt.residency_lines(fp16, int4)
        out += ["### Energy per component at the paper point", ""] + pt.energy_lines(fp16, int4)
    out += [
        "## (c) RTF vs beam",
        "",
        f"![RTF vs beam]({figs['rtf_vs_beam'].name})",
        "",
        "## (d) The paper's figures and ours",
        "",
        "Paper: Fasoli et al., Interspeech 2022 (arXiv 2206.07882). The simulator is built from the model "
        "configuration, public RaPiD facts and labelled assumptions; nothing in it is fitted to the paper's "
        "results, and the paper does not publish its simulator's accelerator configuration, LM sizes or "
        "search statistics.",
        "",
    ]
    main = res[(res.model == g.models[0]) & (res.lm_fusion == "dr")]
    at = {p: main[(main.precision == p) & (main.beam == beam)] for p in ("fp16", "int4")}
    if fp16 is not None and int4 is not None and not at["int4"].empty and not at["fp16"].empty:
        i4, f16 = at["int4"].iloc[0], at["fp16"].iloc[0]
        here = {"model": g.models[0], "hw": g.hw, "beam": beam, "lm_fusion": "dr", "audio_s": g.audio_s,
                "method": g.method}
        # The historical figures belong to one point only; elsewhere they are not shown.
        v1_here = v1 if v1 and v1.get("point") == here else None
        out += pt.comparison_lines(fp16, int4, paper, v1_here, float(i4.compression_x), point)
        out += pt.time_lines(fp16, int4, data.hw, float(f16.weight_bytes), float(i4.weight_bytes))
        # 32-bit floats against 4-bit weights: the ideal ratio of the widths.
        out += pt.compression_lines(float(i4.compression_x), paper["compression_x"], 32 / 4)
    if data.memory_sweep is not None and data.hw is not None:
        out += ["### Speed-up and RTF against on-chip memory and DRAM bandwidth", ""]
        fig = figs.get("speedup_vs_memory")
        out += pt.memory_sweep_lines(data.memory_sweep, data.hw, point, fig.name if fig else None)
    if any(f"roofline_{p}" in figs for p in ("fp16", "int4")):
        out += ["### The paper point on the roofline", ""] + pt.roofline_lines(data.point, figs)
    if data.what_if is not None:
        out += ["### What-if variants of the accelerator", "",
                f"The paper point on variants of `{g.hw}` (`*_streamed_mb`: weight bytes streamed from DRAM at "
                "every use; `*_search_onchip_share`: share of the search weights kept on chip):", ""]
        out += pt.what_if_lines(data.what_if)
    if NOTES.exists():
        out += [NOTES.read_text().strip(), ""]
    out += search_stats_check(MEASURED_STATS)
    import workloads.stats

    files = [PRESET_DIR / f"{m}.yaml" for m in g.models] + [preset_path(g.hw), Path(workloads.stats.__file__)]
    out += ["## (e) Assumptions", "",
            "Every number not taken from a cited source is labelled `[assumption]` where it is defined; "
            "these are the ones this report depends on:", ""]
    out += [f"- `{name}`: {text}" for name, text in collect_assumptions(files)]
    out.append("")
    if dse_section:
        out += [dse_section, ""]
    return "\n".join(out)
