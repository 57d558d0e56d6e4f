"""The reference report's prose follows its data: the text is built from contrived result tables
(a 2x speed-up with RTF above 1, and a 30x speed-up with RTF below 1) and every computed sentence
must say what those tables say. The expected words are derived here from the contrived numbers,
not read back from the functions under test."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from reports import paper_text as pt
from reports.markdown import paper_report, search_stats_check
from reports.paper import PAPER, V1, HwFacts, PointDetail, ReportData, ReportGrid

HW = HwFacts(name="toy", cores=4, scratchpad_bytes=2**20, shared_sram_bytes=0.0, dram_bw_bytes_per_s=1e10,
             peak_macs_fp16_per_s=1e12, peak_macs_int4_per_s=8e12)   # MAC-rate ratio 8
WEIGHT_BYTES = {"fp16": 4e6, "int4": 1e6}                              # weight-bytes ratio 4

#: Two contrived paper points. Per precision: latency_s, phases, DRAM bytes by source, summed op
#: time per bound_by label, search weights (bytes, on-chip bytes), energy per component.
SCENARIOS = {
    "slow": dict(audio_s=0.5, fp16=dict(
        latency_s=2.0, phases={"encoder": 1.5, "lm_ext": 0.5},
        dram={"weight_stream": 4e9, "weight_load": 1e9, "weight_prefetch": 0.0, "activation_spill": 0.0},
        bound={"compute": 1.5, "dram": 0.5}, search=[(6e6, 1.5e6), (2e6, 0.5e6)],
        energy={"mac": 0.2, "dram": 0.5, "static": 0.3}), int4=dict(
        latency_s=1.0, phases={"encoder": 0.8, "lm_ext": 0.2},
        dram={"weight_stream": 0.6e9, "weight_load": 0.4e9, "weight_prefetch": 0.0, "activation_spill": 0.0},
        bound={"dispatch": 0.7, "compute": 0.3}, search=[(1.5e6, 0.375e6), (0.5e6, 0.125e6)],
        energy={"mac": 0.3, "dram": 0.1, "static": 0.2})),
    "fast": dict(audio_s=10.0, fp16=dict(
        latency_s=0.3, phases={"encoder": 0.05, "lm_ext": 0.2, "prediction": 0.05},
        dram={"weight_stream": 2.8e9, "weight_load": 0.2e9, "weight_prefetch": 0.0, "activation_spill": 0.0},
        bound={"dram": 2.0, "compute": 0.1}, search=[(6e6, 1e6), (2e6, 0.0)],
        energy={"mac": 0.1, "dram": 0.8, "static": 0.1}), int4=dict(
        latency_s=0.01, phases={"encoder": 0.004, "lm_ext": 0.005, "prediction": 0.001},
        dram={"weight_stream": 1e7, "weight_load": 2e7, "weight_prefetch": 1e7, "activation_spill": 0.0},
        bound={"sram": 0.02, "dram": 0.01}, search=[(1.5e6, 1.5e6), (0.5e6, 0.5e6)],
        energy={"mac": 0.01, "dram": 0.002, "static": 0.003})),
}


def _detail(precision: str, audio_s: float, p: dict) -> PointDetail:
    rows = [{"segment": 0, "segment_label": "encoder.layers.0", "item": "enc.weight_hh", "kind": "weight",
             "bytes": 1e6, "uses": 100, "local_bytes": 1e6, "shared_bytes": 0.0, "remote_bytes": 0.0,
             "spilled_bytes": 0.0},
            {"segment": 0, "segment_label": "encoder.layers.0", "item": "enc.weight_ih", "kind": "weight",
             "bytes": 2e6, "uses": 1, "local_bytes": 0.0, "shared_bytes": 0.0, "remote_bytes": 0.0,
             "spilled_bytes": 0.0}]
    rows += [{"segment": 1, "segment_label": "search", "item": f"lm.w{i}", "kind": "weight", "bytes": b,
              "uses": 50, "local_bytes": on, "shared_bytes": 0.0, "remote_bytes": 0.0, "spilled_bytes": 0.0}
             for i, (b, on) in enumerate(p["search"])]
    rows.append({"segment": 1, "segment_label": "search", "item": "activations of lm", "kind": "activation",
                 "bytes": 1e5, "uses": 1, "local_bytes": 0.0, "shared_bytes": 0.0, "remote_bytes": 0.0,
                 "spilled_bytes": 1e5})
    dram = sum(p["dram"].values())
    return PointDetail(
        precision=precision, latency_s=p["latency_s"], rtf=p["latency_s"] / audio_s, audio_s=audio_s,
        phases=p["phases"], dram_bytes=dram, dram_bytes_by_source=p["dram"],
        op_time_by_bound_s=pd.DataFrame([p["bound"]], index=["search"]), memory=pd.DataFrame(rows),
        segment_dram_bytes={"encoder.layers.0": 0.1 * dram, "search": 0.9 * dram},
        energy_j=sum(p["energy"].values()), energy_breakdown_j=p["energy"])


def _points(name):
    sc = SCENARIOS[name]
    return _detail("fp16", sc["audio_s"], sc["fp16"]), _detail("int4", sc["audio_s"], sc["int4"])


def _sentence(text: str, start: str) -> str:
    i = text.index(start)
    j = text.find("\n", i)
    return text[i:j if j >= 0 else None]


@pytest.mark.parametrize("name", SCENARIOS)
def test_comparison_sentences_follow_the_numbers(name):
    fp16, int4 = _points(name)
    speedup = fp16.latency_s / int4.latency_s
    rtf = int4.rtf
    text = "\n".join(pt.comparison_lines(fp16, int4, PAPER, V1, 7.0, "the point"))
    m = re.search(r"speed-up is ([\d.]+)x, (above|below|equal to) the paper's ([\d.]+)x", text)
    assert m, text
    assert float(m.group(1)) == pytest.approx(speedup, rel=1e-3)
    assert m.group(2) == ("above" if speedup > PAPER["speedup_fp16_to_int4_x"] else "below")
    assert float(m.group(3)) == PAPER["speedup_fp16_to_int4_x"]
    rtf_sentence = _sentence(text, "Our INT4 RTF")
    ours, theirs = rtf_sentence.split("the paper's")
    assert ("slower than real time" in ours) == (rtf > 1) and ("faster than real time" in ours) == (rtf < 1)
    assert "faster than real time" in theirs          # the paper's 0.06 is below 1
    assert f"{100 * PAPER['rtf']:.1f}% of the audio's duration" in theirs   # 6.0%, not "a quarter"
    if rtf < 1:
        assert f"{100 * rtf:.1f}% of the audio's duration" in ours
    word = "lower" if rtf < PAPER["rtf"] else "higher"
    assert re.search(rf"ours is [\d.]+x {word}", rtf_sentence)
    # the table's 'ours' cell is the sentence's number
    row = next(ln for ln in text.splitlines() if ln.startswith("| speed-up FP16 -> INT4"))
    assert row.split("|")[2].strip() == f"{speedup:.2f}"
    v1_dir = "rose" if speedup > V1["speedup_fp16_to_int4_x"] else "fell"
    assert f"the speed-up {v1_dir} from {V1['speedup_fp16_to_int4_x']:.2f}x" in text
    assert text.count(V1["label"]) == 1                  # the historical label, in one place
    assert "Against v1" not in "\n".join(pt.comparison_lines(fp16, int4, PAPER, None, 7.0, "the point"))


@pytest.mark.parametrize("name", SCENARIOS)
def test_time_sentences_follow_the_numbers(name):
    fp16, int4 = _points(name)
    speedup = fp16.latency_s / int4.latency_s
    text = "\n".join(pt.time_lines(fp16, int4, HW, WEIGHT_BYTES["fp16"], WEIGHT_BYTES["int4"]))
    r_bytes, r_mac = WEIGHT_BYTES["fp16"] / WEIGHT_BYTES["int4"], HW.peak_macs_int4_per_s / HW.peak_macs_fp16_per_s
    if speedup > max(r_bytes, r_mac):
        assert "exceeds both" in text and "below both" not in text
        on16 = sum(o for _, o in SCENARIOS[name]["fp16"]["search"]) / sum(b for b, _ in SCENARIOS[name]["fp16"]["search"])
        on4 = sum(o for _, o in SCENARIOS[name]["int4"]["search"]) / sum(b for b, _ in SCENARIOS[name]["int4"]["search"])
        assert ("a larger share of the search weights stays on chip" in text) == (on4 > on16)
    elif speedup < min(r_bytes, r_mac):
        assert "is below both" in text and "exceeds both" not in text
    assert f"({r_bytes:.2f}x)" in text and f"({r_mac:.2f}x)" in text
    for label, d in (("FP16", fp16), ("INT4", int4)):
        s = _sentence(text, f"At {label}, moving") if label == "FP16" else text[text.index("At INT4, moving"):]
        share = d.dram_bytes / HW.dram_bw_bytes_per_s / d.latency_s
        assert f"{100 * share:.0f}% of the latency" in s.split(". ")[0]
        assert ("(most of it)" if share > 0.5 else "(at most half of it)") in s.split(". ")[0]
        top = max(SCENARIOS[name][label.lower()]["bound"], key=SCENARIOS[name][label.lower()]["bound"].get)
        assert f"bound by {pt.BOUND_WORDS[top]} (`{top}`)" in s
    enc16 = fp16.phases["encoder"]
    lead = "encoder" if enc16 > fp16.latency_s - enc16 else "search"
    assert f"set mostly by the {lead} phases" in text
    onchip = HW.cores * HW.scratchpad_bytes
    for label, p in (("FP16", SCENARIOS[name]["fp16"]), ("INT4", SCENARIOS[name]["int4"])):
        total = sum(b for b, _ in p["search"])
        verdict = "fits" if total <= onchip else "does not fit"
        assert f"the capacity ({verdict}) at {label}" in text


@pytest.mark.parametrize("name", SCENARIOS)
def test_energy_and_residency_follow_the_numbers(name):
    fp16, int4 = _points(name)
    text = "\n".join(pt.energy_lines(fp16, int4))
    for label, key in (("FP16", "fp16"), ("INT4", "int4")):
        e = SCENARIOS[name][key]["energy"]
        top = max(e, key=e.get)
        assert f"is {top} at FP16" in text if label == "FP16" else f"and {top} at INT4" in text
    ratio = fp16.energy_j / int4.energy_j
    assert ("x less energy" in text) == (ratio > 1)
    total = next(ln for ln in text.splitlines() if ln.startswith("| total"))
    assert float(total.split("|")[2]) == pytest.approx(1e3 * sum(SCENARIOS[name]["fp16"]["energy"].values()), abs=1e-3)
    res = "\n".join(pt.residency_lines(fp16, int4))
    search_rows = [ln for ln in res.splitlines() if ln.startswith("| FP16 | search") or ln.startswith("| INT4 | search")]
    for row, key in zip(search_rows, ("fp16", "int4")):
        ws = SCENARIOS[name][key]["search"]
        full = sum(1 for b, o in ws if o >= b)
        part = sum(1 for b, o in ws if 0 < o < b)
        none = sum(1 for b, o in ws if o == 0)
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert cells[3] == ("-" if not full else f"{full}: {sum(b for b, o in ws if o >= b) / 1e6:.2f} MB")
        assert cells[4].startswith("-" if not part else f"{part}:")
        assert cells[5].startswith("-" if not none else f"{none}:")


@pytest.mark.parametrize("rtf, rises", [((0.01, 0.005, 0.006), True), ((0.01, 0.005, 0.004), False)])
def test_memory_sweep_sentences(rtf, rises):
    sw = pd.DataFrame({"axis": "scratchpad", "scratchpad_mib": [1.0, 2.0, 4.0], "dram_bw_gb_s": 10.0,
                       "speedup_fp16_to_int4_x": [3.0, 6.0, 4.0], "int4_rtf": list(rtf),
                       "fp16_search_onchip_share": [0.1, 0.3, 1.0], "int4_search_onchip_share": [0.4, 1.0, 1.0]})
    text = "\n".join(pt.memory_sweep_lines(sw, HW, "the point", "f.png"))
    assert ("increases from 2 to 4" in text) == rises and ("never increases" in text) == (not rises)
    assert "largest value is 6.00x (at 2: FP16 keeps 30% and INT4 100% of the search weights on chip)" in text
    assert "smallest 3.00x (at 1: FP16 keeps 10% and INT4 40%" in text
    assert "do not change along this axis" not in text
    assert f"held at {HW.dram_bw_bytes_per_s / 1e9:g} GB/s" in text and f"held at {HW.scratchpad_bytes / 2**20:g} MiB" in text


def test_what_if_names_the_variant_that_moves_most():
    wi = pd.DataFrame({"variant": ["base", "A", "B"], "fp16_latency_ms": [10.0, 9.0, 8.0],
                       "int4_latency_ms": [2.0, 1.0, 4.0], "speedup_fp16_to_int4_x": [5.0, 5.5, 2.0],
                       "int4_rtf": [0.1, 0.5, 0.12]})
    text = "\n".join(pt.what_if_lines(wi))
    assert "moves the speed-up most is *B* (5.00x -> 2.00x)" in text
    assert "INT4 RTF most is *A* (0.1000 -> 0.5000)" in text


@pytest.mark.parametrize("hyps_share, pred_over_joint, verdict", [(1.0, 0.3, "under-counts"), (0.5, 0.2, "over-counts")])
def test_search_stats_verdict_follows_the_measurements(tmp_path, hyps_share, pred_over_joint, verdict):
    # modelled share U/(T+U) = labels / steps = 0.2; measured rows per step / modelled =
    # hyps_share * pred_over_joint / 0.2: 1.5 (under-counts) or 0.5 (over-counts)
    path = tmp_path / "a" / "b" / "stats.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"rows": [{"search": "alsd", "beam": 8, "test": "t", "lm_fusion": "dr",
                                          "labels_per_s": 10.0, "search_steps_per_s": 50.0,
                                          "hyps_per_step": 8 * hyps_share, "joint_evals_per_s": 100.0,
                                          "pred_evals_per_s": 100.0 * pred_over_joint}]}))
    text = "\n".join(search_stats_check(path))
    assert f"the model {verdict}" in text
    assert "err on the high side" not in text


def _report_data(name) -> ReportData:
    fp16, int4 = _points(name)
    sc = SCENARIOS[name]
    grid = ReportGrid(models=("swb300",), hw="rapid4", precisions=("fp16", "int4"), beams=(16,),
                      fusions=("dr",), audio_s=sc["audio_s"])
    results = pd.DataFrame([{
        "model": "swb300", "hw": "rapid4", "precision": d.precision, "beam": 16, "lm_fusion": "dr",
        "audio_s": sc["audio_s"], "latency_s": d.latency_s, "rtf": d.rtf, "macs": 1e9,
        "compression_x": 8.0 if d.precision == "int4" else 2.0, "weight_bytes": WEIGHT_BYTES[d.precision],
        "precision_fallbacks": "{}", "speedup_vs_fp16_x": fp16.latency_s / d.latency_s} for d in (fp16, int4)])
    phases = pd.DataFrame([{"model": "swb300", "precision": d.precision, "beam": 16, "lm_fusion": "dr",
                            "phase": ph, "latency_s": t} for d in (fp16, int4) for ph, t in d.phases.items()])
    return ReportData(grid, results, phases, hw=HW, point={"fp16": fp16, "int4": int4})


BANNED = ("bounded by 4x and 8x", "quarter of the distance", "err on the high side", "order of magnitude")


@pytest.mark.parametrize("name", SCENARIOS)
def test_whole_report_has_no_contradicting_fixed_prose(name):
    data = _report_data(name)
    figs = {"phase_breakdown": Path("phase_breakdown.png"), "rtf_vs_beam": Path("rtf_vs_beam.png")}
    text = paper_report(data, figs, PAPER, v1=V1)
    for phrase in BANNED:
        assert phrase not in text
    speedup = SCENARIOS[name]["fp16"]["latency_s"] / SCENARIOS[name]["int4"]["latency_s"]
    m = re.search(r"speed-up is ([\d.]+)x, (above|below)", text)
    assert float(m.group(1)) == pytest.approx(speedup, rel=1e-3)
    rtf = SCENARIOS[name]["int4"]["latency_s"] / SCENARIOS[name]["audio_s"]
    ours = _sentence(text, "Our INT4 RTF").split("the paper's")[0]
    assert ("slower than real time" in ours) == (rtf > 1)
    # the historical v1 figures are for one point only (swb300, rapid4, beam 16, DR, 10 s)
    v1_point = SCENARIOS[name]["audio_s"] == V1["point"]["audio_s"]
    assert text.count(V1["label"]) == int(v1_point)
    assert ("Against v1" in text) == v1_point


def test_flat_sweep_says_so():
    sw = pd.DataFrame({"axis": "dram_bw", "scratchpad_mib": 1.0, "dram_bw_gb_s": [10.0, 20.0],
                       "speedup_fp16_to_int4_x": [4.0, 4.01], "int4_rtf": [0.1, 0.1],
                       "fp16_search_onchip_share": 0.5, "int4_search_onchip_share": 1.0})
    text = "\n".join(pt.memory_sweep_lines(sw, HW, "the point", None))
    assert "stays at 4.00x (within 0.5%)" in text and "largest value" not in text
