"""Per-role ablation report: which tailored quantizer buys accuracy, and what it costs.

Reads ``DATA/eval/ablation.json`` (``python -m models.train.pipeline ablate``: INT4 PTQ with one
tensor role at a time back to the naive quantizer, ``models.quant.ablation.ABLATIONS``, and every
checkpoint, decoded on the dev sets) and simulates each system's precision policy on ``rapid4``
(the trained ``small`` model, the ablation's beam, without and with DR fusion, 10 s of audio:
latency, RTF, compression). Writes into ``reports/accuracy/``:

- ``ablation.json``: the rows (WER, CER, words, per-utterance word errors) and the simulated costs;
- ``ablation.md``: the ablation table (relative WER change against INT4 PTQ with paired bootstrap
  intervals), the accuracy/cost table of every system, and QAT's training time against the FP32
  training's (``checkpoints/MANIFEST.json``);
- ``wer_vs_rtf.png`` / ``wer_vs_compression.png``: dev WER against simulated RTF and compression,
  without and with DR fusion.

Usage: ``python -m reports.ablation [--data DIR] [--out DIR] [--hw PRESET]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from reports.accuracy import _table  # noqa: E402  (the accuracy report's Markdown table)

log = logging.getLogger("reports.ablation")

#: The simulated setting of every system's cost (the model is the pipeline's preset).
SIM_AUDIO_S = 10.0
SIM_HW = "rapid4"
#: The reference system of the relative changes.
BASE_SYSTEM = "int4-ptq"


def _policy(name: str):
    from models.quant.ablation import ABLATIONS, BASE_POLICY, ablation_policy
    from models.quant.policy import load_policy

    for a in ABLATIONS:
        if name == f"{BASE_POLICY}-{a.name}":
            return ablation_policy(a.name)
    return load_policy(name)


def simulated_costs(policies: list[str], model: str, beam: int, hw: str = SIM_HW) -> dict[str, dict[str, dict]]:
    """``{policy: {lm_fusion: {"latency_s", "rtf", "compression_x"}}}``: ``hwsim.simulate`` of the
    ``model``'s parametric graph (``workloads.paper_graph``, ALSD at ``beam``) on ``hw``."""
    import hwsim
    import workloads
    from models.config import load_config

    config = load_config(model)
    spec = hwsim.load_spec(hw)
    out: dict[str, dict[str, dict]] = {}
    for fusion in ("none", "dr"):
        graph = workloads.paper_graph(config, SIM_AUDIO_S, beam, fusion, "alsd")
        for name in policies:
            s = hwsim.simulate(graph, spec, _policy(name), SIM_AUDIO_S, config=config).summary
            out.setdefault(name, {})[fusion] = {"latency_s": s["latency_s"], "rtf": s["rtf"],
                                                "compression_x": s["compression_x"],
                                                "fallbacks": sorted((s.get("precision_fallbacks") or {}).keys())}
    return out


def fallback_text(costs: dict) -> str:
    """Which policies the simulator ran at another precision, by ``hwsim simulate``'s fallbacks."""
    parts = [f"`{p}`: {', '.join(c['dr']['fallbacks'])}" for p, c in sorted(costs.items()) if c["dr"].get("fallbacks")]
    return "; ".join(parts) if parts else "none did"


def _rows(ev: dict, system: str, lm: str) -> list[dict]:
    return [r for r in ev["rows"] if r["system"] == system and r["lm_fusion"] == lm]


def pooled(ev: dict, system: str, lm: str) -> dict | None:
    """WER over both dev sets together (word errors / words) and the per-utterance lists."""
    from models.train.evaluate import pooled_wer

    rows = _rows(ev, system, lm)
    if not rows:
        return None
    return {**pooled_wer(rows), "by_dev": {r["dev"]: r["wer"] for r in rows}}


def relative_change(ev: dict, system: str, lm: str, base: str = BASE_SYSTEM) -> tuple[float, float, float] | None:
    """Relative WER change of ``system`` over ``base`` on both dev sets, with a paired bootstrap
    95% interval over utterances (``models.train.evaluate.paired_bootstrap_rel``)."""
    from models.train.evaluate import paired_bootstrap_rel

    a, b = pooled(ev, base, lm), pooled(ev, system, lm)
    if a is None or b is None or sum(a["utt_word_errors"]) == 0:
        return None
    return paired_bootstrap_rel(a["utt_word_errors"], b["utt_word_errors"], a["utt_words"])


def _fmt_rel(rel) -> str:
    return "-" if rel is None else f"{rel[0]:+.1f}% [{rel[1]:+.1f} .. {rel[2]:+.1f}]"


def systems_of(ev: dict) -> list[str]:
    seen: list[str] = []
    for r in ev["rows"]:
        if r["system"] not in seen:
            seen.append(r["system"])
    return seen


def policy_of(ev: dict, system: str) -> str:
    return next(r["policy"] for r in ev["rows"] if r["system"] == system)


def label(system: str) -> str:
    return system.split(":", 1)[1] if system.startswith("ablation:") else system


def figure(ev: dict, costs: dict, metric: str, path: Path, hw: str = SIM_HW) -> Path:
    """Pooled dev WER against the simulated ``metric`` (rtf or compression_x), one panel per fusion;
    one marker per system (squares: the checkpoints, circles: the ablation variants), one legend."""
    systems = systems_of(ev)
    colors = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, lm in zip(axes, ("none", "dr")):
        for i, system in enumerate(systems):
            p = pooled(ev, system, lm)
            if p is None:
                continue
            x = costs[policy_of(ev, system)][lm][metric]
            ax.scatter([x], [p["wer"]], marker="o" if system.startswith("ablation:") else "s", s=40,
                       color=colors(i % 10), label=label(system), alpha=0.85)
        ax.set_xscale("log")
        ax.set_xlabel({"rtf": f"simulated RTF ({hw}, {ev['preset']}, {SIM_AUDIO_S:.0f} s)",
                       "compression_x": "compression vs FP32 (x)"}[metric])
        ax.set_title(f"{'no LM' if lm == 'none' else 'DR fusion'}, ALSD beam {ev['beam']}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("WER % (" + ", ".join(f"{k} {v}" for k, v in ev["utterances"].items()) + " utterances)")
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def qat_cost_lines(manifest: dict) -> list[str]:
    """QAT's training time against the FP32 training's, from the checkpoint manifest."""
    ck = manifest.get("checkpoints", {})
    fp32, qat = ck.get("fp32", {}), ck.get("int4-qat", {})
    rnnt, lms = fp32.get("rnnt"), qat.get("lms")
    if not (rnnt and rnnt.get("train_wall_s") and qat.get("train_wall_s") and qat.get("steps")):
        return []
    q_s, q_n, f_s, f_n = qat["train_wall_s"], qat["steps"], rnnt["train_wall_s"], rnnt["steps"]
    lines = [f"- RNN-T QAT (the LMs' QAT weights loaded, RNN-T loss): {q_n} steps in {q_s / 60:.1f} min = "
             f"{100 * q_s / f_s:.1f}% of the FP32 RNN-T training ({f_n} steps, {f_s / 60:.0f} min)."]
    lm_fp32 = [fp32.get(k) for k in ("lm_ext", "lm_src") if fp32.get(k)]
    lf_s = sum(x.get("train_wall_s") or 0.0 for x in lm_fp32)
    lf_n = sum(x.get("steps") or 0 for x in lm_fp32)
    if lms and lf_s > 0:
        lines.append(f"- Both LMs' QAT: {lms['steps']} steps in {lms['train_wall_s'] / 60:.1f} min = "
                     f"{100 * lms['train_wall_s'] / lf_s:.0f}% of their FP32 training ({lf_n} steps, {lf_s / 60:.0f} "
                     "min); both ran beside the RNN-T training on the same two cores, so their times are "
                     "shared-core times.")
    return lines


def build(data: str | Path = "data", out: str | Path = "reports/accuracy", hw: str = SIM_HW,
          checkpoints: str | Path = "checkpoints") -> Path:
    data, out = Path(data), Path(out)
    manifest_path = Path(checkpoints) / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    ev = json.loads((data / "eval" / "ablation.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    systems = systems_of(ev)
    policies = sorted({policy_of(ev, s) for s in systems})
    costs = simulated_costs(policies, ev["preset"], ev["beam"], hw)
    (out / "ablation.json").write_text(json.dumps({**ev, "simulated": {"hw": hw, "model": ev["preset"],
                                                                       "audio_s": SIM_AUDIO_S, "costs": costs}},
                                                  indent=1) + "\n")
    figure(ev, costs, "rtf", out / "wer_vs_rtf.png", hw)
    figure(ev, costs, "compression_x", out / "wer_vs_compression.png", hw)
    changes = {f"ablation:{a['name']}": a["change"] for a in ev["ablations"]}
    n = ", ".join(f"{v} of the {k} dev set" for k, v in ev["utterances"].items())
    beam = ev["beam"]
    md = ["# Per-role ablation of INT4 PTQ, and accuracy against simulated cost", "",
          "Generated by `python -m reports.ablation` from `python -m models.train.pipeline ablate` "
          f"(`models.quant.ablation`). Dev sets only (the first utterances: {n}), ALSD beam {beam}, DR weights as tuned on the Bible dev book ({ev['fusion']}). Each variant is "
          f"the `{ev['base_policy']}` policy calibrated by PTQ with one tensor role back to the naive choice "
          "(min-max per tensor, asymmetric); relative changes are against INT4 PTQ on both dev sets pooled, "
          "with a paired bootstrap 95% interval over utterances. Costs: `hwsim simulate` of each policy on "
          f"`{hw}` (`{ev['preset']}`, {SIM_AUDIO_S:.0f} s of audio, the same search).", "",
          "## One role at a time", ""]
    trows = []
    for system in [BASE_SYSTEM] + [s for s in systems if s.startswith("ablation:")]:
        if system not in systems:
            continue
        pol = policy_of(ev, system)
        cells = [label(system), changes.get(system, "the tailored `int4` policy")]
        for lm in ("none", "dr"):
            p = pooled(ev, system, lm)
            cells += [f"{p['by_dev'].get('fortunes', float('nan')):.2f} / {p['by_dev'].get('bible', float('nan')):.2f}",
                      _fmt_rel(relative_change(ev, system, lm)) if system != BASE_SYSTEM else "-"]
        c = costs[pol]["dr"]
        cells += [f"{c['rtf']:.3g}", f"{c['compression_x']:.2f}"]
        trows.append(cells)
    md += [_table(["system", "change from int4", "WER % fortunes / bible dev, no LM", "rel. change, no LM",
                   "WER % fortunes / bible dev, DR", "rel. change, DR", f"simulated RTF, DR ({hw})",
                   "compression x"], trows), ""]
    md += ["## Every system: accuracy and cost", ""]
    arows = []
    for system in systems:
        pol = policy_of(ev, system)
        row = [label(system), f"`{pol}`"]
        for lm in ("none", "dr"):
            p = pooled(ev, system, lm)
            c = costs[pol][lm]
            row += [f"{p['wer']:.2f}", f"{c['latency_s'] * 1e3:.3g}", f"{c['rtf']:.3g}"]
        row.append(f"{costs[pol]['dr']['compression_x']:.2f}")
        arows.append(row)
    md += [_table(["system", "policy", "WER % no LM", "latency ms no LM", "RTF no LM", "WER % DR", "latency ms DR",
                   "RTF DR", "compression x"], arows), "",
           "![WER vs simulated RTF](wer_vs_rtf.png)", "", "![WER vs compression](wer_vs_compression.png)", ""]
    md += ["Notes: WER pooled over both dev sets (word errors / words). `int4-qat` and `int4-ptq` share the "
           "`int4` policy, hence the same cost. Where a policy asks for a precision that a unit of "
           f"`{hw}` lacks, the simulator runs it at the next one that unit has (" + fallback_text(costs) + ").", ""]
    cost = qat_cost_lines(manifest)
    if cost:
        md += [f"## What QAT costs (`{manifest_path}`: `train_wall_s`)", "", *cost, ""]
    (out / "ablation.md").write_text("\n".join(md) + "\n")
    log.info("ablation report written to %s", out / "ablation.md")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reports.ablation", description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data")
    ap.add_argument("--out", default="reports/accuracy")
    ap.add_argument("--hw", default=SIM_HW)
    ap.add_argument("--checkpoints", default="checkpoints")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    build(args.data, args.out, args.hw, args.checkpoints)
    return 0


if __name__ == "__main__":
    sys.exit(main())
