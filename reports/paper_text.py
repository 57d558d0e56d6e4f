"""The computed prose of the reference report's paper point: every sentence here is built from the
numbers it is given (a value, a comparison, a direction chosen from the data), or states a fact
of the execution model that holds for any accelerator.

Inputs are ``reports.paper.PointDetail`` (one per precision, FP16 and INT4), ``HwFacts``, and
plain tables; each function returns Markdown lines.
"""

from __future__ import annotations

import math

import pandas as pd

from reports.markdown import md_table

#: ``bound_by`` labels whose time does not shrink with a narrower precision in this cost model.
PRECISION_BLIND = ("dispatch", "select", "sfu", "vector", "ring")
SEARCH_PHASES = ("prediction", "joint", "lm_ext", "lm_src", "search")
#: Words for ``bound_by`` labels and DRAM byte sources.
BOUND_WORDS = {"dram": "DRAM transfers", "sram": "scratchpad bandwidth", "compute": "the MAC array",
               "dispatch": "dispatch overhead", "fill_drain": "array fill/drain", "shared": "shared-SRAM bandwidth",
               "ring": "the inter-core ring", "select": "the select unit", "sfu": "the special-function unit",
               "vector": "the vector unit"}
SOURCE_WORDS = {"weight_stream": "weights streamed at every use", "weight_load": "weights loaded at first use",
                "weight_prefetch": "weights prefetched", "activation_spill": "activation spills"}


def bound_word(label: str) -> str:
    return f"{BOUND_WORDS.get(label, label)} (`{label}`)"


def _x(v: float) -> str:
    return f"{v:.2f}x" if v < 10 else f"{v:.1f}x"


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%" if abs(v) >= 0.095 else f"{100 * v:.1f}%"


def _mb(v: float) -> str:
    return f"{v / 1e6:.1f} MB" if v < 1e10 else f"{v / 1e9:.2f} GB"


def _ms(v_s: float) -> str:
    return f"{1e3 * v_s:.1f} ms"


def compare(value: float, ref: float, rel_tol: float = 0.005) -> str:
    """``above``, ``below`` or ``equal to`` (within ``rel_tol``), as ``value`` is to ``ref``."""
    if abs(value - ref) <= rel_tol * abs(ref):
        return "equal to"
    return "above" if value > ref else "below"


def times(value: float, ref: float) -> str:
    """``'2.50x higher'``-style comparison of two positive values."""
    if value == ref:
        return "equal"
    hi, lo = max(value, ref), min(value, ref)
    return f"{_x(hi / lo)} {'higher' if value > ref else 'lower'}"


def real_time(rtf: float) -> str:
    """What an RTF means for live audio."""
    if rtf < 1:
        return (f"the decode takes {_pct(rtf)} of the audio's duration (faster than real time, "
                f"{_x(1 / rtf)} margin)")
    if rtf == 1:
        return "the decode takes exactly the audio's duration (real time, no margin)"
    return f"the decode takes {_x(rtf)} the audio's duration (slower than real time)"


# ---- pieces of a PointDetail -----------------------------------------------------------------

def search_latency_s(d) -> float:
    return sum(d.phases.get(p, 0.0) for p in SEARCH_PHASES)


def dram_time_s(d, dram_bw_bytes_per_s: float) -> float:
    """Time the DRAM channel needs for the point's bytes at full bandwidth (a lower bound of the
    channel's busy time; the channel is one, so this never exceeds the latency)."""
    return d.dram_bytes / dram_bw_bytes_per_s


def bound_shares(d) -> pd.Series:
    """Share of summed op time per ``bound_by`` label, largest first."""
    t = d.op_time_by_bound_s.sum(axis=0)
    return (t / t.sum()).sort_values(ascending=False) if t.sum() > 0 else t


def _weights(d, segment: str | None = None, reused: bool | None = None) -> pd.DataFrame:
    m = d.memory[d.memory.kind == "weight"]
    if segment is not None:
        m = m[m.segment_label == segment] if segment != "encoder" else m[m.segment_label.str.startswith("encoder")]
    if reused is not None:
        m = m[(m.uses >= 2) == reused]
    m = m.copy()
    m["onchip_bytes"] = m.local_bytes + m.shared_bytes + m.remote_bytes
    return m


def status(row) -> str:
    """Residency class of one (segment, weight) row of ``SimResult.memory``."""
    if row.uses < 2:
        return "single use"
    if row.onchip_bytes >= row.bytes * (1 - 1e-9):
        return "resident"
    return "partly resident" if row.onchip_bytes > 0 else "streamed"


# ---- sections ----------------------------------------------------------------------------------

def comparison_lines(fp16, int4, paper: dict, v1: dict | None, compression_x: float, point: str) -> list[str]:
    """The paper-comparison table (ours, paper and, when given, the historical v1 figures of the
    same point) and what it says."""
    speedup = fp16.latency_s / int4.latency_s
    rows = [
        ("FP16 latency (ms)", f"{1e3 * fp16.latency_s:.1f}", "", "fp16_latency_ms", ".1f"),
        ("INT4 latency (ms)", f"{1e3 * int4.latency_s:.1f}", "", "int4_latency_ms", ".1f"),
        ("speed-up FP16 -> INT4 (x)", f"{speedup:.2f}", f"{paper['speedup_fp16_to_int4_x']:g}",
         "speedup_fp16_to_int4_x", ".2f"),
        ("RTF, INT4", f"{int4.rtf:.4f}", f"{paper['rtf']:g}", "rtf", ".4f"),
        ("compression, full model INT4 vs FP32 (x)", f"{compression_x:.2f}", f"{paper['compression_x']:g}", None, ""),
    ]
    table = pd.DataFrame([{"figure": f, "ours": o, "paper": p,
                           **({v1["label"]: format(v1[k], fmt) if k else ""} if v1 else {})}
                          for f, o, p, k, fmt in rows])
    p_s, p_r = paper["speedup_fp16_to_int4_x"], paper["rtf"]
    lines = [md_table(table), ""]
    if v1:
        lines += ["The last column is historical: what this simulator gave for the same point before "
                  "execution model v2, quoted from the report of that commit, not recomputed.", ""]
    lines += [f"At {point}, our FP16 -> INT4 speed-up is {speedup:.2f}x, {compare(speedup, p_s)} the "
              f"paper's {p_s:g}x ({_x(speedup / p_s)} of it). Our INT4 RTF is {int4.rtf:.4f}: "
              f"{real_time(int4.rtf)}; the paper's {p_r:g} means {real_time(p_r)}; ours is "
              f"{times(int4.rtf, p_r)}.", ""]
    if v1:
        v_f, v_i = v1["fp16_latency_ms"] / 1e3, v1["int4_latency_ms"] / 1e3
        lines += [f"Against v1, FP16 latency is {times(fp16.latency_s, v_f)} ({v1['fp16_latency_ms']:.1f} -> "
                  f"{1e3 * fp16.latency_s:.1f} ms) and INT4 latency {times(int4.latency_s, v_i)} "
                  f"({v1['int4_latency_ms']:.1f} -> {1e3 * int4.latency_s:.1f} ms), so the speed-up "
                  f"{'rose' if speedup > v1['speedup_fp16_to_int4_x'] else 'fell'} from "
                  f"{v1['speedup_fp16_to_int4_x']:.2f}x to {speedup:.2f}x. v1 decided residency once for "
                  "the whole decode; v2 plans it per segment (each encoder layer, then the search), so a "
                  "layer's recurrent weights are loaded once for all its frames when they fit.", ""]
    lines += ["Where the time goes:", ""]
    return lines


def time_lines(fp16, int4, hw, fp16_weight_bytes: float, int4_weight_bytes: float) -> list[str]:
    """Where FP16's time goes versus INT4's at the paper point, with the numbers that say why."""
    rows = []
    ds = {"FP16": fp16, "INT4": int4}

    def add(name, f, fmt):
        vals = {k: f(d) for k, d in ds.items()}
        rows.append({"": name, **{k: format(v, fmt) for k, v in vals.items()},
                     "FP16 / INT4": (f"{vals['FP16'] / vals['INT4']:.2f}" if vals["INT4"] else "-")})

    add("latency (ms)", lambda d: 1e3 * d.latency_s, ".1f")
    add("encoder phase (ms)", lambda d: 1e3 * d.phases.get("encoder", 0.0), ".1f")
    add("search phases: prediction, joint, LMs, search (ms)", lambda d: 1e3 * search_latency_s(d), ".1f")
    add("DRAM bytes (MB)", lambda d: d.dram_bytes / 1e6, ".1f")
    for src, label in (("weight_stream", "weights streamed at every use"),
                       ("weight_load", "weights loaded at first use"),
                       ("weight_prefetch", "weights prefetched"),
                       ("activation_spill", "activations spilled")):
        add(f"- of which {label} (MB)", lambda d, s=src: d.dram_bytes_by_source.get(s, 0.0) / 1e6, ".1f")
    add(f"DRAM bytes / bandwidth ({hw.dram_bw_bytes_per_s / 1e9:g} GB/s) (ms)",
        lambda d: 1e3 * dram_time_s(d, hw.dram_bw_bytes_per_s), ".1f")
    add("search weights used at every step (MB)", lambda d: _weights(d, "search", True)["bytes"].sum() / 1e6, ".2f")
    add("- of which on chip (MB)", lambda d: _weights(d, "search", True)["onchip_bytes"].sum() / 1e6, ".2f")
    add("DRAM-bound share of summed op time (%)", lambda d: 100 * bound_shares(d).get("dram", 0.0), ".1f")
    lines = [md_table(pd.DataFrame(rows)), "",
             f"On-chip capacity: {hw.cores} x {hw.scratchpad_bytes / 2**20:g} MiB scratchpad"
             + (f" + {hw.shared_sram_bytes / 2**20:g} MiB shared SRAM" if hw.shared_sram_bytes else "")
             + f" = {hw.onchip_bytes / 1e6:.2f} MB. Summed op time counts ops that run concurrently on "
             "different cores each in full; it is not the latency.", ""]

    sent = []
    for name, d in ds.items():
        share = dram_time_s(d, hw.dram_bw_bytes_per_s) / d.latency_s
        top = bound_shares(d)
        src = max(d.dram_bytes_by_source, key=d.dram_bytes_by_source.get)
        src_share = d.dram_bytes_by_source[src] / d.dram_bytes if d.dram_bytes else 0.0
        sent.append(f"At {name}, moving its {_mb(d.dram_bytes)} over DRAM takes "
                    f"{_ms(dram_time_s(d, hw.dram_bw_bytes_per_s))}, {_pct(share)} of the latency "
                    f"({'most' if share > 0.5 else 'at most half'} of it); {_pct(src_share)} of those "
                    f"bytes are {SOURCE_WORDS.get(src, src)}. The largest share of its summed op time is "
                    f"bound by {bound_word(top.index[0])} ({_pct(top.iloc[0])})"
                    + (f", then {bound_word(top.index[1])} ({_pct(top.iloc[1])})"
                       if len(top) > 1 and top.iloc[1] > 0 else "")
                    + ".")
    lines += [" ".join(sent), ""]

    w16, w4 = _weights(fp16, "search", True), _weights(int4, "search", True)
    on16, on4 = w16.onchip_bytes.sum() / w16.bytes.sum(), w4.onchip_bytes.sum() / w4.bytes.sum()

    def fits(b):
        r = b / hw.onchip_bytes
        return f"{_x(r)} the capacity ({'fits' if r <= 1 else 'does not fit'})"
    lines += [f"The search segment uses {_mb(w16.bytes.sum())} of weights at every search step at FP16 and "
              f"{_mb(w4.bytes.sum())} at INT4, against {hw.onchip_bytes / 1e6:.2f} MB on chip: "
              f"{fits(w16.bytes.sum())} at FP16, {fits(w4.bytes.sum())} at INT4. The plan keeps "
              f"{_pct(on16)} of them on chip at FP16 and {_pct(on4)} at INT4; the rest is read from DRAM "
              "at every use.", ""]

    speedup = fp16.latency_s / int4.latency_s
    enc16, enc4 = fp16.phases.get("encoder", 0.0), int4.phases.get("encoder", 0.0)
    s16, s4 = search_latency_s(fp16), search_latency_s(int4)
    lead = "search" if s16 >= enc16 else "encoder"
    lines += [f"The encoder phase speeds up {_x(enc16 / enc4) if enc4 else 'without bound'} and the search phases "
              f"{_x(s16 / s4) if s4 else 'without bound'}; the search phases are {_pct(s16 / fp16.latency_s)} "
              f"of the FP16 latency and {_pct(s4 / int4.latency_s)} of INT4's, so the whole-decode "
              f"{speedup:.2f}x is set mostly by the {lead} phases.", ""]

    r_b = fp16_weight_bytes / int4_weight_bytes
    r_m = hw.peak_macs_int4_per_s / hw.peak_macs_fp16_per_s
    st16 = fp16.dram_bytes_by_source.get("weight_stream", 0.0)
    st4 = int4.dram_bytes_by_source.get("weight_stream", 0.0)
    ceil = (f"With the same residency, an op bound by weight bytes gains at most the ratio of the two "
            f"policies' weight bytes ({r_b:.2f}x) and an op bound by the MAC array the ratio of peak "
            f"INT4 to FP16 MACs/s of `{hw.name}` ({r_m:.2f}x). ")
    if speedup > max(r_b, r_m):
        why = (f"Our {speedup:.2f}x exceeds both, which residency explains: weight bytes streamed from "
               f"DRAM fall by {_x(st16 / st4) if st4 else 'to zero'} ({_mb(st16)} -> {_mb(st4)}), "
               + ("because a larger share of the search weights stays on chip at INT4."
                  if on4 > on16 else "although the on-chip share of the search weights did not grow."))
    elif speedup < min(r_b, r_m):
        blind = bound_shares(int4).reindex(list(PRECISION_BLIND)).fillna(0.0).sum()
        why = (f"Our {speedup:.2f}x is below both: part of the time does not shrink with precision; ops "
               f"bound by {', '.join(PRECISION_BLIND)} take {_pct(blind)} of INT4's summed op time.")
    else:
        why = f"Our {speedup:.2f}x lies between the two."
    lines += [ceil + why, ""]
    return lines


def residency_lines(fp16, int4) -> list[str]:
    """Per segment: what is resident, partly resident, streamed; the search weights one by one."""
    rows = []
    for name, d in (("FP16", fp16), ("INT4", int4)):
        w = _weights(d)
        w["status"] = [status(r) for r in w.itertuples()]
        acts = d.memory[d.memory.kind == "activation"]
        for seg, g in w.groupby("segment_label", sort=False):
            row = {"precision": name, "segment": seg, "weights (MB)": g.bytes.sum() / 1e6}
            for st in ("resident", "partly resident", "streamed", "single use"):
                s = g[g.status == st]
                row[st] = (f"{len(s)}: {s.onchip_bytes.sum() / 1e6:.2f} of {s.bytes.sum() / 1e6:.2f} MB"
                           if st == "partly resident" and len(s) else
                           f"{len(s)}: {s.bytes.sum() / 1e6:.2f} MB" if len(s) else "-")
            row["activations spilled (MB)"] = acts[acts.segment_label == seg].spilled_bytes.sum() / 1e6
            row["DRAM (MB)"] = d.segment_dram_bytes.get(seg, 0.0) / 1e6
            rows.append(row)
    table = pd.DataFrame(rows)
    lines = ["Per segment (`SimResult.memory`): *resident*: a weight used at every step of the segment, "
             "wholly on chip (a scratchpad, the shared SRAM or another core's scratchpad); *partly "
             "resident*: on-chip MB of total, the rest streams at every use; *streamed*: read from "
             "DRAM at every use; *single use*: used once in the segment (an encoder layer's input "
             "projection over all frames), read once. Counts are weights.", "",
             md_table(table, {"weights (MB)": ".2f", "activations spilled (MB)": ".2f", "DRAM (MB)": ".1f"}), ""]
    w16, w4 = _weights(fp16, "search"), _weights(int4, "search")
    per = pd.DataFrame({
        "search weight": w16["item"].to_numpy(), "uses": w16["uses"].to_numpy(),
        "FP16 MB": w16["bytes"].to_numpy() / 1e6,
        "FP16 on chip": [_pct(o / b) if b else "-" for o, b in zip(w16.onchip_bytes, w16.bytes)],
    })
    m4 = w4.set_index("item")
    per["INT4 MB"] = [m4["bytes"].get(i, math.nan) / 1e6 for i in per["search weight"]]
    per["INT4 on chip"] = [_pct(m4.onchip_bytes[i] / m4.bytes[i]) if i in m4.index and m4.bytes[i] else "-"
                           for i in per["search weight"]]
    enc = {n: _weights(d, "encoder", True) for n, d in (("FP16", fp16), ("INT4", int4))}
    enc_sent = "; ".join(f"{n}: {sum(status(r) == 'resident' for r in e.itertuples())} of {len(e)}"
                         for n, e in enc.items())
    lines += [f"Encoder weights used at every frame that are wholly resident in their layer's segment: "
              f"{enc_sent}. The search segment, weight by weight:", "",
              md_table(per, {"FP16 MB": ".3f", "INT4 MB": ".3f"}), ""]
    return lines


def energy_lines(fp16, int4) -> list[str]:
    """Energy per component at the paper point; the components sum to ``energy_j``."""
    if not fp16.energy_breakdown_j or not int4.energy_breakdown_j:
        return ["The accelerator has no energy costs (`energy` section), so no energy is reported.", ""]
    comps = list(fp16.energy_breakdown_j)
    rows = []
    for c in comps:
        f, i = fp16.energy_breakdown_j[c], int4.energy_breakdown_j.get(c, 0.0)
        rows.append({"component": c, "FP16 (mJ)": 1e3 * f, "FP16 share": _pct(f / fp16.energy_j),
                     "INT4 (mJ)": 1e3 * i, "INT4 share": _pct(i / int4.energy_j)})
    rows.append({"component": "total (energy_j)", "FP16 (mJ)": 1e3 * fp16.energy_j, "FP16 share": "100%",
                 "INT4 (mJ)": 1e3 * int4.energy_j, "INT4 share": "100%"})
    top16 = max(fp16.energy_breakdown_j, key=fp16.energy_breakdown_j.get)
    top4 = max(int4.energy_breakdown_j, key=int4.energy_breakdown_j.get)
    return [md_table(pd.DataFrame(rows), {"FP16 (mJ)": ".3f", "INT4 (mJ)": ".3f"}), "",
            f"The largest component is {top16} at FP16 ({_pct(fp16.energy_breakdown_j[top16] / fp16.energy_j)}) "
            f"and {top4} at INT4 ({_pct(int4.energy_breakdown_j[top4] / int4.energy_j)}); INT4 uses "
            f"{_x(fp16.energy_j / int4.energy_j)} {'less' if int4.energy_j < fp16.energy_j else 'more'} "
            "energy per utterance. `static` is static power times latency.", ""]


def memory_sweep_lines(sw: pd.DataFrame, hw, point: str, figure: str | None) -> list[str]:
    """Caption and computed reading of the speed-up / RTF vs memory sweep."""
    lines = []
    if figure:
        lines += [f"![speed-up and RTF vs memory]({figure})", ""]
    lines += [f"*{point}. Left: scratchpad per core varied, DRAM bandwidth held at "
              f"{hw.dram_bw_bytes_per_s / 1e9:g} GB/s; right: DRAM bandwidth varied, scratchpad held at "
              f"{hw.scratchpad_bytes / 2**20:g} MiB per core. Everything else of `{hw.name}` held fixed "
              f"({hw.cores} cores, shared SRAM {hw.shared_sram_bytes / 2**20:g} MiB, clock, arrays, "
              "dispatch). Data: `speedup_vs_memory.csv`.*", ""]
    for axis, col, unit in (("scratchpad", "scratchpad_mib", "MiB per core"), ("dram_bw", "dram_bw_gb_s", "GB/s")):
        s = sw[sw.axis == axis].sort_values(col)
        if s.empty:
            continue
        hi = s.loc[s.speedup_fp16_to_int4_x.idxmax()]
        lo = s.loc[s.speedup_fp16_to_int4_x.idxmin()]
        x, r = s[col].to_numpy(), s.int4_rtf.to_numpy()
        rises = [f"{a:g} to {b:g}" for a, b, ra, rb in zip(x, x[1:], r, r[1:]) if rb > ra * 1.005]
        rtf_dir = "never increases" if not rises else f"increases from {', '.join(rises)} {unit}"
        same = s.fp16_search_onchip_share.nunique() == 1 and s.int4_search_onchip_share.nunique() == 1
        first, last = s.iloc[0], s.iloc[-1]
        if hi.speedup_fp16_to_int4_x <= lo.speedup_fp16_to_int4_x * 1.005:
            lines.append(
                f"- {'Scratchpad' if axis == 'scratchpad' else 'DRAM bandwidth'} {first[col]:g}-{last[col]:g} "
                f"{unit}: the speed-up stays at {lo.speedup_fp16_to_int4_x:.2f}x (within 0.5%); INT4 RTF goes "
                f"from {first.int4_rtf:.4f} to {last.int4_rtf:.4f}; as the resource grows it {rtf_dir} "
                "(tolerance 0.5%).")
            continue

        def at(row):
            return (f"at {row[col]:g}" if same else
                    f"at {row[col]:g}: FP16 keeps {_pct(row.fp16_search_onchip_share)} and INT4 "
                    f"{_pct(row.int4_search_onchip_share)} of the search weights on chip")
        lines.append(
            f"- {'Scratchpad' if axis == 'scratchpad' else 'DRAM bandwidth'} {first[col]:g}-{last[col]:g} "
            f"{unit}: the speed-up is {first.speedup_fp16_to_int4_x:.2f}x at {first[col]:g} and "
            f"{last.speedup_fp16_to_int4_x:.2f}x at {last[col]:g}; its largest value is "
            f"{hi.speedup_fp16_to_int4_x:.2f}x ({at(hi)}), its smallest {lo.speedup_fp16_to_int4_x:.2f}x "
            f"({at(lo)})"
            + (f"; the on-chip shares of the search weights do not change along this axis (FP16 "
               f"{_pct(first.fp16_search_onchip_share)}, INT4 {_pct(first.int4_search_onchip_share)})" if same else "")
            + f". INT4 RTF goes from {first.int4_rtf:.4f} to {last.int4_rtf:.4f}; "
            f"as the resource grows it {rtf_dir} (tolerance 0.5%).")
    return lines + [""]


def what_if_lines(wi: pd.DataFrame) -> list[str]:
    """The what-if table and which variant moves which figure most."""
    base = wi.iloc[0]
    rest = wi.iloc[1:]
    lines = [md_table(wi, {"fp16_latency_ms": ".1f", "int4_latency_ms": ".1f", "speedup_fp16_to_int4_x": ".2f",
                           "int4_rtf": ".4f", "fp16_streamed_mb": ".1f", "int4_streamed_mb": ".1f",
                           "fp16_search_onchip_share": ".2f", "int4_search_onchip_share": ".2f"}), ""]
    if rest.empty:
        return lines
    d_s = (rest.speedup_fp16_to_int4_x - base.speedup_fp16_to_int4_x).abs()
    m = rest.loc[d_s.idxmax()]
    r = rest.loc[(rest.int4_rtf - base.int4_rtf).abs().idxmax()]
    lines += [f"Against `{base.variant}`, the variant that moves the speed-up most is *{m.variant}* "
              f"({base.speedup_fp16_to_int4_x:.2f}x -> {m.speedup_fp16_to_int4_x:.2f}x); the one that moves "
              f"INT4 RTF most is *{r.variant}* ({base.int4_rtf:.4f} -> {r.int4_rtf:.4f}).", ""]
    return lines


def compression_lines(compression_x: float, paper_x: float, ideal_x: float) -> list[str]:
    """Our compression against the paper's and the ideal ratio of the weight widths."""
    more = compression_x / paper_x - 1
    return [f"Compression counts every stored byte of the RNN-T and both LMs under the policy: packed "
            f"integer weights and embeddings, scales and zero points at their granularity, biases and "
            f"tensors kept at higher precision (`models/quant/policies/int4.yaml` says which). Ours is "
            f"{compression_x:.2f}x against the ideal {ideal_x:g}x of the weight widths; the paper's "
            f"{paper_x:g}x implies {_pct(abs(more))} {'more' if more > 0 else 'fewer'} stored bytes than "
            "our `int4` policy; which tensors the paper keeps wider is not stated.", ""]


def roofline_lines(point: dict, figs: dict) -> list[str]:
    """The paper point on the roofline (``hwsim.roofline``): per precision, the figure and the
    module x phase groups with the largest shares of busy time, with what bounds them."""
    out = ["Each marker is one module in one phase (its GEMMs and the ops around them): operations "
           "(2 x MACs) per byte moved against the rate it reached over its busy time, under the roofs "
           "of the chip (peak per precision; DRAM and scratchpad bandwidth); marker area: share of the "
           "busy time. `roof`: the lowest of the three at the point's intensity.", ""]
    for precision in ("fp16", "int4"):
        d = point.get(precision)
        fig = figs.get(f"roofline_{precision}")
        if d is None or d.roofline is None or fig is None:
            continue
        pts = d.roofline.head(3)
        parts = [f"`{r.module}` ({r.phase}) {100 * r.time_share:.0f}% of busy time, at "
                 f"{100 * r.roof_fraction:.0f}% of its {r.roof} roof" for r in pts.itertuples()]
        out += [f"**{precision.upper()}**: " + "; ".join(parts) + ".", "",
                f"![roofline {precision}]({fig.name})", ""]
    return out
