"""Accuracy report: WER/CER of the trained ``small`` system per precision, search and LM fusion.

Reads what the pipeline (``python -m models.train.pipeline``) left behind: ``DATA/eval/results.json``
(evaluation rows and the tuned fusion weights), ``DATA/runs/*.state.pt`` (learning curves) and
``checkpoints/MANIFEST.json`` (how each checkpoint was made), and writes ``reports/accuracy/``:

- ``results.json``: one row per evaluation (precision, test, search, beam, lm_fusion, wer, cer, ...);
- ``README.md``: tables and the checks the reference claims call for;
- ``wer_vs_beam.png``: WER against beam per precision, with and without DR fusion;
- ``learning_curves.png``: training and dev losses;
- ``search_stats.json``: search work per second of audio of the FP32 model at beams 1-16.

Usage: ``python -m reports.accuracy [--data DIR] [--checkpoints DIR] [--out DIR]``.
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

log = logging.getLogger("reports.accuracy")

PRECISIONS = ("fp32", "int4-naive-ptq", "int4-ptq", "int4-qat")
ROW_KEYS = ("precision", "test", "search", "beam", "lm_fusion", "wer", "cer", "utterances", "words")


def _find(rows: list[dict], **kv) -> dict | None:
    for r in rows:
        if all(r.get(k) == v for k, v in kv.items()):
            return r
    return None


def _wer(rows, precision, test, search, beam, lm):
    r = _find(rows, precision=precision, test=test, search=search, beam=beam, lm_fusion=lm)
    return None if r is None else r["wer"]


def _fmt(x, spec=".2f") -> str:
    return "-" if x is None else format(x, spec)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def wer_table(rows: list[dict], test: str) -> str:
    beams = sorted({r["beam"] for r in rows if r["search"] == "alsd"})
    cols = [("greedy", 1)] + [("alsd", b) for b in beams]
    header = ["precision", "LM fusion"] + [f"{'greedy' if s == 'greedy' else f'ALSD {b}'} WER / CER %"
                                          for s, b in cols]
    body = []
    for p in PRECISIONS:
        for lm in ("none", "dr"):
            cells = []
            for s, b in cols:
                r = _find(rows, precision=p, test=test, search=s, beam=b, lm_fusion=lm)
                cells.append("-" if r is None else f"{r['wer']:.2f} / {r['cer']:.2f}")
            if any(c != "-" for c in cells):
                body.append([p, lm, *cells])
    return _table(header, body)


def voices_table(rows: list[dict], beam: int) -> str:
    """WER / CER on utterances by training voices vs voices held out of training."""
    body = []
    for p in PRECISIONS:
        for test in ("fortunes", "bible"):
            for search, b in (("greedy", 1), ("alsd", beam)):
                r = _find(rows, precision=p, test=test, search=search, beam=b, lm_fusion="none")
                if r is None or "seen_voices" not in r:
                    continue
                sv, hv = r["seen_voices"], r["heldout_voices"]
                body.append([p, test, "greedy" if search == "greedy" else f"ALSD {b}",
                             f"{sv['wer']:.2f} / {sv['cer']:.2f} ({sv['utterances']})",
                             f"{hv['wer']:.2f} / {hv['cer']:.2f} ({hv['utterances']})"])
    return _table(["precision", "test", "search (no LM)", "training voices WER / CER % (utts)",
                   "held-out voices WER / CER % (utts)"], body)


def _rel_ci(base: dict, other: dict) -> tuple[float, float] | None:
    """95% paired-bootstrap interval of the relative WER change (None without per-utterance data)."""
    from models.train.evaluate import paired_bootstrap_rel

    if not base.get("utt_word_errors") or not other.get("utt_word_errors") or not base["wer"]:
        return None
    _, lo, hi = paired_bootstrap_rel(base["utt_word_errors"], other["utt_word_errors"], base["utt_words"])
    return round(lo, 2), round(hi, 2)


def groups_table(rows: list[dict], beam: int) -> str:
    """WER / CER per voice group (training voices and the three kinds of held-out voice)."""
    from models.data.voices import VOICE_GROUPS

    body = []
    for p in PRECISIONS:
        for test in ("fortunes", "bible"):
            r = _find(rows, precision=p, test=test, search="alsd", beam=beam, lm_fusion="none")
            if r is None or not r.get("voice_groups"):
                continue
            g = r["voice_groups"]
            body.append([p, test, *(f"{g[k]['wer']:.2f} / {g[k]['cer']:.2f} ({g[k]['utterances']})" if k in g
                                    else "-" for k in VOICE_GROUPS)])
    return _table(["precision", "test", *(f"{k} WER / CER % (utts)" for k in VOICE_GROUPS)], body)


def checks(rows: list[dict], beam: int) -> tuple[list[str], dict]:
    """The claims the report is asked to test, at ALSD ``beam``; (Markdown lines, numbers)."""
    out, nums = [], {}
    g = _find(rows, precision="fp32", test="fortunes", search="greedy", beam=1, lm_fusion="none")
    if g:
        nums["fp32_greedy_cer_fortunes"] = g["cer"]
        out.append(f"- FP32 greedy CER on the in-domain (fortunes) test: **{g['cer']:.2f}%** "
                   f"(WER {g['wer']:.2f}%); goal: well below 15%: **{'met' if g['cer'] < 15 else 'NOT met'}**.")
    f0, f1 = _wer(rows, "fp32", "bible", "alsd", beam, "none"), _wer(rows, "fp32", "bible", "alsd", beam, "dr")
    q0, q1 = _wer(rows, "int4-qat", "bible", "alsd", beam, "none"), _wer(rows, "int4-qat", "bible", "alsd", beam, "dr")
    if f0 is not None and f1 is not None:
        gain = f0 - f1
        nums["fp32_dr_gain_abs"] = gain
        out.append(f"- DR fusion on the Bible test (ALSD beam {beam}), FP32: {f0:.2f}% -> {f1:.2f}% WER "
                   f"(gain {gain:+.2f} absolute): **{'lowers WER' if gain > 0 else 'does NOT lower WER'}**.")
        if q0 is not None and q1 is not None:
            qgain = q0 - q1
            kept = 100 * qgain / gain if gain > 0 else float("nan")
            nums["int4_qat_dr_gain_abs"], nums["int4_qat_gain_kept_pct"] = qgain, kept
            out.append(f"- INT4 QAT: {q0:.2f}% -> {q1:.2f}% (gain {qgain:+.2f}), i.e. **{kept:.0f}%** of the FP32 "
                       f"gain kept; goal >= 80%: **{'met' if kept >= 80 else 'NOT met'}**.")
    for lm in ("none", "dr"):
        for test in ("fortunes", "bible"):
            base_row = _find(rows, precision="fp32", test=test, search="alsd", beam=beam, lm_fusion=lm)
            base = base_row["wer"] if base_row else None
            parts = []
            for p in ("int4-naive-ptq", "int4-ptq", "int4-qat"):
                r = _find(rows, precision=p, test=test, search="alsd", beam=beam, lm_fusion=lm)
                if base and r is not None:
                    rel = 100 * (r["wer"] - base) / base
                    nums[f"{p}_{test}_{lm}_rel_pct"] = rel
                    ci = _rel_ci(base_row, r)
                    if ci is not None:
                        nums[f"{p}_{test}_{lm}_rel_ci95"] = ci
                    parts.append(f"{p} {r['wer']:.2f}% ({rel:+.1f}% rel." +
                                 (f", 95% CI {ci[0]:+.1f} .. {ci[1]:+.1f}" if ci and p != "int4-naive-ptq" else "") + ")")
            if parts and base:
                out.append(f"- {test}, fusion {lm}, ALSD beam {beam}: FP32 {base:.2f}%; " + "; ".join(parts) + ".")
    qat_ok = [v for k, v in nums.items() if k.startswith("int4-qat_") and k.endswith("_rel_pct")]
    if qat_ok:
        worst = max(qat_ok)
        line = (f"- INT4 QAT within 5% relative of FP32 in every case above: "
                f"**{'met' if worst <= 5 else 'NOT met'}** (worst {worst:+.1f}% rel.)")
        cis = [v for k, v in nums.items() if k.startswith("int4-qat_") and k.endswith("_rel_ci95")]
        if cis:
            zero = sum(lo <= 0 <= hi for lo, hi in cis)
            line += (f"; the 95% interval of the difference contains 0 in {zero} of {len(cis)} cases and its "
                     f"upper end reaches {max(hi for _, hi in cis):+.1f}% rel. (paired bootstrap over utterances)")
        out.append(line + ".")
    order = [nums.get(f"{p}_bible_none_rel_pct") for p in ("int4-naive-ptq", "int4-ptq", "int4-qat")]
    if None not in order:
        ok = order[0] > order[1] > order[2]
        out.append(f"- Ordering naive PTQ > per-role PTQ > QAT (Bible, no fusion): **{'met' if ok else 'NOT met'}**.")
    return out, nums


def figure_wer_vs_beam(rows: list[dict], path: Path) -> None:
    tests = ("fortunes", "bible")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=False)
    colors = {"fp32": "k", "int4-naive-ptq": "tab:red", "int4-ptq": "tab:orange", "int4-qat": "tab:blue"}
    for ax, test in zip(axes, tests):
        for p in PRECISIONS:
            for lm, style in (("none", "-"), ("dr", "--")):
                pts = sorted((r["beam"], r["wer"]) for r in rows if r["precision"] == p and r["test"] == test
                             and r["search"] == "alsd" and r["lm_fusion"] == lm)
                if pts:
                    ax.plot([b for b, _ in pts], [w for _, w in pts], style, marker="o", color=colors[p],
                            label=f"{p}, {'DR fusion' if lm == 'dr' else 'no LM'}")
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 2, 4, 8, 16], ["1", "2", "4", "8", "16"])
        ax.set_xlabel("ALSD beam")
        ax.set_ylabel("WER %")
        ax.set_title(f"{test} test")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _curves(data: Path) -> dict:
    import torch

    out = {}
    for name in ("rnnt", "lm_src", "lm_ext"):
        p = data / "runs" / f"{name}.state.pt"
        if p.exists():
            st = torch.load(p, map_location="cpu", weights_only=False)
            out[name] = {"train": [(r[0], r[1], r[3]) for r in st["history"]],
                         "dev": [tuple(r) for r in st["dev_history"]], "steps": st["step"],
                         "elapsed_s": st["elapsed_s"], "stop_reason": st.get("stop_reason")}
    return out


def figure_curves(curves: dict, qat_history: list | None, path: Path, missing: str = "") -> None:
    """Training curves: FP32 RNN-T, the LMs, the RNN-T's QAT. ``missing``: what a panel without a
    training state says instead (the final losses the manifest recorded)."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, name in ((axes[0], "rnnt"), (axes[1], "lm_ext")):
        if name not in curves and missing:
            ax.text(0.5, 0.5, missing, ha="center", va="center", wrap=True, fontsize=8, transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
    if "rnnt" in curves:
        c = curves["rnnt"]
        ax = axes[0]
        tr = c["train"]
        k = 20
        smooth = [sum(r[1] for r in tr[max(0, i - k):i + 1]) / len(tr[max(0, i - k):i + 1]) for i in range(len(tr))]
        ax.plot([r[2] / 60 for r in tr], smooth, label="train (20-step mean)")
        ax.plot([r[2] / 60 for r in c["dev"]], [r[1] for r in c["dev"]], "o-", label="dev (fortunes)")
        ax.set_xlabel("wall time, min")
        ax.set_ylabel("RNN-T loss, nats / label")
        ax.set_title("FP32 RNN-T")
        ax.legend()
        ax.grid(alpha=0.3)
    ax = axes[1]
    for name in ("lm_src", "lm_ext"):
        if name in curves:
            c = curves[name]
            ax.plot([r[0] for r in c["dev"]], [r[1] for r in c["dev"]], "o-", label=f"{name} dev perplexity")
    ax.set_xlabel("step")
    ax.set_ylabel("perplexity per character")
    ax.set_title("character LMs")
    if any(name in curves for name in ("lm_src", "lm_ext")):
        ax.legend()
    ax.grid(alpha=0.3)
    ax = axes[2]
    if qat_history:
        ax.plot([r[0] for r in qat_history], [r[1] for r in qat_history])
        ax.set_xlabel("QAT step")
        ax.set_ylabel("RNN-T loss (training batches), nats / label")
        ax.set_title("INT4 QAT of the RNN-T")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def search_stats(rows: list[dict]) -> dict:
    n = max((r["utterances"] for r in rows), default=0)
    out = {"source": f"trained FP32 small model (checkpoints/small-fp32.pt), {n} test utterances "
                     "per test set, DR weights as tuned; rates per second of audio (10 ms feature frames)", "rows": []}
    for r in rows:
        if r["precision"] == "fp32" and r["search"] in ("alsd", "greedy"):
            st = r["search_stats"]
            out["rows"].append({"test": r["test"], "search": r["search"], "beam": r["beam"],
                                "lm_fusion": r["lm_fusion"], **{k: round(v, 4) if isinstance(v, float) else v
                                                                for k, v in st.items()}})
    return out


def reading_notes(rows: list[dict], fusion: dict, curves: dict, augmented: bool,
                  manifest_rnnt: dict | None = None) -> list[str]:
    """Caveats computed from the results: test size, grid edges, over-fitting."""
    out = []
    for test in ("fortunes", "bible"):
        r = _find(rows, precision="fp32", test=test, search="greedy", beam=1, lm_fusion="none")
        if r:
            out.append(f"- The {test} test has {r['utterances']} utterances ({r['words']} words): one WER point is "
                       f"{r['words'] / 100:.0f} word errors. Intervals below are paired bootstraps over utterances.")
    edges = [k for k in ("lambda_ext", "lambda_src", "length_reward")
             if fusion["best"][k] in (min(g[k] for g in fusion["grid"]), max(g[k] for g in fusion["grid"]))
             and len({g[k] for g in fusion["grid"]}) > 2]
    out.append("- The DR weights are tuned for the Bible; on the fortunes test the external LM is the wrong "
               "domain, so fusion is expected to hurt there.")
    if edges:
        out.append(f"- The tuned {' and '.join(edges)} {'lies' if len(edges) == 1 else 'lie'} on the edge of the grid: "
                   "a wider grid may give more fusion gain.")
    g = _find(rows, precision="fp32", test="fortunes", search="greedy", beam=1, lm_fusion="none")
    final = None
    if "rnnt" in curves and curves["rnnt"]["dev"]:
        tr = curves["rnnt"]["train"][-50:]
        final = (sum(r[1] for r in tr) / max(1, len(tr)), curves["rnnt"]["dev"][-1][1])
    elif manifest_rnnt and manifest_rnnt.get("final_dev") is not None:
        final = (manifest_rnnt["final_train_loss_nats"], manifest_rnnt["final_dev"])
    if final and g:
        out.append(f"- Generalization to new voices: final RNN-T training loss {final[0]:.2f} vs dev "
                   f"{final[1]:.2f} nats/label"
                   + (" (training loss on augmented batches, dev loss on clean ones)" if augmented else "")
                   + f"; greedy CER on the fortunes test {g['seen_voices']['cer']:.2f}% for "
                   f"training voices vs {g['heldout_voices']['cer']:.2f}% for held-out ones.")
    return out


def training_notes(manifest: dict) -> list[str]:
    """How the FP32 RNN-T was trained (from the checkpoint manifest)."""
    r = manifest["checkpoints"].get("fp32", {}).get("rnnt")
    if not r:
        return []
    c = r["config"]
    aug = c.get("augment", "none")
    return [f"FP32 RNN-T: {r['steps']} steps in {r['train_wall_s'] / 60:.0f} min ({c.get('threads', 1)} "
            f"thread(s)), stopped by {r['stop_reason']}; batches of at most {c['max_frames']} frames; "
            f"feature augmentation `{aug}` (`models/train/augment.py`: frequency warp, speed stretch, "
            f"SpecAugment masks), encoder dropout {c.get('dropout', 0.0)}. Command: `{r['command']}`."]


def build(data: str | Path = "data", checkpoints: str | Path = "checkpoints",
          out: str | Path = "reports/accuracy") -> Path:
    """Write the report files; returns the output directory."""
    data, checkpoints, out = Path(data), Path(checkpoints), Path(out)
    ev = json.loads((data / "eval" / "results.json").read_text())
    rows, fusion = ev["rows"], ev["fusion"]
    out.mkdir(parents=True, exist_ok=True)
    slim = [{k: r[k] for k in ROW_KEYS} for r in rows]
    beams = sorted({r["beam"] for r in rows if r["search"] == "alsd"})
    beam = 8 if 8 in beams else max(beams)
    lines, nums = checks(rows, beam)
    manifest_path = checkpoints / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"checkpoints": {}}
    corpus = json.loads((data / "corpus" / "corpus.json").read_text())
    (out / "results.json").write_text(json.dumps({"fusion_weights": fusion["best"], "checks": nums,
                                                  "rows": slim}, indent=2) + "\n")
    (out / "search_stats.json").write_text(json.dumps(search_stats(rows), indent=2) + "\n")
    figure_wer_vs_beam(rows, out / "wer_vs_beam.png")
    curves = _curves(data)
    qat = manifest["checkpoints"].get("int4-qat", {}).get("history")
    fp32_rnnt = manifest["checkpoints"].get("fp32", {}).get("rnnt") or {}
    missing = ""
    if not curves and fp32_rnnt:
        missing = (f"no training state in {data / 'runs'}:\nthe FP32 RNN-T ended at train "
                   f"{fp32_rnnt.get('final_train_loss_nats', float('nan')):.3f}, dev "
                   f"{fp32_rnnt.get('final_dev', float('nan')):.3f} nats/label\n({manifest_path})")
    figure_curves(curves, qat, out / "learning_curves.png", missing)
    md = ["# Accuracy of the trained `small` RNN-T with DR fusion, FP32 vs INT4", "",
          "Generated by `make accuracy` (`python -m reports.accuracy`); numbers are measured, nothing is "
          "copied from the paper. Corpus: synthetic speech (espeak-ng + flite voices, noise added) of "
          "fortune-cookie sentences (acoustic training domain) and King James Bible verses (target "
          "domain; test book John, dev book Mark, both held out of the external LM).", "",
          "## Checks", "", *lines, "",
          f"DR weights tuned on the Bible dev book (FP32, ALSD beam {fusion['beam']}, "
          f"{fusion['utterances']} utterances, {len(fusion['grid'])}-point grid): "
          f"lambda_ext = {fusion['best']['lambda_ext']}, lambda_src = {fusion['best']['lambda_src']}, "
          f"length reward = {fusion['best']['length_reward']} (dev WER {fusion['dev_wer_no_fusion']:.2f}% "
          f"without fusion -> {fusion['dev_wer_best']:.2f}%). The same weights are used for every precision.", ""]
    n_utts = {r["test"]: r["utterances"] for r in rows}
    for test in ("fortunes", "bible"):
        md += [f"## {test} test ({n_utts.get(test, 0)} utterances; about half by voices held out of training)",
               "", wer_table(rows, test), ""]
    md += ["![WER vs beam](wer_vs_beam.png)", "", "## Reading these numbers", "", *reading_notes(
               rows, fusion, curves,
               manifest["checkpoints"].get("fp32", {}).get("rnnt", {}).get("config", {}).get("augment", "none") != "none",
               fp32_rnnt),
           "", "## Voices", "",
           "Test utterances are spoken by training voices or by voices held out of training: an unseen "
           "espeak-ng accent (`heldout-accent`), unseen espeak-ng variants of training accents "
           "(`heldout-variant`) and the flite `slt` voice (`heldout-flite`, the only female flite voice).", "",
           voices_table(rows, beam), ""]
    if any(r.get("voice_groups") for r in rows):
        md += [f"By voice group (ALSD beam {beam}, no LM):", "", groups_table(rows, beam), ""]
    md += ["## Training", "", *training_notes(manifest), "", "![learning curves](learning_curves.png)", ""]
    trows = []
    for name, c in curves.items():
        dev = c["dev"][-1][1] if c["dev"] else float("nan")
        trows.append([name, c["steps"], f"{c['elapsed_s'] / 60:.1f}", c["stop_reason"],
                      f"{sum(r[1] for r in c['train'][-50:]) / max(1, len(c['train'][-50:])):.3f}", f"{dev:.3f}"])
    if trows:
        md += [_table(["model", "steps", "wall min", "stopped by", "final train loss (nats)",
                       "final dev (RNN-T: nats/label, LM: perplexity)"], trows), ""]
    md += [f"Corpus: {json.dumps(corpus['splits'])}", ""]
    crows = [[k, v.get("file") or "not exported (`export_error` in MANIFEST.json)",
              f"{v.get('bytes', 0) / 1e6:.2f}", v.get("mode", "-"), v.get("steps", "-")]
             for k, v in manifest["checkpoints"].items()]
    if crows:
        md += ["## Checkpoints (`checkpoints/`)", "", _table(["precision", "file", "MB", "mode", "QAT steps"], crows), ""]
    (out / "README.md").write_text("\n".join(md) + "\n")
    log.info("accuracy report written to %s", out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reports.accuracy", description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data")
    ap.add_argument("--checkpoints", default="checkpoints")
    ap.add_argument("--out", default="reports/accuracy")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    build(args.data, args.checkpoints, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
