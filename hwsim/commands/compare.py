"""``hwsim compare RUN_A RUN_B [...]``: runs side by side, with ratios to the first.

Each RUN is a run folder written by ``hwsim simulate --out DIR``, or a design point of a sweep,
``SWEEP_DIR@KEY`` (KEY: the point's ``key`` or a prefix of it naming one point). Printed: the
summary (latency, RTF, energy, DRAM bytes, weight bytes, compression, MACs, ops), then per phase
(latency: share of the makespan; energy: dynamic) and per module (busy time: the sum of its ops'
latencies; energy: dynamic), largest differences from the first run first. Sweep points have no
per-module breakdown. What is compared: ``hwsim.compare``.
"""

from __future__ import annotations

import argparse
import json
import math
import string

from hwsim.commands._args import positive_int

_TITLES = {
    ("phase", "latency_s"): "per phase: latency_s (share of the makespan; the phases sum to latency_s)",
    ("phase", "energy_j"): "per phase: energy_j (dynamic; static energy is not split by phase)",
    ("module", "busy_s"): "per module: busy_s (sum of its ops' latencies; modules overlap in time)",
    ("module", "energy_j"): "per module: energy_j (dynamic)",
}


def register(subparsers) -> None:
    p = subparsers.add_parser("compare", help="compare simulation runs (or sweep points) side by side",
                              description=__doc__)
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="run folder of `hwsim simulate --out`, or SWEEP_DIR@KEY; the first is the reference")
    p.add_argument("--top", type=positive_int, default=None, metavar="N",
                   help="show the N phases / modules that differ most in each table (default all)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", metavar="FILE.csv",
                   help="also write the comparison as a CSV table (one row per item, metric and run)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hwsim.outputs import atomic_file, check_file
    from hwsim.compare import compare

    if args.out:
        check_file(args.out, suffix=".csv")
    result = compare(args.runs)
    if args.out:
        with atomic_file(args.out) as tmp:
            result.table.to_csv(tmp, index=False)
    if args.json:
        print(json.dumps(result.to_json()))
        return 0
    print_comparison(result, top=args.top)
    return 0


def _letter(i: int) -> str:
    letters = string.ascii_uppercase
    return letters[i] if i < len(letters) else f"R{i}"


def _fmt(value: float, metric: str) -> str:
    if not math.isfinite(value):
        return "-"
    if metric in ("macs", "ops") or metric.endswith("_bytes"):
        return f"{value:,.0f}"
    if metric == "compression_x":
        return f"{value:.3f}"
    return f"{value:.4g}"


def _ratio(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "-"


def print_comparison(result, top: int | None = None) -> None:
    """The text form: a legend of the runs, the summary, then one table per phase / module metric."""
    n = len(result.sources)
    names = [_letter(i) for i in range(n)]
    print(f"runs (ratios are to {names[0]}):")
    width = max(len(s.label) for s in result.sources)
    for name, s in zip(names, result.sources):
        ident = s.identity
        parts = [str(ident[k]) for k in ("model", "hw", "precision") if k in ident]
        parts += [f"{k} {ident[k]}" for k in ("beam", "lm_fusion") if k in ident]
        parts += [str(ident["method"])] if "method" in ident else []
        parts += [f"{ident['audio_s']:g} s audio"] if "audio_s" in ident else []
        parts += [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in ident.items() if k.startswith("hw.")]
        print(f"  {name}  {s.label:<{width}}  {', '.join(parts)}{' (sweep point)' if s.kind != 'run' else ''}")

    header = [x for i, name in enumerate(names) for x in ([name] if i == 0 else [name, f"{name}/{names[0]}"])]

    def emit(title: str, label: str, rows: list[tuple[str, list[str]]]) -> None:
        print()
        print(title)
        table = [(label, header)] + rows
        w0 = max(len(r[0]) for r in table)
        widths = [max(len(r[1][j]) for r in table) for j in range(len(header))]
        for item, cells in table:
            print("  " + item.ljust(w0) + "".join("  " + c.rjust(w) for c, w in zip(cells, widths)))

    def cells(row, metric: str) -> list[str]:
        out = []
        for i in range(n):
            out.append(_fmt(row[f"value_{i}"], metric))
            if i:
                out.append(_ratio(row[f"ratio_{i}"]))
        return out

    summary = result.table[result.table["section"] == "summary"]
    rows = []
    for metric in dict.fromkeys(summary["metric"]):
        row = result.block("summary", metric).iloc[0]
        rows.append((metric, cells(row, metric)))
    emit("summary", "metric", rows)
    for (section, metric), title in _TITLES.items():
        if not ((result.table["section"] == section) & (result.table["metric"] == metric)).any():
            continue
        block = result.block(section, metric)
        shown = block if top is None else block.iloc[:top]
        rows = [(item or "(search)", cells(row, metric)) for item, row in shown.iterrows()]
        more = f" (top {len(shown)} of {len(block)})" if len(shown) < len(block) else ""
        emit(title + more, section, rows)
    for note in result.notes:
        print()
        print(note)
